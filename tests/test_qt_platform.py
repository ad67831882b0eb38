"""Qt's platform check: missing X libraries and displays become a message, never an abort.

Run against this machine's real Qt plugin and dynamic loader: which branch a test takes
depends on what the machine has installed, and each branch is checked against `ldconfig`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from llmviz.qt_platform import XCB_PACKAGES, install_hint, missing_libraries, platform_problem, xcb_plugin

from .test_cli import ENV, llmviz, png_stats

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not shutil.which("ldd"),
                                reason="the xcb check is for Linux with ldd")
USUAL_THREE = ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1")


def loader_knows(soname: str) -> bool:
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    return f"{soname} " in out


def test_missing_libraries_match_what_the_loader_can_find():
    plugin = xcb_plugin()
    assert plugin is not None and plugin.name == "libqxcb.so"
    missing = missing_libraries(plugin)
    for soname in USUAL_THREE:
        assert (soname in missing) == (not loader_knows(soname)), (soname, missing)
    problem = platform_problem({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"})
    if missing:
        assert problem is not None and all(s in problem for s in missing)
        apt = " ".join(dict.fromkeys(XCB_PACKAGES[s][0] for s in missing if s in XCB_PACKAGES))
        assert f"apt-get install {apt}" in problem and "dnf install" in problem


def test_a_plugin_cut_off_from_qt_names_qts_own_libraries(tmp_path):
    copy = tmp_path / "libqxcb.so"  # outside PySide6, its RUNPATH finds none of Qt's libraries
    shutil.copy(xcb_plugin(), copy)
    missing = missing_libraries(copy)
    assert "libQt6XcbQpa.so.6" in missing
    assert "reinstall PySide6" in install_hint(missing)


def test_other_platforms_and_wayland_are_not_checked():
    assert platform_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert platform_problem({"WAYLAND_DISPLAY": "wayland-0"}) is None


def test_the_app_says_what_is_wrong_instead_of_aborting():
    """No X server on display :97 (and possibly missing libraries): a message, exit 2, no core dump."""
    result = llmviz("--text", "x", env={**ENV, "QT_QPA_PLATFORM": "xcb", "DISPLAY": ":97"}, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Aborted" not in result.stderr
    assert ("lacks" in result.stderr) or ("does not answer" in result.stderr)
    assert "QT_QPA_PLATFORM=offscreen" in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(not shutil.which("xvfb-run"), reason="Xvfb is not installed (.ci/run installs it where it can)")
def test_a_real_window_under_xvfb(tmp_path, tiny_models):
    out = tmp_path / "window.png"
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1920x1080x24", sys.executable, "-m", "llmviz",
           "--model", str(tiny_models["llama"]), "--text", "the cat sat", "--screenshot", str(out), "--size", "1280x720"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**ENV, "QT_QPA_PLATFORM": "xcb"})
    if missing_libraries(xcb_plugin()):
        assert result.returncode == 2 and "lacks" in result.stderr
        return
    assert result.returncode == 0, result.stderr[-2000:]
    width, height, spread = png_stats(out)
    assert (width, height) == (1280, 720) and spread > 20
