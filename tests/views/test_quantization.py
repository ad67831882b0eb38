"""The quantization dock with a real worker: the dial, charts, table, flips, exports and bad input."""

from __future__ import annotations

import gc
import math

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QHelpEvent, QImage
from PySide6.QtWidgets import QApplication, QToolTip

from llmviz.core.quantization_results import PRECISIONS
from llmviz.core.specs import ModelSpec
from llmviz.views.quantization import QuantizationView

from ..engine_jobs import LOADED_INFO
from ..timeouts import WAIT_MS

TEXT = "The cat sat on the mat and looked at the dog."
KEYS = [p.key for p in PRECISIONS]


def settle(qtbot, host, view) -> None:
    qtbot.waitUntil(lambda: view.is_ready() and not host.busy, timeout=WAIT_MS)


def open_model(qtbot, host, source, text: str = TEXT) -> QuantizationView:
    """A quantization view fed by a real ModelHost, as the main window feeds it."""
    view = QuantizationView(host)
    qtbot.addWidget(view)
    view.resize(1400, 900)
    view.show()
    with qtbot.waitSignal(host.sig_model_loaded, timeout=WAIT_MS) as loaded:
        host.load(ModelSpec(str(source), device="cpu"))
    view.on_model_loaded(loaded.args[0])
    with qtbot.waitSignal(host.sig_trace, timeout=WAIT_MS) as traced:
        host.run_text(text)
    view.on_trace(traced.args[0])
    settle(qtbot, host, view)
    return view


def turn(qtbot, host, view, key: str) -> None:
    view.dial.setValue(KEYS.index(key))
    settle(qtbot, host, view)


def variant_jobs(host) -> list[str]:
    """Labels of the variant jobs the worker starts from now on."""
    started: list[str] = []
    host.sig_started.connect(lambda h: started.append(h.label) if h.channel == "quantization.variant" else None)
    return started


@pytest.fixture(autouse=True)
def collect_on_the_gui_thread():
    """Collect each test's discarded widgets here, so no later worker-thread gc.collect() deletes Qt objects."""
    yield
    gc.collect()


@pytest.fixture
def llama_view(qtbot, host, tiny_models):
    return open_model(qtbot, host, tiny_models["llama"])


def test_reference_first_then_visits_fill_charts_and_table(qtbot, host, llama_view):
    view = llama_view
    assert view.current_key() == "fp32" and view.shown.key == "fp32"
    assert "FP32" in view.reference_text.text() and "CUDA" in view.device_text.text()
    assert view.size_model.frame["level"].tolist() == ["FP32", "FP16", "INT8", "INT4", "INT2", "INT1"]
    turn(qtbot, host, view, "nf4")
    turn(qtbot, host, view, "int2-sim")
    frame = view.table_model.frame
    assert frame["precision"].tolist() == ["FP32 (reference)", "NF4", "INT2 (simulated)"]
    assert frame["kind"].tolist() == ["torch dtype", "bitsandbytes", "simulated"]
    assert frame.loc[1, "memory_MiB"] < frame.loc[0, "memory_MiB"] == frame.loc[2, "memory_MiB"]
    assert frame.loc[0, "mean_kl"] < 1e-7 < frame.loc[1, "mean_kl"] < frame.loc[2, "mean_kl"]
    # one point per visited precision in the memory and top-1 charts; the KL chart (log) has no 0
    points = lambda plot: [i for i in plot.listDataItems() if i.opts.get("symbol") and i.isVisible()]  # noqa: E731
    assert len(points(view.memory_plot)) == 3 and len(points(view.top1_plot)) == 3
    kl_points = {round(float(i.xData[0]), 3): float(i.yData[0]) for i in points(view.kl_plot)}
    assert kl_points.keys() == {2.0, 1.0}  # log2 of 4 and 2 bits
    assert kl_points[2.0] == pytest.approx(frame.loc[1, "mean_kl"])
    hollow = [i for i in points(view.memory_plot) if i.opts["symbolBrush"] is None]
    assert len(hollow) == 1 and float(hollow[0].xData[0]) == 1.0  # only INT2 (simulated) is drawn hollow
    assert "SIMULATED" in view.mode_title.text() and "SIMULATED" in view.detail_title.text()


def test_detail_shows_flips_topk_drift_and_head_difference(qtbot, host, llama_view):
    view = llama_view
    turn(qtbot, host, view, "int1-sim")
    q = view.shown.comparison
    t = view.trace.num_tokens
    # KL bars per position and red crosses at the flipped positions
    items = view.kl_position.getPlotItem().items
    bars = next(i for i in items if type(i).__name__ == "BarGraphItem")
    assert np.allclose(bars.opts["height"], q.kl)
    crosses = [i for i in items if type(i).__name__ == "ScatterPlotItem"]
    assert len(q.flips) > 0 and np.array_equal(crosses[0].data["x"], q.flips)
    # top-k side by side at the last position; changed rows are marked
    topk = view.topk_model.frame
    assert len(topk) == 10 and view.position.value() == t - 1
    assert topk["p_reference"].is_monotonic_decreasing and topk["p_variant"].is_monotonic_decreasing
    assert (topk["change"] != "=").any()
    flipped_row = view.topk_model.data(view.topk_model.index(0, 3), Qt.ItemDataRole.BackgroundRole)
    assert (flipped_row is not None) == (not q.top1_agree[t - 1])
    # drift: one curve per measured variant, the current one included
    curves = [c for c in view.drift.getPlotItem().listDataItems() if c.isVisible()]
    assert len(curves) == 1  # the reference's drift is 0 everywhere: nothing to draw on a log scale
    err = q.hidden_relative_error
    assert np.allclose(curves[0].yData, err[err > 0]) and err[0] == 0  # embeddings are not quantized
    assert "INT1 sim" in view.drift_legend.text()
    # attention: reference minus variant, symmetric levels
    head = view.head_shown
    image = view.heatmap.image.image
    assert image.shape == (t, t) and np.allclose(image, head.reference - head.variant)
    assert view.heatmap.bar.levels() == pytest.approx((-head.max_abs, head.max_abs))
    view.head.setValue(3)
    qtbot.waitUntil(lambda: view.head_shown.head == 3, timeout=WAIT_MS)
    assert "head 3" in view.head_text.text()
    view.position.setValue(2)
    assert "after" in view.position_text.text() and view.position_line.value() == 2


def test_turning_the_dial_fast_loads_only_the_last_position(qtbot, host, llama_view):
    view = llama_view
    started = variant_jobs(host)
    for key in ("int8", "nf4", "fp4", "fp4-dq"):
        view.dial.setValue(KEYS.index(key))
    settle(qtbot, host, view)
    assert view.shown.key == "fp4-dq" and started[0] == "Quantization: FP4 + double quant"
    assert not any(label.endswith(("INT8", "NF4", ": FP4")) for label in started)
    assert set(view.shown.cached) == {"fp4-dq"}
    # jobs already submitted: a newer one on the channel cancels the older load
    view._start_visit("int8", immediately=True)
    view._start_visit("nf4", immediately=True)
    settle(qtbot, host, view)
    assert view.shown.key == "nf4" and "int8" not in view.shown.cached


def test_text_change_remeasures_the_visited_positions(qtbot, host, llama_view):
    view = llama_view
    turn(qtbot, host, view, "int8")
    old = view.trace.id
    with qtbot.waitSignal(host.sig_trace, timeout=WAIT_MS) as traced:
        host.run_text("Another sentence about the weather.")
    view.on_trace(traced.args[0])
    settle(qtbot, host, view)
    qtbot.waitUntil(lambda: all(r.comparison.trace_id == view.trace.id for r in view.reports.values()),
                    timeout=WAIT_MS)
    assert old != view.trace.id and set(view.reports) == {"fp32", "int8"}
    assert not view.table_model.frame["mean_kl"].isna().any()


def test_out_of_memory_keeps_the_reference(qtbot, host, llama_view):
    view = llama_view
    info = view.info
    view.memory_limit_bytes = 1_000_000
    turn(qtbot, host, view, "fp4")
    assert view.banner.level == "error" and "Not enough memory for FP4" in view.banner.text
    assert "reference model stays loaded" in view.banner.text
    assert set(view.reports) == {"fp32"} and view.shown.key == "fp32"
    loaded = []
    host.call(LOADED_INFO, on_done=lambda o: loaded.append(o.value))
    qtbot.waitUntil(lambda: bool(loaded), timeout=60_000)
    assert loaded[0] == info  # the reference is still the loaded model
    view.memory_limit_bytes = None
    turn(qtbot, host, view, "fp16")
    assert view.shown.key == "fp16" and not view.banner.isVisible()


def test_already_quantized_model_starts_there_and_disables_the_rest(qtbot, host, tiny_models, tmp_path):
    import torch
    from transformers import BitsAndBytesConfig

    from llmviz.core.models import load_model

    loaded = load_model(ModelSpec(str(tiny_models["llama"]), device="cpu"), quantization_config=BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32))
    loaded.model.save_pretrained(tmp_path)
    loaded.tokenizer.save_pretrained(tmp_path)
    view = open_model(qtbot, host, tmp_path)
    assert view.current_key() == "nf4" and view.shown.key == "nf4"
    assert "already quantized" in view.reference_text.text()
    assert [view.dial.position_enabled(i) for i in range(len(KEYS))] == [k == "nf4" for k in KEYS]
    # hovering a disabled position tells why
    rect = view.dial.label_rect(KEYS.index("int8"))
    point = rect.center().toPoint()
    event = QHelpEvent(QEvent.Type.ToolTip, point, view.dial.mapToGlobal(point))
    QApplication.sendEvent(view.dial, event)
    assert "Not available here" in QToolTip.text() and "already quantized" in QToolTip.text()
    started = variant_jobs(host)
    view.dial.setValue(KEYS.index("int8"))
    qtbot.wait(view.DEBOUNCE_MS * 2)
    assert not started and view.is_ready()
    assert view.banner.level == "warning" and "INT8 cannot run here" in view.banner.text
    assert "Not available here" in view.mode_text.text()


def test_encoder_model_compares_hidden_states_and_attention(qtbot, host, tiny_models):
    view = open_model(qtbot, host, tiny_models["bert"])
    turn(qtbot, host, view, "int8")
    assert "no language-model head" in view.detail_title.text()
    assert view.topk_model.frame.empty and view.head_shown is not None
    assert math.isnan(view.table_model.frame.loc[1, "mean_kl"])


def test_exports(qtbot, host, llama_view, tmp_path):
    view = llama_view
    turn(qtbot, host, view, "nf4")
    csv, png, svg = tmp_path / "q.csv", tmp_path / "q.png", tmp_path / "q.svg"
    view.export_table(str(csv))
    written = pd.read_csv(csv)
    assert written["precision"].tolist() == ["FP32 (reference)", "NF4"]
    assert written.loc[1, "mean_kl"] == pytest.approx(view.shown.comparison.mean_kl)
    view.export_charts(str(png))
    image = QImage(str(png))
    assert image.width() >= 1000 and image.height() > 200
    view.export_charts(str(svg))
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml") and "<svg" in text and "NF4" in text and "Memory" in text
