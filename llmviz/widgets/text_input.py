"""The text box: edits re-run the model after a short debounce; long files open here too."""

from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QToolButton, QVBoxLayout, QWidget

DEBOUNCE_MS = 450


class TextInput(QWidget):
    """Emits `sig_text(str)` once the user pauses typing."""

    sig_text = Signal(str)
    sig_open_file = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.editor = QPlainTextEdit()
        self.editor.setPlaceholderText("Type or paste text here; the views update as you pause typing.")
        self.editor.setFixedHeight(64)
        self.notice = QLabel()
        self.notice.setObjectName("textNotice")
        open_button = QToolButton()
        open_button.setText("Open text file…")
        open_button.clicked.connect(self.sig_open_file)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.emit_now)
        self.editor.textChanged.connect(self._timer.start)
        side = QVBoxLayout()
        side.addWidget(open_button)
        side.addStretch(1)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.editor, 1)
        row.addLayout(side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(self.notice)

    def text(self) -> str:
        return self.editor.toPlainText()

    def set_text(self, text: str, emit: bool = False) -> None:
        self.editor.blockSignals(True)
        self.editor.setPlainText(text)
        self.editor.blockSignals(False)
        self._timer.stop()
        if emit:
            self.emit_now()

    def emit_now(self) -> None:
        self._timer.stop()
        self.sig_text.emit(self.text())

    def set_notice(self, text: str, warn: bool = False) -> None:
        self.notice.setText(text)
        self.notice.setStyleSheet("color:#8a5300; font-weight:bold;" if warn else "color:palette(placeholder-text);")
