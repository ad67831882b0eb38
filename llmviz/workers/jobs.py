"""The window's view of a job: a handle while it runs, an outcome when it ends."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.tasks import JobEnding, Progress

if TYPE_CHECKING:
    from .model_host import ModelHost


@dataclass(frozen=True)
class JobOutcome(JobEnding):
    """How a job the window asked for ended (JobEnding), with its id, channel, label and arguments."""

    id: int = field(kw_only=True)
    channel: str = field(kw_only=True)
    label: str = field(kw_only=True)
    kwargs: dict[str, Any] = field(default_factory=dict)
    transfer_s: float = 0.0  # from the engine sending the result to the window receiving it


@dataclass(frozen=True)
class JobEvent:
    """Progress of a running job, relayed on the GUI thread."""

    id: int
    channel: str
    label: str
    progress: Progress


@dataclass(eq=False)
class JobHandle:
    """A job the window asked for. Its callbacks run on the GUI thread, only while it is
    current: a newer job on its channel (with supersede) or `cancel()` ends that."""

    host: ModelHost
    id: int
    channel: str
    target: str
    kwargs: dict[str, Any]
    label: str
    background: bool
    on_done: Callable[[JobOutcome], None] | None = None
    on_progress: Callable[[JobEvent], None] | None = None
    on_partial: Callable[[Any], None] | None = None
    engine: int = 0  # generation of the engine it was sent to
    started: bool = False
    finished: bool = False
    dropped: bool = False  # superseded or cancelled by its caller: nothing more is delivered

    @property
    def is_current(self) -> bool:
        return not self.dropped and not self.finished

    def outcome(self, status: str, **ending: Any) -> JobOutcome:
        """This job's outcome; `ending`: JobEnding's other fields and transfer_s."""
        return JobOutcome(status, id=self.id, channel=self.channel, label=self.label, kwargs=self.kwargs, **ending)

    def cancel(self) -> None:
        """Stop the job (at its next check in the engine) and deliver nothing more of it."""
        self.host.drop(self)
