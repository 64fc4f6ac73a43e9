"""The bounds on feedparser's quadratic corners keep what real feeds give (the pathological documents
themselves are in tests/test_fuzz_parse.py, each in a subprocess with a time limit)."""

from __future__ import annotations

import xml.sax.xmlreader

import feedparser
import feedparser.encodings
import feedparser.mixin
import pytest

from bot import feedparser_limits
from bot.feedparser_limits import MAX_AUTHOR_CHARS, MAX_BASE_CHARS, MAX_TAGS, install


@pytest.fixture(autouse=True)
def _installed() -> None:
    install()
    install()  # idempotent: wrapping twice would stack the wrappers


def _parse(doc: str) -> feedparser.FeedParserDict:
    return feedparser.parse(doc.encode(), sanitize_html=False, resolve_relative_uris=False)


def test_installed_once():
    assert feedparser.encodings.RE_XML_PI_ENCODING is feedparser_limits._XML_PI_ENCODING
    wrapper = feedparser.mixin._FeedParserMixin._add_tag
    assert wrapper.__module__ == "bot.feedparser_limits"
    wrapped = wrapper.__closure__[0].cell_contents
    assert wrapped.__module__ == "feedparser.mixin"  # feedparser's own, not a second wrapper


def test_attributes_are_looked_up_by_qualified_name_as_before():
    attrs = xml.sax.xmlreader.AttributesNSImpl({(None, "a"): "1", ("urn:x", "b"): "2"},
                                               {(None, "a"): "a", ("urn:x", "b"): "p:b"})
    assert attrs.getValueByQName("p:b") == "2" and attrs.getValueByQName("a") == "1"
    with pytest.raises(KeyError):
        attrs.getValueByQName("missing")


def test_categories_beyond_the_bound_are_not_collected():
    cats = "".join(f"<category>c{i}</category>" for i in range(MAX_TAGS + 50))
    entry = _parse(f'<!DOCTYPE rss><rss version="2.0"><channel><item><title>t</title>{cats}</item></channel></rss>'
                   ).entries[0]
    assert [t.term for t in entry.tags] == [f"c{i}" for i in range(MAX_TAGS)]


def test_authors_keep_their_address_and_name_within_the_bound():
    doc = '<!DOCTYPE rss><rss version="2.0"><channel><item><author>{}</author></item></channel></rss>'
    entry = _parse(doc.format("joe@example.com (Joe Bloggs)")).entries[0]
    assert (entry.author_detail.email, entry.author_detail.name) == ("joe@example.com", "Joe Bloggs")
    far = _parse(doc.format("x" * MAX_AUTHOR_CHARS + " joe@example.com")).entries[0]
    assert "email" not in far.author_detail  # past the bound the address is not looked for


def test_bases_resolve_as_before_and_long_ones_are_ignored():
    doc = ('<!DOCTYPE feed><feed xmlns="http://www.w3.org/2005/Atom" xml:base="{}"><entry><id>1</id>'
           '<link href="p"/></entry></feed>')
    assert _parse(doc.format("http://e.example/a/")).entries[0].link == "http://e.example/a/p"
    long_base = "http://e.example/" + "a" * MAX_BASE_CHARS + "/"
    assert _parse(doc.format(long_base)).entries[0].link == "p"


def test_the_declarations_encoding_is_read_as_before():
    assert feedparser.encodings.RE_XML_PI_ENCODING.match(b"<?xml version='1.0' encoding='ISO-8859-1'?>\n<r/>"
                                                         ).group(1) == b"ISO-8859-1"
    latin = '<?xml version="1.0" encoding="iso-8859-1"?><rss version="2.0"><channel><title>caf\xe9</title>' \
            "</channel></rss>"
    result = feedparser.parse(latin.encode("iso-8859-1"))
    assert result.feed.title == "caf\xe9" and result.encoding == "iso-8859-1"
