"""What the explain jobs send to the views: frozen dataclasses of numpy arrays (no torch).

An `Explanation` answers "why this token?" for one target: per-input-token attributions by
several methods, each method's faithfulness curves (ERASER's comprehensiveness and
sufficiency), and, for integrated gradients, the completeness gap.  `NeuronTable` and
`NeuronDetail` are the neuron panel's data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Methods by the name used in CSV columns, the CLI and the view.
METHOD_TITLES = {
    "gxi": "gradient × input",
    "ig": "integrated gradients",
    "occlusion": "occlusion (leave one out)",
    "rollout": "attention rollout",
    "vnorm": "value-weighted attention norm",
}
METHODS = tuple(METHOD_TITLES)
GRADIENT_METHODS = ("gxi", "ig")
BASELINES = ("pad", "zero")
#: The completeness gap (a fraction of |f(x) − f(x')|) the explain dock refines integrated
#: gradients to by default: past it, the attributions visibly fail to add up to the prediction.
REFINE_GAP = 0.01
#: Fractions of tokens removed (comprehensiveness) or kept (sufficiency) along a faithfulness curve:
#: ERASER's bins {1, 5, 10, 20, 50} % plus both ends.
FAITHFULNESS_FRACTIONS = (0.0, 0.01, 0.05, 0.10, 0.20, 0.50, 1.0)
AOPC_FRACTIONS = (0.01, 0.05, 0.10, 0.20, 0.50)
RANDOM = "random"


@dataclass(frozen=True)
class Target:
    """What is explained: the next token after `position`, or (encoders) the similarity to `compare`.

    `kind` is 'next' or 'similarity'.  `score` names f: the log-probability of `token_id`
    at `position` for 'next', the cosine of the mean-pooled sentence embeddings for 'similarity'.
    """

    kind: str
    position: int
    token_id: int = -1
    token_label: str = ""
    compare: str = ""

    def describe(self) -> str:
        if self.kind == "similarity":
            short = self.compare if len(self.compare) <= 40 else self.compare[:39] + "…"
            return f"similarity to “{short}”"
        return f"next token {self.token_label!r} after position {self.position}"


@dataclass(frozen=True)
class Faithfulness:
    """One ranking's curves: f after removing (comprehensiveness) or keeping only (sufficiency)
    the top fraction of tokens; removed tokens take the baseline embedding, so k = 0 is f(x)
    and removing everything is f(baseline), the empty input."""

    method: str  # a METHODS name or RANDOM
    fractions: np.ndarray  # float64 [K]
    removed: np.ndarray  # float64 [K]: f with the top fraction removed
    kept: np.ndarray  # float64 [K]: f with only the top fraction kept
    comprehensiveness: float  # AOPC: mean over AOPC_FRACTIONS of f(x) - f(x without top k); higher is more faithful
    sufficiency: float  # AOPC: mean of f(x) - f(only top k); lower is more faithful


@dataclass(frozen=True)
class Explanation:
    """Attributions of one target to each input token, by method, with their evidence."""

    trace_id: int
    target: Target
    tokens: tuple[str, ...]  # labels of the attributed tokens (positions 0 .. n-1)
    token_ids: np.ndarray  # int64 [n]
    score: float  # f(x)
    baseline_score: float  # f(baseline): every token replaced by the baseline embedding
    baseline: str
    attributions: dict[str, np.ndarray] = field(default_factory=dict)  # method -> float64 [n]
    layer_norms: np.ndarray | None = None  # vnorm per layer: float32 [L, n] at the target row
    faithfulness: dict[str, Faithfulness] = field(default_factory=dict)
    ig_steps: int = 0
    completeness_gap: float = float("nan")  # |sum(ig) - (f(x) - f(baseline))| / |f(x) - f(baseline)|
    groups: np.ndarray | None = None  # int64 [n]: the word each token belongs to, when occlusion went by word
    final: bool = True  # False for a coarse picture that a refined one follows
    timings: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(m for m in METHODS if m in self.attributions)

    def attribution_columns(self) -> dict[str, object]:
        """attributions.csv's columns: position, token, token_id, then one per method."""
        columns: dict[str, object] = {"position": np.arange(len(self.tokens)), "token": list(self.tokens),
                                      "token_id": self.token_ids}
        columns.update({m: self.attributions[m] for m in self.methods})
        return columns

    def faithfulness_rows(self) -> list[dict[str, object]]:
        """faithfulness.csv's rows: per (method, fraction) f with the top fraction removed and with
        only it kept, and the method's areas (ERASER's AOPC) on every row."""
        rows: list[dict[str, object]] = []
        for method in [m for m in METHODS if m in self.faithfulness] + [m for m in (RANDOM,) if m in self.faithfulness]:
            faith = self.faithfulness[method]
            for fraction, removed, kept in zip(faith.fractions, faith.removed, faith.kept):
                rows.append({"method": method, "fraction": float(fraction), "removed_score": float(removed),
                             "kept_score": float(kept), "comprehensiveness": faith.comprehensiveness,
                             "sufficiency": faith.sufficiency})
        return rows


@dataclass(frozen=True)
class NeuronTable:
    """The MLP neurons with the largest activations at one token and layer."""

    trace_id: int
    layer: int
    position: int
    neurons: np.ndarray  # int64 [k]
    activations: np.ndarray  # float32 [k]
    contributions: np.ndarray | None  # float32 [k]: to the target logit through the head (decoders)
    target_id: int
    target_label: str
    width: int  # neurons in the layer


@dataclass(frozen=True)
class NeuronDetail:
    """One neuron: its activation at every token, and the tokens whose logits it raises most."""

    trace_id: int
    layer: int
    neuron: int
    activations: np.ndarray  # float32 [T]
    top_ids: np.ndarray  # int64 [k] (empty for encoders)
    top_labels: tuple[str, ...]
    top_values: np.ndarray  # float32 [k]: logit change per unit of activation
