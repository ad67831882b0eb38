"""Real signals sent to the command line mid-conversion and mid-export: it ends with 130/143,
one line and no traceback, its converter child ends with it, and nothing partial stays."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import psutil
import pytest

from llmviz.core import bundled

from .support import (
    SIGNALS,
    assert_refused,
    env_with,
    finish,
    interrupt,
    leftover_processes,
    run_cli,
    start_cli,
    temporaries_under,
    wait_for,
)

LONG_TEXT = "the cat sat on the mat " * 150  # MiniLM truncates to 512 tokens: 75 MB of attention


def _converter_running(cache: Path) -> list[psutil.Process]:
    return [p for p in leftover_processes(str(cache)) if bundled.CONVERT_COMMAND in " ".join(p.cmdline())]


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_signal_mid_conversion(tmp_path, name):
    signum, code = SIGNALS[name]
    cache, out = tmp_path / "cache", tmp_path / "o"
    proc = start_cli("export", "--model", "bundled:smollm2", "--text", "hi", "--out", str(out),
                     env=env_with(LLMVIZ_CACHE_DIR=str(cache)))
    seen = wait_for(proc, r"First use: ")  # the converter child is running and reporting
    assert _converter_running(cache)
    result = interrupt(proc, signum, seen)
    assert_refused(result, rf"stopped by {name}; no partial output was left", code=code, absent=[out],
                   marker=str(cache))
    assert not temporaries_under(cache), list(cache.iterdir())
    assert not (cache / bundled.CACHE_ENTRY).exists()


def test_killed_parent_takes_the_converter_with_it_and_the_next_start_cleans_up(tmp_path, converted_entry):
    """SIGKILL leaves no chance to clean up: the child dies with its parent (PR_SET_PDEATHSIG), and
    the temporary folder it was writing is removed by the next run that finds its owner gone."""
    cache, out = tmp_path / "cache", tmp_path / "o"
    proc = start_cli("export", "--model", "bundled:smollm2", "--text", "hi", "--out", str(out),
                     env=env_with(LLMVIZ_CACHE_DIR=str(cache)))
    wait_for(proc, r"First use: ")
    children = _converter_running(cache)
    assert children
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, "the converter outlived its killed parent"
    stale = temporaries_under(cache)
    assert stale, "expected the killed run's temporary folder"
    shutil.copytree(converted_entry, cache / bundled.CACHE_ENTRY)
    result = run_cli("export", "--model", "bundled:smollm2", "--text", "hi", "--out", str(out),
                     env=env_with(LLMVIZ_CACHE_DIR=str(cache)))
    assert result.returncode == 0, result.stderr[-2000:]
    assert not temporaries_under(cache) and not any(p.exists() for p in stale)


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_signal_while_writing_the_export(tmp_path, name):
    signum, code = SIGNALS[name]
    out = tmp_path / "new" / "o"
    proc = start_cli("export", "--model", "bundled:minilm", "--text", LONG_TEXT, "--out", str(out))
    seen = wait_for(proc, r"Computing and writing attention\.npz")
    started = time.monotonic()
    result = interrupt(proc, signum, seen)
    assert time.monotonic() - started < 10
    assert_refused(result, rf"stopped by {name}", code=code, absent=[tmp_path / "new"], nothing_in=[tmp_path])


def test_sigterm_while_the_model_runs(tmp_path):
    out = tmp_path / "o"
    proc = start_cli("export", "--model", "bundled:smollm2", "--text", "the cat sat on the mat " * 300,
                     "--out", str(out))
    seen = wait_for(proc, r"Running the model")
    result = interrupt(proc, signal.SIGTERM, seen)
    assert_refused(result, r"stopped by SIGTERM", code=143, absent=[out])


def test_sigint_during_start_up_before_any_model(tmp_path):
    """Even while torch is being imported: a clean end, not a KeyboardInterrupt traceback."""
    out = tmp_path / "o"
    proc = start_cli("export", "--model", "bundled:minilm", "--text", "hi", "--out", str(out))
    seen = wait_for(proc, r"Locating")
    result = interrupt(proc, signal.SIGINT, seen)
    assert_refused(result, r"stopped by SIGINT", code=130, absent=[out])


def test_converter_child_ended_on_its_own(tmp_path):
    """SIGTERM to the converter child alone: the command line says the conversion was interrupted
    (not that the file is damaged), removes the temporary folder and exits 1."""
    cache, out = tmp_path / "cache", tmp_path / "o"
    proc = start_cli("export", "--model", "bundled:smollm2", "--text", "hi", "--out", str(out),
                     env=env_with(LLMVIZ_CACHE_DIR=str(cache)))
    seen = wait_for(proc, r"First use: ")
    (child,) = _converter_running(cache)
    child.terminate()
    result = finish(proc, seen)
    assert_refused(result, r"was interrupted: the converter was ended by SIGTERM\. Load the model again", code=1,
                   absent=[out], marker=str(cache))
    assert "Reinstall" not in result.stderr and not temporaries_under(cache)
