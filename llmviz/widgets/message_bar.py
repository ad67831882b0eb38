"""A dismissible banner for errors and notices: visible, non-modal, never blocks the app."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

STYLES = {
    "error": "background:#fde7e9; border:1px solid #e8a0a8; color:#6b0d17;",
    "warning": "background:#fff4ce; border:1px solid #e5c76b; color:#4d3900;",
    "info": "background:#e5f1fb; border:1px solid #9cc3e6; color:#0b3a5c;",
}


class MessageBar(QFrame):
    """Shows one message at a time; `level` is 'error', 'warning' or 'info'; optionally one action
    button (e.g. "Restart the engine") that runs a callback and dismisses the message."""

    sig_closed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAutoRaise(True)
        self.close_button.clicked.connect(self.dismiss)
        self.action_button = QPushButton()
        self.action_button.setObjectName("messageAction")
        self.action_button.clicked.connect(self._act)
        self.action_button.hide()
        self._action: Callable[[], None] | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.level = ""
        self.hide()

    def show_message(self, text: str, level: str = "error", action: str = "",
                     on_action: Callable[[], None] | None = None) -> None:
        self.level = level
        self.setStyleSheet(f"QFrame#messageBar {{ {STYLES.get(level, STYLES['info'])} border-radius: 4px; }}")
        self.label.setText(text)
        self._action = on_action if action else None
        self.action_button.setText(action)
        self.action_button.setVisible(bool(action))
        self.show()

    def _act(self) -> None:
        action = self._action
        self.dismiss()
        if action is not None:
            action()

    def dismiss(self) -> None:
        self.hide()
        self.level = ""
        self.sig_closed.emit()

    @property
    def text(self) -> str:
        return self.label.text() if self.isVisible() or self.level else ""
