"""Drive a view the way the main window does: load a model and run a text on a real ModelHost.

Views are driven the way the main window drives them: a real ModelHost loads a real
model and runs the text; the view gets the ModelInfo and the Trace and submits its own jobs.
"""

from __future__ import annotations

from llmviz.core.results import Trace
from llmviz.core.specs import ModelSpec

from ..timeouts import WAIT_MS


def load(qtbot, host, views, source: str):
    with qtbot.waitSignal(host.sig_model_loaded, timeout=WAIT_MS) as blocker:
        host.load(ModelSpec(source, device="cpu"))
    for view in views:
        view.on_model_loaded(blocker.args[0])
    return blocker.args[0]


def run(qtbot, host, view, text: str) -> Trace:
    """Run `text` and hand the trace to `view`; returns when the view says it has drawn."""
    with qtbot.waitSignal(host.sig_trace, timeout=WAIT_MS) as blocker:
        host.run_text(text)
    trace = blocker.args[0]
    with qtbot.waitSignal(view.sig_ready, timeout=WAIT_MS):
        view.on_trace(trace)
    qtbot.waitUntil(lambda: view.is_ready() and not host.busy, timeout=WAIT_MS)
    return trace
