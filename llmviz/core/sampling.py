"""Sampling settings applied to logits: numpy only, so any process and any thread may use them.

The prediction view re-applies temperature, top-k and top-p live on the GUI thread to
logits it already has; the generation engine draws its tokens from the same functions,
so what the view shows is what the sampler does.
"""

from __future__ import annotations

import numpy as np

LN2 = float(np.log(2.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    """float64 probabilities of `logits` (shifted by the maximum, so large logits do not overflow)."""
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
    """Shannon entropy of a distribution, in bits (zero-probability entries contribute nothing)."""
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / LN2)
