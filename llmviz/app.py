"""Starting the GUI: window, first model, and the --screenshot driver."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QSocketNotifier, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from .core.bundled import DEFAULT_MODEL
from .core.errors import LlmvizError
from .core.specs import ModelSpec
from .main_window import DEFAULT_TEXT, MainWindow, application
from .workers.jobs import JobOutcome
from .workers.model_host import LOAD, TRACE, EngineEvent, ModelHost

SETTINGS_ENV = "LLMVIZ_SETTINGS"


def make_settings() -> QSettings:
    """Per-user QSettings; LLMVIZ_SETTINGS=path.ini keeps tests and benchmarks away from the user's."""
    path = os.environ.get(SETTINGS_ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings("llmviz", "llmviz")


class ScreenshotDriver(QObject):
    """Waits until the model is loaded, the text has run and the shown views have drawn; then saves."""

    def __init__(self, window: MainWindow, path: Path, dock: str | None, timeout_s: float,
                 presentation: bool = False) -> None:
        super().__init__(window)
        self.window, self.path, self.dock = window, path, dock
        self.exit_code: int | None = None
        self._capture_pending = False
        window.host.sig_finished.connect(self._on_finished)
        window.host.sig_engine.connect(self._on_engine)
        window.sig_idle.connect(self.check)
        for view in window.views.values():
            view.sig_ready.connect(self.check)
        window.sig_view_created.connect(lambda view: view.sig_ready.connect(self.check))
        self._timeout = QTimer(self)
        self._timeout.setSingleShot(True)
        self._timeout.timeout.connect(lambda: self.fail(f"timed out after {timeout_s:.0f} s waiting for the views"))
        self._timeout.start(int(timeout_s * 1000))
        self.presentation = presentation
        if dock and not presentation:
            # Shot on its own at the shot's size: in the default layout a dock may be a short strip
            # or one tab of several, too small to show its view.  The other docks are hidden, so
            # that no tab uncovered by floating this one starts work of its own.  (The layout is
            # not saved.)
            for name, other in window.docks.items():
                if name != dock:
                    other.hide()
            d = window.docks[dock]
            d.show()
            d.setFloating(True)
            d.resize(window.size())
            d.raise_()
            window.view(dock)

    def targets(self) -> list:
        if self.presentation and self.window.presentation.current_view:
            return [self.window.view(self.window.presentation.current_view)]
        if self.dock:
            return [self.window.view(self.dock)]
        return [v for name, v in self.window.views.items() if self.window.docks[name].isVisible() and v.isVisible()]

    def _on_finished(self, outcome: JobOutcome) -> None:
        if outcome.channel in (LOAD, TRACE) and outcome.status == "failed":
            self.fail(outcome.message)

    def _on_engine(self, event: EngineEvent) -> None:
        """A restart keeps the promise (the shot is taken once the views have drawn again); an
        engine that cannot start, or dies again while recovering, ends the run."""
        if event.state == "died":
            self._capture_pending = False
            print(f"llmviz: {event.message}", file=sys.stderr, flush=True)
        elif event.state == "failed":
            self.fail(event.message)

    def check(self) -> None:
        w = self.window
        if self._capture_pending or w.info is None or w.trace is None or w.host.busy:
            return
        if all(v.is_ready() for v in self.targets()):
            self._capture_pending = True
            QTimer.singleShot(400, self.capture)  # let pending paints land and the progress bar hide

    def capture(self) -> None:
        QApplication.processEvents()  # deliver what is queued first: it may start more work
        if not all(v.is_ready() for v in self.targets()) or self.window.host.busy:
            self._capture_pending = False
            return
        if self.presentation:
            self.window.presentation.restyle()  # items drawn since the last styling
            QApplication.processEvents()
        widget: QWidget = self.window.docks[self.dock] if self.dock and not self.presentation else self.window
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not widget.grab().save(str(self.path)):
            self.fail(f"could not write {self.path}")
            return
        print(f"saved {self.path}")
        self.finish(0)

    def fail(self, message: str) -> None:
        print(f"error: {message}", file=sys.stderr)
        self.finish(2)

    def finish(self, code: int) -> None:
        if self.exit_code is None:
            self.exit_code = code
            self._timeout.stop()
            self.window.close()
            QApplication.instance().exit(code)


def run_app(args: argparse.Namespace, text: str | None) -> int:
    from .views import view_names

    if args.dock and args.dock not in view_names():
        print(f"error: no dock named {args.dock!r}; docks: {', '.join(view_names())}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    app = application()
    host = ModelHost()  # starts the engine process now: its torch import overlaps the window's start
    window = MainWindow(host, make_settings(), persist_layout=not (args.screenshot or getattr(args, "export_pdf", None)))
    spec = ModelSpec(args.model, args.device, args.dtype, args.trust_remote_code)
    if args.size:
        window.resize(*args.size)
    elif args.screenshot:
        window.resize(1600, 1000)
    driver = None
    if args.screenshot:
        driver = ScreenshotDriver(window, Path(args.screenshot), args.dock, args.timeout,
                                  presentation=bool(getattr(args, "presentation", False) or getattr(args, "lesson", None)))
    elif spec.source != DEFAULT_MODEL:
        window.fallback_spec = ModelSpec(DEFAULT_MODEL)
    window.set_text(DEFAULT_TEXT if text is None else text)
    window.show()
    if args.quit_when_shown:
        QTimer.singleShot(0, lambda: (print(f"window-shown {time.perf_counter() - started:.3f}", flush=True), app.quit()))
    elif not start_classroom(window, args, spec):
        QTimer.singleShot(0, lambda: window.load_model(spec))
    with quit_on_signals(app) as stopped:
        code = app.exec()
    host.shutdown()  # the window's closeEvent did it already, unless the event loop was left otherwise
    if stopped:
        print(f"llmviz: stopped by {stopped[0].name}.", file=sys.stderr)
        return 128 + stopped[0].value
    return driver.exit_code if driver and driver.exit_code is not None else code


def start_classroom(window: MainWindow, args: argparse.Namespace, spec: ModelSpec) -> bool:
    """--session, --lesson/--step, --presentation and --export-pdf; True when they load the model."""
    classroom = window.classroom
    if getattr(args, "session", None):
        data = classroom.open_session(args.session)
        if data is not None and data.model_source:
            return True
    if getattr(args, "lesson", None):
        if not classroom.open_lesson(args.lesson, max(1, args.step)):
            print(f"error: {window.message_bar.text}", file=sys.stderr)
            QTimer.singleShot(0, lambda: QApplication.instance().exit(2))
            return True
        if getattr(args, "export_pdf", None):
            from .handout import HandoutWriter

            writer = HandoutWriter(window, classroom.player, args.export_pdf)
            writer.sig_done.connect(lambda path, what: (print(f"saved {path} ({what})", flush=True),
                                                        window.close(), QApplication.instance().exit(0)))
            QTimer.singleShot(0, writer.start)
        if classroom.player.lesson.model or window.requested_spec is not None:
            return True
    elif getattr(args, "presentation", False):
        window.presentation.enter(args.dock)
    elif getattr(args, "export_pdf", None):
        print("error: --export-pdf needs --lesson FILE (or --lesson builtin)", file=sys.stderr)
        QTimer.singleShot(0, lambda: QApplication.instance().exit(2))
        return True
    if not args.screenshot and not getattr(args, "session", None) and getattr(window, "persist_layout", False):
        classroom.offer_last_session()
    return False


@contextlib.contextmanager
def quit_on_signals(app: QApplication) -> Iterator[list[signal.Signals]]:
    """SIGINT (Ctrl-C) and SIGTERM close the window as Quit does: the layout is saved and the
    engine ended. Python runs signal handlers only between bytecodes, which the Qt event loop
    rarely executes, so the signal is written to a socket that a QSocketNotifier watches."""
    received: list[signal.Signals] = []
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)

    def on_wake() -> None:
        try:
            data = theirs.recv(16)
        except OSError:
            return
        for number in data:
            if not received:
                received.append(signal.Signals(number))
                for window in app.topLevelWidgets():
                    if isinstance(window, MainWindow):
                        window.close()
                app.exit(128 + number)

    notifier = QSocketNotifier(theirs.fileno(), QSocketNotifier.Type.Read)
    notifier.activated.connect(on_wake)
    previous_fd = signal.set_wakeup_fd(ours.fileno())
    previous = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(previous_fd)
        notifier.setEnabled(False)
        ours.close()
        theirs.close()


def main_gui(args: argparse.Namespace) -> int:
    from .cli import read_text_arg
    from .qt_platform import platform_problem

    if getattr(args, "export_pdf", None) and not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a handout needs no display
    problem = platform_problem()
    if problem:
        print(f"llmviz: {problem}", file=sys.stderr)
        return 2
    try:
        text = read_text_arg(args)
    except LlmvizError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return run_app(args, text)
