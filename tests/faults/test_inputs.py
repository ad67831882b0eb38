"""What `--text-file` can name, read bounded: each refused within seconds, before any model work."""

from __future__ import annotations

import os
import pty
import subprocess
import threading
import time

import pytest

from .support import assert_refused, env_with, run_cli

QUICK_S = 15  # a refusal comes before torch is imported: well under a second unloaded


def _refused_quickly(result, pattern, out):
    assert_refused(result, pattern, absent=[out])
    assert "Locating" not in result.stderr, result.stderr[-1000:]
    assert result.seconds < QUICK_S, f"took {result.seconds:.1f} s"


@pytest.mark.parametrize("path,pattern", [
    ("/dev/zero", r"/dev/zero is a device, not a text file"),
    ("/dev/urandom", r"is a device"),
    ("/proc", r"/proc is a folder"),
], ids=["dev-zero", "dev-urandom", "folder"])
def test_devices_and_folders(tmp_path, tiny_models, path, pattern):
    out = tmp_path / "o"
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", path, "--out", str(out), timeout=60)
    _refused_quickly(result, pattern, out)


def test_a_huge_file_is_measured_not_read(tmp_path, tiny_models):
    """A sparse 20 GiB file: refused by its size, with the limit and both ways to raise it."""
    big = tmp_path / "huge.txt"
    with open(big, "wb") as f:
        f.truncate(20 * 2**30)
    out = tmp_path / "o"
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", str(big), "--out", str(out),
                     timeout=60)
    _refused_quickly(result, r"huge\.txt is 20\.0 GiB, more than the 4\.0 MiB .*--max-text-bytes N or set "
                              r"LLMVIZ_MAX_TEXT_BYTES=N", out)


def test_the_limit_can_be_lowered_by_option_and_environment(tmp_path, tiny_models):
    text = tmp_path / "t.txt"
    text.write_text("word " * 1000)
    out = tmp_path / "o"
    by_option = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", str(text), "--out", str(out),
                        "--max-text-bytes", "100", timeout=60)
    _refused_quickly(by_option, r"more than the 100 B ", out)
    by_env = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", str(text), "--out", str(out),
                     env=env_with(LLMVIZ_MAX_TEXT_BYTES="200"), timeout=60)
    _refused_quickly(by_env, r"more than the 200 B ", out)


def test_a_fifo_without_a_writer(tmp_path, tiny_models):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    out = tmp_path / "o"
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", str(fifo), "--out", str(out),
                     timeout=60)
    _refused_quickly(result, r"No program is writing to .*pipe", out)


def test_a_fifo_whose_writer_sends_nothing(tmp_path, tiny_models):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    holder = threading.Thread(target=lambda: (time.sleep(0.1), open(fifo, "wb"), time.sleep(20)), daemon=True)
    holder.start()  # opens the FIFO for writing and keeps it open without writing
    out = tmp_path / "o"
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", str(fifo), "--out", str(out),
                     timeout=60)
    _refused_quickly(result, r"Nothing arrived on .*pipe for 5 seconds", out)


def test_endless_standard_input_stops_at_the_limit(tmp_path, tiny_models):
    out = tmp_path / "o"
    with open("/dev/zero", "rb") as zero:
        result = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", "-", "--out", str(out),
                         stdin=zero.fileno(), timeout=60)
    _refused_quickly(result, r"standard input is longer than 4\.0 MiB", out)


def test_standard_input_that_is_a_terminal(tmp_path, tiny_models):
    """Reading a terminal would wait for typing that never comes in a script: refused at once."""
    primary, secondary = pty.openpty()
    out = tmp_path / "o"
    try:
        result = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", "-", "--out", str(out),
                         stdin=secondary, timeout=60)
    finally:
        os.close(primary)
        os.close(secondary)
    _refused_quickly(result, r"Standard input is a terminal", out)


def test_standard_input_is_read(tmp_path, tiny_models):
    out = tmp_path / "o"
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", "-", "--out", str(out),
                     input="The cat sat on the mat")
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "attention.npz").exists()


@pytest.mark.parametrize("content,pattern", [
    (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", r"looks like a binary file"),
    (b"caf\xe9 au lait", r"is not UTF-8 text \(byte 3"),
], ids=["binary", "latin-1"])
def test_binary_and_non_utf8_files(tmp_path, tiny_models, content, pattern):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    out = tmp_path / "o"
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", str(path), "--out", str(out),
                     timeout=60)
    _refused_quickly(result, pattern, out)


def test_missing_file(tmp_path, tiny_models):
    out = tmp_path / "o"
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text-file", str(tmp_path / "nope.txt"),
                     "--out", str(out), timeout=60)
    _refused_quickly(result, r"Cannot read .*nope\.txt: No such file", out)


def test_empty_text_on_every_model(tmp_path, tiny_models):
    """Empty text is refused before loading; text that gives a model only its special tokens
    ([CLS] [SEP] on BERT) is refused after the run, and nothing is written."""
    out = tmp_path / "o"
    for model in (str(tiny_models["llama"]), str(tiny_models["gpt2"]), str(tiny_models["bert"])):
        result = run_cli("export", "--model", model, "--text", "", "--out", str(out), timeout=60)
        _refused_quickly(result, r"The text is empty", out)
    result = run_cli("export", "--model", str(tiny_models["bert"]), "--text", " \n ", "--out", str(out))
    assert_refused(result, r"no tokens for this model \(only special tokens", absent=[out])


def test_window_reader_is_bounded_too(tmp_path):
    """The window's "Open text file…" calls the same function: a device or a FIFO returns at once."""
    code = ("import os, time; from llmviz.core.textio import read_text_file; from llmviz.core.errors import InputError\n"
            f"os.mkfifo({str(tmp_path / 'f')!r})\n"
            f"for p in ('/dev/zero', {str(tmp_path / 'f')!r}):\n"
            "    t = time.monotonic()\n"
            "    try: read_text_file(p)\n"
            "    except InputError as e: print(round(time.monotonic() - t, 2), e)\n")
    done = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    lines = done.stdout.splitlines()
    assert len(lines) == 2, done.stderr
    assert all(float(line.split()[0]) < 2.0 for line in lines), lines
