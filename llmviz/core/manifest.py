"""A folder's manifest: the sizes and SHA-256 hashes of its files, to tell a complete cache
entry from a damaged one.

Verifying compares sizes always and hashes only for files whose modification time
changed since the manifest was written (rsync's quick check): hashing the 538 MB
converted SmolLM2 costs a second or two, too much for every load, while a truncated or
rewritten file changes its size or its time.  Safetensors files are also checked
structurally (their header's offsets must end exactly at the end of the file), which
catches a truncated file even without a manifest.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

from .atomic import TEMP_MARK, write_text

MANIFEST_NAME = "llmviz-manifest.json"
MAX_HEADER_BYTES = 100 * 2**20  # safetensors' own limit on its JSON header


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a complete safetensors file, or None when its header and size agree."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path.name} is {size} bytes, shorter than a safetensors header"
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES or 8 + n > size:
                return f"{path.name} is truncated or damaged (its header claims {n:,} bytes; the file has {size:,})"
            header = json.loads(f.read(n))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"{path.name} cannot be read as safetensors ({exc})"
    if not isinstance(header, dict):
        return f"{path.name} has a damaged header"
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(entry["data_offsets"][1]))
        except (TypeError, KeyError, IndexError, ValueError):
            return f"{path.name} has a damaged header (tensor {name!r})"
    if 8 + n + end != size:
        return f"{path.name} is truncated or damaged ({size:,} bytes; its header needs {8 + n + end:,})"
    return None


def _files(folder: Path) -> list[Path]:
    """The files a manifest covers: not itself, temporary files or hidden bookkeeping (an owner file)."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name != MANIFEST_NAME and TEMP_MARK not in p.name and not p.name.startswith("."))


def build_manifest(folder: Path, **about: Any) -> dict[str, Any]:
    """The manifest of every file now in `folder`; `about` adds fields (converter version, source)."""
    files = {}
    for p in _files(folder):
        st = p.stat()
        files[p.name] = {"size": st.st_size, "sha256": sha256_of(p), "mtime_ns": st.st_mtime_ns}
    return {**about, "files": files}


def write_manifest(folder: Path, **about: Any) -> dict[str, Any]:
    manifest = build_manifest(folder, **about)
    write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=1))
    return manifest


def read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def manifest_problem(folder: Path, manifest: dict[str, Any]) -> str | None:
    """Why `folder` does not match `manifest` (a file missing, resized or changed), or None."""
    for name, want in manifest["files"].items():
        path = folder / name
        try:
            st = path.stat()
        except OSError:
            return f"{name} is missing"
        if not isinstance(want, dict) or st.st_size != want.get("size"):
            return f"{name} has {st.st_size:,} bytes, expected {want.get('size', 0):,}"
        if st.st_mtime_ns != want.get("mtime_ns") and sha256_of(path) != want.get("sha256"):
            return f"{name} was changed since it was written (its hash differs)"
        if name.endswith(".safetensors"):
            problem = safetensors_problem(path)
            if problem:
                return problem
    return None
