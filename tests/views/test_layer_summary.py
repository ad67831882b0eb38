"""The layer-summary dock with the tiny tied GPT-2 run by the worker: table rows and header (why
torchinfo's total differs), the time chart, depth/text filters, deferral while hidden, CSV export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmviz.core.specs import ModelSpec
from llmviz.views.layer_summary import LayerSummaryView, bar_ticks

from ..timeouts import WAIT_MS


@pytest.fixture
def loaded(qtbot, host, tiny_models):
    """(view, trace) with the tiny GPT-2 loaded and a text run by the worker."""
    view = LayerSummaryView(host)
    qtbot.addWidget(view)
    view.resize(1100, 800)
    with qtbot.waitSignal(host.sig_model_loaded, timeout=WAIT_MS) as loaded_model:
        host.load(ModelSpec(str(tiny_models["gpt2"]), device="cpu"))
    view.on_model_loaded(loaded_model.args[0])
    with qtbot.waitSignal(host.sig_trace, timeout=WAIT_MS) as traced:
        host.run_text("The cat sat on the mat because it was warm.")
    return view, traced.args[0]


def shown(qtbot, view, trace):
    view.show()
    with qtbot.waitSignal(view.sig_ready, timeout=WAIT_MS):
        view.on_trace(trace)
    qtbot.waitUntil(lambda: view.result is not None, timeout=WAIT_MS)
    return view.result


def test_table_header_and_chart(loaded, qtbot):
    view, trace = loaded
    result = shown(qtbot, view, trace)
    assert result.trace_id == trace.id and result.num_tokens == trace.num_tokens
    model = view.table.frame_model
    assert model.rowCount() == len(result.frame)
    assert model.data(model.index(0, model.columns.index("path"))) == "(model)"
    assert model.data(model.index(0, model.columns.index("parameters"))) == f"{result.unique_params:,}"
    header = view.header.text()
    assert "counted twice" in header and "lm_head.weight is transformer.wte.weight" in header
    bars = [i for i in view.plot.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    heights = np.asarray(bars[0].opts["height"])
    expected = result.frame.iloc[list(result.chart)]["time_ms"].to_numpy()
    np.testing.assert_allclose(heights, expected)
    chart_paths = result.frame.iloc[list(result.chart)]["path"].tolist()
    assert chart_paths[:2] == ["transformer.wte", "transformer.wpe"] and chart_paths[-2:] == ["transformer.ln_f", "lm_head"]


def test_filters(loaded, qtbot):
    view, trace = loaded
    shown(qtbot, view, trace)
    view.depth.setValue(2)
    frame = view.table.frame_model.frame
    assert len(frame) < len(view.result.frame) and (frame["depth"] <= 2).all()
    view.depth.setValue(0)
    view.filter.setText("MLP")
    frame = view.table.frame_model.frame
    assert len(frame) and all("mlp" in p.lower() or "mlp" in c.lower() for p, c in zip(frame["path"], frame["class"]))
    view.filter.setText("")
    assert view.select_module("transformer.h.1.attn")
    row = view.table.currentIndex().row()
    assert view.table.frame_model.frame.iloc[view.table.source_row(row)]["path"] == "transformer.h.1.attn"


def test_hidden_dock_measures_when_shown(loaded, qtbot):
    view, trace = loaded
    view.hide()
    view.on_trace(trace)  # hidden: DockView.LAZY defers the measurement (a forward pass)
    qtbot.wait(300)
    assert view.result is None and not view.is_ready() and not view.host.busy
    with qtbot.waitSignal(view.sig_ready, timeout=WAIT_MS):
        view.show()
    assert view.result is not None and view.result.trace_id == trace.id and view.message_text == ""


def test_export_and_a_failing_export(loaded, qtbot, tmp_path):
    view, trace = loaded
    result = shown(qtbot, view, trace)
    view.filter.setText("mlp")
    path = tmp_path / "summary.csv"
    assert view.export_csv(str(path))
    back = pd.read_csv(path, keep_default_na=False)
    assert len(back) == len(result.frame)  # every row, not only the filtered ones
    assert back["parameters"].iloc[0] == result.unique_params
    assert not view.export_csv(str(tmp_path / "missing" / "summary.csv"))
    assert "Could not write" in view.status.text() and view.message_text == ""


def test_bar_ticks_do_not_collide():
    paths = ["model.embed_tokens", "model.rotary_emb", *[f"model.layers.{i}" for i in range(30)], "model.norm", "lm_head"]
    is_block = np.array([p.rsplit(".", 1)[-1].isdigit() for p in paths])
    times = np.r_[5.0, 0.1, np.ones(30), 0.2, 9.0]
    ticks = bar_ticks(paths, is_block, times)
    xs = [x for x, _ in ticks]
    assert all(b - a >= 2 for a, b in zip(xs, xs[1:]))
    assert dict(ticks)[0.0] == "emb" and dict(ticks)[33.0] == "head" and dict(ticks)[7.0] == "5"
