"""What the prediction jobs send to the views: frozen dataclasses of numpy arrays (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Candidates whose labels travel with a position's logits (the bar chart shows at most this many).
LABELLED = 100


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
