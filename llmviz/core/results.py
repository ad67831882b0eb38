"""Result types that cross from the worker thread to the views: frozen, numpy only.

No torch here (and none imported): views use these types, and the GUI must start
without paying for a torch import.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping

import numpy as np

_trace_ids = itertools.count(1)


def next_trace_id() -> int:
    return next(_trace_ids)


_VISIBLE = str.maketrans({" ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍"})


def visible(text: str) -> str:
    """Make whitespace visible in a token label (a leading space is information)."""
    return text.translate(_VISIBLE)


@dataclass(frozen=True)
class TokenTable:
    """The tokens of one text: ids, vocabulary pieces, character spans, special-token flags."""

    ids: np.ndarray  # int64 [T]
    pieces: tuple[str, ...]  # raw vocabulary strings (e.g. 'Ġcat', '##ing')
    starts: np.ndarray  # int32 [T], -1 where the tokenizer gives no span
    ends: np.ndarray  # int32 [T]
    special: np.ndarray  # bool [T]

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def text_of(self, text: str, i: int) -> str:
        """The characters token i covers in `text`, or its vocabulary piece for special tokens."""
        s, e = int(self.starts[i]), int(self.ends[i])
        if 0 <= s < e and not self.special[i]:
            return text[s:e]
        return self.pieces[i]

    def labels(self, text: str) -> list[str]:
        """Display labels with whitespace made visible.

        Byte-level BPE splits one character (an emoji, a CJK sign) into several tokens that
        share its span; the first shows the character, the rest show '…'.
        """
        out: list[str] = []
        prev = (-1, -1)
        for i in range(len(self)):
            span = (int(self.starts[i]), int(self.ends[i]))
            overlaps = span[1] > span[0] and prev[1] > prev[0] and span[0] < prev[1]
            out.append("…" if overlaps and not self.special[i] else visible(self.text_of(text, i)))
            prev = span
        return out

    @classmethod
    def empty(cls) -> "TokenTable":
        z = np.zeros(0, dtype=np.int32)
        return cls(np.zeros(0, dtype=np.int64), (), z, z.copy(), np.zeros(0, dtype=bool))


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


@dataclass(frozen=True)
class Trace:
    """One text run through one model."""

    id: int
    model_source: str
    model_title: str
    text: str
    tokens: TokenTable
    hidden_states: np.ndarray  # float32 [layers + 1, T, D]: embeddings output, then each layer
    last_logits: np.ndarray | None  # float32 [V] at the final position; None for encoders
    attention: AttentionCapture | None
    attention_note: str = ""
    truncated_from: int | None = None  # token count before truncation, when truncated
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    @property
    def is_empty(self) -> bool:
        return self.num_tokens == 0

    @cached_property
    def token_labels(self) -> tuple[str, ...]:
        """The tokens' display labels, made once (run_trace makes them on the worker: for
        8,192 tokens that is ~10 ms the GUI thread would spend when the first view draws)."""
        return tuple(self.tokens.labels(self.text))

    def labels(self) -> list[str]:
        return list(self.token_labels)
