"""Result types that cross from the engine process to the views: frozen, numpy only.

No torch here (and none imported): views use these types, and the window never imports
torch. Trace ids are unique across engine processes (a restarted engine's first trace
must not be mistaken for the old one's), so they count from the time the module loads.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

_trace_ids = itertools.count(int(time.time() * 1e6))


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
    def empty(cls) -> TokenTable:
        z = np.zeros(0, dtype=np.int32)
        return cls(np.zeros(0, dtype=np.int64), (), z, z.copy(), np.zeros(0, dtype=bool))


@dataclass(frozen=True)
class AttentionShape:
    """What the window knows about a trace's captured attention (the arrays stay in the engine).

    For grouped-query models, query head h uses key head h // (num_heads // num_kv_heads).
    """

    method: str  # 'qk' (queries and keys captured, maps recomputed on demand) or 'weights' (eager maps)
    num_layers: int
    num_heads: int
    num_kv_heads: int
    num_tokens: int

    def kv_head(self, head: int) -> int:
        return head // max(1, self.num_heads // max(1, self.num_kv_heads))

    def full_bytes(self) -> int:
        """Bytes a float32 [layers, heads, T, T] tensor of every map would take."""
        return self.num_layers * self.num_heads * self.num_tokens * self.num_tokens * 4


@dataclass(frozen=True)
class Trace:
    """One text run through one model, as the window sees it.

    The big arrays of the run (every hidden state, the captured queries and keys) stay in
    the engine (core/trace_data.py); views ask jobs for what they draw, by `id`.
    """

    id: int
    model_source: str
    model_title: str
    text: str
    tokens: TokenTable
    num_states: int  # hidden states kept: the embeddings' output, then one per layer
    hidden_size: int
    last_logits: np.ndarray | None  # float32 [V] at the final position; None for encoders
    attention: AttentionShape | None
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
