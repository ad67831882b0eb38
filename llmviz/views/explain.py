"""Explain dock: why did the model predict this token?

Pick a target (the next token after a position, any token or the top-1; for encoders the
similarity to a second text) and methods; the engine returns attributions per input
token, shown as the text shaded on a diverging scale and as bars, with integrated
gradients' completeness gap, the faithfulness curves of every method against a random
ranking, and a neuron panel.  Integrated gradients arrive twice: a coarse picture first,
then the refined one.  Other docks' "Why?" buttons (widgets/why_button.py) ask through the window.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.explain_results import METHOD_TITLES, METHODS, REFINE_GAP, Explanation, NeuronDetail, NeuronTable
from ..core.results import Trace
from ..core.specs import ModelInfo
from ..widgets.faithfulness_plot import FaithfulnessPlot
from ..widgets.flow_layout import flow_row
from ..widgets.layouts import fill
from ..widgets.plot_export import ask_csv_path, ask_image_path, export_plot, write_csv
from ..widgets.token_bars import TokenBars
from ..widgets.token_shading import TokenShading
from ..widgets.why_button import ExplainRequest
from ..workers.jobs import JobEvent, JobOutcome
from ..workers.model_host import ModelHost
from .base import DockView

AUTO_RUN_MAX_TOKENS = 256  # longer texts wait for the Explain button (integrated gradients take a while)
DEFAULT_METHODS = ("gxi", "ig", "occlusion", "rollout", "vnorm")


def _pair(*widgets: QWidget) -> QWidget:
    """Widgets that stay on one line of a wrapping row (a label and what it names)."""
    holder = QWidget()
    fill(QHBoxLayout(holder), *widgets)
    return holder


class ExplainView(DockView):
    NAME = "explain"
    TITLE = "Explain"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    STATE = ("position", "token", "compare", "steps", "refine", "baseline", "faithful", "shown", "layer")

    def __init__(self, host: ModelHost, parent: QWidget | None = None) -> None:
        super().__init__(host, parent)
        self.result: Explanation | None = None
        self._wanted_method: str | None = None  # a restored "shown" method, applied when results arrive
        self.other_text: str | None = None  # a generation step's context, until the target changes
        self.neuron_table: NeuronTable | None = None
        self.neuron_detail: NeuronDetail | None = None
        # target row
        self.position = QSpinBox()
        self.position.setRange(-1, 0)
        self.position.setSpecialValueText("last")
        self.position.setValue(-1)
        self.position.setMinimumWidth(80)
        self.position.setMaximumWidth(110)
        self.position.setToolTip("The position whose next-token prediction is explained")
        self.token = QLineEdit()
        self.token.setPlaceholderText("top-1")
        self.token.setToolTip("The predicted token to explain: a token id or one token's text; empty: the top-1")
        self.token.setMaximumWidth(140)
        self.compare = QLineEdit()
        self.compare.setPlaceholderText("a second text (encoders: explain the similarity to it)")
        self.explain_button = QPushButton("Explain")
        self.explain_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        target = QHBoxLayout()
        self.position_label = QLabel("Position:")
        self.token_label = QLabel("Token:")
        for w in (self.position_label, self.position, self.token_label, self.token):
            target.addWidget(w)
        target.addWidget(self.compare, 4)
        target.addStretch(1)
        target.addWidget(self.explain_button)
        target.addWidget(self.cancel_button)
        # methods row
        self.method_boxes = {m: QCheckBox(m) for m in METHODS}
        for m, box in self.method_boxes.items():
            box.setChecked(m in DEFAULT_METHODS)
            box.setToolTip(METHOD_TITLES[m])
        self.steps = QSpinBox()
        self.steps.setRange(1, 1024)
        self.steps.setValue(64)
        self.steps.setToolTip("Integration steps (Gauss–Legendre nodes) of integrated gradients")
        self.refine = QCheckBox(f"Refine to gap ≤ {REFINE_GAP:.0%}")
        self.refine.setChecked(True)
        self.refine.setToolTip("Double the steps (up to 1024) while the completeness gap |Σ IG − (f(x) − f(x'))| "
                               f"is above {REFINE_GAP:.0%} of |f(x) − f(x')|; each result shows as it completes, "
                               "and Cancel keeps the last one")
        self.baseline = QComboBox()
        self.baseline.addItems(["pad", "zero"])
        self.baseline.setToolTip("What a removed token becomes: the pad token's embedding, or zeros")
        self.faithful = QCheckBox("Faithfulness")
        self.faithful.setChecked(True)
        self.faithful.setToolTip("Re-run with the top tokens removed / kept (ERASER) for each method and a random ranking")
        # One line on the desktop; in presentation's large fonts it wraps instead of pushing the
        # view wider than the window.  A label and its box stay together.
        methods = flow_row(_pair(QLabel("Methods:"), *self.method_boxes.values()),
                           _pair(QLabel("IG steps:"), self.steps), self.refine,
                           _pair(QLabel("Baseline:"), self.baseline), self.faithful)
        # what is shown
        self.shown = QComboBox()
        self.shown.setToolTip("The method the text and bars show")
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_image_button = QPushButton("Export image…")
        show_row = QHBoxLayout()
        show_row.addWidget(QLabel("Show:"))
        show_row.addWidget(self.shown)
        self.status = QLabel()
        self.status.setWordWrap(True)
        show_row.addStretch(1)
        show_row.addWidget(self.export_csv_button)
        show_row.addWidget(self.export_image_button)
        self.shading = TokenShading()
        self.bars = TokenBars(y_label="attribution")
        self.bars.item.setLabel("bottom", "input token")
        self.removed_plot = FaithfulnessPlot()
        self.kept_plot = FaithfulnessPlot()
        self.areas = QLabel()
        self.areas.setWordWrap(True)
        faith_tab = QWidget()
        fl = QVBoxLayout(faith_tab)
        fl.setContentsMargins(0, 0, 0, 0)
        plots = QHBoxLayout()
        plots.addWidget(self.removed_plot)
        plots.addWidget(self.kept_plot)
        fl.addLayout(plots, 1)
        fl.addWidget(self.areas)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.bars, "Bars")
        self.tabs.addTab(faith_tab, "Faithfulness")
        self.tabs.addTab(self._neuron_tab(), "Neurons")
        layout = QVBoxLayout(self.content)
        layout.addLayout(target)
        layout.addWidget(methods)
        layout.addLayout(show_row)
        layout.addWidget(self.status)  # its own line: in presentation's large fonts it wraps across the view
        layout.addWidget(self.shading, 1)
        layout.addWidget(self.tabs, 4)
        self.explain_button.clicked.connect(lambda: self.run())
        self.position.valueChanged.connect(self._own_text)
        self.token.textEdited.connect(self._own_text)
        self.cancel_button.clicked.connect(self.cancel)
        self.shown.currentIndexChanged.connect(lambda _i: self._draw_attributions())
        self.export_csv_button.clicked.connect(self._export_csv)
        self.export_image_button.clicked.connect(self._export_image)

    def _neuron_tab(self) -> QWidget:
        tab = QWidget()
        lay = QVBoxLayout(tab)
        lay.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.layer = QSpinBox()
        self.layer.setRange(0, 0)
        self.neuron_button = QPushButton("Find neurons")
        self.neuron_status = QLabel("Top MLP neurons at the explained position and this layer.")
        self.neuron_status.setWordWrap(True)
        row.addWidget(QLabel("Layer:"))
        row.addWidget(self.layer)
        row.addWidget(self.neuron_button)
        row.addWidget(self.neuron_status, 1)
        lay.addLayout(row)
        body = QHBoxLayout()
        self.neuron_list = QTableWidget(0, 3)
        self.neuron_list.setHorizontalHeaderLabels(["neuron", "activation", "→ target logit"])
        self.neuron_list.verticalHeader().setVisible(False)
        self.neuron_list.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.neuron_list.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.neuron_list.setMinimumWidth(300)
        self.neuron_list.horizontalHeader().setStretchLastSection(True)
        self.neuron_bars = TokenBars(y_label="activation")
        self.neuron_bars.item.setLabel("bottom", "token")
        self.promoted = QLabel()
        self.promoted.setWordWrap(True)
        right = QVBoxLayout()
        right.addWidget(self.neuron_bars, 1)
        right.addWidget(self.promoted)
        body.addWidget(self.neuron_list)
        body.addLayout(right, 1)
        lay.addLayout(body, 1)
        self.neuron_button.clicked.connect(self.find_neurons)
        self.neuron_list.itemSelectionChanged.connect(self._neuron_selected)
        return tab

    # -- model and text -------------------------------------------------------------------
    def model_changed(self, info: ModelInfo) -> None:
        encoder = not info.is_decoder
        for w in (self.position, self.position_label, self.token, self.token_label):
            w.setVisible(not encoder)
        self.compare.setVisible(encoder)
        self.layer.setRange(0, max(0, info.num_layers - 1))
        self.layer.setValue(min(self.layer.value(), info.num_layers - 1) if self.layer.value() else info.num_layers // 2)

    def trace_changed(self, trace: Trace) -> None:
        self.result = None
        self.other_text = None
        self.position.setRange(-1, max(0, trace.num_tokens - 1))
        if self.info is not None and not self.info.is_decoder and not self.compare.text().strip():
            self.compare.setText("A short text to compare with")
        if trace.num_tokens > AUTO_RUN_MAX_TOKENS:
            self.show_message(f"This text has {trace.num_tokens:,} tokens: press Explain to run the chosen methods "
                              "(integrated gradients take a while on long texts).")
            self.show_content()
            self.status.setText(f"{trace.num_tokens:,} tokens: choose a target and press Explain.")
            self.mark_ready()
            return
        self.run(refine=False)  # unasked: a quick first answer; Explain refines when the box is ticked

    def explain_target(self, request: ExplainRequest) -> None:
        """Open on a target asked for elsewhere (a "Why?" button) and explain it."""
        self.position.setValue(request.position if request.position >= 0 and request.text is None else -1)
        self.token.setText(str(request.token) if request.token >= 0 else "")
        self.other_text = request.text  # after the controls: editing them goes back to the window's text
        if request.compare:
            self.compare.setText(request.compare)
        if self.trace is not None:
            self.run()

    def _own_text(self, *_args: object) -> None:
        self.other_text = None

    # -- jobs ---------------------------------------------------------------------------------
    def methods(self) -> list[str]:
        return [m for m, box in self.method_boxes.items() if box.isChecked()]

    def run(self, refine: bool = True) -> None:
        """Explain the chosen target; `refine`: as the Refine box says (False for the run a new
        text starts by itself, which must not tie the engine up for minutes unasked)."""
        if self.trace is None or self.info is None:
            return
        self.mark_busy()
        self.explain_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText("Explaining…")
        token = self.token.text().strip()
        self.host.call(targets.EXPLAIN, channel=self.channel("explain"), label="Explaining a prediction",
                       on_done=self._explained, on_partial=self._partial,
                       on_progress=self._progress,
                       trace_id=self.trace.id, position=self.position.value(), token=token or None,
                       methods=self.methods(), steps=self.steps.value(), baseline=self.baseline.currentText(),
                       refine_gap=REFINE_GAP if refine and self.refine.isChecked() else 0.0,
                       compare=self.compare.text() if not self.info.is_decoder else "",
                       faithfulness=self.faithful.isChecked(), text=self.other_text)

    def _progress(self, event: JobEvent) -> None:
        p = event.progress
        self.status.setText(f"{p.stage} {p.fraction * 100:.0f}%" if p.fraction is not None else p.stage)

    def cancel(self) -> None:
        self.host.cancel(self.channel("explain"))
        self.cancel_button.setEnabled(False)
        self.explain_button.setEnabled(True)
        self.status.setText("Cancelled; the last complete picture stays.")

    def _partial(self, result: Explanation) -> None:
        if self.trace is not None and result.trace_id == self.trace.id:
            self._show(result)

    def _explained(self, outcome: JobOutcome) -> None:
        self.explain_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if outcome.kwargs.get("trace_id") != (self.trace.id if self.trace else None):
            return
        if outcome.ok:
            self._show(outcome.value)
        elif outcome.status == "cancelled":
            self.status.setText("Cancelled; the last complete picture stays.")
        else:
            self.status.setText(f"<span style='color:#b00'>{outcome.message}</span>")
        self.show_content()
        self.mark_ready()

    def state(self) -> dict:
        state = super().state()
        if self._wanted_method is not None:
            state["shown"] = self._wanted_method
        return state

    def restore_state(self, state: dict) -> list[str]:
        """As DockView's; the method shown is kept until results offer it (the list of methods
        is empty before the first explanation)."""
        unused = super().restore_state({k: v for k, v in state.items() if k != "shown"})
        shown = state.get("shown")
        if isinstance(shown, str) and shown in METHOD_TITLES:
            index = self.shown.findData(shown)
            if index >= 0:
                self.shown.setCurrentIndex(index)
            else:
                self._wanted_method = shown
        elif "shown" in state and shown not in (None, ""):  # "": no explanation was shown yet
            unused.append("shown")
        return unused

    def _show(self, result: Explanation) -> None:
        self.result = result
        self.show_content()
        current = self._wanted_method or self.shown.currentData()
        self._wanted_method = None
        self.shown.blockSignals(True)
        self.shown.clear()
        for m in result.methods:
            self.shown.addItem(METHOD_TITLES[m], m)
        index = self.shown.findData(current if current in result.methods else ("ig" if "ig" in result.methods else
                                                                                 (result.methods or [None])[0]))
        self.shown.setCurrentIndex(max(0, index))
        self.shown.blockSignals(False)
        self._draw_attributions()
        self._draw_faithfulness()

    def _status_text(self, result: Explanation) -> str:
        what = result.target.describe()
        score = "cos" if result.target.kind == "similarity" else "log p"
        parts = [f"{what}: {score} = {result.score:.3f} (baseline {result.baseline_score:.3f})"]
        if "ig" in result.attributions:
            gap = result.completeness_gap
            warn = ""
            if np.isfinite(gap) and gap > REFINE_GAP and result.final:
                if not self.refine.isChecked():
                    warn = " — more steps would close it"
                elif result.ig_steps < self.steps.maximum():  # at the most steps, the notes say so
                    warn = " — press Explain to refine"
            parts.append(f"IG {result.ig_steps} steps, completeness gap {gap:.2%}{warn}")
        if not result.final:
            parts.append("refining…" if self.cancel_button.isEnabled() else "cancelled before the end")
        return "; ".join(parts)

    def _draw_attributions(self) -> None:
        result = self.result
        method = self.shown.currentData()
        if result is None or method not in result.attributions:
            return
        values = result.attributions[method]
        marked = len(result.tokens) - 1 if result.target.kind == "next" else None
        self.shading.set_values(result.tokens, values, marked, f"{METHOD_TITLES[method]} — red raises the target, "
                                "blue lowers it; the underlined token is where the prediction is made")
        self.bars.set_values(values, result.tokens, np.arange(len(values)), METHOD_TITLES[method], marked)
        self.status.setText(self._status_text(result) + ("" if not result.notes else " — hover for notes"))
        self.status.setToolTip("\n".join(result.notes))

    def _draw_faithfulness(self) -> None:
        result = self.result
        if result is None or not result.faithfulness:
            self.areas.setText("Faithfulness: tick it and press Explain." if result is not None else "")
            return
        name = "cos" if result.target.kind == "similarity" else "log p(target)"
        self.removed_plot.set_curves(result.faithfulness, kept=False, score_name=name)
        self.kept_plot.set_curves(result.faithfulness, kept=True, score_name=name)
        best = max((m for m in result.faithfulness if m != "random"),
                   key=lambda m: result.faithfulness[m].comprehensiveness, default=None)
        rand = result.faithfulness.get("random")
        text = ("Comprehensiveness (left, higher is better): how far f falls when a method's top tokens are removed; "
                "sufficiency (right, lower is better): how far it falls when only they are kept.")
        if best is not None and rand is not None:
            text += (f" Most faithful here: <b>{best}</b> ({result.faithfulness[best].comprehensiveness:+.3f} against "
                     f"random {rand.comprehensiveness:+.3f}).")
        self.areas.setText(text)

    # -- neurons ------------------------------------------------------------------------------
    def find_neurons(self) -> None:
        if self.trace is None:
            return
        token = self.token.text().strip()
        self.neuron_status.setText("Finding neurons…")
        self.host.call(targets.EXPLAIN_NEURONS, channel=self.channel("neurons"), on_done=self.on_result(
            self._draw_neurons, lambda o: self.neuron_status.setText(o.message or "Cancelled.")),
            trace_id=self.trace.id, layer=self.layer.value(), position=self.position.value(),
            token=(token or None) if self.info is not None and self.info.is_decoder else None)

    def _draw_neurons(self, table: NeuronTable) -> None:
        self.neuron_table = table
        self.neuron_list.setRowCount(len(table.neurons))
        for row, (n, a) in enumerate(zip(table.neurons, table.activations)):
            c = "" if table.contributions is None else f"{table.contributions[row]:+.4f}"
            for col, text in enumerate((str(int(n)), f"{a:+.4f}", c)):
                self.neuron_list.setItem(row, col, QTableWidgetItem(text))
        self.neuron_list.resizeColumnsToContents()
        target = f"; contribution to the logit of {table.target_label!r}" if table.target_label else ""
        self.neuron_status.setText(f"Layer {table.layer}, position {table.position}: top {len(table.neurons)} of "
                                   f"{table.width} neurons by |activation|{target}.")
        if len(table.neurons):
            self.neuron_list.selectRow(0)

    def _neuron_selected(self) -> None:
        rows = self.neuron_list.selectionModel().selectedRows() if self.neuron_list.selectionModel() else []
        if not rows or self.neuron_table is None or self.trace is None:
            return
        neuron = int(self.neuron_table.neurons[rows[0].row()])
        self.host.call(targets.EXPLAIN_NEURON, channel=self.channel("neuron"), on_done=self.on_result(
            self._draw_neuron), trace_id=self.trace.id, layer=self.neuron_table.layer, neuron=neuron)

    def _draw_neuron(self, detail: NeuronDetail) -> None:
        self.neuron_detail = detail
        labels = self.trace.labels() if self.trace is not None else [str(i) for i in range(detail.activations.size)]
        self.neuron_bars.set_values(detail.activations, labels, np.arange(detail.activations.size),
                                    f"neuron {detail.neuron}", self.neuron_table.position if self.neuron_table else None)
        if detail.top_labels:
            tops = ", ".join(f"{label!r} {value:+.3f}" for label, value in zip(detail.top_labels, detail.top_values))
            self.promoted.setText(f"Neuron {detail.neuron} raises most the logits of: {tops}")
        else:
            self.promoted.setText(f"Neuron {detail.neuron} (an encoder has no output head to read it through).")

    # -- export -------------------------------------------------------------------------------
    def _export_csv(self) -> None:
        if self.result is None:
            return
        import pandas as pd

        path = ask_csv_path(self, "attributions")
        if path:
            write_csv(pd.DataFrame(self.result.attribution_columns()), path, index=False)
            if self.result.faithfulness:
                write_csv(pd.DataFrame(self.result.faithfulness_rows()), path.removesuffix(".csv") + "-faithfulness.csv",
                          index=False)

    def _export_image(self) -> None:
        path = ask_image_path(self, "attributions")
        if path:
            plot = self.bars.item if self.tabs.currentIndex() != 1 else self.removed_plot.item
            export_plot(plot, path)
