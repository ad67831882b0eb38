"""The engine process seen through ModelHost: real loads and runs in another process,
stale results, cancel, partial results, crashes and recovery, model switches, shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from llmviz.core import targets
from llmviz.core.specs import ModelSpec
from llmviz.workers.model_host import LOAD, ModelHost

from ..engine_jobs import ABORT, ALLOCATE_TOO_MUCH, BIG_ARRAY, NATIVE_SLEEP, PARTIALS, SEGFAULT, SLOW_STEPS, WHERE
from ..timeouts import WAIT_MS


def load(qtbot, host: ModelHost, source: str, timeout: int = WAIT_MS):
    with qtbot.waitSignal(host.sig_finished, timeout=timeout, check_params_cb=lambda o: o.channel == LOAD) as blocker:
        host.load(ModelSpec(source, device="cpu"))
    return blocker.args[0]


def call(qtbot, host: ModelHost, target: str, timeout: int = WAIT_MS, **kwargs):
    """Run one job and return its outcome."""
    got = []
    host.call(target, on_done=got.append, **kwargs)
    qtbot.waitUntil(lambda: bool(got), timeout=timeout)
    return got[0]


def run(qtbot, host: ModelHost, text: str):
    with qtbot.waitSignal(host.sig_trace, timeout=WAIT_MS) as blocker:
        host.run_text(text)
    return blocker.args[0]


def engine_events(host: ModelHost) -> list:
    events: list = []
    host.sig_engine.connect(events.append)
    return events


def gone(pid: int, timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


# -- the process and its jobs -----------------------------------------------------------------
def test_jobs_run_in_a_child_engine_process(qtbot, host):
    outcome = call(qtbot, host, WHERE)
    pid, parent, main_thread = outcome.value
    assert outcome.ok and pid == host.engine_pid and pid != os.getpid() and parent == os.getpid() and main_thread


def test_every_target_names_a_job_function():
    """Each constant in core/targets.py resolves, in a fresh process, to a function taking
    (session, ctx, **kwargs): a renamed job fails here, not in front of a user."""
    code = textwrap.dedent("""
        import inspect
        from llmviz.core import targets
        from llmviz.core.engine import resolve
        names = targets.all_targets()
        for name, path in names.items():
            params = list(inspect.signature(resolve(path)).parameters)
            assert params[:2] == ["session", "ctx"], (name, params)
        print(len(names))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 30


def test_results_arriving_together_reach_the_gui_one_per_event_loop_turn(qtbot, host):
    """Two results that arrive together are handed on in order, each in its own turn of the
    event loop, so paints and timers run between their (possibly long) drawing."""
    from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

    call(qtbot, host, SLOW_STEPS, steps=1)  # the engine is up
    got: list[str] = []
    host.call(SLOW_STEPS, channel="a", on_done=lambda o: got.append("a"), steps=1)
    host.call(SLOW_STEPS, channel="b", on_done=lambda o: got.append("b"), steps=1)
    time.sleep(0.8)  # the GUI thread is busy: both results arrive meanwhile
    QCoreApplication.sendPostedEvents()
    assert got == [] and host.busy  # none is handed on in the same turn as their arrival
    turns: list[list[str]] = []
    tick = QTimer()
    tick.timeout.connect(lambda: turns.append(list(got)))
    tick.start(0)
    loop = QEventLoop()
    QTimer.singleShot(300, loop.quit)
    loop.exec()
    tick.stop()
    assert got == ["a", "b"] and not host.busy
    assert ["a"] in turns  # a turn of the loop ran between the two


def test_big_arrays_cross_intact(qtbot, host):
    outcome = call(qtbot, host, BIG_ARRAY, mib=64)
    value = outcome.value
    assert value.shape == (16 * 2**20,) and float(value[-1]) == 16 * 2**20 - 1 and value.flags.writeable


def test_partial_results_come_before_the_final_one(qtbot, host):
    seen: list = []
    host.call(PARTIALS, on_partial=lambda v: seen.append(("partial", v)), on_done=lambda o: seen.append(("done", o.value)),
              count=3)
    qtbot.waitUntil(lambda: len(seen) == 4, timeout=WAIT_MS)
    assert seen == [("partial", 0), ("partial", 1), ("partial", 2), ("done", 3)]


def test_supersede_drops_the_older_job_and_supersede_false_keeps_both(qtbot, host):
    call(qtbot, host, SLOW_STEPS, steps=1)
    got: list = []
    host.call(SLOW_STEPS, channel="lane", on_done=lambda o: got.append(("old", o.status)), steps=30)
    host.call(SLOW_STEPS, channel="lane", on_done=lambda o: got.append(("new", o.status)), steps=1)
    qtbot.waitUntil(lambda: not host.busy, timeout=WAIT_MS)
    assert got == [("new", "ok")]
    got.clear()
    for i in range(3):
        host.call(SLOW_STEPS, channel="lane", supersede=False, on_done=lambda o, i=i: got.append((i, o.status)), steps=2)
    qtbot.waitUntil(lambda: not host.busy, timeout=WAIT_MS)
    assert got == [(0, "ok"), (1, "ok"), (2, "ok")]
    handle = host.call(SLOW_STEPS, on_done=lambda o: got.append("dropped"), steps=30)
    handle.cancel()
    qtbot.waitUntil(lambda: not host.busy, timeout=WAIT_MS)
    assert "dropped" not in got and not handle.is_current


def test_load_then_run(qtbot, host, tiny_models):
    outcome = load(qtbot, host, str(tiny_models["llama"]))
    assert outcome.ok and outcome.value.num_layers == 3
    trace = run(qtbot, host, "The cat sat")
    assert trace.text == "The cat sat" and trace.num_tokens == 3
    assert trace.attention.num_layers == 3 and not hasattr(trace, "hidden_states")  # the arrays stayed in the engine


def test_only_the_newest_run_is_delivered(qtbot, host, tiny_models):
    load(qtbot, host, str(tiny_models["llama"]))
    received = []
    host.sig_trace.connect(lambda t: received.append(t.text))
    for text in ("one", "one two", "one two three"):
        host.run_text(text)
    qtbot.waitUntil(lambda: not host.busy, timeout=WAIT_MS)
    assert received == ["one two three"]


def test_cancel_a_running_job(qtbot, host):
    host.sig_progress.connect(lambda e: host.cancel(SLOW_STEPS) if e.progress.fraction and e.progress.fraction > 0.05 else None)
    outcome = call(qtbot, host, SLOW_STEPS)
    assert outcome.status == "cancelled"


def test_background_work_is_not_busy_and_gives_way_to_any_request(qtbot, host):
    """A background job leaves the host idle and is cancelled by the next ordinary request,
    which then runs at once instead of after it."""
    call(qtbot, host, SLOW_STEPS, steps=1)
    busy = []
    host.sig_busy.connect(busy.append)
    background = []
    host.call(SLOW_STEPS, channel="bg", background=True, on_done=background.append, steps=500)  # ~5 s
    assert not host.busy and busy == []
    qtbot.wait(200)  # it is running now
    started = time.perf_counter()
    call(qtbot, host, SLOW_STEPS, channel="quick", steps=1)
    assert time.perf_counter() - started < 2.0
    assert busy == [True, False] and background == []  # cancelled and dropped


def test_errors_in_jobs_become_messages(qtbot, host):
    outcome = call(qtbot, host, targets.RUN_TEXT, text="no model yet")
    assert outcome.status == "failed" and outcome.message == "No model is loaded yet."


@pytest.mark.parametrize("library", ["torch", "numpy"])
def test_running_out_of_memory_is_a_message_and_the_model_stays(qtbot, host, tiny_models, library):
    load(qtbot, host, str(tiny_models["llama"]))
    outcome = call(qtbot, host, ALLOCATE_TOO_MUCH, label="Running the model", library=library)
    assert outcome.status == "failed"
    assert outcome.message.startswith("Running the model: out of memory") and "alloc_cpu" not in outcome.message
    if library == "torch":
        assert "131,072.0 GiB" in outcome.message
    assert run(qtbot, host, "still loaded").model_source == str(tiny_models["llama"])


# -- loads and switches ---------------------------------------------------------------------------
def test_a_new_model_loads_in_a_fresh_engine_and_the_old_one_ends(qtbot, host, tiny_models):
    load(qtbot, host, str(tiny_models["llama"]))
    first = host.engine_pid
    outcome = load(qtbot, host, str(tiny_models["bert"]))
    assert outcome.ok and outcome.value.architecture == "BertModel"
    assert host.engine_pid != first and gone(first)  # its memory went back with the process
    assert run(qtbot, host, "now the encoder").labels()[0] == "[CLS]"


def test_failed_load_keeps_the_model_and_its_engine(qtbot, host, tiny_models):
    load(qtbot, host, str(tiny_models["llama"]))
    pid = host.engine_pid
    outcome = load(qtbot, host, str(tiny_models["llama"] / "missing"))
    assert outcome.status == "failed" and "No such folder" in outcome.message
    assert host.engine_pid == pid
    assert run(qtbot, host, "still here").model_source == str(tiny_models["llama"])


def test_cancelling_a_switch_ends_the_new_engine_at_once(qtbot, host, tiny_models):
    load(qtbot, host, str(tiny_models["llama"]))
    pid = host.engine_pid
    host.load(ModelSpec(str(tiny_models["bert"]), device="cpu"))
    pending = [p for p in host.engine_pids() if p != pid]
    with qtbot.waitSignal(host.sig_finished, timeout=10_000, check_params_cb=lambda o: o.channel == LOAD) as blocker:
        host.cancel(LOAD)
    assert blocker.args[0].status == "cancelled" and host.engine_pid == pid
    assert pending and gone(pending[0])
    assert run(qtbot, host, "the old model").model_source == str(tiny_models["llama"])


def test_cancel_the_first_load_midway(qtbot, host, tiny_models):
    def on_progress(event):
        if event.channel == LOAD and event.progress.stage.startswith("Loading weights"):
            host.cancel(LOAD)

    host.sig_progress.connect(on_progress)
    assert load(qtbot, host, str(tiny_models["llama"])).status == "cancelled"


def test_an_engine_killed_while_loading_the_next_model_leaves_the_current_one(qtbot, host, tiny_models):
    """The OOM killer taking the fresh engine of a big model: the load fails with the reason,
    the model that was loaded stays."""
    load(qtbot, host, str(tiny_models["llama"]))
    pid = host.engine_pid
    host.load(ModelSpec(str(tiny_models["bert"]), device="cpu"))
    pending = next(p for p in host.engine_pids() if p != pid)
    with qtbot.waitSignal(host.sig_finished, timeout=WAIT_MS, check_params_cb=lambda o: o.channel == LOAD) as blocker:
        os.kill(pending, signal.SIGKILL)
    outcome = blocker.args[0]
    assert outcome.status == "failed" and "SIGKILL" in outcome.message and host.engine_pid == pid
    assert run(qtbot, host, "the old model").model_source == str(tiny_models["llama"])


# -- crashes and recovery -------------------------------------------------------------------------
@pytest.mark.parametrize("how,words", [("sigkill", "SIGKILL"), ("abort", "SIGABRT"), ("segfault", "SIGSEGV")])
def test_a_dead_engine_is_reported_restarted_and_its_model_reloaded(qtbot, host, tiny_models, how, words):
    load(qtbot, host, str(tiny_models["llama"]))
    old = host.engine_pid
    events = engine_events(host)
    with qtbot.waitSignal(host.sig_model_loaded, timeout=WAIT_MS):
        if how == "sigkill":
            host.call(SLOW_STEPS, steps=1000)
            qtbot.waitUntil(lambda: host.running_job() is not None, timeout=WAIT_MS)
            os.kill(old, signal.SIGKILL)
        else:
            host.call(ABORT if how == "abort" else SEGFAULT)
    died = [e for e in events if e.state == "died"]
    assert len(died) == 1 and words in died[0].message and "Reloading" in died[0].message
    assert host.engine_pid != old and gone(old)
    qtbot.waitUntil(lambda: any(e.state == "recovered" for e in events), timeout=WAIT_MS)
    assert run(qtbot, host, "after the crash").model_source == str(tiny_models["llama"])


def test_dying_again_while_recovering_stops_the_loop(qtbot, host, tiny_models):
    load(qtbot, host, str(tiny_models["llama"]))
    events = engine_events(host)
    host.call(ABORT)
    qtbot.waitUntil(lambda: any(e.state == "died" for e in events), timeout=WAIT_MS)
    second = host.engine_pid  # the new engine, now reloading the model: kill it too
    os.kill(second, signal.SIGKILL)
    qtbot.waitUntil(lambda: any(e.state == "failed" for e in events), timeout=WAIT_MS)
    failed = next(e for e in events if e.state == "failed")
    assert "stopped again while reloading" in failed.message
    assert host.engine_pid not in (None, second)
    assert call(qtbot, host, targets.RUN_TEXT, text="x").message == "No model is loaded yet."  # nothing reloaded


def test_a_job_stuck_in_native_code_is_ended_by_restarting_the_engine(qtbot, host, tiny_models):
    """Cancel cannot reach a job inside one long C call; restarting the engine ends it at once
    and brings the model back."""
    load(qtbot, host, str(tiny_models["llama"]))
    old = host.engine_pid
    stuck = []
    host.call(NATIVE_SLEEP, on_done=stuck.append, seconds=60)
    qtbot.waitUntil(lambda: host.running_job() is not None, timeout=WAIT_MS)
    host.cancel_all()
    qtbot.wait(2000)
    assert host.running_job() is not None and stuck == []  # still inside sleep()
    started = time.perf_counter()
    with qtbot.waitSignal(host.sig_model_loaded, timeout=WAIT_MS):
        host.restart_engine()
    assert gone(old, 2.0) and time.perf_counter() - started < 30
    assert not host.busy or host.running_job() is None
    assert run(qtbot, host, "back").model_source == str(tiny_models["llama"])


def test_an_engine_that_cannot_start_names_the_damaged_package(qtbot, tiny_models, tmp_path, monkeypatch):
    fake = tmp_path / "site" / "kernels"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise FileNotFoundError('Cannot load dependency data')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    host = ModelHost()
    try:
        events = engine_events(host)
        outcome = load(qtbot, host, str(tiny_models["llama"]))
        assert outcome.status == "failed" and "'kernels'" in outcome.message
        assert "the package is incomplete or damaged" in outcome.message
        assert [e.state for e in events][-1] == "failed"
    finally:
        host.shutdown()


# -- ending -------------------------------------------------------------------------------------------
def test_shutdown_during_a_job_is_quick_and_leaves_no_process(qtbot):
    host = ModelHost()
    host.call(SLOW_STEPS, steps=1000)
    qtbot.waitUntil(lambda: host.running_job() is not None, timeout=WAIT_MS)
    pid = host.engine_pid
    started = time.perf_counter()
    host.shutdown(2000)
    assert time.perf_counter() - started < 2.0
    assert not host.thread_running() and gone(pid, 0.5)


@pytest.mark.slow
def test_shutdown_during_a_real_load_is_quick(qtbot, tmp_path, monkeypatch):
    """Closing while the bundled GGUF converts (the longest load there is) stops within 2 s,
    the converter child included."""
    monkeypatch.setenv("LLMVIZ_CACHE_DIR", str(tmp_path))  # empty cache: forces the ~25 s conversion
    host = ModelHost()
    converting = lambda e: "onvert" in e.progress.stage or "First use" in e.progress.stage  # noqa: E731
    with qtbot.waitSignal(host.sig_progress, timeout=WAIT_MS, check_params_cb=converting):
        host.load(ModelSpec("bundled:smollm2", device="cpu"))
    family = [host.engine_pid] + [c.pid for c in psutil.Process(host.engine_pid).children(recursive=True)]
    started = time.perf_counter()
    host.shutdown(2000)
    assert time.perf_counter() - started < 2.0
    assert all(gone(pid, 2.0) for pid in family)


def test_the_engine_ends_when_the_window_process_is_killed(tmp_path):
    """SIGKILL of the GUI process: the engine notices (parent-death signal, socket end) and exits."""
    code = textwrap.dedent("""
        import os, sys, time
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from llmviz.workers.model_host import ModelHost
        host = ModelHost()
        deadline = time.time() + 120
        while not host.engine_ready and time.time() < deadline:
            app.processEvents()
            time.sleep(0.02)
        print(host.engine_pid, flush=True)
        time.sleep(600)
    """)
    gui = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        engine = int(gui.stdout.readline())
        assert psutil.pid_exists(engine)
        gui.kill()
        gui.wait()
        assert gone(engine, 2.0)
    finally:
        gui.kill()
