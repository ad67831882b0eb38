"""Sanity checks on a model's configuration, before any weights are allocated.

transformers builds whatever a config.json asks for: 10**9 layers hang at "Loading
weights 0%" while memory grows, 0 or -1 layers load and then fail deep inside a trace.
Each figure is checked against limits generous enough for the largest open models
(Llama 3.1 405B: 126 layers, hidden 16,384, 128 heads, 128,256 tokens, 131,072 positions;
Llama 4 Scout: 10M positions), and the weights' estimated size against the machine.

No torch here: the config is read as plain attributes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from .errors import ModelLoadError
from .formatting import bytes_text

MAX_LAYERS = 1024
MAX_HIDDEN = 131_072
MAX_HEADS = 1024
MAX_HEAD_DIM = 4096
MAX_VOCAB = 2**22  # 4.2M tokens (Gemma: 262k)
MAX_POSITIONS = 2**24  # 16.8M (Llama 4 Scout: 10.5M)
MAX_INTERMEDIATE = 2**20
MAX_PARAMETERS = 2 * 10**12  # the estimate below, for a dense model; 405B is 4e11

LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers")
HIDDEN_KEYS = ("hidden_size", "n_embd", "d_model")
HEAD_KEYS = ("num_attention_heads", "n_head", "num_heads")
KV_KEYS = ("num_key_value_heads", "num_kv_heads")
POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len")
INTERMEDIATE_KEYS = ("intermediate_size", "n_inner", "ffn_dim")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@dataclass(frozen=True)
class ConfigFigures:
    """What the checks read from a config (None: the config does not say)."""

    num_layers: int | None
    hidden_size: int | None
    num_heads: int | None
    vocab_size: int | None
    estimated_parameters: int | None


def _text_config(config: Any) -> Any:
    getter = getattr(config, "get_text_config", None)
    return getter() if callable(getter) else config


def _value(config: Any, keys: tuple[str, ...]) -> tuple[str, Any] | None:
    for key in keys:
        value = getattr(config, key, None)
        if value is not None:
            return key, value
    return None


def _integer(config: Any, keys: tuple[str, ...], low: int, high: int, source: str) -> int | None:
    found = _value(config, keys)
    if found is None:
        return None
    key, value = found
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelLoadError(f"The configuration of {source} is damaged: {key} is {value!r}, not a whole number.")
    if not low <= value <= high:
        raise ModelLoadError(
            f"The configuration of {source} asks for {key} = {value:,}, outside what any real model uses "
            f"({low:,} to {high:,}); llmviz does not try to build it. The config.json is damaged or not meant "
            "for transformers.")
    return value


def check_config(config: Any, source: str) -> ConfigFigures:
    """Raise ModelLoadError for impossible or absurd sizes; return the figures read."""
    text = _text_config(config)
    layers = _integer(text, LAYER_KEYS, 1, MAX_LAYERS, source)
    hidden = _integer(text, HIDDEN_KEYS, 1, MAX_HIDDEN, source)
    heads = _integer(text, HEAD_KEYS, 1, MAX_HEADS, source)
    kv = _integer(text, KV_KEYS, 1, MAX_HEADS, source)
    head_dim = _integer(text, ("head_dim",), 1, MAX_HEAD_DIM, source)
    vocab = _integer(text, ("vocab_size",), 1, MAX_VOCAB, source)
    _integer(text, POSITION_KEYS, 1, MAX_POSITIONS, source)
    intermediate = _integer(text, INTERMEDIATE_KEYS, 1, MAX_INTERMEDIATE, source)
    if heads and kv and (kv > heads or heads % kv):
        raise ModelLoadError(f"The configuration of {source} is inconsistent: {heads} attention heads cannot share "
                             f"{kv} key/value heads (the heads must be a multiple of them).")
    if hidden and heads and head_dim is None and hidden % heads:
        raise ModelLoadError(f"The configuration of {source} is inconsistent: the hidden size ({hidden:,}) is not a "
                             f"multiple of the number of attention heads ({heads}).")
    estimate = None
    if layers and hidden:
        width = intermediate or 4 * hidden
        estimate = layers * (4 * hidden * hidden + 3 * hidden * width) + 2 * (vocab or 0) * hidden
        if estimate > MAX_PARAMETERS:
            raise ModelLoadError(
                f"The configuration of {source} describes about {estimate / 1e12:,.1f} trillion parameters "
                f"({layers:,} layers of width {hidden:,}); llmviz does not try to build it.")
    return ConfigFigures(layers, hidden, heads, vocab, estimate)


def check_memory(figures: ConfigFigures, dtype: Any, source: str) -> None:
    """Refuse, before allocating, weights that cannot fit in this machine's memory and swap together.

    The estimate counts only the dense layers and embeddings, so it errs low (mixture-of-
    experts models are larger): a refusal is certain, a pass is not a promise.
    """
    if not figures.estimated_parameters:
        return
    name = str(dtype).replace("torch.", "")
    per = DTYPE_BYTES.get(name, 2)  # 'auto' keeps the checkpoint's dtype: assume 16-bit
    need = figures.estimated_parameters * per
    have = psutil.virtual_memory().total + psutil.swap_memory().total
    if need > have:
        raise ModelLoadError(
            f"{source} needs about {bytes_text(need)} for its weights in {name if name in DTYPE_BYTES else '16-bit'} "
            f"(about {figures.estimated_parameters / 1e9:,.1f} billion parameters), more than this machine's "
            f"{bytes_text(have)} of memory and swap. Choose a smaller model, a smaller dtype or a quantized precision.")


MAX_CONFIG_BYTES = 16 * 2**20


class _RawConfig:
    """A config.json read as plain JSON, with the attribute access check_config uses."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return self._data.get(name)

    def get_text_config(self) -> _RawConfig:
        inner = self._data.get("text_config")
        return _RawConfig(inner) if isinstance(inner, dict) else self


def check_config_file(folder: str | Path, source: str) -> ConfigFigures | None:
    """check_config on a local folder's config.json as written, before transformers parses it
    (its validators fail on some absurd values with errors such as a ZeroDivisionError).
    None when the folder has no config.json (a GGUF file, a hub id)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        return None
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ModelLoadError(f"{path} is {bytes_text(path.stat().st_size)}; a model configuration is a few "
                                 "kilobytes. It is not a transformers config.json.")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(f"The configuration {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"The configuration {path} is not a JSON object.")
    return check_config(_RawConfig(data), source)
