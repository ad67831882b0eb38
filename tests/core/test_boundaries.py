"""Architecture rules: the core never imports Qt; the GUI starts without importing torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_QT = textwrap.dedent("""
    import importlib.abc, sys
    class BlockQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in {'PySide6', 'PyQt5', 'PyQt6', 'PySide2', 'pyqtgraph', 'qtpy', 'shiboken6'}:
                raise ImportError(f'Qt import blocked in llmviz.core: {name}')
    sys.meta_path.insert(0, BlockQt())
""")


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_core_imports_without_qt():
    code = BLOCK_QT + textwrap.dedent("""
        import importlib, pkgutil, llmviz.core as core
        names = [m.name for m in pkgutil.walk_packages(core.__path__, 'llmviz.core.')]
        for name in names:
            importlib.import_module(name)
        assert not any(k.startswith(('PySide6', 'pyqtgraph')) for k in sys.modules)
        print(len(names))
    """)
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.split()[-1]) >= 10  # the walk really found the core modules


def test_blocker_really_blocks_qt():
    """The guard above would catch a Qt import (so the test above can fail)."""
    result = run_python(BLOCK_QT + "import PySide6.QtCore")
    assert result.returncode != 0 and "Qt import blocked" in result.stderr


def test_gui_modules_do_not_import_torch():
    """Window start-up must not pay for torch; the worker imports it."""
    code = "import sys, llmviz.app, llmviz.main_window, llmviz.views; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


FULL_SESSION = textwrap.dedent("""
    import os, sys, time
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from llmviz.app import make_settings
    from llmviz.core.specs import ModelSpec
    from llmviz.main_window import MainWindow, application
    from llmviz.workers.model_host import ModelHost

    app = application()
    host = ModelHost()
    window = MainWindow(host, make_settings())
    window.resize(1400, 900)
    window.show()

    def settle(timeout=240):
        deadline = time.time() + timeout
        while time.time() < deadline:
            app.processEvents()
            time.sleep(0.01)
            if window.trace is not None and not host.busy and all(v.is_ready() for v in window.views.values() if v.isVisible()):
                return
        raise SystemExit("timed out")

    window.set_text("The cat sat on the mat")
    window.load_model(ModelSpec(sys.argv[1], device="cpu"))
    settle()
    for name, dock in window.docks.items():
        dock.show()
        dock.raise_()
        window.view(name)
        settle()
    dial = window.view("quantization").dial
    dial.setValue((dial.value() + 1) % (dial.maximum() + 1))
    settle()
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "tokenizers", "bitsandbytes"))
    print("shown", len(window.views), "heavy", len(heavy), heavy[:5])
    window.close()
""")


def test_the_window_never_imports_torch_in_a_whole_session(tiny_models):
    """Load, run, every dock shown, the quantization dial turned: the GUI process has imported
    none of torch, transformers, tokenizers, bitsandbytes (the engine process did the work)."""
    env = {**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", FULL_SESSION, str(tiny_models["llama"])], capture_output=True,
                            text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("shown"))
    assert int(line.split()[1]) >= 14, line
    assert " heavy 0 " in line, line
