"""Fixtures of the LLM space tests: one small tokenizer trained once per session, and a text corpus."""
import pytest

from search_spaces.llm_lora.testing import train_tokenizer
from tests.support.llm import TEXT


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer(TEXT, vocab_size=300)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(TEXT))
    return path
