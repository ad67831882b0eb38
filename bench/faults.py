"""The fault suite as a table: every command-line fault case, its outcome and its time.

Run: python bench/faults.py [-k EXPR]

Runs tests/faults (each case starts `python -m llmviz export` in a subprocess under a
resource limit, a real signal, a read-only place or a damaged model/cache, and checks the
exit code, the one message, no traceback, no partial output, no leftover process or
temporary) through pytest, reads its JUnit report and prints one row per case.  Cases
that cannot run on this machine (tmpfs mounts need root) are counted as skipped, not
passed.  `-k` passes a selection on to pytest.

- cases: fault cases run (skips excluded); passed: of those, how many held.
- The window's soak (200 load/run/cancel/switch/edit cycles, RSS growth over the last
  100) belongs to the engine process and is added to this line as `soak_cycles=...
  soak_rss_growth_mb=...` by `window_soak()` below once it exists.
"""

from __future__ import annotations

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


def window_soak() -> dict[str, float | int]:
    """The window soak's figures (soak_cycles, soak_rss_growth_mb); empty until the engine process lands."""
    return {}


def main() -> int:
    rows, wall = cli_faults(sys.argv[1:])
    table([(name, f"{outcome:8s} {seconds:6.1f} s") for name, outcome, seconds in rows],
          f"Command-line fault cases ({wall:.0f} s in all)")
    ran = [r for r in rows if r[1] != "skipped"]
    passed = sum(r[1] == "passed" for r in ran)
    figures: dict[str, float | int | str] = {"cases": len(ran), "passed": passed}
    skipped = len(rows) - len(ran)
    if skipped:
        figures["skipped"] = skipped
    figures.update(window_soak())
    result_line("faults", figures)
    return 0 if ran and passed == len(ran) else 1


if __name__ == "__main__":
    sys.exit(main())
