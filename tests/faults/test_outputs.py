"""Where `export` writes: checked before any model work, written all or nothing.

Tests run as root here, so permission bits stop nothing; the read-only places are real:
/proc and /sys (the kernel refuses new files there, root or not), a file standing where a
folder is needed, a tmpfs mounted read-only, a tmpfs of 256 KiB (a full disk), and
RLIMIT_FSIZE (the kernel's file-size limit, EFBIG mid-write).
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest

from .support import assert_refused, limit, run_cli

WORDS = "the cat sat on the mat and looked at the dog " * 20  # ~200 tokens for MiniLM


def _before_model_work(result) -> None:
    assert "Locating" not in result.stderr and "Loading" not in result.stderr, result.stderr[-1000:]


def test_out_is_an_existing_file(tmp_path, tiny_models):
    target = tmp_path / "taken.txt"
    target.write_text("keep me")
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text", "hi", "--out", str(target))
    assert_refused(result, r"--out: .*taken\.txt is a file, not a folder")
    _before_model_work(result)
    assert target.read_text() == "keep me"


def test_out_is_a_device(tiny_models):
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text", "hi", "--out", "/dev/null")
    assert_refused(result, r"/dev/null is a device")
    _before_model_work(result)


@pytest.mark.parametrize("place,reason", [("/proc/llmviz-fault-out", "does not accept new files"),
                                          ("/sys/llmviz-fault-out", "permission denied|not permitted")],
                         ids=["proc", "sys"])
def test_out_in_a_kernel_file_system(tiny_models, place, reason):
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text", "hi", "--out", place)
    assert_refused(result, rf"Cannot write in /(proc|sys).*({reason})", absent=[Path(place)])
    _before_model_work(result)


def test_out_below_a_file(tmp_path, tiny_models):
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "export"
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text", "hi", "--out", str(out))
    assert_refused(result, r"cannot be created: .*file is a file, not a folder")
    _before_model_work(result)


def test_out_on_a_read_only_file_system(tmpfs, tiny_models):
    mount = tmpfs("ro,size=1m")
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text", "hi", "--out", str(mount / "o"))
    assert_refused(result, r"Cannot write in .*: the file system is read-only", nothing_in=[mount])
    _before_model_work(result)


def test_full_disk_is_refused_before_writing(tmpfs):
    """attention.npz's size is known in advance: 6 layers x 12 heads x T x T floats do not fit in 256 KiB."""
    mount = tmpfs("size=256k")
    out = mount / "export"
    result = run_cli("export", "--model", "bundled:minilm", "--text", WORDS, "--out", str(out))
    assert_refused(result, r"The export needs [\d.,]+ MiB but .* has only [\d.,]+ KiB free", nothing_in=[mount])


def test_file_size_limit_mid_export_leaves_nothing(tmp_path):
    """RLIMIT_FSIZE lets model.json and tokens.csv through and stops attention.npz part-way (EFBIG):
    none of the three may be left, nor the folder the run created."""
    out = tmp_path / "new" / "export"
    result = run_cli("export", "--model", "bundled:minilm", "--text", WORDS, "--out", str(out),
                     preexec=limit(resource.RLIMIT_FSIZE, 4 * 2**20))
    assert_refused(result, r"Cannot write .*attention\.npz: .*file-size limit", absent=[tmp_path / "new"],
                   nothing_in=[tmp_path])


def test_file_size_limit_keeps_the_previous_export(tmp_path):
    """A failed export into a folder holding an earlier one leaves the earlier files as they were."""
    out = tmp_path / "export"
    out.mkdir()
    for name in ("model.json", "tokens.csv", "attention.npz", "notes.txt"):
        (out / name).write_text(f"earlier {name}")
    result = run_cli("export", "--model", "bundled:minilm", "--text", WORDS, "--out", str(out),
                     preexec=limit(resource.RLIMIT_FSIZE, 4 * 2**20))
    assert_refused(result, r"attention\.npz: .*file-size limit")
    assert sorted(p.name for p in out.iterdir()) == ["attention.npz", "model.json", "notes.txt", "tokens.csv"]
    assert all((out / n).read_text() == f"earlier {n}" for n in ("model.json", "tokens.csv", "attention.npz"))


@pytest.mark.parametrize("layers,pattern", [
    ("", r"--layers is empty"),
    ("1-", r"'1-' is not a layer number or range"),
    ("0,,1", r"an empty item is not a layer number"),
    ("-1", r"'-1' is not a layer number"),
    ("3-1", r"runs backwards"),
    ("0-99999999999", r"layer 99999999999 is beyond any model"),
], ids=["empty", "1-", "0,,1", "-1", "3-1", "0-99999999999"])
def test_bad_layers_are_refused_before_any_model_work(tmp_path, tiny_models, layers, pattern):
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text", "hi", "--out", str(tmp_path / "o"),
                     "--layers", layers, timeout=60)
    assert_refused(result, pattern, absent=[tmp_path / "o"])
    _before_model_work(result)
    assert result.seconds < 20  # no range is built, no model imported


def test_layers_beyond_the_model_are_refused_before_the_weights_load(tmp_path, tiny_models):
    result = run_cli("export", "--model", str(tiny_models["llama"]), "--text", "hi", "--out", str(tmp_path / "o"),
                     "--layers", "0,5")
    assert_refused(result, r"this model has 3 layers, so choose layers between 0 and 2", absent=[tmp_path / "o"])
    assert "Reading the configuration" in result.stderr and "Loading weights" not in result.stderr
