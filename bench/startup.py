"""Start-up, load and capture costs of llmviz on this machine.

Prints: time from `python -m llmviz` to the window shown; bundled SmolLM2 load the first
time (GGUF conversion into an empty cache) and cached; a forward with attention capture
vs a plain sdpa forward of the same model and input at T = 512 (same process); and the
longest GUI event-loop stall (10 ms heartbeat) while a model loads and while a run is
in flight (and, separately, during the one-time torch import when the app starts).  Targets: window <= 2 s, cached load <= 5 s, capture/plain <= 1.25, stall <= 50 ms.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from _common import ROOT, Heartbeat, result_line, table, wait_until

TEXT_512 = ("The history of language models is a history of scale, data and attention. " * 40)


def window_seconds(runs: int = 3) -> float:
    """Wall time from starting `python -m llmviz` to its window being shown (median)."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "llmviz", "--quit-when-shown"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("window-shown"):
                times.append(time.perf_counter() - started)
                break
        proc.wait()
    return statistics.median(times)


LOAD_CHILD = """
import sys, time
from llmviz.core.models import load_model
from llmviz.core.specs import ModelSpec
t = time.perf_counter()
load_model(ModelSpec("bundled:smollm2", device="cpu"))
print("load", time.perf_counter() - t)
"""


def load_seconds(cache: str) -> float:
    out = subprocess.run([sys.executable, "-c", LOAD_CHILD], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "LLMVIZ_CACHE_DIR": cache}, check=True).stdout
    return float(out.split()[-1])


def capture_ratio(repeats: int = 5) -> tuple[float, float, float, int]:
    """Median forward-with-capture and plain sdpa forward at T=512, interleaved, same model."""
    import torch

    from llmviz.core.models import load_model
    from llmviz.core.specs import ModelSpec
    from llmviz.core.trace import forward_inputs, run_trace, tokenize

    loaded = load_model(ModelSpec("bundled:smollm2", device="cpu"))
    tokens, _ = tokenize(loaded, TEXT_512, max_tokens=512)
    text = loaded.tokenizer.decode(tokens.ids)
    inputs = forward_inputs(loaded, tokens.ids)
    run_trace(loaded, text)  # warm-up
    captured, plain = [], []
    for _ in range(repeats):
        trace = run_trace(loaded, text)
        captured.append(trace.timings["forward_s"] + trace.timings["capture_s"])
        started = time.perf_counter()
        with torch.inference_mode():
            loaded.model(**inputs, use_cache=False, logits_to_keep=1)
        plain.append(time.perf_counter() - started)
    c, p = statistics.median(captured), statistics.median(plain)
    return c, p, c / p, trace.num_tokens


def gui_stalls() -> tuple[float, float, float]:
    """Worst heartbeat lateness (ms): while the worker imports torch (once, at start-up), while
    the window loads SmolLM2, and while a T=512 run is in flight."""
    from llmviz.app import make_settings
    from llmviz.core.specs import ModelSpec
    from llmviz.main_window import MainWindow, application
    from llmviz.workers.model_host import ModelHost

    os.environ["LLMVIZ_SETTINGS"] = os.path.join(tempfile.mkdtemp(), "bench.ini")
    app = application()
    host = ModelHost()
    window = MainWindow(host, make_settings())
    window.resize(1400, 900)
    window.set_text("The cat sat on the mat")
    window.show()
    beat = Heartbeat()
    app.processEvents()
    beat.start()
    host.warm_up()
    wait_until(lambda: not host.busy)
    import_stall = beat.stop()
    beat.start()
    window.load_model(ModelSpec("bundled:smollm2", device="cpu"))
    wait_until(lambda: window.trace is not None and not host.busy and all(v.is_ready() for v in window.views.values() if v.isVisible()))
    load_stall = beat.stop()
    first = window.trace.id
    beat.start()
    window.text_input.set_text(TEXT_512, emit=True)
    wait_until(lambda: window.trace.id != first and not host.busy and all(v.is_ready() for v in window.views.values() if v.isVisible()))
    run_stall = beat.stop()
    window.close()
    return import_stall, load_stall, run_stall


def gui_stalls_in_a_fresh_process() -> tuple[float, float, float]:
    """gui_stalls() in a new interpreter, so the torch import it measures really happens there."""
    out = subprocess.run([sys.executable, __file__, "--stalls"], cwd=ROOT, capture_output=True, text=True, check=True)
    line = next(l for l in out.stdout.splitlines() if l.startswith("stalls "))
    a, b, c = (float(x) for x in line.split()[1:])
    return a, b, c


def main() -> None:
    if "--stalls" in sys.argv:
        print("stalls", *gui_stalls(), flush=True)
        return
    window_s = window_seconds()
    with tempfile.TemporaryDirectory() as cache:
        first = load_seconds(cache)
        cached = statistics.median(load_seconds(cache) for _ in range(3))
    c, p, ratio, t = capture_ratio()
    import_stall, load_stall, run_stall = gui_stalls_in_a_fresh_process()
    table([
        ("window shown (python -m llmviz)", f"{window_s:.2f} s   (target <= 2 s)"),
        ("SmolLM2 load, first (GGUF conversion)", f"{first:.1f} s"),
        ("SmolLM2 load, cached safetensors", f"{cached:.2f} s   (target <= 5 s)"),
        (f"forward + capture, T={t}", f"{c * 1000:.0f} ms"),
        (f"plain sdpa forward, T={t}", f"{p * 1000:.0f} ms"),
        ("capture / plain", f"{ratio:.2f}   (target <= 1.25)"),
        ("worst GUI stall while importing torch (once)", f"{import_stall:.1f} ms"),
        ("worst GUI stall while loading SmolLM2", f"{load_stall:.1f} ms"),
        (f"worst GUI stall while running T={t}", f"{run_stall:.1f} ms   (target <= 50 ms)"),
    ], f"llmviz start-up benchmark ({os.cpu_count()} CPUs, torch threads default)")
    result_line("startup", {"window_s": window_s, "load_first_s": first, "load_cached_s": cached,
                            "capture_ratio": ratio, "stall_ms": max(load_stall, run_stall),
                            "import_stall_ms": import_stall})


if __name__ == "__main__":
    main()
