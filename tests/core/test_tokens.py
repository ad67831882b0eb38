"""Tokenizer comparison: the notebook's example against GPT2Tokenizer / BertTokenizer, splits, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from transformers import AutoTokenizer, BertTokenizer, GPT2Tokenizer

from llmviz.core import bundled
from llmviz.core import tokenizers as tk
from llmviz.core import tokenizers_jobs as tk_jobs
from llmviz.core import tokenizers_results as tkr
from llmviz.core.results import TokenTable
from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec
from llmviz.core.tasks import TaskContext

NOTEBOOK_TEXT = "Hello, I'm learning about Large Language Models! This is fascinating. 🤖"


@pytest.fixture(scope="module")
def session() -> Session:
    return Session()  # no model: the bundled GPT-2 and BERT tokenizers need none


@pytest.fixture(scope="module")
def notebook(session: Session) -> tkr.TokenizerComparison:
    return tk_jobs.compare(session, TaskContext(), NOTEBOOK_TEXT, tkr.BERT, first=tkr.GPT2)


def test_notebook_example_matches_the_notebook_tokenizers(notebook):
    """Same tokens, ids, counts, vocabulary sizes and decoded text as the notebook's own calls."""
    gpt2 = GPT2Tokenizer.from_pretrained(bundled.gpt2_tokenizer_folder())
    bert = BertTokenizer.from_pretrained(bundled.model_folder("bundled:minilm"))
    for ours, theirs in ((notebook.first, gpt2), (notebook.second, bert)):
        assert list(ours.tokens.ids) == theirs.encode(NOTEBOOK_TEXT)
        assert [p for p, s in zip(ours.tokens.pieces, ours.tokens.special) if not s] == theirs.tokenize(NOTEBOOK_TEXT)
        assert ours.num_tokens == len(theirs.tokenize(NOTEBOOK_TEXT))
        assert ours.vocab_size == theirs.vocab_size
        assert ours.decoded == theirs.decode(theirs.encode(NOTEBOOK_TEXT))
    # Published GPT-2 / bert-base-uncased ids for the first words (not computed by the code under test).
    assert list(notebook.first.tokens.ids[:3]) == [15496, 11, 314]  # 'Hello', ',', 'ĠI'
    assert list(notebook.second.tokens.ids[:3]) == [101, 7592, 1010]  # [CLS] hello ,
    assert (notebook.first.num_tokens, notebook.second.num_tokens, notebook.count_difference) == (17, 16, 1)
    assert (notebook.first.vocab_size, notebook.second.vocab_size) == (50257, 30522)


def test_round_trip_and_algorithms(notebook):
    assert notebook.first.round_trip and notebook.first.algorithm == "byte-level BPE"
    assert not notebook.second.round_trip  # lowercased, the emoji becomes [UNK]
    assert notebook.second.algorithm == "WordPiece"
    assert notebook.second.num_special == 2 and notebook.second.decoded.startswith("[CLS] hello")


def test_byte_level_pieces_are_readable(notebook):
    shown = notebook.first.display
    assert shown[2] == "␣I" and shown[4] == "␣learning"  # 'ĠI', 'Ġlearning'
    assert "Ġ" not in "".join(shown)
    assert shown[-3:] == ("␣⟨F0 9F⟩", "⟨A4⟩", "⟨96⟩")  # the robot emoji's four UTF-8 bytes in three tokens
    assert notebook.second.display[-2] == "[UNK]"


def test_differing_splits_are_flagged(notebook):
    first, second = notebook.first_differs, notebook.second_differs
    pieces_a, pieces_b = notebook.first.tokens.pieces, notebook.second.tokens.pieces
    flagged_a = {pieces_a[i] for i in np.nonzero(first)[0]}
    flagged_b = {pieces_b[i] for i in np.nonzero(second)[0]}
    assert flagged_a == {"'m", "ĠðŁ", "¤", "ĸ"}  # "'m" is one GPT-2 token, two BERT tokens; the emoji 3 vs 1
    assert flagged_b == {"'", "m", "[UNK]"}
    assert not first[2] and not second[3]  # 'ĠI' and 'i' cover the same character: same split
    assert not second[0] and not second[-1]  # special tokens are never "different"


def test_split_differences_on_hand_made_tables():
    text = "ab cd"

    def table(spans, special=None):
        n = len(spans)
        return TokenTable(np.arange(n), tuple("x" * n), np.array([s for s, _ in spans], np.int32),
                          np.array([e for _, e in spans], np.int32),
                          np.zeros(n, bool) if special is None else np.array(special))

    a = table([(0, 2), (2, 5)])  # 'ab', ' cd'
    b = table([(0, 1), (1, 2), (3, 5)])  # 'a', 'b', 'cd'
    assert list(tk.split_differences(text, a, b)) == [True, False]
    assert list(tk.split_differences(text, b, a)) == [True, True, False]
    assert list(tk.split_differences(text, a, a)) == [False, False]


def test_invisible_characters_get_code_points():
    assert tk.readable_piece("ï¸ı", "byte-level BPE") == "⟨U+FE0F⟩"  # variation selector alone
    assert tk.readable_piece("Ċ", "byte-level BPE") == "↵"
    assert tk.readable_piece("▁the", "SentencePiece (BPE)") == "␣the"
    assert tk.readable_piece("##ing", "WordPiece") == "##ing"


def test_model_tokenizer_and_any_folder(tiny_models):
    session = Session()
    session.load(ModelSpec(str(tiny_models["llama"]), device="cpu"))
    result = tk_jobs.compare(session, TaskContext(), "The cat sat", str(tiny_models["bert"]))
    own = AutoTokenizer.from_pretrained(tiny_models["llama"])
    assert list(result.first.tokens.ids) == own("The cat sat")["input_ids"]
    assert result.second is not None and result.second.tokens.pieces[1:-1] == ("the", "cat", "sat")
    assert not result.first_differs.any() and not result.second_differs.any()


def test_unloadable_tokenizer_keeps_the_first(session):
    result = tk_jobs.compare(session, TaskContext(), NOTEBOOK_TEXT, "someone/not-a-real-tokenizer-xyz", first=tkr.GPT2)
    assert result.second is None and result.first.num_tokens == 17
    assert "not-a-real-tokenizer-xyz" in result.second_error and "offline" in result.second_error
    bad = tk_jobs.compare(session, TaskContext(), NOTEBOOK_TEXT, "not a valid id!", first=tkr.GPT2)
    assert bad.second is None and "valid Hugging Face model id" in bad.second_error
    empty = tk_jobs.compare(session, TaskContext(), NOTEBOOK_TEXT, "   ", first=tkr.GPT2)
    assert empty.second is None and "Type a tokenizer" in empty.second_error


def test_text_with_no_tokens(session):
    result = tk_jobs.compare(session, TaskContext(), "", tkr.BERT, first=tkr.GPT2)
    assert result.first.num_tokens == 0 and len(result.first.tokens) == 0
    assert result.second.num_tokens == 0 and result.second.num_special == 2  # [CLS] [SEP] only
    assert result.count_difference == 0


def test_model_choice_needs_a_model(session):
    from llmviz.core.errors import LlmvizError

    with pytest.raises(LlmvizError, match="No model"):
        tk_jobs.compare(session, TaskContext(), "hi", tkr.GPT2)  # first defaults to the (absent) model's tokenizer
