"""Published scaling-law fits, in place of the notebook's made-up "performance scores".

Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv:2001.08361
(equations 1.1-1.3 and 1.5; losses in nats per token on WebText2; N counts
non-embedding parameters; compute C_min in PF-days):
    L(N) = (N_c / N)^alpha_N            alpha_N = 0.076, N_c = 8.8e13 parameters
    L(D) = (D_c / D)^alpha_D            alpha_D = 0.095, D_c = 5.4e13 tokens
    L(C) = (C_c / C_min)^alpha_C        alpha_C = 0.050, C_c = 3.1e8 PF-days
    L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D

Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (Chinchilla),
arXiv:2203.15556, Approach 3 (section 3.3, equation 2; N counts all parameters):
    L(N, D) = E + A / N^alpha + B / D^beta
    E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28
With training compute C ~ 6 N D FLOPs, minimising L(N, C / 6N) gives (their equation 4)
    N_opt = G (C/6)^a,  D_opt = G^-1 (C/6)^b,  G = (alpha A / (beta B))^(1/(alpha+beta)),
    a = beta / (alpha + beta),  b = alpha / (alpha + beta).

Besiroglu et al. 2024, arXiv:2404.10102, found that these rounded Approach-3 constants
disagree with Chinchilla's own Approaches 1 and 2 (about 20 tokens per parameter): the
frontier drawn from them asks for several times more tokens per parameter.  The view says so.

Pure numpy: cheap enough to evaluate on the GUI thread while a slider moves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOPS_PER_PARAMETER_TOKEN = 6.0  # C ~ 6 N D: forward (2ND) plus backward (4ND)
PF_DAY = 1e15 * 86400.0  # FLOPs in one petaflop/s-day

ArrayLike = float | np.ndarray


@dataclass(frozen=True)
class PowerLaw:
    """L(X) = (X_c / X)^alpha."""

    alpha: float
    x_c: float

    def __call__(self, x: ArrayLike) -> ArrayLike:
        return (self.x_c / np.asarray(x, dtype=float)) ** self.alpha


@dataclass(frozen=True)
class KaplanFit:
    """Kaplan et al. 2020 power laws (each holds when the other two resources are not the bottleneck)."""

    n: PowerLaw = PowerLaw(0.076, 8.8e13)  # N: non-embedding parameters
    d: PowerLaw = PowerLaw(0.095, 5.4e13)  # D: tokens
    c: PowerLaw = PowerLaw(0.050, 3.1e8)  # C_min: PF-days

    def loss_n(self, n: ArrayLike) -> ArrayLike:
        """L(N): models trained to convergence on enough data."""
        return self.n(n)

    def loss_d(self, d: ArrayLike) -> ArrayLike:
        """L(D): large models trained with early stopping on D tokens."""
        return self.d(d)

    def loss_c(self, c_flops: ArrayLike) -> ArrayLike:
        """L(C_min): compute-efficient training with C FLOPs (converted to PF-days)."""
        return self.c(np.asarray(c_flops, dtype=float) / PF_DAY)

    def loss_nd(self, n: ArrayLike, d: ArrayLike) -> ArrayLike:
        """L(N, D), equation 1.5: the penalty for finite data at a given size."""
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return ((self.n.x_c / n) ** (self.n.alpha / self.d.alpha) + self.d.x_c / d) ** self.d.alpha


@dataclass(frozen=True)
class ChinchillaFit:
    """Hoffmann et al. 2022, Approach 3: L(N, D) = E + A/N^alpha + B/D^beta."""

    e: float = 1.69
    a: float = 406.4
    b: float = 410.7
    alpha: float = 0.34
    beta: float = 0.28

    def loss(self, n: ArrayLike, d: ArrayLike) -> ArrayLike:
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.e + self.a / n ** self.alpha + self.b / d ** self.beta

    @property
    def g(self) -> float:
        return (self.alpha * self.a / (self.beta * self.b)) ** (1.0 / (self.alpha + self.beta))

    def optimal(self, c_flops: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
        """(N_opt, D_opt) minimising L under C = 6 N D."""
        c6 = np.asarray(c_flops, dtype=float) / FLOPS_PER_PARAMETER_TOKEN
        s = self.alpha + self.beta
        return self.g * c6 ** (self.beta / s), c6 ** (self.alpha / s) / self.g

    def frontier_loss(self, c_flops: ArrayLike) -> ArrayLike:
        """The lowest loss reachable with C FLOPs."""
        n, d = self.optimal(c_flops)
        return self.loss(n, d)

    def optimal_tokens(self, n: ArrayLike) -> ArrayLike:
        """D_opt for a model of N parameters (the compute-optimal line in the N-D plane)."""
        s = self.alpha + self.beta
        # From N = G (C/6)^(beta/s): C/6 = (N/G)^(s/beta); D = (C/6)^(alpha/s) / G.
        c6 = (np.asarray(n, dtype=float) / self.g) ** (s / self.beta)
        return c6 ** (self.alpha / s) / self.g


KAPLAN = KaplanFit()
CHINCHILLA = ChinchillaFit()


def training_compute(n: ArrayLike, d: ArrayLike) -> ArrayLike:
    """C ~ 6 N D training FLOPs."""
    return FLOPS_PER_PARAMETER_TOKEN * np.asarray(n, dtype=float) * np.asarray(d, dtype=float)


def log_grid(lo: float, hi: float, points: int = 200) -> np.ndarray:
    return np.logspace(np.log10(lo), np.log10(hi), points)


CITATIONS = (
    "Kaplan et al. 2020 (arXiv:2001.08361), nats/token on WebText2, N without embeddings: "
    "L(N) = (N_c/N)^α_N, α_N = 0.076, N_c = 8.8e13 · L(D) = (D_c/D)^α_D, α_D = 0.095, D_c = 5.4e13 tokens · "
    "L(C) = (C_c/C)^α_C, α_C = 0.050, C_c = 3.1e8 PF-days.",
    "Hoffmann et al. 2022, Chinchilla (arXiv:2203.15556), Approach 3, nats/token on MassiveText: "
    "L(N, D) = E + A/N^α + B/D^β, E = 1.69, A = 406.4, B = 410.7, α = 0.34, β = 0.28; optimum under C ≈ 6ND.",
    "Different data and tokenizers: compare shapes, not values. Besiroglu et al. 2024 (arXiv:2404.10102): these "
    "rounded constants put the optimum at more tokens per parameter than Chinchilla's own ≈20.",
)


def curves_frame(n: float, d: float, c: float, points: int = 200):  # -> pandas.DataFrame
    """Every drawn curve as one long table (curve, x name, x, loss or count) for CSV export."""
    import pandas as pd

    ns, ds, cs = log_grid(1e6, 1e13, points), log_grid(1e8, 1e14, points), log_grid(1e17, 1e27, points)
    n_opt, d_opt = CHINCHILLA.optimal(cs)
    parts = [
        ("Kaplan L(N)", "N parameters", ns, KAPLAN.loss_n(ns)),
        (f"Chinchilla L(N, D={d:.3g})", "N parameters", ns, CHINCHILLA.loss(ns, d)),
        ("Kaplan L(D)", "D tokens", ds, KAPLAN.loss_d(ds)),
        (f"Chinchilla L(N={n:.3g}, D)", "D tokens", ds, CHINCHILLA.loss(n, ds)),
        ("Kaplan L(C)", "C FLOPs", cs, KAPLAN.loss_c(cs)),
        ("Chinchilla frontier L*(C)", "C FLOPs", cs, CHINCHILLA.frontier_loss(cs)),
        ("Chinchilla N_opt(C)", "C FLOPs", cs, n_opt),
        ("Chinchilla D_opt(C)", "C FLOPs", cs, d_opt),
    ]
    frames = [pd.DataFrame({"curve": name, "x_name": xname, "x": x, "y": np.asarray(y, dtype=float)})
              for name, xname, x, y in parts]
    point = pd.DataFrame({"curve": ["selected point"], "x_name": [f"N={n:.6g} D={d:.6g} C={c:.6g}"],
                          "x": [n], "y": [float(CHINCHILLA.loss(n, d))]})
    return pd.concat([*frames, point], ignore_index=True)
