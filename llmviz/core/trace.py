"""Run a text through a loaded model: a `TraceData` (engine side) holding the `Trace` the window gets.

One forward pass at sdpa speed records per-layer queries/keys (see capture.py), every
hidden state and the final position's logits.  Full-vocabulary logits at every position
are not kept (8192 x 49152 floats = 1.6 GB); views that need a position's logits ask
the worker to compute them from the hidden states.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from .capture import Recorder, recording
from .errors import InputError
from .memory import release_freed_memory
from .models import LoadedModel
from .results import TokenTable, Trace, next_trace_id
from .tasks import TaskContext
from .trace_data import AttentionCapture, TraceData

TRIM_TOKENS = 2048  # from this length on, freed activations are returned to the OS as the trace goes


def token_limit(loaded: LoadedModel) -> int | None:
    """Longest input the model accepts (its position limit), if it declares one."""
    limit = loaded.info.max_positions
    tok_limit = getattr(loaded.tokenizer, "model_max_length", None)
    if isinstance(tok_limit, int) and tok_limit < 10**7:
        limit = min(limit, tok_limit) if limit else tok_limit
    return int(limit) if limit else None


def tokenize(loaded: LoadedModel, text: str, max_tokens: int | None = None) -> tuple[TokenTable, int | None]:
    """Tokenize with character spans; truncate to the model's limit (returns the original count if cut)."""
    tok = loaded.tokenizer
    kwargs: dict[str, Any] = dict(add_special_tokens=True, return_special_tokens_mask=True)
    try:
        enc = tok(text, return_offsets_mapping=True, **kwargs)
        offsets = enc["offset_mapping"]
    except (NotImplementedError, ValueError, TypeError):
        enc = tok(text, **kwargs)  # slow (Python) tokenizers give no spans
        offsets = [(-1, -1)] * len(enc["input_ids"])
    ids = list(enc["input_ids"])
    special = list(enc.get("special_tokens_mask") or [0] * len(ids))
    limit = token_limit(loaded)
    if max_tokens:
        limit = min(limit, max_tokens) if limit else max_tokens
    truncated_from = None
    if limit and len(ids) > limit:
        truncated_from = len(ids)
        ids, offsets, special = ids[:limit], offsets[:limit], special[:limit]
    table = TokenTable(
        ids=np.asarray(ids, dtype=np.int64),
        pieces=tuple(str(p) for p in tok.convert_ids_to_tokens(ids)),
        starts=np.asarray([o[0] for o in offsets], dtype=np.int32),
        ends=np.asarray([o[1] for o in offsets], dtype=np.int32),
        special=np.asarray(special, dtype=bool),
    )
    return table, truncated_from


def layer_modules(model: torch.nn.Module, num_layers: int) -> list[torch.nn.Module]:
    """The model's stack of transformer blocks: the longest ModuleList of length num_layers."""
    best: list[torch.nn.Module] = []
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == num_layers and len(module) > len(best):
            best = list(module)
    return best


@contextlib.contextmanager
def layer_progress(model: torch.nn.Module, num_layers: int, ctx: TaskContext, stage: str,
                   trim: bool = False) -> Iterator[None]:
    """Report progress and honour cancel between transformer blocks.

    With `trim`, freed memory is also returned to the OS before each block: glibc keeps a
    block's freed activations mapped, and at T = 8192 on SmolLM2 that added ~0.45 GB to
    the peak (2.80 -> 2.35 GB for the forward and the copy of its results; same speed).
    """
    layers = layer_modules(model, num_layers)
    handles = []
    for i, layer in enumerate(layers):
        def hook(_module: Any, _args: Any, i: int = i) -> None:
            ctx.progress(stage, i / max(1, len(layers)), f"layer {i + 1}/{len(layers)}")
            if trim:
                release_freed_memory()
        handles.append(layer.register_forward_pre_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def forward_module(loaded: LoadedModel) -> torch.nn.Module:
    """Encoder-decoder models are traced through their encoder."""
    if loaded.info.is_encoder_decoder:
        return loaded.model.get_encoder()
    return loaded.model


def forward_inputs(loaded: LoadedModel, ids: np.ndarray) -> dict[str, Any]:
    device = loaded.input_device
    input_ids = torch.as_tensor(ids, device=device).unsqueeze(0)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def run_trace(loaded: LoadedModel, text: str, ctx: TaskContext | None = None, max_tokens: int | None = None) -> TraceData:
    """Tokenize `text`, run one forward pass with capture, return its TraceData (numpy arrays)."""
    ctx = ctx or TaskContext()
    if not isinstance(text, str):
        raise InputError("The input must be text.")
    info = loaded.info
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    tokens, truncated_from = tokenize(loaded, text, max_tokens)
    timings["tokenize_s"] = time.perf_counter() - t0
    t = len(tokens)
    if t == 0:
        empty = Trace(id=next_trace_id(), model_source=info.source, model_title=info.title, text=text, tokens=tokens,
                      num_states=info.num_layers + 1, hidden_size=info.hidden_size, last_logits=None, attention=None,
                      attention_note="The text has no tokens.", timings=timings)
        return TraceData(empty, np.zeros((info.num_layers + 1, 0, info.hidden_size), np.float32), None)
    ctx.check()
    module = forward_module(loaded)
    kwargs = forward_inputs(loaded, tokens.ids)
    kwargs.update(output_hidden_states=True, use_cache=False, return_dict=True)
    if info.is_decoder:
        kwargs["logits_to_keep"] = 1
    eager = info.capture == "weights"
    if eager:
        kwargs["output_attentions"] = True
    recorder = Recorder()
    t1 = time.perf_counter()
    progress = layer_progress(module, info.num_layers, ctx, "Running the model", trim=t >= TRIM_TOKENS)
    with torch.inference_mode(), recording(recorder), progress:
        try:
            out = module(**kwargs)
        except TypeError:
            kwargs.pop("logits_to_keep", None)
            out = module(**kwargs)
    timings["forward_s"] = time.perf_counter() - t1
    ctx.progress("Collecting results", None)
    t2 = time.perf_counter()
    # Copy layer by layer into one float32 array, dropping each tensor as it is copied, so a
    # long text never holds two copies of every hidden state (585 MB each at T = 8192).
    hidden_list = list(out.hidden_states)
    out["hidden_states"] = None  # item, not attribute: ModelOutput's __setattr__ ignores None and kept every tensor alive
    hidden = np.empty((len(hidden_list), t, hidden_list[0].shape[-1]), dtype=np.float32)
    for i in range(len(hidden_list)):
        hidden[i] = hidden_list[i][0].to("cpu", torch.float32).numpy()
        hidden_list[i] = None
        if t >= TRIM_TOKENS and i % 4 == 3:
            release_freed_memory()  # glibc keeps the freed tensors mapped: return them as the copy grows
    last_logits = None
    logits = getattr(out, "logits", None)
    if logits is not None:
        last_logits = logits[0, -1].to("cpu", torch.float32).numpy().copy()
    attention, note = _attention_from(out, recorder, info, eager)
    del out, hidden_list
    release_freed_memory()
    timings["capture_s"] = time.perf_counter() - t2
    timings["total_s"] = time.perf_counter() - t0
    trace = Trace(
        id=next_trace_id(), model_source=info.source, model_title=info.title, text=text, tokens=tokens,
        num_states=hidden.shape[0], hidden_size=hidden.shape[-1], last_logits=last_logits,
        attention=attention.shape if attention is not None else None, attention_note=note,
        truncated_from=truncated_from, timings=timings,
    )
    trace.token_labels  # noqa: B018 - made here, in the engine, not by the first view that draws
    return TraceData(trace, hidden, attention)


def _attention_from(out: Any, recorder: Recorder, info: Any, eager: bool) -> tuple[AttentionCapture | None, str]:
    if eager:
        attns = getattr(out, "attentions", None)
        if not attns or attns[0] is None:
            return None, f"{info.architecture} does not return attention weights, so llmviz cannot show its attention."
        weights = tuple(a[0].to("cpu", torch.float32).numpy() for a in attns)
        return AttentionCapture("weights", info.num_heads, info.num_kv_heads, weights=weights), ""
    if not recorder.layers:
        return None, f"{info.architecture} did not route attention through transformers' attention interface."
    cap = recorder.to_capture(info.num_heads, info.num_kv_heads)
    heads = cap.queries[0].shape[0]
    if heads != info.num_heads:  # e.g. configs that name heads differently
        cap = AttentionCapture(**{**cap.__dict__, "num_heads": heads, "num_kv_heads": cap.keys[0].shape[0]})
    return cap, ""
