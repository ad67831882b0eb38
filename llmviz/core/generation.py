"""Step-by-step generation in the engine, one token per job, with what each step looked like.

`begin` runs the prompt once and picks the first token; each `advance` feeds the previous
token through the model with its KV cache (a transformers `DynamicCache`, as
`model.generate` uses) and picks the next.  The state lives in
`session.extras["generation"]` between jobs, so the view can show every token as it
arrives and stop at any time: what was generated stays.  Per step it reports the chosen
token's probability, the entropy of the distribution, the latency and the top candidates;
it keeps the predicting position's queries, so `step_attention` can show, for any step
clicked later, that position's attention (the mean over heads, per layer) from the cache.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache

from .capture import recording
from .errors import InputError, LlmvizError
from .generation_results import FINISH_NOTICES, TOP_K_SHOWN, GenerationSettings, GenerationStep, StepAttention
from .models import LoadedModel
from .sampling import entropy_bits, sampling_distribution, softmax
from .session import Session
from .tasks import TaskContext
from .tokenizers import algorithm_of, readable_ids, readable_piece
from .trace import token_limit

EXTRAS_KEY = "generation"
_run_ids = itertools.count(1)


@dataclass
class _State:
    """Engine-side state of one generation (never leaves the engine)."""

    run_id: int
    settings: GenerationSettings
    prompt_ids: list[int]
    generated: list[int]
    cache: Any
    rng: np.random.Generator
    limit: int | None
    eos_ids: frozenset[int]
    algorithm: str
    fed: int = 0  # tokens whose keys/values are in the cache
    finished: str = ""
    #: per step: (queries [layers, H, d] of the predicting position, scaling per layer, mask rows)
    queries: list[tuple] = field(default_factory=list)


# ---------------------------------------------------------------- attention rows


class _QueryRecorder:
    """Keeps each layer's query at the last position (the one predicting) during a step.

    Storing the query, not the attention row, keeps the step nearly as cheap as a plain
    forward: the row is computed only when a step is clicked, from this query and the keys
    already in the KV cache (`step_attention`).
    """

    def __init__(self) -> None:
        self.queries: list[torch.Tensor] = []  # per layer [H, d]
        self.scaling: list[float] = []
        self.masks: list[torch.Tensor | None] = []  # per layer: the mask row of the last position, or None

    def record(self, module: Any, query: Any, key: Any, mask: Any, kwargs: dict, value: Any = None) -> None:
        if getattr(module, "is_cross_attention", False):
            return
        self.queries.append(query[0, :, -1])
        self.scaling.append(float(kwargs.get("scaling") or query.shape[-1] ** -0.5))
        self.masks.append(mask[0, 0, -1].clone() if isinstance(mask, torch.Tensor) else None)


def _row_from_query(q: torch.Tensor, keys: torch.Tensor, scaling: float, mask: torch.Tensor | None) -> torch.Tensor:
    """softmax(q k^T * scaling) averaged over heads; grouped-query heads share their key head."""
    heads, kv = q.shape[0], keys.shape[0]
    scores = (q.float().reshape(kv, heads // kv, -1) @ keys.float().transpose(-1, -2)).reshape(heads, -1) * scaling
    if mask is not None:
        mask = mask[: scores.shape[-1]]
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask.float()
    return torch.softmax(scores, dim=-1).mean(dim=0)


# ---------------------------------------------------------------- prompt


def prompt_ids(loaded: LoadedModel, text: str, chat: bool) -> list[int]:
    """Token ids of the prompt: the text as is, or wrapped in the tokenizer's chat template."""
    tok = loaded.tokenizer
    if chat:
        if not getattr(tok, "chat_template", None):
            raise InputError(f"{loaded.info.title} has no chat template; untick 'chat' to continue the text as it is.")
        return list(tok.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                            tokenize=True, return_dict=False))
    return list(tok(text, add_special_tokens=True)["input_ids"])


def _eos_ids(loaded: LoadedModel) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(loaded.model, "generation_config", None), loaded.model.config, loaded.tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)


# ---------------------------------------------------------------- the steps


def _drop_unfinished(state: _State) -> None:
    """Remove keys/values a step wrote before it was interrupted (maybe only in its first layers)."""
    for layer in state.cache.layers:
        extra = layer.get_seq_length() - state.fed
        if extra > 0:
            layer.crop(-extra)  # transformers 5: a negative count of tokens to remove


def _forward(loaded: LoadedModel, state: _State, new_ids: list[int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Feed `new_ids` after the cached tokens; returns the last position's logits (and, for eager
    models, the attention rows that come with the output)."""
    model = loaded.model
    device = loaded.input_device
    _drop_unfinished(state)
    ids = torch.tensor([new_ids], device=device)
    start = state.fed
    kwargs: dict[str, Any] = dict(
        input_ids=ids, cache=state.cache, use_cache=True, logits_to_keep=1,
        attention_mask=torch.ones(1, start + len(new_ids), dtype=torch.long, device=device),
        position_ids=torch.arange(start, start + len(new_ids), device=device).unsqueeze(0),
    )
    eager = loaded.info.capture == "weights"
    want = state.settings.record_attention
    recorder = _QueryRecorder()
    if want and eager:
        kwargs["output_attentions"] = True
    with torch.inference_mode():
        if want and not eager:
            with recording(recorder):
                out = model(**kwargs)
            if recorder.queries:
                state.queries.append((torch.stack(recorder.queries), recorder.scaling, recorder.masks))
        else:
            out = model(**kwargs)
        rows = None
        if want and eager and getattr(out, "attentions", None):
            rows = torch.stack([a[0, :, -1].float().mean(0) for a in out.attentions]).cpu().numpy()
        logits = out.logits[0, -1].float().cpu().numpy()
    state.fed += len(new_ids)
    return logits, rows


def _choose(state: _State, logits: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(token, model distribution, sampling distribution)."""
    s = state.settings
    model_p = softmax(logits)
    if s.greedy:
        token = int(np.argmax(logits))
        sample_p = np.zeros_like(model_p)
        sample_p[token] = 1.0
        return token, model_p, sample_p
    sample_p = sampling_distribution(logits, s.temperature, s.top_k, s.top_p)
    cumulative = np.cumsum(sample_p)
    token = int(np.searchsorted(cumulative, state.rng.random() * cumulative[-1], side="right"))
    return min(token, sample_p.size - 1), model_p, sample_p


def _step(loaded: LoadedModel, state: _State, ctx: TaskContext, new_ids: list[int], prompt: bool) -> GenerationStep:
    started = time.perf_counter()
    logits, rows = _forward(loaded, state, new_ids)
    token, model_p, sample_p = _choose(state, logits)
    latency = time.perf_counter() - started
    state.generated.append(token)
    total = len(state.prompt_ids) + len(state.generated)
    if len(state.generated) >= state.settings.max_new_tokens:
        state.finished = "max_tokens"
    if token in state.eos_ids and state.settings.stop_at_eos:
        state.finished = "eos"
    if state.limit is not None and total >= state.limit:
        state.finished = "context"
    if ctx.token.cancelled:  # the token is computed: keep it, and stop here
        state.finished = state.finished or "cancelled"
    top = np.argpartition(-model_p, TOP_K_SHOWN)[:TOP_K_SHOWN]
    top = top[np.argsort(-model_p[top], kind="stable")]
    tok = loaded.tokenizer
    notice = FINISH_NOTICES.get(state.finished, "").format(limit=state.limit or 0)
    return GenerationStep(
        run_id=state.run_id, step=len(state.generated) - 1, token_id=token,
        piece=readable_piece(str(tok.convert_ids_to_tokens(token)), state.algorithm),
        text=tok.decode(state.generated, skip_special_tokens=True),
        prob=float(model_p[token]), sample_prob=float(sample_p[token]), entropy_bits=entropy_bits(model_p),
        latency_s=latency, top_ids=top.astype(np.int64), top_probs=model_p[top].astype(np.float32),
        top_pieces=readable_ids(tok, top), attention=rows, context_len=state.fed, prompt_tokens=len(state.prompt_ids),
        finished=state.finished, notice=notice,
        prompt_text=tok.decode(state.prompt_ids) if prompt else "",
        prompt_pieces=readable_ids(tok, state.prompt_ids) if prompt else (),
    )


def begin(session: Session, ctx: TaskContext, text: str, settings: GenerationSettings) -> GenerationStep:
    """Read the prompt and pick the first token; the state for `advance` is kept in the session."""
    loaded = session.require_model()
    info = loaded.info
    if not info.is_decoder:
        raise LlmvizError(f"{info.title} is an {info.family} model: it does not generate text. "
                          "Load a decoder such as bundled:smollm2.")
    s = settings
    if s.max_new_tokens < 1:
        raise InputError("Generate at least one token.")
    if not isinstance(text, str) or not text.strip():
        raise InputError("Type a prompt first: generation continues the text in the box above.")
    session.extras.pop(EXTRAS_KEY, None)  # free the previous run's cache first
    ids = prompt_ids(loaded, text, s.chat)
    limit = token_limit(loaded)
    if not ids:
        raise InputError("The prompt has no tokens for this model.")
    if limit is not None and len(ids) >= limit:
        raise InputError(f"The prompt has {len(ids):,} tokens; {info.title} reads at most {limit:,}, "
                         "so there is no room to generate. Shorten the text.")
    state = _State(
        run_id=next(_run_ids), settings=s, prompt_ids=ids, generated=[], cache=DynamicCache(config=loaded.model.config),
        rng=np.random.default_rng(s.seed), limit=limit, eos_ids=_eos_ids(loaded), algorithm=algorithm_of(loaded.tokenizer),
    )
    session.extras[EXTRAS_KEY] = state
    ctx.progress("Reading the prompt", None, f"{len(ids)} tokens")
    return _step(loaded, state, ctx, ids, prompt=True)


def advance(session: Session, ctx: TaskContext, run_id: int, max_new_tokens: int | None = None) -> GenerationStep:
    """The next token of run `run_id`; `max_new_tokens` sets a new total, to continue a finished run."""
    state = session.extras.get(EXTRAS_KEY)
    if not isinstance(state, _State) or state.run_id != run_id:
        raise LlmvizError("This generation is no longer available (the model changed or a new one started). "
                          "Press Generate again.")
    ctx.check()
    if max_new_tokens is not None:  # "Continue": this many in all, even after an end-of-sequence or a stop
        state.settings = GenerationSettings(**{**state.settings.__dict__, "max_new_tokens": max_new_tokens})
    elif state.finished:
        raise LlmvizError(f"This generation has finished ({state.finished}); ask for more tokens to continue.")
    if state.finished == "context":
        raise LlmvizError(FINISH_NOTICES["context"].format(limit=state.limit or 0))
    if len(state.generated) >= state.settings.max_new_tokens:
        raise LlmvizError(f"{len(state.generated)} tokens are generated already; ask for more to continue.")
    state.finished = ""
    return _step(session.require_model(), state, ctx, [state.generated[-1]], prompt=False)


def step_attention(session: Session, run_id: int, step: int) -> StepAttention:
    """The attention row (mean over heads, per layer) of the position that predicted `step`."""
    state = session.extras.get(EXTRAS_KEY)
    if not isinstance(state, _State) or state.run_id != run_id:
        raise LlmvizError("This generation is no longer available, so its attention cannot be shown.")
    if not 0 <= step < len(state.queries):
        raise LlmvizError("No attention was recorded for this step.")
    queries, scaling, masks = state.queries[step]
    context = len(state.prompt_ids) + step
    with torch.inference_mode():
        rows = [_row_from_query(queries[layer], state.cache.layers[layer].keys[0, :, :context], scaling[layer], masks[layer])
                for layer in range(queries.shape[0])]
        matrix = torch.stack(rows).cpu().numpy().astype(np.float32)
    return StepAttention(run_id, step, matrix)
