import logging
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.filters import FIELDS, EntryFilter, FilterRule
from bot.models import Entry


def entry(title="", summary="", author=None, topics=(), categories=()):
    return Entry(source_id="s", key="k", title=title, link="https://example.com/a", summary=summary,
                 published=None, author=author, topics=tuple(topics), categories=tuple(categories))


def inc(*keywords, regex=(), fields=FIELDS):
    return EntryFilter.compile(FilterRule(keywords=keywords, regex=tuple(regex), fields=tuple(fields)), None,
                               where="routes[0]")


def exc(*keywords, regex=(), fields=FIELDS):
    return EntryFilter.compile(None, FilterRule(keywords=keywords, regex=tuple(regex), fields=tuple(fields)),
                               where="routes[0]")


# --- keywords: case, folding, boundaries ---------------------------------------------------------

def test_no_rules_matches_everything():
    f = EntryFilter.compile(None, None, where="routes[0]")
    assert f.matches(entry("anything"))
    assert f.matches(entry())


@pytest.mark.parametrize(("keyword", "title", "expected"), [
    ("ai", "AI-powered search lands in browsers", True),
    ("ai", "She said no", False),
    ("ai", "生成式AI模型的新进展", True),
    ("ai", "OpenAI releases a model", False),
    ("ai", "The AI.", True),
    ("ai", "ai", True),
    ("ai", "naive approach", False),
    ("ai", "AI2 institute", False),
    ("LLaMA", "meta ships llama 3", True),
    ("llama", "Meta ships LLaMA-3", True),
    ("rust", "Rust 1.80 released", True),
    ("rust", "trust issues", False),
    ("rust", "rusty nails", False),
    ("gpt-4", "OpenAI GPT-4 turbo", True),
    ("gpt-4", "gpt-40 rumours", False),
    ("c++", "Modern C++ tips", True),
    ("c++", "abc++ weird", False),
    (".net", "ASP.NET core", True),
    ("open source", "an open   source model", True),
    ("open source", "opensource model", False),
    ("café", "Cafe\u0301 culture", True),  # NFKC: e + combining acute == é
    ("ｇｐｔ", "GPT news", True),  # fullwidth keyword folds to ASCII
    ("straße", "STRASSE closed", True),  # casefold
    ("2024", "Report 2024: results", True),
    ("2024", "id 120245", False),
    ("über", "Überblick", False),
    ("über", "Alles über KI", True),
    ("ai", "AIとは何か", True),  # kana next to Latin is a boundary too
    ("ai", "AI를 활용한 서비스", True),  # so is a Korean particle
    ("ラーメン", "東京のラーメン店", True),  # kana keyword: no Latin edges, substring
    ("인공지능", "인공지능은 무엇인가", True),
])
def test_keyword_title(keyword, title, expected):
    assert inc(keyword, fields=["title"]).matches(entry(title)) is expected


@pytest.mark.parametrize(("keyword", "text", "expected"), [
    ("幻覺", "大模型的幻觉问题", True),  # Traditional keyword, Simplified text
    ("幻觉", "大型語言模型的幻覺問題", True),  # Simplified keyword, Traditional text
    ("模型", "大模型发布", True),  # CJK matches as a substring
    ("人工智能", "人工智慧", False),
    ("開源", "Meta 开源了 Llama 3", True),
    ("开源", "開源軟體", True),
    ("AI模型", "生成式ai模型", True),  # mixed keyword with CJK: substring
    ("芯片", "晶片短缺", False),  # wording differs, character folding cannot bridge it
])
def test_cjk_keywords(keyword, text, expected):
    assert inc(keyword).matches(entry(title=text)) is expected


def test_any_keyword_hits():
    f = inc("rust", "golang", "幻觉")
    assert f.matches(entry("Golang 1.23"))
    assert f.matches(entry("模型幻覺"))
    assert not f.matches(entry("python news"))


def test_keywords_do_not_span_fields():
    f = inc("open source", fields=["title", "summary"])
    assert not f.matches(entry(title="open", summary="source"))
    assert f.matches(entry(title="x", summary="open source"))


# --- fields --------------------------------------------------------------------------------------

def test_each_field_separately():
    e = entry(title="Title word", summary="summary word", author="Jane Doe", topics=["ml"])
    assert inc("title", fields=["title"]).matches(e)
    assert not inc("title", fields=["summary"]).matches(e)
    assert inc("summary", fields=["summary"]).matches(e)
    assert not inc("summary", fields=["title", "author"]).matches(e)
    assert inc("doe", fields=["author"]).matches(e)
    assert not inc("doe", fields=["title", "summary", "topics"]).matches(e)
    assert inc("ml", fields=["topics"]).matches(e)
    assert not inc("ml", fields=["title"]).matches(e)


def test_author_none_is_empty():
    assert not inc("jane", fields=["author"]).matches(entry("jane", author=None))


def test_topics_keyword_is_exact_id_equality():
    e = entry(topics=["llm", "security"])
    assert inc("LLM", fields=["topics"]).matches(e)
    assert not inc("ll", fields=["topics"]).matches(e)
    assert not inc("llm-safety", fields=["topics"]).matches(e)
    assert not inc("llm", fields=["topics"]).matches(entry("llm everywhere"))


def test_topics_regex_is_tested_per_topic():
    e = entry(topics=["llm", "security"])
    assert inc(regex=[r"^sec"], fields=["topics"]).matches(e)
    assert not inc(regex=[r"llm\s+security"], fields=["topics"]).matches(e)
    assert not inc(regex=[r"^sec"], fields=["title"]).matches(entry("x", topics=["security"]))


def test_categories_are_not_a_filter_field():
    assert not inc("kernel").matches(entry("x", categories=["kernel"]))


# --- regex ---------------------------------------------------------------------------------------

def test_regex_case_insensitive_on_raw_text():
    f = inc(regex=[r"\bCVE-\d{4}-\d+\b"])
    assert f.matches(entry("Patch for cve-2024-3094 in xz"))
    assert not f.matches(entry("CVE pending"))


def test_regex_anchors_apply_per_field():
    f = inc(regex=[r"^\[sponsored\]"], fields=["title", "summary"])
    assert f.matches(entry(title="x", summary="[Sponsored] buy now"))
    assert not f.matches(entry(title="x", summary="not [sponsored]"))


def test_regex_or_keyword():
    f = inc("rust", regex=[r"go\s?lang"])
    assert f.matches(entry("rust"))
    assert f.matches(entry("Go lang tips"))
    assert not f.matches(entry("python"))


# --- include + exclude ---------------------------------------------------------------------------

def test_include_and_exclude_combined():
    f = EntryFilter.compile(
        FilterRule(keywords=("llm", "大模型")),
        FilterRule(keywords=("sponsored", "广告"), regex=(r"^\s*ad:",)),
        where="routes[1]")
    assert f.matches(entry("New LLM benchmark"))
    assert f.matches(entry("國產大模型發布"))
    assert not f.matches(entry("LLM webinar", summary="Sponsored content"))
    assert not f.matches(entry("大模型课程", summary="廣告：限时优惠"))  # Traditional 廣告 folds to 广告
    assert not f.matches(entry("Ad: LLM course"))
    assert not f.matches(entry("Kernel news"))


def test_exclude_only():
    f = exc("crypto", "nft")
    assert f.matches(entry("Kernel 6.10 released"))
    assert not f.matches(entry("NFT market crashes"))
    assert not f.matches(entry("x", summary="crypto winter"))
    assert f.matches(entry("cryptography basics"))


def test_exclude_fields_independent_of_include():
    f = EntryFilter.compile(FilterRule(keywords=("rust",), fields=("title",)),
                            FilterRule(keywords=("jane",), fields=("author",)), where="routes[0]")
    assert f.matches(entry("Rust news", author="Bob"))
    assert not f.matches(entry("Rust news", author="Jane"))
    assert f.matches(entry("Rust news by jane", author="Bob"))


def test_exclude_topic():
    f = exc("ads", fields=["topics"])
    assert not f.matches(entry("x", topics=["ads"]))
    assert f.matches(entry("ads", topics=["news"]))


# --- timeouts ------------------------------------------------------------------------------------

def test_nested_quantifier_returns_quickly():
    f = inc(regex=[r"(a+)+$"])
    start = time.monotonic()
    f.matches(entry("a" * 40 + "b", summary="a" * 40 + "b"))
    assert time.monotonic() - start < 1.0


def test_timeout_is_no_hit_for_include_and_hit_for_exclude(caplog):
    text = "a" * 40 + "b"
    include = EntryFilter.compile(FilterRule(regex=(r"(a|aa)+$",)), None, where="routes[0]", timeout=0.02)
    exclude = EntryFilter.compile(None, FilterRule(regex=(r"(a|aa)+$",)), where="routes[0]", timeout=0.02)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="bot.filters"):
        assert include.matches(entry(text)) is False
        assert include.matches(entry(text)) is False
        assert exclude.matches(entry(text)) is False
    assert time.monotonic() - start < 3.0
    warnings = [r for r in caplog.records if "timed out" in r.getMessage()]
    assert len(warnings) == 2  # once per pattern per filter, not once per call


# --- validation ----------------------------------------------------------------------------------

def test_bad_regex_names_key_and_error():
    message = r"routes\[2\]\.include\.regex\[1\]: invalid regular expression '\(ab'.*missing \)"
    with pytest.raises(ValueError, match=message):
        EntryFilter.compile(FilterRule(regex=("ok", "(ab")), None, where="routes[2]")


def test_bad_regex_in_exclude():
    with pytest.raises(ValueError, match=r"routes\[0\]\.exclude\.regex\[0\]"):
        EntryFilter.compile(None, FilterRule(regex=("[unclosed",)), where="routes[0]")


def test_unknown_field():
    with pytest.raises(ValueError, match=r"routes\[3\]\.include\.fields\[1\]: unknown field 'body'.*title, summary"):
        EntryFilter.compile(FilterRule(keywords=("x",), fields=("title", "body")), None, where="routes[3]")


def test_empty_fields():
    with pytest.raises(ValueError, match=r"routes\[0\]\.exclude\.fields"):
        EntryFilter.compile(None, FilterRule(keywords=("x",), fields=()), where="routes[0]")


@pytest.mark.parametrize("bad", ["", "   ", "\u3000"])
def test_empty_keyword(bad):
    with pytest.raises(ValueError, match=r"routes\[0\]\.include\.keywords\[1\]: empty keyword"):
        EntryFilter.compile(FilterRule(keywords=("ok", bad)), None, where="routes[0]")


def test_non_string_keyword():
    with pytest.raises(ValueError, match=r"keywords\[0\]: must be a string"):
        EntryFilter.compile(FilterRule(keywords=(2024,)), None, where="routes[0]")  # type: ignore[arg-type]


def test_empty_regex_refused():
    with pytest.raises(ValueError, match=r"regex\[0\]: empty pattern"):
        EntryFilter.compile(FilterRule(regex=("",)), None, where="routes[0]")


def test_rule_without_keywords_or_regex():
    with pytest.raises(ValueError, match=r"routes\[0\]\.include: needs at least one keyword or regex"):
        EntryFilter.compile(FilterRule(), None, where="routes[0]")


@pytest.mark.parametrize("timeout", [0, -1.0])
def test_timeout_must_be_positive(timeout):
    with pytest.raises(ValueError, match=r"routes\[0\]: regex timeout must be a positive"):
        EntryFilter.compile(None, None, where="routes[0]", timeout=timeout)


def test_many_keywords_compile_and_match():
    words = tuple(f"word{i}" for i in range(2000))
    f = inc(*words)
    assert f.matches(entry("has word1999 inside"))
    assert not f.matches(entry("has word20000 inside"))


# --- properties ----------------------------------------------------------------------------------

_ANY = EntryFilter.compile(
    FilterRule(keywords=("ai", "幻覺", "open source", "c++", "ß"), regex=(r"\bx+y\b", r"^(a|aa)+$")),
    FilterRule(keywords=("spam", "廣告"), regex=(r"(?i)buy\s+now",)),
    where="routes[0]", timeout=0.01)


@settings(max_examples=200, deadline=None)
@given(st.text(), st.text(), st.one_of(st.none(), st.text()), st.lists(st.text(max_size=20), max_size=4))
def test_matches_never_raises(title, summary, author, topics):
    assert _ANY.matches(entry(title, summary, author, topics)) in (True, False)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20).filter(
    lambda s: s.strip()), st.text(max_size=30), st.text(max_size=30))
def test_keyword_surrounded_by_spaces_always_matches(keyword, before, after):
    try:
        f = inc(keyword, fields=["title"])
    except ValueError:
        return  # folds to nothing (e.g. only ignorable characters)
    assert f.matches(entry(f"{before} {keyword} {after}"))
