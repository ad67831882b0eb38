"""Can Qt open a window here? Asked before QApplication exists, because Qt's answer is an abort.

On Linux, Qt's xcb platform plugin needs X libraries that minimal installs lack
(libxcb-cursor0, libxcb-icccm4, libxcb-keysyms1 are the usual three); without them, or
without a reachable X display, creating the QApplication prints a hint and calls abort().
This module finds both conditions first, with `ldd` on the plugin the app would load, and
turns them into a message naming the libraries and the commands that install them.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

#: Shared libraries Qt's xcb plugin needs that distributions package separately:
#: soname -> (Debian/Ubuntu package, Fedora/RHEL package).
XCB_PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
}
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found", re.MULTILINE)


def xcb_plugin() -> Path | None:
    """The xcb platform plugin this process's Qt would load, if it exists."""
    try:
        from PySide6.QtCore import QLibraryInfo

        folder = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    except ImportError:
        return None
    candidate = folder / "platforms" / "libqxcb.so"
    if candidate.exists():
        return candidate
    import PySide6

    fallback = Path(PySide6.__file__).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return fallback if fallback.exists() else None


def missing_libraries(plugin: Path) -> list[str]:
    """Sonames the dynamic loader cannot find for `plugin` (and what it links), by `ldd`;
    by a test load when `ldd` is absent, which names only the first."""
    ldd = shutil.which("ldd")
    if ldd:
        try:
            out = subprocess.run([ldd, str(plugin)], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return list(dict.fromkeys(_NOT_FOUND.findall(out)))
    import ctypes

    try:
        ctypes.CDLL(str(plugin))
    except OSError as exc:
        match = re.search(r"(\S+\.so[.\d]*): cannot open shared object file", str(exc))
        return [match.group(1)] if match else []
    return []


def install_hint(sonames: list[str]) -> str:
    """What installs `sonames`: apt and dnf commands for the system's X libraries, a reinstall
    of PySide6 (or of the app) for Qt's own."""
    known = [XCB_PACKAGES[s] for s in sonames if s in XCB_PACKAGES]
    parts = []
    if known:
        apt = " ".join(dict.fromkeys(p[0] for p in known))
        dnf = " ".join(dict.fromkeys(p[1] for p in known))
        parts.append(f"Install them with:\n  sudo apt-get install {apt}    (Debian, Ubuntu)\n"
                     f"  sudo dnf install {dnf}    (Fedora, RHEL)")
    if len(known) < len(sonames):
        parts.append("Qt's own libraries are among them: reinstall PySide6 (make install) or rebuild the app.")
    return "\n".join(parts)


def _uses_xcb(env: dict[str, str]) -> bool:
    """Whether Qt would start with its xcb plugin under `env` (Linux only)."""
    requested = [p.split(":")[0].strip() for p in env.get("QT_QPA_PLATFORM", "").split(";") if p.strip()]
    if requested:
        return requested[0] == "xcb"
    return not env.get("WAYLAND_DISPLAY")


def _display_reachable(display: str) -> bool:
    """A local X display ':N' answers on its socket; remote displays are assumed reachable."""
    match = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if not match:
        return True
    path = f"/tmp/.X11-unix/X{match.group(1)}"
    for address in (path, "\0" + path):  # filesystem socket, then Linux's abstract one
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            try:
                s.connect(address)
                return True
            except OSError:
                continue
    return False


WITHOUT_A_WINDOW = ("Without a window: QT_QPA_PLATFORM=offscreen python -m llmviz --screenshot shot.png, "
                    "or run it under xvfb-run.")


def platform_problem(env: dict[str, str] | None = None) -> str | None:
    """Why Qt could not open a window here, in plain words, or None when it can (or when the
    platform is not xcb, which this check does not cover)."""
    env = dict(os.environ) if env is None else env
    if not sys.platform.startswith("linux") or not _uses_xcb(env):
        return None
    display = env.get("DISPLAY", "")
    plugin = xcb_plugin()
    if plugin is not None:
        missing = missing_libraries(plugin)
        if missing:
            return (f"Qt cannot open a window: its X11 (xcb) platform plugin needs {', '.join(missing)}, "
                    f"which this machine lacks. {install_hint(missing)}\n{WITHOUT_A_WINDOW}")
    if not display:
        return f"There is no display to open a window on (DISPLAY is not set). {WITHOUT_A_WINDOW}"
    if not _display_reachable(display):
        return f"The X display {display} does not answer (is the X server running?). {WITHOUT_A_WINDOW}"
    return None
