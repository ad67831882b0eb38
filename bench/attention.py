"""Attention explorer benchmark: the real app (offscreen) on the bundled SmolLM2.

- switch: time from a head/layer selection change to the new image being set in the
  head view, median of 20 switches, one every 250 ms, to heads not seen before and not
  next to one seen (so neither cached nor precomputed), T = 1024 and T = 4096; then 20
  more back to back (printed, not a key: each then competes with the painting of the
  last and with its neighbours' background precomputation);
- arrow: 20 presses of the Right arrow key, one every 250 ms, where the view has
  precomputed the neighbouring heads in the background;
- grid: time from the trace arriving to all 270 thumbnails drawn, T = 256;
- long: T = 8192: forward-with-capture time, time to show one (new) head, and the
  peak RSS of both processes added (window and engine, each its VmHWM), beside
  what a full eager attention tensor would need;
- the longest GUI stall during all of it (10 ms heartbeat on the GUI thread), and during the
  attention work alone (every phase after the model load; the load's own stall, GIL held by
  the tokenizer's construction and the torch import, is bench/startup.py's figure).

Run: python bench/attention.py [--only-attention]
(--only-attention builds the window with the attention dock alone, to tell its own cost
from that of the other docks, which also react to every text on the same engine.)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

from _common import Heartbeat, peak_rss_bytes, result_line, table, wait_until

os.environ["LLMVIZ_SETTINGS"] = os.path.join(tempfile.mkdtemp(prefix="llmviz-bench-"), "settings.ini")

PACE_S = 0.25  # between switches: a reader's pace (and time for the background precomputation)
WORDS = ("the cat dog house river mountain teacher student small large quickly slowly red green old new "
         "walks sees finds builds reads writes under over near behind because although while when "
         "attention model layer token head query key value sentence story morning evening city forest").split()


def long_text(sentences: int = 1500, seed: int = 0) -> str:
    """A deterministic text of varied sentences (enough for 8192 SmolLM2 tokens)."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(sentences):
        n = rng.randint(6, 14)
        words = [rng.choice(WORDS) for _ in range(n)]
        out.append(f"{i}. " + " ".join(words).capitalize() + ".")
    return " ".join(out)


def peak_rss_gb(engine_pid: int | None) -> float:
    """Peak RSS of the window process plus that of the engine (each its own high-water mark)."""
    return (peak_rss_bytes() + (peak_rss_bytes(engine_pid) if engine_pid else 0)) / 1e9


def main() -> int:
    import psutil
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    import llmviz.main_window as main_window
    from llmviz.app import make_settings
    from llmviz.core.specs import ModelSpec
    from llmviz.main_window import MainWindow, application
    from llmviz.workers.model_host import ModelHost

    only = "--only-attention" in sys.argv
    if only:
        main_window.VIEWS = [v for v in main_window.VIEWS if v.NAME == "attention"]
    application()
    host = ModelHost()
    window = MainWindow(host, make_settings())
    window.resize(1400, 900)
    window.show()
    view = window.views["attention"]
    window.docks["attention"].show()
    window.docks["attention"].raise_()
    beat = Heartbeat()
    beat.start()
    jobs: dict[str, float] = {}  # engine seconds per job label, this phase
    host.sig_finished.connect(lambda o: jobs.__setitem__(o.label, jobs.get(o.label, 0.0) + o.elapsed_s))
    phases: list[tuple[str, object]] = []

    def phase(name: str) -> None:
        """Close a phase: its longest GUI stall, the process's RSS, the engine's busiest jobs."""
        stall = beat.worst_ms
        beat.worst = 0.0
        busiest = sorted(jobs.items(), key=lambda kv: -kv[1])[:4]
        rss_gb = (psutil.Process().memory_info().rss + host.engine_rss()) / 1e9
        phases.append((name, f"stall {stall:.0f} ms, RSS {rss_gb:.2f} GB, "
                             "engine: " + ", ".join(f"{k} {v:.1f} s" for k, v in busiest)))
        worst_stall[0] = max(worst_stall[0], stall)
        if name != "load":
            worst_stall[1] = max(worst_stall[1], stall)
        jobs.clear()

    worst_stall = [0.0, 0.0]  # over the whole script; over the attention work (every phase after the load)
    window.load_model(ModelSpec("bundled:smollm2", device="cpu"))
    wait_until(lambda: window.info is not None and not host.busy, 600)
    phase("load")
    text = long_text()
    drawn: list[float] = []
    view.head_panel.heatmap.sig_drawn.connect(lambda: drawn.append(time.perf_counter()))

    arrived: list[float] = []
    host.sig_trace.connect(lambda _trace: arrived.append(time.perf_counter()))

    def run(tokens: int) -> float:
        count = len(arrived)
        started = time.perf_counter()
        host.run_text(text, max_tokens=tokens)
        wait_until(lambda: len(arrived) > count and view.is_ready() and not host.busy, 900)
        assert window.trace is not None and window.trace.num_tokens == tokens
        return time.perf_counter() - started

    computed: list[float] = []

    def switch_to(layer: int, head: int, pause: float = 0.0) -> float:
        resume = time.perf_counter() + pause
        wait_until(lambda: time.perf_counter() > resume, 5)
        drawn.clear()
        started = time.perf_counter()
        view.set_selection(layer, head)
        wait_until(lambda: bool(drawn) and view.is_ready(), 300)
        computed.append(view.head_panel.shown.compute_s)
        return drawn[0] - started

    def press_right() -> float:
        resume = time.perf_counter() + PACE_S
        wait_until(lambda: time.perf_counter() > resume, 5)
        drawn.clear()
        started = time.perf_counter()
        QTest.keyClick(view.head_panel.heatmap.plot, Qt.Key.Key_Right)
        wait_until(lambda: bool(drawn) and view.is_ready(), 300)
        return drawn[0] - started

    def far_apart(i: int) -> tuple[int, int]:
        """Heads 13 apart in the arrow keys' order: never one seen, nor a neighbour (+-1, +-9) of one."""
        return divmod((5 + 13 * i) % (window.info.num_layers * window.info.num_heads), window.info.num_heads)

    rows: list[tuple[str, object]] = []
    figures: dict[str, float | int | str] = {}
    view.tabs.setCurrentIndex(0)
    for t in (1024, 4096):
        run(t)
        phase(f"run T={t}")
        switch_to(0, 1)  # warm up (first import of the job module etc.)
        computed.clear()
        times = [switch_to(*far_apart(i), pause=PACE_S) for i in range(20)]
        block = view.head_panel.shown.block
        med = statistics.median(times) * 1000
        figures[f"switch_ms_{t}"] = med
        rows.append((f"switch T={t} (block {block}, one every {PACE_S * 1000:.0f} ms, median of 20)",
                     f"{med:.1f} ms (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}; engine compute "
                     f"median {statistics.median(computed) * 1000:.1f} ms)"))
        computed.clear()
        rushed = [switch_to(*far_apart(20 + i)) for i in range(20)]
        rows.append(("  the same back to back (each as soon as the last is drawn)",
                     f"{statistics.median(rushed) * 1000:.1f} ms (engine compute median "
                     f"{statistics.median(computed) * 1000:.1f} ms)"))
        phase(f"40 switches T={t}")
        switch_to(2, 0)
        arrows = [press_right() for _ in range(20)]
        med = statistics.median(arrows) * 1000
        figures[f"arrow_ms_{t}"] = med
        rows.append((f"Right arrow T={t}, one press every {PACE_S * 1000:.0f} ms (median of 20)",
                     f"{med:.1f} ms (min {min(arrows) * 1000:.1f}, max {max(arrows) * 1000:.1f})"))
        phase(f"20 arrow presses T={t}")

    view.tabs.setCurrentIndex(1)  # the grid computes while its tab is shown
    run(256)
    wait_until(lambda: len(view.overviews) == window.info.num_layers and not host.busy, 300)
    grid_s = time.perf_counter() - arrived[-1]
    figures["grid_s_256"] = grid_s
    rows.append(("grid of 270 heads, T=256, after the run", f"{grid_s:.2f} s"))
    phase("grid T=256")
    view.tabs.setCurrentIndex(0)

    wall = run(8192)
    phase("run T=8192")
    trace = window.trace
    forward = trace.timings.get("forward_s", float("nan"))
    long_head = switch_to(15, 4)
    phase("one head T=8192")
    cap = trace.attention
    eager_gb = cap.full_bytes() / 1e9
    rss = peak_rss_gb(host.engine_pid)
    beat.stop()
    stall, attention_stall = worst_stall
    figures.update(app="attention-only" if only else "whole", long_tokens=trace.num_tokens, long_forward_s=forward,
                   long_head_s=long_head, long_rss_gb=rss, eager_would_need_gb=eager_gb, gui_stall_ms=stall,
                   attention_stall_ms=attention_stall)
    rows += [
        ("long text tokens", trace.num_tokens),
        ("forward with capture, T=8192", f"{forward:.1f} s (run to drawn {wall:.1f} s)"),
        ("show one new head, T=8192", f"{long_head:.2f} s (block {view.head_panel.shown.block})"),
        ("peak RSS of the whole app (window + engine)", f"{rss:.2f} GB"),
        ("a full eager attention tensor", f"{eager_gb:.1f} GB"),
        ("longest GUI stall (heartbeat), whole script", f"{stall:.0f} ms"),
        ("  after the load: runs, switches, grid, T=8192", f"{attention_stall:.0f} ms"),
    ]
    table(phases, "Phases")
    table(rows, "Attention explorer (bundled:smollm2, offscreen, " + ("attention dock only" if only else "whole app")
          + f"; {os.cpu_count()} CPUs)")
    window.close()
    host.shutdown()
    QApplication.processEvents()
    result_line("attention", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
