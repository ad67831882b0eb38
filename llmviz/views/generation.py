"""Generation dock: generate token by token on the worker and watch each step arrive.

Each step is one worker job (`core.generation_jobs.step`), submitted as soon as the previous
one arrives, so the text and the live plot (probability of the chosen token, entropy,
latency) grow token by token, and Stop keeps everything generated so far.  Clicking a
step shows its top candidates and the attention row of the position that produced it.
"""

from __future__ import annotations

import html
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.generation_results import GenerationStep
from ..core.results import Trace
from ..core.specs import ModelInfo
from ..widgets.heatmap import HeatmapPlot
from ..widgets.plot_export import ask_image_path, export_plot
from ..widgets.sampling_boxes import sampling_boxes
from ..widgets.why_button import ExplainRequest, WhyButton
from ..workers.jobs import JobOutcome
from .base import DockView

PIPELINE = 2  # step jobs kept queued in the engine
PLOT_INTERVAL_MS = 250  # 4 Hz: painting holds the GIL the worker's decoding needs

def _y_axis(item: pg.PlotItem, top: float) -> None:
    """Range 0..top with a margin and ticks at 0, top/2 and top: pyqtgraph's own choice put four
    labels on a ~50 px plot, and labels right at the edges are hidden."""
    item.setYRange(-0.12 * top, 1.12 * top, padding=0)
    item.getAxis("left").setTicks([[(v, f"{v:g}") for v in (0.0, top / 2, top)], []])


def _nice_ceiling(value: float) -> float:
    """1, 2 or 5 times a power of ten, at least `value`."""
    if value <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(value))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= value))


SERIES = (  # key, name in the key line above the plots, unit on the left axis, colour
    ("prob", "probability of the chosen token", "p", "#1f5fa8"),
    ("entropy_bits", "entropy of the distribution", "bits", "#d2691e"),
    ("latency_ms", "step latency", "ms", "#2e8b57"),
)


class GenerationView(DockView):
    NAME = "generation"
    TITLE = "Generation"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    STATE = ("max_new", "mode", "temperature", "top_k", "top_p", "seed", "chat", "stop_at_eos")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        host.sig_cancel_requested.connect(self.stop)  # Esc between two steps must not be missed
        self.steps: list[GenerationStep] = []
        self.run_id: int | None = None
        self.running = False
        self.stop_requested = False
        self.selected = -1
        self.prompt_source = ""  # the text the user typed (the prompt before any chat template)
        self.prompt_text = ""  # the prompt as the model saw it
        self.prompt_pieces: tuple[str, ...] = ()
        self.chat_run = False
        self.sampled_run = False
        self.attention_step = -1
        self.target = 0  # tokens this run should reach
        self._jobs: set[int] = set()  # ids of step jobs submitted and not yet back
        self._shown = ("", "")  # (prompt, generated) in the text box
        self._generated_format = QTextCharFormat()
        self._arrivals: list[float] = []
        self._build()

    # -- construction ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.max_new = QSpinBox()
        self.max_new.setRange(1, 8192)
        self.max_new.setValue(64)
        self.max_new.setPrefix("new tokens ")
        self.mode = QComboBox()
        self.mode.addItem("greedy", False)
        self.mode.addItem("sample", True)
        self.temperature, self.top_k, self.top_p = sampling_boxes(temperature=0.8, top_k=50, top_p=0.95)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setPrefix("seed ")
        self.chat = QCheckBox("chat template")
        self.chat.setToolTip("Wrap the text as a user message in the model's chat template (SmolLM2-Instruct has one).")
        self.stop_at_eos = QCheckBox("stop at end-of-sequence")
        self.stop_at_eos.setChecked(True)
        self.mode.currentIndexChanged.connect(self._sampling_enabled)
        self._sampling_enabled()

        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.stop_button = QPushButton("Stop")
        self.continue_button = QPushButton("Continue")
        self.continue_button.setToolTip("Generate as many tokens again after the last one")
        self.use_button = QPushButton("Use as input")
        self.use_button.setToolTip("Put the prompt and the generated text into the text box and run it")
        self.copy_button = QPushButton("Copy text")
        self.export_button = QPushButton("Export plot…")
        self.why_button = WhyButton(self.why_request, "Open the Explain dock on the selected step's token (the last "
                                    "one if none is selected): which tokens before it it rests on")
        self.generate_button.clicked.connect(self.generate)
        self.stop_button.clicked.connect(self.stop)
        self.continue_button.clicked.connect(self.continue_generation)
        self.use_button.clicked.connect(self.use_as_input)
        self.copy_button.clicked.connect(self.copy_text)
        self.export_button.clicked.connect(self._export_dialog)

        settings = QGridLayout()
        for col, w in enumerate((self.max_new, self.mode, self.temperature, self.top_k, self.top_p, self.seed)):
            settings.addWidget(w, 0, col)
        settings.addWidget(self.chat, 1, 0, 1, 2)
        settings.addWidget(self.stop_at_eos, 1, 2, 1, 2)
        buttons = QHBoxLayout()
        for b in (self.generate_button, self.stop_button, self.continue_button, self.use_button, self.copy_button,
                  self.why_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)
        self.status = QLabel("Press Generate to continue the text above.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)

        self.text = QTextEdit()
        self.text.setReadOnly(True)
        self.text.setMinimumHeight(80)
        self.plots = pg.GraphicsLayoutWidget()
        self.plots.setMinimumHeight(240)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.markers: list[pg.InfiniteLine] = []
        self.plot_items: list[pg.PlotItem] = []
        # One key line names the three series: a rotated axis title per plot overflowed its ~70 px,
        # and a title above each plot took the height its ticks need.
        self.plots.addLabel("&nbsp;&nbsp;&nbsp;".join(f"<span style='color:{c}'>━</span> {html.escape(t)}"
                                                         for _, t, _, c in SERIES), row=0, col=0, size="9pt", color="#333")
        for row, (key, _title, unit, colour) in enumerate(SERIES, start=1):
            item = self.plots.addPlot(row=row, col=0)
            item.setMenuEnabled(False)
            item.setLabel("left", unit)
            item.showGrid(x=True, y=True, alpha=0.25)
            item.getAxis("left").setWidth(60)
            item.getAxis("left").enableAutoSIPrefix(False)
            if row == len(SERIES):
                item.setLabel("bottom", "step (generated token)")
            else:  # the x-linked plots share the bottom plot's step numbers
                item.getAxis("bottom").setStyle(showValues=False)
            if row > 1:
                item.setXLink(self.plot_items[0])
            curve = item.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5, symbolBrush=colour,
                              symbolPen=None, antialias=False)
            marker = pg.InfiniteLine(angle=90, pen=pg.mkPen("#d0202a", width=1.5, style=Qt.PenStyle.DashLine))
            marker.hide()
            item.addItem(marker)
            self.curves[key], self.plot_items = curve, self.plot_items + [item]
            self.markers.append(marker)
        for item in self.plot_items:
            _y_axis(item, 1.0)
        self.plots.scene().sigMouseClicked.connect(self._plot_clicked)
        self._plot_timer = QTimer(self)
        self._plot_timer.setSingleShot(True)
        self._plot_timer.setInterval(PLOT_INTERVAL_MS)
        self._plot_timer.timeout.connect(self._redraw_plot)

        self.step_label = QLabel("Click a step in the plot (during or after generation) to see its candidates and attention.")
        self.step_label.setWordWrap(True)
        self.step_label.setTextFormat(Qt.TextFormat.RichText)
        self.top_table = QTableWidget(0, 2)
        self.top_table.setHorizontalHeaderLabels(["candidate", "probability"])
        self.top_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.top_table.verticalHeader().setVisible(False)
        self.top_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.top_table.setMaximumWidth(280)
        self.attention = HeatmapPlot(colormap="viridis", bar_label="attention (mean over heads)")
        self.attention.item.setLabel("left", "layer")
        self.attention.item.setLabel("bottom", "context token")
        self.attention.bar.axis.enableAutoSIPrefix(False)
        detail = QWidget()
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.step_label)
        row = QHBoxLayout()
        row.addWidget(self.top_table)
        row.addWidget(self.attention, 1)
        row.addStretch(0)  # keeps the table on the left while the attention map is hidden
        dl.addLayout(row, 1)

        upper = QSplitter(Qt.Orientation.Horizontal)
        upper.addWidget(self.text)
        upper.addWidget(self.plots)
        upper.setSizes([380, 620])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(detail)
        split.setSizes([420, 330])
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(settings)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(split, 1)
        self._update_buttons()

    def _sampling_enabled(self) -> None:
        sample = bool(self.mode.currentData())
        for w in (self.temperature, self.top_k, self.top_p, self.seed):
            w.setEnabled(sample)

    def _update_buttons(self) -> None:
        has = bool(self.steps)
        finished = has and self.steps[-1].finished
        self.generate_button.setEnabled(not self.running)
        self.stop_button.setEnabled(self.running)
        self.continue_button.setEnabled(not self.running and has and finished not in ("context",))
        for b in (self.use_button, self.copy_button, self.export_button):
            b.setEnabled(has and not self.running)

    # -- model and trace -------------------------------------------------------------------------------
    def model_changed(self, info: ModelInfo) -> None:
        self._reset()
        self.status.setText("Press Generate to continue the text above.")

    def trace_changed(self, trace: Trace) -> None:
        if self.info is not None and not self.info.is_decoder:
            self.show_message(f"{self.info.title} is an {self.info.family} model: it reads text but does not generate "
                              "it. Load a decoder such as bundled:smollm2 to generate.")
        else:
            if not self.steps and not self.running:
                self._show_text(trace.text, "")
            self.show_content()
        self.mark_ready()

    def _reset(self) -> None:
        self.steps, self.run_id, self.running, self.stop_requested, self.selected = [], None, False, False, -1
        self._arrivals = []
        for curve in self.curves.values():
            curve.setData([], [])
        for marker in self.markers:
            marker.hide()
        # whole steps (not 0..1) before any, and exactly the range _redraw_plot keeps for this run:
        # a change of range makes all six axes lay out their ticks again (30-40 ms of GUI time)
        self.plot_items[0].setXRange(-0.5, max(self.max_new.value(), 1) - 0.5, padding=0.02)
        self.top_table.setRowCount(0)
        self.attention.clear()
        self.attention.hide()  # an empty 1 x 1 map read as a solid block; shown with a step's attention
        self.attention_step = -1
        self.step_label.setText("Click a step in the plot (during or after generation) to see its candidates and attention.")
        self._update_buttons()

    # -- running -------------------------------------------------------------------------------------------
    def settings(self) -> dict:
        return dict(max_new_tokens=self.max_new.value(), do_sample=bool(self.mode.currentData()),
                    temperature=self.temperature.value(), top_k=self.top_k.value(), top_p=self.top_p.value(),
                    seed=self.seed.value(), chat=self.chat.isChecked(), stop_at_eos=self.stop_at_eos.isChecked())

    def generate(self) -> None:
        if self.trace is None or self.running:
            return
        self._reset()
        self.prompt_source = self.trace.text
        self.chat_run = self.chat.isChecked()
        self.sampled_run = bool(self.mode.currentData())
        self.target = self.max_new.value()
        self.running = True
        self.status.setText("Reading the prompt…")
        self._update_buttons()
        self.mark_busy()
        self._submit(targets.GENERATION_START, text=self.prompt_source, **self.settings())

    def _submit(self, target: str, **kwargs: Any) -> None:
        """Queue a step without superseding the ones in flight: a step waits behind the running one,
        so the engine never waits for the window to draw."""
        handle = self.host.call(target, channel=self.channel("step"), supersede=False, label="Generating",
                                on_done=self._step_done, **kwargs)
        self._jobs.add(handle.id)

    def _top_up(self) -> None:
        while len(self._jobs) < PIPELINE and len(self.steps) + len(self._jobs) < self.target:
            self._submit(targets.GENERATION_STEP, run_id=self.run_id, max_new_tokens=None)

    def stop(self) -> None:
        """Stop after the steps in flight (they are kept, so the text matches the model's state)."""
        if self.running:
            self.stop_requested = True
            self.status.setText("Stopping after this token…")

    def continue_generation(self) -> None:
        if self.run_id is None or self.running or not self.steps:
            return
        self.running, self.stop_requested = True, False
        self.target = len(self.steps) + self.max_new.value()
        self._arrivals = []
        self._update_buttons()
        self.mark_busy()
        self._submit(targets.GENERATION_STEP, run_id=self.run_id, max_new_tokens=self.target)
        self._top_up()

    def _step_done(self, outcome: JobOutcome) -> None:
        if outcome.id not in self._jobs:
            return  # from an earlier run
        self._jobs.discard(outcome.id)
        if not self.running:
            return  # a step queued behind the last one: nothing to show
        if not outcome.ok:
            if outcome.status == "failed":
                self._finish(f"<span style='color:#b00020'>{html.escape(outcome.message)}</span>"
                             + (" What was generated so far is kept." if self.steps else ""))
            else:
                self._finish("<b>Stopped. What was generated so far is kept.</b>")
            return
        step: GenerationStep = outcome.value
        if self.run_id is None:
            self.run_id = step.run_id
        if step.run_id != self.run_id or step.step != len(self.steps):
            return
        if not step.finished and not self.stop_requested:
            self._top_up()  # before drawing: keep the worker busy
        self._arrivals.append(time.perf_counter())
        self.add_step(step)
        if step.finished:
            self._finish(f"{self._progress_text()} · <b>{html.escape(step.notice)}</b>")
        elif self.stop_requested and not self._jobs:
            self._finish(f"{self._progress_text()} · <b>Stopped. What was generated so far is kept.</b>")

    def _finish(self, message: str) -> None:
        self._jobs.clear()  # whatever is still queued is not shown (the worker refuses to go past the end)
        self.running = False
        self.stop_requested = False
        self._redraw_plot()
        if self.steps and self.selected < 0:
            self.select_step(len(self.steps) - 1)  # the details of the last step, unless one was clicked
        self.status.setText(message)
        self._update_buttons()
        self.mark_ready()

    def _attention_finished(self, outcome: JobOutcome) -> None:
        step = outcome.kwargs.get("step")
        if outcome.kwargs.get("run_id") != self.run_id or step != self.selected:
            return  # another step was clicked meanwhile, or another run started
        if outcome.ok:
            self.draw_attention(step, outcome.value.matrix)
        elif outcome.status == "failed":
            self.attention.clear()
            error = f"<br><span style='color:#b00020'>{html.escape(outcome.message)}</span>"
            self.step_label.setText(self.step_label.text() + error)

    # -- drawing ---------------------------------------------------------------------------------------------
    def add_step(self, step: GenerationStep) -> None:
        if step.step == 0:
            self.prompt_text, self.prompt_pieces = step.prompt_text, step.prompt_pieces
        self.steps.append(step)
        self._show_text(self.prompt_text if self.chat_used else self.prompt_source, step.text)
        if not self._plot_timer.isActive():
            self._plot_timer.start()  # the plot follows at PLOT_INTERVAL_MS: drawing every token would slow the worker
        if self.running:
            self.status.setText(self._progress_text() + " · generating…")

    def _redraw_plot(self) -> None:
        """Update the curves.  The axes keep their ranges (the x axis spans the whole run, the y
        axes grow in steps), so a redraw repaints points, not every axis and tick label."""
        self._plot_timer.stop()
        x = np.arange(len(self.steps))
        series = {"prob": [s.prob for s in self.steps], "entropy_bits": [s.entropy_bits for s in self.steps],
                  "latency_ms": [s.latency_s * 1000 for s in self.steps]}
        right = max(self.target, len(self.steps), 1) - 0.5
        for (key, values), item in zip(series.items(), self.plot_items):
            data = np.asarray(values, dtype=float)
            self.curves[key].setData(x, data)
            view = item.getViewBox()
            (x0, x1), (_y0, y1) = view.viewRange()
            if abs(x1 - right) > 0.5 or x0 > -0.5:
                item.setXRange(-0.5, right, padding=0.02)
            if key != "prob" and data.size and np.isfinite(data).any() and float(np.nanmax(data)) > y1:
                _y_axis(item, _nice_ceiling(float(np.nanmax(data)) * 1.15))

    @property
    def chat_used(self) -> bool:
        return self.chat_run and bool(self.prompt_text)

    def _progress_text(self) -> str:
        n = len(self.steps)
        rate = ""
        if len(self._arrivals) > 1:
            span = self._arrivals[-1] - self._arrivals[0]
            rate = f" · {(len(self._arrivals) - 1) / span:.1f} tokens/s" if span > 0 else ""
        prompt = self.steps[0].prompt_tokens if self.steps else 0
        return f"{n:,} token{'s' if n != 1 else ''} generated after a {prompt:,}-token prompt{rate}"

    def _show_text(self, prompt: str, generated: str) -> None:
        """Append what is new; rewrite only when the decoded text changed behind its end (a multi-byte character completed)."""
        if prompt == self._shown[0] and generated.startswith(self._shown[1]) and self._shown[0]:
            cursor = self.text.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            cursor.insertText(generated[len(self._shown[1]):], self._generated_format)
        else:
            esc = lambda s: html.escape(s).replace("\n", "<br>")  # noqa: E731
            self.text.setHtml(f"<div style='font-size:12pt'><span style='color:#888'>{esc(prompt)}</span>"
                              f"<span style='color:#000; background:#eaf2fb'>{esc(generated)}</span></div>")
            cursor = self.text.textCursor()
            cursor.movePosition(QTextCursor.MoveOperation.End)
            self._generated_format = cursor.charFormat()
            self._generated_format.setForeground(QColor("#000000"))
            self._generated_format.setBackground(QColor("#eaf2fb"))
        self._shown = (prompt, generated)
        bar = self.text.verticalScrollBar()
        bar.setValue(bar.maximum())

    def select_step(self, index: int) -> None:
        if not 0 <= index < len(self.steps):
            return
        self.selected = index
        step = self.steps[index]
        for marker in self.markers:
            marker.setValue(index)
            marker.show()
        note = f" (includes reading the {step.prompt_tokens:,}-token prompt)" if index == 0 else ""
        self.step_label.setText(
            f"Step {index}: <b>{html.escape(step.piece)}</b> · p = {step.prob:.3f}"
            + (f" (under the sampling settings: {step.sample_prob:.3f})" if self.sampled_run else " (greedy)")
            + f" · entropy {step.entropy_bits:.2f} bits · {step.latency_s * 1000:.0f} ms{note}"
            f" · the model saw {step.context_len:,} tokens")
        self.top_table.setRowCount(len(step.top_ids))
        for r, (piece, p, tid) in enumerate(zip(step.top_pieces, step.top_probs, step.top_ids)):
            cell = QTableWidgetItem(piece)
            cell.setToolTip(f"id {int(tid)}")
            if int(tid) == step.token_id:
                cell.setBackground(pg.mkColor("#ffe9a8"))
            self.top_table.setItem(r, 0, cell)
            self.top_table.setItem(r, 1, QTableWidgetItem(f"{float(p):.4f}"))
        if step.attention is not None:  # eager models deliver it with the step
            self.draw_attention(index, step.attention)
        elif self.run_id is not None:
            self.host.call(targets.GENERATION_ATTENTION, label="Attention of a step", on_done=self._attention_finished,
                           run_id=self.run_id, step=index)

    def draw_attention(self, index: int, matrix: np.ndarray) -> None:
        """Layers x context tokens: where the position that predicted step `index` looked."""
        context = (list(self.prompt_pieces) + [s.piece for s in self.steps[:index]])[: matrix.shape[1]]
        rows = [str(i) for i in range(matrix.shape[0])]
        self.attention.set_matrix(matrix, rows, context, levels=(0.0, float(matrix.max()) or 1.0))
        self.attention.show()
        self.attention_step = index

    def _plot_clicked(self, event) -> None:
        if not self.steps or event.button() != Qt.MouseButton.LeftButton:
            return
        for item in self.plot_items:
            if item.sceneBoundingRect().contains(event.scenePos()):
                x = item.getViewBox().mapSceneToView(event.scenePos()).x()
                self.select_step(int(np.clip(round(x), 0, len(self.steps) - 1)))
                return

    # -- output -------------------------------------------------------------------------------------------
    def full_text(self) -> str:
        """The prompt as given (or as templated, in chat mode) followed by the generated text."""
        generated = self.steps[-1].text if self.steps else ""
        return (self.prompt_text if self.chat_used else self.prompt_source) + generated

    def why_request(self) -> ExplainRequest | None:
        """The selected step (or the last): its token, explained at the end of everything before it."""
        if not self.steps:
            return None
        index = self.selected if 0 <= self.selected < len(self.steps) else len(self.steps) - 1
        before = self.steps[index - 1].text if index > 0 else ""
        prompt = self.prompt_text if self.chat_used else self.prompt_source
        return ExplainRequest(token=int(self.steps[index].token_id), text=prompt + before)

    def use_as_input(self) -> None:
        window = self.window()
        if not self.steps or not hasattr(window, "set_text"):
            return
        window.set_text(self.full_text())
        if hasattr(window, "run_text"):
            window.run_text()

    def copy_text(self) -> None:
        QGuiApplication.clipboard().setText(self.full_text())

    def export_image(self, path: str) -> None:
        export_plot(self.plots.ci, path)

    def _export_dialog(self) -> None:
        path = ask_image_path(self, "generation")
        if path:
            self.export_image(path)
