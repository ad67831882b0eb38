"""Start-up, load and capture costs of llmviz on this machine.

Prints: time from `python -m llmviz` to the window shown; bundled SmolLM2 load the first
time (GGUF conversion into an empty cache) and cached; a forward with attention capture
vs a plain sdpa forward of the same model and input at T = 512 (same process); and the
longest GUI event-loop stall (10 ms heartbeat) while a model loads and while a run is
in flight, over the whole start of a window (engine start, first conversion, cached load,
model switches, a run); the recovery after the engine is SIGKILLed mid-run; a T=4096 head
map's transfer overhead; both processes' memory; memory given back by a model switch.
Targets: window <= 2 s, cached load <= 5 s, capture/plain <= 1.25, stall <= 50 ms,
recover <= 8 s, ipc <= 5 ms, switch RSS within 10 % of a fresh engine.
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


def settle(window, host, predicate=lambda: True, timeout_s: float = 900.0) -> None:
    """Wait until the engine is idle and every shown view has drawn (and `predicate` holds)."""
    wait_until(lambda: window.trace is not None and not host.busy and predicate()
               and all(v.is_ready() for v in window.views.values() if v.isVisible()), timeout_s)


def window_session() -> dict[str, float]:
    """One window from start to finish, with a 10 ms heartbeat on the GUI thread throughout:
    the engine starts (torch import), SmolLM2 converts into an empty cache and loads, the text
    runs, MiniLM loads in a fresh engine, SmolLM2 loads again from the cache, a T=512 run; then
    the engine is killed mid-run and recovers; then a T=4096 head map's round trip."""
    import psutil

    from llmviz.app import make_settings
    from llmviz.core import targets
    from llmviz.core.specs import ModelSpec
    from llmviz.main_window import MainWindow, application
    from llmviz.workers.model_host import ModelHost

    os.environ["LLMVIZ_SETTINGS"] = os.path.join(tempfile.mkdtemp(), "bench.ini")
    os.environ["LLMVIZ_CACHE_DIR"] = tempfile.mkdtemp(prefix="llmviz-bench-cache-")  # the first load converts
    figures: dict[str, float] = {}
    app = application()
    host = ModelHost()  # the engine starts here and imports torch while the window is built and shown
    window = MainWindow(host, make_settings())
    window.resize(1400, 900)
    window.set_text("The cat sat on the mat")
    window.show()
    app.processEvents()
    beat = Heartbeat()  # from the window on screen: the engine's torch import is still under way
    beat.start()
    smollm2, minilm = ModelSpec("bundled:smollm2", device="cpu"), ModelSpec("bundled:minilm", device="cpu")
    window.load_model(smollm2)
    settle(window, host)
    figures["first_load_stall_ms"] = beat.stop()
    beat.start()
    window.load_model(minilm)
    settle(window, host, lambda: window.info.source == "bundled:minilm")
    switched = host.engine_rss()
    figures["cached_load_stall_ms"] = beat.stop()
    # Memory given back: the same views on MiniLM in a fresh engine (Run > Restart engine:
    # a new process loads MiniLM and every shown view computes again), against the engine
    # that held SmolLM2 before.
    restarted = {"done": False}
    host.sig_engine.connect(lambda e: e.state == "recovered" and restarted.__setitem__("done", True))
    host.restart_engine()
    settle(window, host, lambda: restarted["done"])
    figures["switch_rss_ratio"] = switched / max(1, host.engine_rss())
    beat.start()
    window.load_model(smollm2)
    settle(window, host, lambda: window.info.source == "bundled:smollm2")
    figures["cached_load_stall_ms"] = max(figures["cached_load_stall_ms"], beat.stop())
    figures["gui_rss_gb"] = psutil.Process().memory_info().rss / 2**30
    figures["engine_rss_gb"] = host.engine_rss() / 2**30
    beat.start()
    first = window.trace.id
    window.text_input.set_text(TEXT_512, emit=True)
    settle(window, host, lambda: window.trace.id != first)
    figures["run_stall_ms"] = beat.stop()

    # Recovery: SIGKILL the engine while a run is in flight, until the views show that text again.
    window.text_input.set_text(TEXT_512 + " Once more.", emit=True)
    wait_until(lambda: host.running_job() is not None, 60)
    beat.start()
    killed_at = time.perf_counter()
    os.kill(host.engine_pid, 9)
    restarted["done"] = False
    settle(window, host, lambda: restarted["done"] and window.trace.text.endswith("Once more."))
    figures["recover_s"] = time.perf_counter() - killed_at
    figures["recover_stall_ms"] = beat.stop()

    # IPC: a T=4096 head map's round trip minus the engine's compute time for it.
    window.text_input.set_text(TEXT_512 * 9, emit=True)
    settle(window, host, lambda: window.trace.num_tokens >= 4000)
    overheads = []
    for head in range(1, 8):
        got = []
        asked = time.perf_counter()
        host.call(targets.ATTENTION_MAP, on_done=lambda o, got=got: got.append((time.perf_counter(), o)),
                  trace_id=window.trace.id, layer=5, head=head, max_cells=1024)
        wait_until(lambda got=got: bool(got), 120)
        arrived, outcome = got[0]
        overheads.append((arrived - asked - outcome.elapsed_s) * 1000)
    figures["ipc_ms"] = statistics.median(overheads)
    window.close()
    return figures


def window_session_in_a_fresh_process() -> dict[str, float]:
    """window_session() in a new interpreter, so its start is really a start."""
    out = subprocess.run([sys.executable, __file__, "--window"], cwd=ROOT, capture_output=True, text=True, check=True)
    line = next(x for x in out.stdout.splitlines() if x.startswith("window "))
    return {k: float(v) for k, v in (pair.split("=") for pair in line.split()[1:])}


def main() -> None:
    if "--window" in sys.argv:
        print("window " + " ".join(f"{k}={v}" for k, v in window_session().items()), flush=True)
        return
    window_s = window_seconds()
    with tempfile.TemporaryDirectory() as cache:
        first = load_seconds(cache)
        cached = statistics.median(load_seconds(cache) for _ in range(3))
    c, p, ratio, t = capture_ratio()
    w = window_session_in_a_fresh_process()
    stall = max(w["first_load_stall_ms"], w["cached_load_stall_ms"], w["run_stall_ms"])
    table([
        ("window shown (python -m llmviz)", f"{window_s:.2f} s   (target <= 2 s)"),
        ("SmolLM2 load, first (GGUF conversion)", f"{first:.1f} s"),
        ("SmolLM2 load, cached safetensors", f"{cached:.2f} s   (target <= 5 s)"),
        (f"forward + capture, T={t}", f"{c * 1000:.0f} ms"),
        (f"plain sdpa forward, T={t}", f"{p * 1000:.0f} ms"),
        ("capture / plain", f"{ratio:.2f}   (target <= 1.25)"),
        ("worst GUI stall: start, engine start, conversion, first load", f"{w['first_load_stall_ms']:.1f} ms"),
        ("worst GUI stall: model switches (fresh engines), cached load", f"{w['cached_load_stall_ms']:.1f} ms"),
        ("worst GUI stall: T=512 run", f"{w['run_stall_ms']:.1f} ms"),
        ("stall_ms (the worst of the three)", f"{stall:.1f} ms   (target <= 50 ms)"),
        ("engine SIGKILLed mid-run until the views show the text again", f"{w['recover_s']:.1f} s   (target <= 8 s)"),
        ("worst GUI stall during that recovery", f"{w['recover_stall_ms']:.1f} ms"),
        ("T=4096 head map: round trip minus engine compute (median of 7)", f"{w['ipc_ms']:.2f} ms   (target <= 5 ms)"),
        ("window process RSS after the cached load", f"{w['gui_rss_gb']:.2f} GiB"),
        ("engine process RSS after the cached load", f"{w['engine_rss_gb']:.2f} GiB"),
        ("engine RSS after SmolLM2 -> MiniLM / a fresh MiniLM engine", f"{w['switch_rss_ratio']:.2f}   (target <= 1.10)"),
    ], f"llmviz start-up benchmark ({os.cpu_count()} CPUs, torch threads default)")
    result_line("startup", {"window_s": window_s, "load_first_s": first, "load_cached_s": cached,
                            "capture_ratio": ratio, "stall_ms": stall, "recover_s": w["recover_s"],
                            "ipc_ms": w["ipc_ms"], "gui_rss_gb": w["gui_rss_gb"], "engine_rss_gb": w["engine_rss_gb"],
                            "switch_rss_ratio": w["switch_rss_ratio"]})


if __name__ == "__main__":
    main()
