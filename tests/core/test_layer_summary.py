"""The measured layer summary against torchinfo's `summary` on the same model and input: output
shapes and per-module parameter counts agree, torchinfo's total equals our 'counted per use' total
(which counts a tied embedding twice), and our unique total equals sum(p.numel())."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchinfo import summary

from llmviz.core import layer_summary
from llmviz.core.errors import LlmvizError
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.structure_jobs import layer_summary as layer_summary_job
from llmviz.core.tasks import TaskContext
from llmviz.core.trace import forward_inputs

TEXT = "The cat sat on the mat because it was warm."


@pytest.fixture(scope="module")
def tiny_sessions(tiny_models):
    out = {}
    for name in ("gpt2", "bert"):
        session = Session()
        session.load(ModelSpec(str(tiny_models[name]), device="cpu"))
        out[name] = session
    return out


def measured(session: Session):
    trace = session.run(TEXT)
    return layer_summary_job(session, TaskContext(), trace.id), trace


def torchinfo_stats(session: Session, ids: np.ndarray):
    loaded = session.loaded
    inputs = dict(forward_inputs(loaded, ids), use_cache=False, return_dict=True)
    return summary(loaded.model, input_data=inputs, verbose=0, depth=50)


def compare_with_torchinfo(session: Session) -> None:
    result, trace = measured(session)
    stats = torchinfo_stats(session, trace.tokens.ids)
    model = session.loaded.model
    path_of = {id(m): p for p, m in model.named_modules()}
    frame = result.frame.assign(key=result.frame["path"].replace("(model)", "")).set_index("key")
    compared = 0
    for info in stats.summary_list:
        path = path_of[id(info.module)]
        if path not in frame.index:  # containers that never run (a ModuleList); torchinfo lists them with '--'
            assert not info.executed and not info.output_size and path in result.not_run, path
            continue
        row = frame.loc[path]
        # torchinfo's row counts the module's own tensors once each: ours, plus shared weights it holds
        # whose first owner lies outside it (lm_head holds the embedding matrix)
        inside = path + "." if path else ""
        borrowed = sum(n for shared, owner, n in result.tied if shared.startswith(inside) and not owner.startswith(inside))
        assert row["parameters"] + borrowed == info.num_params, path
        if "Output" in row["output_type"]:
            continue  # a ModelOutput: we show its first tensor, torchinfo its last (see _first_tensor)
        assert row["output_shape"] == str(list(info.output_size)), path
        compared += 1
    assert compared >= 0.8 * len(stats.summary_list)
    assert stats.total_params == result.per_use_params
    assert result.unique_params == sum(p.numel() for p in model.parameters())
    assert result.double_counted == sum(n for *_, n in result.tied)


def test_smollm2_agrees_with_torchinfo_and_explains_the_tied_embedding(smollm2_session):
    compare_with_torchinfo(smollm2_session)
    result, _ = measured(smollm2_session)
    model = smollm2_session.loaded.model
    assert result.tied == (("lm_head.weight", "model.embed_tokens.weight", model.lm_head.weight.numel()),)
    assert result.not_run == ("model.layers",)  # a ModuleList is iterated, never called
    text = result.explain_totals()
    assert f"{result.per_use_params:,}" in text and f"{result.unique_params:,}" in text and "counted twice" in text


def test_minilm_agrees_with_torchinfo(minilm_session):
    compare_with_torchinfo(minilm_session)
    result, _ = measured(minilm_session)
    assert result.per_use_params == result.unique_params and "agrees" in result.explain_totals()


@pytest.mark.parametrize("name", ["gpt2", "bert"])
def test_tiny_models_agree_with_torchinfo(tiny_sessions, name):
    compare_with_torchinfo(tiny_sessions[name])


def test_times_are_consistent_and_chart_partitions_the_forward(smollm2_session):
    result, trace = measured(smollm2_session)
    frame = result.frame
    assert (frame["self_ms"] <= frame["time_ms"] + 1e-9).all()
    assert (frame["calls"] >= 1).all()
    assert list(frame["order"]) == list(range(len(frame)))
    assert frame.loc[0, "path"] == "(model)" and frame.loc[0, "output_shape"] == \
        str([1, trace.num_tokens, smollm2_session.loaded.info.vocab_size])
    chart = frame.iloc[list(result.chart)]
    blocks = [f"model.layers.{i}" for i in range(smollm2_session.loaded.info.num_layers)]
    assert chart["path"].tolist() == ["model.embed_tokens", "model.rotary_emb", *blocks, "model.norm", "lm_head"]
    # the parts run one after another inside the root's call
    assert chart["time_ms"].sum() <= frame.loc[0, "time_ms"] + 1e-6
    assert result.forward_s * 1000 >= frame.loc[0, "time_ms"] - 1e-6
    assert frame.loc[0, "time_pct"] <= 100.0


def test_long_inputs_run_the_head_on_the_last_position(tiny_sessions, monkeypatch):
    monkeypatch.setattr(layer_summary, "FULL_LOGITS_BYTES", 16)
    result, trace = measured(tiny_sessions["gpt2"])
    head = result.frame.set_index("path").loc["lm_head"]
    assert head["output_shape"] == str([1, 1, tiny_sessions["gpt2"].loaded.info.vocab_size])
    assert any("last position only" in n for n in result.notes)


def test_stale_trace_is_refused(tiny_sessions):
    session = tiny_sessions["bert"]
    old = session.run("first text")
    session.run("second text")
    with pytest.raises(LlmvizError, match="no longer current"):
        layer_summary_job(session, TaskContext(), old.id)


def test_hooks_are_removed_after_measuring(tiny_sessions):
    session = tiny_sessions["gpt2"]
    model = session.loaded.model

    def hooks() -> list[int]:  # transformers installs output-capturing hooks of its own on a first run
        return [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]

    measured(session)
    before = hooks()
    result, trace = measured(session)
    assert hooks() == before
    assert len(result.frame) > len(before) // 2  # the measurement really hooked the modules
    with torch.inference_mode():
        model(torch.tensor([[1, 2, 3]]))
