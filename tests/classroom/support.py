"""Small lessons on the tiny test models, and waiting for a step to draw."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmviz.main_window import MainWindow


def small_lesson(model: Path, broken: bool = False) -> str:
    """Three steps on `model`; with `broken`, the first step's TOML has a syntax error (line 11)."""
    first = "layer = = 1" if broken else "layer = 1"
    return f'''# Small lesson

```toml
model = "{model}"
text = "The cat sat on the mat"
```

## First

```toml
view = "attention"
[state]
{first}
tabs = 0
```

The first step.

## Second

```toml
view = "tokens"
[state]
second = "bert-bundled"
```

The second step.

## Third

```toml
view = "attention"
pick = "previous-token"
```

The third step.
'''


def step_drawn(window: MainWindow) -> bool:
    """The step's view has drawn and the engine is idle."""
    name = window.presentation.current_view
    return (window.info is not None and window.trace is not None and not window.host.busy
            and name is not None and window.view(name).is_ready())
