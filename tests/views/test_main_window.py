"""The main window end to end with real (tiny) models: docks, layout, messages, bad input."""

from __future__ import annotations

import time

import psutil
from PySide6.QtWidgets import QDockWidget

from llmviz.core.specs import ModelSpec
from llmviz.core.targets import TOKENIZERS_COMPARE, TOKENIZERS_WARM
from llmviz.views import VIEWS

from ..engine_jobs import SLOW_STEPS


def load(qtbot, window, source, timeout=120_000):
    with qtbot.waitSignal(window.host.sig_trace, timeout=timeout):
        window.load_model(ModelSpec(source, device="cpu"))
    qtbot.waitUntil(lambda: not window.host.busy, timeout=timeout)


def test_docks_are_registered_with_stable_names(window):
    names = [v.NAME for v in VIEWS]
    assert {"attention", "model-tree"} <= set(names)
    assert len(names) == len(set(names))
    for name in names:
        dock = window.findChild(QDockWidget, name)
        view = window.view(name)  # built on first use
        assert dock is not None and dock.widget() is view
        assert name == name.lower() and " " not in name
    view_menu = [a.objectName() for a in window.menuBar().actions()[1].menu().actions()]
    assert all(f"view-{n}" in view_menu for n in names)


def test_load_and_run_updates_window_and_views(qtbot, window, tiny_models):
    window.set_text("The cat sat on the mat")
    load(qtbot, window, str(tiny_models["llama"]))
    assert window.info.num_layers == 3
    assert "tiny-llama" in window.windowTitle()
    assert "6 tokens" in window.text_input.notice.text()
    qtbot.waitUntil(lambda: window.view("attention").is_ready(), timeout=30_000)


def test_typing_reruns_after_a_pause(qtbot, window, tiny_models):
    load(qtbot, window, str(tiny_models["llama"]))
    with qtbot.waitSignal(window.host.sig_trace, timeout=10_000) as blocker:
        window.text_input.editor.setPlainText("A new sentence")
    assert blocker.args[0].text == "A new sentence"


def test_bad_model_keeps_the_loaded_one(qtbot, window, tiny_models):
    load(qtbot, window, str(tiny_models["llama"]))
    before = window.info
    with qtbot.waitSignal(window.host.sig_finished, timeout=30_000, check_params_cb=lambda o: o.channel == "load"):
        window.load_model(ModelSpec(str(tiny_models["llama"].parent / "no-such-model"), device="cpu"))
    assert window.message_bar.isVisible() and window.message_bar.level == "error"
    assert "No such folder" in window.message_bar.text and "Still using tiny-llama" in window.message_bar.text
    assert window.info is before
    assert window.model_bar.spec().source == str(tiny_models["llama"])  # picker shows what is loaded
    with qtbot.waitSignal(window.host.sig_trace, timeout=10_000):
        window.run_text("still usable")


def test_empty_text_shows_an_empty_state(qtbot, window, tiny_models):
    window.set_text("")
    load(qtbot, window, str(tiny_models["llama"]))
    attention = window.view("attention")
    assert attention.is_ready() and "Type some text" in attention.message_text
    assert "No tokens" in window.text_input.notice.text()


def test_long_text_is_truncated_with_a_notice(qtbot, window, tiny_models):
    window.set_text(("word " * 300).strip())
    load(qtbot, window, str(tiny_models["llama"]))
    assert window.trace.num_tokens == 64 and window.trace.truncated_from == 300
    notice = window.text_input.notice.text()
    assert "300 tokens" in notice and "first 64" in notice


def test_non_utf8_text_file_is_refused_with_a_message(qtbot, window, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café".encode("latin-1"))
    window.set_text("what the user typed")
    window.open_text_file(str(bad))
    qtbot.waitUntil(lambda: window.message_bar.level == "error", timeout=10_000)
    assert "not UTF-8" in window.message_bar.text and "kept" in window.message_bar.text
    assert window.text_input.text() == "what the user typed"


def test_layout_is_saved_restored_and_reset(qtbot, host, tiny_models):
    from llmviz.app import make_settings
    from llmviz.main_window import MainWindow

    first = MainWindow(host, make_settings())
    qtbot.addWidget(first)
    first.show()
    first.docks["model-tree"].hide()
    first.save_layout()
    first.close()
    from llmviz.workers.model_host import ModelHost

    host2 = ModelHost()
    second = MainWindow(host2, make_settings())
    qtbot.addWidget(second)
    second.show()
    try:
        assert not second.docks["model-tree"].isVisible()
        second.reset_layout()
        assert second.docks["model-tree"].isVisible()
        second.save_layout()
    finally:
        second.close()
        host2.shutdown()


def test_about_lists_versions(window):
    text = window.about_text()
    for name in ("llmviz", "torch", "transformers", "Qt"):
        assert name in text


def test_progress_shows_for_long_work_only(qtbot, window):
    """A job under PROGRESS_DELAY_MS (a head switch) shows no progress bar; a long one
    shows its stage and a Cancel button while it runs, and they go once it is done."""
    from llmviz.main_window import PROGRESS_DELAY_MS

    qtbot.waitUntil(lambda: window.host.engine_ready, timeout=60_000)  # the engine's torch import is long
    qtbot.waitUntil(lambda: not window.progress.isVisibleTo(window), timeout=5_000)
    with qtbot.waitSignal(window.host.sig_finished, timeout=10_000):
        window.host.call(SLOW_STEPS, steps=2)  # ~20 ms
    assert not window.progress.isVisibleTo(window)
    assert not window.cancel_button.isVisibleTo(window)

    window.host.call(SLOW_STEPS, steps=150)  # ~1.5 s
    started = time.perf_counter()
    qtbot.waitUntil(lambda: window.progress.isVisibleTo(window), timeout=5_000)
    assert time.perf_counter() - started >= PROGRESS_DELAY_MS / 1000 * 0.9
    assert window.cancel_button.isVisibleTo(window)
    assert window.progress_label.text().startswith("stepping")
    qtbot.waitUntil(lambda: not window.host.busy, timeout=10_000)
    qtbot.waitUntil(lambda: not window.progress.isVisibleTo(window), timeout=5_000)


def test_closing_during_a_run_exits_quickly(qtbot, window, tiny_models):
    load(qtbot, window, str(tiny_models["llama"]))
    window.host.call(SLOW_STEPS, steps=1000)
    window.run_text("queued behind the slow job")
    pid = window.host.engine_pid
    started = time.perf_counter()
    window.close()
    assert time.perf_counter() - started < 2.0
    assert not window.host.thread_running() and not psutil.pid_exists(pid)


def test_a_bad_first_model_shows_a_dialog_and_opens_the_default(qtbot, window, tiny_models):
    """`python -m llmviz --model typo` (or the packaged app): a dialog, then the default model."""
    from PySide6.QtWidgets import QMessageBox

    window.fallback_spec = ModelSpec(str(tiny_models["llama"]), device="cpu")
    with qtbot.waitSignal(window.host.sig_model_loaded, timeout=60_000) as blocker:
        window.load_model(ModelSpec(str(tiny_models["llama"].parent / "typo"), device="cpu"))
    assert blocker.args[0].source == str(tiny_models["llama"])
    dialog = window.findChild(QMessageBox, "loadFailedDialog")
    assert dialog is not None and dialog.isVisible()
    assert "No such folder" in dialog.text() and "Opening" in dialog.text()
    dialog.close()


def test_comparison_tokenizer_is_loaded_with_the_model_before_the_first_trace(qtbot, window, tiny_models):
    """The Tokens dock (visible by default) has its bundled GPT-2 tokenizer built right after the
    load, before the text runs: building it freezes the GUI (GIL) and belongs to the load."""
    assert window.views["tokens"].isVisible()
    started: list[str] = []
    window.host.sig_started.connect(lambda handle: started.append(handle.channel))
    window.set_text("The cat sat on the mat")
    load(qtbot, window, str(tiny_models["llama"]))
    assert TOKENIZERS_WARM in started and "trace" in started
    assert started.index(TOKENIZERS_WARM) < started.index("trace") < started.index(TOKENIZERS_COMPARE)
    qtbot.waitUntil(lambda: window.views["tokens"].is_ready(), timeout=30_000)
    assert window.views["tokens"].shown.second.name == "GPT-2 BPE (bundled)"


def test_after_the_engine_is_killed_every_view_comes_back_as_it_was(qtbot, window, tiny_models):
    """SIGKILL of the engine mid-session: the window says so, a new engine reloads the model,
    the text runs again and the attention view shows the same head as before."""
    import os
    import signal

    events = []
    window.host.sig_engine.connect(events.append)
    window.set_text("The cat sat on the mat and looked at the dog")
    load(qtbot, window, str(tiny_models["llama"]))
    view = window.view("attention")
    view.set_selection(2, 3)
    qtbot.waitUntil(lambda: view.is_ready() and view.head_panel.shown.layer == 2, timeout=60_000)
    shown = view.head_panel.heatmap.matrix.copy()
    old = window.host.engine_pid
    os.kill(old, signal.SIGKILL)
    qtbot.waitUntil(lambda: any(e.state == "recovered" for e in events), timeout=120_000)
    assert "SIGKILL" in window.message_bar.text or "restarted" in window.message_bar.text
    qtbot.waitUntil(lambda: not window.host.busy and view.is_ready() and view.head_panel.shown is not None
                    and (view.layer.value(), view.head.value()) == (2, 3) and view.head_panel.shown.layer == 2,
                    timeout=120_000)
    assert window.host.engine_pid != old
    assert (view.head_panel.shown.layer, view.head_panel.shown.head) == (2, 3)
    import numpy as np

    np.testing.assert_allclose(view.head_panel.heatmap.matrix, shown, atol=1e-6)  # the same weights, the same map


def test_closing_the_window_while_a_model_loads_leaves_no_process(qtbot, window, tiny_models):
    window.load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    pids = window.host.engine_pids()
    window.close()
    assert pids and not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids)
