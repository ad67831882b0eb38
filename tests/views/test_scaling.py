"""The scaling-laws dock: curves drawn from the published fits, sliders, the loaded model, export."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from llmviz.core.scaling import CHINCHILLA, KAPLAN, training_compute
from llmviz.core.specs import ModelSpec
from llmviz.views.scaling import ScalingView


@pytest.fixture
def view(qtbot, host):
    v = ScalingView(host)
    qtbot.addWidget(v)
    v.resize(1300, 800)
    v.show()
    qtbot.waitUntil(lambda: v.timeline is not None)
    return v


def curve(plot, name):
    return next(item for item in plot.listDataItems() if item.name() == name)


def test_curves_are_the_published_fits(view):
    x, y = curve(view.p_n, "Kaplan L(N)").getData()
    np.testing.assert_allclose(y, KAPLAN.loss_n(10 ** x), rtol=1e-12)
    x, y = curve(view.p_n, "Chinchilla L(N, D)").getData()
    np.testing.assert_allclose(y, CHINCHILLA.loss(10 ** x, view.d), rtol=1e-12)
    x, y = curve(view.p_d, "Chinchilla L(N, D)").getData()
    np.testing.assert_allclose(y, CHINCHILLA.loss(view.n, 10 ** x), rtol=1e-12)
    x, y = curve(view.p_c, "Chinchilla optimum L*(C)").getData()
    np.testing.assert_allclose(y, CHINCHILLA.frontier_loss(10 ** x), rtol=1e-12)
    x, y = curve(view.p_c, "Kaplan L(C)").getData()
    np.testing.assert_allclose(y, KAPLAN.loss_c(10 ** x), rtol=1e-12)
    # The view opens at Chinchilla itself: 70B parameters, 1.4T tokens, L = 1.9366 (see tests/core/test_scaling.py).
    assert view.n == pytest.approx(70e9, rel=0.012) and view.d == pytest.approx(1.4e12, rel=0.012)
    (_x,), (loss,) = view.point_n.getData()
    assert loss == pytest.approx(float(CHINCHILLA.loss(view.n, view.d)))
    assert "1.93" in view.readout.text()


def test_sliders_redraw(view):
    view.d_slider.set_value(300e9)
    x, y = curve(view.p_n, "Chinchilla L(N, D)").getData()
    np.testing.assert_allclose(y, CHINCHILLA.loss(10 ** x, view.d), rtol=1e-12)
    assert view.d == pytest.approx(300e9, rel=0.012)
    assert view.cursor["D"].value() == pytest.approx(math.log10(view.d))
    view.c_slider.set_value(1e22)
    n_opt, d_opt = CHINCHILLA.optimal(view.c)
    (x,), (y,) = view.point_nd_opt.getData()
    assert (x, y) == pytest.approx((math.log10(float(n_opt)), math.log10(float(d_opt))))


def test_optimal_and_6nd_buttons(view):
    view.c_slider.set_value(5.76e23)
    view.use_optimal()
    n_opt, d_opt = CHINCHILLA.optimal(view.c)
    assert view.n == pytest.approx(float(n_opt), rel=0.012) and view.d == pytest.approx(float(d_opt), rel=0.012)
    view.n_slider.set_value(1e9)
    view.d_slider.set_value(2e10)
    view.c_slider.set_value(float(training_compute(view.n, view.d)))
    assert view.c == pytest.approx(1.2e20, rel=0.012)
    assert "Budget C = 1.2e20 FLOPs" in view.readout.text()


def test_loaded_model_placed_by_parameters_and_tokens(view, smollm2_session):
    view.on_model_loaded(smollm2_session.loaded.info)
    assert view.is_ready()
    assert view.n == pytest.approx(135e6, rel=0.012) and view.d == pytest.approx(2e12, rel=0.012)
    star_n = view.loaded_items[0]
    (x,), (y,) = star_n.getData()
    assert x == pytest.approx(math.log10(135e6))
    assert y == pytest.approx(float(CHINCHILLA.loss(135e6, 2e12)))
    assert view.loaded_line.isVisible() and view.loaded_line.value() == pytest.approx(math.log10(135e6))
    assert "loaded: SmolLM2-135M" in view.readout.text() and "2T training tokens" in view.readout.text()


def test_model_without_known_tokens_is_placed_by_size_only(view, tiny_models):
    from llmviz.core.models import load_model

    info = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu")).info
    view.on_model_loaded(info)
    assert view.loaded_line.value() == pytest.approx(math.log10(info.num_parameters))
    assert all(len(star.getData()[0]) == 0 for star in view.loaded_items)  # no D: no point on the loss curves
    assert "training tokens unknown" in view.readout.text()


def test_citations_are_shown(view):
    text = view.citations.text()
    for cited in ("arXiv:2001.08361", "arXiv:2203.15556", "E = 1.69", "A = 406.4", "B = 410.7", "α = 0.34", "β = 0.28",
                  "N_c = 8.8e13", "α_N = 0.076"):
        assert cited in text


def test_export(view, tmp_path):
    csv, png, svg = tmp_path / "s.csv", tmp_path / "s.png", tmp_path / "s.svg"
    view.export_csv(str(csv))
    frame = pd.read_csv(csv)
    kaplan = frame[frame["curve"] == "Kaplan L(N)"]
    np.testing.assert_allclose(kaplan["y"], KAPLAN.loss_n(kaplan["x"].to_numpy()), rtol=1e-9)
    view.export_image(str(png))
    view.export_image(str(svg))
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 20_000
    assert "Loss vs parameters" in svg.read_text(encoding="utf-8")
