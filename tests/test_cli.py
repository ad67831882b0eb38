"""The command line as users and scripts run it: screenshots, export, help, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1"}


def llmviz(*args: str, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "llmviz", *args], capture_output=True, text=True,
                          timeout=timeout, env=env or ENV)


def png_stats(path) -> tuple[int, int, float]:
    """Width, height and the standard deviation of grey levels (0 for a blank image)."""
    from PySide6.QtGui import QImage

    image = QImage(str(path)).convertToFormat(QImage.Format.Format_Grayscale8)
    ptr = image.constBits()
    arr = np.frombuffer(ptr, dtype=np.uint8, count=image.sizeInBytes()).reshape(image.height(), image.bytesPerLine())
    return image.width(), image.height(), float(arr[:, : image.width()].std())


def test_help_texts():
    for args in ([], ["export"]):
        result = llmviz(*args, "--help")
        assert result.returncode == 0
        assert "--model" in result.stdout and "--text-file" in result.stdout
    assert "--screenshot" in llmviz("--help").stdout and "--layers" in llmviz("export", "--help").stdout


def test_list_docks():
    result = llmviz("--list-docks")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert "attention" in names and "model-tree" in names


@pytest.mark.slow
def test_screenshot_of_the_bundled_model(tmp_path):
    out = tmp_path / "shot.png"
    result = llmviz("--model", "bundled:smollm2", "--text", "The cat sat on the mat", "--screenshot", str(out),
                    "--size", "1200x800")
    assert result.returncode == 0, result.stderr
    width, height, spread = png_stats(out)
    assert (width, height) == (1200, 800)
    assert spread > 20  # a real window with content, not a blank image


@pytest.mark.slow
def test_screenshot_of_one_dock(tmp_path, tiny_models):
    out = tmp_path / "attention.png"
    result = llmviz("--model", str(tiny_models["llama"]), "--text", "one two three", "--screenshot", str(out),
                    "--dock", "attention", "--size", "1000x700")
    assert result.returncode == 0, result.stderr
    width, height, spread = png_stats(out)
    assert 1000 <= width <= 1100 and height == 700 and spread > 10  # the dock alone at the shot's size (or its minimum width)


def test_screenshot_with_a_bad_model_fails_with_a_message(tmp_path):
    result = llmviz("--model", str(tmp_path / "nothing-here"), "--screenshot", str(tmp_path / "x.png"), timeout=120)
    assert result.returncode != 0
    assert "No such folder" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_unknown_dock_and_bad_text_file(tmp_path):
    result = llmviz("--dock", "nope", "--screenshot", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "no dock named 'nope'" in result.stderr
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"\xff\xfe\x00binary")
    result = llmviz("--text-file", str(bad), "--screenshot", str(tmp_path / "x.png"))
    assert result.returncode == 2 and "binary" in result.stderr


def test_export_writes_model_tokens_and_attention(tmp_path, tiny_models):
    out = tmp_path / "out"
    result = llmviz("export", "--model", str(tiny_models["llama"]), "--text", "The cat sat on the mat", "--out", str(out))
    assert result.returncode == 0, result.stderr
    model = json.loads((out / "model.json").read_text())
    for key in ("architecture", "num_parameters", "num_layers", "num_heads", "num_kv_heads", "hidden_size",
                "vocab_size", "dtype", "device"):
        assert key in model
    assert (model["num_layers"], model["num_heads"], model["num_kv_heads"]) == (3, 4, 2)
    tokens = pd.read_csv(out / "tokens.csv", keep_default_na=False)
    assert list(tokens.columns[:5]) == ["position", "token", "id", "start", "end"]
    assert tokens["text"].tolist() == ["The", " cat", " sat", " on", " the", " mat"]
    attention = np.load(out / "attention.npz")["attention"]
    assert attention.dtype == np.float32 and attention.shape == (3, 4, 6, 6)
    np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)


def test_export_selected_layers_and_bad_layers(tmp_path, tiny_models):
    out = tmp_path / "out"
    result = llmviz("export", "--model", str(tiny_models["llama"]), "--text", "a b c", "--out", str(out), "--layers", "0,2")
    assert result.returncode == 0, result.stderr
    assert np.load(out / "attention.npz")["attention"].shape[0] == 2
    result = llmviz("export", "--model", str(tiny_models["llama"]), "--text", "a b c", "--out", str(out), "--layers", "7")
    assert result.returncode == 1 and "choose layers between 0 and 2" in result.stderr


def test_export_refuses_what_would_not_fit_in_memory():
    from llmviz.core.errors import InputError
    from llmviz.core.export import check_attention_fits
    from llmviz.core.results import TokenTable, Trace
    from llmviz.core.trace_data import AttentionCapture, TraceData

    t = 400_000  # 30 x 9 x T^2 floats: far beyond any machine's memory
    keys = np.broadcast_to(np.zeros((1, 1, 1), np.float32), (3, t, 64))
    cap = AttentionCapture("qk", 9, 3, queries=(keys,) * 30, keys=(keys,) * 30)
    summary = Trace(1, "m", "m", "", TokenTable.empty(), 1, 1, None, cap.shape)
    trace = TraceData(summary, np.zeros((1, 0, 1), np.float32), cap)
    with pytest.raises(InputError, match="--layers"):
        check_attention_fits(trace, None)


def test_export_with_a_bad_model_or_empty_text(tmp_path, tiny_models):
    result = llmviz("export", "--model", "not a model!", "--text", "x", "--out", str(tmp_path))
    assert result.returncode == 1 and "error:" in result.stderr and "Traceback" not in result.stderr
    result = llmviz("export", "--model", str(tiny_models["llama"]), "--text", "", "--out", str(tmp_path / "o"))
    assert result.returncode == 1 and "The text is empty" in result.stderr and "Loading" not in result.stderr
    # a text that gives an encoder nothing but [CLS] [SEP] is refused too, and nothing is written
    result = llmviz("export", "--model", str(tiny_models["bert"]), "--text", "  ", "--out", str(tmp_path / "o"))
    assert result.returncode == 1 and "no tokens for this model" in result.stderr, result.stderr
    assert not (tmp_path / "o").exists()


def test_a_damaged_dependency_is_named_without_a_traceback(tmp_path, tiny_models):
    """A dependency that fails at import (kernels without its data file, as in a package built
    without it) ends the command with one message naming the package."""
    fake = tmp_path / "site" / "kernels"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("from ._internals import python_deps\n")
    (fake / "_internals").mkdir()
    (fake / "_internals" / "__init__.py").write_text("")
    (fake / "_internals" / "python_deps.py").write_text(
        "raise FileNotFoundError('Cannot load dependency data, is `kernels` correctly installed?')\n")
    env = {**ENV, "PYTHONPATH": str(tmp_path / "site")}
    result = llmviz("export", "--model", str(tiny_models["llama"]), "--text", "the cat", "--out", str(tmp_path / "o"),
                    env=env, timeout=300)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "'kernels'" in result.stderr and "the package is incomplete or damaged" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "o").exists()


def engine_of(proc: subprocess.Popen, timeout_s: float = 60.0):
    """The engine process a running `python -m llmviz` window started."""
    import time

    import psutil

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for child in psutil.Process(proc.pid).children():
            if "__engine__" in child.cmdline():
                return child
        time.sleep(0.05)
    raise AssertionError("no engine process appeared")


@pytest.mark.slow
def test_screenshot_keeps_its_promise_across_a_killed_engine(tmp_path, tiny_models):
    """The engine dies before the views have drawn: the restart is reported on stderr, the views
    draw again on the new engine and the shot is saved (exit 0)."""
    out = tmp_path / "after-restart.png"
    proc = subprocess.Popen([sys.executable, "-m", "llmviz", "--model", str(tiny_models["llama"]), "--text",
                             "The cat sat on the mat", "--screenshot", str(out), "--size", "1000x700"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    engine_of(proc).kill()
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    assert "SIGKILL" in stderr and "Restarting" in stderr and "Traceback" not in stderr
    assert png_stats(out)[:2] == (1000, 700) and png_stats(out)[2] > 20


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_the_window_ends_cleanly_on_ctrl_c_and_sigterm(tmp_path, tiny_models, sig):
    """Ctrl-C (SIGINT) and SIGTERM close the window like Quit: exit 130/143, one line, no
    traceback, and the engine process ends with it."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "llmviz", "--model", str(tiny_models["llama"]), "--text", "x"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, "LLMVIZ_SETTINGS": str(tmp_path / "s.ini")})
    engine = engine_of(proc)
    time.sleep(1.0)
    proc.send_signal(getattr(signal, sig))
    _stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + getattr(signal, sig), stderr[-2000:]
    assert f"stopped by {sig}" in stderr and "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    engine.wait(timeout=3)
