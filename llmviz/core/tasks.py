"""Cancellation and progress for long work, usable with or without Qt.

Long-running core functions take a `TaskContext`: they call `ctx.check()` between
steps (raises `Cancelled`), `ctx.progress(stage, fraction)` to report, and
`ctx.partial(value)` to hand on an interim result before the final one.  The worker
thread wires `report` to a Qt signal; the command line prints; tests use the default.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress report: `fraction` in [0, 1], or None when the total is unknown."""

    stage: str
    fraction: float | None = None
    detail: str = ""


@dataclass(frozen=True)
class JobEnding:
    """How a job ended: status 'ok' (value set), 'failed' (message set) or 'cancelled'."""

    status: str
    value: Any = None
    message: str = ""
    details: str = ""
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class CancelToken:
    """A thread-safe flag set by the GUI thread and polled by the worker."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class TaskContext:
    """What a long task gets: a cancel token and a throttled progress callback."""

    def __init__(
        self,
        token: CancelToken | None = None,
        report: Callable[[Progress], None] | None = None,
        min_interval_s: float = 0.05,
        publish: Callable[[Any], None] | None = None,
    ) -> None:
        self.token = token or CancelToken()
        self._report = report
        self._publish = publish
        self._min_interval = min_interval_s
        self._last = 0.0
        self._last_stage = ""

    def check(self) -> None:
        """Raise `Cancelled` if the task was cancelled."""
        if self.token.cancelled:
            raise Cancelled()

    def progress(self, stage: str, fraction: float | None = None, detail: str = "") -> None:
        """Report progress (throttled, except for stage changes and completion) and check cancel."""
        self.check()
        if self._report is None:
            return
        now = time.monotonic()
        final = fraction is not None and fraction >= 1.0
        if stage == self._last_stage and not final and now - self._last < self._min_interval:
            return
        self._last, self._last_stage = now, stage
        self._report(Progress(stage, fraction, detail))

    def partial(self, value: Any) -> None:
        """Hand on an interim result (a coarse picture the job goes on refining); the job's
        caller gets it before the final one. Checks cancel first; a no-op without a receiver."""
        self.check()
        if self._publish is not None:
            self._publish(value)

