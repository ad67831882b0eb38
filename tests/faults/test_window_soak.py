"""The window soak as a user's session: random load / run / cancel / switch / edit cycles in one
real window (a subprocess, its own engine), checked for errors a user would see and for processes
left behind. Its memory figure (RSS growth over the last 100 of 200 cycles) is bench/faults.py's."""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from .support import ENV, ROOT


def soak(*models: str, cycles: int, seed: int = 11) -> tuple[int, dict, str]:
    proc = subprocess.run([sys.executable, "-m", "tests.faults.window_soak", "--cycles", str(cycles), "--seed",
                           str(seed), *models], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.slow
def test_random_cycles_show_no_error_and_leave_no_process(tiny_models):
    before = {p.pid for p in psutil.process_iter()}
    rc, result, stderr = soak(*(str(tiny_models[m]) for m in ("llama", "gpt2", "bert")), cycles=24)
    assert rc == 0 and result["errors"] == [], result["errors"]
    assert result["cycles"] == 24 and len(result["rss_mb"]) == 24 and result["engine_restarts"] == 0
    assert "Traceback" not in stderr
    left = [p for p in psutil.process_iter(["cmdline"]) if p.pid not in before and "__engine__" in (p.info["cmdline"] or [])]
    assert left == []


def test_the_soak_reports_what_a_user_would_see(tiny_models, tmp_path):
    """A folder that is not a model among the choices: its load error reaches the soak's report."""
    not_a_model = tmp_path / "empty-folder"
    not_a_model.mkdir()
    rc, result, _ = soak(str(tiny_models["llama"]), str(not_a_model), cycles=6, seed=1)
    assert rc == 1 and any("empty-folder" in e for e in result["errors"]), result["errors"]
