"""The environment dock with a real worker: versions, where the weights are, memory, the run log."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
import torch
from PySide6.QtCore import qVersion

from llmviz.core.specs import ModelSpec
from llmviz.views.environment import EnvironmentView
from llmviz.views.timeline import TimelineView


@pytest.fixture
def views(qtbot, host):
    """The environment view plus a second view, wired to the host the way the main window wires them."""
    env, other = EnvironmentView(host), TimelineView(host)
    for v in (env, other):
        qtbot.addWidget(v)
        host.sig_model_loaded.connect(v.on_model_loaded)
        host.sig_trace.connect(v.on_trace)
    env.resize(1200, 750)
    env.show()
    other.show()  # hidden views draw only when shown (DockView.LAZY)
    yield env, other
    env.on_close()


def load(qtbot, host, env, source):
    with qtbot.waitSignal(env.sig_ready, timeout=120_000):
        host.load(ModelSpec(source, device="cpu"))


def run(qtbot, host, text):
    with qtbot.waitSignal(host.sig_trace, timeout=60_000) as blocker:
        host.run_text(text)
    return blocker.args[0]


def test_versions_before_any_model(views):
    env, _ = views
    rows = dict(env.version_rows())
    assert rows["Qt"] == qVersion() and rows["pyqtgraph"] == pg.__version__
    assert rows["torch"] == "read when the first model loads"
    assert "waiting" in env.gpu_message.text()
    assert env.sampler is None


def test_shows_the_device_the_model_runs_on(qtbot, host, views, tiny_models):
    env, _ = views
    load(qtbot, host, env, str(tiny_models["llama"]))
    info = env.info
    text = env.placement.text()
    assert "runs on <b>cpu</b>" in text
    assert f"cpu: {info.num_parameters:,} parameters" in text
    assert "No accelerate device map" in text and env.device_map.isHidden()
    rows = dict(env.version_rows())
    assert rows["torch"] == torch.__version__ and rows["CUDA available"] == str(torch.cuda.is_available())
    if not torch.cuda.is_available():
        assert "no cuda device" in env.gpu_message.text().lower()
        assert env.gpu_stack.currentWidget() is env.gpu_message
        assert env.sampler is None
    table = {env.versions.item(r, 0).text(): env.versions.item(r, 1).text() for r in range(env.versions.rowCount())}
    assert table["transformers"] and table["bitsandbytes"] and table["Qt"] == qVersion()


def test_memory_plot_and_load_run_markers(qtbot, host, views, tiny_models):
    env, _ = views
    load(qtbot, host, env, str(tiny_models["llama"]))
    run(qtbot, host, "The cat sat on the mat")
    qtbot.waitUntil(lambda: not host.busy, timeout=30_000)
    env.sample()
    t, gb = env.rss_curve.getData()
    assert len(t) == len(env.rss) >= 2 and gb[-1] > 0.05
    kinds = [span["kind"] for span in env.spans]
    assert "load" in kinds and "run" in kinds
    for span in env.spans:
        assert span["end"] is not None and span["end"] >= span["start"]
        low, high = span["regions"][0].getRegion()
        assert high - low == pytest.approx(span["end"] - span["start"])
    assert "RSS" in env.memory_now.text()


def test_run_log_records_every_phase(qtbot, host, views, tiny_models):
    env, _ = views
    load(qtbot, host, env, str(tiny_models["llama"]))
    trace = run(qtbot, host, "The cat sat on the mat")
    record = next(r for r in env.records.values() if r.kind == "run" and r.trace_id == trace.id)
    qtbot.waitUntil(lambda: {"environment", "timeline"} <= set(record.draws), timeout=30_000)
    assert record.status == "ok" and record.tokens == trace.num_tokens
    for phase in ("tokenize", "forward", "capture"):
        assert record.phases[phase] == pytest.approx(trace.timings[f"{phase}_s"])
    assert record.phases["other worker"] >= 0
    assert 0 <= record.transfer_s < 5
    assert record.draw_s is not None and record.draw_s >= max(record.draws.values())
    load_record = next(r for r in env.records.values() if r.kind == "load")
    assert load_record.phases["load"] == pytest.approx(env.info.load_s)
    assert "timeline" in load_record.draws  # NEEDS_TRACE=False views are drawn after the load
    qtbot.waitUntil(lambda: env.run_table is not None and env.run_table.frame_model.rowCount() == 2, timeout=5_000)
    bars = [i for i in env.gantt_item.items if isinstance(i, pg.BarGraphItem)]
    widths = {env.gantt_legend.getLabel(b).text: b.opts["width"] for b in bars}
    assert widths["forward"][-1] == pytest.approx(trace.timings["forward_s"] * 1000)
    assert {"load", "tokenize", "forward", "capture", "transfer", "draw"} <= set(widths)
    assert "Last run (6 tokens)" in env.run_summary.text()


def test_superseded_runs_are_not_left_running(qtbot, host, views, tiny_models):
    env, _ = views
    load(qtbot, host, env, str(tiny_models["llama"]))
    host.run_text("first text")
    host.run_text("second text")
    with qtbot.waitSignal(host.sig_trace, timeout=60_000) as blocker:
        host.run_text("third text")
    qtbot.waitUntil(lambda: not host.busy, timeout=30_000)
    assert blocker.args[0].text == "third text"
    assert all(r.status != "running" for r in env.records.values())
    assert list(env.records.values())[-1].status == "ok"


def test_run_log_export(qtbot, host, views, tiny_models, tmp_path):
    import pandas as pd

    env, _ = views
    load(qtbot, host, env, str(tiny_models["llama"]))
    run(qtbot, host, "Export me")
    qtbot.waitUntil(lambda: env.run_table is not None, timeout=5_000)
    csv, png, svg = tmp_path / "r.csv", tmp_path / "r.png", tmp_path / "r.svg"
    env.export_run_log(str(csv))
    frame = pd.read_csv(csv)
    assert list(frame["kind"]) == ["load", "run"] and frame.loc[1, "forward_ms"] > 0
    env.export_image(str(png))
    env.export_image(str(svg))
    assert png.read_bytes()[:4] == b"\x89PNG" and "forward" in svg.read_text(encoding="utf-8")


def test_close_stops_sampling(views):
    env, _ = views
    env.on_close()
    assert not env.timer.isActive()
