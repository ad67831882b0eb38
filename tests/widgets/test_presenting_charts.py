"""The quantization charts' presenting layout and the table's kept rows, at real fonts."""

from __future__ import annotations

import pandas as pd
from PySide6.QtGui import QFont

from llmviz.widgets.frame_table import DataFrameModel, FrameTable
from llmviz.widgets.precision_charts import CHART_WORDS, CostQualityCharts


def test_presenting_shortens_titles_and_restores_them(qtbot):
    charts = CostQualityCharts()
    qtbot.addWidget(charts)
    plots = (charts.memory_plot, charts.kl_plot, charts.top1_plot)
    charts.set_presentation(True)
    assert [(p.titleLabel.text, p.getAxis("left").labelText) for p in plots] == [w.for_mode(True) for w in CHART_WORDS]
    assert charts.minimumHeight() >= 10 * charts.fontMetrics().height()
    charts.set_presentation(False)
    assert [(p.titleLabel.text, p.getAxis("left").labelText) for p in plots] == [w.for_mode(False) for w in CHART_WORDS]
    assert charts.minimumHeight() == 0


def test_kept_rows_grow_with_the_font(qtbot):
    model = DataFrameModel(["a", "b"])
    model.set_frame(pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]}))
    table = FrameTable(model)
    qtbot.addWidget(table)
    table.keep_rows_visible(2)
    small = table.minimumHeight()
    assert small > 2 * table.fontMetrics().height()
    font = QFont(table.font())
    font.setPixelSize(40)
    table.setFont(font)
    qtbot.waitUntil(lambda: table.minimumHeight() > small + 2 * 20, timeout=2000)


def test_the_column_cap_is_at_the_applications_font(qtbot):
    """fit_columns' cap holds at the desktop font and grows with a larger table font, whenever it is called."""
    model = DataFrameModel(["memory", "bits"], headers={"memory": "Memory MiB of the weights", "bits": "Bits"})
    model.set_frame(pd.DataFrame({"memory": [513.1], "bits": [32]}))  # the last column stretches
    table = FrameTable(model)
    qtbot.addWidget(table)
    table.fit_columns(120)
    assert table.horizontalHeader().sectionSize(0) <= 120
    font = QFont(table.font())
    font.setPixelSize(3 * table.fontMetrics().height())
    table.setFont(font)
    table.fit_columns(120)  # a view redrawing while presenting
    assert table.horizontalHeader().sectionSize(0) > 2 * 120
