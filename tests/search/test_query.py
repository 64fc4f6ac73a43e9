"""User text → structured query: syntax is just text, never an engine query string."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.search.query import MAX_QUERY_CHARS, MAX_UNITS, Prefix, Unit, make_prefix, parse_query
from bot.search.snippet import make_snippet


def test_words_are_required_units():
    parsed = parse_query("KV cache")
    assert parsed.must == (Unit(("kv",)), Unit(("cach",)))
    assert parsed.highlight == ("KV", "cache")


def test_a_cjk_run_is_one_unit_of_its_bigrams():
    assert parse_query("扩散模型").must == (Unit(("扩散", "散模", "模型")),)
    assert parse_query("幻覺").must == (Unit(("幻觉",)),)


def test_a_compound_typed_whole_also_matches_its_parts_as_a_phrase():
    assert parse_query("Llama3").must == (Unit(("llama3",), parts=("llama", "3")),)
    assert parse_query("vLLM").must == (Unit(("vllm",)),)  # one part left: no alternative


def test_phrase_exclusion_and_prefix():
    parsed = parse_query('"speculative decoding" -video -"paged attention" transf*')
    assert parsed.must == (Unit(("specul", "decod"), ordered=True),)
    assert parsed.must_not == (Unit(("video",)), Unit(("page", "attent"), ordered=True))
    assert parsed.prefix == Prefix("transf")
    assert parsed.highlight == ("speculative", "decoding", "transf")


def test_a_prefix_knows_the_stems_cut_back_into_it():
    assert "hallucin" in make_prefix("hallucinat").stems  # hallucination → hallucin
    assert make_prefix("x") is None and make_prefix("扩散") is None
    assert parse_query("扩散*").must == (Unit(("扩散",)),)  # not a Latin prefix: a plain word


def test_operators_are_plain_text():
    for text in ["title:幻觉", "AND OR NOT", "NEAR(a b)", "(GQA", "a:b:c", "+x", "^2", "[1 TO 5]"]:
        parse_query(text)  # never raises
    assert [u.tokens for u in parse_query("AND OR").must] == [("and",), ("or",)]
    assert parse_query("title:GQA").must == (Unit(("titl",)), Unit(("gqa",)))


def test_stopwords_and_question_words_only_leave_the_fallback():
    parsed = parse_query("what is 幻觉")
    assert len(parsed.must) == 3 and parsed.fallback_units() == (Unit(("幻觉",)),)
    assert parse_query("什么是扩散模型").fallback_units() == (Unit(("扩散", "散模", "模型")),)
    assert parse_query("what is").fallback_units() == parse_query("what is").must  # nothing else left


def test_empty_and_garbage_queries_are_empty():
    for text in ["", "   ", "*", "-", '""', "---", "-word", "!!!"]:
        assert parse_query(text).empty, text


def test_long_queries_are_capped():
    parsed = parse_query(" ".join(f"w{i}" for i in range(500)))
    assert len(parsed.must) == MAX_UNITS
    assert len(parse_query("模" * 5000).must[0].tokens) < MAX_QUERY_CHARS


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=600))
def test_any_text_parses(text):
    parsed = parse_query(text)
    assert len(parsed.must) <= MAX_UNITS and all(unit.tokens for unit in parsed.must + parsed.must_not)


# -- snippets (the highlighting side of a query) -------------------------------------------------


def test_snippet_finds_a_chinese_term_inside_a_run_in_either_script():
    assert make_snippet("模型幻觉问题", ["幻觉"]) == "模型**幻觉**问题"
    assert make_snippet("大型語言模型的幻覺問題", parse_query("幻觉")) == "大型語言模型的**幻覺**問題"
    assert make_snippet("模型幻觉问题", parse_query("幻覺")) == "模型**幻觉**问题"


def test_snippet_is_stem_and_compound_aware():
    assert make_snippet("Why LLMs hallucinate", ["hallucination"]) == "Why LLMs **hallucinate**"
    assert make_snippet("The transformers library", parse_query("transf*")) == "The **transformers** library"
    assert make_snippet("We use Flash Attention", parse_query("FlashAttention")) == "We use **Flash** **Attention**"
    assert make_snippet("预训练阶段pretraining 和", parse_query("pretraining")) == "预训练阶段**pretraining** 和"


def test_snippet_escapes_feed_text():
    snippet = make_snippet("所谓幻覺，是指*模型*生成 @everyone __x__ `code`", ["幻觉"])
    assert "**幻覺**" in snippet and "\\*模型\\*" in snippet and "@everyone" not in snippet
    assert "\\_\\_x\\_\\_" in snippet and "\\`code\\`" in snippet


def test_snippet_windows_around_the_first_match_with_ellipses():
    text = "word " * 100 + "needle " + "word " * 100
    cut = make_snippet(text, ["needle"], width=60)
    assert cut.startswith("…") and cut.endswith("…") and "**needle**" in cut and len(cut) < 90
    assert make_snippet("short text", ["absent"]) == "short text"
    assert make_snippet("x" * 300, [], width=50) == "x" * 50 + "…"
    long_cjk = "前" * 100 + "幻觉" + "后" * 100
    cjk = make_snippet(long_cjk, ["幻覺"], width=40)
    assert cjk.startswith("…") and "**幻觉**" in cjk and cjk.endswith("…")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.lists(st.text(max_size=12), max_size=4))
def test_snippet_never_fails(text, terms):
    make_snippet(text, terms, width=80)
