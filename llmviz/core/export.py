"""Headless export of one trace: model.json, tokens.csv and attention.npz."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from .errors import InputError
from .results import Trace
from .specs import ModelInfo

MODEL_KEYS = (
    "source", "title", "architecture", "model_type", "num_parameters", "num_layers", "num_heads",
    "num_kv_heads", "hidden_size", "vocab_size", "dtype", "device", "quantization",
)


def parse_layers(spec: str | None, num_layers: int) -> list[int] | None:
    """'0,3,5-7' -> [0, 3, 5, 6, 7]; None when no selection was given."""
    if not spec:
        return None
    out: list[int] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            out.extend(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            raise InputError(f"--layers: {part!r} is not a layer number or range (like 0,3,5-7).") from None
    bad = [x for x in out if not 0 <= x < num_layers]
    if bad or not out:
        raise InputError(f"--layers: choose layers between 0 and {num_layers - 1} (got {spec!r}).")
    return sorted(set(out))


def model_record(info: ModelInfo) -> dict:
    return {key: getattr(info, key) for key in MODEL_KEYS}


def tokens_frame(trace: Trace) -> pd.DataFrame:
    tok = trace.tokens
    return pd.DataFrame({
        "position": np.arange(len(tok)),
        "token": list(tok.pieces),
        "id": tok.ids,
        "start": tok.starts,
        "end": tok.ends,
        "text": [tok.text_of(trace.text, i) for i in range(len(tok))],
    })


def check_attention_fits(trace: Trace, layers: list[int] | None) -> int:
    """Bytes the requested attention tensor needs; raises InputError if it would not fit in memory."""
    cap = trace.attention
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


def write_export(info: ModelInfo, trace: Trace, out: Path, layers: list[int] | None = None) -> list[Path]:
    """Write the three files into `out` (created); returns their paths."""
    from .attention import all_maps

    check_attention_fits(trace, layers)
    out.mkdir(parents=True, exist_ok=True)
    model_path, tokens_path, attn_path = out / "model.json", out / "tokens.csv", out / "attention.npz"
    record = model_record(info)
    record.update(num_tokens=trace.num_tokens, truncated_from=trace.truncated_from,
                  attention_layers=layers if layers is not None else list(range(trace.attention.num_layers)))
    model_path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    tokens_frame(trace).to_csv(tokens_path, index=False)
    np.savez(attn_path, attention=all_maps(trace.attention, layers))
    return [model_path, tokens_path, attn_path]
