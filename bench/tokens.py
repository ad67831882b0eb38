"""Similarity slider redraws at T = 512, and live generation against plain model.generate.

Run: python bench/tokens.py

- similarity_redraw_ms_512: the similarity dock with a real SmolLM2 trace of 512 tokens;
  the layer slider is moved to each of the 31 layers (nothing cached) and the time from
  setValue to the repainted dock is taken (median, and worst in the table).
- gen_tokens_per_s: the generation dock generating 64 tokens greedily (one worker job per
  token, the live plot updating) from Generate to the last token, prompt included.
- generate_tokens_per_s: `model.generate` with the same prompt and settings (64 new
  tokens, greedy, KV cache), run as a job on the same worker thread, same model object.
- gen_ratio = gen / generate (target >= 0.8); gui_stall_ms: the longest GUI-thread stall
  (10 ms heartbeat) while the dock generated.  The table also shows the same steps run in
  one worker job without the GUI (the per-step job and drawing overhead is the difference)
  and the stall while model.generate ran (what the CPU load alone causes).
Each generation figure is the best of two rounds (on a small VM timings vary; the best round is the
least disturbed).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from _common import Heartbeat, result_line, table, wait_until

PROMPT = "The history of language models begins"
NEW_TOKENS = 64
ROUNDS = 2


def reference_job(session, ctx, text: str, new_tokens: int) -> float:
    """Worker job (target 'tokens.reference_job'): plain model.generate, timed, on the same thread as the dock's steps."""
    import torch

    ids = torch.tensor([session.loaded.tokenizer(text)["input_ids"]])
    with torch.inference_mode():
        started = time.perf_counter()
        out = session.loaded.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                            min_new_tokens=new_tokens, do_sample=False)
        elapsed = time.perf_counter() - started
    assert out.shape[1] - ids.shape[1] == new_tokens
    return new_tokens / elapsed


def on_worker(host, target: str, **kwargs):
    """Run a job in the ModelHost's engine process and wait for its value."""
    done: dict = {}
    host.call(target, channel="bench", label="bench", on_done=lambda outcome: done.setdefault("outcome", outcome),
              **kwargs)
    idle_until(lambda: "outcome" in done)
    assert done["outcome"].ok, done["outcome"].message
    return done["outcome"].value


def idle_until(predicate) -> None:
    """Let the event loop idle (as the app does) until `predicate()`, checking every 20 ms."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: loop.quit() if predicate() else None)
    timer.start(20)
    loop.exec()
    timer.stop()


def main() -> int:
    from PySide6.QtWidgets import QApplication

    from llmviz.core.specs import ModelSpec
    from llmviz.views.generation import GenerationView
    from llmviz.views.similarity import SimilarityView
    from llmviz.workers.model_host import ModelHost

    app = QApplication.instance() or QApplication(sys.argv)
    host = ModelHost()
    got: dict = {}
    host.sig_model_loaded.connect(lambda info: got.__setitem__("info", info))
    host.sig_trace.connect(lambda trace: got.__setitem__("trace", trace))
    host.load(ModelSpec("bundled:smollm2", device="cpu"))
    wait_until(lambda: "info" in got and not host.busy)

    # -- similarity slider at T = 512
    sim = SimilarityView(host)
    sim.resize(1200, 900)
    sim.show()
    sim.on_model_loaded(got["info"])
    host.run_text("The quick brown fox jumps over the lazy dog while the cat watches. " * 60, max_tokens=512)
    wait_until(lambda: "trace" in got and not host.busy)
    trace = got["trace"]
    assert trace.num_tokens == 512, trace.num_tokens
    sim.on_trace(trace)
    app.processEvents()
    redraws = []
    def move_to(layer: int) -> float:
        """Slider moved -> the engine's map for that layer drawn and painted (ms)."""
        started = time.perf_counter()
        sim.mark_busy()
        if sim.slider.value() == layer:
            sim.redraw()  # setValue to the same layer emits nothing: ask for the map as a move would
        else:
            sim.slider.setValue(layer)
        wait_until(sim.is_ready)
        sim.repaint()  # force the paint now, so it is inside the measurement
        app.processEvents()
        return (time.perf_counter() - started) * 1000

    redraws = [move_to(layer) for layer in list(range(trace.num_states)) + [trace.num_states - 1, 0]]
    sim.center.setChecked(True)
    wait_until(sim.is_ready)
    centred = [move_to(layer) for layer in (5, 15, 25)]

    # -- generation: the dock against model.generate
    view = GenerationView(host)
    view.resize(1200, 900)
    view.show()
    view.on_model_loaded(got["info"])
    got.pop("trace")
    host.run_text(PROMPT)
    wait_until(lambda: "trace" in got and not host.busy)
    view.on_trace(got["trace"])
    view.max_new.setValue(NEW_TOKENS)
    view.stop_at_eos.setChecked(False)
    on_worker(host, "tokens.reference_job", text=PROMPT, new_tokens=8)  # warm-up
    live, plain, stalls, step_ms, gui_ms = [], [], [], [], []
    heartbeat = Heartbeat()
    handle = view._step_done

    def timed_step_done(outcome):
        started = time.perf_counter()
        handle(outcome)
        gui_ms.append((time.perf_counter() - started) * 1000)

    view._step_done = timed_step_done  # each step's on_done is looked up at call time
    core, plain_stalls = [], []
    for _ in range(ROUNDS):
        heartbeat.start()  # ticking during the reference too: the same GIL traffic from the GUI thread
        plain.append(on_worker(host, "tokens.reference_job", text=PROMPT, new_tokens=NEW_TOKENS))
        plain_stalls.append(heartbeat.stop())
        started = time.perf_counter()
        on_worker(host, "llmviz.core.generation_jobs.generate", text=PROMPT, max_new_tokens=NEW_TOKENS, stop_at_eos=False)
        core.append(NEW_TOKENS / (time.perf_counter() - started))
        heartbeat.start()
        started = time.perf_counter()
        view.generate()
        idle_until(lambda: not view.running)
        elapsed = time.perf_counter() - started
        stalls.append(heartbeat.stop())
        assert len(view.steps) == NEW_TOKENS, view.status.text()
        live.append(NEW_TOKENS / elapsed)
        step_ms.append(statistics.median(s.latency_s * 1000 for s in view.steps[1:]))
    host.shutdown()

    gen_tps, ref_tps = max(live), max(plain)
    table([
        ("similarity redraw, T=512 (median / best / worst)",
         f"{statistics.median(redraws):.1f} / {min(redraws):.1f} / {max(redraws):.1f} ms"),
        ("  centred (median of 3)", f"{statistics.median(centred):.1f} ms"),
        ("generation dock, 64 tokens (rounds)", ", ".join(f"{v:.2f}" for v in live) + " tokens/s"),
        ("model.generate, 64 tokens (rounds)", ", ".join(f"{v:.2f}" for v in plain) + " tokens/s"),
        ("core steps in one job, no GUI (rounds)", ", ".join(f"{v:.2f}" for v in core) + " tokens/s"),
        ("ratio (best / best)", f"{gen_tps / ref_tps:.2f}"),
        ("worker step latency (median)", ", ".join(f"{v:.1f}" for v in step_ms) + " ms"),
        ("GUI time per arriving step (median / worst)", f"{statistics.median(gui_ms):.1f} / {max(gui_ms):.1f} ms"),
        ("longest GUI stall while generating", ", ".join(f"{v:.1f}" for v in stalls) + " ms"),
        ("  ... while model.generate ran", ", ".join(f"{v:.1f}" for v in plain_stalls) + " ms"),
    ], f"Tokens, similarity and generation (SmolLM2-135M, {os.cpu_count()} CPUs)")
    result_line("tokens", {
        "similarity_redraw_ms_512": statistics.median(redraws),
        "gen_tokens_per_s": gen_tps,
        "generate_tokens_per_s": ref_tps,
        "gen_ratio": gen_tps / ref_tps,
        "gui_stall_ms": max(stalls),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
