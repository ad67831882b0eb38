"""The packaged (PyInstaller) app, run as a user would: no Python on PATH, no network, no HF cache.

Builds dist/llmviz with scripts/package.py (minutes) unless LLMVIZ_PACKAGED_APP points to a
build.  Skipped when PyInstaller is not installed (the default `make test`); `make
package-test` (run by .ci/run) installs it and runs this file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("PyInstaller", reason="PyInstaller is not installed (make package-test installs it)")
pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def app() -> Path:
    given = os.environ.get("LLMVIZ_PACKAGED_APP")
    if given:
        return Path(given).resolve()
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "package.py")], cwd=ROOT, timeout=3600)
    assert result.returncode == 0, "the PyInstaller build failed"
    return ROOT / "dist" / "llmviz" / "llmviz"


def run_frozen(app: Path, tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Start the app with a bare environment: no Python on PATH, an empty HF cache, offline."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen",
            "HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_OFFLINE": "1",
            "LLMVIZ_CACHE_DIR": str(tmp_path / "cache"), "LLMVIZ_SETTINGS": str(tmp_path / "s.ini")}
    return subprocess.run([str(app), *args], capture_output=True, text=True, timeout=600, env={**bare, **(env or {})})


def image_stats(path: Path) -> tuple[int, int, float]:
    from PySide6.QtGui import QImage

    image = QImage(str(path)).convertToFormat(QImage.Format.Format_Grayscale8)
    arr = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).reshape(image.height(), image.bytesPerLine())
    return image.width(), image.height(), float(arr[:, : image.width()].std())


def test_frozen_app_shows_the_bundled_model_offline(app, tmp_path):
    out = tmp_path / "out.png"
    result = run_frozen(app, tmp_path, "--model", "bundled:smollm2", "--text", "The cat sat on the mat",
                        "--screenshot", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    width, height, spread = image_stats(out)
    assert (width, height) == (1600, 1000) and spread > 20  # a real window, not a blank image
    assert not (tmp_path / "cache" / "smollm2-135m-instruct-q4_1").exists()  # used the packaged conversion


def test_frozen_export(app, tmp_path):
    result = run_frozen(app, tmp_path, "export", "--model", "bundled:minilm", "--text", "the cat sat",
                        "--out", str(tmp_path / "export"))
    assert result.returncode == 0, result.stderr[-2000:]
    attention = np.load(tmp_path / "export" / "attention.npz")["attention"]
    assert attention.shape == (6, 12, 5, 5)


def test_frozen_app_with_a_bad_model(app, tmp_path):
    result = run_frozen(app, tmp_path, "--model", "no-such-user/no-such-model", "--screenshot", str(tmp_path / "x.png"))
    assert result.returncode != 0
    assert "not in the local Hugging Face cache" in result.stderr and "Traceback" not in result.stderr


def test_frozen_app_with_damaged_bundled_data(app, tmp_path):
    """A package whose model files were damaged says so, instead of a traceback."""
    resources = app.parent / "_internal" / "resources"
    broken = tmp_path / "resources"
    broken.mkdir()
    for entry in resources.iterdir():
        if entry.name != "models":
            (broken / entry.name).symlink_to(entry)
    (broken / "models").mkdir()
    for entry in (resources / "models").iterdir():
        if entry.name != "manifest.json":
            (broken / "models" / entry.name).symlink_to(entry)
    manifest = (resources / "models" / "manifest.json").read_text().replace('"model.safetensors": ', '"model.safetensors": 1')
    (broken / "models" / "manifest.json").write_text(manifest)
    result = run_frozen(app, tmp_path, "export", "--model", "bundled:smollm2", "--text", "x", "--out", str(tmp_path / "o"),
                        env={"LLMVIZ_RESOURCES": str(broken)})
    assert result.returncode != 0
    assert "package is incomplete or damaged" in result.stderr and "Traceback" not in result.stderr


def test_the_app_carries_every_runtime_dependencys_data_and_metadata(app):
    """Each distribution llmviz needs at run time has its metadata in the app, and each package
    without a PyInstaller hook has every data file its RECORD lists (kernels' dependency JSON is
    the one whose absence stopped the app from starting)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from package_deps import data_files, runtime_closure, unhooked_packages
    from packaging.utils import canonicalize_name

    internal = app.parent / "_internal"
    lost = {}
    for dist, module in unhooked_packages():
        gone = [str(p) for p in data_files(dist, module) if not (internal / p).exists()]
        if gone:
            lost[dist.metadata["Name"]] = gone
    assert not lost, "the app lacks data files of: " + "; ".join(f"{k} ({', '.join(v)})" for k, v in lost.items())
    carried = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions(path=[str(internal)])}
    no_metadata = sorted(n for n in runtime_closure() if n not in carried)
    assert not no_metadata, f"the app lacks the metadata of: {', '.join(no_metadata)}"


def mirror_without(app: Path, dest: Path, dropped: str) -> Path:
    """A copy of the app, made of symlinks but for the folders on the way to `dropped` (a path
    under _internal), which is left out: a damaged install, without copying a gigabyte."""
    (dest / "_internal").mkdir(parents=True)
    shutil.copy2(app, dest / app.name)  # a real file: the app finds _internal beside itself
    src, dst = app.parent / "_internal", dest / "_internal"
    parts = Path(dropped).parts
    for i, part in enumerate(parts):
        for entry in src.iterdir():
            if entry.name != part:
                (dst / entry.name).symlink_to(entry)
        if i < len(parts) - 1:
            src, dst = src / part, dst / part
            dst.mkdir()
    return dest / app.name


def test_a_dependency_with_missing_data_is_named(app, tmp_path):
    damaged = mirror_without(app, tmp_path / "damaged", "kernels/_internals/python_depends.json")
    export = run_frozen(damaged, tmp_path, "export", "--model", "bundled:minilm", "--text", "x", "--out", str(tmp_path / "o"))
    window = run_frozen(damaged, tmp_path, "--model", "bundled:minilm", "--text", "x", "--screenshot", str(tmp_path / "x.png"))
    for result in (export, window):
        assert result.returncode != 0
        assert "'kernels'" in result.stderr and "the package is incomplete or damaged" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr


@pytest.mark.skipif(not shutil.which("xvfb-run"), reason="Xvfb is not installed (.ci/run installs it where it can)")
def test_frozen_app_in_a_real_window_under_xvfb(app, tmp_path):
    """QT_QPA_PLATFORM=xcb on a virtual X server: the window is drawn, or, where the X libraries
    are missing, one message names them (never an abort)."""
    out = tmp_path / "xcb.png"
    xvfb = [shutil.which("xvfb-run"), "-a", "-s", "-screen 0 1920x1080x24", str(app)]
    result = run_frozen(Path(xvfb[0]), tmp_path, *xvfb[1:], "--model", "bundled:minilm", "--text", "the cat",
                        "--screenshot", str(out), "--size", "1280x720", env={"QT_QPA_PLATFORM": "xcb"})
    assert "Traceback" not in result.stderr and "Aborted" not in result.stderr
    if result.returncode == 2:
        assert "lacks" in result.stderr and "apt-get install" in result.stderr
        return
    assert result.returncode == 0, result.stderr[-2000:]
    assert image_stats(out)[:2] == (1280, 720) and image_stats(out)[2] > 20


def test_frozen_app_survives_a_killed_engine(app, tmp_path):
    """The frozen binary starts itself as the engine; SIGKILL on it mid-start is reported, the engine
    restarts from the same binary and the screenshot is still taken."""
    import time

    import psutil

    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen",
           "HF_HOME": str(tmp_path / "empty-hf"), "HF_HUB_OFFLINE": "1", "LLMVIZ_CACHE_DIR": str(tmp_path / "cache"),
           "LLMVIZ_SETTINGS": str(tmp_path / "s.ini")}
    out = tmp_path / "after-restart.png"
    proc = subprocess.Popen([str(app), "--model", "bundled:smollm2", "--text", "The cat sat on the mat",
                             "--screenshot", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    engine = None
    deadline = time.monotonic() + 120
    while engine is None and time.monotonic() < deadline:
        engine = next((c for c in psutil.Process(proc.pid).children() if "__engine__" in c.cmdline()), None)
        time.sleep(0.05)
    assert engine is not None and engine.exe() == str(app.resolve())
    engine.kill()
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    assert "SIGKILL" in stderr and "Restarting" in stderr and "Traceback" not in stderr
    assert image_stats(out)[2] > 20
