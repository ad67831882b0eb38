"""Ending cleanly: signals turned into an exception that runs every cleanup, and child
processes that die with their parent.

The command line turns SIGINT and SIGTERM into `Interrupted`, a BaseException (so no
`except Exception` inside transformers swallows it): `finally` blocks then remove
temporary files, kill the converter child and release locks on the way out.  A child
started by llmviz asks the kernel to kill it when its parent dies (Linux
PR_SET_PDEATHSIG) and also watches its parent's pid, for other systems and for a parent
that died before the request took effect.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1
PARENT_ENV = "LLMVIZ_PARENT_PID"


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; the exit status is 128 + the signal number (130, 143)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


@contextlib.contextmanager
def signals_raise_interrupted() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise Interrupted in the main thread, once.

    Later signals are ignored until the block ends, so the cleanup the first one started
    (removing temporary files, ending a child process) is not itself cut short.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = False

    def handler(signum: int, _frame: object) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make this (child) process end when its parent does.

    On Linux the kernel sends SIGKILL when the parent dies (the request is tied to the
    parent *thread* that started the child, which waits for it).  Everywhere, a daemon
    thread also compares the parent pid with the one the parent passed in LLMVIZ_PARENT_PID
    and exits when they differ, which covers a parent that died before the request.
    """
    expected = parent_pid if parent_pid is not None else int(os.environ.get(PARENT_ENV, "0") or 0)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass  # the watcher below still works
    if not expected:
        return
    if os.getppid() != expected:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != expected:
                os._exit(1)

    threading.Thread(target=watch, name="llmviz-parent-watch", daemon=True).start()


def child_environment() -> dict[str, str]:
    """The environment for a child that should call die_with_parent()."""
    return {**os.environ, PARENT_ENV: str(os.getpid())}
