"""Timeline dock: language models by release date (x) against parameter count (log y).

Coloured by architecture family; hollow diamonds are estimates (never published sizes);
models whose size was never disclosed sit in a separate strip at the top instead of at a
made-up height.  Mixture-of-experts models show their active parameters per token as a
small ring joined to the total.  The loaded model is a large star.  The data is
`resources/timeline.csv` (see llmviz.core.timeline); a damaged file shows what is wrong,
by line, above the chart, and everything else still loads.

pandas is imported on first use (the first time the dock is shown or a model loads), not
at start-up, so the window opens without paying for it.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTabWidget,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from ..core.specs import ModelInfo
from ..widgets.flow_layout import FlowLayout, flow_row
from ..widgets.plot_export import export_plot, save_with_dialog
from ..widgets.plot_style import CountAxis, human_count, style_plot
from .base import DockView

if TYPE_CHECKING:
    import pandas as pd

    from ..core.timeline import LoadedPoint, Timeline
    from ..widgets.frame_table import FrameTable

FAMILY_COLORS = {
    "decoder-only": "#0072B2",
    "mixture of experts": "#CC79A7",
    "encoder-only": "#009E73",
    "encoder-decoder": "#E69F00",
    "word embeddings": "#56B4E9",
    "undisclosed": "#555555",
}
EXTRA_COLORS = ("#8C564B", "#17BECF", "#BCBD22", "#7F7F7F")
LOADED_COLOR = "#D55E00"
LABEL_PT = 10
HOVER_PX = 14


def _seconds(dates: Any) -> np.ndarray:
    """Timestamps -> POSIX seconds (UTC) for pyqtgraph's DateAxisItem."""
    import pandas as pd

    return np.asarray((pd.to_datetime(dates) - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1), dtype=float)


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=False)


def _date_text(when: Any, precision: str) -> str:
    return when.strftime("%Y-%m-%d" if precision == "day" else "%Y-%m")


class TimelineView(DockView):
    NAME = "timeline"
    TITLE = "Timeline"
    AREA = Qt.DockWidgetArea.RightDockWidgetArea
    NEEDS_TRACE = False
    STATE = ("show_unknown", "tabs")

    def __init__(self, host, parent=None) -> None:
        super().__init__(host, parent)
        self.timeline: Timeline | None = None
        self.loaded: LoadedPoint | None = None
        self.data_path: str | None = None  # None: resources/timeline.csv
        self.shown_rows: np.ndarray = np.zeros(0, int)  # frame rows currently drawn
        self.table: FrameTable | None = None
        self.family_boxes: dict[str, QCheckBox] = {}
        self.labels: list[tuple[pg.TextItem, float, float, str]] = []  # item, x, y, text
        self.selected_row: int | None = None
        self.xs = self.ys = np.zeros(0)
        self.loaded_xy = (0.0, 0.0)
        self.strip_y, self.y_min, self.top_decade = 13.0, 6.0, 12
        self._build()

    # -- construction ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.banner = QLabel()
        self.banner.setObjectName("timelineProblems")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("QLabel#timelineProblems { background: #FFF4CE; color: #5C4400; padding: 6px; "
                                  "border: 1px solid #E0C36A; font-size: 11pt; }")
        self.banner.hide()
        self.show_unknown = QCheckBox("size not disclosed")
        self.show_unknown.setChecked(True)
        self.show_unknown.toggled.connect(self.redraw)
        reset = QPushButton("Reset zoom")
        reset.clicked.connect(self.reset_zoom)
        export_csv = QPushButton("Export CSV…")
        export_csv.clicked.connect(lambda: self._ask_path("Export the timeline table", "timeline.csv",
                                                          "CSV (*.csv)", self.export_csv))
        export_image = QPushButton("Export image…")
        export_image.clicked.connect(lambda: self._ask_path("Export the timeline chart", "timeline.png",
                                                            "PNG image (*.png);;SVG image (*.svg)", self.export_image))
        # One line on the desktop; in presentation's large fonts the boxes wrap onto a second line
        # instead of pushing the view wider than the window.
        bar = flow_row(QLabel("Show:"), self.show_unknown)
        self.filters: FlowLayout = bar.layout()
        buttons = QWidget()  # beside the tabs, so the filter row alone sets the dock's minimum width
        buttons_layout = QHBoxLayout(buttons)
        buttons_layout.setContentsMargins(0, 0, 0, 2)
        for button in (reset, export_csv, export_image):
            buttons_layout.addWidget(button)

        self.axis_y = CountAxis("left")
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem(orientation="bottom", utcOffset=0),
                                             "left": self.axis_y})
        self.plot.setMenuEnabled(False)
        self.item = self.plot.getPlotItem()
        style_plot(self.item, "Language models by release date", left="parameters (log scale)", bottom="release date")
        self.legend = self.item.addLegend(offset=(12, 12), labelTextSize="10pt", brush=pg.mkBrush(255, 255, 255, 225),
                                          pen=pg.mkPen("#BBBBBB"))
        self.legend.setColumnCount(2)  # one tall column covered the 2013-2017 points
        self.readout = QLabel("Hover over a point for its details; click to select it in the table.")
        self.readout.setWordWrap(True)
        self.readout.setOpenExternalLinks(True)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.readout.setStyleSheet("font-size: 12pt; padding: 4px;")
        self.readout.setMinimumHeight(52)
        chart = QWidget()
        chart_layout = QVBoxLayout(chart)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.addWidget(self.plot, 1)
        chart_layout.addWidget(self.readout)
        self.tabs = QTabWidget()
        self.tabs.addTab(chart, "Chart")
        self.table_page = QWidget()
        QVBoxLayout(self.table_page).setContentsMargins(0, 0, 0, 0)
        self.tabs.addTab(self.table_page, "Table")
        self.tabs.setCornerWidget(buttons, Qt.Corner.TopRightCorner)

        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.banner)
        layout.addWidget(bar)
        layout.addWidget(self.tabs, 1)
        self.plot.scene().sigMouseMoved.connect(self._on_hover)
        self.plot.scene().sigMouseClicked.connect(self._on_click)
        self.item.getViewBox().sigRangeChanged.connect(lambda *_: self._layout_labels())
        self.item.getViewBox().sigResized.connect(lambda *_: self._layout_labels())

    # -- data -----------------------------------------------------------------------------------
    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.timeline is None:
            self.load_data(self.data_path)

    def load_data(self, path: str | None = None) -> None:
        """(Re)read the timeline CSV and redraw; problems go to the banner, unreadable files to the message."""
        from ..core.timeline import load_timeline, place_loaded_model

        self.data_path = path
        self.timeline = load_timeline(path)
        self.loaded = place_loaded_model(self.timeline, self.info) if self.info else None
        self._show_problems()
        if not len(self.timeline):
            self.show_message(self.timeline.problem_summary(limit=5) or "The timeline data has no rows.")
            return
        self._build_filters()
        self._build_table()
        self._make_items()
        self.show_content()
        self.redraw()
        self.reset_zoom()

    def _show_problems(self) -> None:
        problems = self.timeline.problems if self.timeline else ()
        self.banner.setVisible(bool(problems))
        if problems:
            self.banner.setText("⚠ " + self.timeline.problem_summary())
            self.banner.setToolTip("\n".join(str(p) for p in problems))

    def family_color(self, family: str) -> str:
        if family in FAMILY_COLORS:
            return FAMILY_COLORS[family]
        others = [f for f in (self.timeline.families if self.timeline else []) if f not in FAMILY_COLORS]
        return EXTRA_COLORS[others.index(family) % len(EXTRA_COLORS)] if family in others else EXTRA_COLORS[-1]

    def _build_filters(self) -> None:
        previous = {f: box.isChecked() for f, box in self.family_boxes.items()}
        for box in self.family_boxes.values():
            self.filters.removeWidget(box)
            box.deleteLater()
        self.family_boxes = {}
        for family in self.timeline.families:
            if family == "undisclosed":
                continue  # the 'size not disclosed' box controls those rows
            box = QCheckBox(family)
            box.setChecked(previous.get(family, True))
            color = self.family_color(family)
            box.setStyleSheet(f"QCheckBox {{ color: {color}; font-weight: bold; }}")
            box.toggled.connect(self.redraw)
            self.filters.insertWidget(self.filters.count() - 1, box)  # before 'size not disclosed'
            self.family_boxes[family] = box

    def _build_table(self) -> None:
        from ..widgets.frame_table import DataFrameModel, FrameTable

        first = self.table is None
        if first:
            model = DataFrameModel(
                ["name", "organisation", "date_text", "parameters", "active_parameters", "training_tokens", "family",
                 "size_status", "source", "note"],
                headers={"date_text": "date", "active_parameters": "active / token",
                         "training_tokens": "training tokens", "size_status": "size"},
                formatters={"parameters": human_count, "active_parameters": human_count,
                            "training_tokens": human_count},
                tooltip=lambda row: str(row["note"] or row["source"]),
                sort_by={"date_text": "date"},
            )
            self.table = FrameTable(model)
            self.table.setStyleSheet("font-size: 11pt;")
            self.table.clicked.connect(self._on_table_click)
            self.table.sortByColumn(2, Qt.SortOrder.AscendingOrder)  # by date
            self.table_page.layout().addWidget(self.table)
        frame = self.visible_frame()
        model = self.table.frame_model
        shown = frame.rename_axis("row").reset_index()  # 'row' keeps the timeline row of each line
        shown["date_text"] = [_date_text(d, p) for d, p in zip(shown["date"], shown["date_precision"])]
        model.set_frame(shown)
        if first:
            self.table.fit_columns()  # once: measuring every cell is the slow part of a filter change

    def _on_table_click(self, index) -> None:
        table_row = self.table.source_row(index.row())
        self.select_row(int(self.table.frame_model.frame.at[table_row, "row"]), from_table=True)

    def visible_frame(self) -> pd.DataFrame:
        """The rows the family filters and the 'size not disclosed' box let through (index = frame row)."""
        frame = self.timeline.frame
        keep = np.array([self.family_boxes[f].isChecked() if f in self.family_boxes else True
                         for f in frame["family"]], dtype=bool)
        if not self.show_unknown.isChecked():
            keep &= (frame["size_status"] != "unknown").to_numpy()
        return frame[keep]

    # -- hooks ------------------------------------------------------------------------------------
    def model_changed(self, info: ModelInfo) -> None:
        from ..core.timeline import place_loaded_model

        if self.timeline is None:
            self.load_data(self.data_path)
        elif len(self.timeline):
            self.loaded = place_loaded_model(self.timeline, info)
            self.redraw()
            (x0, x1), (y0, y1) = self.item.getViewBox().viewRange()
            x, y = self.loaded_xy
            if not (x0 <= x <= x1 and y0 <= y <= y1):
                self.reset_zoom()  # bring the new star into view
        self.mark_ready()

    # -- drawing ------------------------------------------------------------------------------------
    # Plot items are created once per data file (`_make_items`) and only updated after that:
    # removing items from a pyqtgraph plot disconnects signals, and with PySide6 6.12 on
    # Python 3.11 every disconnect() and void Qt call drops a reference to True/None.
    def _make_items(self) -> None:
        """Scatter per family, strip, MoE markers, the star, the selection ring, legend and one label per row."""
        self.item.clear()
        self.legend.clear()
        frame = self.timeline.frame
        self.strip_line = pg.InfiniteLine(angle=0, pen=pg.mkPen("#999999", width=1, style=Qt.PenStyle.DashLine))
        self.strip_text = pg.TextItem("size not disclosed →", color="#555555", anchor=(1, 0.5))
        self.strip_text.setFont(QFont("", LABEL_PT + 1, italic=True))
        self.moe_lines = pg.PlotDataItem(connect="pairs", pen=pg.mkPen("#CC79A7", width=1.5))
        self.moe_rings = pg.ScatterPlotItem(symbol="o", size=9, brush=pg.mkBrush("#FFFFFF"),
                                            pen=pg.mkPen("#CC79A7", width=2))
        for item in (self.strip_line, self.strip_text, self.moe_lines, self.moe_rings):
            self.item.addItem(item)
        self.family_items: dict[str, pg.ScatterPlotItem] = {}
        for family in self.timeline.families:
            self.family_items[family] = pg.ScatterPlotItem()
            self.item.addItem(self.family_items[family])
            color, unknown = self.family_color(family), family == "undisclosed"
            sample = pg.ScatterPlotItem(symbol="x" if unknown else "o", size=13, brush=pg.mkBrush(color),
                                        pen=pg.mkPen(color if unknown else "#FFFFFF", width=2.5 if unknown else 1))
            self.legend.addItem(sample, "size not disclosed" if unknown else family)
        if (frame["size_status"] == "estimate").any():
            sample = pg.ScatterPlotItem(symbol="d", brush=pg.mkBrush("#FFFFFF"), pen=pg.mkPen("#333333", width=2.5), size=13)
            self.legend.addItem(sample, "hollow: an estimate")
        if frame["active_parameters"].notna().any():
            ring = pg.ScatterPlotItem(symbol="o", size=9, brush=pg.mkBrush("#FFFFFF"), pen=pg.mkPen("#CC79A7", width=2))
            self.legend.addItem(ring, "MoE: active per token")
        star = pg.ScatterPlotItem(symbol="star", size=18, brush=pg.mkBrush(LOADED_COLOR), pen=pg.mkPen("#000000"))
        self.legend.addItem(star, "loaded model")
        self.star = pg.ScatterPlotItem(symbol="star", size=30, brush=pg.mkBrush(LOADED_COLOR),
                                       pen=pg.mkPen("#000000", width=1.5))
        self.star.setZValue(20)
        self.ring = pg.ScatterPlotItem(symbol="o", size=26, brush=pg.mkBrush(None), pen=pg.mkPen("#000000", width=2.5))
        self.ring.setZValue(15)
        font = QFont()
        font.setPointSize(LABEL_PT)
        self.loaded_label = pg.TextItem("", color=LOADED_COLOR)
        self.loaded_label.setFont(QFont(font.family(), LABEL_PT + 1, QFont.Weight.Bold))
        self.row_labels: dict[int, pg.TextItem] = {}
        for row, name, family in zip(frame.index, frame["name"], frame["family"]):
            label = pg.TextItem(str(name), color=self.family_color(str(family)))
            label.setFont(font)
            self.row_labels[int(row)] = label
        for item in (self.star, self.ring, self.loaded_label, *self.row_labels.values()):
            item.setVisible(False)
            self.item.addItem(item)

    def redraw(self) -> None:
        """Show the rows the filters let through (and the loaded model) by updating the items' data."""
        if self.timeline is None or not len(self.timeline):
            return
        frame = self.visible_frame()
        if self.table is not None:
            self._build_table()
        self.shown_rows = frame.index.to_numpy()
        self.xs = _seconds(frame["date"]) if len(frame) else np.zeros(0)
        known = frame["parameters"].to_numpy(dtype=float)
        self._strip_layout()
        self.ys = np.where(np.isfinite(known), np.log10(np.where(np.isfinite(known), known, 1.0)), self.strip_y)
        self._draw_strip()
        self._draw_moe(frame)
        for family, scatter in self.family_items.items():
            self._draw_family(frame, family, scatter)
        self._draw_loaded()
        self._place_ring(self.selected_row)
        self._order_labels(frame)
        self._layout_labels()

    def _strip_layout(self) -> None:
        """Place the 'size not disclosed' strip one decade above the largest known size."""
        values = self.timeline.frame["parameters"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if self.loaded is not None:
            values = np.append(values, self.loaded.parameters)
        self.top_decade = math.floor(math.log10(values.max())) + 1 if values.size else 12
        self.strip_y = self.top_decade + 0.65
        self.axis_y.max_label = 10.0 ** self.top_decade
        self.y_min = math.floor(math.log10(values.min())) - 0.3 if values.size else 6

    def _draw_strip(self) -> None:
        unknown = self.timeline.frame[self.timeline.frame["size_status"] == "unknown"]
        shown = bool(len(unknown)) and self.show_unknown.isChecked()
        self.strip_line.setVisible(shown)
        self.strip_text.setVisible(shown)
        if shown:
            self.strip_line.setValue(self.top_decade + 0.3)
            self.strip_text.setPos(_seconds([unknown["date"].min()])[0] - 86400 * 60, self.strip_y)

    def _draw_family(self, frame: pd.DataFrame, family: str, scatter: pg.ScatterPlotItem) -> None:
        mask = (frame["family"] == family).to_numpy()
        status = frame["size_status"].to_numpy()[mask]
        color = self.family_color(family)
        symbols = ["x" if s == "unknown" else ("d" if s == "estimate" else "o") for s in status]
        brushes = [pg.mkBrush("#FFFFFF") if s == "estimate" else pg.mkBrush(color) for s in status]
        pens = [pg.mkPen(color, width=2.5) if s in ("estimate", "unknown") else pg.mkPen("#FFFFFF", width=1)
                for s in status]
        sizes = [14 if s == "unknown" else 13 for s in status]
        scatter.setData(self.xs[mask], self.ys[mask], symbol=symbols, brush=brushes, pen=pens, size=sizes)

    def _draw_moe(self, frame: pd.DataFrame) -> None:
        active = frame["active_parameters"].to_numpy(dtype=float)
        mask = np.isfinite(active)
        ya = np.log10(active[mask])
        x = self.xs[mask]
        self.moe_lines.setData(np.repeat(x, 2), np.column_stack([self.ys[mask], ya]).ravel())
        self.moe_rings.setData(x, ya)

    def _draw_loaded(self) -> None:
        shown = self.loaded is not None
        self.star.setVisible(shown)
        if not shown:
            self.loaded_label.setVisible(False)
            return
        point = self.loaded
        self.loaded_xy = (_seconds([point.date])[0], math.log10(max(1.0, point.parameters)))
        self.star.setData([self.loaded_xy[0]], [self.loaded_xy[1]])
        note = (" (not in the data: shown at today's date)" if point.row is None else
                " (size from its weights)" if point.parameters_from == "loaded weights" else "")
        self.loaded_label.setText(f"loaded: {point.label}{note}")

    def _place_ring(self, row: int | None) -> None:
        where = np.flatnonzero(self.shown_rows == row) if row is not None else np.zeros(0, int)
        self.ring.setVisible(bool(where.size))
        if where.size:
            self.ring.setData([self.xs[where[0]]], [self.ys[where[0]]])

    # -- labels (greedy: most important first, skip any that would overlap) --------------------------
    def _order_labels(self, frame: pd.DataFrame) -> None:
        """Labels to place, most important first: the loaded model, then known sizes from the largest."""
        order = sorted(range(len(frame)), key=lambda i: (frame["size_status"].iat[i] == "unknown",
                                                         -np.nan_to_num(frame["parameters"].iat[i], nan=0.0)))
        self.labels = []
        if self.loaded is not None:
            self.labels.append((self.loaded_label, *self.loaded_xy, self.loaded_label.toPlainText()))
        loaded_row = self.loaded.row if self.loaded is not None else None
        shown = set()
        for i in order:
            row = int(self.shown_rows[i])
            if row == loaded_row:
                continue  # the loaded label names it
            shown.add(row)
            self.labels.append((self.row_labels[row], self.xs[i], self.ys[i], str(frame["name"].iat[i])))
        for row, label in self.row_labels.items():
            if row not in shown and label.isVisible():
                label.setVisible(False)

    def _layout_labels(self) -> None:
        if not self.labels:
            return
        vb = self.item.getViewBox()
        bounds = vb.sceneBoundingRect()
        # Markers are obstacles too, and so are the legend and the strip's caption.
        placed: list[QRectF] = [QRectF(p.x() - 7, p.y() - 7, 14, 14) for p in
                                (vb.mapViewToScene(QPointF(x, y)) for x, y in zip(self.xs, self.ys))]
        if self.legend.isVisible():
            placed.append(self.legend.sceneBoundingRect())
        if self.strip_text.isVisible():
            placed.append(self.strip_text.sceneBoundingRect())
        metrics_cache: dict[int, QFontMetricsF] = {}
        for item, x, y, text in self.labels:
            metrics = metrics_cache.setdefault(item.textItem.font().pointSize(), QFontMetricsF(item.textItem.font()))
            w, h = metrics.horizontalAdvance(text) + 6, metrics.height()
            p = vb.mapViewToScene(QPointF(x, y))
            shown = False
            if bounds.contains(p):
                for anchor, offset in (((0, 0.5), (10, 0)), ((1, 0.5), (-10, 0)), ((0.5, 1), (0, -8)),
                                       ((0.5, 0), (0, 8)), ((0, 1), (6, -8)), ((0, 0), (6, 8))):
                    rect = QRectF(p.x() + offset[0] - anchor[0] * w, p.y() + offset[1] - anchor[1] * h, w, h)
                    if bounds.contains(rect) and not any(rect.intersects(r) for r in placed):
                        placed.append(rect)
                        if tuple(item.anchor) != anchor:  # touch Qt only for what changed
                            item.setAnchor(anchor)
                        item.setPos(vb.mapSceneToView(p + QPointF(*offset)))
                        shown = True
                        break
            if item.isVisible() != shown:
                item.setVisible(shown)

    def visible_labels(self) -> list[str]:
        return [text for item, _x, _y, text in self.labels if item.isVisible()]

    def reset_zoom(self) -> None:
        if self.timeline is None or not len(self.timeline):
            return
        xs = list(self.xs) + ([self.loaded_xy[0]] if self.loaded is not None else [])
        if not xs:
            return
        lo, hi = min(xs), max(xs)
        pad = max(86400.0 * 120, (hi - lo) * 0.04)
        top = self.strip_y + 0.45 if self.show_unknown.isChecked() else self.strip_y - 0.5
        self.item.getViewBox().setRange(xRange=(lo - pad, hi + pad * 2.5), yRange=(self.y_min, top), padding=0)

    # -- hover and selection ---------------------------------------------------------------------------
    def point_at(self, scene_pos: QPointF) -> int | str | None:
        """Frame row (or 'loaded') of the point under `scene_pos`, within HOVER_PX pixels."""
        vb = self.item.getViewBox()
        if self.timeline is None or not vb.sceneBoundingRect().contains(scene_pos):
            return None
        best, best_d = None, HOVER_PX ** 2
        candidates = [(self.shown_rows[i], self.xs[i], self.ys[i]) for i in range(len(self.shown_rows))]
        if self.loaded is not None:
            candidates.insert(0, ("loaded", *self.loaded_xy))
        for key, x, y in candidates:
            p = vb.mapViewToScene(QPointF(x, y))
            d = (p.x() - scene_pos.x()) ** 2 + (p.y() - scene_pos.y()) ** 2
            if d < best_d:
                best, best_d = key, d
        return best

    def describe(self, key: int | str) -> str:
        """Rich text for one point: name, organisation, date, sizes, family and source."""
        if key == "loaded":
            p = self.loaded
            extra = "; ".join(p.notes)
            tokens = f" · {human_count(p.training_tokens)} training tokens" if math.isfinite(p.training_tokens) else ""
            return (f"<b>Loaded: {_esc(p.label)}</b> · {human_count(p.parameters)} parameters "
                    f"(from the {p.parameters_from}){tokens}" + (f"<br><i>{_esc(extra)}</i>" if extra else ""))
        row = self.timeline.frame.loc[key]
        size = {"official": f"{human_count(row['parameters'])} parameters",
                "estimate": f"≈{human_count(row['parameters'])} parameters (estimate, not published)",
                "unknown": "size not disclosed"}[row["size_status"]]
        parts = [f"<b>{_esc(row['name'])}</b>", _esc(row["organisation"]),
                 _date_text(row["date"], row["date_precision"]), size]
        if math.isfinite(row["active_parameters"]):
            parts.append(f"{human_count(row['active_parameters'])} active per token")
        if math.isfinite(row["training_tokens"]):
            parts.append(f"{human_count(row['training_tokens'])} training tokens")
        parts.append(_esc(row["family"]))
        source = _esc(row["source"])
        link = (f'<a href="{html.escape(row["source"])}">{source}</a>' if row["source"].startswith("http") else source)
        note = f"<br><i>{_esc(row['note'])}</i>" if row["note"] else ""
        return " · ".join(parts) + f"<br>source: {link}{note}"

    def _on_hover(self, pos: QPointF) -> None:
        key = self.point_at(pos)
        if key is None:
            return
        text = self.describe(key)
        self.readout.setText(text)
        QToolTip.showText(self.plot.mapToGlobal(self.plot.mapFromScene(pos)), text, self.plot)

    def _on_click(self, event) -> None:
        key = self.point_at(event.scenePos())
        if isinstance(key, (int, np.integer)) and event.button() == Qt.MouseButton.LeftButton:
            self.select_row(int(key))

    def select_row(self, row: int, from_table: bool = False) -> None:
        """Ring the row's point, show its details, and select it in the table."""
        self.selected_row = row
        self._place_ring(row)
        self.readout.setText(self.describe(row))
        if self.table is not None and not from_table:
            matches = np.flatnonzero(self.table.frame_model.frame["row"].to_numpy() == row)
            if matches.size:
                self.table.select_source_row(int(matches[0]))

    # -- export -----------------------------------------------------------------------------------------
    def _ask_path(self, title: str, default: str, filters: str, save) -> None:
        save_with_dialog(self, title, default, filters, save, lambda message: self.readout.setText(html.escape(message)))

    def export_csv(self, path: str) -> None:
        """The rows the filters show, in the data file's own format."""
        from ..core.timeline import export_csv

        export_csv(self.visible_frame(), path)

    def export_image(self, path: str) -> None:
        """The chart as PNG (1800 px wide) or SVG, by extension."""
        export_plot(self.item, path)
