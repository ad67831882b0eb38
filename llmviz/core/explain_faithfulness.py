"""Faithfulness of an attribution: does the model's own behaviour support its ranking?

ERASER's measures (DeYoung et al. 2020): remove the top k % of tokens by a method's ranking
and re-run (comprehensiveness: a faithful ranking makes f fall), or keep only them
(sufficiency: a faithful ranking keeps f close).  A removed token takes the baseline
embedding, so positions stay where they were (a decoder still predicts at the explained
position, and every variant of one text batches without padding); k = 0 is f(x) and
removing every token is f(baseline), the empty input.  A random ranking (averaged over a
few seeds) is the yardstick every method should beat.
"""

from __future__ import annotations

import numpy as np
import torch

from .explain import Scorer, ceil_count
from .explain_results import AOPC_FRACTIONS, FAITHFULNESS_FRACTIONS, RANDOM, Faithfulness
from .tasks import TaskContext

RANDOM_SEEDS = 3


def ranking(scores: np.ndarray) -> np.ndarray:
    """Token positions from the most to the least supportive (stable for ties)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def _masks(order: np.ndarray, fractions: tuple[float, ...]) -> np.ndarray:
    """bool [K, n]: True where a token is among the top fraction of `order`."""
    n = order.size
    out = np.zeros((len(fractions), n), dtype=bool)
    for i, f in enumerate(fractions):
        out[i, order[:ceil_count(f, n)]] = True
    return out


def aopc(score: float, values: np.ndarray, fractions: np.ndarray) -> float:
    """ERASER's area over the perturbation curve: mean of f(x) − f(perturbed) over its bins."""
    picks = [int(np.argmin(np.abs(fractions - f))) for f in AOPC_FRACTIONS]
    return float(np.mean(score - values[picks]))


def faithfulness(scorer: Scorer, rankings: dict[str, np.ndarray], score: float, baseline_score: float,
                 ctx: TaskContext, fractions: tuple[float, ...] = FAITHFULNESS_FRACTIONS,
                 seeds: int = RANDOM_SEEDS, span: tuple[float, float] = (0.0, 1.0)) -> dict[str, Faithfulness]:
    """Comprehensiveness and sufficiency curves for each ranking and for random ones."""
    n = scorer.n
    rng = np.random.default_rng(0)
    orders = {name: ranking(s) for name, s in rankings.items()}
    randoms = [rng.permutation(n) for _ in range(seeds)]
    inner = [i for i, f in enumerate(fractions) if 0 < ceil_count(f, n) < n]
    # one batch of every perturbed input; the ends (nothing or everything removed) are known
    variants: list[np.ndarray] = []
    for order in list(orders.values()) + randoms:
        top = _masks(order, fractions)[inner]
        variants.extend(top)  # removed: the top tokens take the baseline
        variants.extend(~top)  # kept: every other token takes the baseline
    values = np.empty(0)
    if variants:
        removed = torch.as_tensor(np.stack(variants), device=scorer.device)[:, :, None]
        embeds = torch.where(removed, scorer.base, scorer.x)
        sub = TaskContext(ctx.token, lambda p: ctx.progress(
            "Faithfulness", span[0] + (span[1] - span[0]) * (p.fraction or 0.0)))
        values = scorer.scores(embeds, sub, "Faithfulness")
    frac = np.asarray(fractions, dtype=np.float64)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    at = 0
    for name in list(orders) + [f"{RANDOM}{i}" for i in range(seeds)]:
        rem = np.array([score if ceil_count(f, n) == 0 else baseline_score for f in fractions])
        kept = np.array([baseline_score if ceil_count(f, n) == 0 else score for f in fractions])
        rem[inner] = values[at:at + len(inner)]
        kept[inner] = values[at + len(inner):at + 2 * len(inner)]
        at += 2 * len(inner)
        curves[name] = (rem, kept)
    out = {name: _result(name, frac, *curves[name], score) for name in orders}
    if seeds:
        rem = np.mean([curves[f"{RANDOM}{i}"][0] for i in range(seeds)], axis=0)
        kept = np.mean([curves[f"{RANDOM}{i}"][1] for i in range(seeds)], axis=0)
        out[RANDOM] = _result(RANDOM, frac, rem, kept, score)
    return out


def _result(name: str, fractions: np.ndarray, removed: np.ndarray, kept: np.ndarray, score: float) -> Faithfulness:
    return Faithfulness(name, fractions, removed, kept, aopc(score, removed, fractions), aopc(score, kept, fractions))
