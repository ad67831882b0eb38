"""What the packaged app must carry beyond the code PyInstaller's analysis finds.

llmviz's runtime dependencies change under it: transformers 5.25 began to require
`kernels`, which reads a JSON file of its own at import. A spec that lists packages by
hand falls behind the next such release, so the spec and tests/test_packaging.py both
derive the list from the installed distributions' metadata instead:

- `runtime_closure()`: every distribution llmviz needs at run time, following the
  requirements recursively (markers evaluated for this machine, no extras).
- Each gets its metadata copied (transformers and accelerate check versions at run time).
- Each top-level package without a PyInstaller hook gets its data files collected; a
  package with a hook (torch, PySide6, numpy, ...) is left to its hook, which PyInstaller
  maintains for that package and which knows what it needs better than a blanket copy.

Standard library and `packaging` only: the spec runs it inside PyInstaller and the test
inside pytest.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path, PurePosixPath

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

#: Files a running app never reads: sources, headers, test data, type-checker markers.
NOT_DATA_SUFFIXES = (".py", ".pyc", ".pyi", ".pxd", ".pyx", ".c", ".h", ".hpp", ".cpp", ".cu", ".cuh")
NOT_DATA_DIRS = frozenset({"__pycache__", "tests", "test", "testing", "include"})
NOT_DATA_NAMES = frozenset({"py.typed"})
#: The same as glob patterns, for PyInstaller's collect_data_files(excludes=...).
NOT_DATA_GLOBS = [f"**/*{s}" for s in NOT_DATA_SUFFIXES] + [f"**/{d}/**" for d in sorted(NOT_DATA_DIRS)] + [
    "**/py.typed", "**/*.so", "**/*.so.*", "**/*.dylib", "**/*.dll", "**/*.pyd"]


def runtime_closure(root: str = "llmviz") -> dict[str, metadata.Distribution]:
    """Installed distributions `root` needs at run time, by canonical name (root included)."""
    env = {**default_environment(), "extra": ""}
    found: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency this environment does not have
        found[name] = dist
        for line in dist.requires or ():
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate(env):
                todo.append(req.name)
    return found


def top_level_packages(dist: metadata.Distribution) -> list[str]:
    """Importable package folders the distribution installs (not single modules, not .libs)."""
    names = set()
    for f in dist.files or ():
        parts = PurePosixPath(str(f)).parts
        if len(parts) >= 2 and parts[-1] == "__init__.py" and parts[0].isidentifier() and ".." not in parts:
            names.add(parts[0])
    return sorted(names)


def has_pyinstaller_hook(module: str) -> bool:
    """True when PyInstaller or its contributed hooks ship a hook for `module`."""
    folders = []
    for owner, sub in (("PyInstaller", "hooks"), ("_pyinstaller_hooks_contrib", "stdhooks")):
        spec = importlib.util.find_spec(owner)
        if spec is not None and spec.origin:
            folders.append(Path(spec.origin).parent / sub)
    return any((folder / f"hook-{module}.py").exists() for folder in folders)


def is_data_file(path: PurePosixPath) -> bool:
    """A file the package may read at run time (not code, headers, tests or binaries)."""
    name = path.name
    binary = name.endswith((".so", ".dylib", ".dll", ".pyd")) or ".so." in name
    if binary or name in NOT_DATA_NAMES or name.endswith(NOT_DATA_SUFFIXES):
        return False
    return not any(part in NOT_DATA_DIRS for part in path.parts[:-1])


def data_files(dist: metadata.Distribution, module: str) -> list[PurePosixPath]:
    """The data files of `module` (one of the distribution's top-level packages), relative to
    site-packages, as the distribution's RECORD lists them."""
    out = []
    for f in dist.files or ():
        path = PurePosixPath(str(f))
        if path.parts and path.parts[0] == module and is_data_file(path):
            out.append(path)
    return out


def unhooked_packages() -> list[tuple[metadata.Distribution, str]]:
    """(distribution, top-level package) pairs whose data files llmviz.spec collects itself."""
    pairs = []
    for name, dist in sorted(runtime_closure().items()):
        if name == "llmviz":
            continue  # its resources travel separately (resources/)
        for module in top_level_packages(dist):
            if not has_pyinstaller_hook(module):
                pairs.append((dist, module))
    return pairs
