"""The converted-model cache from the command line: an unusable cache folder is one message,
a damaged entry heals, two processes convert once, stale temporaries go away.

Each test has its own LLMVIZ_CACHE_DIR.  A full conversion of the bundled GGUF takes
about 30 s unloaded (two of these tests pay for one each).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil

from llmviz.core import bundled
from llmviz.core.cache_entry import OWNER_FILE
from llmviz.core.manifest import read_manifest

from .support import assert_refused, env_with, finish, run_cli, start_cli, temporaries_under

ENTRY = bundled.CACHE_ENTRY


def _export(cache: Path, out: Path, **kwargs):
    return run_cli("export", "--model", "bundled:smollm2", "--text", "The cat sat", "--out", str(out),
                   env=env_with(LLMVIZ_CACHE_DIR=str(cache)), **kwargs)


def _sound(entry: Path) -> bool:
    gguf = bundled.SMOLLM2_PACKAGE.file(bundled.SMOLLM2_GGUF)
    return bundled.entry_problem(entry, bundled._conversion_marker(gguf)) is None


def test_cache_folder_that_is_a_file(tmp_path):
    cache = tmp_path / "cache-file"
    cache.write_text("not a folder")
    result = _export(cache, tmp_path / "o", timeout=120)
    assert_refused(result, r"cannot use its cache folder .*cache-file \(from LLMVIZ_CACHE_DIR\): a file stands "
                           r"where the folder should be\. Set LLMVIZ_CACHE_DIR", absent=[tmp_path / "o"])


def test_cache_folder_in_proc(tmp_path):
    result = _export(Path("/proc/llmviz-cache"), tmp_path / "o", timeout=120)
    assert_refused(result, r"cannot use its cache folder /proc/llmviz-cache", absent=[tmp_path / "o"])


def test_empty_read_only_cache(tmpfs, tmp_path):
    cache = tmpfs("ro,size=1m")
    result = _export(cache, tmp_path / "o", timeout=120)
    assert_refused(result, r"cannot use its cache folder .*: the file system is read-only", absent=[tmp_path / "o"])


def test_cache_on_a_full_disk_is_refused_before_converting(tmpfs, tmp_path):
    """The conversion's size is known (541.6 MB): a cache on an 8 MiB file system is refused up front."""
    cache = tmpfs("size=8m")
    result = _export(cache, tmp_path / "o", timeout=120)
    assert_refused(result, r"Converting the bundled SmolLM2 needs [\d.,]+ MiB but .* has only [\d.,]+ MiB free\. "
                           r"Free some space, or set LLMVIZ_CACHE_DIR", absent=[tmp_path / "o"], marker=str(cache))
    assert not temporaries_under(cache) and not (cache / ENTRY).exists()


def test_read_only_cache_with_a_sound_entry_is_used(tmpfs, tmp_path, converted_entry):
    """Reading needs no lock and no writing: a read-only cache that holds the entry works."""
    cache = tmpfs("size=700m")
    subprocess.run(["cp", "-a", str(converted_entry), str(cache / ENTRY)], check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(cache)], check=True)
    result = _export(cache, tmp_path / "o")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Converting" not in result.stderr


def test_truncated_entry_is_detected_and_converted_again(cache_with_entry, tmp_path):
    """A truncated model.safetensors (a SafetensorError on every run before) is reported and reconverted."""
    weights = cache_with_entry / ENTRY / "model.safetensors"
    with open(weights, "r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    result = _export(cache_with_entry, tmp_path / "o")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert re.search(r"note: The converted SmolLM2 in the cache \(.*\) cannot be used: model\.safetensors has "
                     r"[\d,]+ bytes, expected 538,090,408\. Converting it again", result.messages), result.messages
    assert "Converting and de-quantizing" in result.stderr  # the conversion's own progress is shown
    assert _sound(cache_with_entry / ENTRY) and not temporaries_under(cache_with_entry)
    assert (tmp_path / "o" / "attention.npz").exists()


def test_changed_weights_of_the_same_size_are_detected(cache_with_entry):
    """Same size, different bytes: the manifest's hash catches it (the file's time changed)."""
    weights = cache_with_entry / ENTRY / "model.safetensors"
    with open(weights, "r+b") as f:
        f.seek(weights.stat().st_size - 4096)
        f.write(b"\x7f" * 4096)
    gguf = bundled.SMOLLM2_PACKAGE.file(bundled.SMOLLM2_GGUF)
    problem = bundled.entry_problem(cache_with_entry / ENTRY, bundled._conversion_marker(gguf))
    assert problem == "model.safetensors was changed since it was written (its hash differs)"


def test_two_processes_convert_once(tmp_path):
    cache = tmp_path / "cache"
    env = env_with(LLMVIZ_CACHE_DIR=str(cache))
    first = start_cli("export", "--model", "bundled:smollm2", "--text", "one", "--out", str(tmp_path / "a"), env=env)
    time.sleep(0.5)
    second = start_cli("export", "--model", "bundled:smollm2", "--text", "two", "--out", str(tmp_path / "b"), env=env)
    results = [finish(first, timeout=900), finish(second, timeout=900)]
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    converted = [r for r in results if "Converting the bundled GGUF" in r.stderr]
    assert len(converted) == 1, [r.messages[-500:] for r in results]
    waited = [r for r in results if r is not converted[0]][0]
    assert "Waiting for another llmviz that is converting the bundled SmolLM2" in waited.stderr
    assert _sound(cache / ENTRY) and not temporaries_under(cache)
    assert read_manifest(cache / ENTRY)["converter_version"] == bundled.CONVERSION_VERSION


def _temporary(cache: Path, name: str, owner: dict | None, age_s: float = 0) -> Path:
    folder = cache / f"{ENTRY}.{name}"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"half of something")
    if owner is not None:
        (folder / OWNER_FILE).write_text(json.dumps(owner))
    if age_s:
        then = time.time() - age_s
        os.utime(folder, (then, then))
    return folder


def test_stale_temporaries_are_removed_on_start(cache_with_entry, tmp_path):
    """Left by runs killed outright (SIGKILL, power loss): removed when their owner is gone; a live
    owner's, and a fresh one without an owner file (an older llmviz may be writing it), are kept."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = {"pid": int(done.stdout), "started": time.time() - 60}
    me = psutil.Process()
    dead_owner = _temporary(cache_with_entry, "deadownr", dead)
    live_owner = _temporary(cache_with_entry, "liveownr", {"pid": me.pid, "started": me.create_time()})
    old_unowned = _temporary(cache_with_entry, "oldnoown", None, age_s=7200)
    fresh_unowned = _temporary(cache_with_entry, "newnoown", None)
    result = _export(cache_with_entry, tmp_path / "o")
    assert result.returncode == 0, result.stderr[-2000:]
    assert not dead_owner.exists() and not old_unowned.exists()
    assert live_owner.exists() and fresh_unowned.exists()
