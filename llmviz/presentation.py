"""Presentation mode: one view fills the window, large text, a side panel, clicker keys.

Entering saves the desktop layout (QMainWindow.saveState) and hides the menus, the input bar,
the status bar and every dock but one; leaving puts that state back, so the desktop layout
returns exactly.  The keys a presenter's clicker sends (Page Down/Up, arrows, Space, B, Esc)
are taken by an application event filter while the mode is on, whatever widget has focus.
Without a lesson they move between views; with one (see lesson_player.py) between its steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QByteArray, QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QWidget

from .widgets.hover_readout import HoverReadouts
from .widgets.lesson_panel import LessonPanel
from .widgets.presentation_style import PresentationStyle, text_px_for

if TYPE_CHECKING:
    from .main_window import MainWindow
    from .views.base import DockView

PANEL_NAME = "presentation-panel"
PANEL_SHARE = 0.34  # of the window's width, for the explanation beside the view
#: Restored again after these delays: the docks shown again are polished in desktop fonts only
#: when shown, and sizes restored while their large-font minimums held come out different.
RESTORE_AGAIN_MS = (50, 500)
PANEL_BELOW_SHARE = 0.3  # of its height, for the explanation under a view too wide to share
NEXT_KEYS = {Qt.Key.Key_Right, Qt.Key.Key_PageDown, Qt.Key.Key_Space, Qt.Key.Key_Down}
PREVIOUS_KEYS = {Qt.Key.Key_Left, Qt.Key.Key_PageUp, Qt.Key.Key_Up, Qt.Key.Key_Backspace}


class Navigator(Protocol):
    """What the keys drive: the views in turn, or a lesson's steps."""

    def count(self) -> int: ...
    def current(self) -> int: ...
    def go(self, index: int) -> None: ...


class _Blank(QWidget):
    """A black sheet over the whole window (the B key), as PowerPoint's."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.setObjectName("blankScreen")
        self.setStyleSheet("background: black;")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.hide()


class ViewCycle:
    """Navigation without a lesson: every view in the View menu's order."""

    def __init__(self, mode: PresentationMode) -> None:
        self.mode = mode
        self.names = list(mode.window.docks)
        self.index = 0

    def count(self) -> int:
        return len(self.names)

    def current(self) -> int:
        return self.index

    def go(self, index: int) -> None:
        self.index = max(0, min(index, len(self.names) - 1))
        name = self.names[self.index]
        self.mode.show_view(name)
        self.mode.panel.show_view(self.mode.window.view_classes[name].TITLE, self.index, len(self.names))


class PresentationMode(QObject):
    """Owns the presentation state of one MainWindow."""

    sig_changed = Signal(bool)
    """Entered (True) or left (False)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.active = False
        self.style = PresentationStyle(self)
        self.readouts = HoverReadouts(self)
        self.panel = LessonPanel()
        self.panel_dock: QDockWidget | None = None
        self.blank = _Blank(window)
        self.navigator: Navigator | None = None
        self.current_view: str | None = None
        self._beside: bool | None = None
        self._saved_state: QByteArray | None = None
        self._saved_size = None
        self._digits = ""
        self._restyle = QTimer(self)
        self._restyle.setSingleShot(True)
        self._restyle.setInterval(0)
        self._restyle.timeout.connect(self.restyle)
        window.sig_view_created.connect(self._view_created)
        for view in window.views.values():
            view.sig_ready.connect(self._view_ready)

    def _view_created(self, view: DockView) -> None:
        view.sig_ready.connect(self._view_ready)
        if self.active:
            view.set_presentation(True)

    # -- entering and leaving -------------------------------------------------------------------
    def toggle(self) -> None:
        self.leave() if self.active else self.enter()

    def enter(self, view: str | None = None) -> None:
        w = self.window
        if self.active:
            return
        self._saved_state = w.saveState(99)
        self._saved_size = w.size()
        self.active = True
        for bar in (w.menuBar(), w.top_bar, w.statusBar()):
            bar.hide()
        self.panel_dock = QDockWidget("Lesson", w)
        self.panel_dock.setObjectName(PANEL_NAME)
        self.panel_dock.setTitleBarWidget(QWidget())
        self.panel_dock.setFeatures(QDockWidget.DockWidgetFeature.NoDockWidgetFeatures)
        self.panel_dock.setWidget(self.panel)
        for dock in w.docks.values():
            dock.setTitleBarWidget(QWidget())  # no "Attent…" tabs or title strips: the view is the slide
        QApplication.instance().installEventFilter(self)
        for shown in w.views.values():
            shown.set_presentation(True)  # its presentation settings (cividis), before it is styled
        if self.navigator is None:
            self.navigator = ViewCycle(self)
            visible = [n for n, d in w.docks.items() if d.isVisible() and not d.visibleRegion().isEmpty()]
            start = view or (visible[0] if visible else next(iter(w.docks)))
            self.navigator.go(self.navigator.names.index(start) if start in w.docks else 0)
        else:
            self.navigator.go(self.navigator.current())
        self.restyle()
        self.sig_changed.emit(True)

    def leave(self) -> None:
        """Back to the desktop: the saved dock state, geometry and look, exactly."""
        w = self.window
        if not self.active:
            return
        self.active = False
        QApplication.instance().removeEventFilter(self)
        self.blank.hide()
        self.readouts.release()
        self.style.restore()
        for shown in w.views.values():
            shown.set_presentation(False)  # after the style's undo, which puts the maps it set back
        if self.panel_dock is not None:
            self.panel_dock.setWidget(None)  # the panel lives on for the next time
            self.panel.setParent(None)
            w.removeDockWidget(self.panel_dock)
            self.panel_dock.deleteLater()
            self.panel_dock = None
        for dock in w.docks.values():
            dock.setTitleBarWidget(None)
        for bar in (w.menuBar(), w.top_bar, w.statusBar()):
            bar.show()
        w.restoreState(self._saved_state, 99)
        # Once more after the desktop fonts have relaid the views out: sizes restored while the
        # large fonts' minimum sizes still held come out narrower than they were.
        state, size = self._saved_state, self._saved_size
        for delay in RESTORE_AGAIN_MS:
            QTimer.singleShot(delay, self, lambda: self.active or (w.resize(size), w.restoreState(state, 99)))
        if isinstance(self.navigator, ViewCycle):
            self.navigator = None
        self.current_view = None
        self.sig_changed.emit(False)

    def saved_layout(self) -> QByteArray | None:
        """The desktop layout presentation mode will return to (what a session saves)."""
        return self._saved_state

    # -- showing ---------------------------------------------------------------------------------
    def show_panel_only(self) -> None:
        """No view (a lesson step whose view is unknown or broken): the panel fills the window."""
        w = self.window
        self.current_view = None
        for dock in w.docks.values():
            if dock.isVisible():
                w.removeDockWidget(dock)
        if self.panel_dock is not None:
            w.removeDockWidget(self.panel_dock)
            w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.panel_dock)
            self.panel_dock.show()
            self._beside = None
        self._restyle.start()

    def show_view(self, name: str) -> None:
        """`name`'s dock alone beside the panel, filling the window."""
        w = self.window
        self.current_view = name
        target = w.docks[name]
        # A clean layout each time: every dock out, the shown one on the left, the panel on the
        # right.  (Splitting a dock that is tabbed with hidden ones leaves it off screen.)  The
        # docks stay the window's children, so leaving's restoreState puts each back.
        for dock in w.docks.values():
            if dock.isVisible() or dock is target:
                w.removeDockWidget(dock)
        target.setFloating(False)
        w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, target)
        target.show()
        w.view(name)
        self._beside = None
        self._place_panel(target, 0)
        self._restyle.start()  # then the panel moves under a view whose large-font controls need the width

    def _place_panel(self, target: QDockWidget, view_width: int) -> None:
        """The explanation beside the view when the view still fits its width, under it otherwise."""
        w, panel = self.window, self.panel_dock
        beside = view_width <= w.width() * (1 - PANEL_SHARE)
        if panel is None or beside == self._beside:
            return
        self._beside = beside
        w.removeDockWidget(panel)
        w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, panel)
        w.splitDockWidget(target, panel, Qt.Orientation.Horizontal if beside else Qt.Orientation.Vertical)
        panel.show()
        if beside:
            width = w.width()
            w.resizeDocks([target, panel], [int(width * (1 - PANEL_SHARE)), int(width * PANEL_SHARE)],
                          Qt.Orientation.Horizontal)
        else:
            height = w.height()
            w.resizeDocks([target, panel], [int(height * (1 - PANEL_BELOW_SHARE)), int(height * PANEL_BELOW_SHARE)],
                          Qt.Orientation.Vertical)

    def restyle(self) -> None:
        """Style what is on screen now (new views and freshly drawn plot items included), and put
        the panel where the view leaves room for it."""
        if not self.active:
            return
        self.style.apply(self.window, text_px_for(self.window.height()))
        self.readouts.hook(self.window)
        name = self.current_view
        if name is not None and name in self.window.views:
            content = self.window.views[name].content
            content.ensurePolished()
            if content.layout() is not None:
                content.layout().activate()
            self._place_panel(self.window.docks[name], content.minimumSizeHint().width())

    def _view_ready(self) -> None:
        if self.active:
            self._restyle.start()

    # -- keys ------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) and QApplication.activeModalWidget() is None:
            return self.handle_key(event)
        if event.type() == QEvent.Type.Resize and watched is self.window:
            self._restyle.start()
            self.blank.setGeometry(self.window.rect())
        return False

    def handle_key(self, event: QKeyEvent) -> bool:
        """The presenter's keys; True when the key was one of them."""
        key = Qt.Key(event.key())
        nav = self.navigator
        if self.blank.isVisible():
            self.blank.hide()  # any key brings the picture back
            return True
        if key == Qt.Key.Key_Escape or key == Qt.Key.Key_F5:
            self.leave()
        elif key == Qt.Key.Key_B or key == Qt.Key.Key_Period:
            self.blank.setGeometry(self.window.rect())
            self.blank.show()
            self.blank.raise_()
        elif Qt.Key.Key_0 <= key <= Qt.Key.Key_9:
            self._digits += chr(key)
            self.panel.show_jump(self._digits)
        elif key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self._digits:
            target = int(self._digits) - 1
            self._digits = ""
            self.panel.show_jump("")
            if nav is not None:
                nav.go(target)
        elif nav is None:
            return False
        elif key in NEXT_KEYS:
            nav.go(min(nav.current() + 1, nav.count() - 1))
        elif key in PREVIOUS_KEYS:
            nav.go(max(nav.current() - 1, 0))
        elif key == Qt.Key.Key_Home:
            nav.go(0)
        elif key == Qt.Key.Key_End:
            nav.go(nav.count() - 1)
        else:
            return False
        if key not in range(Qt.Key.Key_0, Qt.Key.Key_9 + 1) and self._digits and key not in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._digits = ""
            self.panel.show_jump("")
        return True
