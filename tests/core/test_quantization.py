"""The quantization dial's core: real bitsandbytes variants, simulated INT2/INT1, comparisons, memory budget.

Real models only: tiny real-architecture models from configs for speed, and the bundled
SmolLM2 for the memory factors and predictions of a real checkpoint.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmviz.core import quantization as q
from llmviz.core import quantization_jobs as jobs
from llmviz.core import quantization_probe as probe
from llmviz.core import quantization_results as qr
from llmviz.core import quantization_state as qs
from llmviz.core import quantization_variants as variants
from llmviz.core.errors import Cancelled, LlmvizError, QuantizationMemoryError
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.tasks import CancelToken, TaskContext

from ..sessions import loaded_session

TEXT = "The cat sat on the mat and looked at the dog. It was a sunny day in the park."


@pytest.fixture(scope="module")
def llama(tiny_models) -> Session:
    return loaded_session(tiny_models["llama"], TEXT)


@pytest.fixture(scope="module")
def smol(smollm2_session):
    """The shared SmolLM2 session with this module's variants removed afterwards (they hold memory)."""
    smollm2_session.run(TEXT)
    yield smollm2_session
    smollm2_session.extras.pop(qs.EXTRAS_KEY, None)


@pytest.fixture(scope="module")
def nf4_checkpoint(tiny_models, tmp_path_factory):
    """A tiny Llama saved already quantized to NF4 by bitsandbytes (its config.json says so)."""
    from transformers import BitsAndBytesConfig

    from llmviz.core.models import load_model

    loaded = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"), quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32))
    folder = tmp_path_factory.mktemp("tiny-llama-nf4")
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return folder


def distinct_per_row(w: torch.Tensor) -> torch.Tensor:
    """How many different values each row holds."""
    ordered = torch.sort(w, dim=1).values
    return (ordered.diff(dim=1) != 0).sum(dim=1) + 1


def visit(session: Session, mode: str, **kwargs) -> qr.ModeReport:
    return jobs.visit(session, TaskContext(), mode, session.trace.id, **kwargs)


# ---------------------------------------------------------------- pure pieces


def test_notebook_size_table():
    rows = qr.theoretical_sizes(1_000_000)
    assert [(r.level, r.bits) for r in rows] == [("FP32", 32), ("FP16", 16), ("INT8", 8), ("INT4", 4),
                                                 ("INT2", 2), ("INT1", 1)]
    assert [r.size_bytes for r in rows] == [4e6, 2e6, 1e6, 5e5, 2.5e5, 1.25e5]
    assert [r.reduction for r in rows] == [1, 2, 4, 8, 16, 32]
    assert [r.savings_pct for r in rows] == [0, 50, 75, 87.5, 93.75, 96.875]


def test_simulated_positions_are_labelled_simulated():
    simulated = [p for p in qr.PRECISIONS if p.simulated]
    assert [p.bits for p in simulated] == [2, 1]
    for p in simulated:
        assert "simulated" in p.label.lower() and "sim" in p.short and p.summary.startswith("SIMULATED")


def test_rtn_absmax_grid():
    torch.manual_seed(0)
    w = torch.randn(64, 300)
    w[5] = 0.0  # an all-zero channel stays zero
    for bits in (2, 1):
        out = variants.rtn_absmax(w, bits)
        a = w.abs().amax(dim=1, keepdim=True)
        grid = torch.linspace(-1, 1, 2**bits).unsqueeze(0) * a  # 2**bits levels from -absmax to +absmax
        nearest = grid.gather(1, (w.unsqueeze(-1) - grid.unsqueeze(1)).abs().argmin(-1))
        assert torch.allclose(out, nearest, atol=1e-6)  # round to nearest level
        assert (out[5] == 0).all()
        counts = distinct_per_row(out)
        assert counts[5] == 1 and counts.max() == 2**bits and counts[torch.arange(64) != 5].min() >= 2
    conv = variants.rtn_absmax(w.T.contiguous(), 1, channel_dim=1)  # Conv1D layout [in, out]
    assert torch.equal(conv, variants.rtn_absmax(w, 1).T)


def test_kl_of_a_distribution_against_itself_is_zero():
    torch.manual_seed(1)
    lp = torch.log_softmax(torch.randn(7, 50), -1)
    found = q.compare_logprobs(lp, lp.clone(), np.arange(7), next_token=True)
    assert np.all(found["kl"] == 0) and found["top1_agree"].all() and np.all(found["top5_overlap"] == 1)
    shifted = q.compare_logprobs(lp, torch.log_softmax(torch.randn(7, 50), -1), np.arange(7), next_token=True)
    assert np.all(shifted["kl"] > 0)


# ---------------------------------------------------------------- the dial on a tiny model


def test_dial_state_tiny(llama):
    state = jobs.dial_state(llama, TaskContext())
    assert state.reference_key == "fp32" and state.reference_note == ""
    assert state.quantizable_modules == 3 * 7  # q, k, v, o, gate, up, down per layer; lm_head is tied: skipped
    by_key = {s.key: s for s in state.statuses}
    assert all(s.available for s in state.statuses), [s.reason for s in state.statuses if not s.available]
    assert "reference" in by_key["fp32"].note
    assert by_key["int2-sim"].estimated_bytes == by_key["fp32"].estimated_bytes  # simulated saves nothing
    assert by_key["nf4"].estimated_bytes < by_key["int8"].estimated_bytes < by_key["fp32"].estimated_bytes
    assert "CUDA" in state.device_note


@pytest.mark.parametrize("mode, module, factor", [("int8", "Linear8bitLt", 4), ("nf4", "Linear4bit", 8)])
def test_tiny_bitsandbytes_variants_are_real(llama, mode, module, factor):
    import bitsandbytes as bnb

    report = visit(llama, mode)
    model = qs.cached_variant(llama, mode).model
    expected_cls = getattr(bnb.nn, module)
    assert sum(isinstance(m, expected_cls) for m in model.modules()) == 21 == report.costs.quantized_modules
    c = report.costs
    assert c.module_class == module and not c.is_reference and c.load_s > 0 and c.forward_s > 0
    assert c.linear_fp32_bytes / c.linear_bytes == pytest.approx(factor, rel=0.2)
    assert c.constants_bytes > 0 and c.memory_bytes == c.footprint_bytes + c.constants_bytes
    assert c.memory_bytes < llama.loaded.model.get_memory_footprint()
    assert 0 < report.comparison.mean_kl < 1 and report.comparison.kl.shape == (llama.trace.num_tokens,)


def test_reference_against_itself(llama):
    report = visit(llama, "fp32")
    cmp = report.comparison
    assert report.costs.is_reference and report.costs.rss_delta_bytes is None
    assert cmp.mean_kl < 1e-7 and cmp.top1_rate == 1.0 and cmp.top5_rate == 1.0
    assert cmp.perplexity_reference == pytest.approx(cmp.perplexity_variant, rel=1e-6)
    assert np.all(cmp.hidden_relative_error < 1e-6)
    assert report.head is not None and report.head.max_abs < 1e-6


def test_simulated_variants_on_their_grid(llama, tiny_models):
    from transformers.pytorch_utils import Conv1D

    for mode, bits in (("int2-sim", 2), ("int1-sim", 1)):
        report = visit(llama, mode)
        assert report.costs.module_class == "Linear (rounded, simulated)"
        assert report.costs.footprint_bytes == llama.loaded.model.get_memory_footprint()  # stored in fp32
        variant = qs.cached_variant(llama, mode).model
        originals = dict(llama.loaded.model.named_modules())
        for name, module in probe.convertible_linears(variant):
            w, original = module.weight, originals[name].weight
            assert torch.equal(w, variants.rtn_absmax(original, bits))
            counts = distinct_per_row(w)
            assert counts.max() <= 2**bits and (bits == 2 or counts.min() == 2)
        assert report.comparison.mean_kl > visit(llama, "nf4").comparison.mean_kl
    gpt2 = loaded_session(tiny_models["gpt2"], TEXT)
    visit(gpt2, "int1-sim")
    convs = [m for _, m in probe.convertible_linears(qs.cached_variant(gpt2, "int1-sim").model) if isinstance(m, Conv1D)]
    assert convs and all(m.weight[:, c].unique().numel() == 2 for m in convs for c in range(m.weight.shape[1]))


def test_head_diff_and_refresh(llama):
    report = visit(llama, "nf4", layer=1, head=2)
    assert (report.head.layer, report.head.head) == (1, 2)
    t = llama.trace.num_tokens
    other = jobs.head_diff(llama, TaskContext(), "nf4", llama.trace.id, 2, 3)
    assert other.reference.shape == (t, t) and other.max_abs == pytest.approx(np.abs(other.diff).max())
    assert np.allclose(other.reference.sum(-1), 1, atol=1e-5)  # rows of attention maps sum to 1
    old = llama.trace.id
    llama.run("A different text now.")
    with pytest.raises(LlmvizError):
        jobs.head_diff(llama, TaskContext(), "nf4", old, 0, 0)
    reports = jobs.refresh(llama, TaskContext(), ["fp32", "nf4", "fp16"], llama.trace.id)
    cached = qs.state_of(llama).variants
    assert [r.key for r in reports] == ["fp32", "nf4"] + (["fp16"] if "fp16" in cached else [])
    assert all(r.comparison.trace_id == llama.trace.id and r.costs.from_cache for r in reports)
    llama.run(TEXT)


def test_encoder_without_lm_head(tiny_models):
    bert = loaded_session(tiny_models["bert"], TEXT)
    report = visit(bert, "int8")
    cmp = report.comparison
    assert cmp.distribution == "" and cmp.kl.size == 0 and math.isnan(cmp.mean_kl)
    assert cmp.hidden_relative_error.shape == (3,) and cmp.hidden_relative_error[-1] > 0
    assert report.head is not None and report.costs.module_class == "Linear8bitLt"


# ---------------------------------------------------------------- bad input


def test_already_quantized_checkpoint_disables_other_modes(nf4_checkpoint):
    session = loaded_session(nf4_checkpoint, TEXT)
    assert session.info.quantization == "nf4"
    state = jobs.dial_state(session, TaskContext())
    assert state.reference_key == "nf4" and "already quantized" in state.reference_note
    for status in state.statuses:
        assert status.available == (status.key == "nf4")
        if status.key != "nf4":
            assert "already quantized (nf4)" in status.reason
    with pytest.raises(LlmvizError, match="already quantized"):
        visit(session, "int8")
    assert not qs.state_of(session).variants
    report = visit(session, "nf4")
    assert report.costs.is_reference and report.costs.module_class == "Linear4bit"
    assert report.comparison.mean_kl < 1e-7


def test_memory_budget_refuses_and_keeps_the_reference(llama):
    reference = llama.loaded
    before = tuple(qs.state_of(llama).variants)
    with pytest.raises(QuantizationMemoryError, match="reference model stays loaded"):
        visit(llama, "fp4-dq", memory_limit_bytes=1_000_000)
    assert llama.loaded is reference and tuple(qs.state_of(llama).variants) == before
    assert visit(llama, "fp32").comparison.mean_kl < 1e-7  # the reference still works


def test_cache_evicts_least_recently_used(tiny_models):
    session = loaded_session(tiny_models["llama"], TEXT)
    need = jobs.dial_state(session, TaskContext()).status("int8").estimated_bytes
    limit = int(need * variants.LOAD_OVERHEAD * 1.6)  # room for loading one, cache share for one
    visit(session, "int8", memory_limit_bytes=limit)
    report = visit(session, "fp4", memory_limit_bytes=limit)
    assert report.cached == ("fp4",) and not report.costs.from_cache
    assert visit(session, "fp4").costs.from_cache


def test_cancelled_load_caches_nothing(tiny_models):
    session = loaded_session(tiny_models["llama"], TEXT)
    token = CancelToken()

    def report(progress):
        if progress.stage.startswith("Loading weights"):
            token.cancel()  # a newer dial position arrived while this one was loading

    with pytest.raises(Cancelled):
        jobs.visit(session, TaskContext(token, report), "nf4", session.trace.id)
    assert not qs.state_of(session).variants


def test_transformers_refuses_bitsandbytes_on_gguf():
    """Why bitsandbytes positions are disabled for .gguf sources (fails if transformers starts allowing it)."""
    from transformers import BitsAndBytesConfig, LlamaConfig
    from transformers.quantizers.auto import get_hf_quantizer

    with pytest.raises(ValueError, match="GGUF"):
        get_hf_quantizer(LlamaConfig(), BitsAndBytesConfig(load_in_8bit=True), None, True, None, "model.gguf")
    assert probe.source_is_gguf(ModelSpec("/models/x.Q4_K.gguf"))
    assert not probe.source_is_gguf(ModelSpec("bundled:smollm2"))


# ---------------------------------------------------------------- the real SmolLM2


@pytest.mark.parametrize("mode, module, factor", [("int8", "Linear8bitLt", 4), ("nf4", "Linear4bit", 8)])
def test_smollm2_bitsandbytes_memory_and_quality(smol, mode, module, factor):
    report = visit(smol, mode)
    c, cmp = report.costs, report.comparison
    assert c.module_class == module and c.quantized_modules == 30 * 7
    # weights of the quantized layers (scales included) against the same layers in fp32
    assert c.linear_fp32_bytes == 30 * (576 * 576 * 2 + 576 * 192 * 2 + 576 * 1536 * 3) * 4
    assert c.linear_fp32_bytes / c.linear_bytes == pytest.approx(factor, rel=0.2)
    assert c.memory_bytes < 0.45 * smol.loaded.model.get_memory_footprint()
    rows = 30 * (576 * 3 + 192 * 2 + 1536 * 2)
    weights = c.linear_fp32_bytes // 4
    assert c.constants_bytes >= (rows * 4 if mode == "int8" else weights // 64 * 4)  # SCB per row / absmax per block
    assert 0 < cmp.mean_kl < 2 and 0.3 < cmp.top1_rate <= 1 and math.isfinite(cmp.perplexity_variant)
    assert cmp.hidden_relative_error.shape == (31,)


def test_smollm2_simulated_int2_int1_channels(smol):
    """SmolLM2's real weights through the rounding the INT2/INT1 variants use (the visit path is tested above)."""
    for bits in (2, 1):
        exactly = total = 0
        for _, module in probe.convertible_linears(smol.loaded.model):
            w = variants.rtn_absmax(module.weight, bits)
            a = w.abs().amax(dim=1, keepdim=True)
            levels = (torch.arange(2**bits, dtype=torch.float32) * 2 / (2**bits - 1) - 1) * a  # as rtn_absmax
            on_grid = torch.zeros_like(w, dtype=torch.bool)
            present = torch.zeros(w.shape[0], dtype=torch.long)
            for k in range(2**bits):
                hit = w == levels[:, k:k + 1]
                on_grid |= hit
                present += hit.any(dim=1)
            assert on_grid.all()  # every weight is one of its channel's 2**bits levels
            exactly += int((present == 2**bits).sum())
            total += w.shape[0]
        assert total == 30 * (576 * 3 + 192 * 2 + 1536 * 2)  # rows of q, o, down; k, v; gate, up
        # INT1: every channel is exactly {-absmax, +absmax}.  INT2: a channel whose absmax is a
        # one-sided outlier leaves the opposite extreme level empty (about 4% of SmolLM2's).
        assert exactly == total if bits == 1 else 0.9 * total < exactly < total
