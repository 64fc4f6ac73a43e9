"""Bounds on feedparser's quadratic corners, for the lenient path (ill-formed XML, or XML with a DTD).

feedparser 6.0 takes quadratic time on some shapes a hostile feed can send; measured at 512 kB:

- one element with thousands of attributes: feedparser reads each through the standard library's
  ``AttributesNSImpl.getValueByQName``, a linear scan of all of them (35 s);
- thousands of categories on one entry: each is looked up in a list of those before it (16 s);
- an author of thousands of address-like characters: an unanchored e-mail regex retries at every
  position (32 kB: 9 to 13 s), and a regex holds the interpreter: in thread mode the bot stalls;
- a long ``xml:base``: every start tag and every link is joined with it again (63 s);
- a one-line document, or a UTF-16 one, whose text says ``encoding="``: the declaration pattern
  scans past the declaration (32 kB: 15 s), on the fast path's charset sniffing too.

``install`` wraps those places once, per process. What a real feed gives is unchanged: the bounds are
far above what any feed sends and what digestbot keeps (50 categories, 200 characters of author); an
``xml:base`` over ``MAX_BASE_CHARS`` is ignored, as the fast path ignores it.
"""

from __future__ import annotations

import re
import threading
import xml.sax.xmlreader
from typing import Any

import feedparser.encodings
import feedparser.mixin

MAX_BASE_CHARS = 2048
"""An xml:base (given, or resolved against its ancestors') longer than this is ignored: each link is
joined to it, so a megabyte-long one above thousands of entries costs their product."""
MAX_TAGS = 200
"""Categories feedparser collects per entry at most."""
MAX_AUTHOR_CHARS = 256
"""Characters of an author string feedparser searches for an e-mail address (its regex is quadratic
on what it is given: 1,024 characters cost 4 ms an author, 10 MB of them 100 s)."""
# feedparser's pattern for the encoding in an XML declaration, bounded: its own
# ``^<\?.*encoding=['"](.*?)['"].*\?>`` runs over the whole first line, and over a whole UTF-16
# body once decoded (quadratic or worse: 32 kB took 15 s). This one cannot leave the declaration.
_XML_PI_ENCODING = re.compile(rb"""^<\?[^\n>]{0,1024}?encoding=['"]([^'"\n>]{0,128})['"][^\n>]{0,1024}?\?>""")

_installed = False
_lock = threading.Lock()


def install() -> None:
    """Wrap feedparser's (and the SAX attribute lookup's) quadratic corners; idempotent."""
    global _installed
    if _installed:  # every parse calls this: no lock once done
        return
    with _lock:
        if _installed:
            return
        mixin = feedparser.mixin._FeedParserMixin
        mixin._add_tag = _bounded_add_tag(mixin._add_tag)
        mixin._sync_author_detail = _bounded_sync_author_detail(mixin._sync_author_detail)
        feedparser.mixin.make_safe_absolute_uri = _safe_join_ignoring_long_bases(
            feedparser.mixin.make_safe_absolute_uri)
        feedparser.mixin._urljoin = _join_ignoring_long_bases(feedparser.mixin._urljoin)
        xml.sax.xmlreader.AttributesNSImpl.getValueByQName = _value_by_qname  # type: ignore[method-assign]
        feedparser.encodings.RE_XML_PI_ENCODING = _XML_PI_ENCODING
        _installed = True


def _bounded_add_tag(add_tag: Any) -> Any:
    def wrapper(self: Any, term: Any, scheme: Any, label: Any) -> None:
        tags = self._get_context().get("tags")
        if tags is None or len(tags) < MAX_TAGS:
            add_tag(self, term, scheme, label)

    return wrapper


def _bounded_sync_author_detail(sync: Any) -> Any:
    def wrapper(self: Any, key: str = "author") -> None:
        context = self._get_context()
        value = context.get(key)
        if isinstance(value, str) and len(value) > MAX_AUTHOR_CHARS:
            context[key] = value[:MAX_AUTHOR_CHARS]
        sync(self, key)

    return wrapper


def _safe_join_ignoring_long_bases(make_safe_absolute_uri: Any) -> Any:
    """feedparser sets ``self.baseuri = make_safe_absolute_uri(self.baseuri, xml_base) or self.baseuri``
    at every start tag: a long base (or xml:base, or result) is ignored, and the base it had stays."""
    def wrapper(base: Any, rel: Any = None) -> Any:
        if rel == base:  # a start tag without xml:base: the base stays (joining it to itself costs its length)
            return base
        if isinstance(base, str) and len(base) > MAX_BASE_CHARS:
            base = ""
        if isinstance(rel, str) and len(rel) > MAX_BASE_CHARS:
            return base
        joined = make_safe_absolute_uri(base, rel)
        return base if isinstance(joined, str) and len(joined) > MAX_BASE_CHARS else joined

    return wrapper


def _join_ignoring_long_bases(urljoin: Any) -> Any:
    """Links are joined to ``self.baseuri``: a long one is treated as absent (the link is kept whole)."""
    def wrapper(base: Any, uri: Any) -> Any:
        return urljoin("" if isinstance(base, str) and len(base) > MAX_BASE_CHARS else base, uri)

    return wrapper


def _value_by_qname(self: Any, name: str) -> Any:
    """``AttributesNSImpl.getValueByQName`` through a dict built once per element (the original scans
    every attribute per call, and feedparser calls it for every attribute). XML forbids two
    attributes with one qualified name, so the first match the scan would find is the only one."""
    index = self.__dict__.get("_digestbot_by_qname")
    if index is None:
        index = self._digestbot_by_qname = {qname: key for key, qname in reversed(self._qnames.items())}
    return self._attrs[index[name]]
