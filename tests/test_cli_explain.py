"""`python -m llmviz explain` as scripts run it: the two CSV files, and one-line errors for bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from .test_cli import llmviz


def test_explain_writes_attributions_and_faithfulness(tmp_path, tiny_models):
    out = tmp_path / "why"
    result = llmviz("explain", "--model", str(tiny_models["llama"]), "--text", "The cat sat on the mat",
                    "--target", "3", "--method", "ig,gxi,occlusion", "--steps", "64", "--out", str(out))
    assert result.returncode == 0, result.stderr
    attributions = pd.read_csv(out / "attributions.csv")
    assert list(attributions.columns) == ["position", "token", "token_id", "gxi", "ig", "occlusion"]
    assert list(attributions.position) == [0, 1, 2, 3]  # the text up to the explained position
    faithfulness = pd.read_csv(out / "faithfulness.csv")
    assert set(faithfulness.method) == {"gxi", "ig", "occlusion", "random"}
    assert "completeness gap" in result.stderr
    gap = float(result.stderr.split("completeness gap ")[1].split("%")[0]) / 100
    assert gap <= 0.01
    assert not list(out.glob("*.tmp*"))


def test_explain_a_chosen_token_and_an_encoder_similarity(tmp_path, tiny_models):
    result = llmviz("explain", "--model", str(tiny_models["llama"]), "--text", "The cat sat on the mat",
                    "--target=-1:42", "--method", "gxi", "--no-faithfulness", "--out", str(tmp_path / "a"))
    assert result.returncode == 0, result.stderr
    assert pd.read_csv(tmp_path / "a" / "faithfulness.csv").empty
    result = llmviz("explain", "--model", str(tiny_models["bert"]), "--text", "The cat sat on the mat",
                    "--compare", "A dog on a rug", "--method", "ig,rollout", "--out", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    frame = pd.read_csv(tmp_path / "b" / "attributions.csv")
    assert frame.token.iloc[0] == "[CLS]" and np.isfinite(frame.ig).all()


@pytest.mark.parametrize("args,code,message", [
    (["--target", "99"], 1, "past the text"),
    (["--target", "x"], 2, "not a position"),
    (["--target=2:several words here"], 1, "not one"),
    (["--method", "shap"], 2, "unknown shap"),
    (["--steps", "0"], 2, "--steps"),
    (["--refine-gap", "2"], 2, "--refine-gap"),
    (["--refine-gap", "nan"], 2, "--refine-gap"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, tiny_models, args, code, message):
    out = tmp_path / "never"
    result = llmviz("explain", "--model", str(tiny_models["llama"]), "--text", "The cat sat", *args, "--out", str(out))
    assert result.returncode == code, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert not out.exists()


def test_refine_gap_doubles_the_steps_until_the_gap_is_within_it(tmp_path, tiny_models):
    result = llmviz("explain", "--model", str(tiny_models["llama"]), "--text", "The cat sat on the mat",
                    "--method", "ig", "--steps", "2", "--refine-gap", "0.01", "--no-faithfulness",
                    "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    assert "refined from 2 steps" in result.stderr
    steps = int(result.stderr.split("integrated gradients, ")[1].split(" steps")[0])
    gap = float(result.stderr.split("completeness gap ")[-1].split("%")[0]) / 100
    assert steps > 2 and gap <= 0.01, result.stderr


def test_encoder_asked_for_a_next_token(tmp_path, tiny_models):
    result = llmviz("explain", "--model", str(tiny_models["bert"]), "--text", "The cat sat", "--target=-1:3",
                    "--out", str(tmp_path / "x"))
    assert result.returncode == 1 and "encoder" in result.stderr and "--compare" in result.stderr
