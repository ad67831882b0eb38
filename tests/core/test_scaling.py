"""Scaling-law curves against values worked out by hand from the published formulas.

The expected numbers below were computed step by step (shown in the comments) from the
constants in Kaplan et al. 2020 and Hoffmann et al. 2022, not by calling the code.
"""

from __future__ import annotations

import numpy as np
import pytest

from llmviz.core.scaling import (
    CHINCHILLA,
    CITATIONS,
    KAPLAN,
    PF_DAY,
    ChinchillaFit,
    curves_frame,
    log_grid,
    training_compute,
)


def test_published_constants():
    assert (CHINCHILLA.e, CHINCHILLA.a, CHINCHILLA.b, CHINCHILLA.alpha, CHINCHILLA.beta) == (1.69, 406.4, 410.7, 0.34, 0.28)
    assert (KAPLAN.n.alpha, KAPLAN.n.x_c, KAPLAN.d.alpha, KAPLAN.d.x_c) == (0.076, 8.8e13, 0.095, 5.4e13)
    assert (KAPLAN.c.alpha, KAPLAN.c.x_c) == (0.050, 3.1e8)
    text = " ".join(CITATIONS)
    for cited in ("arXiv:2001.08361", "arXiv:2203.15556", "0.076", "8.8e13", "1.69", "406.4", "410.7", "0.34", "0.28"):
        assert cited in text


def test_chinchilla_at_chinchilla():
    # N = 70e9: N^0.34 = exp(0.34 * ln 7e10) = exp(0.34 * 24.97176) = exp(8.49040) = 4867.81
    #   A / N^alpha = 406.4 / 4867.81 = 0.083487
    # D = 1.4e12: D^0.28 = exp(0.28 * ln 1.4e12) = exp(0.28 * 27.96749) = exp(7.83090) = 2517.19
    #   B / D^beta = 410.7 / 2517.19 = 0.163158
    # L = 1.69 + 0.083487 + 0.163158 = 1.936645
    assert float(CHINCHILLA.loss(70e9, 1.4e12)) == pytest.approx(1.936645, abs=2e-6)


def test_chinchilla_at_gpt3():
    # N = 175e9: N^0.34 = exp(0.34 * 25.88799) = exp(8.80192) = 6645.6 -> 406.4 / 6645.6 = 0.061153
    # D = 300e9: D^0.28 = exp(0.28 * 26.42700) = exp(7.39956) = 1635.3 -> 410.7 / 1635.3 = 0.251147
    # L = 1.69 + 0.061153 + 0.251147 = 2.00230
    assert float(CHINCHILLA.loss(175e9, 300e9)) == pytest.approx(2.00229, abs=2e-5)


def test_kaplan_single_variable_laws():
    # L(N = 1e9) = (8.8e13 / 1e9)^0.076 = 88000^0.076 = exp(0.076 * 11.38509) = exp(0.865267) = 2.375640
    assert float(KAPLAN.loss_n(1e9)) == pytest.approx(2.375640, abs=2e-6)
    # L(D = 1e10) = (5.4e13 / 1e10)^0.095 = 5400^0.095 = exp(0.095 * 8.59415) = exp(0.816444) = 2.262442
    assert float(KAPLAN.loss_d(1e10)) == pytest.approx(2.262442, abs=2e-6)
    # L(C = 1 PF-day = 8.64e19 FLOPs) = (3.1e8 / 1)^0.05 = exp(0.05 * 19.55208) = exp(0.977604) = 2.658080
    assert float(KAPLAN.loss_c(PF_DAY)) == pytest.approx(2.658080, abs=2e-6)
    assert PF_DAY == 8.64e19


def test_kaplan_joint_law_reduces_to_the_single_laws():
    big = 1e30
    assert float(KAPLAN.loss_nd(1e9, big)) == pytest.approx(float(KAPLAN.loss_n(1e9)), rel=1e-9)
    assert float(KAPLAN.loss_nd(big, 1e10)) == pytest.approx(float(KAPLAN.loss_d(1e10)), rel=1e-6)
    # finite data only adds loss
    assert float(KAPLAN.loss_nd(1e9, 1e10)) > max(float(KAPLAN.loss_n(1e9)), float(KAPLAN.loss_d(1e10)))


def test_compute_optimal_allocation_by_hand():
    # G = (alpha A / (beta B))^(1/(alpha+beta)) = (138.176 / 114.996)^(1/0.62) = 1.201572^1.612903 = 1.344711
    assert CHINCHILLA.g == pytest.approx(1.344711, abs=1e-6)
    # C = 5.76e23 (Chinchilla's budget): C/6 = 9.6e22
    # N_opt = G (C/6)^(0.28/0.62) = 1.344711 * 9.6e22^0.451613 = 1.344711 * 2.39381e10 = 3.21899e10
    # D_opt = (C/6)^(0.34/0.62) / G = 9.6e22^0.548387 / 1.344711 = 4.01034e12 / 1.344711 = 2.98231e12
    n_opt, d_opt = CHINCHILLA.optimal(5.76e23)
    assert float(n_opt) == pytest.approx(3.21899e10, rel=1e-5)
    assert float(d_opt) == pytest.approx(2.98231e12, rel=1e-5)
    assert float(training_compute(n_opt, d_opt)) == pytest.approx(5.76e23, rel=1e-12)


@pytest.mark.parametrize("compute", [1e19, 5.76e23, 1e26])
def test_frontier_is_the_minimum_along_equal_compute(compute):
    """Brute force: L(N, C/6N) over a dense grid of N is lowest at N_opt."""
    ns = np.logspace(5, 15, 200_001)
    losses = CHINCHILLA.loss(ns, compute / (6 * ns))
    n_opt, _ = CHINCHILLA.optimal(compute)
    assert ns[np.argmin(losses)] == pytest.approx(float(n_opt), rel=1e-3)
    assert float(CHINCHILLA.frontier_loss(compute)) == pytest.approx(float(losses.min()), abs=1e-9)


def test_optimal_tokens_inverts_the_allocation():
    cs = log_grid(1e18, 1e26, 9)
    n_opt, d_opt = CHINCHILLA.optimal(cs)
    np.testing.assert_allclose(CHINCHILLA.optimal_tokens(n_opt), d_opt, rtol=1e-10)


def test_tokens_per_parameter_of_the_approach3_fit():
    """With the rounded Approach-3 constants the optimum is far above Chinchilla's famous ~20 (Besiroglu et al. 2024)."""
    n_opt, d_opt = CHINCHILLA.optimal(5.76e23)
    assert float(d_opt / n_opt) == pytest.approx(92.65, abs=0.05)
    equal = ChinchillaFit(alpha=0.3, beta=0.3, a=400.0, b=400.0)
    n_eq, d_eq = equal.optimal(6e20)  # symmetric fit: N_opt = D_opt = sqrt(C/6) = 1e10
    assert float(n_eq) == pytest.approx(1e10) and float(d_eq) == pytest.approx(1e10)


def test_curves_frame_has_every_curve():
    frame = curves_frame(135e6, 2e12, 1.6e21, points=50)
    curves = set(frame["curve"])
    assert {"Kaplan L(N)", "Kaplan L(D)", "Kaplan L(C)", "Chinchilla frontier L*(C)", "Chinchilla N_opt(C)",
            "Chinchilla D_opt(C)"} <= curves
    assert frame["y"].notna().all() and (frame["x"] > 0).all()
    chin = frame[frame["curve"] == "Chinchilla L(N, D=2e+12)"]
    np.testing.assert_allclose(chin["y"], CHINCHILLA.loss(chin["x"].to_numpy(), 2e12))
