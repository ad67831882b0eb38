"""The packaged (PyInstaller) app, run as a user would: no Python on PATH, no network, no HF cache.

Builds dist/llmviz with scripts/package.py (minutes) unless LLMVIZ_PACKAGED_APP points to a
build.  Skipped when PyInstaller is not installed (the default `make test`); `make
package-test` (run by .ci/run) installs it and runs this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
