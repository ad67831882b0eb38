"""The "Why?" button other docks show next to a prediction, and the relay that carries its request.

A click emits an `ExplainRequest` on `explain_requests`; the main window opens the Explain
dock on that target.  The docks never reach each other directly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QPushButton, QWidget


@dataclass(frozen=True)
class ExplainRequest:
    """The next token after `position` (-1: the last; token -1: the top-1), or an encoder's
    similarity to `compare`; `text` explains the end of that text instead of the window's."""

    position: int = -1
    token: int = -1
    compare: str = ""
    text: str | None = None


class ExplainRequests(QObject):
    """Relays "Why?" clicks from any dock to the window."""

    sig_request = Signal(object)  # ExplainRequest


explain_requests = ExplainRequests()


class WhyButton(QPushButton):
    """A button that asks the Explain dock about what `request()` returns (None: nothing to ask)."""

    def __init__(self, request: Callable[[], ExplainRequest | None], tooltip: str,
                 parent: QWidget | None = None) -> None:
        super().__init__("Why?", parent)
        self.setToolTip(tooltip)
        self._request = request
        self.clicked.connect(self.ask)

    def ask(self) -> None:
        request = self._request()
        if request is not None:
            explain_requests.sig_request.emit(request)
