"""Tokenizer, query parsing, index and snippets, on mixed Chinese/English entries."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import QueryError
from bot.models import Entry, SearchRequest
from bot.search.index import SearchIndex
from bot.search.query import parse_query
from bot.search.snippet import make_snippet
from bot.search.tokenize import tokenize

BASE = datetime(2026, 11, 1, tzinfo=UTC)
DOCS = [
    (1, "The Llama 3 Herd of Models",
     "本文归纳llm的训练分为两个主要阶段: 预训练阶段 pretraining 和后训练阶段。采用 GQA.",
     ("llm",), "rg"),
    (2, "MHA、MQA 与 GQA：多头注意力的三种变体", "MHA/MQA/GQA 的区别在于 key/value 头的共享方式", ("attention",), "rg"),
    (3, "大模型幻觉：成因与缓解", "所谓幻觉，是指模型生成流畅但与事实不符的内容。", ("hallucination",), "rg"),
    (4, "Diffusion Models from SDE", "Score-based generative modeling through stochastic differential equations.",
     ("diffusion",), "papers"),
    (5, "FlashAttention 原理", "FlashAttention的关键创新在于使用类似于在线Softmax的思想。", ("attention",), "rg"),
    (6, "Why do LLMs hallucinate?", "A survey of hallucination in large language models and transformers.",
     ("hallucination", "llm"), "papers"),
    (7, "扩散模型入门", "扩散模型通过逐步去噪生成图像。DDPM 是最常见的形式。", ("diffusion",), "papers"),
    (8, "直接偏好优化 DPO", "DPO 把 RLHF 的两步合成一步，直接在偏好对上训练。", ("alignment",), "rg"),
]


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    ix = SearchIndex.open(None)
    ix.add([Entry(id=i, source_id=src, key=str(i), title=t, link=None, summary=s, topics=top,
                  published=BASE + timedelta(days=i)) for i, t, s, top, src in DOCS])
    ix.commit(len(DOCS))
    return ix


def ids(index: SearchIndex, text: str = "", **filters) -> list[int]:
    return [h.entry_id for h in index.search(SearchRequest(text=text, **filters)).hits]


def test_tokenizer_bigrams_stems_and_splits():
    assert tokenize("幻觉") == ["幻觉"]
    assert tokenize("模型幻觉") == ["模型", "型幻", "幻觉"]
    assert tokenize("幻覺") == ["幻觉"]  # Traditional folded to Simplified
    assert tokenize("Transformers models") == ["transform", "model"]
    assert tokenize("FlashAttention") == ["flashattent", "flash", "attent"]
    assert tokenize("Llama3") == ["llama3", "llama", "3"]
    assert tokenize("MHA/MQA/GQA") == ["mha", "mqa", "gqa"]
    assert tokenize("预训练阶段pretraining") == ["预训", "训练", "练阶", "阶段", "pretrain"]


@pytest.mark.parametrize(("query", "expected_first"), [
    ("幻觉", 3), ("幻覺", 3), ("diffusion", 4), ("GQA", 2), ("flash attention", 5), ("llama 3", 1),
    ("扩散模型", 7), ("注意力", 2), ("偏好优化", 8), ("DPO", 8), ("hallucination", 6), ("transform", 6),
])
def test_queries_find_the_right_entry_first(index, query, expected_first):
    assert ids(index, query)[0] == expected_first


def test_title_matches_rank_above_body_matches(index):
    assert ids(index, "hallucination")[:1] == [6]  # in the title of 6, only the body of others


def test_phrase_exclusion_prefix_and_fallback(index):
    assert ids(index, '"herd of models"') == [1]
    assert 6 not in ids(index, "hallucination -survey")
    assert 6 in ids(index, "transf*")
    assert ids(index, "what is 幻觉")  # no entry has every word: any-word fallback still answers


def test_filters_topic_source_dates_and_recency(index):
    assert ids(index, topic="attention") == [5, 2]  # topic only: newest first
    assert ids(index, "GQA", source_ids=("papers",)) == []
    assert ids(index, "GQA", source_ids=()) == []
    assert set(ids(index, "model", since=BASE + timedelta(days=6))) <= {6, 7, 8}
    assert set(ids(index, "model", until=BASE + timedelta(days=3))) <= {1, 2, 3}


def test_paging_and_totals(index):
    page = index.search(SearchRequest(topic="attention", limit=1, offset=1))
    assert [h.entry_id for h in page.hits] == [2] and page.total == 2


def test_upsert_never_duplicates():
    ix = SearchIndex.open(None)
    entry = Entry(id=1, source_id="s", key="1", title="alpha", link=None, summary="", published=BASE)
    ix.add([entry])
    ix.commit(1)
    ix.add([entry])
    ix.commit(1)
    assert ix.search(SearchRequest(text="alpha")).total == 1
    assert ix.last_indexed_id == 1


def test_index_survives_reopen_and_rebuilds_on_version_change(tmp_path, monkeypatch):
    path = tmp_path / "ix"
    ix = SearchIndex.open(path)
    ix.add([Entry(id=7, source_id="s", key="7", title="alpha", link=None, summary="", published=BASE)])
    ix.commit(7)
    ix.close()
    again = SearchIndex.open(path)
    assert again.last_indexed_id == 7 and not again.needs_rebuild
    again.close()
    monkeypatch.setattr("bot.search.index.TOKENIZER_VERSION", 999)
    rebuilt = SearchIndex.open(path)
    assert rebuilt.needs_rebuild and rebuilt.last_indexed_id == 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_any_user_text_is_safe(text):
    ix = SearchIndex.open(None)
    with contextlib.suppress(QueryError):
        ix.search(SearchRequest(text=text))
    parse_query(text)


def test_query_syntax_is_just_text(index):
    for text in ['title:幻觉', 'AND OR NOT', '"unbalanced', '(GQA', 'GQA)', '*', 'a:b:c', 'NEAR(a b)', '-']:
        with contextlib.suppress(QueryError):
            index.search(SearchRequest(text=text))


def test_snippets_bold_matches_and_escape_the_rest():
    snippet = make_snippet("所谓幻覺，是指*模型*生成 @everyone", ["幻觉"])
    assert "**幻覺**" in snippet and "\\*模型\\*" in snippet and "@everyone" not in snippet
    assert make_snippet("Why LLMs hallucinate", ["hallucination"]) == "Why LLMs **hallucinate**"
    long = "word " * 100 + "needle " + "word " * 100
    cut = make_snippet(long, ["needle"], width=60)
    assert cut.startswith("…") and cut.endswith("…") and "**needle**" in cut and len(cut) < 120


def test_a_chinese_word_is_never_matched_by_one_of_its_bigrams(index):
    assert ids(index, "模型扩散") == []  # 模型 is everywhere, but the word 模型扩散 is nowhere
    assert ids(index, "扩散模型 nonexistentword") == [7]  # any-word fallback keeps whole words


def test_long_queries_are_capped_not_refused():
    parsed = parse_query(" ".join(f"w{i}" for i in range(100)))
    assert 0 < len(parsed.must) <= 24
