"""The side panel of presentation mode: step counter, title, explanation, and a banner for problems."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from .layouts import column, fill, vertical_scroll
from .message_bar import MessageBar


class LessonPanel(QWidget):
    """Shows where the class is (step n of N), the step's title and its Markdown explanation."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("lessonPanel")
        self.counter = QLabel()
        self.counter.setObjectName("stepCounter")
        self.title = QLabel()
        self.title.setObjectName("stepTitle")
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold;")
        self.explanation = QLabel()
        self.explanation.setObjectName("stepExplanation")
        self.explanation.setTextFormat(Qt.TextFormat.MarkdownText)
        self.explanation.setWordWrap(True)
        self.explanation.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.explanation.setOpenExternalLinks(False)
        self.banner = MessageBar()
        self.banner.setObjectName("lessonBanner")
        self.jump = QLabel()
        self.jump.setObjectName("stepJump")
        self.jump.hide()
        # A long explanation scrolls (vertically only) instead of being cut off.
        self.scroll = vertical_scroll(column(self.title, (self.explanation, 1)))
        fill(QVBoxLayout(self), self.counter, self.banner, self.jump, (self.scroll, 1), margins=(12, 8, 12, 8))

    def show_step(self, index: int, count: int, title: str, markdown: str) -> None:
        self.counter.setText(f"Step {index + 1} / {count}" if count else "")
        self.title.setText(title)
        self.explanation.setText(markdown)
        self.scroll.verticalScrollBar().setValue(0)

    def show_view(self, title: str, index: int, count: int) -> None:
        """Presentation without a lesson: which view of how many."""
        self.counter.setText(f"View {index + 1} / {count}")
        self.title.setText(title)
        self.explanation.setText("→ / ← or Page Down / Page Up: next or previous view. Esc leaves.")

    def show_jump(self, digits: str) -> None:
        self.jump.setText(f"Go to step {digits}…" if digits else "")
        self.jump.setVisible(bool(digits))
