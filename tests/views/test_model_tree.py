"""The model-tree dock, fed by the real worker: what each row says, tied and counts, expand to depth,
search, module details with its config values and a histogram from the worker, CSV export (and a
failing one), a 10^3-module meta tree's index/parent consistency, and its error states."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from llmviz.core.specs import ModelSpec
from llmviz.core.structure import module_tree
from llmviz.core.targets import STRUCTURE_TREE
from llmviz.views.model_tree import COLUMNS, ModelTreeView

from ..timeouts import WAIT_MS


@pytest.fixture
def loaded_view(qtbot, host, tiny_models):
    """A model-tree view showing the tiny tied Llama, loaded by the worker."""
    view = ModelTreeView(host)
    qtbot.addWidget(view)
    view.resize(900, 800)
    view.show()
    with qtbot.waitSignal(host.sig_model_loaded, timeout=WAIT_MS) as loaded:
        host.load(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    with qtbot.waitSignal(view.sig_ready, timeout=WAIT_MS):
        view.on_model_loaded(loaded.args[0])
    qtbot.waitUntil(lambda: view.histogram is not None, timeout=WAIT_MS)  # the root's, selected at open
    return view


def row_texts(view: ModelTreeView, path: str) -> dict[str, str]:
    tree = view.model.tree
    node = tree.index_of_path(path)
    return {name: view.model.data(view.model.index_of_node(node, col)) for col, name in enumerate(COLUMNS)}


def reference_tree(tiny_models):
    from transformers import AutoModelForCausalLM

    return module_tree(AutoModelForCausalLM.from_pretrained(tiny_models["llama"]))


def test_rows_show_counts_and_tied_weights(loaded_view, tiny_models):
    view = loaded_view
    ref = reference_tree(tiny_models)
    assert view.message_text == ""
    assert view.model.rowCount() == 1
    root = row_texts(view, "")
    assert root["Module"] == "LlamaForCausalLM" and root["Parameters"] == f"{ref.total:,}"
    head = row_texts(view, "lm_head")
    assert head["Module"] == "lm_head  (tied)" and head["Own"] == "tied (0)" and head["Parameters"] == "0"
    assert "= model.embed_tokens.weight" in head["Parameter shapes"]
    embed = row_texts(view, "model.embed_tokens")
    n = ref.own_params[ref.index_of_path("model.embed_tokens")]
    assert embed["Own"] == f"{n:,}" and embed["dtype"] == "float32" and embed["Device"] == "cpu"
    assert embed["Bytes"].endswith("KiB") or embed["Bytes"].endswith("MiB")
    assert "tied, counted once: lm_head.weight = model.embed_tokens.weight" in view.total.text()
    tip = view.model.data(view.model.index_of_node(ref.index_of_path("lm_head")), 3)  # ToolTipRole
    assert "Shares weights" in tip


def test_expand_to_depth(loaded_view):
    view = loaded_view
    tree = view.model.tree
    layers = view.model.index_of_node(tree.index_of_path("model.layers"))
    view.depth.setValue(3)
    assert view.tree_view.isExpanded(view.model.index(0, 0)) and view.tree_view.isExpanded(layers)
    block = view.model.index_of_node(tree.index_of_path("model.layers.0"))
    assert not view.tree_view.isExpanded(block)
    view.depth.setValue(0)
    assert not view.tree_view.isExpanded(view.model.index(0, 0))


def test_search_selects_matches_in_turn(loaded_view, qtbot):
    view = loaded_view
    tree = view.model.tree
    qtbot.keyClicks(view.search, "mlp.down")
    view.find_next()
    first = view.model.node(view.tree_view.currentIndex())
    assert tree.paths[first] == "model.layers.0.mlp.down_proj"
    assert view.match_label.text() == f"1 of {len(tree.matches('mlp.down'))}"
    view.find_next()
    assert tree.paths[view.model.node(view.tree_view.currentIndex())] == "model.layers.1.mlp.down_proj"
    view.find_previous()
    view.find_previous()  # wraps around to the last match
    assert tree.paths[view.model.node(view.tree_view.currentIndex())] == "model.layers.2.mlp.down_proj"
    view.search.setText("no-such-module")
    view.find_next()
    assert "no module matches" in view.match_label.text()


def test_selecting_a_module_shows_config_and_worker_histogram(loaded_view, qtbot, tiny_models):
    view = loaded_view
    assert view.select_path("model.layers.1.self_attn")
    config_part = view.info_text.toPlainText().split("Configuration values that concern it")[1]
    assert "num_key_value_heads" in config_part and "intermediate_size" not in config_part
    qtbot.waitUntil(lambda: view.histogram is not None and view.histogram.path == "model.layers.1.self_attn",
                    timeout=WAIT_MS)
    hist = view.histogram
    from transformers import AutoModelForCausalLM

    attn = AutoModelForCausalLM.from_pretrained(tiny_models["llama"]).model.layers[1].self_attn
    assert hist.count == sum(p.numel() for p in attn.parameters())
    xs, ys = view.hist_item.getData()
    assert ys.sum() == hist.count and len(ys) == len(hist.counts)
    assert f"{hist.count:,} weights" in view.hist_title.text()
    view.log_counts.setChecked(True)
    _, logs = view.hist_item.getData()
    assert abs(logs.max() - torch.log10(torch.tensor(float(hist.counts.max() + 1)))) < 1e-6
    assert view.plot.getPlotItem().getAxis("left").labelText.startswith("log")


def test_module_without_weights_says_so(loaded_view, qtbot):
    view = loaded_view
    view.select_path("model.rotary_emb")
    qtbot.waitUntil(lambda: view.histogram is not None and view.histogram.path == "model.rotary_emb", timeout=WAIT_MS)
    assert "no parameters" in view.plot_message.textItem.toPlainText()


def test_export_csv_and_a_failing_export(loaded_view, tmp_path):
    view = loaded_view
    path = tmp_path / "tree.csv"
    assert view.export_csv(str(path))
    frame = pd.read_csv(path, keep_default_na=False)
    assert len(frame) == len(view.model.tree) and frame.loc[0, "parameters"] == view.model.tree.total
    assert "Saved" in view.status.text()
    assert not view.export_csv(str(tmp_path / "missing-folder" / "tree.csv"))
    assert "Could not write" in view.status.text()
    assert view.model.rowCount() == 1 and view.message_text == ""  # nothing lost


def test_an_empty_text_does_not_hide_the_tree(loaded_view, qtbot, host):
    view = loaded_view
    with qtbot.waitSignal(host.sig_trace, timeout=WAIT_MS) as traced:
        host.run_text("")
    view.on_trace(traced.args[0])
    assert traced.args[0].is_empty
    assert view.message_text == "" and view.model.rowCount() == 1


def test_big_meta_tree_indexes_consistently(qtbot, host):
    from transformers import LlamaConfig, LlamaForCausalLM

    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(hidden_size=8192, intermediate_size=28672, num_hidden_layers=100,
                                             num_attention_heads=64, num_key_value_heads=8, vocab_size=32000))
    tree = module_tree(model)
    view = ModelTreeView(host)
    qtbot.addWidget(view)
    view.set_tree(tree)
    m = view.model
    for node in range(len(tree)):
        index = m.index_of_node(node)
        assert m.node(index) == node
        assert m.node(m.parent(index)) == int(tree.parent[node])
        assert m.rowCount(index) == tree.num_children(node)
        assert m.index(index.row(), 0, m.parent(index)) == index
    view.depth.setValue(3)
    layers = m.index_of_node(tree.index_of_path("model.layers"))
    assert view.tree_view.isExpanded(layers) and m.rowCount(layers) == 100
    assert row_texts(view, "")["Device"] == ""  # the root owns no parameters
    assert row_texts(view, "model.layers.99.mlp.up_proj")["Device"] == "meta"


def test_structure_failure_shows_a_message(qtbot, host):
    view = ModelTreeView(host)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.sig_ready, timeout=WAIT_MS):
        host.call(STRUCTURE_TREE, on_done=view._tree_done)  # the view's request, with no model loaded
    assert view.message_text == "No model is loaded yet."
