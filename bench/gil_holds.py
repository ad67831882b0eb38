"""How long third-party code on the worker thread holds the GIL (and so blocks the GUI thread).

A plain Python thread sleeps 2 ms in a loop and records its worst lateness while the main thread
runs, one at a time: json.load of SmolLM2's tokenizer.json, tokenizers.Tokenizer.from_file of the
same file, transformers' AutoTokenizer.from_pretrained of the bundled folder, and the bundled
GPT-2 BPE tokenizer the Tokens dock compares with (GPT2Tokenizer.from_pretrained).  A lateness far
above 2 ms means the GIL was not released for that long: no GUI slot or paint could run.

Run: python bench/gil_holds.py
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

from _common import result_line, table


class Ticker:
    """A thread that wakes every 2 ms; `worst_ms` is its worst lateness since `reset()`."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.running = True
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        last = time.perf_counter()
        while self.running:
            time.sleep(0.002)
            now = time.perf_counter()
            self.worst = max(self.worst, now - last - 0.002)
            last = now

    def measure(self, fn: Callable[[], object]) -> tuple[float, float]:
        time.sleep(0.05)
        self.worst = 0.0
        started = time.perf_counter()
        fn()
        return (time.perf_counter() - started) * 1000, self.worst * 1000


def main() -> None:
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, GPT2Tokenizer

    from llmviz.core import bundled

    folder = bundled.model_folder("bundled:smollm2")
    path = folder / "tokenizer.json"
    ticker = Ticker()
    AutoTokenizer.from_pretrained(str(folder))  # imports and file cache warm, so only the work is timed
    steps = {
        "json_load": lambda: json.load(path.open(encoding="utf-8")),
        "from_file": lambda: Tokenizer.from_file(str(path)),
        "auto_tokenizer": lambda: AutoTokenizer.from_pretrained(str(folder)),
        "gpt2_tokenizer": lambda: GPT2Tokenizer.from_pretrained(bundled.gpt2_tokenizer_folder()),
    }
    figures: dict[str, float] = {}
    rows = []
    for name, fn in steps.items():
        took, held = ticker.measure(fn)
        figures[f"{name}_ms"], figures[f"{name}_gil_ms"] = took, held
        rows.append((name, f"{took:6.0f} ms, other threads blocked up to {held:4.0f} ms"))
    ticker.running = False
    table(rows, f"GIL held by SmolLM2's tokenizer loading ({path.stat().st_size / 2**20:.1f} MiB tokenizer.json)")
    result_line("gil_holds", figures)


if __name__ == "__main__":
    main()
