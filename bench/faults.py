"""The fault suite as a table: every command-line fault case, its outcome and its time.

Run: python bench/faults.py [--soak-only] [--cycles N] [-k EXPR]

Runs tests/faults (each case starts `python -m llmviz export` in a subprocess under a
resource limit, a real signal, a read-only place or a damaged model/cache, and checks the
exit code, the one message, no traceback, no partial output, no leftover process or
temporary) through pytest, reads its JUnit report and prints one row per case.  Cases
that cannot run on this machine (tmpfs mounts need root) are counted as skipped, not
passed.  `-k` passes a selection on to pytest.

- cases: fault cases run (skips excluded); passed: of those, how many held.
- soak_cycles: load/run/cancel/switch/edit cycles in random order (seed 7) in one real window
  on the three tiny test models (tests/faults/window_soak.py); soak_errors: errors a user
  would have seen; soak_rss_growth_mb: the window process's RSS growth over the last 100
  cycles (target <= 50); soak_s: its wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from _common import ROOT, result_line, table


def cli_faults(selection: list[str]) -> tuple[list[tuple[str, str, float]], float]:
    """(case, outcome, seconds) for every case of tests/faults, and the wall time of the run."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "faults.xml"
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                        "tests/faults", *selection], cwd=ROOT)
        wall = time.perf_counter() - started
        rows = []
        for case in ET.parse(report).getroot().iter("testcase"):
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
            if case.find("skipped") is not None:
                outcome = "skipped"
            elif case.find("failure") is not None or case.find("error") is not None:
                outcome = "FAILED"
            else:
                outcome = "passed"
            rows.append((name, outcome, float(case.get("time", 0.0))))
    return rows, wall


def window_soak(cycles: int) -> dict[str, float | int]:
    """Build the tiny models (in a child: torch stays out of the soak's window process), run the
    soak and summarise it."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-c", "import sys, pathlib; from tests.tiny_models import build_tiny_models; "
                        "build_tiny_models(pathlib.Path(sys.argv[1]))", tmp], cwd=ROOT, check=True,
                       capture_output=True)
        models = [str(Path(tmp) / f"tiny-{m}") for m in ("llama", "gpt2", "bert")]
        proc = subprocess.run([sys.executable, "-m", "tests.faults.window_soak", "--cycles", str(cycles), "--seed", "7",
                               *models], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for error in report["errors"]:
        print("soak error:", error)
    rss = report["rss_mb"]
    print(f"window RSS over the soak: first {rss[0]:.0f} MiB, cycle 100 {rss[min(99, len(rss) - 1)]:.0f} MiB, "
          f"last {rss[-1]:.0f} MiB; engine restarts {report['engine_restarts']}")
    return {"soak_cycles": report["cycles"], "soak_errors": len(report["errors"]),
            "soak_rss_growth_mb": report["window_rss_growth_mb"], "soak_s": report["seconds"]}


def main() -> int:
    parser = argparse.ArgumentParser(description="The fault suite as a table, and the window soak.")
    parser.add_argument("--soak-only", action="store_true", help="skip the command-line cases")
    parser.add_argument("--cycles", type=int, default=200, help="soak cycles (default 200)")
    args, selection = parser.parse_known_args()
    figures: dict[str, float | int | str] = {}
    ok = True
    if not args.soak_only:
        rows, wall = cli_faults(selection)
        table([(name, f"{outcome:8s} {seconds:6.1f} s") for name, outcome, seconds in rows],
              f"Command-line fault cases ({wall:.0f} s in all)")
        ran = [r for r in rows if r[1] != "skipped"]
        passed = sum(r[1] == "passed" for r in ran)
        figures.update(cases=len(ran), passed=passed)
        skipped = len(rows) - len(ran)
        if skipped:
            figures["skipped"] = skipped
        ok = bool(ran) and passed == len(ran)
    soak = window_soak(args.cycles)
    figures.update(soak)
    result_line("faults", figures)
    return 0 if ok and soak["soak_errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
