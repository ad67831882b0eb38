"""Next-token prediction: logits at any position, sampling settings, and the logit lens.

Logits at a position are computed from the trace's hidden states through the model's own
final norm and output head, found through the model rather than by per-architecture
attribute names: the head is `model.get_output_embeddings()`; the final norm is the
normalization module the base model runs after its stack of blocks (`ln_f` in GPT-2,
`norm` in Llama).  Whether the last hidden state transformers returns already went
through that norm differs between architectures, so it is checked once per model
against the logits the forward pass returned.

The sampling helpers are numpy only, so the prediction view re-applies temperature,
top-k and top-p live on the GUI thread to logits it already has.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import LlmvizError

if TYPE_CHECKING:
    import torch

    from .session import Session
    from .tasks import TaskContext

EXTRAS_KEY = "prediction"
#: Candidates whose labels travel with a position's logits (the bar chart shows at most this many).
LABELLED = 100
LN2 = float(np.log(2.0))


# ---------------------------------------------------------------- sampling (numpy, any thread)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max()
    p = np.exp(z)
    return p / p.sum()


def is_greedy(temperature: float, top_k: int, top_p: float) -> bool:
    """Temperature 0, top-p 0 or top-k 1 leave a single candidate: the most likely token."""
    return temperature <= 0 or top_p <= 0 or top_k == 1


def sampling_distribution(logits: np.ndarray, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> np.ndarray:
    """The distribution a sampler draws from, float64 [V], in transformers' order: temperature, top-k, top-p.

    top_k 0 means no top-k filter; top-p keeps the most likely tokens until their probability
    reaches p (the token that crosses p included).  Greedy settings give all mass to the argmax.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if is_greedy(temperature, top_k, top_p):
        out = np.zeros_like(logits)
        out[int(np.argmax(logits))] = 1.0
        return out
    p = softmax(logits / temperature)
    if 0 < top_k < p.size:
        kth = np.partition(p, p.size - top_k)[p.size - top_k]
        p = np.where(p >= kth, p, 0.0)
        p /= p.sum()
    if top_p < 1.0:
        order = np.argsort(-p, kind="stable")
        cumulative = np.cumsum(p[order])
        keep = int(np.searchsorted(cumulative, top_p, side="left")) + 1
        mask = np.zeros(p.size, dtype=bool)
        mask[order[:keep]] = True
        p = np.where(mask, p, 0.0)
        p /= p.sum()
    return p


def entropy_bits(p: np.ndarray) -> float:
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / LN2)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class PositionLogits:
    """The model's logits after one position of the trace (what it predicts as the next token)."""

    trace_id: int
    position: int
    logits: np.ndarray  # float32 [V]
    top_ids: np.ndarray  # int64 [LABELLED], by descending logit
    top_labels: tuple[str, ...]
    actual_next: int  # the id that really follows in the text, -1 at the last position
    actual_label: str
    exact: bool  # True when the lens reproduced the forward pass's own logits
    note: str = ""


@dataclass(frozen=True)
class LogitLens:
    """Each layer's best guess for the next token at a window of positions."""

    trace_id: int
    layers: np.ndarray  # int [L']: 0 = embeddings ... num_layers = last
    positions: np.ndarray  # int [P]
    top_ids: np.ndarray  # int64 [L', P, k]
    top_probs: np.ndarray  # float32 [L', P, k]
    top_labels: tuple[tuple[tuple[str, ...], ...], ...]  # [L'][P][k]
    actual_next: np.ndarray  # int64 [P], -1 where the text ends
    actual_prob: np.ndarray  # float32 [L', P]: probability each layer gives the token that really follows (NaN at the end)
    note: str = ""


# ---------------------------------------------------------------- the model's final norm and head (worker)


def output_head(model: "torch.nn.Module") -> "torch.nn.Module | None":
    getter = getattr(model, "get_output_embeddings", None)
    return getter() if getter else None


def final_norm(model: "torch.nn.Module", num_layers: int) -> "torch.nn.Module | None":
    """The normalization module the base model applies after its blocks, or None.

    Found structurally: the base model's children in registration order, the first
    normalization layer registered after the child that holds the block stack.
    """
    import torch

    from .trace import layer_modules

    base = getattr(model, "base_model", model)
    blocks = layer_modules(base, num_layers)
    if not blocks:
        return None
    children = list(base.named_children())
    stack_at = next((i for i, (_n, c) in enumerate(children) if any(m is blocks[0] for m in c.modules())), None)
    if stack_at is None:
        return None
    for _name, child in children[stack_at + 1:]:
        if isinstance(child, (torch.nn.LayerNorm, torch.nn.RMSNorm)) or "norm" in type(child).__name__.lower():
            return child
    return None


class Lens:
    """Hidden state -> logits through the model's final norm and head (built once per model)."""

    def __init__(self, session: "Session") -> None:
        loaded = session.require_model()
        info = loaded.info
        if not info.is_decoder:
            raise LlmvizError(
                f"{info.title} is an {info.family} model: it has no output head that predicts a next token, "
                "so next-token prediction and the logit lens do not apply. Load a decoder such as bundled:smollm2."
            )
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.num_layers = info.num_layers
        self.head = output_head(loaded.model)
        if self.head is None:
            raise LlmvizError(f"{info.architecture} does not expose its output head (get_output_embeddings).")
        self.norm = final_norm(loaded.model, info.num_layers)
        self.last_is_normed: bool | None = None  # decided by `calibrate`
        self.exact = False
        self.note = "" if self.norm is not None else "No final norm found after the blocks; hidden states go to the head as they are."

    @classmethod
    def of(cls, session: "Session") -> "Lens":
        lens = session.extras.get(EXTRAS_KEY)
        if not isinstance(lens, Lens) or lens.model is not session.require_model().model:
            lens = cls(session)
            session.extras[EXTRAS_KEY] = lens
        return lens

    def _to_model(self, vectors: np.ndarray) -> "torch.Tensor":
        import torch

        weight = self.head.weight
        return torch.as_tensor(np.ascontiguousarray(vectors), device=weight.device).to(weight.dtype)

    def calibrate(self, last_hidden: np.ndarray, last_logits: np.ndarray | None) -> None:
        """Decide whether the returned last hidden state is already normalized, from the real logits."""
        import torch

        if self.last_is_normed is not None:
            return
        if last_logits is None or self.norm is None:
            self.last_is_normed = self.norm is None
            return
        with torch.inference_mode():
            h = self._to_model(last_hidden[None])
            raw = self.head(h)[0].float().cpu().numpy()
            normed = self.head(self.norm(h))[0].float().cpu().numpy()
        err_raw = float(np.abs(raw - last_logits).max())
        err_normed = float(np.abs(normed - last_logits).max())
        self.last_is_normed = err_raw <= err_normed
        best = min(err_raw, err_normed)
        self.exact = best <= 1e-3 * max(1.0, float(np.abs(last_logits).max()))
        if not self.exact:
            self.note = (f"The head reproduces this model's logits only approximately (max difference {best:.3g}); "
                         "it may scale or cap its logits after the head.")

    def logits(self, layer: int, vectors: np.ndarray) -> "torch.Tensor":
        """float32 [N, V] logits from hidden states [N, D] of `layer` (0 = embeddings)."""
        import torch

        with torch.inference_mode():
            h = self._to_model(vectors)
            if self.norm is not None and not (layer == self.num_layers and self.last_is_normed):
                h = self.norm(h)
            return self.head(h).float().cpu()


def _prepared_lens(session: "Session", trace: Any) -> Lens:
    lens = Lens.of(session)
    lens.calibrate(trace.hidden_states[-1, -1], trace.last_logits)
    return lens


# ---------------------------------------------------------------- jobs


def next_token(session: "Session", ctx: "TaskContext", trace_id: int, position: int = -1) -> PositionLogits:
    """Job: the full logits after `position` (default the last), with labels for the top candidates."""
    from .tokenizers import readable_ids

    trace = session.require_trace(trace_id)
    t = trace.num_tokens
    if t == 0:
        raise LlmvizError("The text has no tokens.")
    position = t - 1 if position < 0 else min(position, t - 1)
    lens = _prepared_lens(session, trace)
    logits = lens.logits(lens.num_layers, trace.hidden_states[-1, position:position + 1])[0].numpy()
    top = np.argsort(-logits, kind="stable")[:LABELLED]
    actual = int(trace.tokens.ids[position + 1]) if position + 1 < t else -1
    labels = readable_ids(lens.tokenizer, list(top) + ([actual] if actual >= 0 else []))
    return PositionLogits(trace.id, position, logits.astype(np.float32), top.astype(np.int64), labels[:len(top)],
                          actual, labels[-1] if actual >= 0 else "", lens.exact, lens.note)


def logit_lens(session: "Session", ctx: "TaskContext", trace_id: int, start: int = 0, count: int = 24, k: int = 5) -> LogitLens:
    """Job: top-k next-token guesses of every layer's hidden state at positions [start, start + count)."""
    import torch

    from .tokenizers import readable_ids

    trace = session.require_trace(trace_id)
    t = trace.num_tokens
    if t == 0:
        raise LlmvizError("The text has no tokens.")
    start = max(0, min(start, t - 1))
    positions = np.arange(start, min(t, start + max(1, count)))
    lens = _prepared_lens(session, trace)
    layers = np.arange(trace.hidden_states.shape[0])
    nxt = np.array([int(trace.tokens.ids[p + 1]) if p + 1 < t else -1 for p in positions], dtype=np.int64)
    top_ids = np.zeros((len(layers), len(positions), k), np.int64)
    top_probs = np.zeros((len(layers), len(positions), k), np.float32)
    actual = np.full((len(layers), len(positions)), np.nan, np.float32)
    has_next = nxt >= 0
    for layer in layers:
        ctx.progress("Logit lens", layer / len(layers), f"layer {layer}/{len(layers) - 1}")
        probs = torch.softmax(lens.logits(int(layer), trace.hidden_states[layer, positions]), dim=-1)
        values, ids = probs.topk(k, dim=-1)
        top_ids[layer], top_probs[layer] = ids.numpy(), values.numpy()
        if has_next.any():
            rows = np.nonzero(has_next)[0]
            actual[layer, rows] = probs[torch.from_numpy(rows), torch.from_numpy(nxt[rows])].numpy()
    flat = readable_ids(lens.tokenizer, top_ids.reshape(-1))
    labels = tuple(
        tuple(tuple(flat[(li * len(positions) + pi) * k: (li * len(positions) + pi + 1) * k]) for pi in range(len(positions)))
        for li in range(len(layers))
    )
    return LogitLens(trace.id, layers, positions, top_ids, top_probs, labels, nxt, actual, lens.note)
