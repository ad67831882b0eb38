"""Explain benchmark: input attributions on the bundled SmolLM2, in process, this machine's CPU.

- gxi_s_512: gradient × input at T = 512; gxi_floor_ratio: that over one plain forward +
  backward of the same input, timed in the same run (the model as loaded: `model(input_ids)`,
  every logit, the target's log-probability backpropagated, weights' gradients included,
  as an autograd user or a peer library does it);
- ig_s_128: integrated gradients, 32 steps, T = 128 (the 4-step coarse picture included);
  ig_first_s_128: until that coarse picture;
- ig_matmul_floor_s_128: the matrix products those 32 steps cannot skip (every block's weights,
  forward and backward to the input, at the real shapes), timed alone: the floor under ig_s_128;
- ig_completeness_gap: |Σ IG − (f(x) − f(x'))| / |f(x) − f(x')| at 64 steps, T = 128;
- occlusion_s_128: leave-one-out, per token, T = 128;
- captum_ig_s_128 and captum_gap_128: captum's LayerIntegratedGradients on the same text in the
  same run, as the issue's peer figures were taken (the embeddings layer, 32 steps, internal batch 8,
  the target's log-probability, captum's default baseline); ig_captum_ratio_128 is ig_s_128 over
  captum_ig_s_128 (below 1: llmviz is faster);
- with --refine: ig_refined_steps_128, ig_refined_gap_128, ig_refined_s_128: Explain with Refine ticked
  (64 steps, doubled while the gap is above 1 %) on the same text;
- with --long: ig_s_2048 and ig_rss_gb_2048, 32 steps at T = 2048 in a fresh process (its
  peak RSS, VmHWM); without it they are reported as "skipped".

Run: python bench/explain.py [--refine] [--long]
(LLMVIZ_BENCH_LONG_STEPS=N runs the T = 2048 child with N steps instead of 32: the peak memory does
not depend on N, since the integration runs one path point at a time at that length.)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from _common import peak_rss_bytes, result_line, table

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedTokenizerBase

    from llmviz.core.models import LoadedModel

WORDS = ("the cat dog house river mountain teacher student small large quickly slowly red green old new "
         "walks sees finds builds reads writes under over near behind because although while when").split()


def text_of(tokens: int, tokenizer: PreTrainedTokenizerBase) -> str:
    """A deterministic text of at least `tokens` SmolLM2 tokens."""
    import random

    rng = random.Random(0)
    words: list[str] = []
    while len(tokenizer(" ".join(words))["input_ids"]) < tokens:
        words += [rng.choice(WORDS) for _ in range(50)]
    return " ".join(words)


def ids_of(loaded: LoadedModel, tokens: int) -> np.ndarray:
    import numpy as np

    return np.asarray(loaded.tokenizer(text_of(tokens, loaded.tokenizer))["input_ids"][:tokens], dtype=np.int64)


def floor_s(loaded: LoadedModel, ids: np.ndarray, token: int) -> float:
    """One plain forward + backward of the model on `ids` (the way autograd users write it)."""
    import torch

    t0 = time.perf_counter()
    logits = loaded.model(input_ids=torch.as_tensor(ids)[None]).logits
    torch.log_softmax(logits[0, -1], -1)[token].backward()
    loaded.model.zero_grad(set_to_none=True)
    return time.perf_counter() - t0


def gemm_gflops() -> float:
    """This machine's fp32 matrix-product rate with torch's threads (best of 5, 2048 x 2048)."""
    import torch

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b  # warm-up
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * 2048**3 / min(times) / 1e9


def captum_ig(loaded: LoadedModel, ids: np.ndarray, token: int) -> tuple[float, float]:
    """captum 0.9's LayerIntegratedGradients with its defaults: seconds and its completeness gap."""
    import torch
    from captum.attr import LayerIntegratedGradients

    model = loaded.model

    def log_prob(input_ids: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(input_ids=input_ids).logits[:, -1].float(), -1)[:, token]

    x = torch.as_tensor(ids)[None]
    t0 = time.perf_counter()
    _attr, delta = LayerIntegratedGradients(log_prob, model.get_input_embeddings()).attribute(
        x, n_steps=32, internal_batch_size=8, return_convergence_delta=True)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        change = float(log_prob(x) - log_prob(torch.zeros_like(x)))  # captum's default baseline: id 0
    return seconds, abs(float(delta)) / abs(change)


def matmul_floor_s(loaded: LoadedModel, tokens: int, batch_tokens: int = 2048) -> float:
    """The matrix products integrated gradients cannot skip, timed alone at their real shapes.

    Every linear layer of the blocks once forward (x W^T) and once backward to its input
    (g W), for `tokens` rows in batches of `batch_tokens` (llmviz's batch at T = 128); the head
    is left out, since llmviz runs it at one position only.  Best of two."""
    import torch

    head = loaded.model.get_output_embeddings()
    weights = [m.weight.detach() for m in loaded.model.modules()
               if isinstance(m, torch.nn.Linear) and m is not head]
    rows = {d: torch.randn(batch_tokens, d) for w in weights for d in w.shape}  # inputs and output gradients
    best = float("inf")
    with torch.no_grad():
        for _ in range(2):
            t0 = time.perf_counter()
            for w in weights:
                rows[w.shape[1]] @ w.t()
                rows[w.shape[0]] @ w
            best = min(best, time.perf_counter() - t0)
    return best * tokens / batch_tokens


def long_run() -> None:
    """--long-child: 32-step IG at T = 2048 in this fresh process; prints seconds and peak GB."""
    from llmviz.core.explain_jobs import explain_ids
    from llmviz.core.session import Session
    from llmviz.core.specs import ModelSpec
    from llmviz.core.tasks import TaskContext

    session = Session()
    session.load(ModelSpec("bundled:smollm2", device="cpu"))
    loaded = session.require_model()
    ids = ids_of(loaded, 2048)
    steps = int(os.environ.get("LLMVIZ_BENCH_LONG_STEPS", "32"))
    result = explain_ids(loaded, ids, TaskContext(), methods=["ig"], steps=steps, with_faithfulness=False)
    print(f"LONG {result.timings['ig_s']:.3f} {peak_rss_bytes() / 1e9:.3f} {result.completeness_gap:.5f}")


def main() -> int:
    if "--long-child" in sys.argv:
        long_run()
        return 0
    import torch

    from llmviz.core.explain_jobs import explain_ids
    from llmviz.core.session import Session
    from llmviz.core.specs import ModelSpec
    from llmviz.core.tasks import TaskContext

    session = Session()
    session.load(ModelSpec("bundled:smollm2", device="cpu"))
    loaded = session.require_model()
    figures: dict[str, float | str] = {}
    rows = []
    ids512 = ids_of(loaded, 512)
    gxi, floor = [], []
    for _ in range(3):  # alternate, so both see the same machine load
        r = explain_ids(loaded, ids512, TaskContext(), methods=["gxi"], with_faithfulness=False)
        gxi.append(r.timings["gxi_s"])
        floor.append(floor_s(loaded, ids512, r.target.token_id))
    figures["gxi_s_512"] = statistics.median(gxi)
    figures["gxi_floor_ratio"] = statistics.median(gxi) / statistics.median(floor)
    rows += [("gradient × input, T=512 (median of 3)", f"{statistics.median(gxi):.2f} s"),
             ("plain forward + backward, T=512", f"{statistics.median(floor):.2f} s")]
    ids128 = ids_of(loaded, 128)
    r = explain_ids(loaded, ids128, TaskContext(), methods=["ig"], steps=32, with_faithfulness=False)
    figures["ig_s_128"], figures["ig_first_s_128"] = r.timings["ig_s"], r.timings["ig_first_s"]
    # The arithmetic alone: a forward and an input-only backward through every block's weights.
    figures["ig_matmul_floor_s_128"] = matmul_floor_s(loaded, 32 * 128)
    rows += [("fp32 matrix-product rate (2048 x 2048)", f"{gemm_gflops():.0f} GFLOP/s"),
             ("  32 steps' matrix products alone, T=128", f"{figures['ig_matmul_floor_s_128']:.1f} s")]
    rows += [("integrated gradients, 32 steps, T=128", f"{r.timings['ig_s']:.2f} s (gap {r.completeness_gap:.2%})"),
             ("  first coarse picture (4 steps)", f"{r.timings['ig_first_s']:.2f} s")]
    try:
        captum_s, captum_gap = captum_ig(loaded, ids128, r.target.token_id)
    except ImportError:  # captum comes with the test tools (make install); a bare install lacks it
        figures["captum_ig_s_128"] = figures["captum_gap_128"] = figures["ig_captum_ratio_128"] = "no-captum"
    else:
        figures["captum_ig_s_128"], figures["captum_gap_128"] = captum_s, captum_gap
        figures["ig_captum_ratio_128"] = r.timings["ig_s"] / captum_s
        rows += [("captum LayerIntegratedGradients, same text, its defaults",
                  f"{captum_s:.2f} s (gap {captum_gap:.2%})")]
    r = explain_ids(loaded, ids128, TaskContext(), methods=["ig"], steps=64, with_faithfulness=False)
    figures["ig_completeness_gap"] = r.completeness_gap
    rows.append(("completeness gap, 64 steps, T=128", f"{r.completeness_gap:.4f} ({r.timings['ig_s']:.2f} s)"))
    if "--refine" in sys.argv:
        r = explain_ids(loaded, ids128, TaskContext(), methods=["ig"], steps=64, with_faithfulness=False,
                        refine_gap=0.01)
        figures["ig_refined_steps_128"], figures["ig_refined_gap_128"] = r.ig_steps, r.completeness_gap
        figures["ig_refined_s_128"] = r.timings["ig_s"]
        rows.append(("refined from 64 steps to a gap ≤ 1 %, T=128",
                     f"{r.ig_steps} steps, gap {r.completeness_gap:.4f} ({r.timings['ig_s']:.1f} s)"))
    r = explain_ids(loaded, ids128, TaskContext(), methods=["occlusion"], with_faithfulness=False, by_word=False)
    figures["occlusion_s_128"] = r.timings["occlusion_s"]
    rows.append(("occlusion (leave one token out), T=128", f"{r.timings['occlusion_s']:.2f} s"))
    if "--long" in sys.argv:
        out = subprocess.run([sys.executable, __file__, "--long-child"], capture_output=True, text=True,
                             env={**os.environ}, timeout=3600)
        line = next((x for x in out.stdout.splitlines() if x.startswith("LONG")), None)
        if line is None:
            print(out.stderr[-2000:], file=sys.stderr)
            figures["ig_s_2048"] = figures["ig_rss_gb_2048"] = "failed"
        else:
            _tag, seconds, rss, gap = line.split()
            figures["ig_s_2048"], figures["ig_rss_gb_2048"] = float(seconds), float(rss)
            rows.append(("integrated gradients, 32 steps, T=2048", f"{float(seconds):.1f} s, peak RSS {float(rss):.2f} GB, "
                         f"gap {float(gap):.2%}"))
    else:
        figures["ig_s_2048"] = figures["ig_rss_gb_2048"] = "skipped"
    table(rows, f"Explain (bundled:smollm2 fp32, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs)")
    result_line("explain", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
