"""Explain jobs: `fn(session, ctx, **kwargs)` entry points for the explain dock and the CLI.

`explain` answers "why this token?" for the current trace: it resolves the target, runs the
chosen methods (gradient methods first, integrated gradients as a coarse picture through
`ctx.partial` and then refined), and finishes with the faithfulness curves.  `neurons` and
`neuron_detail` feed the neuron panel (core/neurons.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from . import explain as E
from . import explain_attention as EA
from .errors import LlmvizError
from .explain_faithfulness import faithfulness
from .explain_results import BASELINES, GRADIENT_METHODS, METHODS, Explanation, NeuronDetail, NeuronTable, Target
from .models import LoadedModel
from .session import Session
from .tasks import TaskContext

#: Nodes of the integration rule that make the coarse first picture (they run first and are reused).
COARSE_STEPS = 4
#: Occlusion goes word by word (one re-run per word instead of per token) from this length on.
OCCLUSION_BY_WORD_FROM = 256
MAX_STEPS = 1024


def labels(tokenizer: Any, ids: Sequence[int]) -> tuple[str, ...]:
    """Each id as the text it stands for (a visible '␣' for a leading space, '↵' for a newline)."""
    out = []
    for i in ids:
        text = tokenizer.decode([int(i)])
        out.append(text.replace("\n", "↵").replace(" ", "␣", 1) if text.startswith(" ") else text.replace("\n", "↵"))
    return tuple(out)


def token_id_of(loaded: LoadedModel, token: int | str) -> int:
    """A token id from an id or a string that is exactly one token (with or without a leading space)."""
    vocab = int(loaded.model.get_input_embeddings().weight.shape[0])
    if isinstance(token, (int, np.integer)) or (isinstance(token, str) and token.strip().lstrip("-").isdigit()):
        value = int(token)
        if not 0 <= value < vocab:
            raise LlmvizError(f"Token id {value} is not in this model's vocabulary (0..{vocab - 1}).")
        return value
    ids = loaded.tokenizer.encode(str(token), add_special_tokens=False)
    if len(ids) != 1:
        raise LlmvizError(f"{token!r} is {len(ids)} tokens in this model's vocabulary, not one; "
                          "give one token, or its id.")
    return int(ids[0])


def resolve_position(position: int, num_tokens: int) -> int:
    """0-based position of the token whose next-token prediction is explained (-1: the last)."""
    if num_tokens == 0:
        raise LlmvizError("The text has no tokens.")
    pos = num_tokens + position if position < 0 else position
    if not 0 <= pos < num_tokens:
        raise LlmvizError(f"Position {position} is past the text: it has {num_tokens} tokens "
                          f"(positions 0..{num_tokens - 1}, or -1 for the last).")
    return pos


def check_methods(loaded: LoadedModel, methods: Sequence[str]) -> tuple[str, ...]:
    """Known methods, in display order; gradient methods refused for quantized weights."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise LlmvizError(f"Unknown method {', '.join(unknown)}; choose from {', '.join(METHODS)}.")
    if not methods:
        raise LlmvizError("Choose at least one method.")
    quant = loaded.info.quantization
    grads = [m for m in methods if m in GRADIENT_METHODS]
    if grads and quant not in ("none", ""):
        raise LlmvizError(f"{'/'.join(grads)} need gradients, and this model's weights are quantized ({quant}): "
                          "their matrix products have no exact gradient. Use occlusion, rollout or vnorm, "
                          "or load the model without quantization.")
    return tuple(m for m in METHODS if m in methods)


def reference_vector(loaded: LoadedModel, text: str) -> torch.Tensor:
    """The mean-pooled last hidden state of `text`: the sentence embedding an encoder target compares to."""
    if not text.strip():
        raise LlmvizError("An encoder's target is its similarity to a second text; give that text.")
    enc = loaded.tokenizer(text, add_special_tokens=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model(input_ids=enc["input_ids"].to(loaded.input_device),
                           attention_mask=enc["attention_mask"].to(loaded.input_device), return_dict=True)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    return hidden[0].float().mean(0).clone()


def make_target(loaded: LoadedModel, ids: np.ndarray, position: int, token: int | str | None,
                compare: str) -> tuple[Target, E.Scorer]:
    """The target and its scorer; the input is cut after the explained position for decoders."""
    info = loaded.info
    if info.is_encoder_decoder:
        raise LlmvizError(f"{info.title} is an encoder-decoder model; explain covers decoders (next token) "
                          "and encoders (sentence similarity).")
    if not info.is_decoder:
        if token not in (None, -1, ""):
            raise LlmvizError(f"{info.title} is an encoder: it predicts no next token. Explain its sentence "
                              "embedding's similarity to a second text instead (the compare text).")
        ref = reference_vector(loaded, compare)
        return Target("similarity", int(ids.size) - 1, compare=compare), E.Scorer(loaded, ids, reference=ref)
    pos = resolve_position(position, int(ids.size))
    ids = ids[:pos + 1]
    E.check_memory(loaded, int(ids.size))
    scorer = E.Scorer(loaded, ids)
    if token is None or token in (-1, ""):
        with torch.no_grad():
            token_id = int(torch.argmax(scorer.logits(scorer.x)[0]))
    else:
        token_id = token_id_of(loaded, token)
    scorer.token_id = token_id
    return Target("next", pos, token_id, labels(loaded.tokenizer, [token_id])[0]), scorer


def refine_note(first_steps: int, first_gap: float, steps: int, gap: float, limit: float) -> str:
    """What refining integrated gradients did, for the notes under the result."""
    if not np.isfinite(gap):
        return "Integrated gradients: f(x) equals f(baseline), so there is no completeness gap to close."
    done = (f"Integrated gradients: completeness gap {gap:.2%} at {steps} steps" if steps == first_steps else
            f"Integrated gradients refined from {first_steps} steps (gap {first_gap:.2%}) to {steps} steps "
            f"(gap {gap:.2%})")
    if gap <= limit:
        return f"{done}, within {limit:.1%}."
    return f"{done}, still above {limit:.1%}: {MAX_STEPS} steps is the most it refines to."


def refine_integrated_gradients(scorer: E.Scorer, ctx: TaskContext, ig: np.ndarray, steps: int, gap: float,
                                ends: tuple[float, float], limit: float,
                                publish: Callable[[np.ndarray, int, float], None],
                                span: tuple[float, float]) -> tuple[np.ndarray, int, float, str]:
    """Double the steps (up to MAX_STEPS) while the completeness gap is above `limit`.

    Each finer rule's attributions go to `publish` as they complete, so a cancel keeps the
    last.  Pass k takes the k-th half of what is left of `span`, which keeps progress moving
    forward without knowing how many passes the path needs.  Returns the attributions, their
    steps and gap, and a note saying what was done."""
    first_steps, first_gap = steps, gap
    lo, hi = span
    passes = 0
    while np.isfinite(gap) and gap > limit and steps < MAX_STEPS:
        passes += 1
        steps = min(2 * steps, MAX_STEPS)  # Gauss–Legendre rules share no nodes: the finer rule runs in full
        part = (lo + (hi - lo) * (1 - 0.5 ** (passes - 1)), lo + (hi - lo) * (1 - 0.5 ** passes))
        ig = E.integrated_gradients(scorer, steps, ctx, f"Refining integrated gradients ({steps} steps; "
                                    f"gap {gap:.1%})", part)
        gap = E.completeness_gap(ig, *ends)
        publish(ig, steps, gap)
    return ig, steps, gap, refine_note(first_steps, first_gap, steps, gap, limit)


def explain_ids(loaded: LoadedModel, ids: np.ndarray, ctx: TaskContext, trace_id: int = 0, position: int = -1,
                token: int | str | None = None, methods: Sequence[str] = ("gxi", "ig", "occlusion"),
                steps: int = 32, baseline: str = "pad", compare: str = "", with_faithfulness: bool = True,
                by_word: bool | None = None, pieces: Sequence[str] | None = None,
                special: np.ndarray | None = None, refine_gap: float = 0.0) -> Explanation:
    """The whole explanation of one target of a token sequence (the job and the CLI share it).

    With `refine_gap` > 0, integrated gradients doubles its steps (up to MAX_STEPS) while the
    completeness gap is above that fraction, after the other methods, so they are not kept
    waiting; each finer rule's result is published as it completes, and `timings["ig_s"]`
    counts every pass."""
    started = time.perf_counter()
    methods = check_methods(loaded, list(methods))
    if baseline not in BASELINES:
        raise LlmvizError(f"Unknown baseline {baseline!r}; choose from {', '.join(BASELINES)}.")
    steps = int(steps)
    if not 1 <= steps <= MAX_STEPS:
        raise LlmvizError(f"Integration steps must be between 1 and {MAX_STEPS}.")
    if not 0.0 <= refine_gap < 1.0:
        raise LlmvizError("The completeness gap to refine to is a fraction between 0 (no refining) and 1, e.g. 0.01.")
    target, scorer = make_target(loaded, np.asarray(ids, np.int64), position, token, compare)
    if baseline != "pad":
        scorer.set_baseline(baseline)
    n = scorer.n
    ctx.progress("Explaining", 0.0, target.describe())
    ends = scorer.scores(torch.cat([scorer.x, scorer.base]))
    score, base_score = float(ends[0]), float(ends[1])
    attributions: dict[str, np.ndarray] = {}
    timings: dict[str, float] = {}
    notes: list[str] = []
    if scorer.keeps_first:
        notes.append(f"The first token ({labels(loaded.tokenizer, scorer.ids[:1])[0]!r}) stays in every perturbed input: "
                     "it is where the heads park their attention. Integrated gradients and the faithfulness curves "
                     "leave it in place (its IG is 0); gradient × input and occlusion still score it.")
    token_labels = labels(loaded.tokenizer, scorer.ids)
    result = Explanation(trace_id, target, token_labels, scorer.ids.copy(), score, base_score, baseline,
                         attributions, final=False)

    def timed(name: str, fn: Any) -> None:
        t0 = time.perf_counter()
        attributions[name] = fn()
        timings[f"{name}_s"] = time.perf_counter() - t0

    if "gxi" in methods:
        ctx.progress("Gradient × input", 0.02)
        timed("gxi", lambda: E.gradient_x_input(scorer))
    gap = float("nan")
    if "ig" in methods:
        t0 = time.perf_counter()

        def show_coarse(coarse: np.ndarray) -> None:
            timings["ig_first_s"] = time.perf_counter() - t0
            ctx.partial(replace(result, attributions={**attributions, "ig": coarse}, ig_steps=COARSE_STEPS,
                                completeness_gap=E.completeness_gap(coarse, score, base_score),
                                timings=dict(timings)))

        attributions["ig"] = E.integrated_gradients(scorer, steps, ctx, "Integrated gradients", (0.05, 0.6),
                                                    coarse=COARSE_STEPS, on_coarse=show_coarse)
        gap = E.completeness_gap(attributions["ig"], score, base_score)
        timings["ig_s"] = time.perf_counter() - t0
        timings.setdefault("ig_first_s", timings["ig_s"])
        ctx.partial(replace(result, attributions=dict(attributions), ig_steps=steps, completeness_gap=gap,
                            timings=dict(timings)))
    groups = None
    if "occlusion" in methods:
        word = n >= OCCLUSION_BY_WORD_FROM if by_word is None else by_word
        if word:
            groups = E.word_groups(list(pieces)[:n] if pieces is not None else
                                   loaded.tokenizer.convert_ids_to_tokens([int(i) for i in scorer.ids]),
                                   None if special is None else special[:n])
        timed("occlusion", lambda: E.occlusion(scorer, score, ctx, groups, (0.6, 0.75)))
    norms = None
    if "rollout" in methods or "vnorm" in methods:
        ctx.progress("Attention", 0.75)
        try:
            cap, layers = EA.capture_with_values(loaded, scorer.ids)
        except LlmvizError as exc:
            notes.append(str(exc))
        else:
            if "rollout" in methods:
                timed("rollout", lambda: EA.rollout_attribution(cap, scorer.is_decoder))
            if "vnorm" in methods:
                t0 = time.perf_counter()
                norms, with_wo = EA.value_norms(cap, layers, scorer.is_decoder)
                attributions["vnorm"] = EA.layer_mean(norms)
                timings["vnorm_s"] = time.perf_counter() - t0
                if not with_wo:
                    notes.append("This model's attention modules hold no output projection, so the value "
                                 "norms use the heads' value vectors without W_O.")
            del cap, layers
    result = replace(result, attributions=dict(attributions), layer_norms=norms, ig_steps=steps if "ig" in methods else 0,
                     completeness_gap=gap, groups=groups, timings=dict(timings), notes=tuple(notes))
    if "ig" in methods and refine_gap > 0:
        t0 = time.perf_counter()

        def publish(ig: np.ndarray, ig_steps: int, ig_gap: float) -> None:
            ctx.partial(replace(result, attributions={**attributions, "ig": ig}, ig_steps=ig_steps,
                                completeness_gap=ig_gap))

        ctx.partial(result)  # every method so far, while the refining runs
        attributions["ig"], steps, gap, note = refine_integrated_gradients(
            scorer, ctx, attributions["ig"], steps, gap, (score, base_score), refine_gap, publish, (0.75, 0.8))
        timings["ig_s"] += time.perf_counter() - t0
        result = replace(result, attributions=dict(attributions), ig_steps=steps, completeness_gap=gap,
                         timings=dict(timings), notes=(*notes, note))
    if with_faithfulness and attributions:
        ctx.partial(result)
        t0 = time.perf_counter()
        faith = faithfulness(scorer, attributions, score, base_score, ctx, span=(0.8, 1.0))
        timings["faithfulness_s"] = time.perf_counter() - t0
        result = replace(result, faithfulness=faith)
    timings["total_s"] = time.perf_counter() - started
    ctx.progress("Explaining", 1.0)
    return replace(result, timings=timings, final=True)


def explain(session: Session, ctx: TaskContext, trace_id: int, position: int = -1, token: int | str | None = None,
            methods: Sequence[str] = ("gxi", "ig", "occlusion", "rollout", "vnorm"), steps: int = 32,
            baseline: str = "pad", compare: str = "", faithfulness: bool = True,
            by_word: bool | None = None, text: str | None = None, refine_gap: float = 0.0) -> Explanation:
    """Job: explain a target of the current trace (see explain_ids), or of `text` instead (a
    generation step: the prompt and what was generated before it, explained at its end)."""
    trace = session.require_trace(trace_id)
    loaded = session.require_model()
    if text is not None:
        from .trace import tokenize

        tokens, _cut = tokenize(loaded, text)
    else:
        tokens = trace.tokens
    return explain_ids(loaded, tokens.ids, ctx, trace.id, position, token, methods, steps, baseline, compare,
                       faithfulness, by_word, tokens.pieces, tokens.special, refine_gap)


def neurons(session: Session, ctx: TaskContext, trace_id: int, layer: int, position: int = -1,
            token: int | str | None = None, k: int = 20) -> NeuronTable:
    """Job: the top MLP neurons at one token and layer, with their pull on the target logit."""
    from . import neurons as N

    trace = session.require_trace(trace_id)
    return N.neuron_table(session.require_model(), trace.tokens.ids, trace.id, layer, position, token, k, ctx,
                          session.extras)


def neuron_detail(session: Session, ctx: TaskContext, trace_id: int, layer: int, neuron: int,
                  k: int = 12) -> NeuronDetail:
    """Job: one neuron's activation over the text and the tokens whose logits it raises most."""
    from . import neurons as N

    trace = session.require_trace(trace_id)
    return N.neuron_detail(session.require_model(), trace.tokens.ids, trace.id, layer, neuron, k, ctx,
                           session.extras)
