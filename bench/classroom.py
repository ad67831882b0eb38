"""The built-in lesson in presentation mode: text sizes, clipping, step changes, the handout.

    python bench/classroom.py [--shots DIR]

Walks every step of "LLM Fundamentals" on the bundled SmolLM2 at 1280×720 and at 1920×1080.
For each step: the time from the key press to the step's view having drawn with the engine idle
(step_ms; the next step was precomputed while this one was shown, and the walk pauses on each
step as a presenter would), then every visible text, Qt widgets and pyqtgraph items alike
(llmviz/widgets/text_metrics.py): the smallest font in pixels and the texts clipped by their
parent.  Then the handout PDF of the whole lesson (pdf_s).  --shots saves each step's window.
Targets: min_text_px_720 >= 24, min_text_px_1080 >= 32, clipped = 0, step_ms_median <= 200.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from _common import result_line, table, wait_until

if TYPE_CHECKING:
    from llmviz.main_window import MainWindow

SIZES = ((1280, 720), (1920, 1080))
DWELL_S = 1.5  # a presenter talks over each step; the next one is precomputed meanwhile


def drawn(window: MainWindow) -> bool:
    """The step's view has drawn (the engine may still be precomputing the next step)."""
    name = window.presentation.current_view
    return window.info is not None and window.trace is not None and (name is None or window.view(name).is_ready())


def settled(window: MainWindow) -> bool:
    """Drawn and the engine idle: what is measured is final."""
    return drawn(window) and not window.host.busy


def walk(window: MainWindow, size: tuple[int, int], shots: Path | None) -> tuple[float, list[str], list[float], list[str]]:
    """(smallest text px, clipped texts, step seconds, per-step lines) over every step at `size`."""
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtGui import QKeyEvent
    from PySide6.QtWidgets import QApplication

    from llmviz.widgets.text_metrics import measure

    window.resize(*size)
    player = window.classroom.player
    player.go(0)
    wait_until(lambda: settled(window), 600)
    smallest, clipped, times, lines = float("inf"), [], [], []
    for index in range(player.count()):
        if index:
            started = time.perf_counter()
            QApplication.sendEvent(window, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_PageDown, Qt.KeyboardModifier.NoModifier))
            wait_until(lambda i=index: drawn(window) and player.current() == i, 600)
            times.append(time.perf_counter() - started)
        wait_until(lambda: settled(window), 600)
        window.presentation.restyle()
        QApplication.processEvents()
        report = measure(window)
        smallest = min(smallest, report.min_px)
        clipped += [f"step {index + 1}: {c}" for c in report.clipped]
        step = player.lesson.steps[index]
        lines.append(f"{size[0]}x{size[1]} step {index + 1:2d} {step.view:13s} min {report.min_px:4.0f} px "
                     f"({report.smallest[:40]}) clipped {len(report.clipped)}"
                     + (f" {(times[-1] * 1000):6.0f} ms" if index else ""))
        if shots is not None:
            window.grab().save(str(shots / f"step{index + 1:02d}_{size[0]}x{size[1]}.png"))
        end = time.perf_counter() + DWELL_S
        wait_until(lambda e=end: time.perf_counter() > e, DWELL_S + 1)
    return smallest, clipped, times, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shots", type=Path, help="save each step's window as PNG here")
    args = parser.parse_args()
    from llmviz.app import make_settings
    from llmviz.core.lessons import BUILTIN
    from llmviz.handout import HandoutWriter
    from llmviz.main_window import MainWindow, application
    from llmviz.workers.model_host import ModelHost

    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    app = application()
    host = ModelHost()
    settings_dir = tempfile.mkdtemp(prefix="llmviz-bench-")
    os.environ["LLMVIZ_SETTINGS"] = str(Path(settings_dir) / "settings.ini")
    window = MainWindow(host, make_settings(), persist_layout=False)
    window.resize(*SIZES[0])
    window.show()
    window.classroom.open_lesson(BUILTIN)
    results = {}
    all_lines: list[str] = []
    all_times: list[float] = []
    all_clipped: list[str] = []
    for size in SIZES:
        smallest, clipped, times, lines = walk(window, size, args.shots)
        results[size] = smallest
        all_lines += lines
        all_times += times
        all_clipped += [f"{size[0]}x{size[1]} {c}" for c in clipped]
    out = Path(tempfile.mkdtemp(prefix="llmviz-handout-")) / "handout.pdf"
    writer = HandoutWriter(window, window.classroom.player, str(out))
    done: list[str] = []
    writer.sig_done.connect(lambda path, what: done.append(what))
    started = time.perf_counter()
    writer.start()
    wait_until(lambda: bool(done), 1200)
    pdf_s = time.perf_counter() - started
    steps = window.classroom.player.count()
    window.close()
    host.shutdown(5000)
    app.processEvents()
    print("\n".join(all_lines))
    if all_clipped:
        print("\nclipped texts:\n  " + "\n  ".join(all_clipped[:60]) + ("\n  …" if len(all_clipped) > 60 else ""))
    ms = [t * 1000 for t in all_times]
    table([("steps", steps), ("smallest text at 1280x720", f"{results[SIZES[0]]:.0f} px (target >= 24)"),
           ("smallest text at 1920x1080", f"{results[SIZES[1]]:.0f} px (target >= 32)"),
           ("texts clipped (both sizes)", f"{len(all_clipped)} (target 0)"),
           ("step change median / max", f"{statistics.median(ms):.0f} / {max(ms):.0f} ms (target median <= 200)"),
           ("handout PDF", f"{pdf_s:.1f} s, {done[0]} ({out.stat().st_size / 1e6:.1f} MB)")], "Classroom")
    result_line("classroom", {"min_text_px_720": round(results[SIZES[0]]), "min_text_px_1080": round(results[SIZES[1]]),
                              "clipped": len(all_clipped), "steps": steps, "step_ms_median": round(statistics.median(ms)),
                              "step_ms_max": round(max(ms)), "pdf_s": round(pdf_s, 1)})


if __name__ == "__main__":
    main()
