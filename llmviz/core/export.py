"""Headless export of one trace: model.json, tokens.csv and attention.npz."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from .atomic import AtomicGroup, check_free_space, created_folder, remove_stale_temporaries
from .config_check import MAX_LAYERS
from .errors import InputError
from .specs import ModelInfo
from .tasks import TaskContext
from .trace_data import TraceData

MODEL_KEYS = (
    "source", "title", "architecture", "model_type", "num_parameters", "num_layers", "num_heads",
    "num_kv_heads", "hidden_size", "vocab_size", "dtype", "device", "quantization",
)
_LAYER_ITEM = re.compile(r"(\d{1,12})(?:-(\d{1,12}))?")
NPZ_OVERHEAD = 4096  # zip and .npy headers around the float32 data


def layer_ranges(spec: str | None) -> list[tuple[int, int]] | None:
    """Strict syntax of --layers, checked before any model work: '0,3,5-7' -> [(0, 0), (3, 3), (5, 7)].

    None when no selection was given.  Ranges are kept as pairs (never expanded here), so
    '0-99999999999' costs nothing to refuse; numbers past MAX_LAYERS fit no model.
    """
    if spec is None:
        return None
    if not spec.strip():
        raise InputError("--layers is empty; give layer numbers and ranges like 0,3,5-7 (or leave it out for all).")
    out: list[tuple[int, int]] = []
    for part in spec.split(","):
        match = _LAYER_ITEM.fullmatch(part.strip())
        if match is None:
            what = "an empty item" if not part.strip() else repr(part.strip())
            raise InputError(f"--layers {spec!r}: {what} is not a layer number or range (like 0,3,5-7).")
        lo = int(match.group(1))
        hi = int(match.group(2)) if match.group(2) is not None else lo
        if lo > hi:
            raise InputError(f"--layers {spec!r}: the range {part.strip()} runs backwards; write {hi}-{lo}.")
        if hi >= MAX_LAYERS:
            raise InputError(f"--layers {spec!r}: layer {hi} is beyond any model llmviz loads "
                             f"(at most {MAX_LAYERS:,} layers).")
        out.append((lo, hi))
    return out


def resolve_layers(ranges: list[tuple[int, int]] | None, num_layers: int) -> list[int] | None:
    """The sorted layer numbers of `ranges` for a model with `num_layers` (InputError if outside)."""
    if ranges is None:
        return None
    top = max(hi for _, hi in ranges)
    if top >= num_layers:
        raise InputError(f"--layers: this model has {num_layers} layers, so choose layers between 0 and "
                         f"{num_layers - 1} (got {top}).")
    return sorted({layer for lo, hi in ranges for layer in range(lo, hi + 1)})


def parse_layers(spec: str | None, num_layers: int) -> list[int] | None:
    """'0,3,5-7' -> [0, 3, 5, 6, 7]; None when no selection was given."""
    return resolve_layers(layer_ranges(spec), num_layers)


def model_record(info: ModelInfo) -> dict:
    return {key: getattr(info, key) for key in MODEL_KEYS}


def tokens_frame(trace: TraceData) -> pd.DataFrame:
    tok = trace.tokens
    return pd.DataFrame({
        "position": np.arange(len(tok)),
        "token": list(tok.pieces),
        "id": tok.ids,
        "start": tok.starts,
        "end": tok.ends,
        "text": [tok.text_of(trace.text, i) for i in range(len(tok))],
    })


def check_attention_fits(trace: TraceData, layers: list[int] | None) -> int:
    """Bytes the requested attention tensor needs; raises InputError if it would not fit in memory."""
    cap = trace.capture
    if cap is None:
        raise InputError(trace.attention_note or "This model's attention was not captured.")
    n_layers = cap.num_layers if layers is None else len(layers)
    t = cap.num_tokens
    need = n_layers * cap.num_heads * t * t * 4
    available = psutil.virtual_memory().available
    if need > available // 2:
        per_layer = cap.num_heads * t * t * 4
        fit = max(0, (available // 2) // max(1, per_layer))
        raise InputError(
            f"attention.npz for {n_layers} layers x {cap.num_heads} heads x {t} x {t} tokens needs "
            f"{need / 2**30:.1f} GiB, more than half the memory available ({available / 2**30:.1f} GiB). "
            f"Pass --layers with at most {fit} layers (e.g. --layers 0-{max(0, fit - 1)}), or shorten the text."
        )
    return need


def check_has_tokens(trace: TraceData) -> None:
    """InputError when the text gave the model nothing but special tokens (or nothing at all)."""
    if trace.is_empty or not (~np.asarray(trace.tokens.special, dtype=bool)).any():
        raise InputError("The text has no tokens for this model (only special tokens such as [CLS] [SEP], "
                         "or none at all); give some text.")


def write_export(info: ModelInfo, trace: TraceData, out: Path, layers: list[int] | None = None,
                 ctx: TaskContext | None = None) -> list[Path]:
    """Write the three files into `out` (created), all or nothing; returns their paths.

    Memory and free space are checked first (attention.npz's size is known in advance).
    Each file goes to a temporary name and all three are renamed together at the end, so
    a full disk, a file-size limit or an interruption leaves none of them (and no folder
    that this call created).
    """
    from .attention import all_maps

    ctx = ctx or TaskContext()
    need = check_attention_fits(trace, layers)
    record = model_record(info)
    record.update(num_tokens=trace.num_tokens, truncated_from=trace.truncated_from,
                  attention_layers=layers if layers is not None else list(range(trace.capture.num_layers)))
    model_text = json.dumps(record, indent=2)
    tokens = tokens_frame(trace)
    estimate = need + NPZ_OVERHEAD + len(model_text) + int(tokens.memory_usage(deep=True).sum())
    check_free_space(out, estimate, "The export", "Free some space, choose another --out, pass fewer --layers "
                     "or shorten the text.")
    model_path, tokens_path, attn_path = out / "model.json", out / "tokens.csv", out / "attention.npz"
    with created_folder(out), AtomicGroup() as group:
        remove_stale_temporaries(out)
        ctx.progress(f"Writing {model_path.name}", None)
        with group.path(model_path) as tmp:
            tmp.write_text(model_text, encoding="utf-8")
        ctx.progress(f"Writing {tokens_path.name}", None)
        with group.path(tokens_path) as tmp:
            tokens.to_csv(tmp, index=False)
        ctx.progress(f"Computing and writing {attn_path.name}", None)
        with group.path(attn_path) as tmp:
            maps = all_maps(trace.capture, layers)
            ctx.check()
            with open(tmp, "wb") as f:
                np.savez(f, attention=maps)
            del maps
    return [model_path, tokens_path, attn_path]
