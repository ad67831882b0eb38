"""The worker thread: real loads and runs off the GUI thread, stale results, cancel, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from llmviz.core.specs import ModelSpec
from llmviz.workers.model_host import LOAD, Job, ModelHost


def record_thread(session, ctx):  # a job target (called on the worker)
    return threading.current_thread() is threading.main_thread()


def slow_steps(session, ctx, steps: int = 200):
    for i in range(steps):
        ctx.progress("stepping", i / steps)
        time.sleep(0.01)
    return steps


def allocate_too_much(session, ctx, library: str = "torch"):
    """A real allocation failure: ask torch's CPU allocator (or numpy) for 128 TiB at once."""
    if library == "numpy":
        import numpy as np

        return np.empty(1 << 47, dtype=np.uint8)
    import torch

    return torch.empty(1 << 47, dtype=torch.uint8)


def load(qtbot, host: ModelHost, source: str, timeout: int = 120_000):
    with qtbot.waitSignal(host.sig_finished, timeout=timeout, check_params_cb=lambda o: o.channel == LOAD) as blocker:
        host.load(ModelSpec(source, device="cpu"))
    return blocker.args[0]


def test_jobs_run_on_the_worker_thread(qtbot, host):
    with qtbot.waitSignal(host.sig_finished, timeout=30_000) as blocker:
        host.call("test.thread", "tests.workers.test_model_host.record_thread")
    assert blocker.args[0].ok and blocker.args[0].value is False  # not the main (GUI) thread


def test_results_arriving_together_reach_the_gui_one_per_event_loop_turn(qtbot, host):
    """Two results posted together are handed on in order, each in its own turn of the event
    loop, so paints and timers run between their (possibly long) drawing."""
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    got: list[str] = []
    host.sig_finished.connect(lambda o: got.append(o.channel))
    with qtbot.waitSignal(host.sig_finished, timeout=30_000):
        host.call("test.warm", "tests.workers.test_model_host.slow_steps", steps=1)  # the first job imports torch
    got.clear()
    host.call("test.a", "tests.workers.test_model_host.slow_steps", steps=1)
    host.call("test.b", "tests.workers.test_model_host.slow_steps", steps=1)
    time.sleep(0.5)  # the GUI thread is busy: both results are posted meanwhile
    QCoreApplication.sendPostedEvents(host)  # both arrive at the host ...
    assert got == [] and host.busy  # ... and none is handed on in the same turn
    turns: list[list[str]] = []
    tick = QTimer()
    tick.timeout.connect(lambda: turns.append(list(got)))
    tick.start(0)
    loop = QEventLoop()
    QTimer.singleShot(300, loop.quit)
    loop.exec()
    tick.stop()
    assert got == ["test.a", "test.b"] and not host.busy
    assert ["test.a"] in turns  # a turn of the loop ran between the two


def test_load_then_run(qtbot, host, tiny_models):
    outcome = load(qtbot, host, str(tiny_models["llama"]))
    assert outcome.ok and outcome.value.num_layers == 3
    with qtbot.waitSignal(host.sig_trace, timeout=30_000) as blocker:
        host.run_text("The cat sat")
    trace = blocker.args[0]
    assert trace.text == "The cat sat" and trace.num_tokens == 3


def test_only_the_newest_run_is_delivered(qtbot, host, tiny_models):
    load(qtbot, host, str(tiny_models["llama"]))
    received = []
    host.sig_trace.connect(lambda t: received.append(t.text))
    for text in ("one", "one two", "one two three"):
        host.run_text(text)
    qtbot.waitUntil(lambda: not host.busy, timeout=30_000)
    assert received == ["one two three"]


def test_failed_load_keeps_the_model_usable(qtbot, host, tiny_models):
    load(qtbot, host, str(tiny_models["llama"]))
    outcome = load(qtbot, host, str(tiny_models["llama"] / "missing"))
    assert outcome.status == "failed" and "No such folder" in outcome.message
    with qtbot.waitSignal(host.sig_trace, timeout=30_000) as blocker:
        host.run_text("still here")
    assert blocker.args[0].model_source == str(tiny_models["llama"])


def test_cancel_a_running_job(qtbot, host):
    host.sig_progress.connect(lambda e: host.cancel("test.slow") if e.progress.fraction and e.progress.fraction > 0.05 else None)
    with qtbot.waitSignal(host.sig_finished, timeout=30_000) as blocker:
        host.call("test.slow", "tests.workers.test_model_host.slow_steps")
    assert blocker.args[0].status == "cancelled"


def test_background_work_is_not_busy_and_gives_way_to_any_request(qtbot, host):
    """A background job leaves the host idle (no progress bar, waits end) and is cancelled
    by the next ordinary request, which then runs at once instead of after it."""
    busy = []
    host.sig_busy.connect(busy.append)
    outcomes = []
    host.sig_finished.connect(outcomes.append)
    host.call_background("test.background", "tests.workers.test_model_host.slow_steps", steps=500)  # ~5 s
    assert not host.busy and busy == []
    qtbot.wait(100)  # it is running now
    started = time.perf_counter()
    with qtbot.waitSignal(host.sig_finished, timeout=10_000, check_params_cb=lambda o: o.channel == "test.quick"):
        host.call("test.quick", "tests.workers.test_model_host.slow_steps", steps=1)
    assert time.perf_counter() - started < 2.0
    assert busy == [True, False]
    background = [o for o in outcomes if o.channel == "test.background"]
    assert [o.status for o in background] == ["cancelled"]
    assert outcomes.index(background[0]) < [o.channel for o in outcomes].index("test.quick")


def test_cancel_a_load_midway(qtbot, host, tiny_models):
    def on_progress(event):
        if event.channel == LOAD and event.progress.stage.startswith("Loading weights"):
            host.cancel(LOAD)

    host.sig_progress.connect(on_progress)
    outcome = load(qtbot, host, str(tiny_models["llama"]))
    assert outcome.status == "cancelled"


def test_loading_a_model_while_a_run_is_in_flight(qtbot, host, tiny_models):
    load(qtbot, host, str(tiny_models["llama"]))
    traces = []
    host.sig_trace.connect(traces.append)
    host.call("test.slow", "tests.workers.test_model_host.slow_steps", steps=30)  # keeps the worker busy
    host.run_text("a run for the old model")
    with qtbot.waitSignal(host.sig_model_loaded, timeout=60_000) as blocker:
        host.load(ModelSpec(str(tiny_models["bert"]), device="cpu"))
    assert blocker.args[0].architecture == "BertModel"
    qtbot.waitUntil(lambda: not host.busy, timeout=30_000)
    assert traces == []  # the old model's run was cancelled, not delivered after the new load
    with qtbot.waitSignal(host.sig_trace, timeout=30_000) as blocker:
        host.run_text("now the encoder")
    assert blocker.args[0].labels()[0] == "[CLS]"


def test_errors_in_jobs_become_messages(qtbot, host):
    with qtbot.waitSignal(host.sig_finished, timeout=30_000) as blocker:
        host.call("test.missing", "llmviz.core.jobs.run_text", text="no model yet")
    outcome = blocker.args[0]
    assert outcome.status == "failed" and outcome.message == "No model is loaded yet."


@pytest.mark.parametrize("library", ["torch", "numpy"])
def test_running_out_of_memory_is_a_message_and_the_model_stays(qtbot, host, tiny_models, library):
    load(qtbot, host, str(tiny_models["llama"]))
    with qtbot.waitSignal(host.sig_finished, timeout=30_000, check_params_cb=lambda o: o.channel == "test.oom") as blocker:
        host.call("test.oom", "tests.workers.test_model_host.allocate_too_much", label="Running the model", library=library)
    outcome = blocker.args[0]
    assert outcome.status == "failed"
    assert outcome.message.startswith("Running the model: out of memory") and "alloc_cpu" not in outcome.message
    if library == "torch":
        assert "128.0 GiB" not in outcome.message and "131,072.0 GiB" in outcome.message
    with qtbot.waitSignal(host.sig_trace, timeout=30_000) as ran:
        host.run_text("still loaded")
    assert ran.args[0].model_source == str(tiny_models["llama"])


def test_shutdown_during_a_job_is_quick(qtbot):
    host = ModelHost()
    with qtbot.waitSignal(host.sig_started, timeout=10_000):
        host.submit(Job("test.slow", "tests.workers.test_model_host.slow_steps", {"steps": 1000}))
    started = time.perf_counter()
    assert host.shutdown(2000)
    assert time.perf_counter() - started < 2.0
    assert not host.thread_running()


@pytest.mark.slow
def test_shutdown_during_a_real_load_is_quick(qtbot, tmp_path, monkeypatch):
    """Closing while the bundled GGUF converts (the longest load there is) stops within 2 s."""
    monkeypatch.setenv("LLMVIZ_CACHE_DIR", str(tmp_path))  # empty cache: forces the ~25 s conversion
    host = ModelHost()
    with qtbot.waitSignal(host.sig_progress, timeout=60_000, check_params_cb=lambda e: "Converting" in e.progress.stage or "First use" in e.progress.stage):
        host.load(ModelSpec("bundled:smollm2", device="cpu"))
    started = time.perf_counter()
    assert host.shutdown(2000)
    assert time.perf_counter() - started < 2.0
