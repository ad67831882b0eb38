"""Architecture rules: the core never imports Qt; the GUI starts without importing torch."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

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
    code = ("import sys, llmviz.app, llmviz.main_window, llmviz.views; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
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


# -- what the window may import from core ------------------------------------------------------
LLMVIZ = Path(__file__).resolve().parents[2] / "llmviz"
#: Core modules every window-side module may import: result types, specs, errors, job names, formatting.
WINDOW_CORE = {"results", "specs", "errors", "targets", "formatting"}
#: Torch-free helpers the window also uses (test_window_helpers_do_not_import_torch checks each):
#: sampling (the prediction view re-samples logits it has), paths and textio (resources and text
#: files), atomic (every file written), bundled (the model menu), and the features computed in the
#: window without a model: scaling, timeline and the environment's process readings; the
#: classroom's file formats: lessons and session files.
WINDOW_HELPERS = {"sampling", "paths", "textio", "atomic", "bundled", "scaling", "timeline", "environment",
                  "lessons", "session_file"}


def imports_qt(path: Path) -> bool:
    """Whether `path` imports PySide6 or pyqtgraph anywhere (a module of the window process)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if any(n.split(".")[0] in ("PySide6", "pyqtgraph") for n in names):
            return True
    return False


def window_modules() -> list[Path]:
    """Every module of the GUI process: views, widgets, and the top-level modules that use Qt
    (the main window, the app, presentation and classroom modes ...)."""
    top = [p for p in LLMVIZ.glob("*.py") if imports_qt(p)]
    return sorted({*LLMVIZ.glob("views/*.py"), *LLMVIZ.glob("widgets/*.py"), *top, LLMVIZ / "main_window.py",
                   LLMVIZ / "app.py"})


def core_imports(path: Path, package: str | None = None) -> set[str]:
    """The llmviz.core modules `path` imports, at any depth (function-local imports count).

    `package` is the package `path` belongs to (by default, from where it lies in llmviz/).
    """
    package = package or ".".join(path.relative_to(LLMVIZ.parent).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from ..core import targets` names a module; `from ..core.specs import X` names its members
            modules = [f"{base}.{alias.name}" for alias in node.names] if base == "llmviz.core" else [base]
        else:
            continue
        found.update(m for m in modules if m.startswith("llmviz.core.") or m == "llmviz.core")
    return found


def allowed_in_window(module: str) -> bool:
    name = module.removeprefix("llmviz.core.").split(".")[0]
    return name.endswith("_results") or name in WINDOW_CORE or name in WINDOW_HELPERS


def test_window_modules_import_only_results_specs_errors_and_helpers_from_core():
    modules = window_modules()
    assert len(modules) >= 25  # the glob really found the views and widgets
    wrong = {str(p.relative_to(LLMVIZ)): sorted(m for m in core_imports(p) if not allowed_in_window(m)) for p in modules}
    wrong = {k: v for k, v in wrong.items() if v}
    assert not wrong, f"views may import only *_results, specs, errors, targets, formatting and WINDOW_HELPERS: {wrong}"


def test_the_import_rule_sees_relative_local_and_absolute_imports(tmp_path):
    """The parser resolves `from ..core.x`, function-local and absolute imports (so the rule can fail)."""
    view = tmp_path / "probe.py"
    view.write_text("from ..core.specs import ModelSpec\nfrom ..core import targets, attention\n"
                    "def f():\n    import llmviz.core.quantization_jobs\n    from llmviz.core.models import load_model\n")
    found = core_imports(view, package="llmviz.views")
    assert found == {"llmviz.core.specs", "llmviz.core.targets", "llmviz.core.attention", "llmviz.core.quantization_jobs",
                     "llmviz.core.models"}
    assert [m for m in sorted(found) if not allowed_in_window(m)] == [
        "llmviz.core.attention", "llmviz.core.models", "llmviz.core.quantization_jobs"]


def test_window_helpers_do_not_import_torch():
    """Every module the window may import from core loads without torch or transformers."""
    names = sorted(WINDOW_CORE | WINDOW_HELPERS) + sorted(p.stem for p in (LLMVIZ / "core").glob("*_results.py"))
    code = f"import importlib, sys\nfor n in {names!r}:\n    importlib.import_module('llmviz.core.' + n)\n" \
           "print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))"
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "[]", result.stdout
