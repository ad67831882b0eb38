"""The one mechanism by which dock views join the main window.

A view is a QWidget subclass with three class attributes (NAME: the short lowercase
dock name used by --dock, the View menu and the saved layout; TITLE; AREA) and a few
hooks the window calls.  Views never import torch: they ask the engine for work with
`self.host.call(targets.X, on_done=..., **kwargs)` and draw the frozen result their
callback receives.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QStackedLayout, QVBoxLayout, QWidget

from ..core.results import Trace
from ..core.specs import ModelInfo
from ..widgets.widget_state import read_value, write_value
from ..workers.jobs import JobOutcome
from ..workers.model_host import ModelHost


@dataclass(frozen=True)
class DrawTime:
    """One view's busy->ready interval (time.perf_counter() seconds) for a model or a trace."""

    view: str
    trace_id: int | None
    model_source: str | None
    busy_at: float
    ready_at: float


class DrawTimes(QObject):
    """Relays every view's draw time to whoever listens (the environment dock's run log)."""

    sig_drawn = Signal(object)  # DrawTime


draw_times = DrawTimes()


class _Content(QWidget):
    """A view's content inside its scroll area.

    QScrollArea sizes a widget with height-for-width (any word-wrapped label) at its layout's
    *preferred* height, which made docks scroll whenever they were shorter than that; without
    it the content shrinks to its minimum height before scrolling.
    """

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt naming
        return False

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - QScrollArea asks the layout's anyway
        return -1


class DockView(QWidget):
    """Base class of every dock view."""

    NAME: ClassVar[str] = ""
    TITLE: ClassVar[str] = ""
    AREA: ClassVar[Qt.DockWidgetArea] = Qt.DockWidgetArea.RightDockWidgetArea
    #: Views that only depend on the model (not on the text) are ready once the model is shown.
    NEEDS_TRACE: ClassVar[bool] = True
    #: The controls whose values make up what the user chose here (attribute names, restored in
    #: this order): saved in sessions and lessons, and put back after the engine restarts.
    STATE: ClassVar[tuple[str, ...]] = ()
    #: Hidden views (closed docks, background tabs) react to a new model or text only when shown:
    #: one engine serves every view, and work for views nobody sees delays the visible ones.
    LAZY: ClassVar[bool] = True

    sig_ready = Signal()
    """Emitted when the view has drawn the current model/trace (or a message about it)."""

    def __init__(self, host: ModelHost, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.info: ModelInfo | None = None
        self.trace: Trace | None = None
        self._ready = False
        self._pending_model = False
        self._pending_trace = False
        self._busy_at: float | None = None
        self.last_draw_s: float | None = None  # busy->ready of the latest drawing
        self._desktop_state: dict[str, Any] | None = None  # the user's values while presenting
        self._presented_state: dict[str, Any] = {}
        self._stack = QStackedLayout()
        self._content = _Content()
        self._message = QLabel()
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)
        self._message.setObjectName("viewMessage")
        self._message.setStyleSheet("QLabel#viewMessage { color: palette(placeholder-text); font-size: 13pt; padding: 24px; }")
        # A dock narrower than its controls scrolls instead of forcing the window wider
        # (a projector's 1280 px must fit every layout).
        self._scroll = QScrollArea()
        self._scroll.setWidget(self._content)
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QFrame.Shape.NoFrame)
        self._stack.addWidget(self._scroll)
        self._stack.addWidget(self._message)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(self._stack)
        self.show_message("Load a model to begin." if not self.NEEDS_TRACE else "Load a model and type some text.")
        self._ready = False

    # -- layout helpers -----------------------------------------------------------------
    @property
    def content(self) -> QWidget:
        """The widget subclasses fill with their controls and plots."""
        return self._content

    def show_message(self, text: str) -> None:
        """Replace the content by a centred message (empty state, unsupported model, error)."""
        self._message.setText(text)
        self._stack.setCurrentWidget(self._message)

    def show_content(self) -> None:
        self._stack.setCurrentWidget(self._scroll)

    def show_failure(self, outcome: JobOutcome) -> None:
        """A failed job's message in place of the content, and the view ready again; a cancelled
        job (superseded by a newer request) shows nothing."""
        if outcome.status == "failed":
            self.show_message(outcome.message)
            self.mark_ready()

    @property
    def message_text(self) -> str:
        return self._message.text() if self._stack.currentWidget() is self._message else ""

    # -- readiness (used by --screenshot and tests) -----------------------------------------
    def is_ready(self) -> bool:
        return self._ready

    def mark_ready(self) -> None:
        self._ready = True
        if self._busy_at is not None:
            now = time.perf_counter()
            self.last_draw_s = now - self._busy_at
            draw_times.sig_drawn.emit(DrawTime(self.NAME, self.trace.id if self.trace else None,
                                               self.info.source if self.info else None, self._busy_at, now))
            self._busy_at = None
        self.sig_ready.emit()

    def mark_busy(self) -> None:
        self._ready = False
        self._busy_at = time.perf_counter()

    # -- hooks called by the main window ---------------------------------------------------
    def on_model_loaded(self, info: ModelInfo) -> None:
        """A new model is loaded (its trace follows when there is text)."""
        self.info = info
        self.trace = None
        self._pending_trace = False
        self.mark_busy()
        if self.LAZY and not self.isVisible():
            self._pending_model = True  # model_changed runs in showEvent
            return
        self._pending_model = False
        self.model_changed(info)

    def prepare(self, info: ModelInfo) -> None:
        """Override: queue work wanted right after a model loads, before the text's trace runs
        (the window is still showing the load then).  Called for visible views only, on every
        load, before `on_model_loaded`: `self.info` is still the previous model's here."""

    def on_trace(self, trace: Trace) -> None:
        self.trace = trace
        self.mark_busy()
        if trace.is_empty and self.NEEDS_TRACE:
            self._pending_trace = False
            self.show_message("Type some text above to see this view." if not trace.text.strip() else
                              "This text has no tokens for this model.")
            self.mark_ready()
            return
        if self.LAZY and not self.isVisible():
            self._pending_trace = True  # drawn in showEvent
            return
        self._pending_trace = False
        self.trace_changed(trace)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.warm()

    def warm(self) -> None:
        """Do now the work a hidden view postponed (a lesson precomputes its next step's view
        while the current one is shown, so moving on draws at once)."""
        if self._pending_model and self.info is not None:
            self._pending_model = False
            self.mark_busy()
            self.model_changed(self.info)
        if self._pending_trace and self.trace is not None:
            self._pending_trace = False
            self.mark_busy()
            self.trace_changed(self.trace)

    def model_changed(self, info: ModelInfo) -> None:
        """Override: react to a new model.  Views with NEEDS_TRACE=False must call mark_ready()."""

    def trace_changed(self, trace: Trace) -> None:
        """Override: draw a new (non-empty) trace, then call mark_ready()."""
        self.mark_ready()

    def channel(self, name: str) -> str:
        """A job channel of this view (a newer call on it supersedes the older one)."""
        return f"{self.NAME}.{name}"

    def on_result(self, draw: Callable[[Any], None],
                  failed: Callable[[JobOutcome], None] | None = None) -> Callable[[JobOutcome], None]:
        """An `on_done` for host.call: `draw(value)` when the job succeeded, `failed(outcome)` when
        it failed or was cancelled; nothing for a result about a text no longer shown (a job
        whose kwargs carry another `trace_id`)."""
        def done(outcome: JobOutcome) -> None:
            trace_id = outcome.kwargs.get("trace_id")
            if trace_id is not None and (self.trace is None or trace_id != self.trace.id):
                return
            if outcome.ok:
                draw(outcome.value)
            elif failed is not None:
                failed(outcome)
        return done

    def control(self, name: str) -> Any:
        """The control a STATE name stands for; a dotted name reaches into a composite widget
        ("n_slider.slider")."""
        target: Any = self
        for part in name.split("."):
            target = getattr(target, part)
        return target

    def state(self) -> dict[str, Any]:
        """What the user chose in this view (the STATE controls' values, plain JSON); extend it in
        a subclass for choices that live outside a control."""
        out = {}
        for name in self.STATE:
            value = read_value(self.control(name))
            if value is not None:
                out[name] = value
        return out

    def restore_state(self, state: dict[str, Any]) -> list[str]:
        """Put back what `state()` returned, as if the user did it; returns the keys it could not
        use (unknown controls, values of the wrong kind), so a caller can say so."""
        unused = [k for k in state if k not in self.STATE]
        for name in self.STATE:
            if name in state and not write_value(self.control(name), state[name]):
                unused.append(name)
        return unused

    #: Settings presentation mode chooses while it is on (STATE names and values, e.g. the
    #: colour-blind-safe colour map); the user's own values come back when it ends.
    PRESENTATION_STATE: ClassVar[dict[str, Any]] = {}

    def set_presentation(self, active: bool) -> None:
        """Presentation mode began (True) or ended (False): PRESENTATION_STATE is applied, then
        restored to what the user had.  A user's change made while presenting is kept.
        Override for layout changes (call super)."""
        if not self.PRESENTATION_STATE:
            return
        if active:
            if self._desktop_state is not None:
                return
            mine = self.state()
            self._desktop_state = {k: mine[k] for k in self.PRESENTATION_STATE if k in mine}
            self.restore_state(self.PRESENTATION_STATE)
            self._presented_state = {k: self.state().get(k) for k in self.PRESENTATION_STATE}
        else:
            saved, self._desktop_state = self._desktop_state, None
            if saved:
                now = self.state()
                self.restore_state({k: v for k, v in saved.items()
                                    if now.get(k) == self._presented_state.get(k)})  # not changed while presenting

    def desktop_state(self) -> dict[str, Any]:
        """state() with the user's own values where presentation mode chose others (sessions save this)."""
        state = self.state()
        saved = self._desktop_state
        if saved:
            state.update({k: v for k, v in saved.items() if state.get(k) == self._presented_state.get(k)})
        return state

    def on_close(self) -> None:
        """Override: release resources when the window closes."""
