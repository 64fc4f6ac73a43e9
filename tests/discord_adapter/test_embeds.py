from __future__ import annotations

import re
from datetime import UTC, datetime

import discord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.discord_adapter.embeds import (
    cut_markdown,
    redact,
    render_result_page,
    render_sources,
    render_topics,
    to_discord_embed,
)
from bot.format import EmbedSpec, render_entry, safe_text
from bot.models import SourceState
from tests.discord_adapter import ResultItem, ResultPage, SourceStatus, make_entry

RAW_MENTION = re.compile(r"@(everyone|here)|(?<!\\)<@[!&]?\d+>|(?<!\\)<#\d+>")


def embed_texts(embed: discord.Embed) -> list[str]:
    texts = [embed.title or "", embed.description or "", embed.footer.text or "", embed.author.name or ""]
    for field in embed.fields:
        texts += [field.name or "", field.value or ""]
    return texts


def limit_problems(embed: discord.Embed) -> list[str]:
    """Every Discord embed limit; an empty list means Discord will accept it."""
    problems = []
    checks = [("title", embed.title, 256), ("description", embed.description, 4096),
              ("footer", embed.footer.text, 2048), ("author", embed.author.name, 256)]
    problems += [f"{name} {len(value)}" for name, value, limit in checks if value and len(value) > limit]
    if len(embed.fields) > 25:
        problems.append(f"{len(embed.fields)} fields")
    for field in embed.fields:
        if not field.name or len(field.name) > 256:
            problems.append(f"field name {len(field.name or '')}")
        if not field.value or len(field.value) > 1024:
            problems.append(f"field value {len(field.value or '')}")
    if len(embed) > 6000:
        problems.append(f"total {len(embed)}")
    if embed.url and len(embed.url) > 2048:
        problems.append("url")
    return problems


def test_to_discord_embed_copies_every_part() -> None:
    when = datetime(2026, 2, 3, 4, 5, tzinfo=UTC)
    spec = EmbedSpec(title="A title", url="https://example.org/a", description="Body", author="Lab News",
                     timestamp=when, footer="Lab News · ML", thumbnail="https://example.org/t.png", color=0x123456)
    embed = to_discord_embed(spec)
    assert (embed.title, embed.url, embed.description) == ("A title", "https://example.org/a", "Body")
    assert embed.author.name == "Lab News"
    assert embed.footer.text == "Lab News · ML"
    assert embed.thumbnail.url == "https://example.org/t.png"
    assert embed.colour == discord.Colour(0x123456)
    assert embed.timestamp == when
    data = embed.to_dict()
    assert data["timestamp"].startswith("2026-02-03T04:05:00")


def test_to_discord_embed_handles_empty_parts_and_naive_time() -> None:
    spec = EmbedSpec(title="", url="javascript:alert(1)", description="", author="", timestamp=datetime(2026, 1, 1),
                     footer="", thumbnail=None, color=None)
    embed = to_discord_embed(spec)
    assert embed.title is None and embed.url is None and embed.description is None
    assert embed.timestamp == datetime(2026, 1, 1, tzinfo=UTC)
    assert "author" not in embed.to_dict() and "footer" not in embed.to_dict()


def test_feed_mentions_never_reach_an_embed_raw() -> None:
    entry = make_entry(1, title="@everyone look <@123456789012345678>", summary="@here <@&42> <#77> hi")
    embed = to_discord_embed(render_entry(entry, source_name="@everyone feed"))
    for text in embed_texts(embed):
        assert not RAW_MENTION.search(text), text


specs = st.builds(EmbedSpec, title=st.text(max_size=400), url=st.one_of(st.none(), st.text(max_size=50)),
                  description=st.text(max_size=5000), author=st.text(max_size=400),
                  timestamp=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
                  footer=st.text(max_size=2500), thumbnail=st.none(),
                  color=st.one_of(st.none(), st.integers(0, 0xFFFFFF)))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(specs)
def test_to_discord_embed_stays_within_limits_even_for_oversized_specs(spec: EmbedSpec) -> None:
    assert limit_problems(to_discord_embed(spec)) == []


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=600), st.text(max_size=4000), st.text(max_size=300))
def test_render_entry_then_convert_stays_within_limits(title: str, summary: str, source: str) -> None:
    entry = make_entry(1, title=title, summary=summary)
    embed = to_discord_embed(render_entry(entry, source_name=source, summary_length=4096))
    assert limit_problems(embed) == []
    for text in embed_texts(embed):
        assert not RAW_MENTION.search(text)


# -- search results -------------------------------------------------------------------------------
nasty = st.lists(st.sampled_from([*"ab *_~`|\\[]()<>@#!&:/.\n", "@everyone", "@here", "<@123>", "**", "é", "😀"]),
                 max_size=40).map("".join)
long_text = st.one_of(nasty, st.text(max_size=3000))
links = st.one_of(st.none(), st.just("https://example.org/a_(b)"),
                  st.text(max_size=40).map(lambda s: "https://x.org/" + s),
                  st.just("https://example.org/" + "x" * 2000))


@st.composite
def result_pages(draw: st.DrawFn) -> ResultPage:
    per_page = draw(st.integers(1, 10))
    count = draw(st.integers(0, per_page))
    items = []
    for n in range(count):
        entry = make_entry(n, title=draw(long_text), summary="", link=draw(links),
                           topics=draw(st.lists(st.text(max_size=30), max_size=5)))
        items.append(ResultItem(entry=entry, source_name=draw(long_text), snippet=draw(long_text), score=1.0))
    page = draw(st.integers(1, 50))
    total = draw(st.integers(count, count + 10_000))
    return ResultPage(items=tuple(items), total=total, page=page, per_page=per_page)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(result_pages(), long_text, long_text, st.booleans())
def test_result_pages_stay_within_every_limit(page: ResultPage, title: str, label: str, exact: bool) -> None:
    embed = render_result_page(page, title=title, query_label=label, note="note", exact_total=exact,
                               topic_labels={"ml": "@everyone"})
    assert limit_problems(embed) == []
    assert len(embed.fields) == len(page.items)
    for text in embed_texts(embed):
        assert not RAW_MENTION.search(text), text


def test_result_field_shows_escaped_title_as_link_source_date_topics_and_snippet() -> None:
    entry = make_entry(3, title="Why [x](https://evil) *matters*", link="https://example.org/a_(b)",
                       topics=("ml", "nlp"))
    page = ResultPage(items=(ResultItem(entry, "Lab News", "about **transformers** here", 1.0),),
                      total=7, page=2, per_page=1)
    embed = render_result_page(page, title="Search results", query_label="🔎 “transformers”",
                               topic_labels={"ml": "Machine learning"})
    field = embed.fields[0]
    assert field.name == "2. Lab News"
    assert f"**[{safe_text(entry.title)}](https://example.org/a_%28b%29)**" in field.value
    assert "<t:" in field.value and ":D>" in field.value
    assert "Machine learning · nlp" in field.value
    assert "about **transformers** here" in field.value
    assert embed.footer.text == "Page 2/7 · 7 results"
    assert embed.description == "🔎 “transformers”"


def test_empty_result_page_and_latest_footer() -> None:
    embed = render_result_page(ResultPage((), 0, 1, 5), title="Search results", query_label="q")
    assert "No matching entries." in (embed.description or "")
    assert embed.footer.text == "Page 1/1 · 0 results"
    latest = render_result_page(ResultPage((), 6, 1, 5), title="Latest", query_label="q", exact_total=False)
    assert latest.footer.text == "Page 1 · more on the next page"


# -- markdown cutting and redaction -----------------------------------------------------------------
def test_cut_markdown_never_leaves_dangling_escape_or_open_bold() -> None:
    assert cut_markdown("abc", 10) == "abc"
    cut = cut_markdown("x" * 8 + "\\*" + "y" * 10, 12)
    assert len(cut) <= 12 and not cut.rstrip("…").endswith("\\")
    cut = cut_markdown("aa **bold words here** tail", 12)
    assert len(cut) <= 12 and cut.count("**") % 2 == 0


@given(st.text(alphabet=st.sampled_from(list("ab\\*")), max_size=60), st.integers(0, 60))
def test_cut_markdown_property(text: str, limit: int) -> None:
    cut = cut_markdown(text, limit)
    assert len(cut) <= max(limit, 0) or (limit < 4 and len(cut) <= 1)
    if cut != text:
        body = cut.removesuffix("…")
        assert (len(body) - len(body.rstrip("\\"))) % 2 == 0


def test_redact_hides_secrets_and_reduces_urls() -> None:
    text = "https://user:pw@feeds.example.org/private/KEY123/rss?token=abc: 403 (secret-token-value)"
    out = redact(text, ["secret-token-value"])
    assert "KEY123" not in out and "abc" not in out and "pw" not in out and "secret-token-value" not in out
    assert out.startswith("https://feeds.example.org/…")
    assert redact("http://example.org/ failed") == "http://example.org failed"


def test_sources_embed_redacts_and_fits_with_many_sources() -> None:
    statuses = []
    for n in range(40):
        state = SourceState(source_id=f"s{n}", url=f"https://example.org/{n}?key=SECRET", polled_once=True,
                            last_success_at=datetime(2026, 1, 1, tzinfo=UTC), consecutive_failures=n % 3,
                            last_error="https://example.org/feed?key=SECRET: " + "boom " * 300,
                            last_error_at=datetime(2026, 1, 2, tzinfo=UTC), entry_count=n)
        statuses.append(SourceStatus(f"s{n}", f"Source @everyone {n}", state.url, state, n % 2,
                                     "Missing Permissions tok-123456" if n % 2 else None))
    embed = render_sources(statuses, secrets=["tok-123456"])
    assert limit_problems(embed) == []
    assert len(embed.fields) == 24 and "16 more" in (embed.footer.text or "")
    for text in embed_texts(embed):
        assert "SECRET" not in text and "tok-123456" not in text and not RAW_MENTION.search(text)
    assert "failing (1 in a row)" in embed.fields[1].value
    assert "failed deliveries: 1" in embed.fields[1].value


def test_topics_embed_lists_counts_and_fits() -> None:
    embed = render_topics([("ml", "Machine learning", 3), ("nlp", "nlp", 1)])
    assert embed.description == "**Machine learning (`ml`)** — 3 entries\n**nlp** — 1 entry"
    many = render_topics([(f"t{n}", "label " * 20, n) for n in range(500)])
    assert limit_problems(many) == [] and "more" in (many.description or "")
    assert render_topics([]).description == "No topics yet."
