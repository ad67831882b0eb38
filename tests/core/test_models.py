"""Loading real models (tiny ones from configs, and the bundled ones) and every way it can fail."""

from __future__ import annotations

import json

import pytest
import torch

from llmviz.core.errors import Cancelled, ModelLoadError
from llmviz.core.models import load_model
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.tasks import CancelToken, TaskContext


def test_tiny_decoder_and_encoder_load_with_capture(tiny_models):
    llama = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    assert llama.info.is_decoder and llama.info.capture == "qk"
    assert (llama.info.num_layers, llama.info.num_heads, llama.info.num_kv_heads) == (3, 4, 2)
    assert llama.info.num_parameters == sum(p.numel() for p in llama.model.parameters())
    bert = load_model(ModelSpec(str(tiny_models["bert"]), device="cpu"))
    assert not bert.info.is_decoder and bert.info.family == "encoder-only"
    gpt2 = load_model(ModelSpec(str(tiny_models["gpt2"]), device="cpu"))
    assert gpt2.info.architecture == "GPT2LMHeadModel" and gpt2.info.max_positions == 64


def test_bundled_models_describe_themselves(smollm2_session, minilm_session):
    smol = smollm2_session.info
    assert smol.title == "SmolLM2-135M-Instruct (Q4_1-dequantized)"
    assert "Q4_1" in " ".join(smol.notes)
    assert (smol.num_layers, smol.num_heads, smol.num_kv_heads, smol.vocab_size) == (30, 9, 3, 49152)
    assert smol.num_parameters == 134_515_008
    mini = minilm_session.info
    assert (mini.num_layers, mini.num_heads, mini.vocab_size) == (6, 12, 30522)


def test_dtype_choice_is_applied(tiny_models):
    loaded = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu", dtype="bfloat16"))
    assert loaded.info.dtype == "bfloat16"
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


def test_folder_without_config(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"0")
    with pytest.raises(ModelLoadError, match="has no config.json"):
        load_model(ModelSpec(str(tmp_path)))


def test_unknown_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "foobarnet", "architectures": ["FooBar"]}))
    with pytest.raises(ModelLoadError, match="cannot load.*foobarnet"):
        load_model(ModelSpec(str(tmp_path)))


def test_remote_code_is_refused_unless_allowed(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "customthing", "auto_map": {"AutoConfig": "configuration_custom.CustomConfig"}}))
    with pytest.raises(ModelLoadError, match=r"(?s)own Python code.*only if you trust"):
        load_model(ModelSpec(str(tmp_path)))


def test_hub_id_not_cached_while_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelLoadError, match=r"(?s)not in the local Hugging Face cache.*offline"):
        load_model(ModelSpec("gpt2-misspeled"))


def test_invalid_model_id():
    with pytest.raises(ModelLoadError, match="neither a bundled model"):
        load_model(ModelSpec("not a model id!!"))


def test_truncated_gguf_file(tmp_path):
    from llmviz.core import bundled

    bad = tmp_path / "model.gguf"
    with open(bundled.SMOLLM2_PACKAGE.file(bundled.SMOLLM2_GGUF), "rb") as f:
        bad.write_bytes(f.read(2_000_000))
    with pytest.raises(ModelLoadError, match="GGUF"):
        load_model(ModelSpec(str(bad)))


def test_cuda_requested_without_cuda(tiny_models):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelLoadError, match="CUDA was requested but is not available"):
        load_model(ModelSpec(str(tiny_models["llama"]), device="cuda"))


def test_cancel_midway_through_a_load(tiny_models):
    token = CancelToken()
    stages = []

    def report(p):
        stages.append(p.stage)
        if p.stage.startswith("Loading weights"):
            token.cancel()

    with pytest.raises(Cancelled):
        load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"), TaskContext(token, report, 0))
    assert any(s.startswith("Loading weights") for s in stages)


def test_failed_load_keeps_the_previous_model(tiny_models):
    session = Session()
    session.load(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    before = session.loaded
    with pytest.raises(ModelLoadError):
        session.load(ModelSpec(str(tiny_models["llama"] / "nope")))
    assert session.loaded is before
    assert session.run("still works").num_tokens > 0


def test_bitsandbytes_4bit_load_is_described_truthfully(tiny_models):
    """A 4-bit model reports the weights it represents (not its packed storage) and its precision."""
    from transformers import BitsAndBytesConfig

    reference = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    nf4 = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"),
                     quantization_config=BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4"))
    assert nf4.info.quantization == "nf4"
    assert nf4.info.num_parameters == reference.info.num_parameters
    assert sum(p.numel() for p in nf4.model.parameters()) < nf4.info.num_parameters  # packed storage is smaller
