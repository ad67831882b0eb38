"""One engine process, as the window sees it: started, talked to, watched, ended.

The engine is the same executable started again (`python -m llmviz __engine__ FD PID`,
or the frozen app with the same arguments), holding one end of an unnamed socketpair.
A QThread (`_Relay`) blocks on the socket and hands every message to the GUI thread as a
queued signal, so the window never waits on the engine. When the socket ends — the
engine exited, crashed or was killed — the relay says so and `EngineProcess` reports
how the process ended, in words a user can act on.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import psutil
from PySide6.QtCore import QObject, QThread, Signal

from ..core import wire
from ..core.engine import ENGINE_COMMAND
from ..core.paths import is_frozen


def engine_command(fd: int) -> list[str]:
    """The command line that starts an engine on inherited descriptor `fd`."""
    import os

    args = [ENGINE_COMMAND, str(fd), str(os.getpid())]
    return [sys.executable, *args] if is_frozen() else [sys.executable, "-m", "llmviz", *args]


@dataclass(frozen=True)
class EngineExit:
    """How an engine process ended."""

    returncode: int | None  # None: it did not end by itself (the window killed it)
    peak_rss: int  # bytes, the most the window saw it use
    total_ram: int
    available_at_end: int  # bytes of memory the machine had available at the last sample
    gpu_peak: int = 0

    @property
    def signal_name(self) -> str | None:
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    @property
    def probably_out_of_memory(self) -> bool:
        """Killed outright while the machine's memory ran low (what the OOM killer does)."""
        return self.signal_name == "SIGKILL" and (
            self.peak_rss >= 0.5 * self.total_ram or self.available_at_end <= 0.1 * self.total_ram)

    def describe(self) -> str:
        """One sentence for the user."""
        gib = 2**30
        used = f"it used up to {self.peak_rss / gib:.1f} GiB of this machine's {self.total_ram / gib:.1f} GiB"
        if self.gpu_peak:
            used += f" and {self.gpu_peak / gib:.1f} GiB of GPU memory"
        name = self.signal_name
        if name == "SIGKILL":
            if self.probably_out_of_memory:
                return f"The model engine was killed (SIGKILL), probably because memory ran out: {used}."
            return f"The model engine was killed (SIGKILL); {used}." if self.peak_rss else \
                "The model engine was killed (SIGKILL)."
        if name == "SIGSEGV":
            return "The model engine crashed in native code (segmentation fault, SIGSEGV)."
        if name == "SIGABRT":
            return "The model engine aborted (SIGABRT), usually a fatal error in native code."
        if name == "SIGBUS":
            return "The model engine crashed (SIGBUS): a memory-mapped file it read went away or was cut short."
        if name:
            return f"The model engine was ended by {name}."
        return f"The model engine exited unexpectedly (exit code {self.returncode})."


class _Relay(QThread):
    """Reads messages off the engine's socket until it ends; emits each on the GUI thread.

    When the socket ends it also collects the process's exit status here, off the GUI
    thread: an engine that closes its socket may take seconds more to exit (freeing a
    model's memory, torch's interpreter shutdown), and the window must not wait for that.
    """

    sig_message = Signal(object)

    def __init__(self, link: wire.Wire, popen: subprocess.Popen, name: str) -> None:
        super().__init__()
        self.link = link
        self.popen = popen
        self.setObjectName(name)

    def run(self) -> None:
        try:
            while True:
                self.sig_message.emit(self.link.recv())
        except wire.Closed:
            pass
        try:
            self.popen.wait(timeout=2.0)
        except subprocess.TimeoutExpired:  # it closed the socket but lives on: end it
            self.popen.kill()
            self.popen.wait()


class EngineProcess(QObject):
    """A started engine: send it messages; its messages and its end arrive as signals."""

    sig_message = Signal(object)  # a wire message (GUI thread)
    sig_ended = Signal(object)  # EngineExit (GUI thread), once

    def __init__(self, generation: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.generation = generation
        ours, theirs = socket.socketpair()
        fd = theirs.fileno()
        # Started from the GUI thread, which lives as long as the app: the engine's
        # parent-death signal is tied to the thread that starts it.
        self.popen = subprocess.Popen(engine_command(fd), pass_fds=(fd,), stdin=subprocess.DEVNULL, close_fds=True)
        theirs.close()
        self.pid = self.popen.pid
        self.link = wire.Wire(ours)
        self.ready = False
        self.retired = False  # the window ended it on purpose: its end is not news
        self.peak_rss = 0
        self.gpu_peak = 0
        self._available = psutil.virtual_memory().available
        self._ended = False
        self._relay = _Relay(self.link, self.popen, f"llmviz-engine-relay-{generation}")
        self._relay.sig_message.connect(self._on_message)
        self._relay.finished.connect(self._on_closed)
        self._relay.start()

    # -- talking -----------------------------------------------------------------------------
    def send(self, message: Any) -> bool:
        """Send a message; False when the engine is gone (its end is reported separately)."""
        if self._ended:
            return False
        try:
            self.link.send(message)
            return True
        except wire.Closed:
            return False

    def _on_message(self, message: Any) -> None:
        if isinstance(message, wire.Ready):
            self.ready = True
        elif isinstance(message, wire.Finished) and message.gpu_peak_bytes:
            self.gpu_peak = max(self.gpu_peak, message.gpu_peak_bytes)
        self.sig_message.emit(message)

    # -- watching ------------------------------------------------------------------------------
    def rss(self) -> int:
        """The engine's resident memory now (0 once it has ended); tracks the peak."""
        try:
            now = psutil.Process(self.pid).memory_info().rss
        except psutil.Error:
            return 0
        self.peak_rss = max(self.peak_rss, now)
        self._available = psutil.virtual_memory().available
        return now

    def alive(self) -> bool:
        return not self._ended and self.popen.poll() is None

    def _on_closed(self) -> None:
        """The socket ended and the relay collected the exit status: report it."""
        if self._ended:
            return
        self._ended = True
        code = self.popen.poll()
        self.link.close()
        self.sig_ended.emit(EngineExit(code, self.peak_rss, psutil.virtual_memory().total, self._available,
                                       self.gpu_peak))

    # -- ending ----------------------------------------------------------------------------------
    def kill(self) -> None:
        """End it now (a stuck job, a restart, a discarded load)."""
        self.retired = True
        if self.popen.poll() is None:
            self.popen.kill()

    def stop(self, timeout_s: float = 1.5) -> bool:
        """Ask it to exit, kill it if it has not within `timeout_s`, and wait for the relay;
        True when it ended by itself."""
        self.retired = True
        self.send(wire.Shutdown())
        try:
            self.popen.wait(timeout=timeout_s)
            clean = True
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            clean = False
        self._relay.wait(2000)
        return clean

    def relay_running(self) -> bool:
        return self._relay.isRunning()
