from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text import clean_inline, html_to_text, truncate_text


def test_html_to_text_blocks_entities_and_dropped_elements():
    html = ("<p>Hello&nbsp;<b>wor</b>ld</p><p>x<br>y</p><script>alert(1)</script><style>p{}</style>"
            "<iframe src='x'>frame</iframe><ul><li>one</li><li>two</li></ul>")
    assert html_to_text(html) == "Hello world x y one two"


def test_html_to_text_plain_and_stray_characters():
    assert html_to_text("plain & simple < 3 &amp; more") == "plain & simple < 3 & more"
    assert html_to_text("a < b and c > d") == "a < b and c > d"
    assert html_to_text("  lots \n\t of   space ") == "lots of space"
    assert html_to_text("") == ""


def test_html_to_text_removes_invisible_characters():
    assert html_to_text("<p>a\u200bb\u200dc\u2060d\ufeffe\u202ef\u2066g</p>") == "abcdefg"


def test_clean_inline():
    assert clean_inline("AT&amp;T  earnings\n") == "AT&T earnings"
    assert clean_inline("<b>Bold</b> title &#8211; x") == "Bold title – x"
    assert clean_inline("\u202eevil\u200b title") == "evil title"
    assert clean_inline("a < b") == "a < b"
    assert clean_inline("") == ""


def test_truncate_fits_unchanged():
    assert truncate_text("short", 10) == "short"
    assert truncate_text("exact", 5) == "exact"


def test_truncate_word_boundary_and_punctuation():
    assert truncate_text("Hello world, this is a test", 14) == "Hello world…"
    assert truncate_text("one two three", 9) == "one two…"


def test_truncate_cjk_cuts_between_characters():
    text = "深度求索发布新模型" * 40  # 360 characters, no spaces
    out = truncate_text(text, 100)
    assert len(out) == 100 and out.endswith("…") and text.startswith(out[:-1])


def test_truncate_long_word_is_hard_cut():
    url = "https://example.org/" + "a" * 300
    out = truncate_text(url, 50)
    assert len(out) == 50 and url.startswith(out[:-1])


def test_truncate_tiny_limits():
    assert truncate_text("abc", 0) == ""
    assert truncate_text("abc", -5) == ""
    assert truncate_text("abc", 1) == "a"
    assert truncate_text("abcd", 2) == "a…"


def test_truncate_keeps_combining_sequences():
    text = "e\u0301" * 10  # é as e + combining acute
    out = truncate_text(text, 6)
    body = out.rstrip("…")
    assert not body or body[-1] == "\u0301"


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=-3, max_value=60))
def test_truncate_properties(text, limit):
    out = truncate_text(text, limit)
    assert len(out) <= max(0, limit)
    if len(text) <= limit:
        assert out == text
    else:
        body = out[:-1] if out.endswith("…") and not text.startswith(out) else out
        assert text.startswith(body)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*"ab <>&;/=\"'pbrx#\u200b\u4e2d", "<p>", "</p>", "<script>", "&amp;", "<!--",
                                  "<br/>", "&#0;", "&#x110000;", "\x00"])).map("".join) | st.text())
def test_html_to_text_never_raises(html):
    out = html_to_text(html)
    assert "\u200b" not in out
    assert out == out.strip()
    assert "  " not in out


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_clean_inline_never_raises(text):
    out = clean_inline(text)
    assert "\n" not in out
