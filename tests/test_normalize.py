import hashlib
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import ParsedEntry, ParsedFeed
from bot.normalize import normalize_entries
from bot.parse import parse_feed

FEED_URL = "https://example.org/blog/feed.xml"
FEEDS = Path(__file__).parent / "data" / "feeds"


def entry(**kw):
    base = {"guid": None, "link": None, "title": None, "summary_html": None}
    return ParsedEntry(**(base | kw))


def norm(*entries, **kw):
    return normalize_entries(ParsedFeed("F", None, tuple(entries), "rss20"), "src", feed_url=FEED_URL, **kw)


def test_key_prefers_guid_then_link_then_hash():
    when = datetime(2024, 5, 1, 12, tzinfo=UTC)
    a, b, c = norm(entry(guid="  g-1 ", link="/x"), entry(link="/post/2", title="T"),
                   entry(title="Only <b>title</b>", published=when))
    assert a.key == "g-1"
    assert b.key == "https://example.org/post/2" and b.link == "https://example.org/post/2"
    expected = hashlib.sha1(f"Only title\x00{when.isoformat()}".encode()).hexdigest()
    assert c.key == "sha1:" + expected


def test_duplicate_keys_keep_first_and_order_is_kept():
    out = norm(entry(guid="1", title="first"), entry(guid="2", title="second"), entry(guid="1", title="dup"))
    assert [(e.key, e.title) for e in out] == [("1", "first"), ("2", "second")]


def test_title_fallbacks():
    a, b = norm(entry(guid="1", summary_html="<p>Some words from the summary</p>"), entry(guid="2"))
    assert a.title == "Some words from the summary"
    assert b.title == "(untitled)"


def test_links_only_http():
    out = norm(*(entry(guid=str(i), link=link) for i, link in enumerate(
        ["javascript:alert(1)", "data:text/html,x", "file:///etc/passwd", "relative/page", "//cdn.example.net/a",
         "HTTPS://EXAMPLE.org/Up", "mailto:a@b", "http://[::1", "   "])))
    assert [e.link for e in out] == [None, None, None, "https://example.org/blog/relative/page",
                                     "https://cdn.example.net/a", "https://EXAMPLE.org/Up", None, None, None]


def test_summary_text_truncated():
    html = "<p>" + "word " * 1000 + "</p><script>bad()</script>"
    (e,) = norm(entry(guid="1", summary_html=html), max_summary_chars=100)
    assert len(e.summary) <= 100 and e.summary.endswith("…") and "bad" not in e.summary


def test_categories_author_thumbnail():
    (e,) = norm(entry(guid="1", categories=("A", "a", " <b>B</b> ", "", *[f"c{i}" for i in range(40)]),
                      author=" Jane &amp; John\u200b ", thumbnail="javascript:x",
                      summary_html='<p><img alt="x" src="/img/a.png?x=1&amp;y=2"></p>'))
    assert e.categories[:3] == ("A", "B", "c0") and len(e.categories) == 20
    assert e.author == "Jane & John"
    assert e.thumbnail == "https://example.org/img/a.png?x=1&y=2"
    (f,) = norm(entry(guid="1", thumbnail="//img.example.org/t.jpg", summary_html='<img src="https://x/y.png">'))
    assert f.thumbnail == "https://img.example.org/t.jpg"


def test_dates_are_aware_utc_and_published_falls_back_to_updated():
    plus2 = timezone(timedelta(hours=2))
    a, b = norm(entry(guid="1", updated=datetime(2024, 1, 1, 12, tzinfo=plus2)),
                entry(guid="2", published=datetime(2024, 1, 1, 12)))
    assert a.published == datetime(2024, 1, 1, 10, tzinfo=UTC) and a.published.tzinfo is UTC
    assert b.published == datetime(2024, 1, 1, 12, tzinfo=UTC)


def test_real_fixtures_normalise():
    for path in FEEDS.iterdir():
        if path.suffix not in (".xml", ".rss", ".json"):
            continue
        out = normalize_entries(parse_feed(path.read_bytes(), FEED_URL), "s", feed_url=FEED_URL)
        assert out, path.name
        for e in out:
            assert e.key and e.title
            assert e.link is None or e.link.startswith(("http://", "https://"))
            assert e.published is None or e.published.tzinfo is not None


def test_cjk_summary_is_not_cut_to_nothing():
    (e,) = norm(entry(guid="1", summary_html="<p>" + "深度求索" * 100 + "</p>"), max_summary_chars=50)
    assert len(e.summary) == 50


_text = st.one_of(st.none(), st.text(max_size=200),
                  st.sampled_from(["<p>x</p>", "javascript:alert(1)", "  ", "&amp;", "<img src='//a/b.png'>"]))
_dates = st.one_of(st.none(), st.datetimes(timezones=st.none() | st.timezones()))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.builds(ParsedEntry, guid=_text, link=_text, title=_text, summary_html=_text, published=_dates,
                          updated=_dates, author=_text, categories=st.lists(st.text(max_size=30)).map(tuple),
                          thumbnail=_text), max_size=5),
       st.integers(min_value=-1, max_value=300))
def test_fuzz_never_raises(entries, max_chars):
    out = normalize_entries(ParsedFeed(None, None, tuple(entries), "x"), "s", feed_url=FEED_URL,
                            max_summary_chars=max_chars)
    assert len({e.key for e in out}) == len(out)
    for e in out:
        assert e.title and len(e.summary) <= max(0, max_chars) and len(e.categories) <= 20
        assert e.published is None or e.published.utcoffset() == timedelta(0)
