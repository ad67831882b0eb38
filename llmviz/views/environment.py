"""Environment dock: versions, where the model's weights are, live memory, and the run log.

"Machine" tab: what the notebook's first cell printed (torch, CUDA, device name, GPU
memory) plus Python, transformers, accelerate, bitsandbytes and Qt versions (Qt's from
this side: the core never imports Qt); the loaded model's placement counted from its
tensors and accelerate's device map; and a plot, updated once a second, of the process's
resident memory and, with CUDA, the allocator's allocated/reserved bytes, with shaded
spans where loads (orange) and runs (blue) happened.

Sampling: the window's and the engine's RSS are read on the GUI thread by the 1 s timer
(psutil reads /proc: microseconds).
CUDA counters come from a `BackgroundSampler` thread (see llmviz.core.environment for why
a thread rather than a worker job), started only once the environment snapshot says CUDA
is available, so the GUI never imports torch.

"Run log" tab: every load and run with its phases laid end to end: tokenize, forward and
capture from `Trace.timings` (load time from `ModelInfo.load_s`), the rest of the worker
job, the transfer to the window (`JobOutcome.transfer_s`) and drawing (views' busy->ready, from `draw_times`).
"""

from __future__ import annotations

import html
import time
from collections import OrderedDict, deque
from importlib import metadata
from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.environment import BackgroundSampler, CudaMemory, EnvironmentSnapshot, RunRecord, cuda_memory, process_rss
from ..core.formatting import bytes_text
from ..core.specs import ModelInfo
from ..widgets.plot_export import export_plot, save_with_dialog, write_csv
from ..widgets.plot_style import TITLE_PT, style_plot
from ..workers.jobs import JobHandle, JobOutcome
from ..workers.model_host import LOAD, TRACE
from .base import DockView, DrawTime, draw_times

if TYPE_CHECKING:
    from ..widgets.frame_table import FrameTable

GB = 2**30  # the memory plots are in GiB
RSS_TITLE = "Memory (RSS): engine (black), window (grey)"
RSS_TITLE_SHORT = "RSS: engine black, window grey"  # fits the plot's width in presentation's fonts
WINDOW_S = 300.0  # the memory plot follows the last five minutes
KEEP_SAMPLES = 3600
KEEP_RECORDS = 200
CHART_ROWS = 14
SPAN_COLORS = {"load": (230, 159, 0, 70), "run": (0, 114, 178, 55), "other job": (120, 120, 120, 35)}
PHASE_COLORS = {"load": "#E69F00", "tokenize": "#56B4E9", "forward": "#0072B2", "capture": "#009E73",
                "other worker": "#B0B0B0", "transfer": "#CC79A7", "draw": "#D55E00"}
KIND = {LOAD: "load", TRACE: "run"}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def gui_versions() -> list[tuple[str, str]]:
    """Versions known on the GUI side without importing torch (Qt's come from Qt itself)."""
    from PySide6 import __version__ as pyside
    from PySide6.QtCore import qVersion

    return [("Qt", qVersion()), ("PySide6", pyside), ("pyqtgraph", pg.__version__)]


def _table(rows: int, headers: list[str]) -> QTableWidget:
    table = QTableWidget(rows, len(headers))
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setAlternatingRowColors(True)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    table.setStyleSheet("font-size: 11pt;")
    return table


class EnvironmentView(DockView):
    NAME = "environment"
    TITLE = "Environment"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    NEEDS_TRACE = False
    STATE = ("tabs", "include_loads")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.t0 = time.perf_counter()
        self.snapshot_value: EnvironmentSnapshot | None = None
        self.rss: deque[tuple[float, int]] = deque(maxlen=KEEP_SAMPLES)  # the engine's
        self.gui_rss: deque[tuple[float, int]] = deque(maxlen=KEEP_SAMPLES)
        self.gpu: deque[tuple[float, tuple[CudaMemory, ...]]] = deque(maxlen=KEEP_SAMPLES)
        self.sampler: BackgroundSampler | None = None
        self.records: OrderedDict[int, RunRecord] = OrderedDict()
        self.spans: list[dict] = []
        self.run_table: FrameTable | None = None
        self._build()
        self._show_versions()
        host.sig_started.connect(self._on_started)
        host.sig_finished.connect(self._on_finished)
        host.sig_busy.connect(self._on_busy)
        draw_times.sig_drawn.connect(self._on_drawn)
        self._refresh_log = QTimer(self)
        self._refresh_log.setSingleShot(True)
        self._refresh_log.setInterval(150)  # coalesce the burst of draw times after a run
        self._refresh_log.timeout.connect(self.draw_run_log)
        self.timer = QTimer(self)
        self.timer.setInterval(1000)
        self.timer.timeout.connect(self.sample)
        self.timer.start()
        self.sample()
        self.show_content()

    # -- construction ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.tabs = QTabWidget()
        self.tabs.addTab(self._build_machine(), "Machine")
        self.tabs.addTab(self._build_run_log(), "Run log")
        self.tabs.currentChanged.connect(lambda index: self.draw_memory() if index == 0 else None)
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.tabs)

    def _build_machine(self) -> QWidget:
        self.versions = _table(0, ["Component", "Version"])
        self.placement = QLabel("No model loaded yet.")
        self.placement.setWordWrap(True)
        self.placement.setTextFormat(Qt.TextFormat.RichText)
        self.placement.setStyleSheet("font-size: 12pt; padding: 2px;")
        self.device_map = _table(0, ["Module", "Device"])
        self.device_map.hide()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 4, 0)
        left_layout.addWidget(self._heading("Versions"))
        left_layout.addWidget(self.versions, 3)
        left_layout.addWidget(self._heading("Loaded model"))
        left_layout.addWidget(self.placement)
        left_layout.addWidget(self.device_map, 2)

        self.rss_plot = pg.PlotWidget()
        self.rss_plot.setMenuEnabled(False)
        style_plot(self.rss_plot.getPlotItem(), RSS_TITLE, left="GiB", bottom="seconds since start")
        self.rss_curve = self.rss_plot.plot(pen=pg.mkPen("#222222", width=2.5))
        self.gui_rss_curve = self.rss_plot.plot(pen=pg.mkPen("#999999", width=2))
        self.gpu_plot = pg.PlotWidget()
        self.gpu_plot.setMenuEnabled(False)
        style_plot(self.gpu_plot.getPlotItem(), "GPU memory (PyTorch allocator)", left="GiB", bottom="seconds since start")
        self.gpu_plot.getPlotItem().addLegend(offset=(8, 8), labelTextSize="10pt")
        for plot in (self.rss_plot, self.gpu_plot):
            # The data are already in GiB: an SI prefix on top would read "GiB (x0.001)".
            plot.getPlotItem().getAxis("left").enableAutoSIPrefix(False)
        self.gpu_curves: dict[tuple[int, str], pg.PlotDataItem] = {}
        self.gpu_message = QLabel("GPU memory: waiting for the first model load to ask torch about CUDA.")
        self.gpu_message.setObjectName("gpuMessage")
        self.gpu_message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.gpu_message.setWordWrap(True)
        self.gpu_message.setStyleSheet("QLabel#gpuMessage { font-size: 13pt; color: #444; border: 1px solid #CCC; "
                                       "background: #FAFAFA; padding: 12px; }")
        self.gpu_stack = QStackedWidget()
        self.gpu_stack.addWidget(self.gpu_plot)
        self.gpu_stack.addWidget(self.gpu_message)
        self.gpu_stack.setCurrentWidget(self.gpu_message)
        self.memory_now = QLabel()
        self.memory_now.setStyleSheet("font-size: 12pt;")
        self.memory_now.setTextFormat(Qt.TextFormat.RichText)
        self.memory_now.setWordWrap(True)
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(4, 0, 0, 0)
        right_layout.addWidget(self.memory_now)
        right_layout.addWidget(self.rss_plot, 1)
        right_layout.addWidget(self.gpu_stack, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([440, 700])
        return splitter

    def _build_run_log(self) -> QWidget:
        self.include_loads = QCheckBox("include loads")
        self.include_loads.setChecked(True)
        self.include_loads.toggled.connect(self.draw_run_log)
        export_csv = QPushButton("Export CSV…")
        export_csv.clicked.connect(lambda: self._ask_path("Export the run log", "runlog.csv", "CSV (*.csv)",
                                                          self.export_run_log))
        export_image = QPushButton("Export image…")
        export_image.clicked.connect(lambda: self._ask_path("Export the run-log chart", "runlog.png",
                                                            "PNG image (*.png);;SVG image (*.svg)", self.export_image))
        self.run_summary = QLabel("No loads or runs yet.")
        self.run_summary.setStyleSheet("font-size: 12pt;")
        bar = QHBoxLayout()
        bar.addWidget(self.run_summary, 1)
        bar.addWidget(self.include_loads)
        bar.addWidget(export_csv)
        bar.addWidget(export_image)
        self.gantt = pg.PlotWidget()
        self.gantt.setMenuEnabled(False)
        self.gantt_item = self.gantt.getPlotItem()
        style_plot(self.gantt_item, "Where the time went (phases end to end)", bottom="milliseconds from the start of the job")
        self.gantt_legend = self.gantt_item.addLegend(offset=(-8, 8), labelTextSize="10pt", colCount=4,
                                                      brush=pg.mkBrush(255, 255, 255, 220))
        self.bars: dict[str, pg.BarGraphItem] = {}
        for phase, color in PHASE_COLORS.items():
            self.bars[phase] = pg.BarGraphItem(x0=[], y=[], height=0.62, width=[], brush=color,
                                               pen=pg.mkPen("#FFFFFF", width=0.5))
            self.gantt_item.addItem(self.bars[phase])
            self.gantt_legend.addItem(self.bars[phase], phase)
        self.totals = [pg.TextItem("", color="#222222", anchor=(0, 0.5)) for _ in range(CHART_ROWS)]
        for total in self.totals:
            total.setVisible(False)
            self.gantt_item.addItem(total)
        self.log_page = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(bar)
        top_layout.addWidget(self.gantt, 1)
        self.log_page.addWidget(top)
        return self.log_page

    @staticmethod
    def _heading(text: str) -> QLabel:
        label = QLabel(text)
        label.setStyleSheet("font-size: 13pt; font-weight: bold; padding-top: 4px;")
        return label

    # -- versions and placement ---------------------------------------------------------------------------------
    def set_presentation(self, active: bool) -> None:
        """Presenting: the memory plot's shorter title (the long one runs past the plot in
        presentation's fonts)."""
        super().set_presentation(active)
        self.rss_plot.getPlotItem().setTitle(RSS_TITLE_SHORT if active else RSS_TITLE, size=f"{TITLE_PT}pt", color="#111")

    def model_changed(self, info: ModelInfo) -> None:
        self.placement.setText(f"<b>{html.escape(info.title)}</b>: reading where its weights are…")
        self.host.call(targets.ENVIRONMENT_SNAPSHOT, label="Reading the environment", on_done=self._snapshot_done)

    def _snapshot_done(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            self.snapshot_value = outcome.value
            self._show_versions()
            self._show_placement()
            self._show_gpu_state()
        elif outcome.status == "failed":
            self.placement.setText(f"Could not read the environment: {html.escape(outcome.message)}")
        if self.info is not None and outcome.status != "cancelled":
            self.mark_ready()

    def version_rows(self) -> list[tuple[str, str]]:
        """Torch-side rows from the worker's snapshot (when there is one) and GUI-side rows."""
        report = dict(self.snapshot_value.versions) if self.snapshot_value else {}
        pending = "read when the first model loads"
        rows = [("Python", report.get("Python", "")), ("torch", report.get("torch", pending)),
                ("CUDA available", report.get("CUDA available", pending))]
        if self.snapshot_value is not None:
            for device in self.snapshot_value.devices:
                rows.append((f"CUDA device {device.index}", device.name))
                rows.append((f"GPU memory (device {device.index})", f"{bytes_text(device.total_bytes)} total, "
                                                                     f"compute capability {device.capability}"))
            if self.snapshot_value.cuda_available:
                rows.append(("CUDA (torch build)", report.get("CUDA (torch build)", "")))
        rows += [("transformers", report.get("transformers", _version("transformers"))),
                 ("accelerate", report.get("accelerate", _version("accelerate"))),
                 ("bitsandbytes", report.get("bitsandbytes", _version("bitsandbytes")))]
        rows += gui_versions()
        rows += [("llmviz", report.get("llmviz", "")), ("Platform", report.get("Platform", "")),
                 ("Executable", report.get("Executable", ""))]
        return [(k, v) for k, v in rows if v]

    def _show_versions(self) -> None:
        rows = self.version_rows()
        self.versions.setRowCount(len(rows))
        for i, (key, value) in enumerate(rows):
            self.versions.setItem(i, 0, QTableWidgetItem(key))
            item = QTableWidgetItem(value)
            item.setToolTip(value)
            self.versions.setItem(i, 1, item)

    def _show_placement(self) -> None:
        placement = self.snapshot_value.placement if self.snapshot_value else None
        if placement is None:
            self.placement.setText("No model loaded.")
            return
        lines = [f"<b>{html.escape(placement.title)}</b> runs on <b>{html.escape(placement.device)}</b>"]
        for device, params, nbytes, dtypes in placement.by_device:
            lines.append(f"{html.escape(device)}: {params:,} parameters, {nbytes / 2**20:,.1f} MiB of weights and "
                         f"buffers ({html.escape(dtypes)})")
        if placement.device_map:
            lines.append(f"accelerate device map: {len(placement.device_map)} entries (below)")
        else:
            lines.append("No accelerate device map: the whole model was loaded onto one device.")
        self.placement.setText("<br>".join(lines))
        mapping = sorted((placement.device_map or {}).items())
        self.device_map.setVisible(bool(mapping))
        self.device_map.setRowCount(len(mapping))
        for i, (module, device) in enumerate(mapping):
            self.device_map.setItem(i, 0, QTableWidgetItem(module or "(whole model)"))
            self.device_map.setItem(i, 1, QTableWidgetItem(device))

    def _show_gpu_state(self) -> None:
        snap = self.snapshot_value
        if snap is None:
            return
        if not snap.cuda_available:
            torch_version = dict(snap.versions).get("torch", "")
            self.gpu_message.setText(f"No CUDA device: torch {torch_version} reports CUDA unavailable, "
                                     "so there is no GPU memory to plot.")
            self.gpu_stack.setCurrentWidget(self.gpu_message)
            return
        self.gpu_stack.setCurrentWidget(self.gpu_plot)
        for device in snap.devices:
            self.gpu_plot.getPlotItem().addItem(pg.InfiniteLine(
                pos=device.total_bytes / GB, angle=0, pen=pg.mkPen("#999999", style=Qt.PenStyle.DashLine),
                label=f"device {device.index} total {bytes_text(device.total_bytes, 0)}",
                labelOpts={"position": 0.15, "color": "#666666"}))
        if self.sampler is None:
            self.sampler = BackgroundSampler(cuda_memory, interval_s=1.0, keep=KEEP_SAMPLES, name="llmviz-cuda-sampler")
            self.sampler.start()

    # -- live memory ------------------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the view was created (the plots' time axis)."""
        return time.perf_counter() - self.t0

    def sample(self) -> None:
        """Timer tick: read RSS here, collect the CUDA sampler's readings, update the plots."""
        self.rss.append((time.perf_counter(), self.host.engine_rss()))
        self.gui_rss.append((time.perf_counter(), process_rss()))
        if self.sampler is not None:
            self.gpu.extend(self.sampler.take())
            if self.sampler.error and not self.sampler.running:
                self.gpu_message.setText(f"GPU memory sampling stopped: {self.sampler.error}")
                self.gpu_stack.setCurrentWidget(self.gpu_message)
        if self.isVisible() and self.tabs.currentIndex() == 0:  # plots nobody sees are not redrawn
            self.draw_memory()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.draw_memory()

    def draw_memory(self) -> None:
        now = self.now()
        t = [s - self.t0 for s, _ in self.rss]
        gb = [v / GB for _, v in self.rss]
        self.rss_curve.setData(t, gb)
        self.gui_rss_curve.setData([s - self.t0 for s, _ in self.gui_rss], [v / GB for _, v in self.gui_rss])
        peak = max(gb) if gb else 0.0
        text = (f"engine RSS <b>{bytes_text(self.rss[-1][1], 2)}</b> (peak {bytes_text(peak * GB, 2)}) · window "
                f"{bytes_text(self.gui_rss[-1][1], 2)}" if gb and self.gui_rss else "")
        if self.gpu:
            last = self.gpu[-1][1]
            for mem in last:
                text += (f" · GPU {mem.index}: allocated <b>{bytes_text(mem.allocated, 2)}</b>, "
                         f"reserved {bytes_text(mem.reserved, 2)}")
            self._draw_gpu()
        legend = " · ".join(f"<span style='background: rgba{SPAN_COLORS[k][:3] + (0.45,)};'>&nbsp;{k}&nbsp;</span>"
                            for k in SPAN_COLORS)
        self.memory_now.setText(f"{text} &nbsp;&nbsp; shaded: {legend}")
        for span in self.spans:
            if span["end"] is None:
                for region in span["regions"]:
                    region.setRegion((span["start"] - self.t0, now))
        lo = max(0.0, now - WINDOW_S)
        for plot in (self.rss_plot, self.gpu_plot):
            plot.setXRange(lo, max(now, 10.0), padding=0.02)

    def _draw_gpu(self) -> None:
        times = [s - self.t0 for s, _ in self.gpu]
        devices = {m.index for _, sample in self.gpu for m in sample}
        for index in sorted(devices):
            for kind, style in (("allocated", Qt.PenStyle.SolidLine), ("reserved", Qt.PenStyle.DashLine)):
                key = (index, kind)
                if key not in self.gpu_curves:
                    pen = pg.mkPen(("#0072B2", "#D55E00", "#009E73", "#CC79A7")[index % 4], width=2.5, style=style)
                    self.gpu_curves[key] = self.gpu_plot.plot(pen=pen, name=f"device {index} {kind}")
                values = [next((getattr(m, kind) / GB for m in sample if m.index == index), 0.0) for _, sample in self.gpu]
                self.gpu_curves[key].setData(times, values)

    # -- loads and runs ----------------------------------------------------------------------------------------
    def _on_started(self, handle: JobHandle) -> None:
        now = time.perf_counter()
        job_id, channel, label = handle.id, handle.channel, handle.label
        self._close_running(now)  # one engine, one job at a time: a job starting means every earlier one has ended
        if channel not in KIND:
            self._add_span(job_id, "other job", now)
            return
        kind = KIND[channel]
        record = RunRecord(job_id, kind, label, now, model=self.info.title if self.info else "")
        self.records[job_id] = record
        while len(self.records) > KEEP_RECORDS:
            self.records.popitem(last=False)
        self._add_span(job_id, kind, now)

    def _on_finished(self, outcome: JobOutcome) -> None:
        received = time.perf_counter()
        self._end_span(outcome.id, received)
        record = self.records.get(outcome.id)
        if record is None or outcome.channel not in KIND:
            return
        value = outcome.value if outcome.ok else None
        timings = getattr(value, "timings", None) if record.kind == "run" else None
        load_s = getattr(value, "load_s", None) if record.kind == "load" else None
        record.finish(outcome.status, outcome.elapsed_s, outcome.transfer_s, received, timings, load_s)
        if record.kind == "run" and value is not None:
            record.trace_id, record.tokens = value.id, value.num_tokens
            record.model = value.model_title
        if record.kind == "load" and value is not None:
            record.model = value.title
            record.trace_id = None
        self._refresh_log.start()

    def _on_busy(self, busy: bool) -> None:
        if not busy:
            self._close_running(time.perf_counter())

    def _close_running(self, when: float) -> None:
        """Close what the worker has left: records still running were superseded (their results were dropped)."""
        for record in self.records.values():
            if record.status == "running":
                record.status, record.finished_at = "superseded", when
        for span in self.spans:
            if span["end"] is None:
                self._end_span(span["id"], when)

    def _on_drawn(self, drawn: DrawTime) -> None:
        """Attach a view's draw time to the run (by trace id) or the load (by model) it drew."""
        for record in reversed(self.records.values()):
            if record.finished_at is None or drawn.ready_at < record.finished_at - 1e-3:
                continue
            if drawn.trace_id is not None and record.kind == "run" and record.trace_id == drawn.trace_id:
                break
            if drawn.trace_id is None and record.kind == "load" and record.status == "ok":
                break
        else:
            return
        if record.add_draw(drawn.view, max(drawn.busy_at, record.finished_at), drawn.ready_at):
            self._refresh_log.start()

    def _add_span(self, job_id: int, kind: str, start: float) -> None:
        regions = []
        for plot in (self.rss_plot, self.gpu_plot):
            region = pg.LinearRegionItem(values=(start - self.t0, start - self.t0), movable=False,
                                         brush=pg.mkBrush(*SPAN_COLORS[kind]), pen=pg.mkPen(None))
            region.setZValue(-10)
            plot.addItem(region)
            regions.append(region)
        self.spans.append({"id": job_id, "kind": kind, "start": start, "end": None, "regions": regions})
        while len(self.spans) > KEEP_RECORDS:
            old = self.spans.pop(0)
            for plot, region in zip((self.rss_plot, self.gpu_plot), old["regions"]):
                plot.removeItem(region)

    def _end_span(self, job_id: int, end: float) -> None:
        for span in self.spans:
            if span["id"] == job_id and span["end"] is None:
                span["end"] = end
                for region in span["regions"]:
                    region.setRegion((span["start"] - self.t0, end - self.t0))

    # -- the run log ------------------------------------------------------------------------------------------
    def logged(self) -> list[RunRecord]:
        """Finished loads and runs, oldest first (filtered by 'include loads')."""
        return [r for r in self.records.values() if r.status != "running"
                and (self.include_loads.isChecked() or r.kind != "load")]

    def draw_run_log(self) -> None:
        records = self.logged()
        self._draw_gantt(records[-CHART_ROWS:])
        self._fill_run_table(records)
        runs = [r for r in records if r.kind == "run" and r.status == "ok"]
        if runs:
            last = runs[-1]
            parts = " · ".join(f"{name} {seconds * 1000:,.0f} ms" for name, seconds in last.segments())
            slowest = max(last.draws.items(), key=lambda kv: kv[1])[0] if last.draws else ""
            self.run_summary.setText(f"Last run ({last.tokens} tokens): {parts}"
                                     + (f" (slowest view: {slowest})" if slowest else ""))

    def _draw_gantt(self, records: list[RunRecord]) -> None:
        """Update the persistent bars and totals (no items are added or removed after start-up)."""
        by_phase: dict[str, tuple[list, list, list]] = {phase: ([], [], []) for phase in PHASE_COLORS}
        ticks = []
        for row, record in enumerate(reversed(records)):  # newest at the top
            y = len(records) - 1 - row
            x = 0.0
            for phase, seconds in record.segments():
                x0s, ys, widths = by_phase[phase]
                x0s.append(x)
                ys.append(y)
                widths.append(seconds * 1000)
                x += seconds * 1000
            status = "" if record.status == "ok" else f" ({record.status})"
            tokens = f" · {record.tokens} tok" if record.tokens is not None else ""
            ticks.append((y, f"#{record.job_id} {record.kind}{tokens}{status}"))
            total = self.totals[row]
            total.setText(f"{x:,.0f} ms")
            total.setPos(x, y)
            if not total.isVisible():
                total.setVisible(True)
        for total in self.totals[len(records):]:
            if total.isVisible():
                total.setVisible(False)
        for phase, (x0s, ys, widths) in by_phase.items():
            self.bars[phase].setOpts(x0=x0s, y=ys, width=widths, height=0.62)
        self.gantt_item.getAxis("left").setTicks([ticks])
        if records:
            widest = max(r.total_s for r in records) * 1000
            self.gantt_item.setXRange(0, max(widest * 1.18, 1.0), padding=0)
            self.gantt_item.setYRange(-0.6, len(records) - 0.4 + 1.2, padding=0)

    def run_log_frame(self):  # -> pandas.DataFrame
        from ..core.environment import run_log_frame

        return run_log_frame(self.logged())

    def _fill_run_table(self, records: list[RunRecord]) -> None:
        from ..widgets.frame_table import DataFrameModel, FrameTable

        frame = self.run_log_frame()
        if self.run_table is None:
            def ms(value: float) -> str:
                return "" if value != value else f"{value:,.1f}"

            columns = list(frame.columns)
            model = DataFrameModel(columns, formatters={c: ms for c in columns if c.endswith("_ms")})
            self.run_table = FrameTable(model)
            self.run_table.setStyleSheet("font-size: 11pt;")
            self.log_page.addWidget(self.run_table)
            self.log_page.setSizes([420, 220])
        first = self.run_table.frame_model.rowCount() == 0
        self.run_table.frame_model.set_frame(frame.iloc[::-1])
        if first:
            self.run_table.fit_columns(260)  # once: measuring every cell is slow

    # -- export and closing ----------------------------------------------------------------------------------
    def _ask_path(self, title: str, default: str, filters: str, save) -> None:
        save_with_dialog(self, title, default, filters, save, self.run_summary.setText)

    def export_run_log(self, path: str) -> None:
        write_csv(self.run_log_frame(), path, index=False)

    def export_image(self, path: str) -> None:
        """The run-log chart, PNG or SVG by extension."""
        export_plot(self.gantt_item, path)

    def export_memory_image(self, path: str) -> None:
        export_plot(self.rss_plot.getPlotItem(), path)

    def on_close(self) -> None:
        self.timer.stop()
        if self.sampler is not None:
            self.sampler.stop()
