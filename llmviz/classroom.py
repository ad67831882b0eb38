"""The classroom side of the window: lessons, sessions and the handout, with their File menu items.

Kept apart from main_window.py, which owns docks and the engine; this module only drives the
window through its public methods (load_model, set_text, view, presentation).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox

import llmviz

from .core.atomic import write_text
from .core.errors import InputError
from .core.lessons import BUILTIN, Lesson, LessonStep, dump_lesson, read_lesson
from .core.session_file import SessionData, read_session, write_session
from .core.specs import ModelSpec
from .lesson_player import LessonPlayer

if TYPE_CHECKING:
    from .main_window import MainWindow

RECENT_KEY = "sessions/recent"
LAYOUT_VERSION = 1


class Classroom(QObject):
    """Lessons (open, play, add a step, save), sessions (save, open, recent) and the PDF handout."""

    sig_lesson = Signal(object)
    """A lesson was opened (its LessonPlayer)."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.window = window
        self.player: LessonPlayer | None = None
        self.lesson_path: str | None = None
        self.dirty = False  # lesson steps added since the last save
        self.recent_menu: QMenu | None = None

    # -- menus -----------------------------------------------------------------------------------
    def add_menu_items(self, file_menu: QMenu, before: QAction) -> None:
        """Lesson, session and handout items, inserted above `before` (the Quit action)."""
        w = self.window
        items = [
            ("Open lesson…", self.open_lesson_dialog, None, "openLesson"),
            ("Open the built-in lesson (LLM Fundamentals)", lambda: self.open_lesson(BUILTIN), None, "openBuiltinLesson"),
            ("Add this view as a step", self.add_current_view_as_step, "Ctrl+Shift+A", "addStep"),
            ("Save lesson as…", self.save_lesson_dialog, None, "saveLesson"),
            ("Export lesson as PDF…", self.export_pdf_dialog, None, "exportPdf"),
            None,
            ("Save session…", self.save_session_dialog, "Ctrl+S", "saveSession"),
            ("Open session…", self.open_session_dialog, "Ctrl+Shift+O", "openSession"),
        ]
        for item in items:
            if item is None:
                file_menu.insertSeparator(before)
                continue
            text, slot, shortcut, name = item
            action = w._action(file_menu, text, slot, shortcut)  # the window's action helper
            action.setObjectName(name)
            file_menu.removeAction(action)
            file_menu.insertAction(before, action)
        self.recent_menu = QMenu("Open recent session", file_menu)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file_menu.insertMenu(before, self.recent_menu)
        file_menu.insertSeparator(before)

    def _fill_recent(self) -> None:
        menu = self.recent_menu
        menu.clear()
        recent = self.recent_sessions()
        if not recent:
            menu.addAction("(none yet)").setEnabled(False)
        for path in recent:
            menu.addAction(path, lambda p=path: self.open_session(p))

    # -- lessons ---------------------------------------------------------------------------------
    def open_lesson_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open a lesson", "", "Lessons (*.md *.txt);;All files (*)")
        if path:
            self.open_lesson(path)

    def open_lesson(self, path: str, step: int = 1, present: bool = True) -> bool:
        """Open a lesson and show step `step` (from 1) in presentation mode; False when unreadable."""
        try:
            lesson = read_lesson(path)
        except InputError as exc:
            self.window.message_bar.show_message(str(exc), "error")
            return False
        self.set_lesson(lesson, path)
        if present:
            self.window.presentation.enter()
        self.player.go(step - 1)
        return True

    def set_lesson(self, lesson: Lesson, path: str | None) -> None:
        before = None
        if self.player is not None:
            before = self.player.before  # a step added while presenting: the user's state lives on
            self.player.presentation_disconnect()
            self.player.deleteLater()
        self.player = LessonPlayer(self.window, lesson)
        self.player.before = before
        self.lesson_path = path
        self.dirty = False
        self.window.presentation.navigator = self.player
        self.sig_lesson.emit(self.player)

    def current_view_name(self) -> str | None:
        """The view the user looks at: presentation's, else the focused dock's, else the first shown."""
        w = self.window
        if w.presentation.current_view:
            return w.presentation.current_view
        focus = w.focusWidget()
        for name, dock in w.docks.items():
            if focus is not None and dock.isAncestorOf(focus):
                return name
        shown = [n for n, d in w.docks.items() if not d.visibleRegion().isEmpty() and n in w.views]
        return shown[0] if shown else None

    def add_current_view_as_step(self) -> LessonStep | None:
        """Capture the shown view, its settings, the text and model into the lesson being edited."""
        w = self.window
        name = self.current_view_name()
        if name is None:
            return None
        lesson = self.player.lesson if self.player else Lesson("Untitled lesson", (), path="untitled.md")
        view = w.view(name)
        spec = w.loaded_spec
        step = LessonStep(
            title=view.TITLE, view=name, explanation="(Write what to say about this view.)", state=view.state(),
            text=w.text_input.text() if w.text_input.text() != lesson.text else None,
            model=spec.source if spec and spec.source != lesson.model else None)
        lesson = lesson.with_step(step)
        index = self.player.index if self.player else 0
        self.set_lesson(lesson, self.lesson_path)
        self.player.index = index
        self.dirty = True
        w.statusBar().showMessage(f"Added step {len(lesson.steps)}: {view.TITLE}. Save it with File ▸ Save lesson as…", 6000)
        return step

    def save_lesson_dialog(self) -> None:
        if self.player is None:
            return
        start = self.lesson_path if self.lesson_path and self.lesson_path != BUILTIN else "lesson.md"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save the lesson", start, "Lessons (*.md)")
        if path:
            self.save_lesson(path)

    def save_lesson(self, path: str) -> None:
        write_text(path, dump_lesson(self.player.lesson))
        self.lesson_path = path
        self.dirty = False

    def confirm_close(self) -> bool:
        """Unsaved lesson steps: ask (Save / Discard / Cancel); True when the window may close."""
        if not self.dirty or self.player is None:
            return True
        answer = QMessageBox.question(
            self.window, "Unsaved lesson", "The lesson has steps that are not saved. Save them?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Save:
            self.save_lesson_dialog()
            return not self.dirty
        return answer == QMessageBox.StandardButton.Discard

    # -- handout ---------------------------------------------------------------------------------
    def export_pdf_dialog(self) -> None:
        if self.player is None:
            self.window.message_bar.show_message("Open a lesson first (File ▸ Open lesson…).", "info")
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Export the lesson as PDF", "lesson.pdf", "PDF (*.pdf)")
        if path:
            from .handout import HandoutWriter

            HandoutWriter(self.window, self.player, path).start()

    # -- sessions --------------------------------------------------------------------------------
    def session_data(self) -> SessionData:
        w = self.window
        spec = w.loaded_spec or w.requested_spec
        layout = w.presentation.saved_layout() if w.presentation.active else w.saveState(LAYOUT_VERSION)
        return SessionData(
            model_source=spec.source if spec else None, device=spec.device if spec else "auto",
            dtype=spec.dtype if spec else "auto", text=w.text_input.text(), layout=bytes(layout.data()),
            views={name: view.desktop_state() for name, view in w.views.items()},
            lesson_path=self.lesson_path if self.player else None,
            lesson_step=self.player.index + 1 if self.player else 0,
            presentation=w.presentation.active, saved_by=f"llmviz {llmviz.__version__}")

    def save_session_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.window, "Save the session", "session.llmviz.json", "Sessions (*.json)")
        if path:
            self.save_session(path)

    def save_session(self, path: str) -> None:
        write_session(path, self.session_data())
        self._remember(path)
        self.window.statusBar().showMessage(f"Saved the session to {path}", 5000)

    def open_session_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open a session", "", "Sessions (*.json);;All files (*)")
        if path:
            self.open_session(path)

    def open_session(self, path: str) -> SessionData | None:
        """Text, layout, view settings and lesson now; the model loads (a failure says so and keeps
        the rest); every view's settings are put back again once the text has run."""
        w = self.window
        try:
            data = read_session(path)
        except InputError as exc:
            w.message_bar.show_message(str(exc), "error")
            return None
        self._remember(path)
        if data.layout and not w.presentation.active:
            w.restoreState(QByteArray(data.layout), LAYOUT_VERSION)
        w.text_input.set_text(data.text)
        for name, state in data.views.items():
            if name in w.docks:
                w.view(name).restore_state(state)
            else:
                data.notes.append(f"This llmviz has no view named {name!r}; its settings were skipped.")
        w._states_to_restore = {n: s for n, s in data.views.items() if n in w.docks}  # after the trace
        if data.lesson_path and (data.lesson_path == BUILTIN or Path(data.lesson_path).exists()):
            self.open_lesson(data.lesson_path, max(1, data.lesson_step), present=data.presentation)
        elif data.presentation:
            w.presentation.enter()
        if data.notes:
            w.message_bar.show_message(" ".join(data.notes), "warning")
        if data.model_source:
            w.session_model_note = (f"The session's model {data.model_source} could not be loaded; "
                                    "the rest of the session was restored.")
            w.load_model(ModelSpec(data.model_source, data.device, data.dtype))
        elif w.info is not None:
            w.run_text()
        return data

    def recent_sessions(self) -> list[str]:
        value = self.window.settings.value(RECENT_KEY, []) or []
        return [str(v) for v in (value if isinstance(value, list) else [value]) if Path(str(v)).exists()]

    def _remember(self, path: str) -> None:
        path = str(Path(path).resolve())
        recent = [p for p in self.recent_sessions() if p != path]
        self.window.settings.setValue(RECENT_KEY, [path, *recent][:8])

    def offer_last_session(self) -> None:
        """At start: the last session, one click away (never opened unasked)."""
        recent = self.recent_sessions()
        if recent:
            QTimer.singleShot(0, self.window, lambda: self.window.message_bar.show_message(
                f"Open your last session, {Path(recent[0]).name}?", "info", "Open it",
                lambda: self.open_session(recent[0])))
