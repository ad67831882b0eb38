"""The quantization dial on a CUDA GPU: INT8 and NF4 (bitsandbytes) beside the reference, same table as the CPU bench.

    python bench/quantization_gpu.py --out /tmp/qgpu                  # bundled:smollm2, fp32 reference
    python bench/quantization_gpu.py --out /tmp/qgpu --dtype float16 --modes fp16,int8,nf4,nf4-dq

Runs the dial's own code path (llmviz.core.quantization_jobs) with the model on CUDA, checks that
the variants really are bitsandbytes layers on the GPU, prints the table and writes
quantization_gpu.csv and quantization_gpu.json into --out.  It writes nothing outside --out:
the bundled model's conversion cache goes under --out as well (pass --cache-dir to reuse an
existing llmviz cache instead).  Hub ids load offline from --out/hf-home unless you set
HF_HUB_OFFLINE=0 (they are then downloaded there).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="folder for every file this script writes (created)")
    p.add_argument("--model", default="bundled:smollm2")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                   help="the reference's dtype; bitsandbytes computes in it")
    p.add_argument("--modes", default="int8,nf4", help="comma-separated dial positions besides the reference")
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--cache-dir", type=Path, help="an llmviz cache to read the converted bundled model from")
    return p.parse_args()


def keep_writes_inside(out: Path, cache_dir: Path | None) -> None:
    """Point every cache this run could write to at --out (before torch or transformers are imported)."""
    out.mkdir(parents=True, exist_ok=True)
    os.environ["LLMVIZ_CACHE_DIR"] = str(cache_dir or out / "llmviz-cache")
    os.environ.setdefault("HF_HOME", str(out / "hf-home"))
    os.environ["TRITON_CACHE_DIR"] = str(out / "triton-cache")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(out / "inductor-cache")
    os.environ["MPLCONFIGDIR"] = str(out / "matplotlib")


def main() -> int:
    args = parse()
    keep_writes_inside(args.out.resolve(), args.cache_dir)
    import torch

    if not torch.cuda.is_available():
        print(f"error: CUDA is not available (torch {torch.__version__}, CUDA build {torch.version.cuda}); "
              "run this on a machine with an NVIDIA GPU and a CUDA build of torch.", file=sys.stderr)
        return 2
    import bitsandbytes as bnb
    from quantization import figures, load_reference, measure, print_table

    from llmviz.core.quantization_results import comparison_frame, precision, reference_key
    from llmviz.core.quantization_state import cached_variant

    print(f"{torch.cuda.get_device_name(0)} · torch {torch.__version__} (CUDA {torch.version.cuda}) · "
          f"bitsandbytes {bnb.__version__}")
    session = load_reference(args.model, "cuda", args.dtype, args.tokens)
    modes = [reference_key(session.info)] + [m for m in args.modes.split(",") if m != reference_key(session.info)]
    reports = measure(session, modes)
    for report in reports:  # the variants really are bitsandbytes layers on the GPU
        variant = cached_variant(session, report.key)
        if variant is not None and precision(report.key).uses_bitsandbytes:
            layers = [m for m in variant.model.modules() if isinstance(m, (bnb.nn.Linear8bitLt, bnb.nn.Linear4bit))]
            devices = {m.weight.device.type for m in layers}
            assert layers and devices == {"cuda"}, f"{report.key}: {len(layers)} bitsandbytes layers on {devices}"
    print(f"\nQuantization of {session.info.title} on {torch.cuda.get_device_name(0)}, T = {args.tokens}, "
          f"reference {args.dtype}")
    print_table(reports, session.trace.id)
    comparison_frame(reports, session.trace.id).to_csv(args.out / "quantization_gpu.csv", index=False)
    result = figures(reports)
    (args.out / "quantization_gpu.json").write_text(json.dumps(
        {"device": torch.cuda.get_device_name(0), "model": args.model, "dtype": args.dtype, **result}, indent=2))
    print("quantization_gpu: " + " ".join(f"{k}={v:.4g}" for k, v in result.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
