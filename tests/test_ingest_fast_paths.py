"""The ingest fast paths give exactly what the straightforward code gave.

Each fast path (batch tokenizing, the keyword automaton, ASCII folding, the cheaper whitespace
collapse) is checked against a reference written the plain way.
"""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import TopicDef
from bot.fold import CJK_CHAR, fold, to_simplified
from bot.search import tokenize as tok
from bot.text import _DELETE, _collapse
from bot.topics import TopicMatcher

_ALPHABET = st.sampled_from(list("abcdefgilmnoprstuvxyz0123 -_/.,LLMGPT模型幻觉覺問題扩散注意力大语言"
                                 "éİſK\u200b\x0b\u3000Ａ"))


def _reference_tokens(text: str) -> list[str]:
    out: list[str] = []
    for run in tok._RUN.findall(tok.normalize(text)):
        out.extend(tok.cjk_bigrams(run) if tok._CJK_CHAR.match(run) else tok.word_tokens(run))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), st.text(alphabet=_ALPHABET, max_size=80)), max_size=8))
def test_tokenize_many_equals_tokenize(texts):
    expected = [_reference_tokens(t) for t in texts]
    assert [tok.tokenize(t) for t in texts] == expected
    assert tok.tokenize_many(texts) == expected
    tok._run_tokens.clear()
    assert tok.tokenize_many(texts) == expected
    joined = [" ".join(tokens) for tokens in expected]  # what the index is given
    assert tok.tokenize_joined_many(texts) == joined
    assert [tok.tokenize_joined(t) for t in texts] == joined


def test_run_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(tok._RunTokens, "LIMIT", 5)
    tok._run_tokens.clear()
    words = [f"word{i}" for i in range(20)]
    assert tok.tokenize_many([" ".join(words)]) == [_reference_tokens(" ".join(words))]
    for w in words:
        assert tok.tokenize(w) == _reference_tokens(w)
    assert len(tok._run_tokens) <= 20
    tok._run_tokens.clear()


def _reference_fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return to_simplified(text) if CJK_CHAR.search(text) else text


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.text(alphabet=_ALPHABET, max_size=60)))
def test_fold_equals_reference(text):
    assert fold(text) == _reference_fold(text)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.text(alphabet=_ALPHABET, max_size=40)),
       st.one_of(st.text(max_size=60), st.text(alphabet=_ALPHABET, max_size=60)))
def test_ingest_folds_for_tagging_from_the_tokenizers_normal_form(title, summary):
    """Ingest normalises title and summary once, for the tokenizer, and tags their case-folded form:
    that must be what ``fold`` gives the tagger everywhere else (re-tagging, queries)."""
    assert f"{tok.normalize(title)}\n{tok.normalize(summary)}".casefold() == fold(f"{title}\n{summary}")


def test_ingest_tags_and_tokenizes_like_the_plain_calls():
    from bot.ingest import parse_tag_and_tokenize
    from bot.normalize import normalize_entries
    from bot.parse import parse_feed

    body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            "<item><title>ＦlashAttention 幻覺</title><link>https://e.org/1</link>"  # full-width F, Traditional
            "<pubDate>Tue, 02 Jan 2024 00:00:00 GMT</pubDate><category>Diffusion</category>"
            "<description>&lt;p&gt;大語言模型 LLMs&lt;/p&gt;</description></item>"
            "<item><title>Older</title><link>https://e.org/0</link><pubDate>Mon, 01 Jan 2024 00:00:00 GMT</pubDate>"
            "</item></channel></rss>").encode()
    topics = {"llm": TopicDef(keywords=("llm", "大语言模型")), "hallucination": TopicDef(keywords=("幻觉",)),
              "diffusion": TopicDef(keywords=("扩散",))}
    matcher = TopicMatcher.from_config(topics)
    entries, tokens = parse_tag_and_tokenize(body, "https://e.org/feed", None, "s", ("x",), matcher)
    plain = normalize_entries(parse_feed(body, "https://e.org/feed"), "s", feed_url="https://e.org/feed")[::-1]
    assert [e.key for e in entries] == ["https://e.org/0", "https://e.org/1"]  # oldest first
    for entry, reference in zip(entries, plain, strict=True):
        assert entry.topics == matcher.assign(title=reference.title, summary=reference.summary,
                                              categories=reference.categories, source_topics=("x",))
    assert entries[1].topics == ("x", "llm", "hallucination", "diffusion")
    assert tokens == [(tok.tokenize_joined(e.title), tok.tokenize_joined(e.summary)) for e in entries]


def _reference_collapse(text: str) -> str:
    collapsed = " ".join(text.split())
    if not collapsed.isascii() or re.search("[\x00-\x08\x0e-\x1f\x7f]", collapsed):
        collapsed = " ".join(_DELETE.sub("", collapsed).split())
    return collapsed


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), st.text(alphabet=_ALPHABET, max_size=60)))
def test_collapse_equals_reference(text):
    assert _collapse(text) == _reference_collapse(text)


def _reference_topics(topics: dict[str, TopicDef], text: str) -> set[str]:
    """Every occurrence counts: a Latin keyword where no [a-z0-9] precedes it, a CJK one anywhere."""
    found = set()
    for topic_id, definition in topics.items():
        for keyword in (fold(k).strip() for k in (*definition.keywords, topic_id)):
            if not keyword:
                continue
            if CJK_CHAR.search(keyword):
                hit = keyword in text
            else:
                starts = [m.start() for m in re.finditer(f"(?={re.escape(keyword)})", text)]
                hit = any(i == 0 or not re.match("[a-z0-9]", text[i - 1]) for i in starts)
            if hit:
                found.add(topic_id)
    return found


_KEYWORD = st.text(alphabet=st.sampled_from(list("abgilmnpt -.+模型幻觉大语言")), min_size=1, max_size=8).map(str.strip)


@settings(max_examples=300, deadline=None)
@given(st.lists(_KEYWORD.filter(bool), min_size=1, max_size=8, unique=True),
       st.text(alphabet=st.sampled_from(list("abgilmnpt -.+x模型幻觉大语言\n")), max_size=80))
def test_keyword_automaton_finds_every_occurrence_like_a_plain_search(keywords, text):
    topics = {f"t{i}": TopicDef(keywords=(k,)) for i, k in enumerate(keywords)}
    matcher = TopicMatcher.from_config(topics)
    assert matcher.keyword_topics(fold(text)) == _reference_topics(topics, fold(text))


def test_process_pool_warms_up_and_gives_what_a_thread_gives():
    import asyncio

    from bot.ingest import IngestPool

    body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
            b"<item><title>LLM \xe5\xb9\xbb\xe8\xa6\xba paper</title><link>https://e.org/1</link>"
            b"<description>&lt;p&gt;FlashAttention-2 &lt;b&gt;GQA&lt;/b&gt;&lt;/p&gt;</description></item>"
            b"</channel></rss>")
    topics = {"llm": TopicDef(keywords=("llm",)), "hallucination": TopicDef(keywords=("幻觉",))}

    async def run(processes: int) -> tuple[list, list]:
        pool = IngestPool(processes, topics)
        try:
            entries = await pool.parse(body, "https://e.org/feed", None, "s", ())
            return entries, await pool.tokenize(entries * 150)  # ≥ 200 texts: split across workers
        finally:
            pool.close()

    in_thread = asyncio.run(run(0))
    in_processes = asyncio.run(run(2))
    assert in_processes == in_thread
    assert in_thread[0][0].topics == ("llm", "hallucination")
    assert in_thread[1][0] == ("llm 幻觉 paper", "flashattent flash attent 2 gqa")

    async def first_poll(processes: int) -> tuple[list, list]:
        pool = IngestPool(processes, topics)
        try:
            return await pool.parse_for_index(body, "https://e.org/feed", None, "s", ())
        finally:
            pool.close()

    # A first poll's single worker trip gives the same entries and the same tokens as two trips.
    assert asyncio.run(first_poll(2)) == asyncio.run(first_poll(0)) == (in_thread[0], in_thread[1][:1])


def test_entries_cross_processes_whole():
    """``Entry.__reduce__`` lists the fields by hand: every field must survive a pickle round trip."""
    import dataclasses
    import pickle
    from datetime import UTC, datetime

    from bot.models import Entry

    values = {f.name: f"v-{f.name}" for f in dataclasses.fields(Entry)}
    values.update(published=datetime(2026, 1, 1, tzinfo=UTC), updated=datetime(2026, 1, 2, tzinfo=UTC),
                  first_seen=datetime(2026, 1, 3, tzinfo=UTC), categories=("a", "b"), topics=("llm",), id=7)
    entry = Entry(**values)
    assert pickle.loads(pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)) == entry
    stored = entry.stored_as(9, datetime(2026, 2, 1, tzinfo=UTC))
    assert stored == dataclasses.replace(entry, id=9, first_seen=datetime(2026, 2, 1, tzinfo=UTC))
