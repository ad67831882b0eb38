"""Costs of the timeline, scaling and environment docks on the GUI thread, and GUI stalls while they run.

Measures: reading and checking resources/timeline.csv; a full timeline redraw (points,
labels laid out without overlaps); one scaling-slider step (four plots); one environment
timer tick (RSS read + plot update) with an hour of samples; a run-log redraw after 50
runs; and, with a real bundled SmolLM2 loading and running while the environment dock
samples every second, the GUI's longest stall (10 ms heartbeat).

Run: python bench/timeline_env.py
"""

from __future__ import annotations

import os
import statistics
import time

from _common import Heartbeat, result_line, table, wait_until


def timed_ms(fn, repeat: int) -> tuple[float, float]:
    """Median and worst milliseconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times)


def main() -> None:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    from llmviz.core.environment import RunRecord, process_rss
    from llmviz.core.specs import ModelSpec
    from llmviz.core.timeline import load_timeline
    from llmviz.views.environment import EnvironmentView
    from llmviz.views.scaling import ScalingView
    from llmviz.views.timeline import TimelineView
    from llmviz.workers.model_host import ModelHost

    host = ModelHost()
    csv_ms, _ = timed_ms(load_timeline, 20)

    timeline = TimelineView(host)
    timeline.resize(1200, 700)
    timeline.show()
    wait_until(lambda: timeline.timeline is not None)
    app.processEvents()
    redraw_ms, redraw_worst = timed_ms(timeline.redraw, 20)

    scaling = ScalingView(host)
    scaling.resize(1200, 700)
    scaling.show()
    app.processEvents()
    values = [scaling.n_slider.slider.minimum() + i * 7 for i in range(100)]
    steps = iter(values * 2)
    step_ms, step_worst = timed_ms(lambda: scaling.n_slider.slider.setValue(next(steps)), 100)

    env = EnvironmentView(host)
    env.resize(1200, 700)
    env.show()
    app.processEvents()
    tick_ms, _ = timed_ms(env.sample, 20)
    now = time.perf_counter()
    env.rss.extend((now - 3600 + i, process_rss()) for i in range(3600))  # an hour of samples
    tick_full_ms, tick_full_worst = timed_ms(env.sample, 20)
    for i in range(50):
        record = RunRecord(1000 + i, "run", "Running the model", started_at=now + i, model="bench")
        record.finish("ok", 0.5, now + i + 0.5, now + i + 0.501, {"tokenize_s": 0.001, "forward_s": 0.45,
                                                                   "capture_s": 0.02})
        record.add_draw("attention", now + i + 0.502, now + i + 0.55)
        env.records[record.job_id] = record
    runlog_ms, _ = timed_ms(env.draw_run_log, 10)

    # A real load and run while the environment dock samples: how long does the GUI stall?
    env.records.clear()
    for view in (timeline, scaling, env):
        host.sig_model_loaded.connect(view.on_model_loaded)
        host.sig_trace.connect(view.on_trace)
    beat = Heartbeat()
    beat.start()
    started = time.perf_counter()
    host.load(ModelSpec("bundled:smollm2", device="cpu"))
    wait_until(lambda: env.info is not None and not host.busy, 600)
    host.run_text("The quick brown fox jumps over the lazy dog. " * 20)
    wait_until(lambda: any(r.kind == "run" and r.status == "ok" for r in env.records.values()) and not host.busy, 600)
    for _ in range(3):  # three more timer ticks with the model in memory
        deadline = time.perf_counter() + 1.05
        wait_until(lambda deadline=deadline: time.perf_counter() > deadline)
    worst_stall = beat.stop()
    run = next(r for r in env.records.values() if r.kind == "run")
    samples = len(env.rss)
    elapsed = time.perf_counter() - started
    env.on_close()
    host.shutdown(10_000)

    table([
        ("timeline.csv read + checked (median)", f"{csv_ms:.1f} ms"),
        ("timeline redraw (median / worst)", f"{redraw_ms:.1f} / {redraw_worst:.1f} ms"),
        ("scaling slider step (median / worst)", f"{step_ms:.2f} / {step_worst:.2f} ms"),
        ("environment tick, few samples", f"{tick_ms:.2f} ms"),
        ("environment tick, 3600 samples (median / worst)", f"{tick_full_ms:.2f} / {tick_full_worst:.2f} ms"),
        ("run-log redraw, 50 runs", f"{runlog_ms:.1f} ms"),
        ("SmolLM2 load + run while sampling", f"{elapsed:.1f} s, {samples} RSS samples"),
        ("longest GUI stall meanwhile (10 ms heartbeat)", f"{worst_stall:.0f} ms"),
        ("that run: forward / transfer / draw", f"{run.phases['forward'] * 1000:.0f} / {run.transfer_s * 1000:.1f} / "
                                                f"{(run.draw_s or 0) * 1000:.0f} ms"),
    ], f"Timeline, scaling and environment docks ({os.cpu_count()} CPUs)")
    result_line("timeline_env", {
        "csv_load_ms": csv_ms, "timeline_redraw_ms": redraw_ms, "scaling_step_ms": step_ms,
        "env_tick_ms": tick_full_ms, "runlog_draw_ms": runlog_ms, "load_run_worst_stall_ms": worst_stall,
        "transfer_ms": run.transfer_s * 1000,
    })


if __name__ == "__main__":
    main()
