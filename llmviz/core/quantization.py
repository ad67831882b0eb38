"""The quantization dial's computation: which precisions can run for the loaded model, and how
a variant's predictions, hidden states and attention compare with the reference's on a text.

Loading variants is `quantization_variants`; probing the device is `quantization_probe`;
the state kept between jobs is `quantization_state`; the entry points are `quantization_jobs`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .attention import head_map
from .errors import LlmvizError
from .models import LoadedModel
from .quantization_probe import convertible_linears, device_note, device_type, estimate_bytes, free_bytes, weight_count, why_not
from .quantization_results import (
    PRECISIONS,
    TOP_K,
    Comparison,
    DialState,
    HeadDiff,
    ModeReport,
    ModeStatus,
    Precision,
    VariantCosts,
    precision,
    reference_key,
    theoretical_sizes,
)
from .quantization_state import Observation, QuantizationState, Variant
from .quantization_variants import LOAD_OVERHEAD, linear_bytes
from .session import Session
from .tasks import TaskContext
from .trace import forward_inputs, layer_progress, run_trace
from .trace_data import TraceData

#: Full next-token distributions of both models are held for the compared positions; this
#: caps them (SmolLM2: 1,024 positions x 49,152 tokens x 4 bytes = 200 MB per model).
COMPARE_MAX_TOKENS = 1024
COMPARE_MAX_LOGIT_BYTES = 256 * 2**20


def dial_state_of(session: Session, state: QuantizationState, ctx: TaskContext) -> DialState:
    """Which precisions can run for the loaded model on its device, and why not where not."""
    ref = session.require_model()
    ctx.progress("Checking which precisions can run here", None)
    info = ref.info
    linears = convertible_linears(ref.model)
    quantizable = weight_count(linears)
    rows = sum(m.weight.shape[0] for _, m in linears)
    element = max(1, next(ref.model.parameters()).element_size())
    device = device_type(ref)
    ref_key = reference_key(info)
    free = free_bytes(ref) + sum(v.size_bytes for v in state.variants.values())
    statuses = []
    for p in PRECISIONS:
        ctx.check()
        estimate = estimate_bytes(p, info.num_parameters, quantizable, element, rows)
        reason, note = why_not(p, ref, ref_key, device, quantizable)
        memory_only = False
        if not reason and p.key != ref_key and estimate * LOAD_OVERHEAD > free:
            reason, memory_only = (f"{p.label} needs about {estimate * LOAD_OVERHEAD / 2**30:.2f} GiB to load but only "
                                   f"{free / 2**30:.2f} GiB is free on the {device}."), True
        statuses.append(ModeStatus(p.key, not reason, reason, note, estimate, memory_only))
    already = info.quantization != "none"
    reference_label = (precision(ref_key).label if ref_key else info.dtype) + (
        " (already quantized in its checkpoint)" if already else "")
    reference_note = ""
    if already:
        reference_note = (
            f"The loaded model is already quantized ({info.quantization}): the dial starts from there. Its "
            "original weights are not available, so other precisions cannot be loaded from it; load the "
            "unquantized checkpoint to compare precisions.")
    state.dial = DialState(
        model_source=info.source, model_title=info.title, reference_key=ref_key, reference_label=reference_label,
        reference_note=reference_note, device=device, device_note=device_note(ref),
        num_parameters=info.num_parameters, quantizable_parameters=quantizable, quantizable_modules=len(linears),
        reference_bytes=int(ref.model.get_memory_footprint()), statuses=tuple(statuses),
        theoretical=theoretical_sizes(info.num_parameters),
    )
    return state.dial



def compare_limit(vocab_size: int) -> int:
    """Most positions compared, so two [T, vocab] float32 distributions stay bounded."""
    return max(16, min(COMPARE_MAX_TOKENS, COMPARE_MAX_LOGIT_BYTES // max(1, vocab_size * 4)))


def forward_logprobs(loaded: LoadedModel, ids: np.ndarray, ctx: TaskContext | None = None) -> tuple[Any, float]:
    """(log-probabilities [T, V] float32 on the CPU or None without an LM head, seconds of the forward)."""
    ctx = ctx or TaskContext()
    model = loaded.model.get_encoder() if loaded.info.is_encoder_decoder else loaded.model
    kwargs = forward_inputs(loaded, ids)
    cuda = loaded.input_device.type == "cuda"
    with torch.inference_mode(), layer_progress(model, loaded.info.num_layers, ctx, "Running the model"):
        if cuda:
            torch.cuda.synchronize()
        started = time.perf_counter()
        out = model(**kwargs, use_cache=False, return_dict=True) if loaded.info.is_decoder else model(**kwargs)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
        logits = getattr(out, "logits", None)
        if logits is None or loaded.info.is_encoder_decoder:
            return None, seconds
        return torch.log_softmax(logits[0].float(), dim=-1).cpu(), seconds


def compare_logprobs(reference: Any, variant: Any, ids: np.ndarray, next_token: bool,
                     k: int = TOP_K, chunk: int = 256) -> dict[str, np.ndarray]:
    """Per-position KL(reference || variant), top-1/top-5 agreement, NLL of the text and top-k lists."""
    t = reference.shape[0]
    k = min(k, reference.shape[1])
    kl = np.empty(t, np.float32)
    parts: dict[str, list] = {"ri": [], "rp": [], "vi": [], "vp": []}
    for start in range(0, t, chunk):
        r, v = reference[start:start + chunk], variant[start:start + chunk]
        p = r.exp()  # tokens the reference gives probability 0 contribute nothing, even where r is -inf
        kl[start:start + chunk] = torch.where(p > 0, p * (r - v), 0.0).sum(-1).clamp_min(0).numpy()
        rp, ri = r.topk(k, dim=-1)
        vp, vi = v.topk(k, dim=-1)
        for name, x in (("ri", ri), ("rp", rp.exp()), ("vi", vi), ("vp", vp.exp())):
            parts[name].append(x)
    ri, rp, vi, vp = (torch.cat(parts[n]) for n in ("ri", "rp", "vi", "vp"))
    five = min(5, k)
    overlap = (ri[:, :five, None] == vi[:, None, :five]).any(-1).sum(-1).float() / five
    nll_r = nll_v = np.zeros(0, np.float32)
    if next_token and t > 1:
        target = torch.as_tensor(ids[1:t], dtype=torch.long).unsqueeze(1)
        nll_r = (-reference[:-1].gather(1, target)[:, 0]).numpy()
        nll_v = (-variant[:-1].gather(1, target)[:, 0]).numpy()
    return {
        "kl": kl, "top1_agree": (ri[:, 0] == vi[:, 0]).numpy(), "top5_overlap": overlap.numpy(),
        "nll_reference": nll_r.astype(np.float32), "nll_variant": nll_v.astype(np.float32),
        "topk_reference_ids": ri.numpy(), "topk_reference_probs": rp.numpy().astype(np.float32),
        "topk_variant_ids": vi.numpy(), "topk_variant_probs": vp.numpy().astype(np.float32),
    }


def hidden_relative_error(reference: np.ndarray, variant: np.ndarray) -> np.ndarray:
    """||h_variant - h_reference|| / ||h_reference|| per layer, over all positions; float32 [layers + 1]."""
    layers = min(len(reference), len(variant))
    out = np.empty(layers, np.float32)
    for i in range(layers):
        r = reference[i].astype(np.float64)
        norm = np.linalg.norm(r)
        out[i] = np.linalg.norm(variant[i].astype(np.float64) - r) / norm if norm > 0 else 0.0
    return out


def reference_observation(session: Session, state: QuantizationState, trace: TraceData, n: int, ctx: TaskContext) -> Observation:
    """The reference's trace and log-probabilities for the first `n` tokens of `trace` (kept while the text is current)."""
    obs = state.reference
    if obs is not None and obs.trace_id == trace.id and obs.tokens == n:
        return obs
    state.reference = None  # release the previous text's distributions first
    ref = session.require_model()
    ctx.progress("Running the reference model", None)
    ref_trace = trace if trace.num_tokens <= n else run_trace(ref, trace.text, ctx, max_tokens=n)
    logprobs, seconds = forward_logprobs(ref, ref_trace.tokens.ids, ctx)
    state.reference = Observation(trace.id, n, ref_trace, logprobs, seconds)
    return state.reference


def head_difference(key: str, trace_id: int, ref_trace: TraceData, var_trace: TraceData, layer: int,
                    head: int) -> HeadDiff | None:
    """One head's attention in both traces (None when attention was not captured)."""
    rc, vc = ref_trace.capture, var_trace.capture
    if rc is None or vc is None:
        return None
    layer = min(max(0, layer), rc.num_layers - 1)
    head = min(max(0, head), rc.num_heads - 1)
    return HeadDiff(key, trace_id, layer, head, head_map(rc, layer, head), head_map(vc, layer, head))


def measure(session: Session, state: QuantizationState, p: Precision, loaded: LoadedModel, entry: Variant | None,
             from_cache: bool, trace: TraceData, layer: int, head: int, ctx: TaskContext, keep: bool = True) -> ModeReport:
    """Run the variant on the trace's text and compare; `keep` its trace for later head requests."""
    ref = session.require_model()
    n = min(trace.num_tokens, compare_limit(ref.info.vocab_size))
    obs = reference_observation(session, state, trace, n, ctx)
    ctx.progress(f"Running {p.label}", None)
    var_trace = run_trace(loaded, trace.text, ctx, max_tokens=n)
    if not np.array_equal(var_trace.tokens.ids, obs.trace.tokens.ids):
        raise LlmvizError(f"The {p.label} variant tokenized the text differently from the reference.")
    logprobs, forward_s = forward_logprobs(loaded, var_trace.tokens.ids, ctx)
    ctx.progress("Comparing with the reference", None)
    ids = obs.trace.tokens.ids
    distribution = ""
    if obs.logprobs is not None and logprobs is not None:
        distribution = "next-token" if ref.info.is_decoder else "token"
        found = compare_logprobs(obs.logprobs, logprobs, ids, next_token=ref.info.is_decoder)
    else:
        found = _empty_comparison()
    unique = np.unique(np.concatenate([found["topk_reference_ids"].ravel(), found["topk_variant_ids"].ravel()]))
    comparison = Comparison(
        key=p.key, trace_id=trace.id, num_tokens=n, full_tokens=trace.num_tokens, distribution=distribution,
        pieces={int(i): ref.tokenizer.decode([int(i)]) for i in unique},
        hidden_relative_error=hidden_relative_error(obs.trace.hidden_states, var_trace.hidden_states), **found)
    if keep:
        state.last_traces = {p.key: var_trace}
    head_diff = head_difference(p.key, trace.id, obs.trace, var_trace, layer, head)
    stored = linear_bytes(loaded.model, simulated=p.simulated)
    is_ref = entry is None
    costs = VariantCosts(
        key=p.key, footprint_bytes=int(loaded.model.get_memory_footprint()), constants_bytes=stored.constants,
        linear_bytes=stored.total, linear_fp32_bytes=stored.fp32, rss_delta_bytes=None if is_ref else entry.rss_delta,
        cuda_delta_bytes=None if is_ref else entry.cuda_delta, load_s=loaded.info.load_s if is_ref else entry.load_s,
        forward_s=forward_s, forward_tokens=n, from_cache=from_cache, is_reference=is_ref, device=loaded.info.device,
        quantized_modules=stored.count if (p.uses_bitsandbytes or p.simulated) else 0,
        module_class=stored.module_class + (" (rounded, simulated)" if p.simulated else ""),
    )
    return ModeReport(p.key, costs, comparison, head_diff, tuple(state.variants))


def _empty_comparison() -> dict[str, np.ndarray]:
    f = np.zeros(0, np.float32)
    ids = np.zeros((0, 0), np.int64)
    probs = np.zeros((0, 0), np.float32)
    return {"kl": f, "top1_agree": np.zeros(0, bool), "top5_overlap": f, "nll_reference": f, "nll_variant": f,
            "topk_reference_ids": ids, "topk_reference_probs": probs, "topk_variant_ids": ids,
            "topk_variant_probs": probs}

