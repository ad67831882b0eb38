"""Hostile or broken model folders and files, from the command line: each fails in seconds
with one message, runs none of the code it carries and allocates nothing absurd."""

from __future__ import annotations

import json
import os
import pickle
import resource
import shutil
import struct

import pytest

from .support import assert_refused, limit, run_cli

FAST_S = 120  # generous under load; unloaded each of these ends in about five seconds


def _export(model, out, **kwargs):
    return run_cli("export", "--model", str(model), "--text", "The cat sat", "--out", str(out), **kwargs)


@pytest.mark.parametrize("changes,pattern", [
    ({"num_hidden_layers": 10**9}, r"num_hidden_layers = 1,000,000,000, outside what any real model uses"),
    ({"num_hidden_layers": 0}, r"num_hidden_layers = 0, outside"),
    ({"num_hidden_layers": -1}, r"num_hidden_layers = -1, outside"),
    ({"num_attention_heads": 0}, r"num_attention_heads = 0, outside"),
    ({"hidden_size": 30}, r"hidden size \(30\) is not a multiple of the number of attention heads \(4\)"),
    ({"num_key_value_heads": 3}, r"4 attention heads cannot share 3 key/value heads"),
    ({"vocab_size": 10**12}, r"vocab_size = 1,000,000,000,000, outside"),
    ({"max_position_embeddings": 2**40}, r"max_position_embeddings = 1,099,511,627,776, outside"),
    ({"num_hidden_layers": "many"}, r"num_hidden_layers is 'many', not a whole number"),
    ({"hidden_size": 16384, "num_attention_heads": 128, "num_key_value_heads": 8, "num_hidden_layers": 200,
      "intermediate_size": 53248}, r"needs about [\d.,]+ TiB for its weights .* more than this machine's"),
], ids=["layers=1e9", "layers=0", "layers=-1", "heads=0", "hidden=30", "kv_heads=3", "vocab=1e12", "positions=2^40",
        "layers='many'", "740B-parameters"])
def test_absurd_configs_are_refused_before_the_weights(tmp_path, patched_model, changes, pattern):
    result = _export(patched_model("llama", **changes), tmp_path / "o", timeout=FAST_S)
    assert_refused(result, pattern, absent=[tmp_path / "o"])
    assert "Loading weights" not in result.stderr


def test_transformers_validation_is_shown_whole(tmp_path, patched_model):
    """A field transformers' own validators reject: the reason on the second line is shown too."""
    result = _export(patched_model("llama", tie_word_embeddings="yes please"), tmp_path / "o", timeout=FAST_S)
    assert_refused(result, r"Validation error for field 'tie_word_embeddings':\s*TypeError: .*expected bool",
                   absent=[tmp_path / "o"])


def test_weights_that_do_not_fit_the_config_show_the_load_report(tmp_path, patched_model):
    """transformers ends with 'look at the above report!'; the report (silenced otherwise) comes with it."""
    result = _export(patched_model("llama", intermediate_size=128), tmp_path / "o", timeout=FAST_S)
    assert_refused(result, r"above report!.*mlp\.\w+_proj\.weight .*MISMATCH.*torch\.Size\(\[64, 32\]\)",
                   absent=[tmp_path / "o"])


def _remote_code_folder(tmp_path):
    folder = tmp_path / "custom-model"
    folder.mkdir()
    marker = tmp_path / "code-ran"
    (folder / "config.json").write_text(json.dumps({
        "model_type": "customthing", "architectures": ["CustomModel"],
        "auto_map": {"AutoConfig": "configuration_custom.CustomConfig", "AutoModel": "modeling_custom.CustomModel"}}))
    payload = f"open({str(marker)!r}, 'w').write('ran')\n"
    (folder / "configuration_custom.py").write_text(payload + "from transformers import PretrainedConfig\n"
                                                    "class CustomConfig(PretrainedConfig):\n    model_type = 'customthing'\n")
    (folder / "modeling_custom.py").write_text(payload)
    return folder, marker


def test_remote_code_is_refused_without_consent_and_never_imported(tmp_path):
    folder, marker = _remote_code_folder(tmp_path)
    result = _export(folder, tmp_path / "o", timeout=FAST_S)
    assert_refused(result, r"ships its own Python code .* unless you pass --trust-remote-code", absent=[tmp_path / "o"])
    assert "tick" not in result.stderr  # the window's wording stays in the window
    assert not marker.exists()


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path, tiny_models):
    folder = tmp_path / "pickled"
    shutil.copytree(tiny_models["llama"], folder)
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"model.embed_tokens.weight": Payload()}, f, protocol=2)
    result = _export(folder, tmp_path / "o", timeout=FAST_S)
    assert_refused(result, r"pickled checkpoint holds more than tensors .* never unpickles", absent=[tmp_path / "o"])
    assert not marker.exists()


@pytest.mark.parametrize("name,header", [
    ("huge tensor count", struct.pack("<IQQ", 3, 2**60, 0)),
    ("huge metadata count", struct.pack("<IQQ", 3, 0, 2**60)),
], ids=["tensor-count", "metadata-count"])
def test_absurd_gguf_fails_fast(tmp_path, name, header):
    path = tmp_path / "absurd.gguf"
    path.write_bytes(b"GGUF" + header + b"\0" * 64)
    result = _export(path, tmp_path / "o", timeout=FAST_S)
    assert_refused(result, r"Could not read the GGUF file .*absurd\.gguf", absent=[tmp_path / "o"])


def test_truncated_gguf_fails_fast(tmp_path):
    from llmviz.core import bundled

    path = tmp_path / "cut.gguf"
    with open(bundled.SMOLLM2_PACKAGE.file(bundled.SMOLLM2_GGUF), "rb") as f:
        path.write_bytes(f.read(2_000_000))
    result = _export(path, tmp_path / "o", timeout=FAST_S)
    assert_refused(result, r"Could not read the GGUF file .*cut\.gguf \(truncated or damaged\?\)", absent=[tmp_path / "o"])


@pytest.mark.parametrize("name,content", [
    ("lying offsets", lambda: (lambda h: struct.pack("<Q", len(h)) + h + b"\0" * 64)(json.dumps(
        {"model.embed_tokens.weight": {"dtype": "F32", "shape": [2**40, 32], "data_offsets": [0, 2**47]}}).encode())),
    ("huge header", lambda: struct.pack("<Q", 2**60) + b"{" + b"\0" * 64),
], ids=["lying-offsets", "huge-header"])
def test_absurd_safetensors_fail_fast(tmp_path, tiny_models, name, content):
    folder = tmp_path / "model"
    shutil.copytree(tiny_models["llama"], folder)
    (folder / "model.safetensors").write_bytes(content())
    result = _export(folder, tmp_path / "o", timeout=FAST_S)
    assert_refused(result, r"SafetensorError: Error while deserializing header", absent=[tmp_path / "o"])


def test_a_memory_limit_is_named(tmp_path):
    """RLIMIT_AS of 1.2 GiB: enough to start, not to map SmolLM2's 538 MB of weights and run it."""
    result = run_cli("export", "--model", "bundled:smollm2", "--text", "The cat sat", "--out", str(tmp_path / "o"),
                     preexec=limit(resource.RLIMIT_AS, 1200 * 2**20))
    assert_refused(result, r"out of memory|could not be loaded into memory", absent=[tmp_path / "o"])
