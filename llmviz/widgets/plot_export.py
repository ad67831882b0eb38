"""Saving plots (PNG or SVG) and tables (CSV) from the views, and asking where.

One exporter for every view (see export_plot for why SVG bypasses pyqtgraph's).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QFileDialog, QLabel, QWidget

from ..core.atomic import atomic_path
from ..core.atomic import write_csv as atomic_write_csv
from ..core.errors import WriteError

if TYPE_CHECKING:
    import pandas as pd

SLIDE_WIDTH = 1800  # PNG exports are sized for slides and printed handouts


def export_plot(item: pg.GraphicsObject, path: str, width: int | None = SLIDE_WIDTH) -> None:
    """PNG or SVG by extension; `item` is a PlotItem or a GraphicsLayout (several plots).

    PNG goes through pyqtgraph's ImageExporter, `width` pixels wide (None: as on screen).
    SVG goes through Qt's QSvgGenerator: pyqtgraph 0.14's SVGExporter cannot
    parse the paths Qt 6.11/6.12 writes (it splits 'M0,0 L9,0 Z' on spaces and expects
    x,y pairs), so it fails on every plot here; rendering the scene region into a
    QSvgGenerator gives the same vector drawing.  The file is written under a temporary
    name (same extension, so the exporters pick the format) and renamed when complete.
    Raises OSError (WriteError) when it cannot be written; nothing partial is left.
    """
    with atomic_path(path) as tmp:
        _export_to(item, str(tmp), width)


def _export_to(item: pg.GraphicsObject, path: str, width: int | None) -> None:
    if not path.lower().endswith(".svg"):
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(item)
        if width:
            exporter.parameters()["width"] = width
        if exporter.export(path) is False:
            raise OSError(f"could not write {path}")
        return
    from PySide6.QtSvg import QSvgGenerator

    source = item.sceneBoundingRect()
    target = QRectF(0, 0, source.width(), source.height())
    generator = QSvgGenerator()
    generator.setFileName(path)
    generator.setSize(source.size().toSize())
    generator.setViewBox(target)
    generator.setTitle("llmviz")
    painter = QPainter()
    if not painter.begin(generator):
        raise OSError(f"could not write {path}")
    try:
        painter.fillRect(target, QColor("white"))
        item.scene().render(painter, target, source)
    finally:
        painter.end()


def write_csv(frame: pd.DataFrame, path: str, **kwargs: Any) -> None:
    """`frame.to_csv(path, **kwargs)` written atomically (views' CSV exports go through this)."""
    atomic_write_csv(frame, path, **kwargs)


def save_csv(frame: pd.DataFrame, path: str, status: QLabel, saved: str) -> bool:
    """Write `frame` (without its index) to `path` and say so in `status`, or say why not."""
    try:
        write_csv(frame, path, index=False)
    except OSError as exc:
        show_status(status, f"Could not write {path}: {exc.strerror or exc}", error=True)
        return False
    show_status(status, saved)
    return True


def show_status(label: QLabel, text: str, error: bool = False) -> None:
    """`text` in `label`, red for an error, green otherwise."""
    label.setText(f"<span style='color:{'#B00020' if error else '#1B5E20'}'>{html.escape(text)}</span>")
    label.show()


def ask_image_path(parent: QWidget, name: str) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, "Export image", f"{name}.png", "PNG image (*.png);;SVG drawing (*.svg)")
    return path


def ask_csv_path(parent: QWidget, name: str) -> str:
    path, _ = QFileDialog.getSaveFileName(parent, "Export CSV", f"{name}.csv", "CSV (*.csv)")
    return path


def save_with_dialog(parent: QWidget, title: str, default: str, filters: str, save: Callable[[str], None],
                     report: Callable[[str], None]) -> None:
    """Ask where to save, then `save(path)`; a write error is reported in the view, not raised."""
    path, _ = QFileDialog.getSaveFileName(parent, title, default, filters)
    if path:
        try:
            with atomic_path(path) as tmp:  # whatever `save` writes appears whole, or not at all
                save(str(tmp))
        except WriteError as exc:
            report(str(exc))
        except OSError as exc:
            report(f"Could not write {path}: {exc.strerror or exc}")
