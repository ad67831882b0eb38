"""The architecture dock with the real MiniLM loaded by the worker: the Config table and memory bars,
the families table with the loaded family highlighted and both bundled models side by side, the block
builder (a bad size keeps the last result and says what is wrong; 'Match loaded model'), CSV export."""

from __future__ import annotations

import pandas as pd
import pytest
from PySide6.QtCore import Qt

from llmviz.core.architecture_results import PRECISIONS
from llmviz.core.specs import ModelSpec
from llmviz.views.architecture import ArchitectureView

from ..timeouts import WAIT_MS


@pytest.fixture
def view(qtbot, host):
    v = ArchitectureView(host)
    qtbot.addWidget(v)
    v.resize(1200, 800)
    v.show()
    with qtbot.waitSignal(host.sig_model_loaded, timeout=WAIT_MS) as loaded:
        host.load(ModelSpec("bundled:minilm", device="cpu"))
    with qtbot.waitSignal(v.sig_ready, timeout=WAIT_MS):
        v.on_model_loaded(loaded.args[0])
    return v


def cell(table, row: int, column: str, role=Qt.ItemDataRole.DisplayRole):
    model = table.frame_model
    return model.data(model.index(row, model.columns.index(column)), role)


def test_config_tab_shows_the_summary(view):
    s = view.summary
    assert s is not None and s.family == "encoder-only"
    table = view.config_table
    frame = s.to_frame()
    assert table.frame_model.rowCount() == len(frame)
    shown = {cell(table, r, "field").strip(): cell(table, r, "value") for r in range(len(frame))}
    assert shown["Layers (blocks)"] == str(s.layers) == "6"
    assert shown["Total parameters"] == f"{s.total_params:,}"
    assert shown["Position encoding"] == "learned absolute"
    bars = [i for i in view.memory_plot.getPlotItem().items if type(i).__name__ == "BarGraphItem"]
    assert len(bars) == 1
    widths = bars[0].opts["width"]
    assert [round(w * 2**20) for w in widths] == [s.weight_bytes(bits) for _, bits in PRECISIONS]
    assert "MiB" in view.memory_plot.getPlotItem().getAxis("bottom").labelText


def test_families_tab_highlights_the_loaded_family_and_model(view):
    fam = view.families
    table = view.families_table
    encoder_row = [f.key for f in fam.families].index("encoder-only")
    assert table.frame_model.highlight_rows == {encoder_row}
    assert cell(table, encoder_row, "architecture", Qt.ItemDataRole.BackgroundRole) is not None
    assert cell(table, 0, "architecture", Qt.ItemDataRole.BackgroundRole) is None
    assert cell(table, 0, "examples") == "GPT-3, GPT-4, LLaMA"
    models = view.models_table.frame_model
    titles = [m.title for m in fam.models]
    assert models.columns == ["fact", *titles]
    loaded_title = next(m.title for m in fam.models if m.source == "bundled:minilm")
    assert models.highlight_columns == {loaded_title}
    facts = list(models.frame["fact"])
    params = models.frame.iloc[facts.index("Total parameters")]
    assert params[loaded_title] == f"{view.summary.total_params:,}"
    assert "BERT-style" in view.families_title.text()


def test_block_builder_bad_size_keeps_the_last_result(view, qtbot):
    assert view.built is not None  # the notebook's block was built at load
    before = view.block_title.text()
    view.spin["embed_dim"].setValue(100)
    view.spin["num_heads"].setValue(3)
    with qtbot.waitSignal(view.sig_ready, timeout=WAIT_MS):
        view.build_button.click()
    assert not view.block_error.isHidden() and "divisible by the number of heads" in view.block_error.text()
    assert view.block_title.text() == before and view.message_text == ""
    view.spin["num_heads"].setValue(4)
    with qtbot.waitSignal(view.sig_ready, timeout=WAIT_MS):
        view.build_button.click()
    assert view.block_error.isHidden()
    assert view.built.spec.embed_dim == 100 and view.built.measured_total == view.built.formula_total
    total_row = view.components_table.frame_model.rowCount() - 1
    assert cell(view.components_table, total_row, "measured") == f"{view.built.measured_total:,}"


def test_match_loaded_model_builds_a_minilm_sized_block(view, qtbot):
    with qtbot.waitSignal(view.sig_ready, timeout=WAIT_MS):
        view.match_button.click()
    s = view.summary
    assert (view.spin["embed_dim"].value(), view.spin["num_heads"].value(), view.spin["ffn_dim"].value()) == (
        s.hidden_size, s.heads, s.ffn_size)
    assert view.norm.currentData() == "post"
    cmp = view.built.comparison
    table = view.compare_table.frame_model
    assert [cell(view.compare_table, r, "loaded") for r in range(table.rowCount())] == [
        f"{r.loaded:,}" for r in cmp.rows]
    assert [r.loaded for r in cmp.rows] == [r.built_per_block for r in cmp.rows]
    assert "encoder.layer.0" in view.compare_title.text()


def test_export_tables_and_a_failing_export(view, tmp_path):
    for which in ("config", "families", "models"):
        path = tmp_path / f"{which}.csv"
        assert view.export_csv(which, str(path))
        assert len(pd.read_csv(path)) == len(view.frame_for(which))
    assert not view.export_csv("config", str(tmp_path / "nope" / "config.csv"))
    assert "Could not write" in view.config_title.text()
    assert view.message_text == ""


def test_a_damaged_families_file_leaves_the_other_tabs_working(qtbot, tmp_path, monkeypatch):
    from llmviz.workers.model_host import ModelHost

    (tmp_path / "architectures.json").write_text("{not json")
    monkeypatch.setenv("LLMVIZ_RESOURCES", str(tmp_path))  # before the engine starts: it reads the file
    host = ModelHost()
    v = ArchitectureView(host)
    qtbot.addWidget(v)
    v.show()  # hidden views are lazy: they draw a new model only when shown
    with qtbot.waitSignal(host.sig_model_loaded, timeout=WAIT_MS) as loaded:
        host.load(ModelSpec("bundled:minilm", device="cpu"))
    with qtbot.waitSignal(v.sig_ready, timeout=WAIT_MS):
        v.on_model_loaded(loaded.args[0])
    assert "architecture families table" in v.families_title.text() and "damaged" in v.families_title.text()
    assert v.message_text == "" and v.summary is not None and v.built is not None
    host.shutdown()
