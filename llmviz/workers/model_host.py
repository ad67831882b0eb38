"""ModelHost: the one QThread on which every torch call of the app runs.

The GUI submits `Job`s (a channel name, a dotted path to a core function and its
keyword arguments).  Each gets a fresh id and a cancel token; a newer job on the same
channel cancels the older one, and results that arrive for a superseded id are
dropped on the GUI thread.  Background jobs (Job.background) fill caches while the user
looks: they never count as busy and any other request cancels them.  Core functions are imported on the worker, so the GUI
thread never imports torch.  Results cross back as frozen dataclasses via queued
signals carrying `object`.
"""

from __future__ import annotations

import collections
import importlib
import itertools
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import tqdm
from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from ..core.errors import Cancelled, LlmvizError, out_of_memory_message
from ..core.import_failure import import_failure_message
from ..core.tasks import CancelToken, Progress, TaskContext
from .gui_gc import gui_thread_collector

tqdm.tqdm.monitor_interval = 0  # tqdm's monitor thread has crashed PySide6 apps

LOAD = "load"
TRACE = "trace"
# Threads that did not stop in time: kept referenced so Qt never destroys them while
# running (that aborts the process); the app then leaves with os._exit.
_ORPHANED_THREADS: list[QThread] = []


@dataclass(frozen=True)
class Job:
    """A request for the worker: call `target(session, ctx, **kwargs)`."""

    channel: str
    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    background: bool = False
    """Opportunistic work (precomputing what the user will probably ask for next): it does
    not make the host busy, and any other submitted job cancels it, so it never delays one."""


@dataclass(frozen=True)
class JobEvent:
    """Progress of a running job, relayed on the GUI thread."""

    id: int
    channel: str
    label: str
    progress: Progress


@dataclass(frozen=True)
class JobOutcome:
    """How a job ended: status 'ok' (value set), 'failed' (message set) or 'cancelled'."""

    id: int
    channel: str
    label: str
    status: str
    value: Any = None
    message: str = ""
    details: str = ""
    elapsed_s: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    emitted_at: float = 0.0  # time.perf_counter() when the worker sent it (GUI receipt minus this = transfer)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _resolve(target: str) -> Any:
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


class _Worker(QObject):
    """Lives on the worker thread; runs one job at a time in arrival order."""

    sig_started = Signal(object)
    sig_progress = Signal(object)
    sig_done = Signal(object)
    sig_imported = Signal()  # torch and transformers are imported (see gui_gc)

    def __init__(self) -> None:
        super().__init__()
        self.session: Any = None

    @Slot(object)
    def run(self, envelope: tuple[int, Job, CancelToken]) -> None:
        job_id, job, token = envelope
        label = job.label or job.channel
        if token.cancelled:
            self.sig_done.emit(JobOutcome(job_id, job.channel, label, "cancelled", kwargs=job.kwargs))
            return
        self.sig_started.emit((job_id, job.channel, label))
        started = time.perf_counter()
        ctx = TaskContext(token, lambda p: self.sig_progress.emit(JobEvent(job_id, job.channel, label, p)))
        try:
            if self.session is None:
                from ..core.session import Session  # first torch import happens here, off the GUI thread

                self.session = Session()
                self.sig_imported.emit()
            value = _resolve(job.target)(self.session, ctx, **job.kwargs)
            outcome = JobOutcome(job_id, job.channel, label, "ok", value, kwargs=job.kwargs)
        except Cancelled:
            outcome = JobOutcome(job_id, job.channel, label, "cancelled", kwargs=job.kwargs)
        except LlmvizError as exc:
            outcome = JobOutcome(job_id, job.channel, label, "failed", message=str(exc), kwargs=job.kwargs)
        except Exception as exc:  # noqa: BLE001 - the app must survive any failure of a job (MemoryError included)
            first = str(exc).splitlines()[0] if str(exc) else ""
            message = (out_of_memory_message(exc, label) or import_failure_message(exc)
                       or f"{label} failed: {type(exc).__name__}: {first}")
            outcome = JobOutcome(job_id, job.channel, label, "failed", kwargs=job.kwargs, message=message,
                                 details=traceback.format_exc())
        now = time.perf_counter()
        self.sig_done.emit(JobOutcome(**{**outcome.__dict__, "elapsed_s": now - started, "emitted_at": now}))


class ModelHost(QObject):
    """GUI-thread facade of the worker thread.  All signals are emitted on the GUI thread."""

    sig_started = Signal(object)  # (id, channel, label)
    sig_progress = Signal(object)  # JobEvent
    sig_finished = Signal(object)  # JobOutcome of a current (not superseded) job
    sig_model_loaded = Signal(object)  # ModelInfo
    sig_trace = Signal(object)  # Trace
    sig_busy = Signal(bool)
    sig_cancel_requested = Signal()  # the user pressed Cancel: views that resubmit jobs (generation) stop
    _sig_submit = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        collector = gui_thread_collector()
        self._ids = itertools.count(1)
        self._latest: dict[str, int] = {}
        self._tokens: dict[int, tuple[str, CancelToken]] = {}
        self._background: set[int] = set()  # ids of queued or running background jobs
        self._thread = QThread()
        self._thread.setObjectName("llmviz-model-host")
        self._worker = _Worker()
        self._worker.moveToThread(self._thread)
        self._sig_submit.connect(self._worker.run)
        self._worker.sig_started.connect(self.sig_started)
        self._worker.sig_progress.connect(self._on_progress)
        self._worker.sig_done.connect(self._on_done)
        # Results are handed on one per event-loop turn: two that arrive together (a head map and a
        # token comparison after a long text) would otherwise be drawn back to back, and the paints
        # and timers in between would wait for both.
        self._arrived: collections.deque[JobOutcome] = collections.deque()
        self._deliver_timer = QTimer(self)
        self._deliver_timer.setSingleShot(True)
        self._deliver_timer.setInterval(0)
        self._deliver_timer.timeout.connect(self._deliver_next)
        self._worker.sig_imported.connect(collector.freeze_imports)
        self._closed = False
        self._thread.start()

    # -- submitting ----------------------------------------------------------------
    def submit(self, job: Job, supersede: bool = True) -> int:
        """Queue `job`; with `supersede`, older jobs on its channel are cancelled and their results dropped."""
        if self._closed:
            return 0
        job_id = next(self._ids)
        if supersede:
            self.cancel(job.channel)
        if not job.background:
            for bid in self._background:
                self._tokens[bid][1].cancel()
        token = CancelToken()
        self._latest[job.channel] = job_id
        self._tokens[job_id] = (job.channel, token)
        if job.background:
            self._background.add(job_id)
        was_idle = not job.background and self._foreground() == 1
        self._sig_submit.emit((job_id, job, token))
        if was_idle:
            self.sig_busy.emit(True)
        return job_id

    def _foreground(self) -> int:
        return len(self._tokens) - len(self._background)

    def warm_up(self) -> int:
        """Import torch and transformers on the worker now (see core.jobs.warm_up)."""
        return self.submit(Job("engine", "llmviz.core.jobs.warm_up", {}, "Starting the model engine"))

    def call(self, channel: str, target: str, label: str = "", **kwargs: Any) -> int:
        return self.submit(Job(channel, target, kwargs, label))

    def call_background(self, channel: str, target: str, label: str = "", **kwargs: Any) -> int:
        """Like call, for background work (see Job.background)."""
        return self.submit(Job(channel, target, kwargs, label, background=True))

    def load(self, spec: Any) -> int:
        """Load a model; every pending job is cancelled first (its result would be for the old model)."""
        self.cancel()
        return self.submit(Job(LOAD, "llmviz.core.jobs.load", {"spec": spec}, f"Loading {spec.source}"))

    def run_text(self, text: str, max_tokens: int | None = None) -> int:
        return self.submit(Job(TRACE, "llmviz.core.jobs.run_text", {"text": text, "max_tokens": max_tokens}, "Running the model"))

    def cancel(self, channel: str | None = None) -> None:
        """Cancel running and queued jobs (of one channel, or all)."""
        for chan, token in self._tokens.values():
            if channel is None or chan == channel:
                token.cancel()

    def cancel_all(self) -> None:
        """The user's Cancel (Esc): stop everything, and tell views that chain jobs to stop too."""
        self.cancel()
        self.sig_cancel_requested.emit()

    def is_current(self, outcome: JobOutcome) -> bool:
        return self._latest.get(outcome.channel) == outcome.id

    @property
    def busy(self) -> bool:
        """True while a job the user waits for is queued or running (background ones aside)."""
        return self._foreground() > 0

    # -- results (GUI thread) --------------------------------------------------------
    @Slot(object)
    def _on_progress(self, event: JobEvent) -> None:
        if self._latest.get(event.channel) == event.id:
            self.sig_progress.emit(event)

    @Slot(object)
    def _on_done(self, outcome: JobOutcome) -> None:
        self._arrived.append(outcome)
        if not self._deliver_timer.isActive():
            self._deliver_timer.start()

    def _deliver_next(self) -> None:
        if self._arrived:
            self._deliver(self._arrived.popleft())
        if self._arrived:
            self._deliver_timer.start()

    def _deliver(self, outcome: JobOutcome) -> None:
        background = outcome.id in self._background
        self._background.discard(outcome.id)
        if self._tokens.pop(outcome.id, None) is not None and not background and self._foreground() == 0:
            self.sig_busy.emit(False)
        if self._closed or not self.is_current(outcome):
            return  # superseded: a newer request on this channel is what the user wants
        self.sig_finished.emit(outcome)
        if outcome.ok and outcome.channel == LOAD:
            self.sig_model_loaded.emit(outcome.value)
        elif outcome.ok and outcome.channel == TRACE:
            self.sig_trace.emit(outcome.value)

    # -- shutting down -----------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 1800) -> bool:
        """Cancel everything and stop the thread; True if it stopped within the timeout."""
        if self._closed:
            return not self._thread.isRunning()
        self._closed = True
        self.cancel()
        self._thread.quit()
        stopped = bool(self._thread.wait(timeout_ms))
        if not stopped:
            _ORPHANED_THREADS.append(self._thread)
        return stopped

    def thread_running(self) -> bool:
        return self._thread.isRunning()
