"""The window soak: many load / run / cancel / switch / edit cycles in one window, in random order.

Run: python -m tests.faults.window_soak --cycles 200 --seed 7 MODEL_FOLDER [MODEL_FOLDER ...]

One real window (offscreen), one ModelHost with its engine process, the given model folders
(the tiny test models: build them with tests.tiny_models in another process, since this one
must not import torch). Each cycle picks an action with a fixed seed, waits until the window
has settled (no job running, every visible view drawn) and samples the window process's RSS.
Errors are what a user would see: an error in the message bar, an exception reaching Qt's
event loop, a cycle that never settles. The last line of stdout is one JSON object:
cycles, errors (a list of texts), rss_mb (per cycle), window_rss_growth_mb (last 100 cycles),
engine_restarts, seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the platform must be chosen before Qt loads (imports below)

import psutil

from llmviz.app import make_settings
from llmviz.core.specs import ModelSpec
from llmviz.main_window import MainWindow, application
from llmviz.workers.model_host import EngineEvent, ModelHost

TEXTS = [
    "The cat sat on the mat.",
    "Attention lets every token look at every other token.",
    "Large language models predict the next token, one at a time, from everything before it.",
    "",
    "Ünïcödé, emoji 🙂 and numbers 12345 in one line.",
    "A longer text for cancelling: " + "the quick brown fox jumps over the lazy dog " * 40,
]
ACTIONS = ("load", "run", "cancel", "switch", "edit")
SETTLE_TIMEOUT_S = 120.0


class Soak:
    """Drives one window through random cycles and records what a user would have seen."""

    def __init__(self, models: list[str], seed: int) -> None:
        self.app = application()
        self.host = ModelHost()
        self.window = MainWindow(self.host, make_settings())
        self.window.resize(1280, 800)
        self.window.show()
        self.models = models
        self.rng = random.Random(seed)
        self.errors: list[str] = []
        self.restarts = 0
        self.current = models[0]
        show = self.window.message_bar.show_message

        def record(text: str, level: str = "error", *args, **kwargs):
            if level == "error":
                self.errors.append(f"message bar: {text}")
            return show(text, level, *args, **kwargs)

        self.window.message_bar.show_message = record
        self.host.sig_engine.connect(self._on_engine)
        sys.excepthook = self._on_exception

    def _on_engine(self, event: EngineEvent) -> None:
        if event.state in ("died", "failed"):
            self.restarts += 1
            self.errors.append(f"engine {event.state}: {event.message}")

    def _on_exception(self, kind, value, tb) -> None:
        self.errors.append("exception: " + "".join(traceback.format_exception(kind, value, tb))[-1500:])

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.005)

    def settle(self, what: str) -> None:
        """Wait until nothing runs and every visible view has drawn (or said why it cannot)."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        window = self.window
        while time.monotonic() < deadline:
            self.pump(0.02)
            if self.host.busy or window.info is None:
                continue
            if all(v.is_ready() for v in window.views.values() if v.isVisible()):
                return
        self.errors.append(f"{what}: did not settle within {SETTLE_TIMEOUT_S:.0f} s")

    def act(self, action: str) -> None:
        window = self.window
        if action == "load":
            window.load_model(ModelSpec(self.current, device="cpu"))
        elif action == "switch":
            self.current = self.rng.choice([m for m in self.models if m != self.current] or self.models)
            window.load_model(ModelSpec(self.current, device="cpu"))
        elif action == "edit":
            window.set_text(self.rng.choice(TEXTS))
        elif action == "run":
            window.run_text()
        elif action == "cancel":
            window.set_text(TEXTS[-1])
            window.run_text()
            self.pump(self.rng.uniform(0.0, 0.3))
            window.cancel()
            self.pump(0.1)
            window.run_text()  # what a user does next: run again; the cycle settles on it

    def run(self, cycles: int) -> dict:
        started = time.monotonic()
        self.window.set_text(TEXTS[0])
        self.window.load_model(ModelSpec(self.current, device="cpu"))
        self.settle("first load")
        rss: list[float] = []
        me = psutil.Process()
        for cycle in range(cycles):
            action = self.rng.choice(ACTIONS)
            self.act(action)
            self.settle(f"cycle {cycle} ({action})")
            rss.append(me.memory_info().rss / 2**20)
        tail = rss[-100:] if len(rss) >= 100 else rss
        result = {
            "cycles": cycles,
            "errors": self.errors,
            "rss_mb": [round(x, 1) for x in rss],
            "window_rss_growth_mb": round(tail[-1] - tail[0], 1) if tail else 0.0,
            "engine_restarts": self.restarts,
            "seconds": round(time.monotonic() - started, 1),
        }
        self.window.close()
        self.pump(0.5)
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model folders (the tiny test models)")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = Soak(args.models, args.seed).run(args.cycles)
    print(json.dumps(result))
    return 0 if not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
