"""The main window: model bar, text input, dock views, status bar, menus, saved layout."""

from __future__ import annotations

import html
import threading
from importlib import metadata
from typing import cast

import psutil
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

import llmviz

from .classroom import Classroom
from .core import targets
from .core.errors import InputError
from .core.formatting import bytes_text
from .core.paths import resource
from .core.results import Trace
from .core.specs import ModelInfo, ModelSpec
from .core.textio import read_text_file
from .presentation import PresentationMode
from .views import VIEWS, DockView, ExplainView
from .widgets.elided_label import ElidedLabel
from .widgets.message_bar import MessageBar
from .widgets.model_bar import ModelBar
from .widgets.text_input import TextInput
from .widgets.why_button import ExplainRequest, explain_requests
from .workers.jobs import JobEvent, JobHandle, JobOutcome
from .workers.model_host import LOAD, TRACE, EngineEvent, ModelHost

LAYOUT_VERSION = 1
PROGRESS_DELAY_MS = 250  # work shorter than this shows no progress bar
STUCK_AFTER_MS = 2000  # a job that has not honoured Cancel by then is inside one long native call
DEFAULT_TEXT = "The cat sat on the mat"


class MainWindow(QMainWindow):
    """Owns the docks and routes ModelHost results to them."""

    sig_idle = Signal()
    sig_text_read = Signal(str, object)  # (path, text or InputError), from the reading thread
    """Emitted when no job is queued or running."""
    sig_view_created = Signal(object)
    """A dock's view was built (on the dock's first showing)."""

    def __init__(self, host: ModelHost, settings: QSettings, parent: QWidget | None = None,
                 persist_layout: bool = True) -> None:
        super().__init__(parent)
        self.host = host
        self.settings = settings
        self.persist_layout = persist_layout  # False for --screenshot: a shot uses the default layout
        self.info: ModelInfo | None = None
        self.loaded_spec: ModelSpec | None = None
        self.requested_spec: ModelSpec | None = None
        self.trace: Trace | None = None
        self.fallback_spec: ModelSpec | None = None
        self.env_report: dict[str, str] | None = None
        self.setWindowTitle("llmviz")
        icon = resource("icons", "llmviz.png")
        if icon.exists():
            self.setWindowIcon(QIcon(str(icon)))
        self.setDockNestingEnabled(True)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)

        self.model_bar = ModelBar()
        self.model_bar.sig_load.connect(self.load_model)
        self.text_input = TextInput()
        self.text_input.sig_text.connect(self.run_text)
        self.text_input.sig_open_file.connect(self.open_text_file)
        self.sig_text_read.connect(self._on_text_read)
        self.message_bar = MessageBar()
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.setSpacing(2)
        top_layout.addWidget(self.model_bar)
        top_layout.addWidget(self.message_bar)
        top_layout.addWidget(self.text_input)
        self.top_bar = QToolBar("Model and text")
        self.top_bar.setObjectName("input-bar")
        self.top_bar.setMovable(False)
        self.top_bar.setFloatable(False)
        self.top_bar.addWidget(top)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.top_bar)

        self.views: dict[str, DockView] = {}  # the views built so far (see view())
        self.view_classes: dict[str, type[DockView]] = {}
        self.docks: dict[str, QDockWidget] = {}
        for view_cls in VIEWS:
            self._add_view(view_cls)
        self._arrange_default()
        self._default_state = self.saveState(LAYOUT_VERSION)

        self._build_status_bar()
        self._build_menus()
        explain_requests.sig_request.connect(self.explain)
        host.sig_model_loaded.connect(self._on_model_loaded)
        host.sig_trace.connect(self._on_trace)
        host.sig_finished.connect(self._on_finished)
        host.sig_progress.connect(self._on_progress)
        host.sig_started.connect(self._on_started)
        host.sig_busy.connect(self._on_busy)
        host.sig_engine.connect(self._on_engine)
        #: Each view's state when the engine died, put back once the text has run again.
        self._states_to_restore: dict[str, dict] | None = None
        self._stuck_timer = QTimer(self)
        self._stuck_timer.setSingleShot(True)
        self._stuck_timer.setInterval(STUCK_AFTER_MS)
        self._stuck_timer.timeout.connect(self._check_stuck)
        self._cancelled_job: JobHandle | None = None
        self._memory_timer = QTimer(self)
        self._memory_timer.timeout.connect(self._update_memory)
        self._memory_timer.start(1000)
        self._update_memory()
        self.restore_layout()
        self.presentation = PresentationMode(self)
        self.classroom = Classroom(self)
        self.classroom.add_menu_items(self._file_menu, self._quit_action)
        #: Said after a failed load when a session asked for the model (the rest was restored).
        self.session_model_note = ""
        if persist_layout:
            for source in self.settings.value("models/recent", []) or []:
                self.model_bar.remember(ModelSpec(str(source)))

    # -- construction ------------------------------------------------------------------------
    def _add_view(self, view_cls: type[DockView]) -> None:
        """A dock for the view; the view itself is built the first time its dock is shown
        (most docks start as background tabs, and building them all cost start-up seconds)."""
        dock = QDockWidget(view_cls.TITLE, self)
        dock.setObjectName(view_cls.NAME)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        dock.visibilityChanged.connect(lambda visible, name=view_cls.NAME: visible and self.view(name))
        self.addDockWidget(view_cls.AREA, dock)
        self.view_classes[view_cls.NAME] = view_cls
        self.docks[view_cls.NAME] = dock

    def explain(self, request: ExplainRequest) -> None:
        """A "Why?" button: bring up the Explain dock on that target."""
        dock = self.docks.get("explain")
        if dock is None:
            return
        dock.show()
        dock.raise_()
        cast(ExplainView, self.view("explain")).explain_target(request)

    def view(self, name: str) -> DockView:
        """The view of dock `name`, built now if it was not yet, and brought up to date."""
        view = self.views.get(name)
        if view is None:
            view = self.view_classes[name](self.host)
            self.views[name] = view
            self.docks[name].setWidget(view)
            sig_show = getattr(view, "sig_show", None)
            if sig_show is not None:  # the quiz's "Show me"
                sig_show.connect(self.show_view_state)
            self.sig_view_created.emit(view)
            if self.info is not None:
                view.on_model_loaded(self.info)
                if self.trace is not None:
                    view.on_trace(self.trace)
        return view

    def show_view_state(self, name: str, state: dict) -> None:
        """Bring view `name` to the front (in presentation mode, fill the window with it) in `state`."""
        if name not in self.docks:
            return
        if self.presentation.active:
            self.presentation.show_view(name)
        else:
            dock = self.docks[name]
            dock.show()
            dock.raise_()
        self.view(name).restore_state(state)

    def _arrange_default(self) -> None:
        """Tabify docks sharing an area (in VIEWS order, the first raised): structure on the left
        for the full height, the analysis and context views on the right, the tokens below them."""
        by_area: dict[Qt.DockWidgetArea, list[QDockWidget]] = {}
        for name, dock in self.docks.items():
            by_area.setdefault(self.view_classes[name].AREA, []).append(dock)
        for docks in by_area.values():
            for other in docks[1:]:
                self.tabifyDockWidget(docks[0], other)
            docks[0].raise_()
        first = {area: docks[0] for area, docks in by_area.items()}
        left = first.get(Qt.DockWidgetArea.LeftDockWidgetArea)
        right = first.get(Qt.DockWidgetArea.RightDockWidgetArea)
        bottom = first.get(Qt.DockWidgetArea.BottomDockWidgetArea)
        if left and right:
            self.resizeDocks([left, right], [400, 1000], Qt.Orientation.Horizontal)
        if right and bottom:
            self.resizeDocks([right, bottom], [640, 300], Qt.Orientation.Vertical)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.model_label = ElidedLabel("No model")
        self.engine_label = ElidedLabel()
        self.engine_label.setObjectName("engineState")
        self.memory_label = QLabel()
        self.progress_label = ElidedLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Cancel the running work (Esc)")
        self.cancel_button.clicked.connect(self.cancel)
        bar.addWidget(self.model_label, 1)
        bar.addPermanentWidget(self.engine_label)
        bar.addPermanentWidget(self.progress_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.memory_label)
        self._set_progress_visible(False)
        # Work shorter than PROGRESS_DELAY_MS (a head switch, a similarity redraw) shows no
        # progress at all, as QProgressDialog's minimumDuration does: flashing the bar
        # relaid out the status bar on the GUI thread in the middle of every such job.
        self._show_timer = QTimer(self)
        self._show_timer.setSingleShot(True)
        self._show_timer.setInterval(PROGRESS_DELAY_MS)
        self._show_timer.timeout.connect(lambda: self._set_progress_visible(self.host.busy))
        self._idle_timer = QTimer(self)
        self._idle_timer.setSingleShot(True)
        self._idle_timer.setInterval(300)
        self._idle_timer.timeout.connect(lambda: self._set_progress_visible(self.host.busy))

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Load model", self.model_bar.request_load, "Ctrl+L")
        self._action(file_menu, "Open text file…", self.open_text_file, QKeySequence.StandardKey.Open)
        file_menu.addSeparator()
        self._quit_action = self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        self._file_menu = file_menu
        view_menu = self.menuBar().addMenu("&View")
        for name, dock in self.docks.items():
            action = dock.toggleViewAction()
            action.setObjectName(f"view-{name}")
            view_menu.addAction(action)
        view_menu.addSeparator()
        self._action(view_menu, "Reset layout", self.reset_layout)
        present = self._action(view_menu, "Presentation", lambda: self.presentation.toggle(), "F5")
        present.setObjectName("presentation")
        self.addAction(present)  # F5 works while the menu bar is hidden too
        run_menu = self.menuBar().addMenu("&Run")
        self._action(run_menu, "Run now", self.text_input.emit_now, "Ctrl+Return")
        self._action(run_menu, "Cancel", self.cancel, "Esc")
        run_menu.addSeparator()
        self._action(run_menu, "Restart engine", lambda: self.host.restart_engine())
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "About llmviz", self.show_about)

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # -- layout persistence --------------------------------------------------------------------
    def restore_layout(self) -> None:
        """Restore the saved geometry and docks, unless the set of docks changed since (a new
        version's docks would otherwise land wherever the old state leaves them)."""
        if not self.persist_layout:
            return
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        if isinstance(state, QByteArray) and self.settings.value("window/docks") == ",".join(self.docks):
            self.restoreState(state, LAYOUT_VERSION)

    def save_layout(self) -> None:
        if not self.persist_layout:
            return
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.setValue("window/docks", ",".join(self.docks))
        self.settings.setValue("models/recent", self.model_bar.recent()[-10:])
        self.settings.sync()

    def reset_layout(self) -> None:
        for dock in self.docks.values():
            dock.setFloating(False)
        self.restoreState(self._default_state, LAYOUT_VERSION)
        for dock in self.docks.values():
            dock.show()

    # -- model and text ------------------------------------------------------------------------
    def load_model(self, spec: ModelSpec) -> None:
        """Ask the worker for a model; the current one stays until the new one has loaded."""
        self.requested_spec = spec
        self.message_bar.dismiss()
        self.model_bar.set_spec(spec)
        self.host.load(spec)

    def run_text(self, text: str | None = None) -> None:
        if self.info is None:
            return
        self.host.run_text(self.text_input.text() if text is None else text)

    def set_text(self, text: str) -> None:
        self.text_input.set_text(text)

    def open_text_file(self, path: str | None = None) -> None:
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Open a UTF-8 text file", "",
                                                  "Text (*.txt *.md *.csv *.json);;All files (*)")
            if not path:
                return
        self.statusBar().showMessage(f"Reading {path}…")
        threading.Thread(target=self._read_text, args=(path,), name="llmviz-open-text", daemon=True).start()

    def _read_text(self, path: str) -> None:
        """On a thread: a pipe or a slow network file may take seconds, the window must not wait."""
        try:
            self.sig_text_read.emit(path, read_text_file(path))
        except InputError as exc:
            self.sig_text_read.emit(path, exc)

    def _on_text_read(self, path: str, result: object) -> None:
        self.statusBar().clearMessage()
        if isinstance(result, InputError):
            self.message_bar.show_message(f"{result} The text shown was kept.", "error")
        elif isinstance(result, str):
            self.text_input.set_text(result, emit=True)

    def cancel(self) -> None:
        """The user's Stop: cancel everything; a job still running after STUCK_AFTER_MS (one long
        native call that never reaches a cancel check) gets the offer to restart the engine."""
        self._cancelled_job = self.host.running_job()
        self.host.cancel_all()
        if self._cancelled_job is not None:
            self._stuck_timer.start()

    def _check_stuck(self) -> None:
        job = self._cancelled_job
        if job is not None and job is self.host.running_job():
            self.message_bar.show_message(
                f"“{job.label}” did not stop within {STUCK_AFTER_MS / 1000:.0f} s: it is inside one long call that "
                "cannot be interrupted. Restarting the engine ends it at once and loads the model again.",
                "warning", "Restart the engine", self.host.restart_engine)

    def _on_engine(self, event: EngineEvent) -> None:
        """The engine started, became ready, died (and is restarting), recovered, or failed."""
        if event.state == "starting":
            self.engine_label.setText("Starting the model engine…")
        elif event.state == "ready":
            self.engine_label.setText("")
            self.engine_label.setToolTip(f"{event.message} · pid {event.pid}")
        elif event.state == "died":
            if self._states_to_restore is None:
                self._states_to_restore = {name: view.state() for name, view in self.views.items()}
            self.message_bar.show_message(event.message, "error")
        elif event.state == "recovered":
            self.message_bar.show_message(f"The model engine was restarted. {event.message}", "info")
        elif event.state == "failed":
            self._states_to_restore = None
            self.engine_label.setText("")
            self.message_bar.show_message(event.message, "error")

    # -- host signals (GUI thread) -------------------------------------------------------------
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.info = info
        self.session_model_note = ""
        self.loaded_spec = self.requested_spec
        if self.loaded_spec is not None:
            self.model_bar.remember(self.loaded_spec)
        self.setWindowTitle(f"llmviz — {info.title}")
        self.model_label.setText(f"{info.title} · {info.num_parameters:,} params · {info.dtype} · {info.device}")
        self.model_label.setToolTip(info.summary() + ("\n" + "\n".join(info.notes) if info.notes else ""))
        if info.notes:
            self.message_bar.show_message(" ".join(info.notes), "info")
        for view in self.views.values():
            if view.isVisible():
                view.prepare(info)  # short work that would otherwise freeze the first results
        self.run_text()  # then the text's trace, which most views wait for
        for view in self.views.values():
            view.on_model_loaded(info)
        if self.env_report is None:
            self.host.call(targets.ENVIRONMENT_REPORT, label="Reading versions", on_done=self._environment_read)

    def _on_trace(self, trace: Trace) -> None:
        self.trace = trace
        if trace.truncated_from:
            self.text_input.set_notice(
                f"⚠ The text has {trace.truncated_from:,} tokens; {self.info.title if self.info else 'the model'} "
                f"accepts {trace.num_tokens:,}, so the views show the first {trace.num_tokens:,}.", warn=True)
        elif trace.is_empty:
            self.text_input.set_notice("No tokens: type some text." if not trace.text.strip() else
                                       "This text produced no tokens for this model.")
        else:
            t = trace.timings
            self.text_input.set_notice(f"{trace.num_tokens:,} tokens · forward {t.get('forward_s', 0) * 1000:.0f} ms")
        for view in self.views.values():
            view.on_trace(trace)
        if self._states_to_restore is not None:  # the engine was restarted: put back what each view showed
            states, self._states_to_restore = self._states_to_restore, None
            for name, state in states.items():
                if name in self.views and state:
                    self.views[name].restore_state(state)

    def _environment_read(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            self.env_report = outcome.value

    def _on_finished(self, outcome: JobOutcome) -> None:
        if outcome.channel == LOAD and not outcome.ok:
            current = f" Still using {self.info.title}." if self.info else ""
            if outcome.status == "cancelled":
                self.message_bar.show_message(f"Loading was cancelled.{current}", "info")
            else:
                note, self.session_model_note = self.session_model_note, ""
                self.message_bar.show_message(f"{outcome.message}{current} {note}".strip(), "error")
            if self.loaded_spec is not None:
                self.model_bar.set_spec(self.loaded_spec)
            elif self.fallback_spec is not None and self.requested_spec != self.fallback_spec:
                self._warn_dialog("Model not loaded", f"{outcome.message}\n\nOpening {self.fallback_spec.source} instead.")
                self.load_model_keep_message(self.fallback_spec)
        elif outcome.channel == TRACE and outcome.status == "failed":
            self.message_bar.show_message(outcome.message, "error")
        elif outcome.status == "failed" and outcome.details:
            self.statusBar().showMessage(outcome.message, 8000)

    def _warn_dialog(self, title: str, text: str) -> None:
        """A non-modal dialog: it never blocks the event loop (or a --screenshot run)."""
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("loadFailedDialog")
        box.open()

    def load_model_keep_message(self, spec: ModelSpec) -> None:
        """Fall back to `spec` (the default model) after the first requested one failed."""
        self.requested_spec = spec
        self.model_bar.set_spec(spec)
        self.host.load(spec)

    def _on_started(self, handle: JobHandle) -> None:
        self.progress_label.setText(handle.label)

    def _on_progress(self, event: JobEvent) -> None:
        p = event.progress
        self.progress_label.setText(p.stage + (f" ({p.detail})" if p.detail else ""))
        if p.fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(p.fraction * 1000))

    def _on_busy(self, busy: bool) -> None:
        if busy:
            self._idle_timer.stop()
            if not self.progress.isVisibleTo(self) and not self._show_timer.isActive():
                self._show_timer.start()
        else:
            self._show_timer.stop()
            self._idle_timer.start()  # jobs that follow one another (generation steps) don't flicker the bar
            self.sig_idle.emit()

    def _set_progress_visible(self, visible: bool) -> None:
        for w in (self.progress, self.progress_label, self.cancel_button):
            w.setVisible(visible)
        if not visible:
            self.progress_label.clear()

    def _update_memory(self) -> None:
        own = psutil.Process().memory_info().rss
        engine = self.host.engine_rss()
        self.memory_label.setText(f"RAM {bytes_text(own + engine, 2)}")
        self.memory_label.setToolTip(f"window {bytes_text(own)} · model engine {bytes_text(engine)}")

    # -- about, closing ------------------------------------------------------------------------
    def about_text(self) -> str:
        from PySide6 import __version__ as pyside
        from PySide6.QtCore import qVersion

        rows = {"llmviz": llmviz.__version__, "Qt": f"{qVersion()} (PySide6 {pyside})"}
        for pkg in ("torch", "transformers", "accelerate", "bitsandbytes", "pyqtgraph"):
            try:
                rows[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                rows[pkg] = "not installed"
        for key, value in (self.env_report or {}).items():
            if key.startswith("CUDA") or key == "Python":
                rows[key] = value
        body = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>{html.escape(v)}</td></tr>" for k, v in rows.items())
        return (f"<h3>llmviz {llmviz.__version__}</h3><p>A desktop application for looking inside transformer "
                f"language models.</p><table cellspacing=4>{body}</table>")

    def show_about(self) -> None:
        box = QMessageBox(self)
        box.setWindowTitle("About llmviz")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.about_text())
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        box.open()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.classroom.confirm_close():
            event.ignore()
            return
        self.presentation.leave()  # the desktop layout is the one saved
        self.save_layout()
        for view in self.views.values():
            view.on_close()
        self.host.shutdown()
        super().closeEvent(event)


def application() -> QApplication:
    app = QApplication.instance() or QApplication([])
    app.setApplicationName("llmviz")
    app.setOrganizationName("llmviz")
    app.setApplicationDisplayName("llmviz")
    return app
