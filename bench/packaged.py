"""The packaged app: its size, time to window, and time to the first heatmap.

Needs a build (`make package`); pass another with LLMVIZ_PACKAGED_APP=/path/to/llmviz.
Runs the frozen app with a bare environment (no Python on PATH, offline, empty HF cache).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, result_line, table

APP = Path(os.environ.get("LLMVIZ_PACKAGED_APP", ROOT / "dist" / "llmviz" / "llmviz"))


def bare_env(tmp: str) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": tmp, "LANG": "C.UTF-8", "QT_QPA_PLATFORM": "offscreen",
            "HF_HOME": os.path.join(tmp, "hf"), "HF_HUB_OFFLINE": "1", "LLMVIZ_CACHE_DIR": os.path.join(tmp, "cache"),
            "LLMVIZ_SETTINGS": os.path.join(tmp, "s.ini")}


def window_seconds(tmp: str) -> float:
    started = time.perf_counter()
    proc = subprocess.Popen([str(APP), "--quit-when-shown"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=bare_env(tmp))
    assert proc.stdout is not None
    shown = None
    for line in proc.stdout:
        if line.startswith("window-shown"):
            shown = time.perf_counter() - started
    proc.wait()
    if shown is None:
        raise SystemExit("the packaged app did not show its window")
    return shown


def first_heatmap_seconds(tmp: str) -> float:
    started = time.perf_counter()
    subprocess.run([str(APP), "--model", "bundled:smollm2", "--text", "The cat sat on the mat", "--dock", "attention",
                    "--screenshot", os.path.join(tmp, "attention.png")], env=bare_env(tmp), check=True,
                   capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    if not APP.exists():
        sys.exit(f"{APP} not found: build it with `make package`")
    folder = APP.parent
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
    with tempfile.TemporaryDirectory() as tmp:
        window_first = window_seconds(tmp)  # cold: the OS has not cached the app's files yet (if run first)
        window_s = statistics.median(window_seconds(tmp) for _ in range(3))
        heatmap_s = first_heatmap_seconds(tmp)
    table([
        ("app", str(APP)),
        ("size unpacked", f"{size / 2**30:.2f} GB   (target < 1.5 GB)"),
        ("start to window, first run", f"{window_first:.2f} s"),
        ("start to window (median of 3)", f"{window_s:.2f} s"),
        ("start to first attention heatmap (SmolLM2, --screenshot --dock attention)", f"{heatmap_s:.1f} s"),
    ], "llmviz packaged app")
    result_line("packaged", {"size_gb": size / 2**30, "window_s": window_s, "window_first_s": window_first,
                             "first_heatmap_s": heatmap_s})


if __name__ == "__main__":
    main()
