"""Fuzzing the bytes → entries path the poller uses (``bot.ingest.parse_and_tag``: parse, normalise, tag).

Two kinds of input, both run through exactly what ``IngestPool.parse`` runs in a poll:

* byte-level mutations of real seed feeds (``tests/data/fuzz_seeds``, copied from the shared corpus;
  origins and licences in ``tests/data/fuzz_seeds/LICENSES``): bit flips, inserted/deleted/duplicated
  bytes, splices from other seeds, truncation, entity and DOCTYPE injection (billion laughs, external
  entities, parameter entities), swapped encoding declarations and Content-Type charsets, huge attributes;
* structure-aware RSS 2.0 / RSS 1.0 / Atom 1.0 / Atom 0.3 / JSON Feed documents whose fields hold
  hostile values (markup and scripts, CDATA terminators, control and bidi characters, lone surrogates,
  ``javascript:``/``data:``/relative/schemeless links, duplicate and blank ids, absurd dates, huge text).

Properties: nothing but a ``DigestError`` escapes; every entry has a ``str`` title (never empty) and a
``str`` summary without markup that arrived as markup, within the summary limit; links and thumbnails are
absolute http(s) URLs or None; keys are non-empty and unique within the feed; dates are UTC; no entry was
silently dropped because normalising it raised; no external entity was ever read; and nothing takes long.

The number of examples is ``EXAMPLES_PER_SEED`` per seed (and ``GENERATED_EXAMPLES`` per generated
format); set ``DIGESTBOT_FUZZ_EXAMPLES`` to raise it (it is the per-seed figure).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import TopicDef
from bot.errors import DigestError
from bot.ingest import parse_and_tag
from bot.models import Entry
from bot.topics import TopicMatcher

SEED_DIR = Path(__file__).parent / "data" / "fuzz_seeds"
SEEDS = sorted(p.name for p in SEED_DIR.iterdir() if p.is_file() and not p.name.startswith("LICENSE"))
SEED_BYTES = {name: (SEED_DIR / name).read_bytes() for name in SEEDS}

EXAMPLES_PER_SEED = int(os.environ.get("DIGESTBOT_FUZZ_EXAMPLES", "40"))
GENERATED_EXAMPLES = EXAMPLES_PER_SEED * 3
MAX_SUMMARY = 2000          # normalize_entries' default max_summary_chars, which the poller uses
SLOW = 10.0                 # seconds: one document taking longer than this is a finding (hang, blow-up)
PATHOLOGICAL_LIMIT = 5.0    # seconds for the known-pathological documents (each in a subprocess it can kill)
ROOT = Path(__file__).resolve().parents[1]
URL = "https://feeds.example.org/dir/feed.xml"

MATCHER = TopicMatcher.from_config({
    "llm": TopicDef(keywords=["llm", "大模型", "language model"]),
    "safety": TopicDef(keywords=["hallucination", "幻觉"]),
})
_TAG = re.compile(r"<(?:/?[A-Za-z][A-Za-z0-9:-]*)(?:\s[^<>]*)?/?>")
_ESCAPED_LT = re.compile(rb"&(?:amp;)*(?:lt;|#0*60;?|#x0*3c;?)|\\u003c", re.I)
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Secret markers: if one of these ever shows up in an entry, an external entity was resolved.
SECRET = "XXE-SECRET-7f3a9c"

ran: Counter[str] = Counter()        # examples run per seed / generator, checked by the last test
outcomes: Counter[str] = Counter()   # "entries", "empty", "ParseError", ...


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("xxe") / "secret.txt"
    path.write_text(SECRET)
    return path


class _SkippedEntries(logging.Handler):
    """Counts entries that normalize_entries dropped because normalising them raised."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "could not be normalised" in record.getMessage():
            self.records.append(record)


@pytest.fixture(scope="module")
def skipped() -> _SkippedEntries:
    handler = _SkippedEntries()
    logger = logging.getLogger("bot.normalize")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


# ------------------------------------------------------------------------------------------ the property


def check(body: bytes, content_type: str | None, skipped: _SkippedEntries, *,
          forbidden: tuple[str, ...] = (), markup_check: bool = False) -> list[Entry]:
    """Run the poller's parse step on ``body`` and check every invariant; returns the entries."""
    before = len(skipped.records)
    started = time.monotonic()
    try:
        entries = parse_and_tag(body, URL, content_type, "fuzz", ("fuzzing",), MATCHER)
    except DigestError as exc:
        outcomes[type(exc).__name__] += 1
        entries = []
    # anything else propagates and fails the example: the poller would log it as an internal error
    elapsed = time.monotonic() - started
    assert elapsed < SLOW, f"parsing {len(body)} bytes took {elapsed:.1f}s"
    assert len(skipped.records) == before, (
        f"normalize_entries dropped an entry because it raised: {skipped.records[-1].exc_info!r}")
    outcomes["entries" if entries else "empty"] += 1
    assert isinstance(entries, list)
    keys: set[str] = set()
    body_has_escaped_lt = markup_check and bool(_ESCAPED_LT.search(body))
    for e in entries:
        assert isinstance(e, Entry)
        assert e.source_id == "fuzz"
        assert isinstance(e.title, str) and e.title, e
        assert not _CONTROL.search(e.title), repr(e.title)
        assert isinstance(e.summary, str)
        assert len(e.summary) <= MAX_SUMMARY, len(e.summary)
        assert not _CONTROL.search(e.summary), repr(e.summary[:200])
        if markup_check:
            # markup may only remain when the feed escaped it, i.e. it was text about markup (mutated
            # documents can turn HTML into text legitimately, e.g. by dropping an Atom type="html")
            tag = _TAG.search(e.summary)
            assert tag is None or body_has_escaped_lt, f"markup left in summary: {tag.group(0)!r}"
        for url in (e.link, e.thumbnail):
            if url is not None:
                assert isinstance(url, str)
                parts = urlsplit(url)
                assert parts.scheme.lower() in ("http", "https") and parts.netloc, url
                assert not any(c in url for c in "\x00\r\n\t"), repr(url)
        assert isinstance(e.key, str) and e.key.strip(), repr(e.key)
        assert e.key not in keys, f"duplicate key {e.key!r}"
        keys.add(e.key)
        for when in (e.published, e.updated):
            assert when is None or when.utcoffset() == timedelta(0)
            assert when is None or when.tzinfo is not None
        assert e.author is None or (isinstance(e.author, str) and e.author)
        assert isinstance(e.categories, tuple) and all(isinstance(c, str) and c for c in e.categories)
        assert len(e.categories) <= 20
        assert isinstance(e.topics, tuple) and "fuzzing" in e.topics
        text = " ".join((e.title, e.summary, e.author or "", *e.categories, e.link or ""))
        assert SECRET not in text, "an external entity was resolved"
        assert "lol9lol9lol9" not in text, "a nested entity was expanded"
        for word in forbidden:
            # the summary only: feedparser hands title/author/category markup back escaped (as text),
            # which clean_inline decodes to literal "<script>…" text; harmless in an embed (see report)
            for name, value in (("summary", e.summary),):
                assert word not in (value or ""), f"{word!r} leaked into the {name}: {value!r}"
    return entries


# --------------------------------------------------------------------------------------- seed mutations

ENCODINGS = ["utf-8", "UTF-16", "utf-16le", "utf-32", "iso-8859-1", "windows-1252", "gb2312", "gb18030", "big5",
             "shift_jis", "euc-kr", "koi8-r", "cp037", "x-user-defined", "bogus-charset", "", "utf-7", "ascii"]
CONTENT_TYPES = [None, "application/rss+xml", "application/atom+xml; charset=utf-8", "text/xml",
                 "text/xml; charset=iso-8859-1", "application/xml; charset=utf-16", "text/html; charset=big5",
                 "application/json", "application/feed+json; charset=gb2312", "text/plain; charset=bogus",
                 'application/xml; charset="utf-32"', "application/octet-stream"]
ENTITIES = [b"&amp;", b"&lt;script&gt;alert(1)&lt;/script&gt;", b"&#0;", b"&#x110000;", b"&#xD800;",
            b"&#99999999999;", b"&nbsp;", b"&undefined;", b"&", b"&#", b"&#x;", b"&lol9;", b"&xxe;",
            b"]]>", b"<![CDATA[", b"<!--", b"-->", b"<?pi x?>", b"\xef\xbb\xbf", b"\x00", b"\xff\xfe"]


def billion_laughs(depth: int) -> bytes:
    lines = [b'<!ENTITY lol "lol">']
    for i in range(1, depth + 1):
        prev = b"lol" if i == 1 else b"lol%d" % (i - 1)
        lines.append(b'<!ENTITY lol%d "' % i + (b"&" + prev + b";") * 10 + b'">')
    return b"<!DOCTYPE rss [" + b"".join(lines) + b"]>"


def doctypes(secret: Path) -> list[bytes]:
    uri = secret.as_uri().encode()
    return [
        billion_laughs(9),
        b'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "' + uri + b'">]>',
        b'<!DOCTYPE rss [<!ENTITY % p SYSTEM "' + uri + b'"> %p;]>',
        b'<!DOCTYPE rss SYSTEM "' + uri + b'">',
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://127.0.0.1:9/rss-0.91.dtd">',
        b'<!DOCTYPE html [<!ENTITY a "<script>alert(1)</script>">]>',
        b"<!DOCTYPE",
    ]


def _xml_decl_end(data: bytes) -> int:
    end = data.find(b"?>") if data.startswith(b"<?xml") else -1
    return end + 2 if end >= 0 else 0


@st.composite
def mutated(draw: st.DrawFn, seed: str, secret: Path) -> tuple[bytes, str | None]:
    data = bytearray(SEED_BYTES[seed])
    kinds = draw(st.lists(st.sampled_from(
        ["flip", "insert", "delete", "splice", "truncate", "duplicate", "entity", "doctype", "encoding",
         "huge_attr", "nest"]), min_size=0, max_size=4))
    for kind in kinds:
        n = len(data)
        pos = draw(st.integers(0, n))
        if kind == "flip" and n:
            i = min(pos, n - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            data[pos:pos + draw(st.integers(1, 64))] = b""
        elif kind == "splice":
            other = SEED_BYTES[draw(st.sampled_from(SEEDS))]
            start = draw(st.integers(0, len(other)))
            data[pos:pos] = other[start:start + draw(st.integers(1, 400))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "duplicate":
            length = draw(st.integers(1, 300))
            times = draw(st.integers(1, 50))
            data[pos:pos] = bytes(data[pos:pos + length]) * times
        elif kind == "entity":
            data[pos:pos] = draw(st.sampled_from(ENTITIES))
        elif kind == "doctype":
            at = _xml_decl_end(bytes(data)) if draw(st.booleans()) else pos
            data[at:at] = draw(st.sampled_from(doctypes(secret)))
        elif kind == "encoding":
            wanted = draw(st.sampled_from(ENCODINGS)).encode()
            decl = re.match(rb"<\?xml[^>]*?\?>", bytes(data))
            new = b'<?xml version="1.0" encoding="' + wanted + b'"?>'
            if decl:
                data[decl.start():decl.end()] = new
            else:
                data[0:0] = new
        elif kind == "huge_attr":
            gt = data.find(b">", _xml_decl_end(bytes(data)))
            at = gt if gt > 0 else pos
            size = draw(st.sampled_from([1_000, 100_000, 1_000_000]))
            data[at:at] = b' huge="' + b"A" * size + b'" xml:base="javascript:alert(1)//"'
        elif kind == "nest":
            depth = draw(st.sampled_from([50, 500, 5_000]))
            data[pos:pos] = b"<a>" * depth + b"x" + b"</a>" * depth
    return bytes(data), draw(st.sampled_from(CONTENT_TYPES))


def test_every_seed_parses_as_is(skipped: _SkippedEntries) -> None:
    """The seeds themselves: the well-formed ones give entries, none of them crashes."""
    with_entries = 0
    for name in SEEDS:
        content_type = "application/feed+json" if name.endswith(".json") else None
        entries = check(SEED_BYTES[name], content_type, skipped)
        with_entries += bool(entries)
    assert len(SEEDS) >= 15
    # five seeds have no readable entry (feed-level only, or broken before the first item), as in feedparser
    assert with_entries >= len(SEEDS) - 5, "most seeds should parse to at least one entry"


@pytest.mark.parametrize("seed", SEEDS)
def test_mutated_seed(seed: str, secret_file: Path, skipped: _SkippedEntries) -> None:
    @settings(max_examples=EXAMPLES_PER_SEED, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(case=mutated(seed, secret_file))
    def run(case: tuple[bytes, str | None]) -> None:
        body, content_type = case
        ran[seed] += 1
        check(body, content_type, skipped)

    run()


# --------------------------------------------------------------------------------- structure-aware feeds

HOSTILE_TEXT = [
    "<script>alert('xss')</script>", "<img src=x onerror=alert(1)>", "]]>", "<![CDATA[x]]>", "&amp;lt;b&amp;gt;",
    "\u202eevil\u202c", "\u200b\u200d\ufeff", "@everyone", "<@&123456789012345678>", "\x00\x01\x1b[31m",
    "\ud800", "𝕳𝖊𝖑𝖑𝖔 👩‍👩‍👧", "大模型幻觉" * 50, "a" * 5000, " \t\n ", "", "&#0;", "&#xFFFE;", "<p>para</p>" * 300,
    "<style>body{}</style><b>bold</b>", "<!-- comment -->", "<a href='javascript:alert(1)'>x</a>",
]
HOSTILE_LINKS = [
    "javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "//evil.example/x", "/relative/path",
    "relative", "http://", "https:///nohost", "HTTPS://Example.org/ok", "http://[::1]:80/", "ftp://x.example/",
    "file:///etc/passwd", "http://a.example/\x00nul", "http://a.example/ line", " https://space.example/ ",
    "http://a.example/" + "p" * 3000, "mailto:x@example.org", "https://xn--80ak6aa92e.com/", "http://%zz",
    "https://ok.example/entry?a=1&b=2", "http://[invalid", "\u202ehttp://rtl.example/",
]
HOSTILE_DATES = ["Mon, 01 Nov 2026 10:00:00 GMT", "2026-11-01T10:00:00Z", "9999-12-31T23:59:59+14:00",
                 "0000-00-00T00:00:00Z", "Tue, 31 Feb 2026 25:61:61 +9999", "-1", "1e308", "yesterday",
                 "2026-11-01T10:00:00", "Sat, 16 nov 2022 10:00:00 +0000", "mer, 16 nov 2022 10:00:00 +0100",
                 "0001-01-01T00:00:00-23:59", "", "2026-13-45"]


def texts() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=80),
                     st.lists(st.sampled_from(HOSTILE_TEXT), max_size=4).map("".join))


def links() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE_LINKS), st.text(max_size=40))


def ids() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["same", "same", "", " ", "https://dup.example/1", "x" * 2000]),
                     st.text(max_size=20))


def xml_value(draw: st.DrawFn, value: str) -> str:
    """Put ``value`` into XML text: escaped (text), in CDATA, or raw (markup, possibly ill-formed)."""
    how = draw(st.sampled_from(["escape", "cdata", "raw"]))
    if how == "escape":
        return html.escape(value, quote=False)
    if how == "cdata":
        return "<![CDATA[" + value + "]]>"
    return value


def attr(value: str) -> str:
    return html.escape(value, quote=True)


ENTRY = st.fixed_dictionaries({"id": ids(), "title": texts(), "summary": texts(), "content": texts(),
                               "link": links(), "date": st.sampled_from(HOSTILE_DATES), "author": texts(),
                               "category": texts(), "thumb": links()})


@st.composite
def rss20(draw: st.DrawFn) -> str:
    items = []
    for e in draw(st.lists(ENTRY, max_size=6)):
        perma = draw(st.sampled_from(["true", "false", "TRUE", ""]))
        items.append(
            f"<item><title>{xml_value(draw, e['title'])}</title><link>{xml_value(draw, e['link'])}</link>"
            f"<guid isPermaLink=\"{perma}\">{xml_value(draw, e['id'])}</guid>"
            f"<description>{xml_value(draw, e['summary'])}</description>"
            f"<content:encoded>{xml_value(draw, e['content'])}</content:encoded>"
            f"<pubDate>{attr(e['date'])}</pubDate><author>{xml_value(draw, e['author'])}</author>"
            f"<category>{xml_value(draw, e['category'])}</category>"
            f"<media:thumbnail url=\"{attr(e['thumb'])}\"/>"
            f"<enclosure url=\"{attr(e['thumb'])}\" type=\"image/png\"/></item>")
    version = draw(st.sampled_from(["2.0", "0.91", "0.92", "", "9"]))
    return (f'<rss version="{version}" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            f'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>{xml_value(draw, draw(texts()))}</title>'
            f"<link>{attr(draw(links()))}</link>{''.join(items)}</channel></rss>")


@st.composite
def rss10(draw: st.DrawFn) -> str:
    items = "".join(
        f"<item rdf:about=\"{attr(e['id'])}\"><title>{xml_value(draw, e['title'])}</title>"
        f"<link>{xml_value(draw, e['link'])}</link><description>{xml_value(draw, e['summary'])}</description>"
        f"<dc:date>{attr(e['date'])}</dc:date><dc:creator>{xml_value(draw, e['author'])}</dc:creator>"
        f"<dc:subject>{xml_value(draw, e['category'])}</dc:subject></item>"
        for e in draw(st.lists(ENTRY, max_size=6)))
    return ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel rdf:about="x"><title>t</title></channel>'
            f"{items}</rdf:RDF>")


@st.composite
def atom(draw: st.DrawFn) -> str:
    ns = draw(st.sampled_from(["http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#"]))
    entries = []
    for e in draw(st.lists(ENTRY, max_size=6)):
        kind = draw(st.sampled_from(["text", "html", "xhtml", "application/xhtml+xml", "image/png", "bogus"]))
        body = e["summary"]
        if kind == "xhtml":
            inner = f'<div xmlns="http://www.w3.org/1999/xhtml">{xml_value(draw, body)}</div>'
        else:
            inner = xml_value(draw, body)
        base = draw(st.sampled_from(["", ' xml:base="javascript:alert(1)//"', ' xml:base="https://base.example/a/"',
                                     ' xml:base="../up/"', ' xml:base="file:///etc/"']))
        title_type = draw(st.sampled_from(["text", "html"]))
        entries.append(
            f"<entry{base}><id>{xml_value(draw, e['id'])}</id><title type=\"{title_type}\">"
            f"{xml_value(draw, e['title'])}</title><link rel=\"alternate\" href=\"{attr(e['link'])}\"/>"
            f"<link rel=\"enclosure\" type=\"image/jpeg\" href=\"{attr(e['thumb'])}\"/>"
            f"<updated>{attr(e['date'])}</updated><published>{attr(e['date'])}</published>"
            f"<issued>{attr(e['date'])}</issued>"
            f"<author><name>{xml_value(draw, e['author'])}</name></author>"
            f"<category term=\"{attr(e['category'])}\"/><summary type=\"{kind}\">{inner}</summary>"
            f"<content type=\"{kind}\" mode=\"{draw(st.sampled_from(['escaped', 'xml', 'base64', '']))}\">"
            f"{inner}</content></entry>")
    return f'<feed xmlns="{ns}" version="0.3"><title>t</title>{"".join(entries)}</feed>'


JSON_VALUE = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | texts(),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3),
                          max_leaves=6)


@st.composite
def json_feed(draw: st.DrawFn) -> str:
    items = []
    for e in draw(st.lists(ENTRY, max_size=6)):
        item = {"id": e["id"], "url": e["link"], "external_url": draw(links()), "title": e["title"],
                "content_html": e["content"], "content_text": e["summary"], "summary": e["summary"],
                "date_published": e["date"], "date_modified": e["date"], "authors": [{"name": e["author"]}],
                "author": {"name": e["author"]}, "tags": [e["category"], e["category"]], "image": e["thumb"],
                "attachments": [{"url": e["thumb"], "mime_type": "image/png"}]}
        for key in draw(st.lists(st.sampled_from(sorted(item)), max_size=4)):  # wrong types and gaps
            if draw(st.booleans()):
                item.pop(key, None)
            else:
                item[key] = draw(JSON_VALUE)
        items.append(item)
    doc: dict[str, object] = {"version": draw(st.sampled_from(["https://jsonfeed.org/version/1.1",
                                                               "https://jsonfeed.org/version/1", "x", None])),
                              "title": draw(texts()), "home_page_url": draw(links()), "items": items}
    if draw(st.booleans()):
        doc["items"] = draw(JSON_VALUE)
    return json.dumps(doc, ensure_ascii=draw(st.booleans()))


def encode(draw: st.DrawFn, document: str, *, json_doc: bool = False) -> bytes:
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "gb18030", "iso-8859-1"]))
    declare = "utf-8" if json_doc else draw(st.sampled_from([encoding, encoding, "utf-8", "big5", "bogus"]))
    prefix = "" if json_doc or not draw(st.booleans()) else f'<?xml version="1.0" encoding="{declare}"?>'
    # UTF encodings keep lone surrogates as (invalid) bytes; the others get character references
    errors = "surrogatepass" if encoding.startswith("utf") else "xmlcharrefreplace"
    return (prefix + document).encode(encoding, errors=errors)


GENERATORS = {"rss20": rss20(), "rss10": rss10(), "atom": atom(), "json": json_feed()}


@pytest.mark.parametrize("kind", sorted(GENERATORS))
def test_generated_feed(kind: str, skipped: _SkippedEntries) -> None:
    @settings(max_examples=GENERATED_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        ran[f"generated:{kind}"] += 1
        document = data.draw(GENERATORS[kind])
        body = encode(data.draw, document, json_doc=kind == "json")
        content_type = data.draw(st.sampled_from(CONTENT_TYPES))
        # RSS text is HTML: a <script> element that arrived as markup (raw or in CDATA, never escaped as
        # text about markup) must never reach an entry, nor its code. (Atom type="text" and JSON Feed
        # content_text are plain text, where "<script>" is legitimately literal.)
        html_only = kind.startswith("rss") and "&lt;" not in document and "&amp;" not in document
        entries = check(body, content_type, skipped, forbidden=("alert('xss')", "<script") if html_only else (),
                        markup_check=html_only)
        assert isinstance(entries, list)

    run()


_DTD = b"<!DOCTYPE rss>"


def _rss(item: bytes, dtd: bytes = b"") -> bytes:
    return (b'<?xml version="1.0" encoding="utf-8"?>' + dtd + b'<rss version="2.0"><channel><title>t</title><item>'
            b"<guid>g</guid>" + item + b"</item></channel></rss>")


def _atom_entries(count: int) -> bytes:
    return b"".join(b"<entry><id>%d</id><title>t</title><link href='p'/></entry>" % i for i in range(count))


# Documents found by this fuzzer (and by a sweep of hostile shapes at growing sizes) that took exponential
# or quadratic time. Each runs in a subprocess that is killed after PATHOLOGICAL_LIMIT seconds: the regex
# engine holds the GIL, nothing in-process can stop it (in the bot's default thread mode, the parse would
# starve the event loop: gateway heartbeats, deliveries, shutdown; ingest.parse_timeout cannot help there).
PATHOLOGICAL = {
    # bot/parse.py _HTML_START: (...|<!--.*?-->|...)* backtracks over every way to split the comments;
    # time doubles per comment (22 comments: 0.5 s; 60: forever). 600 bytes of feed hang the poller.
    "leading-comments": b"<!-- a -->" * 60 + b'<rss version="2.0"><channel><item><title>t</title><guid>g</guid>'
                        b"</item></channel></rss>",
    # bot/normalize.py _IMG_SRC searched over the whole summary HTML: "<img" without ">" scans to the end
    # from every start, quadratic (40 kB: 2 s; 400 kB: ~200 s; bodies may be 10 MB).
    "unclosed-img": b'<rss version="2.0"><channel><item><title>t</title><guid>g</guid><description><![CDATA['
                    + b"<img " * 80_000 + b"]]></description></item></channel></rss>",
    # bot/parse.py _XMLNS_ATTR (``\s+xmlns...``) substituted over each serialised XHTML child, tail text
    # included: a whitespace run is re-scanned from every position in it, quadratic (32 kB: 1.4 s;
    # 128 kB: 23 s; this 512 kB: ~6 min; bodies may be 10 MB).
    "xhtml-whitespace": b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id><entry><id>e</id>'
                        b'<title>t</title><content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>a'
                        + b" " * 512_000 + b"b</p></div></content></entry></feed>",
    # bot/parse.py _rss_author: ``\s*\S+@\S+\s*\(`` tried every split of a run of "@" (64 kB: 27 s).
    "rss-author-at-run": _rss(b"<title>t</title><author>" + b"@" * 64_000 + b"</author>"),
    # NFKC (ingest's normalize, fold) sorts a run of combining marks by insertion: quadratic (12.8 s).
    "combining-marks-title": _rss(b"<title>a" + "\u0301\u0316".encode() * 64_000 + b"</title>"),
    # The HTML parser behind html_to_text is quadratic on nested unclosed tags; titles were uncapped (17 s).
    "nested-div-title": _rss(b"<title>" + b"&lt;div&gt;" * 100_000 + b"</title>"),
    # bot/parse.py _base: every link rejoined its ancestors' xml:base, uncached: 5,000 entries under a
    # 300 kB base (11.9 s) and 2,000 under 200 nested ones (6.7 s).
    "long-xml-base": b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="http://e.example/' + b"a" * 300_000
                     + b'/"><title>t</title><id>f</id>' + _atom_entries(5_000) + b"</feed>",
    "nested-xml-base": b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>f</id>'
                       + b"".join(b'<x xml:base="d%d/">' % i for i in range(200)) + _atom_entries(2_000)
                       + b"</x>" * 200 + b"</feed>",
    # feedparser's XML-declaration regex scans the whole first line, even on the fast path's charset
    # sniffing: a one-line ISO-8859-1 feed that says encoding='x' in its text (over 30 s), with or
    # without a byte-order mark before the declaration, with a CR after it (a CR is no line end to
    # that regex) or as UTF-16 (which feedparser decodes whole before the search: over 60 s).
    "one-line-encoding-quotes": b"<?xml version='1.0' encoding='iso-8859-1'?><rss version='2.0'><channel><title>t"
                                b"</title><item><guid>g</guid><title>x</title><description>" + b"encoding='x' " * 2_600
                                + b"</description></item></channel></rss>",
    "bom-one-line-encoding-quotes": b"\xef\xbb\xbf<?xml version='1.0' encoding='iso-8859-1'?><rss version='2.0'>"
                                    b"<channel><title>t</title><item><guid>g</guid><title>x</title><description>"
                                    + b"encoding='x' " * 2_600 + b"</description></item></channel></rss>",
    "cr-one-line-encoding-quotes": b"<?xml version='1.0' encoding='iso-8859-1'?>\r<rss version='2.0'><channel><title>t"
                                   b"</title><item><guid>g</guid><title>x</title><description>"
                                   + b"encoding='x' " * 2_600 + b"</description></item></channel></rss>",
    "utf16-one-line-encoding-quotes": ('<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><title>t'
                                       "</title><item><guid>g</guid><title>x</title><description>"
                                       + "encoding='x' " * 5_000 + "</description></item></channel></rss>"
                                       ).encode("utf-16"),
    # feedparser's DOCTYPE regexes try ``^\s*`` at each of 32,000 blank lines (2 s; 60,000: 7.7 s, but a
    # prolog over 32 kB is refused now).
    "prolog-newlines": b'<?xml version="1.0"?>' + b"\n" * 32_000 + b'<!DOCTYPE rss><rss version="2.0"><channel>'
                       b"<title>t</title><item><guid>g</guid><title>x</title></item></channel></rss>",
    # The lenient path (a DTD sends these to feedparser), bounded by bot/feedparser_limits.py: an element
    # with 64,000 attributes (44 s), 40,000 categories (21 s), an author of 64 kB with no "@" (15 s),
    # and 5,000 entries under a 300 kB xml:base (21 s).
    "fp-many-attributes": _rss(b"<title " + b"".join(b'a%d="x" ' % i for i in range(64_000)) + b">t</title>", _DTD),
    "fp-many-categories": _rss(b"<title>t</title>" + b"".join(b"<category>c%d</category>" % i for i in range(40_000)),
                               _DTD),
    "fp-long-author": _rss(b"<title>t</title><author>" + b"a" * 64_000 + b"</author>", _DTD),
    "fp-long-xml-base": b'<?xml version="1.0"?><!DOCTYPE feed><feed xmlns="http://www.w3.org/2005/Atom" '
                        b'xml:base="http://e.example/' + b"a" * 300_000 + b'/"><title>t</title><id>f</id>'
                        + _atom_entries(5_000) + b"</feed>",
}
PATHOLOGICAL_ENTRIES = {"long-xml-base": 5_000, "nested-xml-base": 2_000, "fp-long-xml-base": 5_000}  # others: 1


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_input_is_parsed_in_time(name: str) -> None:
    code = ("import sys; from bot.ingest import parse_and_tag; "
            "print(len(parse_and_tag(sys.stdin.buffer.read(), 'https://x.example/f.xml', None, 's', ())))")
    started = time.monotonic()
    try:
        result = subprocess.run([sys.executable, "-c", code], input=PATHOLOGICAL[name], capture_output=True,
                                cwd=ROOT, timeout=PATHOLOGICAL_LIMIT, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{name}: {len(PATHOLOGICAL[name])} bytes still parsing after {PATHOLOGICAL_LIMIT}s")
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    assert result.stdout.strip() == str(PATHOLOGICAL_ENTRIES.get(name, 1)).encode()
    assert time.monotonic() - started < PATHOLOGICAL_LIMIT


def test_zz_every_seed_and_generator_was_fuzzed() -> None:
    """Runs last (file order): each seed and generator got its examples (when its tests ran at all)."""
    if not ran:
        pytest.skip("the fuzzing tests were deselected")
    expected = [*SEEDS, *(f"generated:{k}" for k in GENERATORS)]
    missing = [name for name in expected if ran[name] == 0]
    assert not missing, f"never fuzzed: {missing}"
    short = {name: ran[name] for name in SEEDS if ran[name] < EXAMPLES_PER_SEED // 2}
    assert not short, f"seeds that ran fewer than half their {EXAMPLES_PER_SEED} examples: {short}"
    total = sum(ran.values())
    assert total >= EXAMPLES_PER_SEED * len(SEEDS), total
    assert outcomes["entries"] > 0 and outcomes["ParseError"] > 0, outcomes
