import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.digest_layout import (
    DigestItem,
    DigestLayout,
    empty_digest_message,
    layout_digest,
    merge_duplicates,
    normalize_link,
)
from bot.format import (
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    TITLE_LIMIT,
    MessageSpec,
)
from bot.models import Entry

SHANGHAI = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
START = END - timedelta(days=1)
LABELS = {"diffusion": "Diffusion", "llm": "LLMs 大模型", "rl": "RL", "vision": "Vision"}
ORDER = ("llm", "diffusion")


def entry(title, link=None, *, summary="", hours_ago=1.0, topics=(), source_id="s", key=None, first_seen=None,
          undated=False):
    published = None if undated else END - timedelta(hours=hours_ago)
    return Entry(source_id=source_id, key=key or title, title=title, link=link, summary=summary,
                 published=published, topics=tuple(topics), first_seen=first_seen)


def item(title, link=None, *, sources=("arXiv cs.LG",), **kwargs):
    return DigestItem(entry(title, link, **kwargs), tuple(sources))


def layout(items, **kwargs) -> DigestLayout:
    options = {"header": "INCOMING TRANSMISSION · LATEST UPDATES", "period_start": START, "period_end": END,
               "tz": SHANGHAI, "group_by": "topic", "topic_labels": LABELS, "topic_order": ORDER}
    options.update(kwargs)
    return layout_digest(items, **options)


def all_embeds(result: DigestLayout):
    return [e for m in result.messages for e in m.embeds]


# -- normalize_link ------------------------------------------------------------------------------
def test_normalize_link_drops_tracking_scheme_www_fragment_and_slash():
    base = normalize_link("https://arxiv.org/abs/2411.01234")
    assert base == normalize_link("http://www.ArXiv.org/abs/2411.01234/")
    assert base == normalize_link("https://arxiv.org/abs/2411.01234?utm_source=rss&UTM_Medium=feed#comments")
    assert base == normalize_link("https://arxiv.org/abs/2411.01234?fbclid=x&gclid=y&ref=hn&spm=a.b&from=timeline")
    assert normalize_link("https://x.example/a?b=2&a=1&utm_campaign=z") == normalize_link("https://x.example/a?a=1&b=2")
    assert normalize_link("https://x.example/a?id=1") != normalize_link("https://x.example/a?id=2")
    assert normalize_link("https://x.example/A") != normalize_link("https://x.example/a")  # paths keep case
    assert normalize_link(None) is None and normalize_link("  ") is None


# -- merge_duplicates ----------------------------------------------------------------------------
def test_merge_by_link_with_tracking_params():
    a = entry("Scaling Laws for Diffusion Transformers", "https://arxiv.org/abs/2410.08184", hours_ago=5,
              topics=("diffusion",))
    b = entry("扩散 Transformer 的缩放定律", "https://arxiv.org/abs/2410.08184?utm_source=wechat&utm_medium=social",
              hours_ago=2, topics=("llm",))
    items = merge_duplicates([(a, "arXiv cs.CV"), (b, "机器之心")])
    assert len(items) == 1
    assert items[0].sources == ("arXiv cs.CV", "机器之心")
    assert items[0].entry.title == a.title  # the earliest is the representative
    assert items[0].entry.topics == ("diffusion", "llm")


def test_merge_by_http_https_and_www():
    a = entry("DeepSeek-V3 Technical Report", "http://www.github.com/deepseek-ai/DeepSeek-V3/", hours_ago=3)
    b = entry("DeepSeek-V3 技术报告", "https://github.com/deepseek-ai/DeepSeek-V3", hours_ago=9)
    items = merge_duplicates([(a, "Hacker News"), (b, "量子位")])
    assert len(items) == 1
    assert items[0].entry.title == "DeepSeek-V3 技术报告"  # b is older
    assert items[0].sources == ("Hacker News", "量子位")


def test_merge_by_title_nfkc_casefold_whitespace():
    a = entry("Ｑｗｅｎ２.5  Technical\tReport", "https://qwenlm.github.io/blog/qwen2.5/", topics=("llm",))
    b = entry("qwen2.5 technical report", "https://huggingface.co/papers/2412.15115", topics=("llm", "rl"))
    c = entry("Qwen2.5-Coder Technical Report", "https://arxiv.org/abs/2409.12186")
    items = merge_duplicates([(a, "Qwen Blog"), (b, "HF Daily Papers"), (c, "arXiv cs.CL")])
    assert [i.sources for i in items] == [("Qwen Blog", "HF Daily Papers"), ("arXiv cs.CL",)]
    assert items[0].entry.topics == ("llm", "rl")


def test_empty_titles_do_not_merge_and_order_is_first_appearance():
    a, b = entry("", "https://x.example/1"), entry("", "https://x.example/2")
    c = entry("Mamba-2", "https://x.example/3")
    d = entry("", "https://x.example/1?utm_source=x")
    items = merge_duplicates([(a, "A"), (b, "B"), (c, "C"), (d, "D")])
    assert [i.entry.link for i in items] == ["https://x.example/1", "https://x.example/2", "https://x.example/3"]
    assert items[0].sources == ("A", "D")


def test_same_source_listed_once_and_first_seen_fallback():
    seen = datetime(2026, 11, 28, tzinfo=UTC)
    a = entry("Sora 技术报告解读", "https://x.example/sora", undated=True, first_seen=seen)
    b = entry("Sora 技术报告解读", "https://x.example/sora#top", undated=True, first_seen=seen - timedelta(hours=1),
              key="b")
    c = entry("Sora 技术报告解读", None, undated=True, key="c")
    items = merge_duplicates([(a, "机器之心"), (b, "机器之心"), (c, "PaperWeekly")])
    assert len(items) == 1
    assert items[0].sources == ("机器之心", "PaperWeekly")
    assert items[0].entry.key == "b"  # published missing: earliest first_seen; undated never wins


def test_earliest_tie_keeps_input_order():
    a = entry("Flow Matching Guide", "https://x.example/fm", hours_ago=2, key="a")
    b = entry("Flow Matching Guide", "https://x.example/fm", hours_ago=2, key="b")
    assert merge_duplicates([(a, "A"), (b, "B")])[0].entry.key == "a"


# -- layout --------------------------------------------------------------------------------------
def test_header_and_period_in_timezone():
    items = [item(f"Paper {i}", f"https://arxiv.org/abs/2411.{i:05d}", topics=("llm",)) for i in range(14)]
    result = layout(items)
    assert result.messages[0].content == (
        "INCOMING TRANSMISSION · LATEST UPDATES\n28 Nov 09:00 → 29 Nov 09:00 (Asia/Shanghai) · 14 entries")
    assert (result.full, result.compact, result.overflow) == (14, 0, 0)


def test_header_mentions_defused_and_no_header():
    result = layout([item("x")], header="@everyone digest")
    assert "@everyone" not in (result.messages[0].content or "")
    result = layout([item("x")], header=None, tz=UTC)
    assert result.messages[0].content == "28 Nov 01:00 → 29 Nov 01:00 (UTC) · 1 entry"


def test_group_by_topic_with_order_labels_and_other():
    items = [
        item("ControlNet++", "https://x.example/1", topics=("vision", "diffusion")),
        item("PPO 详解", "https://x.example/2", topics=("rl",)),
        item("Llama 3.1 405B", "https://x.example/3", topics=("rl", "llm")),  # llm comes first in ORDER
        item("一份无主题的周报", "https://x.example/4"),
        item("Stable Diffusion 3.5", "https://x.example/5", topics=("diffusion",)),
        item("Attention sinks", "https://x.example/6", topics=("unlabeled-topic",)),
    ]
    result = layout(items)
    titles = [e.title for e in all_embeds(result)]
    assert titles == ["LLMs 大模型 · 1", "Diffusion · 2", "RL · 1", "unlabeled-topic · 1", "Other · 1"]
    assert "Llama 3.1 405B" in all_embeds(result)[0].description
    assert "一份无主题的周报" in all_embeds(result)[-1].description


def test_first_topic_used_when_none_in_order():
    result = layout([item("ViT-22B", "https://x.example/v", topics=("vision", "rl"))])
    assert all_embeds(result)[0].title == "Vision · 1"


def test_group_by_source_and_none():
    items = [item("GraphCast", sources=("DeepMind Blog", "Hacker News")),
             item("AlphaFold 3 开源", sources=("量子位",)),
             item("Gemini 2.0 Flash", sources=("DeepMind Blog",))]
    by_source = layout(items, group_by="source")
    assert [e.title for e in all_embeds(by_source)] == ["DeepMind Blog · 2", "量子位 · 1"]
    single = layout(items, group_by="none")
    assert [e.title for e in all_embeds(single)] == ["Latest · 3"]


def test_newest_first_within_group():
    items = [item("old", hours_ago=20, topics=("llm",)), item("newest", hours_ago=1, topics=("llm",)),
             item("undated", undated=True, topics=("llm",)), item("middle", hours_ago=5, topics=("llm",))]
    description = all_embeds(layout(items))[0].description
    positions = [description.index(f"**{t}**") for t in ("newest", "middle", "old", "undated")]
    assert positions == sorted(positions)


def test_block_format_sources_and_summary():
    items = [item("Mixtral of Experts", "https://arxiv.org/abs/2401.04088", sources=("arXiv cs.LG", "机器之心"),
                  summary="稀疏混合专家模型 " * 40, topics=("llm",)),
             item("没有链接的条目", None, sources=("PaperWeekly",), summary="short", topics=("llm",))]
    result = layout(items, summary_length=50, color=0x5865F2)
    embed = all_embeds(result)[0]
    first, second = embed.description.split("\n\n")
    head, summary = first.split("\n")
    assert head == "**[Mixtral of Experts](https://arxiv.org/abs/2401.04088)** · arXiv cs.LG, 机器之心"
    assert len(summary) <= 50 and summary.endswith("…")
    assert second == "**没有链接的条目** · PaperWeekly\nshort"
    assert embed.color == 0x5865F2


def test_feed_text_cannot_mention_or_inject_links():
    evil = item("@everyone free GPUs](https://evil.example) <@123>", "javascript:alert(1)",
                sources=("@here news",), summary="[click](https://evil.example) @here <@&42> discord.gg/abc")
    linked = item("ok", "https://x.example/a_(b)@everyone")
    result = layout([evil, linked], header=None)
    text = "\n".join(e.description + e.title for e in all_embeds(result))
    assert not re.search(r"@(everyone|here)|<@&?\d+>", text)
    assert "javascript" not in text and "\\](https://evil.example)" in text
    assert "[ok](https://x.example/a_%28b%29%40everyone)" in text
    assert "discord.gg/abc" not in text


def test_big_group_continues_in_second_embed():
    items = [item(f"MoE 论文 {i}", f"https://x.example/{i}", summary="专家" * 300, topics=("llm",))
             for i in range(12)]
    result = layout(items, summary_length=600, max_messages=3)
    titles = [e.title for e in all_embeds(result)]
    assert titles[0] == "LLMs 大模型 · 12" and titles[1] == "LLMs 大模型 · 12 (cont.)"
    assert (result.full, result.compact, result.overflow) == (12, 0, 0)
    _assert_within_limits(result, 3)


def _parse_counts(result: DigestLayout) -> tuple[int, int, int]:
    full = compact = overflow = 0
    for embed in all_embeds(result):
        if embed.title == "More":
            lines = embed.description.split("\n")
            compact += sum(1 for line in lines if line.startswith("• "))
            match = re.search(r"…and (\d+) more — use ", embed.description)
            overflow += int(match.group(1)) if match else 0
        else:
            full += embed.description.count("\n\n") + 1
    return full, compact, overflow


def test_overflow_goes_compact_then_n_more():
    items = [item(f"Diffusion paper {i}: 一种新的采样方法", f"https://arxiv.org/abs/2411.{i:05d}",
                  summary="We propose a new sampler. 我们提出了一种新的采样器。" * 20, hours_ago=i,
                  topics=("diffusion",))
             for i in range(150)]
    result = layout(items, summary_length=600, search_hint="/search since:1d")
    assert len(result.messages) == 1
    assert result.full > 0 and result.compact > 0 and result.overflow > 0
    assert result.full + result.compact + result.overflow == 150
    assert _parse_counts(result) == (result.full, result.compact, result.overflow)
    more = result.messages[-1].embeds[-1]
    assert more.title == "More"
    assert more.description.endswith(f"…and {result.overflow} more — use /search since:1d")
    _assert_within_limits(result, 1)
    # the newest are shown in full; the compact list continues in order
    assert "Diffusion paper 0:" in result.messages[0].embeds[0].description
    assert more.description.startswith(f"• [Diffusion paper {result.full}:")

    bigger = layout(items, summary_length=600, max_messages=3, search_hint="/search since:1d")
    assert len(bigger.messages) == 3 and bigger.full > result.full
    assert bigger.full + bigger.compact + bigger.overflow == 150
    assert _parse_counts(bigger) == (bigger.full, bigger.compact, bigger.overflow)
    assert bigger.messages[0].content and all(m.content is None for m in bigger.messages[1:])


def test_overflow_only_compact_when_it_fits():
    items = [item(f"RLHF note {i}", f"https://x.example/{i}", summary="奖励模型" * 500, topics=("rl",))
             for i in range(5)]
    result = layout(items, summary_length=1500)
    assert result.overflow == 0 and result.compact > 0
    assert result.full + result.compact == 5
    assert "more — use" not in result.messages[-1].embeds[-1].description


def test_empty_items_and_empty_notice():
    assert layout([]) == DigestLayout([], 0, 0, 0)
    notice = empty_digest_message("每日 ML 摘要 @here", START, END, SHANGHAI)
    assert isinstance(notice, MessageSpec) and notice.embeds == ()
    assert notice.content == ("每日 ML 摘要 @\u200bhere\n"
                              "No new entries between 28 Nov 09:00 → 29 Nov 09:00 (Asia/Shanghai).")


def test_long_labels_and_header_stay_within_limits():
    items = [item("x" * 5000, "https://x.example/" + "a" * 2000, sources=("源" * 3000,), summary="y" * 9000,
                  topics=("t" * 500,))]
    result = layout(items, header="h" * 5000, topic_labels={}, summary_length=100000)
    _assert_within_limits(result, 1)
    assert result.full == 1


# -- property ------------------------------------------------------------------------------------
_UNESCAPED_MENTION = re.compile(r"@(everyone|here)|<@[!&]?\d+>|<#\d+>")
_NASTY = st.sampled_from(["@everyone", "@here", "<@123>", "<@&456>", "](", "[x](https://evil.example)", "\\",
                          "**", "`", "> ", "# ", "discord.gg/x", "扩散模型", "大语言模型的对齐", "\u200d", "e\u0301",
                          "😀", "\n", " "])
_TEXT = st.one_of(
    st.text(max_size=60),
    st.lists(st.one_of(_NASTY, st.text(max_size=8)), max_size=25).map("".join),
    st.builds(lambda s, n: s * n, st.sampled_from(["@everyone ", "专家混合", "a_b*c", "](x)"]),
              st.integers(1, 1500)),
)
_LINK = st.one_of(st.none(), st.sampled_from(["https://arxiv.org/abs/2411.00001", "http://www.x.example/a?utm_source=1",
                                              "javascript:alert(1)", "https://x.example/(a)@everyone\\",
                                              "https://x.example/" + "p" * 2030, "http://u@here.example/"]))


@st.composite
def _items(draw):
    count = draw(st.integers(0, 40))
    result = []
    for i in range(count):
        title = draw(_TEXT)
        topics = tuple(draw(st.lists(st.sampled_from(["llm", "diffusion", "rl", "vision", "@everyone"]),
                                     max_size=2)))
        sources = tuple(draw(st.lists(_TEXT, min_size=1, max_size=3)))
        when = draw(st.one_of(st.none(), st.integers(0, 48)))
        result.append(DigestItem(Entry(
            source_id="s", key=str(i), title=title, link=draw(_LINK), summary=draw(_TEXT),
            published=None if when is None else END - timedelta(hours=when), topics=topics), sources))
    return result


def _assert_within_limits(result: DigestLayout, max_messages: int) -> None:
    assert len(result.messages) <= max_messages
    for message in result.messages:
        assert message.content is None or len(message.content) <= CONTENT_LIMIT
        assert len(message.embeds) <= EMBEDS_PER_MESSAGE
        assert sum(e.size for e in message.embeds) <= EMBED_TOTAL_LIMIT
        for embed in message.embeds:
            assert 0 < len(embed.title) <= TITLE_LIMIT
            assert len(embed.description) <= DESCRIPTION_LIMIT


def _unescaped_link_openers(text: str) -> list[int]:
    """Positions of "](" whose "]" is not backslash-escaped."""
    out = []
    for match in re.finditer(r"\]\(", text):
        backslashes = len(text[:match.start()]) - len(text[:match.start()].rstrip("\\"))
        if backslashes % 2 == 0:
            out.append(match.end())
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(items=_items(), max_messages=st.integers(1, 3), group_by=st.sampled_from(["topic", "source", "none"]),
       summary_length=st.integers(0, 3000), header=st.one_of(st.none(), _TEXT), hint=_TEXT)
def test_property_limits_counts_and_no_mentions(items, max_messages, group_by, summary_length, header, hint):
    result = layout(items, max_messages=max_messages, group_by=group_by, summary_length=summary_length,
                    header=header, search_hint=hint, topic_labels={**LABELS, "@everyone": "@everyone"})
    _assert_within_limits(result, max_messages)
    assert result.full + result.compact + result.overflow == len(items)
    assert bool(result.messages) == bool(items)
    if items:
        assert _parse_counts(result)[:2] == (result.full, result.compact)
        assert result.messages[0].content
    if result.overflow:
        more = result.messages[-1].embeds[-1]
        assert more.title == "More"
        assert more.description.split("\n")[-1].startswith(f"…and {result.overflow} more — use ")
    for message in result.messages:
        texts = [message.content or ""] + [e.title + "\n" + e.description for e in message.embeds]
        for text in texts:
            assert not _UNESCAPED_MENTION.search(text)
        for embed in message.embeds:
            for end in _unescaped_link_openers(embed.description):
                assert re.match(r"https?://[^\s()]+\)", embed.description[end:])
