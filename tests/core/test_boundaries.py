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
