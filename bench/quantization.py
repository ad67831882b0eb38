"""Every position of the quantization dial on one model and text: what it costs, what it changes.

    python bench/quantization.py                      # bundled:smollm2 on the CPU, T = 128
    python bench/quantization.py --modes fp32,int8,nf4

Each precision is loaded through the dial's own code (llmviz.core.quantization_jobs.visit) beside
the fp32 reference and compared with it on the same 128 tokens.  Memory is get_memory_footprint()
plus the quantization constants it does not count (absmax, SCB); the *_mem_ratio figures divide
that by the reference's.  Load and forward times are wall clock (on a small VM they vary by tens of percent between runs).
INT2/INT1 are simulated (rounded weights stored in fp32), so their memory is the fp32 memory.
"""

from __future__ import annotations

import argparse
import math
import time

from _common import result_line  # also puts the repository on sys.path

TEXT = (
    "Quantization stores the weights of a neural network with fewer bits than the 32-bit floats it was trained "
    "with. An 8-bit integer needs a quarter of the memory, a 4-bit code an eighth, and the model runs on smaller "
    "machines. The price is precision: every weight is rounded to one of a few levels, and the rounding errors of "
    "thousands of weights add up inside each matrix product. Some formats spend their levels where weights are "
    "dense, as NormalFloat does for bell-shaped distributions; others keep the largest values exact and let the "
    "small ones share a coarse grid. Whether a model still predicts the same next word after this surgery is an "
    "empirical question, and the answer depends on the model, the format and the text. Small models tend to "
    "suffer more than large ones, because each weight carries more of the load and there is less redundancy to "
    "absorb the noise. Measuring the divergence of the predicted distributions, position by position, shows "
    "where the damage is done."
)


def measure(session, modes: list[str], log=print) -> list:
    """Visit each mode in turn (the dial's code path); returns the ModeReports."""
    from llmviz.core import quantization_jobs as q
    from llmviz.core.quantization_results import precision
    from llmviz.core.tasks import TaskContext

    state = q.dial_state(session, TaskContext())
    reports = []
    for key in modes:
        status = state.status(key)
        if not status.available:
            log(f"  {precision(key).label}: not available here: {status.reason}")
            continue
        started = time.perf_counter()
        report = q.visit(session, TaskContext(), key, session.trace.id)
        log(f"  {precision(key).label}: {time.perf_counter() - started:.1f} s "
            f"({report.costs.module_class}, {report.costs.device})")
        reports.append(report)
    return reports


def print_table(reports: list, trace_id: int) -> None:
    import pandas as pd

    from llmviz.core.quantization_results import comparison_frame

    frame = comparison_frame(reports, trace_id)
    columns = ["precision", "memory_MiB", "footprint_MiB", "load_s", "forward_s", "mean_kl", "top1_agreement",
               "perplexity"]
    if frame["cuda_change_MiB"].notna().any():
        columns.insert(2, "cuda_change_MiB")
    shown = frame[columns].rename(columns={"memory_MiB": "memory MiB", "footprint_MiB": "get_memory_footprint MiB",
                                           "cuda_change_MiB": "CUDA Δ MiB",
                                           "load_s": "load s", "forward_s": "forward s", "mean_kl": "mean KL",
                                           "top1_agreement": "top-1 agree", "perplexity": "perplexity"})
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(shown.to_string(index=False, float_format=lambda v: f"{v:,.4g}"))


def figures(reports: list) -> dict[str, float]:
    """The result line: memory relative to the reference, KL and top-1 agreement of INT8 and NF4."""
    by_key = {r.key: r for r in reports}
    reference = next(r for r in reports if r.costs.is_reference)
    out: dict[str, float] = {}
    for key in ("int8", "nf4"):
        r = by_key.get(key)
        out[f"{key}_mem_ratio"] = r.costs.memory_bytes / reference.costs.memory_bytes if r else math.nan
        out[f"{key}_kl"] = r.comparison.mean_kl if r else math.nan
    out["nf4_top1"] = by_key["nf4"].comparison.top1_rate if "nf4" in by_key else math.nan
    return out


def load_reference(model: str, device: str, dtype: str, tokens: int):
    from llmviz.core.session import Session
    from llmviz.core.specs import ModelSpec

    session = Session()
    info = session.load(ModelSpec(model, device=device, dtype=dtype))
    trace = session.run(TEXT, max_tokens=tokens)
    if trace.num_tokens != tokens:
        raise SystemExit(f"the benchmark text has only {trace.num_tokens} tokens for {model}; need {tokens}")
    print(f"{info.title}: {info.num_parameters:,} parameters, {info.dtype} on {info.device}; T = {trace.num_tokens}")
    return session


def main() -> None:
    from llmviz.core.quantization_results import PRECISIONS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bundled:smollm2")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--modes", default=",".join(p.key for p in PRECISIONS),
                        help="comma-separated dial positions (default: all)")
    args = parser.parse_args()
    session = load_reference(args.model, "cpu", "float32", args.tokens)
    reports = measure(session, args.modes.split(","))
    print(f"\nQuantization of {session.info.title} on this CPU, T = {args.tokens} (timings vary between runs; "
          "INT2/INT1 are simulated and stored in fp32)")
    print_table(reports, session.trace.id)
    result_line("quantization", figures(reports))


if __name__ == "__main__":
    main()
