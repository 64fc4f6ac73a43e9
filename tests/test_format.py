from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.format import (
    AUTHOR_LIMIT,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    FOOTER_LIMIT,
    TITLE_LIMIT,
    defuse_mentions,
    pack_embeds,
    render_entry,
    safe_text,
)
from bot.models import Entry

WHEN = datetime(2026, 11, 28, tzinfo=UTC)


def make(title="t", summary="s", link="https://x.example/a", topics=()):
    return Entry(source_id="s", key="k", title=title, link=link, summary=summary, published=WHEN, topics=topics)


def test_render_entry_basic():
    embed = render_entry(make(title="The Llama 3 Herd", summary="本文归纳" * 200, topics=("llm",)),
                         source_name="Reading Group", summary_length=300, color=0x5865F2,
                         topic_labels={"llm": "LLMs 大模型"})
    assert embed.title == "The Llama 3 Herd"
    assert embed.url == "https://x.example/a"
    assert len(embed.description) <= 300 and embed.description.endswith("…")
    assert embed.author == "Reading Group"
    assert embed.footer == "Reading Group · LLMs 大模型"
    assert embed.timestamp == WHEN and embed.color == 0x5865F2


def test_only_http_links_survive():
    assert render_entry(make(link="javascript:alert(1)"), source_name="s").url is None
    assert render_entry(make(link="https://ok.example/x y"), source_name="s").url is None
    assert render_entry(make(link="HTTP://ok.example/x"), source_name="s").url == "HTTP://ok.example/x"


def test_mentions_and_markdown_are_defused():
    embed = render_entry(make(title="@everyone [click](https://evil) **bold** <@123>",
                              summary="@here <@&42> discord.gg/abc"), source_name="@everyone news")
    for text in (embed.title, embed.description, embed.author, embed.footer):
        assert "@everyone" not in text and "@here" not in text
        assert "<@123>" not in text and "<@&42>" not in text
    assert "\\[click\\]" in embed.title and "\\*\\*bold\\*\\*" in embed.title
    assert "discord.gg/abc" not in embed.description
    assert defuse_mentions("mail me @ home") == "mail me @ home"


def test_escaped_title_cut_never_ends_in_lone_backslash():
    embed = render_entry(make(title="*" * 400), source_name="s")
    assert len(embed.title) <= TITLE_LIMIT
    assert not embed.title.removesuffix("…").endswith("\\") or embed.title.removesuffix("…").endswith("\\\\")


@settings(max_examples=200, deadline=None)
@given(title=st.text(max_size=2000), summary=st.text(max_size=6000), source=st.text(max_size=600),
       topics=st.lists(st.text(min_size=1, max_size=300), max_size=30), length=st.integers(1, 5000))
def test_every_embed_is_within_discord_limits(title, summary, source, topics, length):
    embed = render_entry(make(title=title, summary=summary, topics=tuple(topics)), source_name=source,
                         summary_length=length)
    assert len(embed.title) <= TITLE_LIMIT
    assert len(embed.description) <= DESCRIPTION_LIMIT
    assert len(embed.author) <= AUTHOR_LIMIT
    assert len(embed.footer) <= FOOTER_LIMIT
    assert embed.size <= EMBED_TOTAL_LIMIT
    assert "@everyone" not in safe_text(title)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=300), st.text(max_size=4000)), max_size=40))
def test_packing_respects_message_limits(items):
    embeds = [render_entry(make(title=t, summary=s), source_name="src", summary_length=4096) for t, s in items]
    groups = pack_embeds(embeds)
    assert [i for g in groups for i in g] == list(range(len(embeds)))  # all, in order, once
    for group in groups:
        assert 1 <= len(group) <= EMBEDS_PER_MESSAGE
        assert sum(embeds[i].size for i in group) <= EMBED_TOTAL_LIMIT
