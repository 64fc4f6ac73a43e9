"""Feed bytes -> ParsedFeed: RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and JSON Feed.

Two XML paths give the same result on the fields that matter (guid, link, title, dates):

* a fast path that reads a strict, well-formed, DTD-free document with lxml and extracts the entries
  itself, mimicking feedparser's rules (feedparser's own encoding detection and date parser are reused);
* feedparser for everything else (broken XML, DOCTYPEs, CDF, unusual roots), which is ~30x slower but
  forgiving.

Security: the fast path refuses any document with a DOCTYPE or ENTITY declaration and parses with
``resolve_entities=False, no_network=True, load_dtd=False``; feedparser strips the DOCTYPE (keeping only
single-character entities) and expat never fetches external entities.
"""

from __future__ import annotations

import calendar
import html
import re
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import feedparser
from feedparser.datetimes import _parse_date as _fp_parse_date
from feedparser.encodings import convert_to_utf8
from feedparser.urls import _urljoin, make_safe_absolute_uri
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from bot.errors import ParseError
from bot.feedparser_limits import MAX_BASE_CHARS
from bot.feedparser_limits import install as bound_feedparser
from bot.jsonfeed import looks_like_json, parse_json_feed
from bot.models import ParsedEntry, ParsedFeed

ATOM10 = "http://www.w3.org/2005/Atom"
ATOM03 = "http://purl.org/atom/ns#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RSS10 = "http://purl.org/rss/1.0/"
RSS090 = "http://my.netscape.com/rdf/simple/0.9/"
DC = "http://purl.org/dc/elements/1.1/"
DCTERMS = "http://purl.org/dc/terms/"
CONTENT = "http://purl.org/rss/1.0/modules/content/"
MEDIA = ("http://search.yahoo.com/mrss/", "http://search.yahoo.com/mrss")
XHTML = "http://www.w3.org/1999/xhtml"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"

# A comment may not run past its first "-->", and the prefix is matched possessively (*+): the old
# ``<!--.*?-->`` under ``*`` backtracked over every way to split N comments (2**N steps; a feed starting
# with 60 comments hung the parse thread, holding the GIL).
_HTML_START = re.compile(rb"\A(?:\s|<\?xml[^>]*>|<!--(?:(?!-->).)*-->|<!doctype[^>]*>)*+<html[\s>/]", re.I | re.S)
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.I)
# A declaration's leading whitespace is matched from the start of its run only, and possessively: the old
# ``\s+xmlns`` re-scanned a whitespace run from every position in it (quadratic: 128 kB took 23 s).
_XMLNS_ATTR = re.compile(r'(?<!\s)\s++xmlns(?::\w+)?="[^"]*"')
# feedparser maps C1 controls to their windows-1252 characters (ISO-8859-1 feeds that are really cp1252).
_CP1252 = {c: bytes([c]).decode("cp1252", "replace") for c in range(0x80, 0xA0)}
_C1 = re.compile("[\x80-\x9f]")
_HTML_TYPES = ("text/html", "application/xhtml+xml", "html", "xhtml")
_MAX_CATEGORIES = 50


class _Local(threading.local):
    def __init__(self) -> None:
        # lxml parser objects are not thread-safe; poll runs parse_feed in worker threads.
        self.parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                                      recover=False, remove_comments=True, remove_pis=True, collect_ids=False)
        self.has_c1 = True  # does the document being read contain U+0080..U+009F at all? (set per parse)
        self.bases: dict[Any, str] = {}  # element -> its xml:base, for the document being read


_LOCAL = _Local()


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse feed bytes; raise ParseError for an empty body, an HTML page or unreadable bytes."""
    if not body or not body.strip():
        raise ParseError(url, "empty body")
    bound_feedparser()  # its charset sniffing runs on the fast path too
    if looks_like_json(body, content_type):
        return parse_json_feed(body, url)
    if _HTML_START.match(body[:4096]):
        raise ParseError(url, "looks like an HTML page, not a feed")
    body = _bounded_prolog(_strip_before_declaration(body), url)
    fast = parse_fast(body, content_type)
    if fast is not None:
        return fast
    if _cut_off(body):
        return _without_partial_tail(parse_with_feedparser(_trim_cut_utf8(body), url, content_type))
    return parse_with_feedparser(body, url, content_type)


_ROOT_OPEN = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:rss|feed|RDF)[\s>]")
_ROOT_CLOSE = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:rss|feed|RDF)\b")


def _cut_off(body: bytes) -> bool:
    """An 8-bit XML feed that opens <rss>/<feed>/<rdf:RDF> and never closes it was cut off (a dropped
    connection behind a proxy, a full disk on the server). Such a body still parses leniently, but its
    last entry is partial and a multi-byte character cut in half flips the charset sniffing to
    windows-1252 for the whole document."""
    return (body.lstrip()[:1] == b"<" and _ROOT_OPEN.search(body[:4096]) is not None
            and _ROOT_CLOSE.search(body[-8192:]) is None)


def _trim_cut_utf8(body: bytes) -> bytes:
    """Drop an incomplete UTF-8 sequence at the very end (and only there): the rest then decodes as
    the UTF-8 it is instead of as windows-1252 mojibake."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end == len(body) and exc.start >= len(body) - 3:
            return body[:exc.start]
    return body


def _without_partial_tail(feed: ParsedFeed) -> ParsedFeed:
    """The last entry of a cut-off document may be partial (no link, half a title); it comes back
    whole on a later poll."""
    if not feed.entries:
        return feed
    note = "cut off before the end of the document; the last entry was dropped"
    return ParsedFeed(title=feed.title, link=feed.link, entries=feed.entries[:-1], format=feed.format,
                      warning=f"{feed.warning}; {note}" if feed.warning else note)


def _strip_before_declaration(body: bytes) -> bytes:
    """Drop whitespace before ``<?xml`` (a common server-side template bug that makes the XML ill-formed)."""
    if body[:1].isspace():
        stripped = body.lstrip()
        if stripped.startswith(b"<?xml"):
            return stripped
    return body


MAX_DECLARATION = 1024
MAX_PROLOG = 32 * 1024
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_]")
_WHITESPACE_RUN = re.compile(rb"\s{2,}")


def _bounded_prolog(body: bytes, url: str) -> bytes:
    """What comes before the root element, made safe for feedparser's DOCTYPE patterns, which try
    ``^\\s*`` at every line start, and scan to the end from each ``<!ENTITY`` line without ``>``
    (quadratic: 60,000 blank lines took 7.7 s): whitespace runs in the prolog become one newline, and
    a prolog over ``MAX_PROLOG`` bytes is refused (a DTD declaring every HTML entity is about 12 kB;
    32 kB of unclosed ENTITY lines cost up to 1.5 s). Whitespace there is insignificant to XML (bar
    inside quoted entity values), and never shown. A declaration not closed within
    ``MAX_DECLARATION`` bytes is refused too: no real one is longer than a line."""
    start = 3 if body.startswith(b"\xef\xbb\xbf") else 0  # after a UTF-8 byte-order mark, as feedparser reads it
    if body.startswith(b"<?", start) and body.find(b"?>", start, start + MAX_DECLARATION) < 0:
        raise ParseError(url, f"an XML declaration not closed within its first {MAX_DECLARATION} bytes")
    first = _FIRST_ELEMENT.search(body)
    if first is None or first.start() < 256:
        return body
    if first.start() > MAX_PROLOG:
        raise ParseError(url, f"more than {MAX_PROLOG // 1024} kB before the first element")
    return _WHITESPACE_RUN.sub(b"\n", body[:first.start()]) + body[first.start():]


# ---------------------------------------------------------------------------------------------- fast path


def parse_fast(body: bytes, content_type: str | None = None) -> ParsedFeed | None:
    """The lxml path, or None when the document is not safe or plain enough for it."""
    root = _strict_root(body, content_type)
    if root is None:
        return None
    has_base = _has_base(root)
    try:
        return _read_root(root, has_base)
    finally:
        _LOCAL.bases = {}


def _read_root(root: Any, has_base: bool) -> ParsedFeed | None:
    tag = root.tag
    if tag == "rss":
        channel = root.find("channel")
        if channel is None:
            return None
        return _rss_feed(root, channel, _RSS_VERSIONS.get((root.get("version") or "").strip(), "rss"), has_base)
    if tag == f"{{{RDF}}}RDF":
        for ns in (RSS10, RSS090):
            channel = root.find(f"{{{ns}}}channel")
            if channel is not None:
                return _rss_feed(root, channel, "rss10" if ns == RSS10 else "rss090", has_base, ns)
        return None
    if tag in (f"{{{ATOM10}}}feed", f"{{{ATOM03}}}feed"):
        ns = ATOM10 if tag.startswith(f"{{{ATOM10}") else ATOM03
        return _atom_feed(root, ns, has_base)
    return None


# feedparser's names for the RSS versions (ParsedFeed.format).
_RSS_VERSIONS = {"2.0": "rss20", "0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}


def _strict_root(body: bytes, content_type: str | None) -> Any:
    """The document's root element if it is strict, DTD-free XML (after feedparser's charset rules), else None."""
    plain = _plain_utf8(body, content_type)
    data = body if plain else _to_utf8(body, content_type)
    if data is None or _DTD.search(data):
        return None
    try:
        return _parse_xml(data)
    except etree.XMLSyntaxError as exc:
        if not plain or "UTF-8" not in str(exc):
            return None
    data = _to_utf8(body, content_type)  # declared UTF-8 but is not: let feedparser's fallbacks pick a charset
    if data is None:
        return None
    try:
        return _parse_xml(data)
    except etree.XMLSyntaxError:
        return None


def _parse_xml(data: bytes) -> Any:
    # C1 controls in UTF-8 are C2 80..C2 9F; without any, the per-text cp1252 fix-up can be skipped.
    _LOCAL.has_c1 = _C1_UTF8.search(data) is not None
    return etree.fromstring(data, _LOCAL.parser)


_C1_UTF8 = re.compile(b"\xc2[\x80-\x9f]")


_DECLARATION = re.compile(rb"<\?xml[^>]*?encoding\s*=\s*[\"']([^\"']*)[\"']")
_CHARSET = re.compile(r"charset\s*=\s*[\"']?([^\"';\s]+)", re.I)


def _plain_utf8(body: bytes, content_type: str | None) -> bool:
    """True when feedparser's charset rules would read ``body`` as UTF-8 as it is (the common case)."""
    if not body.startswith(b"<?xml"):
        return False
    declaration = body[: body.find(b"?>") + 2]
    m = _DECLARATION.match(declaration)
    if m and m.group(1).lower() not in (b"utf-8", b"utf8"):
        return False
    charset = _CHARSET.search(content_type) if content_type else None
    return charset is None or charset.group(1).lower() in ("utf-8", "utf8")


def _to_utf8(body: bytes, content_type: str | None) -> bytes | None:
    """feedparser's own charset rules (HTTP header, XML declaration, BOM, fallbacks) -> UTF-8 bytes."""
    result: dict[str, Any] = {}
    headers = {"content-type": content_type} if content_type else {}
    try:
        data = convert_to_utf8(headers, body, result)
    except Exception:  # defensive: charset sniffing must never crash a poll
        return None
    if not result.get("encoding") or not isinstance(data, bytes):
        return None
    return data


def _has_base(root: Any) -> bool:
    return bool(root.xpath("boolean(//@xml:base)"))


def _text(el: Any) -> str:
    """An element's content: its text, or its inner markup when it has child elements."""
    if len(el) == 0:
        return _cp1252(str(el.text or "")).strip()
    parts = [html.escape(el.text or "", quote=False)]
    for child in el:
        if isinstance(child.tag, str):
            parts.append(_without_inherited_xmlns(etree.tostring(child, encoding="unicode", with_tail=True)))
        elif child.tail:
            parts.append(html.escape(child.tail, quote=False))
    return _cp1252("".join(parts)).strip()


def _without_inherited_xmlns(markup: str) -> str:
    """A child element serialised alone carries the namespace declarations it inherits on its start tag
    (``<b xmlns="http://www.w3.org/1999/xhtml">``): drop them there. The text after that tag is kept as
    written, even where it reads ``xmlns="..."`` (lxml escapes ``>`` in attribute values, so the first
    ``>`` ends the tag)."""
    end = markup.find(">") + 1
    return _XMLNS_ATTR.sub("", markup[:end]) + markup[end:]


def _cp1252(text: str) -> str:
    return text.translate(_CP1252) if _LOCAL.has_c1 and _C1.search(text) else text


def _xhtml_inner(el: Any) -> str:
    """Inline XHTML content: the markup inside the wrapping <div> (or the element itself)."""
    div = el[0] if len(el) == 1 and el[0].tag == f"{{{XHTML}}}div" and not (el.text or "").strip() else el
    return _text(div)


def _base(el: Any) -> str:
    """The xml:base in effect for ``el``, resolved the way feedparser does: from its parent's, which is
    remembered for the document being read, so each xml:base is joined once (every link used to
    rejoin its whole chain of ancestors; 200 nested bases cost 8 ms per entry)."""
    bases = _LOCAL.bases
    known = bases.get(el)
    if known is not None:
        return known
    parent = el.getparent()
    base = _base(parent) if parent is not None else ""
    value = el.get(XML_BASE)
    if value and len(value) <= MAX_BASE_CHARS:
        joined = str((make_safe_absolute_uri(base, value) or base) if base else _urljoin(base, value))
        if len(joined) <= MAX_BASE_CHARS:
            base = joined
    bases[el] = base
    return base


def _resolve(el: Any, uri: str, has_base: bool) -> str:
    if not has_base and ":///" not in uri:
        return uri  # what _urljoin("", uri) returns, without its cost
    return str(_urljoin(_base(el) if has_base else "", uri))


_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
_RFC822 = re.compile(
    r"(?:[A-Z][a-z]{2},\s*)?(\d{1,2}) ([A-Z][a-z]{2}) (\d{4}) (\d\d):(\d\d):(\d\d) (GMT|UTC|UT|Z|[+-]\d{4})")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                       "Dec"), start=1)}


def _common_date(value: str) -> datetime | None:
    """The two everyday shapes (W3C-DTF with offset, RFC 822 with numeric/GMT zone) without feedparser's
    handler chain. Same result as feedparser: UTC, seconds precision."""
    if _ISO.fullmatch(value):
        try:
            return datetime.fromisoformat(value).astimezone(UTC).replace(microsecond=0)
        except ValueError:
            return None
    m = _RFC822.fullmatch(value)
    if m is None or m.group(2) not in _MONTHS:
        return None
    day, _, year, hour, minute, second, zone = m.groups()
    offset = 0 if zone[0] not in "+-" else (int(zone[1:3]) * 60 + int(zone[3:5])) * (1 if zone[0] == "+" else -1)
    try:
        naive_utc = datetime(int(year), _MONTHS[m.group(2)], int(day), int(hour), int(minute), int(second),
                             tzinfo=UTC)
        return naive_utc - timedelta(minutes=offset)
    except (ValueError, OverflowError):
        return None


def _date(value: str | None) -> datetime | None:
    """feedparser's date parser (many formats, result in UTC), plus a lenient RFC 822 retry."""
    if not value:
        return None
    common = _common_date(value)
    if common is not None:
        return common
    parsed = _fp_parse_date(value)
    if parsed is None:
        return _lenient_date(value)
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


_DAY_PREFIX = re.compile(r"^\s*[^\W\d_]{2,10}\.?,\s*")
_DAY_MONTH = re.compile(r"^(\d{1,2})\s+([^\W\d_]{3,9})\.?(?=\s+\d{2,4}\b)")
# Month names/abbreviations of feeds that localise RFC 822 dates (it, es, pt, fr, de, nl), first 3-4 letters.
_LOCAL_MONTHS = {
    "gen": "Jan", "ene": "Jan", "janv": "Jan", "jän": "Jan", "fev": "Feb", "fév": "Feb", "févr": "Feb",
    "mär": "Mar", "mrt": "Mar", "mars": "Mar", "abr": "Apr", "avr": "Apr", "mag": "May", "mai": "May",
    "mei": "May", "maio": "May", "mayo": "May", "giu": "Jun", "juin": "Jun", "lug": "Jul", "juil": "Jul",
    "ago": "Aug", "aoû": "Aug", "aou": "Aug", "set": "Sep", "sept": "Sep", "ott": "Oct", "out": "Oct",
    "okt": "Oct", "dic": "Dec", "dez": "Dec", "déc": "Dec",
}


def _lenient_date(value: str) -> datetime | None:
    """RFC 822 dates with localised day/month names ("mer, 16 nov 2022", "Seg, 24 Set 2018"), which feedparser
    rejects."""
    stripped = _DAY_PREFIX.sub("", value)
    m = _DAY_MONTH.match(stripped)
    if m:
        name = m.group(2).lower()
        month = _LOCAL_MONTHS.get(name[:4]) or _LOCAL_MONTHS.get(name[:3])
        if month:
            stripped = f"{m.group(1)} {month}{stripped[m.end():]}"
    if stripped == value:
        return None
    parsed = _fp_parse_date(stripped)
    if parsed is None:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


class _Draft:
    """Mutable accumulator for one entry while its children are read."""

    __slots__ = ("author", "categories", "content", "guid", "guid_is_link", "link", "published", "summary",
                 "thumb_rank", "thumbnail", "title", "updated")

    def __init__(self) -> None:
        self.guid: str | None = None
        self.guid_is_link = False
        self.link: str | None = None
        self.title: str | None = None
        self.summary: str | None = None
        self.content: str | None = None
        self.published: str | None = None
        self.updated: str | None = None
        self.author: str | None = None
        self.categories: list[str] = []
        self.thumbnail: str | None = None
        self.thumb_rank = 0

    def offer_thumbnail(self, url: str | None, rank: int) -> None:
        """Keep the best image: media:thumbnail (3) > media:content image (2) > image enclosure (1)."""
        url = (url or "").strip()
        if url and rank > self.thumb_rank:
            self.thumbnail, self.thumb_rank = url, rank

    def finish(self) -> ParsedEntry:
        link = self.link
        if link is None and self.guid_is_link:
            link = self.guid
        return ParsedEntry(
            guid=self.guid or None, link=link or None, title=self.title or None,
            summary_html=self.content or self.summary or None,
            published=_date(self.published), updated=_date(self.updated), author=self.author or None,
            categories=tuple(dict.fromkeys(c for c in self.categories if c))[:_MAX_CATEGORIES],
            thumbnail=self.thumbnail)


def _media(d: _Draft, el: Any, local: str) -> None:
    """media:thumbnail beats media:content with an image; media:group is searched too."""
    if local == "group":
        for child in el:
            if isinstance(child.tag, str) and child.tag.startswith("{http://search.yahoo.com/mrss"):
                _media(d, child, child.tag.rsplit("}", 1)[1])
        return
    if local == "thumbnail":
        d.offer_thumbnail(el.get("url"), 3)
    elif local == "content" and _is_image(el.get("medium"), el.get("type")):
        d.offer_thumbnail(el.get("url"), 2)


def _is_image(medium: str | None, mime: str | None) -> bool:
    return (medium or "").strip().lower() == "image" or (mime or "").strip().lower().startswith("image/")


def _link_text(value: str) -> str:
    """feedparser's fix-up of RSS <link> text (undoes double escaping of query strings)."""
    if "&" not in value:
        return value
    return _ENTITY_LIKE.sub(r"&\g<1>", value.replace("&amp;", "&"))


_ENTITY_LIKE = re.compile(r"&([A-Za-z0-9_]+);")


# The address's two halves cannot overlap (one "@", no "(" after it): the old ``\S+@\S+`` tried every
# split of a run of "@"s (a 32 kB author took 7 s).
_RSS_AUTHOR = re.compile(r"\s*[^\s@]+@[^\s(]+\s*\((.+)\)\s*")


def _rss_author(value: str) -> str:
    """'joe@example.com (Joe Bloggs)' -> 'Joe Bloggs'."""
    m = _RSS_AUTHOR.fullmatch(value) if "@" in value else None
    return m.group(1).strip() if m else value


def _rss_feed(root: Any, channel: Any, fmt: str, has_base: bool, ns: str = "") -> ParsedFeed:
    item_tag = f"{{{ns}}}item" if ns else "item"
    entries = tuple(_rss_entry(item, has_base) for item in root.iter(item_tag))
    title = channel.find(f"{{{ns}}}title" if ns else "title")
    link = channel.find(f"{{{ns}}}link" if ns else "link")
    return ParsedFeed(title=_text(title) or None if title is not None else None,
                      link=_text(link) or None if link is not None else None, entries=entries, format=fmt)


def _rss_entry(item: Any, has_base: bool) -> ParsedEntry:
    d = _Draft()
    about = item.get(f"{{{RDF}}}about")
    if about:
        d.guid = about
    for el in item:
        tag = el.tag
        if not isinstance(tag, str):
            continue
        ns, _, local = tag[1:].rpartition("}") if tag[0] == "{" else ("", "", tag)
        if ns in ("", RSS10, RSS090):
            _rss_plain(d, el, local, has_base)
        elif ns == DC:
            _dublin_core(d, el, local)
        elif ns == DCTERMS:
            if local == "issued":
                d.published = _text(el)
            elif local == "modified":
                d.updated = _text(el)
        elif ns == CONTENT and local == "encoded":
            if d.content is None:
                d.content = _text(el)
        elif ns in MEDIA:
            _media(d, el, local)
        elif ns == ATOM10:
            _atom_child_in_rss(d, el, local, has_base)
    return d.finish()


def _rss_plain(d: _Draft, el: Any, local: str, has_base: bool) -> None:
    if local == "title":
        d.title = _text(el)
    elif local == "link":
        d.link = _resolve(el, _link_text(_text(el)), has_base)
    elif local == "guid":
        d.guid_is_link = (el.get("isPermaLink") or el.get("ispermalink") or "true").strip() == "true"
        value = _text(el)
        d.guid = _resolve(el, value, has_base) if d.guid_is_link and value else value
    elif local == "description":
        d.summary = _text(el)
    elif local == "pubDate":
        d.published = _text(el)
    elif local == "author":
        d.author = _rss_author(_text(el))
    elif local == "category":
        d.categories.append(_text(el))
    elif local == "enclosure" and _is_image(None, el.get("type")):
        d.offer_thumbnail(el.get("url"), 1)


def _dublin_core(d: _Draft, el: Any, local: str) -> None:
    if local == "title":
        d.title = _text(el)
    elif local == "date":
        d.updated = _text(el)
    elif local == "creator":
        d.author = d.author or _text(el)
    elif local == "subject":
        d.categories.append(_text(el))
    elif local == "description" and d.summary is None:
        d.summary = _text(el)


def _atom_child_in_rss(d: _Draft, el: Any, local: str, has_base: bool) -> None:
    """feedparser reads Atom 1.0 elements inside RSS items as if they were the RSS ones."""
    if local == "link":
        _atom_link(d, el, has_base)
    elif local == "published":
        d.published = _text(el)
    elif local == "updated":
        d.updated = _text(el)


def _atom_link(d: _Draft, el: Any, has_base: bool) -> None:
    href = el.get("href") or el.get("url") or el.get("uri")
    if href is None:
        d.link = _resolve(el, _link_text(_text(el)), has_base)
        return
    rel = el.get("rel", "alternate")
    mime = el.get("type", "text/html").strip().lower()
    if rel == "alternate" and mime in ("text/html", "application/xhtml+xml", "html", "xhtml"):
        d.link = _resolve(el, href, has_base)
    elif rel == "enclosure" and mime.startswith("image/"):
        d.offer_thumbnail(_resolve(el, href.strip(), has_base), 1)


def _atom_feed(root: Any, ns: str, has_base: bool) -> ParsedFeed:
    entries = tuple(_atom_entry(entry, ns, has_base) for entry in root.iter(f"{{{ns}}}entry"))
    title_el = root.find(f"{{{ns}}}title")
    link = None
    for el in root.findall(f"{{{ns}}}link"):
        if el.get("rel", "alternate") == "alternate" and el.get("href"):
            link = _resolve(el, el.get("href"), has_base)
            break
    title = _atom_text(title_el) if title_el is not None else None
    return ParsedFeed(title=title or None, link=link, entries=entries,
                      format="atom10" if ns == ATOM10 else "atom03")


def _atom_text(el: Any) -> str:
    """An Atom text construct as HTML-or-text (type="xhtml" and Atom 0.3 mode="xml" are serialised)."""
    kind = (el.get("type") or "text").strip().lower()
    if kind in ("xhtml", "application/xhtml+xml") or el.get("mode") == "xml":
        return _xhtml_inner(el)
    if el.get("mode") == "base64":
        return ""
    return _text(el)


def _atom_body(el: Any) -> str | None:
    """An Atom summary/content as HTML; plain text is escaped so it stays text."""
    if el.get("src"):
        return None
    kind = (el.get("type") or "text").strip().lower()
    value = _atom_text(el)
    if kind in ("text", "text/plain") and el.get("mode") != "xml":
        return html.escape(value, quote=False)
    if kind in (*_HTML_TYPES, "text", "text/plain") or el.get("mode") in ("escaped", "xml"):
        return value
    return None if kind.startswith(("image/", "audio/", "video/", "application/octet")) else value


def _atom_entry(entry: Any, ns: str, has_base: bool) -> ParsedEntry:
    d = _Draft()
    handlers: dict[str, Callable[[_Draft, Any], None]] = _ATOM_HANDLERS
    for el in entry:
        tag = el.tag
        if not isinstance(tag, str):
            continue
        uri, _, local = tag[1:].rpartition("}") if tag[0] == "{" else ("", "", tag)
        if uri == ns:
            if local == "link":
                _atom_link(d, el, has_base)
            elif local == "id":
                value = _text(el)
                d.guid = _resolve(el, value, has_base) if value else value
                d.guid_is_link = True
            else:
                handler = handlers.get(local)
                if handler is not None:
                    handler(d, el)
        elif uri == DC:
            _dublin_core(d, el, local)
        elif uri in MEDIA:
            _media(d, el, local)
    return d.finish()


def _set_title(d: _Draft, el: Any) -> None:
    d.title = _atom_text(el)


def _set_summary(d: _Draft, el: Any) -> None:
    d.summary = _atom_body(el)


def _set_content(d: _Draft, el: Any) -> None:
    if d.content is None:
        d.content = _atom_body(el)


def _set_published(d: _Draft, el: Any) -> None:
    d.published = _text(el)


def _set_updated(d: _Draft, el: Any) -> None:
    d.updated = _text(el)


def _set_author(d: _Draft, el: Any) -> None:
    if d.author is None:
        for child in el:
            if isinstance(child.tag, str) and child.tag.endswith("}name"):
                d.author = _text(child) or None
                return


def _set_category(d: _Draft, el: Any) -> None:
    d.categories.append((el.get("term") or el.get("label") or "").strip())


_ATOM_HANDLERS: dict[str, Callable[[_Draft, Any], None]] = {
    "title": _set_title, "summary": _set_summary, "content": _set_content, "published": _set_published,
    "issued": _set_published, "updated": _set_updated, "modified": _set_updated, "author": _set_author,
    "category": _set_category,
}


# ---------------------------------------------------------------------------------------------- feedparser


def parse_with_feedparser(body: bytes, url: str, content_type: str | None = None) -> ParsedFeed:
    """The forgiving path. Sanitising is skipped: summaries are reduced to plain text later anyway."""
    headers = {"content-type": content_type} if content_type else None
    bound_feedparser()
    try:
        result = feedparser.parse(body, response_headers=headers, sanitize_html=False,
                                  resolve_relative_uris=False)
    except Exception as exc:  # feedparser promises not to raise; wrap anything it does raise
        raise ParseError(url, f"unreadable feed ({type(exc).__name__}: {exc})") from exc
    entries = result.get("entries") or []
    version = str(result.get("version") or "")
    feed = result.get("feed") or {}
    if not version and not entries and not feed:
        if b"<html" in body[:2048].lower():
            raise ParseError(url, "looks like an HTML page, not a feed")
        problem = result.get("bozo_exception")
        detail = f" ({problem})" if problem else ""
        raise ParseError(url, f"not a feed that RSS/Atom/JSON Feed parsers can read{detail}")
    warning = None
    if result.get("bozo"):
        warning = f"not well-formed, parsed leniently: {result.get('bozo_exception')}"
    return ParsedFeed(title=_str(feed.get("title")), link=_str(feed.get("link")),
                      entries=tuple(_fp_entry(e) for e in entries), format=version or "unknown", warning=warning)


def _str(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _fp_time(entry: dict[str, Any], key: str) -> datetime | None:
    parsed = dict.get(entry, f"{key}_parsed")
    if parsed is None:
        raw = dict.get(entry, key)
        return _lenient_date(raw) if isinstance(raw, str) else None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError, TypeError):
        return None


def _fp_entry(e: dict[str, Any]) -> ParsedEntry:
    content = dict.get(e, "content")
    body = None
    if isinstance(content, list) and content and isinstance(content[0], dict):
        body = _str(content[0].get("value"))
    summary = _str(dict.get(e, "summary"))
    return ParsedEntry(
        guid=_str(dict.get(e, "id")), link=_str(dict.get(e, "link")), title=_str(dict.get(e, "title")),
        summary_html=body or summary, published=_fp_time(e, "published"), updated=_fp_time(e, "updated"),
        author=_fp_author(e), categories=_fp_categories(e), thumbnail=_fp_thumbnail(e))


def _fp_author(e: dict[str, Any]) -> str | None:
    detail = dict.get(e, "author_detail")
    if isinstance(detail, dict) and _str(detail.get("name")):
        return _str(detail.get("name"))
    return _str(dict.get(e, "author"))


def _fp_categories(e: dict[str, Any]) -> tuple[str, ...]:
    tags = dict.get(e, "tags")
    if not isinstance(tags, list):
        return ()
    names = (_str(t.get("term")) or _str(t.get("label")) for t in tags if isinstance(t, dict))
    return tuple(dict.fromkeys(n for n in names if n))[:_MAX_CATEGORIES]


def _fp_thumbnail(e: dict[str, Any]) -> str | None:
    candidates: Iterable[Any] = dict.get(e, "media_thumbnail") or []
    for thumb in candidates:
        if isinstance(thumb, dict) and _str(thumb.get("url")):
            return _str(thumb.get("url"))
    for media in dict.get(e, "media_content") or []:
        if isinstance(media, dict) and _str(media.get("url")) and _is_image(media.get("medium"), media.get("type")):
            return _str(media.get("url"))
    for link in dict.get(e, "links") or []:
        if (isinstance(link, dict) and link.get("rel") == "enclosure" and _str(link.get("href"))
                and str(link.get("type") or "").lower().startswith("image/")):
            return _str(link.get("href"))
    return None
