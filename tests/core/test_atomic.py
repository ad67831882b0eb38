"""Atomic writes, strict --layers, config limits and the cache manifest, in-process (the fault
suite runs the same through the command line)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmviz.core.atomic import (
    TEMP_MARK,
    AtomicGroup,
    atomic_open,
    atomic_path,
    check_output_folder,
    remove_stale_temporaries,
    write_text,
)
from llmviz.core.config_check import MAX_LAYERS, check_config_file
from llmviz.core.errors import InputError, ModelLoadError, WriteError
from llmviz.core.export import layer_ranges, resolve_layers
from llmviz.core.manifest import manifest_problem, safetensors_problem, write_manifest


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if TEMP_MARK in p.name]


def test_a_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_open(target) as f:
        f.write("half")
        assert not target.exists()  # written under another name until the block ends
    assert target.read_text() == "half" and _no_temporaries(tmp_path)


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_a_failure_leaves_the_old_file_and_no_temporary(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(type(error)):
        with atomic_open(target) as f:
            f.write("new, but not finished")
            raise error
    assert target.read_text() == "old" and _no_temporaries(tmp_path)


def test_a_group_is_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.npz"
    with pytest.raises(RuntimeError):
        with AtomicGroup() as group:
            with group.path(a) as tmp:
                tmp.write_text("complete")
            with group.path(b) as tmp:
                assert tmp.suffix == ".npz"  # writers that pick the format by extension still can
                raise RuntimeError("second file failed")
    assert not a.exists() and not b.exists() and _no_temporaries(tmp_path)


def test_a_write_past_the_file_size_limit_names_the_file_and_cleans_up(tmp_path):
    """EFBIG for real: a child process under RLIMIT_FSIZE writes 1 MiB through atomic_open."""
    code = ("import sys; from llmviz.core.atomic import atomic_open; from llmviz.core.errors import WriteError\n"
            f"try:\n    with atomic_open({str(tmp_path / 'big.bin')!r}, 'wb') as f: f.write(b'x' * 2**20)\n"
            "except WriteError as e: print(e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536)),
                          cwd=Path(__file__).resolve().parents[2])
    assert "Cannot write" in done.stdout and "big.bin" in done.stdout and "file-size limit" in done.stdout, done
    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_the_way_is_named(tmp_path):
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(WriteError, match="a folder of that name is in the way"):
        write_text(tmp_path / "out.csv", "x")


def test_write_error_is_an_oserror_too(tmp_path):
    """Code that already catches a failed write (`except OSError`) catches WriteError."""
    with pytest.raises(OSError):
        write_text(tmp_path / "missing-folder" / "x.txt", "x")


@pytest.mark.parametrize("where,pattern", [
    ("/proc/llmviz-x", "does not accept new files"),
    ("/sys/llmviz-x", "permission denied|not permitted"),
    ("/dev/null", "is a device"),
])
def test_output_folder_is_tried_for_real(where, pattern):
    with pytest.raises(WriteError, match=pattern):
        check_output_folder(where)


def test_output_folder_check_leaves_nothing(tmp_path):
    check_output_folder(tmp_path / "new" / "deeper")
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_removed_by_age(tmp_path):
    old = tmp_path / f".a.1234{TEMP_MARK}.npz"
    new = tmp_path / f".b.5678{TEMP_MARK}.csv"
    keep = tmp_path / "attention.npz"
    for p in (old, new, keep):
        p.write_text("x")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert remove_stale_temporaries(tmp_path) == [old]
    assert new.exists() and keep.exists()


def test_atomic_path_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "plot.svg") as tmp:
        assert tmp.suffix == ".svg" and tmp.parent == tmp_path
        tmp.write_text("<svg/>")
    assert (tmp_path / "plot.svg").read_text() == "<svg/>"


# ---------------------------------------------------------------- --layers


@pytest.mark.parametrize("spec,expected", [(None, None), ("0,3,5-7", [(0, 0), (3, 3), (5, 7)]), (" 2 , 4-4 ", [(2, 2), (4, 4)])])
def test_layer_syntax(spec, expected):
    assert layer_ranges(spec) == expected


@pytest.mark.parametrize("spec", ["", " ", "1-", "-1", "0,,1", "a", "1-2-3", "3-1", f"0-{MAX_LAYERS}", "0-99999999999",
                                  "9" * 40])
def test_layer_syntax_is_strict_and_never_expands(spec):
    started = time.perf_counter()
    with pytest.raises(InputError, match="--layers"):
        layer_ranges(spec)
    assert time.perf_counter() - started < 0.1


def test_layers_against_the_model():
    assert resolve_layers(layer_ranges("0,2-3,2"), 4) == [0, 2, 3]
    with pytest.raises(InputError, match="this model has 4 layers"):
        resolve_layers(layer_ranges("1-4"), 4)


# ---------------------------------------------------------------- config limits


def test_a_405b_config_passes_the_limits(tmp_path):
    """Llama 3.1 405B's figures are within every limit (only its memory would not fit here)."""
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "llama", "num_hidden_layers": 126, "hidden_size": 16384, "num_attention_heads": 128,
        "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
        "intermediate_size": 53248}))
    figures = check_config_file(tmp_path, "405b")
    assert figures.num_layers == 126 and 3e11 < figures.estimated_parameters < 5e11


def test_a_config_that_is_not_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="cannot be read"):
        check_config_file(tmp_path, "x")


# ---------------------------------------------------------------- manifest


def test_manifest_detects_missing_resized_and_changed_files(tmp_path):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.txt").write_text("beta")
    manifest = write_manifest(tmp_path, converter_version=9)
    assert manifest_problem(tmp_path, manifest) is None
    (tmp_path / "b.txt").write_text("BETA")  # same size, new bytes, new time
    written = manifest["files"]["b.txt"]["mtime_ns"]
    os.utime(tmp_path / "b.txt", ns=(written, written + 1_000_000))  # a clock's tick may not have passed
    assert "hash differs" in manifest_problem(tmp_path, manifest)
    (tmp_path / "b.txt").write_text("beta, longer")
    assert "expected 4" in manifest_problem(tmp_path, manifest)
    (tmp_path / "a.txt").unlink()
    assert manifest_problem(tmp_path, manifest) == "a.txt is missing"


def test_safetensors_structure_check(tmp_path, tiny_models):
    good = tiny_models["llama"] / "model.safetensors"
    assert safetensors_problem(good) is None
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "truncated or damaged" in safetensors_problem(cut)
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01")
    assert "shorter than a safetensors header" in safetensors_problem(tmp_path / "tiny.safetensors")
