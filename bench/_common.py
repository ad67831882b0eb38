"""Helpers shared by the benchmark scripts (run each as `python bench/NAME.py`)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Engine processes import the benchmarks' own reference jobs (e.g. tokens.reference_job) by name.
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")) if p)
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def table(rows: list[tuple[str, Any]], title: str) -> None:
    """Print a readable two-column table."""
    print(f"\n{title}")
    print("-" * len(title))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"  {key.ljust(width)}  {value}")


def result_line(name: str, figures: dict[str, float | int | str]) -> None:
    """The one machine-readable last line: `name: key=value ...`."""
    parts = []
    for key, value in figures.items():
        parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    print(f"{name}: " + " ".join(parts), flush=True)


class Heartbeat:
    """A 10 ms QTimer on the GUI thread; `worst_ms` is its worst lateness (the longest GUI stall)."""

    def __init__(self, interval_ms: int = 10) -> None:
        from PySide6.QtCore import QTimer

        self.interval = interval_ms / 1000
        self.worst = 0.0
        self._last = time.perf_counter()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self._last - self.interval)
        self._last = now

    def start(self) -> None:
        self.worst = 0.0
        self._last = time.perf_counter()
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return self.worst * 1000

    @property
    def worst_ms(self) -> float:
        return self.worst * 1000


def wait_until(predicate, timeout_s: float = 600.0) -> None:
    """Run the Qt event loop until `predicate()` is true (checked every 2 ms).

    A real QEventLoop, not a processEvents/sleep spin: between checks the GUI thread waits
    inside Qt with the GIL released, as the app's own event loop does, instead of taking the
    GIL a thousand times a second from the threads it waits for.
    """
    from PySide6.QtCore import QEventLoop, QTimer

    if predicate():
        return
    deadline = time.perf_counter() + timeout_s
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(2)

    def check() -> None:
        if predicate() or time.perf_counter() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start()
    loop.exec()
    timer.stop()
    if not predicate():
        raise TimeoutError("benchmark step timed out")


def peak_rss_bytes(pid: int | None = None) -> int:
    """A process's peak resident memory (Linux VmHWM, the kernel's high-water mark); this
    process when `pid` is None. 0 where /proc has no such line."""
    path = f"/proc/{pid or 'self'}/status"
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
