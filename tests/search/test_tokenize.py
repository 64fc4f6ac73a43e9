"""The one tokenizer shared by index and query time."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.fold import to_simplified
from bot.search.tokenize import TOKENIZER_VERSION, normalize, query_word, split_runs, tokenize


@pytest.mark.parametrize(("text", "tokens"), [
    ("幻觉", ["幻觉"]),
    ("幻", ["幻"]),  # a lone character is kept as itself
    ("模型幻觉问题", ["模型", "型幻", "幻觉", "觉问", "问题"]),
    ("幻覺", ["幻觉"]),  # Traditional folded to Simplified
    ("擴散模型", ["扩散", "散模", "模型"]),
    ("Transformers models", ["transform", "model"]),
    ("FlashAttention", ["flashattent", "flash", "attent"]),
    ("Llama3", ["llama3", "llama", "3"]),
    ("GPT-4o", ["gpt", "4o", "4"]),
    ("MHA/MQA/GQA", ["mha", "mqa", "gqa"]),
    ("预训练阶段pretraining", ["预训", "训练", "练阶", "阶段", "pretrain"]),
    ("ＧＰＴ４，模型", ["gpt4", "gpt", "4", "模型"]),  # NFKC: full-width letters and punctuation
    ("café naïve", ["café", "naïv"]),  # accented words are not split into parts
    ("a_b", ["a", "b"]),
    ("", []),
    ("!!! ... ---", []),
])
def test_tokens(text, tokens):
    assert tokenize(text) == tokens


def test_the_version_is_an_int():
    assert isinstance(TOKENIZER_VERSION, int) and TOKENIZER_VERSION >= 1


def test_long_words_are_cut():
    assert tokenize("x" * 500) == ["x" * 40]


def test_query_word_for_compounds_and_cjk():
    assert query_word("Llama3") == (("llama3",), ("llama", "3"))
    assert query_word("transformers") == (("transform",), ())
    assert query_word("扩散模型") == (("扩散", "散模", "模型"), ())
    assert split_runs("幻覺 GQA-2") == ["幻觉", "GQA", "2"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fast_normalize_equals_nfkc_then_opencc_table(text):
    assert normalize(text) == to_simplified(unicodedata.normalize("NFKC", text))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_tokens_are_single_words(text):
    for token in tokenize(text):
        assert token and not any(c.isspace() for c in token) and len(token) <= 40


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("模型幻觉問題扩散注意力 abcXYZ123-/"), max_size=60))
def test_tokenizing_is_stable_under_renormalization(text):
    assert tokenize(normalize(text)) == tokenize(text)
