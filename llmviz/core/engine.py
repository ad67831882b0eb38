"""The engine process: owns the model and runs jobs the window asks for.

Started by the window (workers/engine_process.py) as `python -m llmviz __engine__ FD`
(the frozen app: `llmviz __engine__ FD`), with one end of a private socketpair as FD.
Two threads:

- the reader takes messages off the socket at once: a job is queued, a cancel sets the
  job's token immediately (a running job sees it at its next `ctx.check()`), and the
  end of the socket — the window closed or died — ends the process;
- the main thread runs the jobs one at a time, in arrival order, as `fn(session, ctx,
  **kwargs)`, sending progress, interim results and the outcome back.

Failures of a job become messages, never the end of the engine; what does end it
(a segfault in native code, the OOM killer, a poisoned CUDA context) the window sees as
the socket closing, and it starts a new engine.
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

from . import wire
from .errors import Cancelled, LlmvizError, out_of_memory_message
from .import_failure import import_failure_message
from .lifecycle import die_with_parent
from .tasks import CancelToken, TaskContext

ENGINE_COMMAND = "__engine__"

# What transformers imports lazily during a first load or generation: imported at start,
# labelled as the engine starting, rather than inside the first load.
WARM_UP_MODULES = (
    "transformers.generation", "transformers.masking_utils", "transformers.modeling_layers",
    "transformers.processing_utils", "transformers.modeling_gguf_pytorch_utils",
    "transformers.models.llama.modeling_llama", "transformers.models.gpt2.modeling_gpt2",
    "transformers.models.bert.modeling_bert", "transformers.models.bert.tokenization_bert",
)


def resolve(target: str) -> Any:
    """The job function a dotted path names."""
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _gpu_peak_bytes() -> int:
    torch = sys.modules.get("torch")
    try:
        return int(torch.cuda.max_memory_allocated()) if torch is not None and torch.cuda.is_initialized() else 0
    except Exception:  # noqa: BLE001 - a broken CUDA context must not hide the job's own outcome
        return 0


def failure_message(exc: BaseException, label: str) -> str:
    """What the user reads when a job raised something other than LlmvizError."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return (out_of_memory_message(exc, label) or import_failure_message(exc)
            or f"{label} failed: {type(exc).__name__}: {first}")


class Engine:
    """The job loop (main thread) and its reader (a daemon thread)."""

    def __init__(self, link: wire.Wire) -> None:
        self.link = link
        self.jobs: queue.Queue[wire.Submit | None] = queue.Queue()
        self.tokens: dict[int, CancelToken] = {}
        self.lock = threading.Lock()
        self.session: Any = None

    # -- reader thread ----------------------------------------------------------------------
    def read(self) -> None:
        try:
            while True:
                message = self.link.recv()
                if isinstance(message, wire.Submit):
                    with self.lock:
                        self.tokens[message.job_id] = CancelToken()
                    self.jobs.put(message)
                elif isinstance(message, wire.Cancel):
                    with self.lock:
                        token = self.tokens.get(message.job_id)
                    if token is not None:
                        token.cancel()
                elif isinstance(message, wire.Shutdown):
                    break
        except wire.Closed:
            os._exit(0)  # the window is gone: nothing is left to do for it
        with self.lock:
            for token in self.tokens.values():
                token.cancel()
        self.jobs.put(None)

    # -- main thread -------------------------------------------------------------------------
    def start(self) -> None:
        """Import torch and the model code the first load needs, then say Ready."""
        started = time.perf_counter()
        from .session import Session

        self.session = Session()
        for name in WARM_UP_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:
                pass  # an architecture missing from this transformers only matters if it is loaded
        self.link.send(wire.Ready(time.perf_counter() - started))

    def run(self, job: wire.Submit) -> None:
        with self.lock:
            token = self.tokens.get(job.job_id) or CancelToken()
        label = job.label or job.target.rpartition(".")[2]
        if token.cancelled:
            self.link.send(wire.Finished("cancelled", job_id=job.job_id, sent_at=time.time()))
            return
        self.link.send(wire.Started(job.job_id))
        started = time.perf_counter()
        ctx = TaskContext(token, lambda p: self._send(wire.Progressed(job.job_id, p)),
                          publish=lambda v: self._send(wire.Partial(job.job_id, v)))
        try:
            value = resolve(job.target)(self.session, ctx, **job.kwargs)
            outcome = dict(status="ok", value=value)
        except Cancelled:
            outcome = dict(status="cancelled")
        except LlmvizError as exc:
            outcome = dict(status="failed", message=str(exc))
        except Exception as exc:  # noqa: BLE001 - the engine survives any failure of a job (MemoryError included)
            outcome = dict(status="failed", message=failure_message(exc, label), details=traceback.format_exc())
        finally:
            with self.lock:
                self.tokens.pop(job.job_id, None)
        finished = wire.Finished(job_id=job.job_id, elapsed_s=time.perf_counter() - started, sent_at=time.time(),
                                 gpu_peak_bytes=_gpu_peak_bytes(), **outcome)
        try:
            self.link.send(finished)
        # A result that cannot cross the pipe: say so instead of losing the job.
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            self.link.send(wire.Finished("failed", job_id=job.job_id, message=f"{label} failed: its result could not be "
                                         f"sent to the window ({type(exc).__name__}: {exc})", sent_at=time.time()))

    def _send(self, message: Any) -> None:
        self.link.send(message)

    def serve(self) -> None:
        reader = threading.Thread(target=self.read, name="llmviz-engine-reader", daemon=True)
        reader.start()
        self.start()
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.run(job)


def main(fd: int, parent_pid: int) -> int:
    """Entry point of the engine process (see __main__)."""
    die_with_parent(parent_pid)
    # Ctrl-C in the terminal reaches the whole process group; the window decides what it
    # means and ends the engine itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import tqdm

    tqdm.tqdm.monitor_interval = 0  # no monitor thread per progress bar in a long-lived process
    link = wire.Wire(socket.socket(fileno=fd))
    link.send(wire.Hello(os.getpid()))
    engine = Engine(link)
    try:
        engine.serve()
    except wire.Closed:
        return 0
    except BaseException as exc:  # noqa: BLE001 - the start itself failed (a damaged torch): tell the window
        return _report_start_failure(link, exc)
    # Asked to shut down and the last job has ended (its children with it): exit now. The
    # interpreter's own teardown of torch and a model takes seconds on a busy machine, and
    # the window is waiting for this process to end.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _report_start_failure(link: wire.Wire, exc: BaseException) -> int:
    message = import_failure_message(exc) or f"The engine could not start: {type(exc).__name__}: {exc}"
    try:
        link.send(wire.StartFailed(message, traceback.format_exc()))
    except wire.Closed:
        pass
    return 3
