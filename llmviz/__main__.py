"""python -m llmviz: open the app, or run a headless command (export)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "export":
        from .cli import run_export

        return run_export(argv[1:])
    from .cli import app_parser

    args = app_parser().parse_args(argv)
    if args.list_docks:
        from .views import VIEWS

        for view in VIEWS:
            print(f"{view.NAME:14s} {view.TITLE}")
        return 0
    from .app import main_gui

    return main_gui(args)


if __name__ == "__main__":
    sys.exit(main())
