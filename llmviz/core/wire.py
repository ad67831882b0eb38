"""The messages between the window and the engine process, and how they travel.

The two processes share one end each of an unnamed `socket.socketpair()`, inherited by
the engine at start: nothing another process or user on the machine can reach. Each
message is a pickle (protocol 5) whose large buffers — the numpy arrays of a result —
travel out of band: they are written straight from the array's memory and read into a
fresh writable buffer the array then uses, so a 4 MB head map costs one copy through the
kernel, not three through pickle.

Frame: 8-byte payload length, 4-byte buffer count, 8 bytes per buffer length, then the
payload and the buffers.
"""

from __future__ import annotations

import pickle
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

from .tasks import JobEnding, Progress

_HEAD = struct.Struct("!QI")
_LEN = struct.Struct("!Q")


class Closed(Exception):
    """The other end has gone (the process ended or closed its socket)."""


class Wire:
    """Framed, pickled messages over a connected stream socket. `send` is thread-safe; one
    thread at a time may `recv`."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def send(self, message: Any) -> None:
        buffers: list[pickle.PickleBuffer] = []
        payload = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
        views = [b.raw() for b in buffers]
        head = _HEAD.pack(len(payload), len(views)) + b"".join(_LEN.pack(v.nbytes) for v in views)
        try:
            with self._send_lock:
                self.sock.sendall(head)
                self.sock.sendall(payload)
                for view in views:
                    self.sock.sendall(view)
        except OSError as exc:
            raise Closed(str(exc)) from exc

    def recv(self) -> Any:
        size, count = _HEAD.unpack(self._exactly(_HEAD.size))
        lengths = [_LEN.unpack(self._exactly(_LEN.size))[0] for _ in range(count)]
        payload = self._exactly(size)
        buffers = [self._exactly(n) for n in lengths]
        return pickle.loads(payload, buffers=buffers)

    def _exactly(self, n: int) -> bytearray:
        out = bytearray(n)
        view = memoryview(out)
        got = 0
        while got < n:
            try:
                k = self.sock.recv_into(view[got:], n - got)
            except OSError as exc:
                raise Closed(str(exc)) from exc
            if k == 0:
                raise Closed("the other end closed the connection")
            got += k
        return out

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# -- window -> engine ---------------------------------------------------------------------
@dataclass(frozen=True)
class JobMessage:
    """A message about one job."""

    job_id: int


@dataclass(frozen=True)
class Submit(JobMessage):
    """Run `target(session, ctx, **kwargs)`; `target` is a dotted path (see core/targets.py)."""

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""


@dataclass(frozen=True)
class Cancel(JobMessage):
    """Cancel a queued or running job: it stops at its next `ctx.check()`."""


@dataclass(frozen=True)
class Shutdown:
    """Finish nothing more and exit."""


# -- engine -> window ---------------------------------------------------------------------
@dataclass(frozen=True)
class Hello:
    """Sent first, before the engine imports torch."""

    pid: int


@dataclass(frozen=True)
class Ready:
    """torch and transformers are imported: jobs run without that wait now."""

    import_s: float


@dataclass(frozen=True)
class StartFailed:
    """The engine could not import what it needs (a damaged install); it exits after this."""

    message: str
    details: str = ""


@dataclass(frozen=True)
class Started(JobMessage):
    """The job left the queue and runs."""


@dataclass(frozen=True)
class Progressed(JobMessage):
    progress: Progress


@dataclass(frozen=True)
class Partial(JobMessage):
    """An interim result of a running job (see TaskContext.partial)."""

    value: Any


@dataclass(frozen=True)
class Finished(JobEnding):
    """How a job ended (JobEnding), sent by the engine."""

    job_id: int = field(kw_only=True)
    sent_at: float = 0.0  # time.time() in the engine when sent (the window's receipt minus this: transfer)
    gpu_peak_bytes: int = 0
