"""How long a test waits for the engine (a model load, a trace, a job, a view to be ready)
before it fails.

One setting for every test: generous, because the machine running the tests may be shared,
and a wait that succeeds ends as soon as the event arrives, so only a failing test pays for it.
"""

WAIT_MS = 240_000
