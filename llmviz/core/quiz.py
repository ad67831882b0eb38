"""The quiz's computations: head statistics and questions whose answers come from the loaded model.

Every right answer is computed here from the model, its tokenizers and its attention, each
time the quiz is asked for; distractors are real values of the same kind (other sizes of
the same model, other heads' names, other words' token counts, the next most likely tokens).
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .attention import HeadProbs
from .errors import LlmvizError
from .formatting import bytes_text
from .quiz_results import HeadStatistics, Question, Quiz

if TYPE_CHECKING:
    from .session import Session
    from .tasks import TaskContext
    from .trace_data import TraceData

SIZE_LEVELS = (("FP32", 32), ("FP16", 16), ("INT8", 8), ("INT4", 4))
ROWS_PER_SLAB = 256
#: Words of the course that tokenizers split, for texts whose own words are all single tokens.
COURSE_WORDS = ("tokenization", "quantization", "fascinating", "embeddings", "autoregressive")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{2,}")


def head_statistics(trace: TraceData, ctx: TaskContext | None = None) -> HeadStatistics:
    """Share of attention on the previous token and on the first token, per layer and head,
    averaged over the query positions that have a previous token (1..T-1)."""
    cap = trace.capture
    if cap is None:
        raise LlmvizError(trace.attention_note or "This model's attention was not captured.")
    t = cap.num_tokens
    if t < 2:
        raise LlmvizError("Head statistics need a text of at least two tokens.")
    layers, heads = cap.num_layers, cap.num_heads
    previous = np.zeros((layers, heads), dtype=np.float64)
    first = np.zeros((layers, heads), dtype=np.float64)
    with torch.inference_mode():
        for layer in range(layers):
            if ctx is not None:
                ctx.check()
                ctx.progress("Head statistics", layer / layers, f"layer {layer + 1}/{layers}")
            probs = HeadProbs(cap, layer, range(heads))
            for start in range(1, t, ROWS_PER_SLAB):
                rows = np.arange(start, min(t, start + ROWS_PER_SLAB))
                p = probs.rows(rows)  # [H, R, T]
                idx = torch.from_numpy(rows - 1)
                previous[layer] += p[:, torch.arange(rows.size), idx].sum(-1).double().numpy()
                first[layer] += p[..., 0].sum(-1).double().numpy()
    n = t - 1
    return HeadStatistics(trace.id, (previous / n).astype(np.float32), (first / n).astype(np.float32))


def _choices(right: str, others: list[str], rng: random.Random, count: int = 4) -> tuple[tuple[str, ...], int]:
    """`right` among up to count-1 distinct distractors, shuffled; (choices, index of right)."""
    seen, picked = {right}, []
    for other in others:
        if other not in seen:
            seen.add(other)
            picked.append(other)
        if len(picked) == count - 1:
            break
    choices = [right, *picked]
    rng.shuffle(choices)
    return tuple(choices), choices.index(right)


def _parameters(model: torch.nn.Module, total: int) -> list[str]:
    """Real counts of the same kind: the embeddings alone, everything but them, one block."""
    emb = model.get_input_embeddings()
    emb_n = sum(p.numel() for p in emb.parameters()) if emb is not None else 0
    dup = sum(p.numel() for _, p in model.named_parameters(remove_duplicate=False))
    out = [f"{emb_n:,}", f"{total - emb_n:,}", f"{dup:,}" if dup != total else f"{total * 2:,}"]
    return out + [f"{total // 2:,}", f"{total * 4:,}"]


def _word(text: str) -> str:
    """A word to ask about when the text has none of three letters or more."""
    words = _WORD.findall(text)
    return max(words, key=len) if words else "tokenization"


def _token_counts(session: Session, word: str) -> tuple[int, int]:
    from .tokenizers import load_tokenizer
    from .tokenizers_results import BERT, GPT2

    gpt2, _ = load_tokenizer(session, GPT2)
    bert, _ = load_tokenizer(session, BERT)
    return len(gpt2.tokenize(word)), len(bert.tokenize(word))


def generate(session: Session, ctx: TaskContext, trace: TraceData, seed: int = 0) -> Quiz:
    """Five questions about the loaded model and the current text."""
    loaded = session.require_model()
    info = loaded.info
    rng = random.Random(f"{info.source}:{trace.id}:{seed}")
    questions: list[Question] = []
    values: dict[str, Any] = {}

    total = int(info.num_parameters)
    values["parameters"] = total
    choices, answer = _choices(f"{total:,}", _parameters(loaded.model, total), rng)
    questions.append(Question("parameters", f"How many parameters does {info.title} have?", choices, answer,
                              f"{total:,}: the sum over every weight tensor, as model.num_parameters() counts it.",
                              "model-tree", {}))

    ctx.check()
    # The word the two tokenizers split most (ties: the longer): the one worth asking about.
    words = list(dict.fromkeys(_WORD.findall(trace.text)))[:24] or [_word(trace.text)]
    counted = {w: _token_counts(session, w) for w in words}
    if max(sum(c) for c in counted.values()) <= 2:  # every word is one token in both: ask about a course word
        counted.update({w: _token_counts(session, w) for w in COURSE_WORDS})
        words = [*words, *COURSE_WORDS]
    word = max(words, key=lambda w: (sum(counted[w]), len(w)))
    counts = counted[word]
    values["tokens"] = (word, *counts)
    other_counts = [counted[w] for w in words if w != word]
    fmt = lambda c: f"GPT-2: {c[0]}, BERT: {c[1]}"  # noqa: E731
    distractors = [fmt((counts[1], counts[0])), *(fmt(c) for c in other_counts),
                   fmt((counts[0] + 1, counts[1])), fmt((counts[0], counts[1] + 1)), fmt((counts[0] + 2, counts[1] + 1))]
    choices, answer = _choices(fmt(counts), distractors, rng)
    questions.append(Question("tokens", f"How many tokens do GPT-2 and BERT make of the word “{word}”?", choices, answer,
                              f"GPT-2's byte-level BPE makes {counts[0]}, BERT's WordPiece {counts[1]}.",
                              "tokens", {"second": "bert-bundled"}))

    if trace.capture is not None and trace.num_tokens >= 3:
        ctx.check()
        stats = head_statistics(trace, ctx)
        layer, head = stats.best("previous-token")
        values["previous_head"] = (layer, head, float(stats.previous[layer, head]))
        order = np.argsort(stats.previous, axis=None)
        low = [divmod(int(i), stats.previous.shape[1]) for i in order[: max(3, order.size // 2)]]
        rng.shuffle(low)
        name = lambda lh: f"layer {lh[0]}, head {lh[1]}"  # noqa: E731
        choices, answer = _choices(name((layer, head)), [name(lh) for lh in low], rng)
        questions.append(Question(
            "previous_head", "Which of these heads mostly attends to the previous token?", choices, answer,
            f"Layer {layer}, head {head} puts {stats.previous[layer, head]:.0%} of its attention on the token just "
            "before the query, averaged over this text.", "attention", {"tabs": 0, "layer": layer, "head": head}))

    int4 = total * 4 / 8
    values["int4_bytes"] = int4
    sizes = [bytes_text(total * bits / 8) for level, bits in SIZE_LEVELS if bits != 4] + [bytes_text(total * 2 / 8)]
    choices, answer = _choices(bytes_text(int4), sizes, rng)
    questions.append(Question("int4", f"How big are {info.title}'s weights at INT4 (4 bits per parameter)?", choices,
                              answer, f"{total:,} parameters × 4 bits / 8 = {bytes_text(int4)} (before the "
                              "per-block scales real INT4 formats add).", "quantization", {"tabs": 0}))

    if trace.num_tokens >= 1:
        ctx.check()
        try:
            from .prediction_jobs import next_token

            nxt = next_token(session, ctx, trace.id)
        except LlmvizError:
            nxt = None
        if nxt is not None and len(nxt.top_labels) >= 4:
            labels = [f"“{s}”" for s in nxt.top_labels]
            values["next_token"] = nxt.top_labels[0]
            values["next_token_id"] = int(nxt.top_ids[0])
            choices, answer = _choices(labels[0], labels[1:], rng)
            tail = trace.text[-60:]
            questions.append(Question("next", f"What does the model predict right after “…{tail}”?", choices, answer,
                                      f"{labels[0]} has the highest probability; the others are its next three "
                                      "candidates.", "prediction", {"tabs": 0}))
    return Quiz(trace.id, info.title, tuple(questions), values)
