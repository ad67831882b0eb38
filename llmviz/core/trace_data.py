"""What the engine keeps of a run: the window's Trace plus the arrays that stay here.

Every hidden state of an 8,192-token SmolLM2 run is 585 MB and its captured queries and
keys more; they never cross to the window. Jobs read them from `session.trace` (a
TraceData) and send back what a view draws, at screen resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import numpy as np

from .results import AttentionShape, TokenTable, Trace

T = TypeVar("T")


@dataclass(frozen=True)
class AttentionCapture:
    """What is needed to produce any (layer, head) attention map of one trace.

    method 'qk': post-RoPE queries and keys per layer, captured during an sdpa-speed
    forward; a head's map is recomputed on demand (see core.attention.head_map).
    method 'weights': the full maps from an eager forward (models whose attention cannot
    be captured otherwise).  For grouped-query models, query head h uses key head
    h // (num_heads // num_kv_heads), as transformers' repeat_kv does.
    """

    method: str
    num_heads: int
    num_kv_heads: int
    queries: tuple[np.ndarray, ...] = ()  # per layer [H, T, d]
    keys: tuple[np.ndarray, ...] = ()  # per layer [KV, T, d]
    scaling: tuple[float, ...] = ()
    causal: tuple[bool, ...] = ()
    masks: tuple[np.ndarray | None, ...] = ()  # per layer bool [T, T] (True = may attend), shared objects
    biases: tuple[np.ndarray | None, ...] = ()  # per layer float32 [1 or H, T, T] additive
    softcap: tuple[float | None, ...] = ()
    weights: tuple[np.ndarray, ...] = ()  # per layer [H, T, T] when method == 'weights'

    @property
    def num_layers(self) -> int:
        return len(self.weights) if self.method == "weights" else len(self.queries)

    @property
    def num_tokens(self) -> int:
        if self.method == "weights":
            return int(self.weights[0].shape[-1]) if self.weights else 0
        return int(self.keys[0].shape[1]) if self.keys else 0

    def kv_head(self, head: int) -> int:
        return head // max(1, self.num_heads // max(1, self.num_kv_heads))

    def full_bytes(self) -> int:
        """Bytes a float32 [layers, heads, T, T] tensor of every map would take."""
        t = self.num_tokens
        return self.num_layers * self.num_heads * t * t * 4

    @property
    def shape(self) -> AttentionShape:
        """What the window is told about this capture."""
        return AttentionShape(self.method, self.num_layers, self.num_heads, self.num_kv_heads, self.num_tokens)


class _FromTrace(Generic[T]):
    """A TraceData attribute that reads the same-named attribute of its window Trace."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> T:
        if obj is None:
            return cast(T, self)  # read on the class: the descriptor itself
        return getattr(obj.trace, self.name)


@dataclass(frozen=True)
class TraceData:
    """A run as the engine keeps it: `trace` (sent to the window) and its big arrays."""

    trace: Trace
    hidden_states: np.ndarray  # float32 [layers + 1, T, D]: embeddings output, then each layer
    capture: AttentionCapture | None

    # The window's fields, read through for the jobs' convenience.
    id = _FromTrace[int]()
    text = _FromTrace[str]()
    tokens = _FromTrace[TokenTable]()
    num_tokens = _FromTrace[int]()
    is_empty = _FromTrace[bool]()
    last_logits = _FromTrace[np.ndarray | None]()
    attention_note = _FromTrace[str]()
    model_source = _FromTrace[str]()
    model_title = _FromTrace[str]()
    token_labels = _FromTrace[tuple[str, ...]]()
    truncated_from = _FromTrace[int | None]()
    timings = _FromTrace[Mapping[str, float]]()

    def labels(self) -> list[str]:
        return self.trace.labels()
