"""Faults a user meets in the window: hostile files opened as text, a hostile model loaded over a
good one. The window keeps running, says what went wrong, and keeps what the user had."""

from __future__ import annotations

import os
import time

import pytest

from llmviz.core.specs import ModelSpec


def load(qtbot, window, source: str) -> None:
    with qtbot.waitSignal(window.host.sig_trace, timeout=120_000):
        window.load_model(ModelSpec(source, device="cpu"))
    qtbot.waitUntil(lambda: not window.host.busy, timeout=120_000)


@pytest.mark.parametrize("source", ["/dev/zero", "fifo-without-writer", "folder"])
def test_opening_a_hostile_file_keeps_the_window_and_the_text(qtbot, window, tmp_path, source):
    path = {"/dev/zero": "/dev/zero", "folder": str(tmp_path)}.get(source, str(tmp_path / "fifo"))
    if source == "fifo-without-writer":
        os.mkfifo(path)
    window.set_text("what the user typed")
    started = time.monotonic()
    window.open_text_file(path)
    assert time.monotonic() - started < 0.5  # the read runs beside the event loop
    qtbot.waitUntil(lambda: window.message_bar.level == "error", timeout=15_000)
    assert window.text_input.text() == "what the user typed"
    assert "Traceback" not in window.message_bar.text


def test_a_hostile_model_after_a_good_one_keeps_the_good_one(qtbot, window, patched_model, tiny_models):
    load(qtbot, window, str(tiny_models["gpt2"]))
    hostile = patched_model("llama", num_hidden_layers=10**9)
    window.load_model(ModelSpec(str(hostile), device="cpu"))
    qtbot.waitUntil(lambda: window.message_bar.level == "error", timeout=60_000)
    assert "tiny-gpt2" in window.message_bar.text or "Still using" in window.message_bar.text
    assert window.info is not None and window.info.num_layers == 2
    with qtbot.waitSignal(window.host.sig_trace, timeout=60_000) as trace:
        window.run_text("The model is still usable")
    assert trace.args[0].num_tokens > 0
