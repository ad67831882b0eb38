"""Next-token prediction: logits at any position of a trace, and the logit lens.

Logits at a position are computed from the trace's hidden states through the model's own
final norm and output head, found through the model rather than by per-architecture
attribute names: the head is `model.get_output_embeddings()`; the final norm is the
normalization module the base model runs after its stack of blocks (`ln_f` in GPT-2,
`norm` in Llama).  Whether the last hidden state transformers returns already went
through that norm differs between architectures, so it is checked once per model
against the logits the forward pass returned.

The sampling settings (temperature, top-k, top-p) are numpy only and live in `sampling`.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import LlmvizError
from .prediction_results import LABELLED, LogitLens, PositionLogits
from .session import Session
from .tasks import TaskContext
from .tokenizers import readable_ids
from .trace import layer_modules
from .trace_data import TraceData

EXTRAS_KEY = "prediction"


def output_head(model: torch.nn.Module) -> torch.nn.Module | None:
    """The module that maps hidden states to vocabulary logits, or None."""
    getter = getattr(model, "get_output_embeddings", None)
    return getter() if getter else None


def final_norm(model: torch.nn.Module, num_layers: int) -> torch.nn.Module | None:
    """The normalization module the base model applies after its blocks, or None.

    Found structurally: the base model's children in registration order, the first
    normalization layer registered after the child that holds the block stack.
    """
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

    def __init__(self, session: Session) -> None:
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
        head = output_head(loaded.model)
        if head is None:
            raise LlmvizError(f"{info.architecture} does not expose its output head (get_output_embeddings).")
        self.head: torch.nn.Module = head
        self.norm = final_norm(loaded.model, info.num_layers)
        self.last_is_normed: bool | None = None  # decided by `calibrate`
        self.exact = False
        self.note = ("" if self.norm is not None
                     else "No final norm found after the blocks; hidden states go to the head as they are.")

    @classmethod
    def of(cls, session: Session) -> Lens:
        """The session's lens for its current model (built on first use, rebuilt after a model change)."""
        lens = session.extras.get(EXTRAS_KEY)
        if not isinstance(lens, Lens) or lens.model is not session.require_model().model:
            lens = cls(session)
            session.extras[EXTRAS_KEY] = lens
        return lens

    def _to_model(self, vectors: np.ndarray) -> torch.Tensor:
        weight = self.head.weight
        return torch.as_tensor(np.ascontiguousarray(vectors), device=weight.device).to(weight.dtype)

    def calibrate(self, last_hidden: np.ndarray, last_logits: np.ndarray | None) -> None:
        """Decide whether the returned last hidden state is already normalized, from the real logits."""
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

    def logits(self, layer: int, vectors: np.ndarray) -> torch.Tensor:
        """float32 [N, V] logits from hidden states [N, D] of `layer` (0 = embeddings)."""
        with torch.inference_mode():
            h = self._to_model(vectors)
            if self.norm is not None and not (layer == self.num_layers and self.last_is_normed):
                h = self.norm(h)
            return self.head(h).float().cpu()


def prepared_lens(session: Session, trace: TraceData) -> Lens:
    """The session's lens, calibrated against the trace's own last logits."""
    lens = Lens.of(session)
    lens.calibrate(trace.hidden_states[-1, -1], trace.last_logits)
    return lens


def _require_tokens(trace: TraceData) -> int:
    if trace.num_tokens == 0:
        raise LlmvizError("The text has no tokens.")
    return trace.num_tokens


def position_logits(session: Session, trace: TraceData, position: int) -> PositionLogits:
    """The full logits after `position` (negative: the last), with labels for the top candidates."""
    t = _require_tokens(trace)
    position = t - 1 if position < 0 else min(position, t - 1)
    lens = prepared_lens(session, trace)
    logits = lens.logits(lens.num_layers, trace.hidden_states[-1, position:position + 1])[0].numpy()
    top = np.argsort(-logits, kind="stable")[:LABELLED]
    actual = int(trace.tokens.ids[position + 1]) if position + 1 < t else -1
    labels = readable_ids(lens.tokenizer, list(top) + ([actual] if actual >= 0 else []))
    return PositionLogits(trace.id, position, logits.astype(np.float32), top.astype(np.int64), labels[:len(top)],
                          actual, labels[-1] if actual >= 0 else "", lens.exact, lens.note)


def lens_table(session: Session, ctx: TaskContext, trace: TraceData, start: int, count: int, k: int) -> LogitLens:
    """Top-k next-token guesses of every layer's hidden state at positions [start, start + count)."""
    t = _require_tokens(trace)
    start = max(0, min(start, t - 1))
    positions = np.arange(start, min(t, start + max(1, count)))
    lens = prepared_lens(session, trace)
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
