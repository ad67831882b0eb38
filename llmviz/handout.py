"""The lesson handout: one PDF page per step, the rendered view above its explanation.

Each step is shown in presentation mode as in class, and its page is drawn once the view has
drawn and the engine is idle (or after STEP_TIMEOUT_S, with what is there).  Qt's own
QPdfWriter does the writing, so this works on the offscreen platform with no display.  The
file appears only when complete (written to a temporary name and renamed).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from PySide6.QtCore import QMarginsF, QObject, QRectF, QSizeF, Qt, QTimer, Signal
from PySide6.QtGui import QFont, QPageLayout, QPageSize, QPainter, QPdfWriter, QTextDocument

from .core.atomic import atomic_path

if TYPE_CHECKING:
    from .lesson_player import LessonPlayer
    from .main_window import MainWindow

STEP_TIMEOUT_S = 60.0
SETTLE_MS = 300  # after the view is ready: late paints and the style pass land
SHOT_SIZE = (1600, 900)


class HandoutWriter(QObject):
    """Walks the lesson's steps and writes the PDF; `sig_done(path or '', message)` at the end."""

    sig_done = Signal(str, str)

    def __init__(self, window: MainWindow, player: LessonPlayer, path: str) -> None:
        super().__init__(window)
        self.window, self.player, self.path = window, player, path
        self.index = 0
        self.pages = 0
        self._step_started = 0.0
        self._ready_since: float | None = None
        self._writer: QPdfWriter | None = None
        self._painter: QPainter | None = None
        self._atomic = None
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll)
        self._was_active = False
        self._old_size = None

    def start(self) -> None:
        w = self.window
        self._was_active = w.presentation.active
        self._old_size = w.size()
        w.resize(*SHOT_SIZE)
        w.presentation.navigator = self.player
        w.presentation.enter()
        self._atomic = atomic_path(self.path)
        temp = self._atomic.__enter__()
        self._writer = QPdfWriter(str(temp))
        self._writer.setTitle(self.player.lesson.title)
        self._writer.setCreator("llmviz")
        self._writer.setResolution(150)
        self._writer.setPageLayout(QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Landscape,
                                               QMarginsF(12, 12, 12, 12), QPageLayout.Unit.Millimeter))
        self._painter = QPainter(self._writer)
        self._go(0)
        self._timer.start()

    def _go(self, index: int) -> None:
        self.index = index
        self._step_started = time.monotonic()
        self._ready_since = None
        self.player.go(index)

    def _ready(self) -> bool:
        w = self.window
        step = self.player.lesson.steps[self.index]
        if step.view not in w.views:
            return True  # a step whose view is unknown: its text alone
        if w.info is None or w.host.busy:
            return False
        return w.view(step.view).is_ready()

    def _poll(self) -> None:
        if self._ready():
            now = time.monotonic()
            if self._ready_since is None:
                self._ready_since = now
                self.window.presentation.restyle()
            if (now - self._ready_since) * 1000 < SETTLE_MS:
                return
        elif time.monotonic() - self._step_started < STEP_TIMEOUT_S:
            return
        self._page()
        if self.index + 1 < self.player.count():
            self._go(self.index + 1)
        else:
            self._finish()

    def _page(self) -> None:
        """One page: step counter and title, the view's picture, the explanation under it."""
        step = self.player.lesson.steps[self.index]
        w, painter, writer = self.window, self._painter, self._writer
        if self.pages:
            writer.newPage()
        self.pages += 1
        page = QRectF(painter.viewport())  # device pixels at the writer's resolution
        dock = w.docks.get(step.view)
        title_font = QFont("DejaVu Sans")
        title_font.setPixelSize(int(page.height() * 0.045))
        painter.setFont(title_font)
        title_h = page.height() * 0.08
        painter.drawText(QRectF(0, 0, page.width(), title_h), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         f"{self.index + 1}. {step.title}")
        picture_box = QRectF(0, title_h, page.width(), page.height() * 0.62)
        if dock is not None and dock.isVisible():
            pixmap = dock.grab()
            size = QSizeF(pixmap.size()).scaled(picture_box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRectF(picture_box.topLeft(), size)
            painter.drawPixmap(target, pixmap, QRectF(pixmap.rect()))
        doc = QTextDocument()
        body = QFont("DejaVu Sans")
        body.setPixelSize(int(page.height() * 0.022))
        doc.setDefaultFont(body)
        text = step.explanation
        if step.problem is not None:
            text = f"**{step.problem}**\n\n{text}"
        doc.setMarkdown(text)
        doc.setTextWidth(page.width())
        painter.save()
        painter.translate(0, picture_box.bottom() + page.height() * 0.02)
        doc.drawContents(painter, QRectF(0, 0, page.width(), page.height() - picture_box.bottom()))
        painter.restore()

    def _finish(self) -> None:
        self._timer.stop()
        self._painter.end()
        self._atomic.__exit__(None, None, None)  # renames the complete file into place
        w = self.window
        if not self._was_active:
            w.presentation.leave()
        if self._old_size is not None:
            w.resize(self._old_size)
        self.sig_done.emit(self.path, f"{self.pages} pages")
        w.statusBar().showMessage(f"Wrote {self.path} ({self.pages} pages)", 8000)
