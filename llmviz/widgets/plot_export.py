"""Saving plots as PNG or SVG from the views, and asking where.

SVG goes through Qt's own QSvgGenerator (the plot's view rendered as vectors): pyqtgraph
0.14's SVGExporter fails on the path data Qt 6.12 writes (pyqtgraph issue #3485).
PNG uses pyqtgraph's ImageExporter.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QFileDialog, QWidget


def export_plot(item: pg.GraphicsObject, path: str) -> None:
    """PNG or SVG by extension; `item` is a PlotItem or a GraphicsLayout (several plots)."""
    if path.lower().endswith(".svg"):
        _export_svg(item, path)
        return
    from pyqtgraph.exporters import ImageExporter

    ImageExporter(item).export(path)


def _export_svg(item: pg.GraphicsObject, path: str) -> None:
    from PySide6.QtSvg import QSvgGenerator

    view = item.scene().views()[0]
    source = view.mapFromScene(item.sceneBoundingRect()).boundingRect()
    generator = QSvgGenerator()
    generator.setFileName(path)
    generator.setSize(source.size())
    generator.setViewBox(QRectF(0, 0, source.width(), source.height()))
    generator.setTitle("llmviz plot")
    painter = QPainter(generator)
    try:
        view.render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        painter.end()


def ask_image_path(parent: QWidget, name: str) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, "Export image", f"{name}.png", "PNG image (*.png);;SVG drawing (*.svg)")
    return path


def ask_csv_path(parent: QWidget, name: str) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, "Export CSV", f"{name}.csv", "CSV (*.csv)")
    return path
