"""Entry point of the packaged (PyInstaller) app: the same `main` as `python -m llmviz`."""

import sys

from llmviz.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
