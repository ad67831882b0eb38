"""Running `python -m llmviz` as a user would, and checking how it failed.

Every fault case starts the real command line in a subprocess (with resource limits set
in `preexec_fn`, real signals, real read-only places) and then asserts the same things:
a non-zero exit, one paragraph naming the problem, no traceback, nothing partial written,
no process left running and no temporary file or folder left behind.
"""

from __future__ import annotations

import os
import re
import resource
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
ENV.pop("LLMVIZ_DEBUG", None)
TEMP_MARKS = (".llmviz-part", ".llmviz-probe")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def messages(self) -> str:
        """stderr without the progress line (rewritten in place with \\r)."""
        lines = []
        for line in self.stderr.splitlines():
            last = line.split("\r")[-1].strip()
            if last:
                lines.append(last)
        return "\n".join(lines)


def limit(kind: int, nbytes: int) -> Callable[[], None]:
    """A preexec_fn setting one resource limit (soft and hard) in the child only."""
    def apply() -> None:
        resource.setrlimit(kind, (nbytes, nbytes))
    return apply


def env_with(**extra: str | None) -> dict[str, str]:
    env = dict(ENV)
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmviz", *args]


def run_cli(*args: str, env: dict[str, str] | None = None, preexec: Callable[[], None] | None = None,
            timeout: float = 600, stdin: int | None = subprocess.DEVNULL, input: str | None = None) -> Result:
    started = time.monotonic()
    proc = subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout, env=env or ENV,
                          cwd=ROOT, preexec_fn=preexec, stdin=None if input is not None else stdin, input=input)
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start the command line with stderr readable line by line (progress arrives with \\r)."""
    return subprocess.Popen(command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            env=env or ENV, cwd=ROOT)


def wait_for(proc: subprocess.Popen, pattern: str, timeout: float = 300) -> str:
    """Read the process's stderr until `pattern` appears; returns what was read."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    fd = proc.stderr.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
            if re.search(pattern, seen.decode(errors="replace")):
                return seen.decode(errors="replace")
    raise AssertionError(f"{pattern!r} did not appear within {timeout:g} s; stderr so far:\n"
                         + seen.decode(errors="replace")[-3000:])


def finish(proc: subprocess.Popen, already: str = "", timeout: float = 120) -> Result:
    out, err = proc.communicate(timeout=timeout)
    return Result(proc.returncode, out.decode(errors="replace"), already + err.decode(errors="replace"), 0.0)


def interrupt(proc: subprocess.Popen, signum: int, already: str) -> Result:
    """Send `signum` (a real signal) and collect how the process ended."""
    descendants = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signum)
    result = finish(proc, already)
    gone, alive = psutil.wait_procs(descendants, timeout=10)
    assert not alive, f"child processes outlived the command line: {[p.pid for p in alive]}"
    return result


def leftover_processes(marker: str) -> list[psutil.Process]:
    """Processes still running whose command line mentions `marker` (a test's own temporary path)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if p.pid != os.getpid() and marker in " ".join(p.info["cmdline"] or ()):
                found.append(p)
        except psutil.Error:
            continue
    return found


def _is_temporary(path: Path) -> bool:
    name = path.name
    return any(mark in name for mark in TEMP_MARKS) or (
        name.startswith("smollm2") and re.search(r"\.[a-z0-9_]{8}$", name) is not None and path.is_dir())


def temporaries_under(*folders: Path, deep: bool = True) -> list[Path]:
    """llmviz temporary files and conversion folders left in `folders` (and below, with `deep`)."""
    found = []
    for folder in folders:
        if not folder.is_dir():
            continue
        try:
            found += [p for p in (folder.rglob("*") if deep else folder.iterdir()) if _is_temporary(p)]
        except OSError:
            continue
    return found


def assert_refused(result: Result, pattern: str, *, nothing_in: Sequence[Path] = (), absent: Sequence[Path] = (),
                   marker: str | None = None, code: int | None = None) -> None:
    """The fault suite's common verdict on a run that should have been refused."""
    text = result.messages
    assert result.returncode != 0, f"expected a failure, got exit 0:\n{result.stderr[-2000:]}"
    if code is not None:
        assert result.returncode == code, f"exit {result.returncode}, expected {code}:\n{text[-2000:]}"
    assert "Traceback" not in result.stderr, result.stderr[-4000:]
    assert re.search(pattern, text, re.S | re.I), f"{pattern!r} not in:\n{text[-2000:]}"
    final = [line for line in text.splitlines() if re.match(r"(error|llmviz|export): ", line)]
    assert len(final) == 1, f"expected one message paragraph, got {final}:\n{text[-2000:]}"
    assert result.stdout == "", f"something was reported as written: {result.stdout!r}"
    for path in absent:
        assert not path.exists(), f"{path} was left behind"
    for folder in nothing_in:
        left = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        assert not left, f"{folder} holds {left}"
    assert not temporaries_under(*nothing_in), "temporary files were left behind"
    assert not temporaries_under(*(p.parent for p in absent), deep=False), "temporary files were left behind"
    if marker:
        assert not leftover_processes(marker), "processes were left running"


def mount_tmpfs(where: Path, options: str) -> bool:
    """Mount a tmpfs (root only); False where this machine does not allow it."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    return done.returncode == 0


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143)}
