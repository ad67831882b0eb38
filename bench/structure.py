"""Model tree on a model with 10^5 modules: a Llama-70B-shaped config with 7,693 layers, built on the
meta device (no weights, no memory), walked by module_tree() and opened in the model-tree view.

    python bench/structure.py

tree_open_s = module_tree() + the view's set_tree and first paint (what a user waits for once the
model is in memory; the first runs on the worker, the second on the GUI thread).  Wall times grow
when other programs share the CPU; the table also shows this process's CPU time, which does not.  Also: the worst GUI
stall while opening (10 ms heartbeat), a search over every path, and expanding to depth 3 (which
opens the 7,693-child layer list).
"""

from __future__ import annotations

import math
import os
import statistics
import time

from _common import Heartbeat, result_line, table

TARGET_MODULES = 100_000
MODULES_PER_LAYER = 13  # LlamaDecoderLayer, self_attn + 4 projections, mlp + 3 projections + act, 2 norms
OUTSIDE_LAYERS = 7  # root, model, embed_tokens, layers, norm, rotary_emb, lm_head


def build_meta_model():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    layers = math.ceil((TARGET_MODULES - OUTSIDE_LAYERS) / MODULES_PER_LAYER)
    config = LlamaConfig(hidden_size=8192, intermediate_size=28672, num_attention_heads=64, num_key_value_heads=8,
                         vocab_size=32000, num_hidden_layers=layers)
    with torch.device("meta"):
        return LlamaForCausalLM(config), layers


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from llmviz.core.structure import module_tree
    from llmviz.main_window import application
    from llmviz.views.model_tree import ModelTreeView
    from llmviz.workers.model_host import ModelHost

    t0 = time.perf_counter()
    model, layers = build_meta_model()
    build_s = time.perf_counter() - t0

    walks, walk_cpu = [], []
    for _ in range(3):
        t0, c0 = time.perf_counter(), time.process_time()
        tree = module_tree(model)
        walks.append(time.perf_counter() - t0)
        walk_cpu.append(time.process_time() - c0)
    walk_s = statistics.median(walks)

    application()
    host = ModelHost()
    try:
        view = ModelTreeView(host)
        view.resize(480, 900)
        view.show()
        QApplication.processEvents()
        beat = Heartbeat()
        beat.start()
        t0, c0 = time.perf_counter(), time.process_time()
        view.set_tree(tree)
        QApplication.processEvents()
        view.grab()  # paints every visible row now
        open_s = time.perf_counter() - t0
        open_cpu = time.process_time() - c0
        for _ in range(5):  # let the heartbeat see any stall that follows
            QApplication.processEvents()
            time.sleep(0.01)
        stall_ms = beat.stop()

        view.search.setText(f"layers.{layers - 1}.mlp.down")
        t0 = time.perf_counter()
        view.find_next()
        view.grab()
        search_s = time.perf_counter() - t0
        found = tree.paths[view.model.node(view.tree_view.currentIndex())]

        t0 = time.perf_counter()
        view.depth.setValue(3)
        view.grab()
        expand_s = time.perf_counter() - t0
        view.close()
        view.deleteLater()
        QApplication.processEvents()
    finally:
        host.shutdown()

    total = walk_s + open_s
    table([
        ("modules", f"{len(tree):,} ({layers:,} Llama-70B-shaped layers on the meta device)"),
        ("parameters represented", f"{tree.total:,}"),
        ("build on meta device", f"{build_s:.1f} s (not part of opening)"),
        ("module_tree() (worker), median of 3", f"{walk_s:.3f} s  [{', '.join(f'{w:.3f}' for w in walks)}]"
                                                 f"  CPU time {statistics.median(walk_cpu):.3f} s"),
        ("view set_tree + first paint (GUI)", f"{open_s:.3f} s  CPU time {open_cpu:.3f} s"),
        ("tree_open_s (both)", f"{total:.3f} s  (target <= 1 s)"),
        ("worst GUI stall while opening", f"{stall_ms:.0f} ms"),
        ("search + select the last layer's down_proj", f"{search_s:.3f} s -> {found}"),
        ("expand to depth 3 (opens the layer list)", f"{expand_s:.3f} s"),
    ], f"Model tree with 10^5 modules ({os.cpu_count()} CPUs)")
    result_line("structure", {"tree_open_s": total, "module_tree_s": walk_s, "view_open_s": open_s,
                              "tree_open_cpu_s": statistics.median(walk_cpu) + open_cpu,
                              "gui_stall_ms": stall_ms, "search_s": search_s, "expand_depth3_s": expand_s,
                              "modules": len(tree)})


if __name__ == "__main__":
    main()
