"""What the notebook's first cell printed, and more: versions, devices, live memory, the run log.

Qt-free.  `snapshot` runs on the worker (it imports torch); `BackgroundSampler` feeds the
environment dock's memory plot; `RunRecord` is the bookkeeping behind its run log.
"""

from __future__ import annotations

import itertools
import platform
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import psutil


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report() -> dict[str, str]:
    """Versions and CUDA devices (imports torch: call it on the worker thread; the GUI adds Qt's)."""
    import torch

    import llmviz

    report = {
        "llmviz": llmviz.__version__,
        "Python": platform.python_version(),
        "torch": str(torch.__version__),  # TorchVersion would import torch where it is unpickled
        "transformers": package_version("transformers"),
        "accelerate": package_version("accelerate"),
        "bitsandbytes": package_version("bitsandbytes"),
        "CUDA available": str(torch.cuda.is_available()),
        "Platform": f"{platform.system()} {platform.machine()}",
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            report[f"CUDA device {i}"] = f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
        report["CUDA (torch build)"] = str(torch.version.cuda)
    report["Executable"] = sys.executable
    return report


# ------------------------------------------------------------------ structured snapshot (worker side)


@dataclass(frozen=True)
class CudaDevice:
    """One CUDA device as torch sees it."""

    index: int
    name: str
    total_bytes: int
    capability: str


@dataclass(frozen=True)
class WeightPlacement:
    """Where the loaded model's tensors really are, counted from the tensors themselves.

    `device_map` is accelerate's map (module -> device) when the model was dispatched with
    one; `by_device` counts parameters and buffers per actual device, so the view shows the
    device the model runs on even when the load request said 'auto'.
    """

    title: str
    device: str
    device_map: dict[str, str] | None
    by_device: tuple[tuple[str, int, int, str], ...]  # (device, parameters, bytes incl. buffers, dtypes)


@dataclass(frozen=True)
class EnvironmentSnapshot:
    versions: tuple[tuple[str, str], ...]
    cuda_available: bool
    devices: tuple[CudaDevice, ...]
    placement: WeightPlacement | None


def weight_placement(model: Any, title: str, device: str, device_map: dict[str, str] | None) -> WeightPlacement:
    """Per actual device: parameter count, bytes of parameters plus buffers, and dtypes."""
    counts: dict[str, list[Any]] = {}
    seen: set[int] = set()
    tagged = itertools.chain(((p, True) for p in model.parameters()), ((b, False) for b in model.buffers()))
    for tensor, is_parameter in tagged:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        entry = counts.setdefault(str(tensor.device), [0, 0, set()])
        if is_parameter:
            entry[0] += tensor.numel()
            entry[2].add(str(tensor.dtype).replace("torch.", ""))
        entry[1] += tensor.numel() * tensor.element_size()
    rows = tuple((dev, n, b, ", ".join(sorted(d))) for dev, (n, b, d) in sorted(counts.items()))
    return WeightPlacement(title, device, dict(device_map) if device_map else None, rows)


def snapshot(session: Any, ctx: Any) -> EnvironmentSnapshot:
    """Worker job: versions, CUDA devices and the loaded model's placement."""
    import pandas  # noqa: F401 - imported here, off the GUI thread, so the views' first tables do not stall on it
    import torch

    devices: tuple[CudaDevice, ...] = ()
    if torch.cuda.is_available():
        devices = tuple(
            CudaDevice(i, p.name, int(p.total_memory), f"{p.major}.{p.minor}")
            for i, p in ((i, torch.cuda.get_device_properties(i)) for i in range(torch.cuda.device_count()))
        )
    placement = None
    if session.loaded is not None:
        info = session.loaded.info
        placement = weight_placement(session.loaded.model, info.title, info.device, info.device_map)
    return EnvironmentSnapshot(tuple(environment_report().items()), bool(devices), devices, placement)


# ------------------------------------------------------------------ live memory sampling


@dataclass(frozen=True)
class CudaMemory:
    """The caching allocator's counters for one device, in bytes."""

    index: int
    allocated: int
    reserved: int


def cuda_memory() -> tuple[CudaMemory, ...]:
    """Allocated/reserved bytes per CUDA device; () when CUDA is absent or not yet initialised.

    `memory_allocated`/`memory_reserved` read the caching allocator's host-side counters:
    they do not synchronise the device, so they return at once even while the worker is
    running kernels.  Without an initialised context they would create one (hundreds of MB
    of GPU memory), so nothing is read until the app itself has used CUDA.
    """
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return ()
    return tuple(CudaMemory(i, int(torch.cuda.memory_allocated(i)), int(torch.cuda.memory_reserved(i)))
                 for i in range(torch.cuda.device_count()))


def process_rss() -> int:
    """Resident memory of this process in bytes (a cheap /proc read on Linux)."""
    return int(psutil.Process().memory_info().rss)


T = TypeVar("T")


class BackgroundSampler(Generic[T]):
    """Calls `sample()` every `interval_s` on a daemon thread; the GUI drains results with `take()`.

    Why a thread and not a worker job: the ModelHost runs one job at a time, so a sampling
    job would wait behind a 25-second load, and the plot would freeze exactly while memory
    changes most.  Why not the GUI thread: the GUI must not import torch.  The sampler
    never touches Qt; results cross through a bounded deque (append/popleft are atomic).
    If `sample` raises, the sampler stops and keeps the message in `error`.
    """

    def __init__(self, sample: Callable[[], T], interval_s: float = 1.0, keep: int = 3600,
                 name: str = "llmviz-sampler") -> None:
        self._sample = sample
        self.interval_s = interval_s
        self._results: deque[tuple[float, T]] = deque(maxlen=keep)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.error = ""

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Ask the thread to end and wait for it; True if it ended."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def take(self) -> list[tuple[float, T]]:
        """Samples since the last call, as (time.perf_counter(), value), oldest first."""
        out = []
        while self._results:
            out.append(self._results.popleft())
        return out

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._results.append((time.perf_counter(), self._sample()))
            except Exception as exc:  # noqa: BLE001 - a failing probe must not kill the app; the view shows why
                self.error = f"{type(exc).__name__}: {exc}"
                return
            self._stop.wait(self.interval_s)


# ------------------------------------------------------------------ the run log


@dataclass
class RunRecord:
    """One load or run as the GUI saw it.  Mutable: views finish drawing after the result arrives.

    Times are the window's `time.perf_counter()` seconds; the transfer from the engine is
    measured on the wall clock both processes share (JobOutcome.transfer_s).
    """

    job_id: int
    kind: str  # 'load' or 'run'
    label: str
    started_at: float
    finished_at: float | None = None
    status: str = "running"
    worker_s: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)  # worker-side phases, in order
    transfer_s: float | None = None
    draws: dict[str, float] = field(default_factory=dict)  # view name -> busy->ready seconds
    draw_span: tuple[float, float] | None = None  # (first busy, last ready)
    trace_id: int | None = None
    model: str = ""
    tokens: int | None = None

    def finish(self, status: str, elapsed_s: float, transfer_s: float | None, received_at: float,
               timings: Mapping[str, float] | None = None, load_s: float | None = None) -> None:
        """Record the outcome: engine phases from `timings` (runs) or `load_s` (loads), and the transfer."""
        self.status, self.worker_s, self.finished_at = status, elapsed_s, received_at
        self.transfer_s = transfer_s
        phases: dict[str, float] = {}
        if timings:
            for key in ("tokenize", "forward", "capture"):
                if f"{key}_s" in timings:
                    phases[key] = float(timings[f"{key}_s"])
        if load_s is not None:
            phases["load"] = float(load_s)
        phases["other worker"] = max(0.0, elapsed_s - sum(phases.values()))
        self.phases = phases

    def add_draw(self, view: str, busy_at: float, ready_at: float) -> bool:
        """A view finished drawing this load/run; only its first busy->ready counts.  True if recorded."""
        if view in self.draws or ready_at < busy_at:
            return False
        self.draws[view] = ready_at - busy_at
        lo, hi = self.draw_span or (busy_at, ready_at)
        self.draw_span = (min(lo, busy_at), max(hi, ready_at))
        return True

    @property
    def draw_s(self) -> float | None:
        """Wall time from the first view going busy to the last one ready."""
        return None if self.draw_span is None else self.draw_span[1] - self.draw_span[0]

    def segments(self) -> list[tuple[str, float]]:
        """Phases in order, for the run-log chart."""
        out = list(self.phases.items())
        if self.transfer_s is not None:
            out.append(("transfer", self.transfer_s))
        if self.draw_s is not None:
            out.append(("draw", self.draw_s))
        return out

    @property
    def total_s(self) -> float:
        return sum(s for _, s in self.segments())


def run_log_frame(records: Sequence[RunRecord]):  # -> pandas.DataFrame
    """The run log as a table (milliseconds), for the view and for CSV export."""
    import pandas as pd

    def ms(value: float | None) -> float:
        return round(value * 1000, 2) if value is not None else float("nan")

    rows = []
    for r in records:
        slowest = max(r.draws.items(), key=lambda kv: kv[1]) if r.draws else None
        rows.append({
            "#": r.job_id, "kind": r.kind, "model": r.model, "status": r.status,
            "tokens": r.tokens if r.tokens is not None else pd.NA,
            "load_ms": ms(r.phases.get("load")), "tokenize_ms": ms(r.phases.get("tokenize")),
            "forward_ms": ms(r.phases.get("forward")), "capture_ms": ms(r.phases.get("capture")),
            "other_worker_ms": ms(r.phases.get("other worker")), "transfer_ms": ms(r.transfer_s),
            "draw_ms": ms(r.draw_s), "slowest_view": f"{slowest[0]} ({slowest[1] * 1000:.0f} ms)" if slowest else "",
            "total_ms": ms(r.total_s),
        })
    return pd.DataFrame(rows, columns=["#", "kind", "model", "status", "tokens", "load_ms", "tokenize_ms", "forward_ms",
                                       "capture_ms", "other_worker_ms", "transfer_ms", "draw_ms", "slowest_view",
                                       "total_ms"])
