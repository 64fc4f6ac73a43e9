import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.format import CONTENT_LIMIT
from bot.models import Entry
from bot.templates import PLACEHOLDERS, MessageTemplate

WHERE = "routes[1].template"


def entry(title="Title", link="https://example.com/post", summary="Summary text", author=None, topics=(),
          published=None, updated=None):
    return Entry(source_id="s", key="k", title=title, link=link, summary=summary, published=published,
                 updated=updated, author=author, topics=tuple(topics))


def render(template, e=None, **kw):
    kw.setdefault("source", "Example Blog")
    kw.setdefault("topic_labels", {})
    return MessageTemplate.compile(template, where=WHERE).render(e or entry(), **kw)


# --- validation ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("template", "message"), [
    ("{body}", r"unknown placeholder \{body\}"),
    ("{Title}", r"unknown placeholder \{Title\}"),
    ("{title.__class__}", r"attribute or index access in \{title\.__class__\}"),
    ("{title.__class__.__init__.__globals__}", r"attribute or index access"),
    ("{title[0]}", r"attribute or index access in \{title\[0\]\}"),
    ("{title!r}", r"conversion !r in \{title!r\}"),
    ("{title!s}", r"conversion !s"),
    ("{title:>20}", r"format spec :>20 in \{title:>20\}"),
    ("{title:{summary}}", r"format spec"),
    ("{}", r"positional placeholder \{\}"),
    ("{0}", r"positional placeholder \{0\}"),
    ("{title", r"unbalanced braces"),
    ("title}", r"unbalanced braces"),
    ("{{title}", r"unbalanced braces"),
])
def test_validation_errors(template, message):
    with pytest.raises(ValueError, match=re.escape(WHERE) + ": " + message) as info:
        MessageTemplate.compile(template, where=WHERE)
    for name in PLACEHOLDERS:
        assert "{" + name + "}" in str(info.value)


@pytest.mark.parametrize("template", ["", "   ", "\n"])
def test_empty_template_refused(template):
    with pytest.raises(ValueError, match=re.escape(WHERE) + ": template is empty"):
        MessageTemplate.compile(template, where=WHERE)


def test_overlong_literal_refused():
    with pytest.raises(ValueError, match="2001 characters"):
        MessageTemplate.compile("x" * 2001, where=WHERE)


def test_literal_braces_allowed():
    assert render("{{{title}}} {{not a placeholder}}") == "{Title} {not a placeholder}"


def test_placeholders_property():
    t = MessageTemplate.compile("{title} {link} {title} {date}", where=WHERE)
    assert t.placeholders == ("title", "link", "date")


def test_every_placeholder_compiles():
    MessageTemplate.compile(" ".join("{" + p + "}" for p in PLACEHOLDERS), where=WHERE)


# --- rendering -----------------------------------------------------------------------------------

def test_basic_render():
    e = entry(title="Rust 1.80", summary="Lazy cells are here.", author="The Rust Team", topics=["rust", "pl"],
              published=datetime(2024, 7, 25, 15, 4, tzinfo=UTC))
    out = render("**{title}** — {source}\n{summary}\n{link}\n{date} · {topics} · {author}", e,
                 topic_labels={"rust": "Rust", "pl": "Languages"})
    assert out == ("**Rust 1.80** — Example Blog\nLazy cells are here.\nhttps://example.com/post\n"
                   "2024-07-25 15:04 · Rust, Languages · The Rust Team")


def test_topic_without_label_uses_id():
    assert render("{topics}", entry(topics=["llm", "security"]), topic_labels={"llm": "LLM"}) == "LLM, security"


def test_date_in_timezone_and_naive_as_utc():
    when = datetime(2024, 12, 31, 20, 30, tzinfo=UTC)
    assert render("{date}", entry(published=when), tz=ZoneInfo("Asia/Shanghai")) == "2025-01-01 04:30"
    assert render("{date}", entry(published=when.replace(tzinfo=None))) == "2024-12-31 20:30"
    assert render("{date}", entry(published=when.astimezone(timezone(timedelta(hours=-5))))) == "2024-12-31 20:30"


def test_date_falls_back_to_updated_and_empty_when_unknown():
    assert render("[{date}]", entry(updated=datetime(2024, 1, 2, 3, 4, tzinfo=UTC))) == "[2024-01-02 03:04]"
    assert render("[{date}]", entry()) == "[]"


def test_empty_title_shown_as_untitled():
    assert render("**{title}**", entry(title="")) == "**(untitled)**"


def test_missing_author_is_empty():
    assert render("by {author}.", entry(author=None)) == "by ."


def test_summary_truncated():
    out = render("{summary}", entry(summary="word " * 200), summary_length=50)
    assert len(out) <= 50
    assert out.endswith("…")


def test_cjk_text():
    e = entry(title="大模型的幻覺問題", summary="研究人员发现，" * 100, topics=["llm"])
    out = render("【{title}】{summary}｜{topics}", e, topic_labels={"llm": "大语言模型"}, summary_length=20)
    assert out.startswith("【大模型的幻覺問題】")
    assert out.endswith("｜大语言模型")
    summary = out[len("【大模型的幻覺問題】"):-len("｜大语言模型")]
    assert len(summary) <= 20 and summary.endswith("…")


# --- hostile feed text ---------------------------------------------------------------------------

def test_mentions_in_feed_values_defused():
    e = entry(title="@everyone look", summary="hi <@123> and <@&456> in <#789> @here", author="@everyone")
    out = render("{title} {summary} {author}", e, source="@here news")
    assert "@everyone" not in out and "@here" not in out
    for raw in ("<@123>", "<@&456>", "<#789>"):
        assert raw not in out
    assert out.count("\u200b") >= 3  # <@id> forms are neutralised by escaping the angle brackets


def test_mentions_in_template_literal_defused():
    out = render("@everyone new post: {title} <@&42>")
    assert "@everyone" not in out and "<@&42>" not in out
    assert out.startswith("@\u200beveryone new post: Title")


def test_mention_formed_by_joining_literal_and_value():
    assert "@everyone" not in render("@{title}", entry(title="everyone"))
    assert "<@123>" not in render("<@{title}>", entry(title="123"))


def test_masked_link_in_title_is_escaped():
    out = render("{title}", entry(title="[click me](http://evil.example)"))
    assert out == r"\[click me\](http://evil.example)"


def test_markdown_in_feed_values_escaped_but_template_markdown_kept():
    out = render("**{title}** _{summary}_", entry(title="**bold** `code`", summary="# heading"))
    assert out == r"**\*\*bold\*\* \`code\`** _\# heading_"


@pytest.mark.parametrize("link", ["javascript:alert(1)", "ftp://example.com/x", "data:text/html,hi", "", None,
                                  "https://exa mple.com/", "//example.com/x"])
def test_non_http_link_is_empty(link):
    assert render("<{link}>", entry(link=link)) == "<>"


def test_link_kept_and_parentheses_encoded():
    assert render("{link}", entry(link="https://example.com/a?b=1&c=2")) == "https://example.com/a?b=1&c=2"
    out = render("[{title}]({link})", entry(link="https://ok.example/)[x](https://evil.example"))
    assert out == "[Title](https://ok.example/%29[x]%28https://evil.example)"


def test_invite_links_in_values_defused():
    out = render("{summary}", entry(summary="join discord.gg/abc"))
    assert "discord.gg/abc" not in out


def test_result_cut_to_content_limit():
    e = entry(title="t" * 5000, summary="s " * 3000)
    out = render("{title}\n{summary}", e, summary_length=5000)
    assert len(out) <= CONTENT_LIMIT
    assert out.endswith("…")


def test_cut_does_not_split_surrogates_or_emoji_sequences():
    title = "👩\u200d💻" * 1000  # each is 3 code points joined by ZWJ
    out = render("{title}", entry(title=title))
    assert len(out) <= CONTENT_LIMIT
    body = out.removesuffix("…")
    assert not body.endswith("\u200d")
    out.encode("utf-8")  # no lone surrogates


# --- properties ----------------------------------------------------------------------------------

_TEMPLATES = [MessageTemplate.compile(t, where=WHERE) for t in (
    "{title}\n{summary}\n{link}",
    "@{title} <@{summary}> {author}{source}{topics}",
    "@everyone {title}{summary}{title}{summary}",
    "**{title}** {date} <{link}>",
)]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_TEMPLATES), st.text(max_size=3000), st.text(max_size=3000), st.text(max_size=50),
       st.one_of(st.none(), st.text(max_size=50)), st.lists(st.text(max_size=10), max_size=3),
       st.one_of(st.none(), st.text(max_size=100)), st.integers(min_value=-5, max_value=5000))
def test_output_bounded_and_never_pings(template, title, summary, source, author, topics, link, length):
    e = entry(title=title, summary=summary, author=author, topics=topics, link=link)
    out = template.render(e, source=source, topic_labels={}, summary_length=length)
    assert len(out) <= CONTENT_LIMIT
    assert "@everyone" not in out and "@here" not in out
    assert re.search(r"<(@[!&]?|#)\d+>", out) is None
