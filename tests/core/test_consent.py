"""Consent to run a model's own code: never assumed, never asked on a terminal.

Left unset, `trust_remote_code` makes transformers ask on standard input whenever a
terminal is attached (and wait up to 15 s for an answer); llmviz passes False wherever the
user did not consent, so a folder carrying code is refused at once and none of it runs.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmviz.core.errors import LlmvizError, RemoteCodeRefused
from llmviz.core.session import Session
from llmviz.core.tokenizers import load_tokenizer

ROOT = Path(__file__).resolve().parents[2]


def custom_tokenizer_folder(tmp_path: Path) -> tuple[Path, Path]:
    """A folder whose tokenizer is its own Python code; importing that code creates `marker`."""
    folder = tmp_path / "custom-tokenizer"
    folder.mkdir()
    marker = tmp_path / "tokenizer-code-ran"
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "CustomTokenizer",
        "auto_map": {"AutoTokenizer": ["tokenization_custom.CustomTokenizer", None]}}))
    (folder / "tokenization_custom.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "from transformers import PreTrainedTokenizer\nclass CustomTokenizer(PreTrainedTokenizer):\n    pass\n")
    return folder, marker


def test_compare_loader_refuses_a_tokenizer_with_its_own_code(tmp_path):
    folder, marker = custom_tokenizer_folder(tmp_path)
    with pytest.raises(LlmvizError, match="ships its own Python code; the comparison never runs"):
        load_tokenizer(Session(), str(folder))
    assert not marker.exists()


def test_compare_loader_never_prompts_on_a_terminal(tmp_path):
    """With a terminal as standard input (where transformers would ask), the refusal is immediate."""
    folder, marker = custom_tokenizer_folder(tmp_path)
    code = ("from llmviz.core.session import Session\nfrom llmviz.core.tokenizers import load_tokenizer\n"
            "from llmviz.core.errors import LlmvizError\n"
            f"try:\n    load_tokenizer(Session(), {str(folder)!r})\nexcept LlmvizError as e:\n    print('REFUSED', e)\n")
    primary, secondary = pty.openpty()
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", code], stdin=secondary, capture_output=True, text=True,
                              timeout=120, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    finally:
        os.close(primary)
        os.close(secondary)
    assert "REFUSED" in done.stdout, done.stdout + done.stderr
    assert "Do you wish to run the custom code" not in done.stdout + done.stderr
    assert time.monotonic() - started < 60 and not marker.exists()


def test_load_refusal_names_the_checkbox_in_the_window_and_the_option_on_the_command_line():
    refused = RemoteCodeRefused("some/model")
    assert "tick 'Allow this model's own code'" in str(refused)
    assert "--trust-remote-code" in refused.for_command_line() and "tick" not in refused.for_command_line()
