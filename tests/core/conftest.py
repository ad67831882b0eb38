"""Sessions on the tiny models, shared by the explain tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmviz.core.session import Session
from llmviz.core.specs import ModelSpec

#: The text the explain tests run (11 tokens: long enough for every method, quick on tiny models).
EXPLAIN_TEXT = "The cat sat on the mat and looked at the dog"


def session_on(folder: Path) -> Session:
    """A core Session with the model in `folder` loaded on the CPU."""
    session = Session()
    session.load(ModelSpec(str(folder), device="cpu"))
    return session


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def decoder(request, tiny_models) -> Session:
    return session_on(tiny_models[request.param])


@pytest.fixture(scope="module")
def llama(tiny_models) -> Session:
    return session_on(tiny_models["llama"])


@pytest.fixture(scope="module")
def bert(tiny_models) -> Session:
    return session_on(tiny_models["bert"])
