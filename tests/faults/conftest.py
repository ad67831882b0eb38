"""Fixtures of the fault suite: model folders with damaged configs, and real small or
read-only file systems (tmpfs mounts, where this machine allows them)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .support import mount_tmpfs, unmount


@pytest.fixture
def patched_model(tmp_path: Path, tiny_models: dict[str, Path]) -> Callable[..., Path]:
    """patched_model('llama', num_hidden_layers=0) -> a copy of a tiny model with those config values
    (the weights linked, not copied)."""
    def make(name: str, **changes: object) -> Path:
        src = tiny_models[name]
        folder = tmp_path / f"{name}-patched"
        folder.mkdir()
        for f in src.iterdir():
            if f.name == "model.safetensors":
                (folder / f.name).symlink_to(f)
            else:
                shutil.copy(f, folder / f.name)
        config = json.loads((src / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))
        return folder
    return make


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """tmpfs('size=256k') or tmpfs('ro') -> a freshly mounted, real file system; skips where
    mounting is not allowed (not root, or a container without CAP_SYS_ADMIN)."""
    mounted: list[Path] = []

    def make(options: str) -> Path:
        where = tmp_path / f"mnt{len(mounted)}"
        if not mount_tmpfs(where, options):
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        unmount(where)


@pytest.fixture(scope="session")
def converted_entry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sound converted SmolLM2 cache entry (copied from this machine's cache, converting it
    there first if needed), for tests that need one without paying for a conversion."""
    from llmviz.core import bundled

    source = bundled.model_folder("bundled:smollm2")
    seed = tmp_path_factory.mktemp("seed-cache") / bundled.CACHE_ENTRY
    shutil.copytree(source, seed)
    assert bundled.entry_problem(seed, bundled._conversion_marker(bundled.SMOLLM2_PACKAGE.file(bundled.SMOLLM2_GGUF))) is None
    return seed


@pytest.fixture
def cache_with_entry(tmp_path: Path, converted_entry: Path) -> Path:
    """A cache folder of this test's own holding a copy of the sound entry."""
    cache = tmp_path / "cache"
    cache.mkdir()
    shutil.copytree(converted_entry, cache / converted_entry.name)
    return cache
