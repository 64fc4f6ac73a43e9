"""SearchIndex query plans: the broad plans (title-first, proxy + rescoring), the every-word pass
skipped when it surely finds nothing, union units nested behind plain ones, and the page cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import bot.search.index as index_module
from bot.models import Entry, SearchRequest
from bot.search.index import SearchIndex

BASE = datetime(2025, 1, 1, tzinfo=UTC)


def entry(i: int, title: str, summary: str = "", *, source: str = "s") -> Entry:
    return Entry(id=i, source_id=source, key=str(i), title=title, link=None, summary=summary,
                 published=BASE + timedelta(days=i), topics=())


def built(*entries: Entry) -> SearchIndex:
    index = SearchIndex.open(None)
    index.add(entries)
    index.commit(max(e.id or 0 for e in entries))
    return index


def page(index: SearchIndex, text: str, **kw: object) -> tuple[list[tuple[int, float]], int]:
    result = index.search(SearchRequest(text=text, **kw))  # type: ignore[arg-type]
    return [(h.entry_id, round(h.score, 4)) for h in result.hits], result.total


# 40 entries with both words in the title (summaries of varied length), 15 with them in the summary
# only, 10 with one word: more title matches than a page's window, so the title-first plan applies.
CORPUS = [
    *(entry(i, f"alpha beta note {i}", " ".join(["alpha"] * (i % 4 + 1) + ["filler"] * (i % 7))) for i in range(1, 41)),
    *(entry(i, f"note {i}", "alpha beta " + "filler " * (i % 5)) for i in range(41, 56)),
    *(entry(i, f"alpha only {i}", "gamma", source="t") for i in range(56, 66)),
    entry(66, "Llama3 release", "alpha beta llama3 weights"),
    entry(67, "llama 3 notes", "alpha beta about llama 3"),
]


@pytest.fixture
def corpus() -> SearchIndex:
    return built(*CORPUS)


@pytest.mark.parametrize("text", ["alpha beta", "alpha", "beta alpha -gamma", "alpha beta llama3", "llama3"])
@pytest.mark.parametrize("offset", [0, 20])
def test_broad_plans_rank_like_the_exact_one(corpus, monkeypatch, text, offset):
    exact = page(corpus, text, offset=offset)
    monkeypatch.setattr(index_module, "BROAD", -1)  # every query broad: title-first or proxy + rescoring
    assert page(corpus, text, offset=offset) == exact
    monkeypatch.setattr(index_module, "TITLE_FIRST", -1)  # proxy + rescoring only
    assert page(corpus, text, offset=offset) == exact


def test_broad_plans_keep_filters_and_exact_totals(corpus, monkeypatch):
    exact = page(corpus, "alpha", source_ids=("t",))
    assert exact[1] == 10
    monkeypatch.setattr(index_module, "BROAD", -1)
    assert page(corpus, "alpha", source_ids=("t",)) == exact


def test_an_every_word_pass_that_surely_finds_nothing_falls_back_to_any_word(corpus, monkeypatch):
    # "llama3" is a union (the token, or "llama 3" as a phrase); "gamma" and "weights" never meet
    monkeypatch.setattr(index_module, "CHECK", 10**9)
    auto = corpus.search(SearchRequest(text="gamma weights llama3"))
    any_word = corpus.search(SearchRequest(text="gamma weights llama3"), mode="any")
    assert auto.hits and auto == any_word
    assert corpus.search(SearchRequest(text="gamma weights llama3"), mode="all").hits == ()


def test_plain_units_nested_before_a_union_score_the_same(corpus):
    found = page(corpus, "alpha beta llama3")
    assert [i for i, _ in found[0]] == [66, 67] and found[1] == 2
    nested = page(corpus, "beta alpha llama3")  # same units, other order: same scores
    assert nested == found


def test_pages_are_cached_until_the_next_commit(corpus, monkeypatch):
    first = corpus.search(SearchRequest(text="alpha beta"))
    calls = []
    original = SearchIndex._search

    def counting(self, *args, **kw):
        calls.append(args)
        return original(self, *args, **kw)

    monkeypatch.setattr(SearchIndex, "_search", counting)
    again = corpus.search(SearchRequest(text="Alpha  Beta"))  # another spelling, same query
    assert (again.hits, again.total) == (first.hits, first.total) and calls == []
    assert corpus.search(SearchRequest(text="alpha beta", offset=5, limit=5)).hits == first.hits[5:10]  # a new key
    assert len(calls) == 1
    corpus.add([entry(100, "alpha beta alpha beta", "alpha beta")])
    assert corpus.search(SearchRequest(text="alpha beta")) == first  # uncommitted: still the old answer
    corpus.commit(100)
    assert corpus.search(SearchRequest(text="alpha beta")).hits[0].entry_id == 100
    assert len(calls) == 2


def test_cached_pages_carry_this_query_highlight_terms(corpus):
    corpus.search(SearchRequest(text="alpha beta"))
    assert corpus.search(SearchRequest(text="ALPHA beta")).terms == ("ALPHA", "beta")


def test_a_plan_setting_change_is_not_served_from_the_cache(corpus, monkeypatch):
    exact = corpus.search(SearchRequest(text="alpha"))
    monkeypatch.setattr(index_module, "BROAD", -1)
    calls = []
    original = SearchIndex._search
    monkeypatch.setattr(SearchIndex, "_search", lambda self, *a, **kw: calls.append(a) or original(self, *a, **kw))
    assert corpus.search(SearchRequest(text="alpha")) == exact and len(calls) == 1
