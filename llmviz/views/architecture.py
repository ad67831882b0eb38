"""Architecture dock: the loaded model's config summary, the families table, and a block builder.

Tabs:
- Config: family, layers, hidden size, heads and KV heads, FFN, vocabulary, context, position
  encoding, tied embeddings, norm, parameters per component, and the weights' memory at
  fp32/fp16/int8/int4 (a bar chart beside the table).
- Families: the notebook's GPT/BERT/T5/MoE comparison (resources/architectures.json) with the
  loaded model's family highlighted, and both bundled models side by side with real numbers.
- Block builder: the notebook's SimpleTransformerBlock with your sizes and norm placement,
  built and run on the worker; its parameters per component by formula and as counted,
  and one block of the loaded model beside it.

Tables are pandas-backed (imported on the first result, not at start-up).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.architecture_results import PRECISIONS, ArchitectureSummary, FamiliesComparison
from ..core.block_builder_results import FORMULA_WHY, LABELS, LIMITS, BlockSpec, BuiltBlock
from ..core.formatting import bytes_text
from ..core.specs import ModelInfo
from ..widgets.adaptive_splitter import AdaptiveSplitter
from ..widgets.layouts import column, fill, row, vertical_scroll
from ..widgets.plot_export import write_csv
from ..widgets.plot_style import style_plot
from ..workers.jobs import JobOutcome
from .base import DockView

if TYPE_CHECKING:
    import pandas as pd

    from ..widgets.frame_table import FrameTable

BAR_COLOR = "#0072B2"
ERROR = "#B00020"


def _fit_height(table: FrameTable) -> None:
    """Make a short table exactly as tall as its rows (no empty band under them), at any font."""
    table.fit_height()


def _wrapping(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    return label


def _note(text: str, error: bool = False) -> str:
    return f"<span style='color:{ERROR if error else '#1B5E20'}'>{html.escape(text)}</span>"


class ArchitectureView(DockView):
    NAME = "architecture"
    TITLE = "Architecture"
    AREA = Qt.DockWidgetArea.LeftDockWidgetArea
    NEEDS_TRACE = False
    STATE = ("tabs", "norm")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.summary: ArchitectureSummary | None = None
        self.families: FamiliesComparison | None = None
        self.built: BuiltBlock | None = None
        self._pending: set[str] = set()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._config_tab(), "Config")
        self.tabs.addTab(self._families_tab(), "Families")
        self.tabs.addTab(self._builder_tab(), "Block builder")
        fill(QVBoxLayout(self.content), self.tabs, margins=4)

    # ------------------------------------------------------------------ construction
    def _export_button(self, text: str, what: str) -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(lambda: self._ask_export(what))
        return button

    def _config_tab(self) -> QWidget:
        tab = QWidget()
        self.config_title = _wrapping()
        self.config_export = self._export_button("Export CSV…", "config")
        head = row((self.config_title, 1), self.config_export, margins=None)
        self.config_holder = QVBoxLayout()
        self.memory_plot = pg.PlotWidget()
        self.memory_plot.setMinimumWidth(260)
        style_plot(self.memory_plot.getPlotItem(), title="Weight memory by precision")
        self.memory_plot.getPlotItem().getAxis("bottom").enableAutoSIPrefix(False)
        self.memory_plot.setMouseEnabled(x=False, y=False)
        self.memory_plot.getPlotItem().invertY(True)
        splitter = AdaptiveSplitter(min_side_by_side=900)
        self.config_splitter = splitter
        table_box = QWidget()
        table_box.setLayout(self.config_holder)
        self.config_holder.setContentsMargins(0, 0, 0, 0)
        splitter.addWidget(table_box)
        splitter.addWidget(self.memory_plot)
        splitter.setStretchFactor(0, 5)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([700, 300])
        fill(QVBoxLayout(tab), head, (splitter, 1), margins=None)
        self.config_table: FrameTable | None = None
        return tab

    def _families_tab(self) -> QWidget:
        tab = QWidget()
        self.families_title = _wrapping()
        self.families_export = self._export_button("Export CSV…", "families")
        self.models_export = self._export_button("Export side by side CSV…", "models")
        head = row((self.families_title, 1), self.families_export, self.models_export, margins=None)
        self.families_holder = QVBoxLayout()
        self.models_title = _wrapping()
        splitter = QSplitter(Qt.Orientation.Vertical)
        top, bottom = QWidget(), QWidget()
        top.setLayout(self.families_holder)
        self.families_holder.setContentsMargins(0, 0, 0, 0)
        self.models_holder = fill(QVBoxLayout(bottom), self.models_title)
        splitter.addWidget(top)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        fill(QVBoxLayout(tab), head, (splitter, 1), margins=None)
        self.families_table: FrameTable | None = None
        self.models_table: FrameTable | None = None
        return tab

    def _builder_tab(self) -> QWidget:
        tab = QWidget()
        defaults = BlockSpec()
        self.spin: dict[str, QSpinBox] = {}
        form = QFormLayout()
        for name, label in LABELS.items():
            box = QSpinBox()
            lo, hi = LIMITS[name]
            box.setRange(lo, hi)
            box.setValue(getattr(defaults, name))
            box.setGroupSeparatorShown(True)
            self.spin[name] = box
            form.addRow(label, box)
        self.norm = QComboBox()
        # Short names keep the form narrow enough in presentation's large text; who uses which is
        # in each item's tooltip.
        for text, data, who in (("post-norm", "post", "the notebook, BERT"), ("pre-norm", "pre", "GPT-2, Llama")):
            self.norm.addItem(text, data)
            self.norm.setItemData(self.norm.count() - 1, f"{text}: {who}", Qt.ItemDataRole.ToolTipRole)
        self.norm.setToolTip("post-norm: the notebook, BERT · pre-norm: GPT-2, Llama")
        form.addRow("Norm placement", self.norm)
        self.build_button = QPushButton("Build and run")
        self.build_button.setDefault(True)
        self.build_button.clicked.connect(self.request_block)
        self.match_button = QPushButton("Match loaded model")
        self.match_button.setToolTip("Copy the loaded model's hidden size, heads and FFN size (one block)")
        self.match_button.clicked.connect(self.match_loaded)
        self.defaults_button = QPushButton("Notebook defaults")
        self.defaults_button.clicked.connect(self.reset_defaults)
        form_box = QGroupBox("SimpleTransformerBlock")
        form_layout = QVBoxLayout(form_box)
        form_layout.addLayout(form)
        for b in (self.build_button, self.match_button, self.defaults_button):
            form_layout.addWidget(b)
        form_layout.addStretch(1)
        # As wide as its labels and boxes need at the current font (a fixed 320 px cut the labels
        # off in presentation mode's large text), never wider.
        form_box.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Preferred)

        self.block_title = _wrapping("Press 'Build and run'.")
        self.block_title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.block_error = _wrapping()
        self.block_error.hide()
        self.compare_title = _wrapping()
        self.compare_notes = _wrapping()
        self.module_text = QPlainTextEdit()
        self.module_text.setReadOnly(True)
        mono = QFont("monospace")
        mono.setStyleHint(QFont.StyleHint.Monospace)
        self.module_text.setFont(mono)
        self.module_text.setMinimumHeight(170)
        self.components_holder = QVBoxLayout()
        self.components_why = _wrapping()
        self.compare_holder = QVBoxLayout()
        results = column(self.block_error, self.block_title, self.components_holder, self.components_why,
                         self.compare_title, self.compare_holder, self.compare_notes,
                         QLabel("<b>print(block)</b>"), (self.module_text, 1))
        # The results scroll as one column, each table and note at its full height: squeezed into
        # the tab's height they overlapped one another in large fonts.
        results_scroll = vertical_scroll(results)
        layout = QHBoxLayout(tab)
        layout.addWidget(form_box, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(results_scroll, 1)
        self.components_table: FrameTable | None = None
        self.compare_table: FrameTable | None = None
        return tab

    # ------------------------------------------------------------------ model changes and jobs
    def model_changed(self, info: ModelInfo) -> None:
        self.show_message(f"Summarizing the architecture of {info.title}…")
        self._pending = {"summary", "families", "block"}
        self.host.call(targets.ARCHITECTURE_SUMMARY, label="Summarizing the architecture",
                       on_done=lambda o: self._part_done("summary", o))
        self.host.call(targets.ARCHITECTURE_FAMILIES, label="Comparing architecture families",
                       on_done=lambda o: self._part_done("families", o))
        self.request_block()

    def on_trace(self, trace) -> None:
        """Nothing here depends on the text."""
        self.trace = trace

    def state(self) -> dict:
        return {**super().state(), "block": {name: box.value() for name, box in self.spin.items()}}

    def restore_state(self, state: dict) -> list[str]:
        unused = super().restore_state({k: v for k, v in state.items() if k != "block"})
        block = state.get("block")
        if isinstance(block, dict):
            for name, value in block.items():
                if name in self.spin and isinstance(value, int) and not isinstance(value, bool):
                    self.spin[name].setValue(value)
                else:
                    unused.append(f"block.{name}")
            self.request_block()
        return unused

    def spec(self) -> BlockSpec:
        return BlockSpec(**{name: box.value() for name, box in self.spin.items()}, norm=self.norm.currentData())

    def request_block(self) -> None:
        self._pending.add("block")
        self.mark_busy()
        self.host.call(targets.ARCHITECTURE_BLOCK, label="Building the transformer block",
                       on_done=lambda o: self._part_done("block", o), spec=self.spec())

    def match_loaded(self) -> None:
        """Set the builder to the loaded model's sizes (one block) and build."""
        s = self.summary
        if s is None:
            return
        self.spin["embed_dim"].setValue(s.hidden_size)
        self.spin["num_heads"].setValue(s.heads)
        if s.ffn_size:
            self.spin["ffn_dim"].setValue(s.ffn_size)
        self.spin["num_blocks"].setValue(1)
        self.norm.setCurrentIndex(1 if s.norm_placement.startswith("pre") else 0)
        self.request_block()

    def reset_defaults(self) -> None:
        defaults = BlockSpec()
        for name, box in self.spin.items():
            box.setValue(getattr(defaults, name))
        self.norm.setCurrentIndex(0)
        self.request_block()

    def _part_done(self, part: str, outcome: JobOutcome) -> None:
        if outcome.status == "cancelled":
            pass
        elif part == "block":
            self._block_finished(outcome)
        elif part == "families" and not outcome.ok:
            self.families_title.setText(_note(outcome.message, error=True))  # the other tabs stay usable
        elif not outcome.ok:
            self.show_message(outcome.message)
        elif part == "summary":
            self.set_summary(outcome.value)
        elif part == "families":
            self.set_families(outcome.value)
        self._pending.discard(part)
        if not self._pending:
            self.mark_ready()

    def _block_finished(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            self.block_error.hide()
            self.set_block(outcome.value)
        else:
            self.block_error.setText(_note(outcome.message, error=True))
            self.block_error.show()

    # ------------------------------------------------------------------ drawing: config
    def set_summary(self, summary: ArchitectureSummary) -> None:
        from ..widgets.highlight_table import highlight_table

        self.summary = summary
        if self.config_table is None:
            self.config_table = highlight_table(["field", "value", "meaning"],
                                                {"field": "Field", "value": "Value", "meaning": "What it means"},
                                                tooltip=lambda row: f"{row['value']}\n{row['meaning']}")
            self.config_holder.addWidget(self.config_table)
        self.config_table.frame_model.set_frame(summary.to_frame())
        self.config_table.fit_columns(300)
        self.config_title.setText(
            f"<b>{html.escape(summary.title)}</b> · {html.escape(summary.family)} · {summary.total_params:,} parameters "
            f"· {html.escape(summary.dtype or '')} · read from the {html.escape(summary.measured_on)}")
        self._draw_memory(summary)
        self.show_content()

    def _draw_memory(self, summary: ArchitectureSummary) -> None:
        item = self.memory_plot.getPlotItem()
        item.clear()
        largest = summary.weight_bytes(PRECISIONS[0][1])
        unit, scale = ("GiB", 2**30) if largest >= 2**30 else ("MiB", 2**20)
        sizes = [summary.weight_bytes(bits) / scale for _, bits in PRECISIONS]
        ys = list(range(len(PRECISIONS)))
        item.addItem(pg.BarGraphItem(x0=[0] * len(ys), y=ys, width=sizes, height=0.6, brush=BAR_COLOR, pen=None))
        item.setLabel("bottom", f"{unit} (weights only)", **{"font-size": "12pt", "color": "#222"})
        for y, (_label, bits), value in zip(ys, PRECISIONS, sizes):
            text = pg.TextItem(bytes_text(summary.weight_bytes(bits)), color="#111", anchor=(0, 0.5))
            text.setPos(value, y)
            item.addItem(text)
        item.getAxis("left").setTicks([[(y, label) for y, (label, _) in zip(ys, PRECISIONS)]])
        item.setXRange(0, max(sizes) * 1.45 if max(sizes) > 0 else 1, padding=0)
        item.setYRange(-0.6, len(ys) - 0.4, padding=0)

    # ------------------------------------------------------------------ drawing: families
    def set_families(self, families: FamiliesComparison) -> None:
        from ..widgets.highlight_table import highlight_table

        self.families = families
        if self.families_table is None:
            self.families_table = highlight_table(
                ["architecture", "attention", "strengths", "weaknesses", "use_cases", "examples"],
                {"architecture": "Architecture", "attention": "Attention", "strengths": "Strengths",
                 "weaknesses": "Weaknesses", "use_cases": "Use cases", "examples": "Examples"}, wrap=True)
            self.families_holder.addWidget(self.families_table)
        frame = families.families_frame()
        table = self.families_table
        table.frame_model.set_frame(frame)
        loaded_rows = {i for i, key in enumerate(frame["family"]) if key == families.loaded_family}
        table.frame_model.set_highlight(rows=loaded_rows)
        for col, width in enumerate((190, 200, 190, 190, 200)):
            table.setColumnWidth(col, width)
        table.resizeRowsToContents()
        loaded = next((f.name for f in families.families if f.key == families.loaded_family), None)
        self.families_title.setText(
            "The notebook's architecture comparison" + (f"; the loaded model is <b>{html.escape(loaded)}</b> "
                                                       "(highlighted)." if loaded else "."))
        self._set_models(families)

    def _set_models(self, families: FamiliesComparison) -> None:
        from ..widgets.highlight_table import highlight_table

        side = families.side_by_side()
        frame = side.reset_index(names="fact")
        columns = list(frame.columns)
        if self.models_table is not None and self.models_table.frame_model.columns != columns:
            self.models_table.setParent(None)
            self.models_table = None
        if self.models_table is None:
            self.models_table = highlight_table(columns, {"fact": "Bundled models, real numbers"})
            self.models_holder.addWidget(self.models_table, 1)
        self.models_table.frame_model.set_frame(frame)
        loaded_titles = {m.title for m in families.models if m.source == families.loaded_source}
        self.models_table.frame_model.set_highlight(columns=loaded_titles)
        self.models_table.fit_columns(360)
        how = "; ".join(f"{html.escape(m.title)}: {html.escape(m.measured_on)}" for m in families.models)
        self.models_title.setText(f"<b>The two bundled models side by side</b> (loaded one highlighted). Numbers "
                                  f"from each model's modules ({how}).")

    # ------------------------------------------------------------------ drawing: block builder
    def set_block(self, built: BuiltBlock) -> None:
        import pandas as pd

        from ..widgets.highlight_table import highlight_table

        self.built = built
        s = built.spec
        agrees = built.measured_total == built.formula_total
        check = "= formula ✓" if agrees else f"≠ formula {built.formula_total:,} ✗"
        self.block_title.setText(
            f"<b>{s.num_blocks} × SimpleTransformerBlock</b> ({s.norm}-norm, E={s.embed_dim}, {s.num_heads} heads of "
            f"{s.embed_dim // s.num_heads}, F={s.ffn_dim}) · input {list(built.input_shape)} → output "
            f"{list(built.output_shape)} · <b>{built.measured_total:,}</b> parameters (sum(p.numel()) {check}) · "
            f"forward {built.forward_ms:.2f} ms on random input · output mean {built.output_mean:.3f}, "
            f"std {built.output_std:.3f}")
        if self.components_table is None:
            self.components_table = highlight_table(
                ["component", "formula", "substituted", "per_block", "formula_total", "measured", "agrees"],
                {"component": "Component", "formula": "Formula", "substituted": "With your numbers",
                 "per_block": "Per block", "formula_total": "× blocks", "measured": "sum(p.numel())", "agrees": ""},
                tooltip=lambda row: FORMULA_WHY.get(row["component"], "per block: 4E² + 2EF + 9E + F"))
            self.components_holder.addWidget(self.components_table)
        rows = [{"component": c.component, "formula": c.formula, "substituted": c.substituted,
                 "per_block": f"{c.per_block:,}", "formula_total": f"{c.formula_total:,}", "measured": f"{c.measured:,}",
                 "agrees": "✓" if c.measured == c.formula_total else "✗"} for c in built.components]
        rows.append({"component": "total", "formula": "4E² + 2EF + 9E + F", "substituted": "",
                     "per_block": f"{built.formula_total // max(1, s.num_blocks):,}",
                     "formula_total": f"{built.formula_total:,}", "measured": f"{built.measured_total:,}",
                     "agrees": "✓" if agrees else "✗"})
        table = self.components_table
        table.frame_model.set_frame(pd.DataFrame(rows))
        table.frame_model.set_highlight(rows={len(rows) - 1})
        table.fit_columns(260)
        _fit_height(table)
        self.components_why.setText("<br>".join(f"<b>{html.escape(k)}</b>: {html.escape(v)}"
                                                for k, v in FORMULA_WHY.items()))
        self.module_text.setPlainText(built.module_text)
        self._set_comparison(built)

    def _set_comparison(self, built: BuiltBlock) -> None:
        import pandas as pd

        from ..widgets.highlight_table import highlight_table

        cmp = built.comparison
        if cmp is None:
            self.compare_title.setText(html.escape(built.comparison_note))
            self.compare_notes.setText("")
            if self.compare_table is not None:
                self.compare_table.hide()
            return
        self.compare_title.setText(
            f"<b>One built block ({cmp.built_total:,}) beside one block of {html.escape(cmp.model_title)}</b> "
            f"({html.escape(cmp.block_path)}, {html.escape(cmp.block_class)}: {cmp.loaded_total:,} parameters)")
        if self.compare_table is None:
            self.compare_table = highlight_table(
                ["component", "built", "loaded", "matrices"],
                {"component": "Component", "built": "Built block", "loaded": "Loaded model's block",
                 "matrices": "Loaded block's weight matrices"})
            self.compare_holder.addWidget(self.compare_table)
        self.compare_table.show()
        frame = pd.DataFrame([{"component": r.component, "built": f"{r.built_per_block:,}", "loaded": f"{r.loaded:,}",
                               "matrices": r.matrices} for r in cmp.rows])
        self.compare_table.frame_model.set_frame(frame)
        self.compare_table.fit_columns(520)
        _fit_height(self.compare_table)
        self.compare_notes.setText("<ul style='margin:0'>" + "".join(f"<li>{html.escape(n)}</li>" for n in cmp.notes)
                                   + "</ul>")

    # ------------------------------------------------------------------ export
    def frame_for(self, which: str) -> pd.DataFrame | None:
        if which == "config" and self.summary is not None:
            return self.summary.to_frame()
        if which == "families" and self.families is not None:
            return self.families.families_frame()
        if which == "models" and self.families is not None:
            return self.families.side_by_side().reset_index(names="fact")
        return None

    def _ask_export(self, which: str) -> None:
        if self.frame_for(which) is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export as CSV", f"{which}.csv", "CSV (*.csv)")
        if path:
            self.export_csv(which, path)

    def export_csv(self, which: str, path: str) -> bool:
        """Write one of the tables; a failure is shown in that tab's title line."""
        frame = self.frame_for(which)
        label = self.config_title if which == "config" else self.families_title
        if frame is None:
            return False
        try:
            write_csv(frame, path, index=False)
        except OSError as exc:
            label.setText(label.text() + "<br>" + _note(f"Could not write {path}: {exc.strerror or exc}", error=True))
            return False
        label.setText(label.text() + "<br>" + _note(f"Saved {len(frame)} rows to {path}"))
        return True
