"""What the attention jobs send to the views: frozen dataclasses of numpy arrays (no torch)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROLLOUT_MAP_MAX_TOKENS = 2048  # rollout's T x T product costs T^3 per layer; beyond it, single rows only
SOURCE_TITLES = {"head": "head", "mean": "mean over heads", "max": "max over heads", "rollout": "attention rollout"}


@dataclass(frozen=True)
class AttentionMap:
    """A map as drawn: exact (block 1) or block-reduced to screen resolution.

    Rows and columns are the shown tokens `positions` (all tokens, or those left after
    hiding the first/special ones); `region` = (row0, row1, col0, col1) indexes into
    `positions`.  matrix[i, j] covers shown rows row0 + i*block ... and columns likewise.
    """

    trace_id: int
    source: str  # 'head', 'mean', 'max' (over the layer's heads) or 'rollout'
    layer: int
    head: int
    matrix: np.ndarray  # float32 [ceil(rows / block), ceil(cols / block)]
    positions: np.ndarray  # int64 [shown tokens]: token positions in the text
    region: tuple[int, int, int, int]
    block: int
    reduce: str  # 'exact' (block 1), 'max' or 'mean'
    renormalised: bool
    compute_s: float

    @property
    def is_full(self) -> bool:
        return self.region == (0, self.positions.size, 0, self.positions.size)

    def describe(self) -> str:
        what = SOURCE_TITLES[self.source]
        if self.source == "head":
            return f"layer {self.layer}, head {self.head}"
        if self.source == "rollout":
            return what
        return f"layer {self.layer}, {what}"


@dataclass(frozen=True)
class AttentionRow:
    """One query token's exact attention over the shown key tokens."""

    trace_id: int
    source: str
    layer: int
    head: int
    query: int  # token position
    positions: np.ndarray  # int64 key positions shown
    values: np.ndarray  # float32, one per shown key


@dataclass(frozen=True)
class LayerOverview:
    """Every head of one layer: thumbnails plus summary statistics over all query rows."""

    trace_id: int
    layer: int
    size: int  # requested cells per side
    reduce: str
    block: int  # tokens per thumbnail cell
    thumbs: np.ndarray  # float32 [H, s, s]
    entropy: np.ndarray  # float32 [H], bits
    distance: np.ndarray  # float32 [H], tokens
    first: np.ndarray  # float32 [H], share of attention on the first token


@dataclass(frozen=True)
class WalkStep:
    """One matrix of an attention walk-through, with the formula that produced it."""

    name: str  # short key: 'x', 'Q', 'K', 'V', 'scores', 'masked', 'weights', 'output'
    formula: str
    matrix: np.ndarray  # float32
    rows: str  # 'tokens' or 'dims'
    cols: str
    signed: bool  # draw with a diverging colour map centred on 0


@dataclass(frozen=True)
class Walkthrough:
    """The SimpleAttention walk-through: a toy from seeded torch modules, or one real head."""

    kind: str  # 'toy' or 'head'
    title: str
    steps: tuple[WalkStep, ...]
    trace_id: int | None = None
    layer: int = -1
    head: int = -1
    note: str = ""

    def step(self, name: str) -> WalkStep:
        return next(s for s in self.steps if s.name == name)
