"""What the notebook's first cell printed, and a bit more: versions and devices."""

from __future__ import annotations

import platform
import sys
from importlib import metadata


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment_report() -> dict[str, str]:
    """Versions and CUDA devices (imports torch: call it on the worker thread; the GUI adds Qt's)."""
    import torch

    import llmviz

    report = {
        "llmviz": llmviz.__version__,
        "Python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": package_version("transformers"),
        "accelerate": package_version("accelerate"),
        "bitsandbytes": package_version("bitsandbytes"),
        "CUDA available": str(torch.cuda.is_available()),
        "Platform": f"{platform.system()} {platform.machine()}",
    }
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            report[f"CUDA device {i}"] = f"{props.name}, {props.total_memory / 2**30:.1f} GB"
        report["CUDA (torch build)"] = str(torch.version.cuda)
    report["Executable"] = sys.executable
    return report
