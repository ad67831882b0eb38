"""What the tokenizer comparison sends to the tokens view: frozen types (numpy only, no torch),
the choices of second tokenizer, and the rows of the CSV export.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import numpy as np

from .results import TokenTable

MODEL = "model"
GPT2 = "gpt2-bundled"
BERT = "bert-bundled"
#: The choices offered before any typed id: (key, label).
CHOICES: tuple[tuple[str, str], ...] = (
    (GPT2, "GPT-2 BPE (bundled)"),
    (BERT, "BERT WordPiece, uncased (bundled MiniLM)"),
    (MODEL, "The loaded model's tokenizer"),
)


@dataclass(frozen=True)
class Tokenization:
    """One text through one tokenizer, with what the notebook prints about it."""

    source: str  # the key or id it was loaded from
    name: str  # shown to the user
    class_name: str
    algorithm: str  # 'byte-level BPE', 'WordPiece', 'SentencePiece (metaspace)', ...
    tokens: TokenTable  # with special tokens, as `tokenizer.encode(text)` gives them
    display: tuple[str, ...]  # readable pieces: byte-level bytes decoded, spaces as '␣'
    vocab_size: int  # tokenizer.vocab_size (the notebook's figure)
    total_vocab: int  # len(tokenizer): with added tokens
    decoded: str  # tokenizer.decode(ids), special tokens included (as the notebook prints it)
    round_trip: bool  # decode(ids, skip_special_tokens=True) == text
    has_spans: bool  # False for Python tokenizers that give no character offsets

    @property
    def num_tokens(self) -> int:
        """Tokens without the special ones: `len(tokenizer.tokenize(text))`."""
        return int((~self.tokens.special).sum())

    @property
    def num_special(self) -> int:
        return int(self.tokens.special.sum())


@dataclass(frozen=True)
class TokenizerComparison:
    """The loaded model's tokenization beside a second one (None with `second_error` when it failed)."""

    text: str
    first: Tokenization
    second: Tokenization | None
    second_error: str = ""
    first_differs: np.ndarray | None = None  # bool [T1]: this token's split is not in the other
    second_differs: np.ndarray | None = None  # bool [T2]

    @property
    def count_difference(self) -> int | None:
        """first minus second, as the notebook prints 'Difference: n tokens'."""
        return None if self.second is None else self.first.num_tokens - self.second.num_tokens


def char_name(text: str, start: int, end: int) -> str:
    """'🤖 U+1F916 ROBOT FACE' for one-character spans (what a split byte token belongs to)."""
    if end - start != 1:
        return ""
    ch = text[start]
    return f"{ch} U+{ord(ch):04X} {unicodedata.name(ch, '')}".strip()


def token_rows(tok: Tokenization, text: str) -> list[dict[str, Any]]:
    """One dict per token, for the CSV export and the tooltips."""
    t = tok.tokens
    return [
        {
            "tokenizer": tok.name, "position": i, "token": t.pieces[i], "shown": tok.display[i], "id": int(t.ids[i]),
            "start": int(t.starts[i]), "end": int(t.ends[i]), "text": t.text_of(text, i), "special": bool(t.special[i]),
        }
        for i in range(len(t))
    ]

