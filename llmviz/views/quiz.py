"""The quiz: the notebook's five questions, and questions about the loaded model whose right
answers the engine computes now; "Show me" opens the view that proves each answer."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core import targets
from ..core.quiz_results import NOTEBOOK_QUESTIONS, Question, Quiz
from ..core.results import Trace
from ..widgets.wrapped_label import WrappedLabel
from ..workers.jobs import JobOutcome
from ..workers.model_host import ModelHost
from .base import DockView

RIGHT, WRONG = "#0B6E2E", "#A3001B"  # dark green / dark red: legible on white and on a projector


def _wrapped(text: str = "", name: str = "") -> QLabel:
    label = WrappedLabel(text)
    if name:
        label.setObjectName(name)
    return label


class QuestionCard(QFrame):
    """One multiple-choice question: choices, the verdict once answered, "Show me"."""

    sig_answered = Signal(bool)
    sig_show = Signal(str, object)

    def __init__(self, question: Question, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.question = question
        self.answered: bool | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.addWidget(_wrapped(f"<b>{question.prompt}</b>"))
        self.group = QButtonGroup(self)
        self.buttons: list[QRadioButton] = []
        for i, choice in enumerate(question.choices):
            button = QRadioButton(choice)
            self.group.addButton(button, i)
            self.buttons.append(button)
            layout.addWidget(button)
        self.group.idClicked.connect(self.answer)
        self.verdict = _wrapped(name="verdict")
        self.verdict.hide()
        show = QPushButton("Show me")
        show.setToolTip("Open the view that demonstrates the answer on the loaded model")
        show.clicked.connect(lambda: self.sig_show.emit(question.show_view, dict(question.show_state)))
        row = QHBoxLayout()
        row.addWidget(self.verdict, 1)
        row.addWidget(show, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(row)

    def answer(self, index: int) -> None:
        """Mark the choice: right or wrong, with the computed explanation."""
        right = index == self.question.answer
        if self.answered is None:
            self.answered = right
            self.sig_answered.emit(right)
        colour = RIGHT if right else WRONG
        verdict = "Right." if right else f"Not quite: the answer is {self.question.choices[self.question.answer]}."
        self.verdict.setText(f"<span style='color:{colour}'><b>{verdict}</b></span> {self.question.explanation}")
        self.verdict.show()
        for button in self.buttons:
            button.setEnabled(False)


class NotebookCard(QFrame):
    """One of the notebook's open questions: reveal the answer, open the view that shows it."""

    sig_show = Signal(str, object)

    def __init__(self, prompt: str, answer: str, view: str, state: dict[str, Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.addWidget(_wrapped(f"<b>{prompt}</b>"))
        self.answer = _wrapped(answer, "notebookAnswer")
        self.answer.hide()
        reveal = QPushButton("Answer")
        reveal.clicked.connect(lambda: self.answer.setVisible(not self.answer.isVisible()))
        show = QPushButton("Show me")
        show.clicked.connect(lambda: self.sig_show.emit(view, dict(state)))
        row = QHBoxLayout()
        row.addWidget(reveal)
        row.addWidget(show)
        row.addStretch(1)
        layout.addWidget(self.answer)
        layout.addLayout(row)


class QuizView(DockView):
    NAME = "quiz"
    TITLE = "Quiz"
    STATE = ("tabs",)

    sig_show = Signal(str, object)
    """(view name, state): the window opens that view in that state."""

    def __init__(self, host: ModelHost, parent: QWidget | None = None) -> None:
        super().__init__(host, parent)
        self.quiz: Quiz | None = None
        self.cards: list[QuestionCard] = []
        self.score = QLabel()
        self.score.setObjectName("quizScore")
        self.status = _wrapped()
        self.tabs = QTabWidget()
        self.model_page = QWidget()
        self.model_layout = QVBoxLayout(self.model_page)
        notebook = QWidget()
        nb_layout = QVBoxLayout(notebook)
        for prompt, answer, view, state in NOTEBOOK_QUESTIONS:
            card = NotebookCard(prompt, answer, view, state)
            card.sig_show.connect(self.sig_show)
            nb_layout.addWidget(card)
        nb_layout.addStretch(1)
        self.tabs.addTab(self.model_page, "This model")
        self.tabs.addTab(notebook, "The notebook's questions")
        again = QPushButton("New questions")
        again.setToolTip("Ask again: other distractors and order, answers computed again")
        again.clicked.connect(lambda: self.request(seed=self._seed + 1))
        top = QHBoxLayout()
        top.addWidget(self.score, 1)
        top.addWidget(again)
        layout = QVBoxLayout(self.content)
        layout.addLayout(top)
        layout.addWidget(self.status)
        layout.addWidget(self.tabs, 1)
        self._seed = 0

    def trace_changed(self, trace: Trace) -> None:
        self.request(seed=0)

    def request(self, seed: int = 0) -> None:
        if self.trace is None or self.trace.is_empty:
            return
        self._seed = seed
        self.mark_busy()
        self.status.setText("Computing the answers on the loaded model…")
        self.status.show()
        self.host.call(targets.QUIZ_QUESTIONS, channel=self.channel("questions"), label="Computing the quiz",
                       on_done=self.on_result(self._draw, self._failed), trace_id=self.trace.id, seed=seed)

    def _draw(self, quiz: Quiz) -> None:
        self.quiz = quiz
        while self.model_layout.count():
            item = self.model_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.cards = []
        for question in quiz.questions:
            card = QuestionCard(question)
            card.sig_answered.connect(lambda _right: self._update_score())
            card.sig_show.connect(self.sig_show)
            self.cards.append(card)
            self.model_layout.addWidget(card)
        self.model_layout.addStretch(1)
        self.status.setText(f"Questions about {quiz.model_title}; each answer was computed just now.")
        self._update_score()
        self.show_content()
        self.mark_ready()

    def _failed(self, outcome: JobOutcome) -> None:
        self.status.setText(f"The quiz could not be computed: {outcome.message}")
        self.show_content()
        self.mark_ready()

    def _update_score(self) -> None:
        answered = [c.answered for c in self.cards if c.answered is not None]
        self.score.setText(f"Score: {sum(answered)} / {len(answered)} answered · {len(self.cards)} questions")
