"""The attention dock and the attention-from-scratch dock, driven through a real ModelHost.

Models are real architectures (tiny, from configs) and the bundled MiniLM; every drawn
matrix is compared with the core computation of the same thing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from llmviz.core import attention as A
from llmviz.core.attention_results import AttentionMap
from llmviz.core.specs import ModelSpec
from llmviz.views import attention as attention_view
from llmviz.views.attention import TAB_GRID, TAB_HEAD, TAB_ROLLOUT, TAB_STATS, AttentionView
from llmviz.views.attention_scratch import ScratchView
from llmviz.widgets import attention_map_panel, head_grid

from ..engine_jobs import ATTENTION_CACHE, SLABS_OF_ROWS
from ..timeouts import WAIT_MS

TEXT = "The cat sat on the mat because it was tired, and the dog barked."


class Rig:
    """A host with the attention and scratch views wired as the main window wires them."""

    def __init__(self, qtbot, host) -> None:
        self.qtbot, self.host = qtbot, host
        self.view = AttentionView(host)
        self.scratch = ScratchView(host)
        for v in (self.view, self.scratch):
            qtbot.addWidget(v)
            v.resize(1000, 800)
            v.show()
            host.sig_model_loaded.connect(v.on_model_loaded)
            host.sig_trace.connect(v.on_trace)
        self.trace = None
        host.sig_trace.connect(lambda t: setattr(self, "trace", t))
        self._asked: tuple | None = None  # (folder, text, max_tokens) of the last run
        self._reference: dict = {}

    def idle(self) -> None:
        self.qtbot.waitUntil(lambda: not self.host.busy, timeout=WAIT_MS)

    def load(self, folder, text: str = TEXT, max_tokens: int | None = None) -> None:
        self.folder = folder
        self.host.load(ModelSpec(str(folder), device="cpu"))
        self.qtbot.waitUntil(lambda: self.view.info is not None and self.view.info.source == str(folder), timeout=WAIT_MS)
        self.run(text, max_tokens)

    def run(self, text: str, max_tokens: int | None = None) -> None:
        before = self.trace
        self._asked = (str(self.folder), text, max_tokens)
        self.host.run_text(text, max_tokens)
        self.qtbot.waitUntil(lambda: self.trace is not before and self.view.is_ready(), timeout=WAIT_MS)
        self.idle()

    @property
    def cap(self):
        """The captured attention of the same model and text, run again in this process (the
        window's trace holds none of it): what the drawn maps must equal."""
        from llmviz.core.session import Session

        folder, text, max_tokens = self._asked
        if self._reference.get("key") != self._asked:
            session = Session()
            session.load(ModelSpec(folder, device="cpu"))
            self._reference = {"key": self._asked, "data": session.run(text, max_tokens=max_tokens)}
        return self._reference["data"].capture

    def shown(self) -> np.ndarray:
        return self.view.head_panel.heatmap.matrix


@pytest.fixture
def rig(qtbot, host):
    return Rig(qtbot, host)


def test_head_map_is_drawn_exactly_with_token_labels(rig, tiny_models):
    rig.load(tiny_models["llama"])
    heat = rig.view.head_panel.heatmap
    np.testing.assert_allclose(rig.shown(), A.head_map(rig.cap, 0, 0), atol=1e-6)
    assert heat.row_labels == rig.trace.labels() and heat.col_labels == rig.trace.labels()
    assert heat.levels == (0.0, pytest.approx(float(rig.shown().max())))
    assert "exact values" in rig.view.head_panel.summary.text()
    assert "KV head 0 of 2" in rig.view.kv_label.text()  # tiny llama: 4 query heads share 2 KV heads


def test_keyboard_moves_through_heads_and_layers(rig, tiny_models):
    rig.load(tiny_models["llama"])
    plot = rig.view.head_panel.heatmap.plot
    layers, heads = rig.cap.num_layers, rig.cap.num_heads
    steps = [
        (Qt.Key.Key_Right, Qt.KeyboardModifier.NoModifier, (0, 1)),
        (Qt.Key.Key_Down, Qt.KeyboardModifier.NoModifier, (1, 1)),
        (Qt.Key.Key_End, Qt.KeyboardModifier.NoModifier, (1, heads - 1)),
        (Qt.Key.Key_Right, Qt.KeyboardModifier.NoModifier, (2, 0)),  # on to the next layer
        (Qt.Key.Key_Home, Qt.KeyboardModifier.ControlModifier, (0, 0)),
        (Qt.Key.Key_Left, Qt.KeyboardModifier.NoModifier, (0, 0)),  # stays at the first head
        (Qt.Key.Key_End, Qt.KeyboardModifier.ControlModifier, (layers - 1, 0)),
        (Qt.Key.Key_Up, Qt.KeyboardModifier.NoModifier, (layers - 2, 0)),
    ]
    for key, mods, want in steps:
        rig.qtbot.keyClick(plot, key, mods)
        assert (rig.view.layer.value(), rig.view.head.value()) == want
        rig.qtbot.waitUntil(lambda: rig.view.is_ready(), timeout=WAIT_MS)
        rig.idle()
        np.testing.assert_allclose(rig.shown(), A.head_map(rig.cap, *want), atol=1e-6)


def test_neighbouring_heads_are_precomputed_for_the_arrow_keys(rig, tiny_models):
    """After a head is drawn, the worker computes the heads Right/Left/Down/Up lead to in
    the background; moving there draws the cached map without computing it again."""
    done = []
    rig.host.sig_finished.connect(lambda o: o.channel == "attention.prefetch" and o.ok and done.append(o.value))
    rig.load(tiny_models["llama"])
    rig.qtbot.waitUntil(lambda: bool(done), timeout=WAIT_MS)
    assert done[-1] == 2  # from (0, 0): Right (0, 1) and Down (1, 0)
    cached = []
    rig.host.call(ATTENTION_CACHE, on_done=lambda o: cached.append(o.value))
    rig.qtbot.waitUntil(lambda: bool(cached), timeout=WAIT_MS)
    assert {(0, 0), (0, 1), (1, 0)} <= set(cached[0])
    rig.qtbot.keyClick(rig.view.head_panel.heatmap.plot, Qt.Key.Key_Right)
    rig.qtbot.waitUntil(lambda: rig.view.is_ready() and rig.view.head_panel.shown.head == 1, timeout=WAIT_MS)
    # drawn from the cache, not recomputed: the map carries the compute time of its precomputation
    assert rig.view.head_panel.shown.compute_s == cached[0][(0, 1)]
    np.testing.assert_allclose(rig.shown(), A.head_map(rig.cap, 0, 1), atol=1e-6)


def test_model_switch_keeps_a_valid_selection(rig, tiny_models):
    rig.load(tiny_models["llama"])  # 3 layers x 4 heads
    rig.view.set_selection(2, 3)
    rig.idle()
    rig.load(tiny_models["gpt2"])  # 2 layers x 4 heads
    assert (rig.view.layer.value(), rig.view.head.value()) == (1, 3)
    np.testing.assert_allclose(rig.shown(), A.head_map(rig.cap, 1, 3), atol=1e-6)
    assert rig.view.kv_label.text() == ""  # no grouped-query heads


def test_one_token_draws_a_one_by_one_map(rig, tiny_models):
    rig.load(tiny_models["llama"], "Hi", max_tokens=1)
    assert rig.trace.num_tokens == 1
    np.testing.assert_allclose(rig.shown(), [[1.0]], atol=1e-6)
    rig.view.tabs.setCurrentIndex(TAB_GRID)
    rig.qtbot.waitUntil(lambda: len(rig.view.overviews) == rig.cap.num_layers, timeout=WAIT_MS)
    rig.view.tabs.setCurrentIndex(TAB_ROLLOUT)
    rig.qtbot.waitUntil(lambda: rig.view.rollout_panel.shown is not None, timeout=WAIT_MS)
    np.testing.assert_allclose(rig.view.rollout_panel.heatmap.matrix, [[1.0]], atol=1e-6)


def test_nan_and_inf_are_shown_not_fatal(rig, tiny_models):
    rig.load(tiny_models["llama"])
    queries = [q.copy() for q in rig.cap.queries]
    queries[0][0, 3, :] = np.nan
    broken = dataclasses.replace(rig.cap, queries=tuple(queries))
    matrix = A.attention_blocks(broken, 0, 0)
    matrix[5, 1] = np.inf
    t = rig.trace.num_tokens
    result = AttentionMap(rig.trace.id, "head", 0, 0, matrix, np.arange(t), (0, t, 0, t), 1, "exact", False, 0.0)
    rig.view._draw_head(result)
    heat = rig.view.head_panel.heatmap
    assert heat.nonfinite_count == t + 1
    overlay = heat._base.overlay.image
    assert heat._base.overlay.isVisible() and tuple(overlay[3, 0]) == (220, 20, 60, 255) and overlay[0, 0, 3] == 0
    assert "NaN/inf cells shown in red" in rig.view.head_panel.summary.text()
    assert "NaN" in heat.describe(3, 2) and "+∞" in heat.describe(5, 1)


def test_model_without_attention_says_so(rig, mamba_folder):
    rig.load(mamba_folder)
    assert "attention" in rig.view.message_text
    rig.scratch.head_mode.setChecked(True)
    assert "attention" in rig.scratch.note.text()


def test_cancelling_a_long_computation_keeps_the_view_usable(rig, tiny_models):
    rig.load(tiny_models["llama"])
    before = rig.shown().copy()
    # In the engine: one query row per slab, a cancel check and 0.2 s each, so the cancel
    # always lands while the map is being computed.
    rig.host.call(SLABS_OF_ROWS, rows=1, pause_s=0.2)
    rig.idle()
    rig.view.source.setCurrentIndex(1)  # mean over heads
    rig.host.cancel()
    rig.qtbot.waitUntil(lambda: rig.view.is_ready(), timeout=WAIT_MS)
    rig.idle()
    assert "Cancelled" in rig.view.head_panel.summary.text()
    np.testing.assert_array_equal(rig.shown(), before)
    rig.host.call(SLABS_OF_ROWS, rows=None)
    rig.view.set_selection(1, 2)  # and the next request works
    rig.qtbot.waitUntil(lambda: rig.view.is_ready(), timeout=WAIT_MS)
    rig.idle()
    np.testing.assert_allclose(rig.shown(), A.layer_maps(rig.cap, 1).mean(0), atol=1e-6)


def test_clicking_a_query_shows_its_row_as_bars(rig, tiny_models):
    rig.load(tiny_models["bert"])
    rig.view.set_selection(1, 2)
    rig.idle()
    rig.view.head_panel.heatmap.sig_clicked.emit(4, 0)
    rig.qtbot.waitUntil(lambda: rig.view.head_panel.bars.isVisible(), timeout=WAIT_MS)
    bars = rig.view.head_panel.bars
    np.testing.assert_allclose(bars.values, A.head_map(rig.cap, 1, 2)[4], atol=1e-6)
    assert bars.labels == rig.trace.labels()
    rig.view.set_selection(0, 0)  # the bars follow the selection for the same query
    rig.idle()
    np.testing.assert_allclose(bars.values, A.head_map(rig.cap, 0, 0)[4], atol=1e-6)


def test_hiding_the_sink_and_renormalising(rig, tiny_models):
    rig.load(tiny_models["llama"])
    rig.view.renormalise.setChecked(True)
    rig.view.hide_first.setChecked(True)
    rig.qtbot.waitUntil(lambda: rig.view.is_ready(), timeout=WAIT_MS)
    rig.idle()
    exact = A.head_map(rig.cap, 0, 0)[1:, 1:]
    np.testing.assert_allclose(rig.shown(), exact / exact.sum(1, keepdims=True), atol=1e-6)
    assert rig.view.head_panel.heatmap.row_labels == rig.trace.labels()[1:]
    assert "1 hidden" in rig.view.head_panel.summary.text() and "renormalised" in rig.view.head_panel.summary.text()


def test_long_inputs_are_block_reduced_and_zoom_fetches_exact_values(rig, tiny_models, monkeypatch):
    monkeypatch.setattr(attention_map_panel, "MIN_CELLS", 4)
    monkeypatch.setattr(attention_map_panel, "MAX_CELLS", 8)
    rig.load(tiny_models["llama"], TEXT * 3)
    t = rig.trace.num_tokens
    shown = rig.view.head_panel.shown
    assert shown.block == -(-t // 8) and shown.reduce == "max"
    np.testing.assert_allclose(rig.shown(), A.attention_blocks(rig.cap, 0, 0, block=shown.block, reduce="max"), atol=1e-6)
    assert "max over" in rig.view.head_panel.summary.text()
    heat = rig.view.head_panel.heatmap
    heat.item.getViewBox().setRange(xRange=(10, 16), yRange=(20, 26), padding=0)
    rig.qtbot.waitUntil(lambda: heat.detail is not None, timeout=WAIT_MS)
    matrix, r0, c0, block = heat.detail
    assert block == 1
    exact = A.head_map(rig.cap, 0, 0)
    np.testing.assert_allclose(matrix, exact[r0:r0 + matrix.shape[0], c0:c0 + matrix.shape[1]], atol=1e-6)
    assert heat.value_at(22, 12) == (pytest.approx(float(exact[22, 12])), 1)
    rig.view.set_selection(1, 1)  # the zoom stays, and the region is fetched for the new head
    rig.qtbot.waitUntil(lambda: rig.view.head_panel.shown.layer == 1 and heat.detail is not None, timeout=WAIT_MS)
    rig.idle()
    matrix, r0, c0, _ = heat.detail
    np.testing.assert_allclose(matrix, A.head_map(rig.cap, 1, 1)[r0:r0 + matrix.shape[0], c0:c0 + matrix.shape[1]], atol=1e-6)


def test_grid_and_statistics_open_heads(rig, tiny_models):
    rig.load(tiny_models["llama"])
    rig.view.tabs.setCurrentIndex(TAB_GRID)
    rig.qtbot.waitUntil(lambda: len(rig.view.overviews) == rig.cap.num_layers, timeout=WAIT_MS)
    grid = rig.view.grid
    ref = A.layer_overview(rig.cap, 2, attention_view.GRID_CELLS)
    x, y = grid.origin(2, 3)
    thumb = ref["thumbs"][3] / ref["thumbs"][3].max()
    np.testing.assert_allclose(grid.mosaic[y:y + thumb.shape[0], x:x + thumb.shape[1]], thumb, atol=1e-6)
    # what is drawn: the thumbnail as pyqtgraph would colour it (makeARGB gives BGRA), opaque;
    # the gaps transparent
    drawn = grid.image.image[y:y + thumb.shape[0], x:x + thumb.shape[1]]
    lut = grid.colormap.getLookupTable(nPts=256, alpha=True)
    bgra, _ = pg.functions.makeARGB(grid.mosaic[y:y + thumb.shape[0], x:x + thumb.shape[1]], lut=lut, levels=(0.0, 1.0))
    np.testing.assert_array_equal(drawn, bgra[..., [2, 1, 0, 3]])
    assert drawn[..., 3].min() == 255
    assert grid.image.image[y - 1 if y else y + thumb.shape[0], x, 3] == 0  # the gap beside it
    assert grid.image.image.shape == (*grid.mosaic.shape, 4)
    assert grid.head_at(x + 0.5, y + 0.5) == (2, 3)
    assert grid.group_gap > 0  # grouped-query heads: gaps between KV groups
    rig.view.tabs.setCurrentIndex(TAB_STATS)
    stats = np.stack([rig.view.overviews[layer].entropy for layer in range(rig.cap.num_layers)])
    np.testing.assert_allclose(rig.view.stats_map.matrix, stats, atol=1e-6)
    np.testing.assert_allclose(stats[2], ref["entropy"], atol=1e-5)
    rig.view.stat_metric.setCurrentIndex(2)
    np.testing.assert_allclose(rig.view.stats_map.matrix[1], rig.view.overviews[1].first, atol=1e-6)
    assert "Strongest sinks" in rig.view.stats_note.text()
    grid.sig_head_clicked.emit(2, 1)
    assert rig.view.tabs.currentIndex() == TAB_HEAD and (rig.view.layer.value(), rig.view.head.value()) == (2, 1)
    rig.idle()
    np.testing.assert_allclose(rig.shown(), A.head_map(rig.cap, 2, 1), atol=1e-6)


def test_rollout_tab(rig, tiny_models):
    rig.load(tiny_models["bert"])
    rig.view.tabs.setCurrentIndex(TAB_ROLLOUT)
    panel = rig.view.rollout_panel
    rig.qtbot.waitUntil(lambda: panel.shown is not None and panel.bars.isVisible(), timeout=WAIT_MS)
    full = A.rollout(rig.cap)
    np.testing.assert_allclose(panel.heatmap.matrix, full, atol=1e-5)
    np.testing.assert_allclose(panel.bars.values, full[-1], atol=1e-5)
    panel.heatmap.sig_clicked.emit(3, 0)
    rig.qtbot.waitUntil(lambda: rig.view.query.value() == 3, timeout=WAIT_MS)
    rig.idle()
    np.testing.assert_allclose(panel.bars.values, full[3], atol=1e-5)


def test_rollout_of_a_text_beyond_the_map_limit_shows_rows_only(rig, tiny_models, monkeypatch):
    monkeypatch.setattr(attention_view, "ROLLOUT_MAP_MAX_TOKENS", 5)
    rig.load(tiny_models["llama"])
    rig.view.tabs.setCurrentIndex(TAB_ROLLOUT)
    panel = rig.view.rollout_panel
    rig.qtbot.waitUntil(lambda: panel.bars.isVisible(), timeout=WAIT_MS)
    assert not panel.heatmap.isVisible() and "pick a query token" in panel.summary.text()
    np.testing.assert_allclose(panel.bars.values, A.rollout_row(rig.cap, rig.trace.num_tokens - 1), atol=1e-5)


def test_exports(rig, tiny_models, tmp_path):
    rig.load(tiny_models["llama"])
    view = rig.view
    for ext in ("png", "svg", "csv"):
        view.export_current(str(tmp_path / f"head.{ext}"))
    assert (tmp_path / "head.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "head.svg").read_bytes()[:2000]
    frame = pd.read_csv(tmp_path / "head.csv", index_col=0)
    labels = rig.trace.labels()
    assert list(frame.index) == [f"{i}:{s}" for i, s in enumerate(labels)]
    np.testing.assert_allclose(frame.to_numpy(), A.head_map(rig.cap, 0, 0), atol=1e-5)
    view.tabs.setCurrentIndex(TAB_GRID)
    rig.qtbot.waitUntil(lambda: len(view.overviews) == rig.cap.num_layers, timeout=WAIT_MS)
    view.export_current(str(tmp_path / "grid.png"))
    view.export_current(str(tmp_path / "grid.svg"))
    view.export_current(str(tmp_path / "stats.csv"))
    stats = pd.read_csv(tmp_path / "stats.csv")
    assert len(stats) == rig.cap.num_layers * rig.cap.num_heads
    np.testing.assert_allclose(stats.query("layer == 1")["entropy_bits"], view.overviews[1].entropy, atol=1e-5)
    view.tabs.setCurrentIndex(TAB_ROLLOUT)
    rig.qtbot.waitUntil(lambda: view.rollout_panel.shown is not None, timeout=WAIT_MS)
    view.export_current(str(tmp_path / "rollout.svg"))
    for name in ("grid.png", "grid.svg", "rollout.svg"):
        assert (tmp_path / name).stat().st_size > 1000


def test_log_colour_and_colour_map(rig, tiny_models):
    rig.load(tiny_models["llama"])
    heat = rig.view.head_panel.heatmap
    rig.view.log_scale.setChecked(True)
    lo, hi = heat._display_levels()
    assert hi == pytest.approx(np.log10(rig.shown().max()))
    shown = heat.image.image
    m = rig.shown()
    np.testing.assert_allclose(shown[m > 10 ** lo], np.log10(m[m > 10 ** lo]), atol=1e-5)
    assert heat.bar.axis.labelText.startswith("log10")
    rig.view.colormap.setCurrentIndex(1)
    assert heat.bar.colorMap().name == "cividis"


def test_scratch_toy_and_real_head(rig, tiny_models):
    from llmviz.core import scratch
    from llmviz.core.tasks import TaskContext

    rig.load(tiny_models["llama"])
    s = rig.scratch
    rig.qtbot.waitUntil(lambda: s.shown is not None, timeout=WAIT_MS)
    s.seed.setValue(7)
    rig.qtbot.waitUntil(lambda: s.shown is not None and "seed 7" in s.shown.title, timeout=WAIT_MS)
    ref = scratch.toy_walkthrough(None, TaskContext(), 8, 6, 7)
    np.testing.assert_allclose(s.plots["weights"].matrix, ref.step("weights").matrix, atol=1e-6)
    np.testing.assert_allclose(s.plots["output"].matrix, ref.step("output").matrix, atol=1e-6)
    assert s.plots["Q"].col_labels[0] == "d0" and s.plots["Q"].row_labels[0] == "x0"
    s.layer.setValue(2)
    s.head.setValue(1)
    rig.qtbot.waitUntil(lambda: s.shown is not None and s.shown.kind == "head" and s.shown.head == 1, timeout=WAIT_MS)
    rig.idle()
    rig.view.set_selection(2, 1)
    rig.idle()
    np.testing.assert_allclose(s.plots["weights"].matrix, rig.shown(), atol=1e-6)  # exactly the head view's map
    assert s.plots["masked"]._base.overlay.isVisible()  # the causal mask's -inf, in grey
    assert s.plots["scores"].row_labels == rig.trace.labels()


def test_real_app_with_minilm(window, qtbot, minilm_session):
    """The registered docks in the main window, on the bundled MiniLM (12 heads, no grouping)."""
    window.set_text("Attention lets every token look at every other token.")
    window.load_model(ModelSpec("bundled:minilm", device="cpu"))
    view = window.view("attention")
    qtbot.waitUntil(lambda: window.trace is not None and view.is_ready() and not window.host.busy, timeout=WAIT_MS)
    reference = minilm_session.run("Attention lets every token look at every other token.").capture
    np.testing.assert_allclose(view.head_panel.heatmap.matrix, A.head_map(reference, 0, 0), atol=1e-6)
    assert "scratch" in window.view_classes and window.docks["scratch"].objectName() == "scratch"
    view.tabs.setCurrentIndex(TAB_GRID)
    qtbot.waitUntil(lambda: len(view.overviews) == 6, timeout=WAIT_MS)
    assert view.grid.group_gap == 0 and not view.grid.layers_across  # 6 layers x 12 heads: heads run across


def test_grid_log_colour_and_colour_map_recolour_what_is_drawn(rig, tiny_models):
    rig.load(tiny_models["llama"])
    rig.view.tabs.setCurrentIndex(TAB_GRID)
    rig.qtbot.waitUntil(lambda: len(rig.view.overviews) == rig.cap.num_layers, timeout=WAIT_MS)
    grid = rig.view.grid
    rig.view.log_scale.setChecked(True)
    rig.view.colormap.setCurrentIndex(1)
    x, y = grid.origin(1, 2)
    thumb = grid.mosaic[y:y + grid.cell, x:x + grid.cell]
    lo, hi = grid.levels()
    assert (lo, hi) == (np.log10(head_grid.LOG_FLOOR), 0.0) and np.nanmin(thumb) >= lo
    lut = pg.colormap.get("cividis").getLookupTable(nPts=256, alpha=True)
    bgra, _ = pg.functions.makeARGB(thumb, lut=lut, levels=(lo, hi))  # pyqtgraph's own mapping
    np.testing.assert_array_equal(grid.image.image[y:y + grid.cell, x:x + grid.cell], bgra[..., [2, 1, 0, 3]])
