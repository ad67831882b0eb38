"""ModelHost: the window's one door to the engine process that owns the model.

Views ask with `host.call(TARGET, on_done=callback, **kwargs)` (targets: core/targets.py)
and get a `JobHandle`; the callback runs on the GUI thread with a `JobOutcome`, one
result per turn of the event loop, and only while the handle is current. A newer call
on the same channel (the target, unless a channel is named) supersedes the older one:
it is cancelled in the engine and its result dropped; `supersede=False` keeps both.
Background calls fill caches while the user looks: they never make the host busy and
any other call cancels them.

The model lives in an engine process (workers/engine_process.py), so nothing the model
does — a long native call, a segfault, the OOM killer — freezes or ends the window:

- Loading a different model starts a fresh engine and loads it there; only when that
  succeeds does it replace the old engine, whose memory goes back to the OS with it. A
  failed or cancelled load leaves the old engine, and its model, as they were; cancelling
  it ends the new engine at once.
- When the engine dies, the host says how (EngineEvent 'died'), starts a new one and
  reloads the model it held; the window then reruns its text. If it dies again before
  that has worked, the host starts an empty engine and says so ('failed') instead of
  looping.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tqdm
from PySide6.QtCore import QObject, QTimer, Signal

from ..core import targets, wire
from ..core.specs import ModelSpec
from .engine_process import EngineExit, EngineProcess
from .gui_gc import gui_thread_collector
from .jobs import JobEvent, JobHandle, JobOutcome

tqdm.tqdm.monitor_interval = 0  # tqdm's monitor thread has crashed PySide6 apps

LOAD = "load"
TRACE = "trace"
MEMORY_SAMPLE_MS = 1000


@dataclass(frozen=True)
class EngineEvent:
    """A change in the engine's life: 'starting', 'ready', 'died' (restarting), 'recovered'
    (the model it held is loaded again) or 'failed' (it could not start, or died again while
    recovering; nothing is retried)."""

    state: str
    message: str = ""
    pid: int = 0


class ModelHost(QObject):
    """GUI-thread facade of the engine process.  All signals are emitted on the GUI thread."""

    sig_started = Signal(object)  # JobHandle
    sig_progress = Signal(object)  # JobEvent of a current job
    sig_finished = Signal(object)  # JobOutcome of a current job (the window's status bar reads these)
    sig_model_loaded = Signal(object)  # ModelInfo
    sig_trace = Signal(object)  # Trace
    sig_busy = Signal(bool)
    sig_cancel_requested = Signal()  # the user pressed Cancel: views that chain jobs (generation) stop
    sig_engine = Signal(object)  # EngineEvent

    def __init__(self, parent: QObject | None = None, start: bool = True) -> None:
        super().__init__(parent)
        gui_thread_collector().freeze_imports()  # the window's modules are imported: never sweep them
        self._ids = itertools.count(1)
        self._generations = itertools.count(1)
        self._handles: dict[int, JobHandle] = {}
        self._latest: dict[str, JobHandle] = {}
        self._engine: EngineProcess | None = None
        self._pending: EngineProcess | None = None  # a fresh engine loading the next model
        self._retired: list[EngineProcess] = []  # ended on purpose, kept until their relay stops
        self._engine_has_model = False
        self.loaded_spec: ModelSpec | None = None  # the model the current engine holds
        self._recovering = False  # restarted after a death, and nothing has worked since
        self._closed = False
        self.last_exit: EngineExit | None = None
        # Results are handed on one per event-loop turn: two that arrive together (a head map and a
        # token comparison after a long text) would otherwise be drawn back to back, and the paints
        # and timers in between would wait for both.
        self._arrived: collections.deque[tuple[EngineProcess, Any]] = collections.deque()
        self._deliver_timer = QTimer(self)
        self._deliver_timer.setSingleShot(True)
        self._deliver_timer.setInterval(0)
        self._deliver_timer.timeout.connect(self._deliver_next)
        self._memory_timer = QTimer(self)
        self._memory_timer.timeout.connect(self.engine_rss)
        self._memory_timer.start(MEMORY_SAMPLE_MS)
        if start:
            self.start_engine()

    # -- engines -------------------------------------------------------------------------------
    def _spawn(self) -> EngineProcess:
        engine = EngineProcess(next(self._generations), self)
        engine.sig_message.connect(lambda m, e=engine: self._on_message(e, m))
        engine.sig_ended.connect(lambda x, e=engine: self._on_ended(e, x))
        return engine

    def start_engine(self) -> None:
        """Start the engine now (the window calls this as soon as it shows: importing torch
        takes seconds, and it happens while the user looks at the window)."""
        if self._engine is None and not self._closed:
            self._engine = self._spawn()
            self._engine_has_model = False
            self.sig_engine.emit(EngineEvent("starting", "Starting the model engine…", self._engine.pid))

    @property
    def engine_pid(self) -> int | None:
        return self._engine.pid if self._engine is not None else None

    @property
    def engine_ready(self) -> bool:
        return self._engine is not None and self._engine.ready

    def engine_rss(self) -> int:
        """Resident memory of the engine processes now, in bytes (samples their peaks too)."""
        return sum(e.rss() for e in (self._engine, self._pending) if e is not None)

    def engine_pids(self) -> list[int]:
        """Every engine process this host has not seen end (tests check none outlives it)."""
        return [e.pid for e in (self._engine, self._pending, *self._retired) if e is not None and e.alive()]

    def _retire(self, engine: EngineProcess | None, kill: bool = False) -> None:
        """End an engine the window no longer needs; its jobs end without results."""
        if engine is None:
            return
        engine.retired = True
        if engine not in self._retired:
            self._retired.append(engine)
        if kill:
            engine.kill()
        else:
            engine.send(wire.Shutdown())
            QTimer.singleShot(2000, engine.kill)  # a job stuck in native code does not read Shutdown
        self._finish_all(engine)

    def _finish_all(self, engine: EngineProcess) -> None:
        """Jobs sent to `engine` end here, silently: their results would be for a model that is gone."""
        for handle in [h for h in self._handles.values() if h.engine == engine.generation]:
            self._close(handle)

    def restart_engine(self, reason: str = "Restarting the model engine on request.") -> None:
        """End the engine now (a job stuck in a native call, or the user's Run ▸ Restart engine),
        start a new one and reload the model it held."""
        if self._closed:
            return
        old, spec = self._engine, (self.loaded_spec if self._engine_has_model else None)
        self._engine = None
        self._retire(old, kill=True)
        self._recover(reason, spec)

    def _recover(self, message: str, spec: ModelSpec | None) -> None:
        self._recovering = True
        self.sig_engine.emit(EngineEvent("died", message + (f" Reloading {spec.source}…" if spec else "")))
        self.start_engine()
        if spec is not None:
            self.load(spec)

    # -- submitting --------------------------------------------------------------------------------
    def call(self, target: str, *, on_done: Callable[[JobOutcome], None] | None = None, channel: str | None = None,
             label: str = "", background: bool = False, supersede: bool = True,
             on_progress: Callable[[JobEvent], None] | None = None, on_partial: Callable[[Any], None] | None = None,
             **kwargs: Any) -> JobHandle:
        """Ask the engine to run `target(session, ctx, **kwargs)`; see the module docstring."""
        return self._submit(target, kwargs, channel or target, label, background, supersede, on_done, on_progress,
                            on_partial)

    def _submit(self, target: str, kwargs: dict[str, Any], channel: str, label: str, background: bool,
                supersede: bool, on_done: Callable[[JobOutcome], None] | None = None,
                on_progress: Callable[[JobEvent], None] | None = None, on_partial: Callable[[Any], None] | None = None,
                engine: EngineProcess | None = None) -> JobHandle:
        handle = JobHandle(self, next(self._ids), channel, target, dict(kwargs), label or channel, background,
                           on_done, on_progress, on_partial)
        if self._closed:
            handle.dropped = handle.finished = True
            return handle
        if supersede and channel in self._latest:
            self.drop(self._latest[channel])
        if not background:
            for other in [h for h in self._handles.values() if h.background]:
                self.drop(other)
        self.start_engine()
        engine = engine or self._engine
        assert engine is not None
        handle.engine = engine.generation
        self._latest[channel] = handle
        was_idle = not background and self._foreground() == 0
        self._handles[handle.id] = handle
        engine.send(wire.Submit(handle.id, target, handle.kwargs, handle.label))
        if was_idle:
            self.sig_busy.emit(True)
        return handle

    def load(self, spec: ModelSpec) -> JobHandle:
        """Load a model: every pending job is cancelled first (its result would be for the old
        model); a model is replaced by loading the new one in a fresh engine."""
        self.cancel()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._retire(pending, kill=True)
        engine = None
        if self._engine_has_model:
            self._pending = engine = self._spawn()
        return self._submit(targets.LOAD, {"spec": spec}, LOAD, f"Loading {spec.source}", False, True, engine=engine)

    def run_text(self, text: str, max_tokens: int | None = None) -> JobHandle:
        return self._submit(targets.RUN_TEXT, {"text": text, "max_tokens": max_tokens}, TRACE, "Running the model",
                            False, True)

    def cancel(self, channel: str | None = None) -> None:
        """Cancel running and queued jobs (of one channel, or all); their 'cancelled' outcomes
        are still delivered. A load into a fresh engine ends that engine at once."""
        for handle in list(self._handles.values()):
            if channel is None or handle.channel == channel:
                self._cancel_in_engine(handle)

    def _cancel_in_engine(self, handle: JobHandle) -> None:
        pending = self._pending
        if pending is not None and handle.engine == pending.generation and handle.channel == LOAD:
            self._pending = None
            self._retire(pending, kill=True)  # closes the handle; say what happened
            self._deliver(handle, handle.outcome("cancelled"))
            return
        engine = self._engine_of(handle)
        if engine is not None:
            engine.send(wire.Cancel(handle.id))

    def drop(self, handle: JobHandle) -> None:
        """The caller no longer wants `handle`: cancel it and deliver nothing more of it."""
        if handle.finished or handle.dropped:
            return
        handle.dropped = True
        self._cancel_in_engine(handle)

    def cancel_all(self) -> None:
        """The user's Cancel (Esc): stop everything, and tell views that chain jobs to stop too."""
        self.cancel()
        self.sig_cancel_requested.emit()

    def is_current(self, outcome: JobOutcome) -> bool:
        latest = self._latest.get(outcome.channel)
        return latest is not None and latest.id == outcome.id

    def running_job(self) -> JobHandle | None:
        """The foreground job the engine is running now, if any."""
        return next((h for h in self._handles.values() if h.started and not h.background
                     and h.engine == (self._engine.generation if self._engine else -1)), None)

    def _foreground(self) -> int:
        return sum(1 for h in self._handles.values() if not h.background)

    @property
    def busy(self) -> bool:
        """True while a job the user waits for is queued or running (background ones aside)."""
        return self._foreground() > 0

    def _engine_of(self, handle: JobHandle) -> EngineProcess | None:
        for engine in (self._engine, self._pending):
            if engine is not None and engine.generation == handle.engine:
                return engine
        return None

    # -- messages from the engines (GUI thread) ----------------------------------------------------
    def _on_message(self, engine: EngineProcess, message: Any) -> None:
        if engine.retired:
            return
        if isinstance(message, wire.Ready):
            if engine is self._engine:
                self.sig_engine.emit(EngineEvent("ready", f"Model engine ready ({message.import_s:.1f} s to start)",
                                                 engine.pid))
            if self._recovering and not any(h.channel == LOAD for h in self._handles.values()):
                self._recovering = False  # nothing to reload: being up is the recovery
        elif isinstance(message, wire.StartFailed):
            self._start_failed(engine, message.message, message.details)
        elif isinstance(message, wire.Started):
            handle = self._handles.get(message.job_id)
            if handle is not None:
                handle.started = True
                if not handle.dropped:
                    self.sig_started.emit(handle)
        elif isinstance(message, wire.Progressed):
            handle = self._handles.get(message.job_id)
            if handle is not None and not handle.dropped:
                event = JobEvent(handle.id, handle.channel, handle.label, message.progress)
                if handle.on_progress is not None:
                    handle.on_progress(event)
                self.sig_progress.emit(event)
        elif isinstance(message, (wire.Finished, wire.Partial)):
            self._arrived.append((engine, message))
            if not self._deliver_timer.isActive():
                self._deliver_timer.start()

    def _deliver_next(self) -> None:
        while self._arrived:
            engine, message = self._arrived.popleft()
            if engine.retired or message.job_id not in self._handles:
                continue
            if isinstance(message, wire.Partial):
                handle = self._handles[message.job_id]
                if not handle.dropped and handle.on_partial is not None:
                    handle.on_partial(message.value)
            else:
                self._finished(engine, message)
            break
        if self._arrived:
            self._deliver_timer.start()

    def _finished(self, engine: EngineProcess, message: wire.Finished) -> None:
        handle = self._handles[message.job_id]
        outcome = handle.outcome(message.status, value=message.value, message=message.message, details=message.details,
                                 elapsed_s=message.elapsed_s, transfer_s=max(0.0, time.time() - message.sent_at))
        if handle.channel == LOAD and engine is self._pending:
            self._pending = None
            if outcome.ok:
                old, self._engine = self._engine, engine
                self._retire(old)  # its memory goes back to the OS with the process
            else:
                self._retire(engine)
        if handle.channel == LOAD and outcome.ok:
            self._engine_has_model = True
            self.loaded_spec = handle.kwargs["spec"]
            if self._recovering:
                self.sig_engine.emit(EngineEvent("recovered", f"Reloaded {self.loaded_spec.source}.", engine.pid))
        elif self._recovering and outcome.ok and not handle.background:
            self._recovering = False  # the engine works again: a later crash is news, not a loop
        self._close(handle)
        self._deliver(handle, outcome)

    def _deliver(self, handle: JobHandle, outcome: JobOutcome) -> None:
        """Hand `outcome` to the window and to the handle's caller, unless the caller dropped it."""
        if handle.dropped:
            return
        self.sig_finished.emit(outcome)
        if outcome.ok and outcome.channel == LOAD:
            self.sig_model_loaded.emit(outcome.value)
        elif outcome.ok and outcome.channel == TRACE:
            self.sig_trace.emit(outcome.value)
        if handle.on_done is not None:
            handle.on_done(outcome)

    def _close(self, handle: JobHandle) -> None:
        """`handle` is over: it no longer counts as work in flight."""
        if handle.finished:
            return
        handle.finished = True
        self._handles.pop(handle.id, None)
        if not handle.background and self._foreground() == 0:
            self.sig_busy.emit(False)

    # -- engines ending ----------------------------------------------------------------------------
    def _fail_jobs(self, engine: EngineProcess, message: str, details: str = "") -> None:
        """Every job sent to `engine` ends as failed with `message` (it cannot run anywhere)."""
        for handle in [h for h in list(self._handles.values()) if h.engine == engine.generation]:
            self._close(handle)
            self._deliver(handle, handle.outcome("failed", message=message, details=details))

    def _start_failed(self, engine: EngineProcess, message: str, details: str = "") -> None:
        """The engine cannot start (a damaged install): every job fails with the reason; no retry."""
        if engine is self._engine:
            self._engine = None
        elif engine is self._pending:
            self._pending = None
        self._fail_jobs(engine, message, details)
        self._retire(engine, kill=True)
        self.sig_engine.emit(EngineEvent("failed", message, engine.pid))

    def _on_ended(self, engine: EngineProcess, exit: EngineExit) -> None:
        if engine in self._retired:
            self._retired.remove(engine)
            return
        if self._closed:
            return
        self.last_exit = exit
        what = exit.describe()
        engine.retired = True
        if engine is self._pending:  # the new model took its fresh engine down: the old one is untouched
            self._pending = None
            for handle in [h for h in list(self._handles.values()) if h.engine == engine.generation]:
                self._close(handle)
                source = handle.kwargs["spec"].source if handle.channel == LOAD else handle.label
                self._deliver(handle, handle.outcome("failed", message=f"Loading {source} failed: {what}"))
            return
        spec = self.loaded_spec if self._engine_has_model or self._recovering else None
        self._engine = None
        if self._recovering:  # it died again before anything worked: do not loop
            self._recovering = False
            self._finish_all(engine)
            self.loaded_spec = None
            self.start_engine()
            self.sig_engine.emit(EngineEvent(
                "failed", f"{what} It stopped again while {'reloading ' + spec.source if spec else 'starting'}, so "
                          "llmviz did not load it again: load a model (or try a shorter text) to go on."))
            return
        self._finish_all(engine)
        self._recover(what + " Restarting it.", spec)

    # -- shutting down -----------------------------------------------------------------------------
    def shutdown(self, timeout_ms: int = 1800) -> bool:
        """End every engine (asked, then killed after `timeout_ms`); True when all ended by themselves."""
        if self._closed:
            return not self.engine_pids()
        self._closed = True
        self._memory_timer.stop()
        self._deliver_timer.stop()
        engines = [e for e in (self._engine, self._pending, *self._retired) if e is not None]
        self._engine = self._pending = None
        for engine in engines:
            engine.retired = True
            engine.send(wire.Shutdown())
        deadline = time.monotonic() + timeout_ms / 1000
        clean = True
        for engine in engines:
            clean = engine.stop(max(0.05, deadline - time.monotonic())) and clean
        self._retired.clear()
        for handle in list(self._handles.values()):
            self._close(handle)
        return clean

    def thread_running(self) -> bool:
        """Whether any relay thread still runs (none should after shutdown)."""
        return any(e.relay_running() for e in (self._engine, self._pending, *self._retired) if e is not None)

