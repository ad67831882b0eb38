"""Shared test set-up: headless Qt, offline hub, isolated settings, real (tiny and bundled) models.

Tests never mock torch or transformers.  Tiny models are built from configs (random
weights, real architectures); the bundled SmolLM2 and MiniLM are the real checkpoints.
"""

from __future__ import annotations

import os
import tempfile
import time
import weakref
from pathlib import Path

# Before anything imports Qt or huggingface_hub:
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_settings_dir = tempfile.mkdtemp(prefix="llmviz-test-settings-")
os.environ["LLMVIZ_SETTINGS"] = str(Path(_settings_dir) / "settings.ini")

import pytest  # noqa: E402

from .tiny_models import build_tiny_models  # noqa: E402


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of tiny real-architecture models: 'llama' (GQA, tied), 'gpt2', 'bert'."""
    return build_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def mamba_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Mamba (no attention at all) with SmolLM2's tokenizer: attention cannot be captured."""
    from transformers import AutoTokenizer, MambaConfig, MambaForCausalLM

    from llmviz.core import bundled

    folder = tmp_path_factory.mktemp("tiny-mamba")
    tok = AutoTokenizer.from_pretrained(bundled.model_folder("bundled:smollm2"))
    MambaForCausalLM(MambaConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=2, state_size=4)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def smollm2_session():
    """A core Session with the real bundled SmolLM2 loaded (shared: load once per run)."""
    from llmviz.core.session import Session
    from llmviz.core.specs import ModelSpec

    session = Session()
    session.load(ModelSpec("bundled:smollm2", device="cpu"))
    return session


@pytest.fixture(scope="session")
def minilm_session():
    from llmviz.core.session import Session
    from llmviz.core.specs import ModelSpec

    session = Session()
    session.load(ModelSpec("bundled:minilm", device="cpu"))
    return session


# ------------------------------------------------------------------ Qt fixtures and guards

_started_threads: weakref.WeakSet = weakref.WeakSet()


def _track_qthreads() -> None:
    from PySide6.QtCore import QThread

    if getattr(QThread.start, "_llmviz_tracked", False):
        return
    original = QThread.start

    def start(self, *args, **kwargs):
        _started_threads.add(self)
        return original(self, *args, **kwargs)

    start._llmviz_tracked = True
    QThread.start = start


@pytest.fixture(autouse=True)
def no_dangling_qthreads(request: pytest.FixtureRequest):
    """Fail a test that leaves a QThread running (deleting one later aborts the process)."""
    if "qtbot" not in request.fixturenames and "host" not in request.fixturenames:
        yield
        return
    _track_qthreads()
    yield
    from PySide6.QtCore import QThread

    running = []
    for thread in list(_started_threads):
        try:
            if thread.isRunning() and thread is not QThread.currentThread():
                thread.wait(3000)
                if thread.isRunning():
                    running.append(thread.objectName() or repr(thread))
        except RuntimeError:  # C++ object already deleted
            continue
    assert not running, f"test left QThreads running: {running}"


def _live_children() -> list:
    import psutil

    out = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.fixture(autouse=True)
def no_leftover_processes():
    """Fail a test that leaves a child process running (an engine or a converter outliving its
    window is a leak a user pays for); the survivors are killed so later tests start clean."""
    import psutil

    yield
    deadline = time.monotonic() + 3.0
    alive = _live_children()
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = _live_children()
    described = []
    for child in alive:
        try:
            described.append(" ".join(child.cmdline()[:6]))
            child.kill()
        except psutil.NoSuchProcess:
            continue
    assert not described, f"test left processes running: {described}"


@pytest.fixture
def host(qtbot):
    """A ModelHost with its engine process; shut down after the test."""
    from llmviz.workers.model_host import ModelHost

    h = ModelHost()
    yield h
    h.shutdown(5000)
    import gc

    gc.collect()  # automatic GC is off once a ModelHost exists (GUI-thread collection); free cycles here


@pytest.fixture
def window(qtbot, host):
    """A MainWindow wired to a fresh host (no model loaded yet)."""
    from llmviz.app import make_settings
    from llmviz.main_window import MainWindow

    w = MainWindow(host, make_settings())
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    yield w
    w.close()
