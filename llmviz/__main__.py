"""python -m llmviz: open the app, run a headless command (export), or serve as the app's engine process."""

from __future__ import annotations

import sys

from .core.import_failure import import_failure_message


def _main(argv: list[str]) -> int:
    if argv and argv[0] == "__engine__" and len(argv) == 3:  # the window's engine process (core/engine.py)
        from .core import engine

        return engine.main(int(argv[1]), int(argv[2]))
    from .core.bundled import CONVERT_COMMAND

    if argv and argv[0] == CONVERT_COMMAND and len(argv) == 3:  # bundled.convert_gguf's child process
        from pathlib import Path

        from .core.bundled import convert_in_this_process

        return convert_in_this_process(Path(argv[1]), Path(argv[2]))
    if argv and argv[0] == "export":
        from .cli import run_export

        return run_export(argv[1:])
    if argv and argv[0] == "explain":
        from .cli_explain import run_explain

        return run_explain(argv[1:])
    from .cli import app_parser

    args = app_parser().parse_args(argv)
    if args.list_docks:
        from .views import VIEWS

        for view in VIEWS:
            print(f"{view.NAME:14s} {view.TITLE}")
        return 0
    from .app import main_gui

    return main_gui(args)


def main(argv: list[str] | None = None) -> int:
    """Run a command; a damaged dependency ends it with one message naming the package (exit 3)."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except Exception as exc:
        message = import_failure_message(exc)
        if message is None:
            raise
        print(f"llmviz: {message}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
