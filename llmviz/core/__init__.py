"""Qt-free core of llmviz: model loading, tracing and analysis.

Nothing in this package may import Qt (tests/core/test_core_is_qt_free.py enforces it),
so every function here runs the same in the app's worker thread, in the command-line
export and in plain tests.  Modules that only define result types import numpy, never
torch, so the GUI can use them without paying for a torch import at start-up.
"""
