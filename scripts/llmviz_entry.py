"""Entry point of the packaged (PyInstaller) app: the same `main` as `python -m llmviz`.

`main` reports a damaged dependency as one message; this guard covers the one case it
cannot: llmviz's own modules missing from the app folder.
"""

import sys

if __name__ == "__main__":
    try:
        from llmviz.__main__ import main
    except Exception as exc:  # noqa: BLE001 - nothing else can report it
        print(f"llmviz: the app could not start ({type(exc).__name__}: {exc}): the package is incomplete or damaged. "
              "Rebuild the app (make package) or download it again.", file=sys.stderr)
        sys.exit(3)
    sys.exit(main())
