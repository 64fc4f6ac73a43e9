"""OPML import (via listparser) and export (via ElementTree). Bytes in, bytes out: no file or network I/O.

Safety: listparser reads the document with lxml's *HTML* parser (``recover=True``), which neither
loads external entities nor expands entities declared in a DOCTYPE: ``&xxe;`` stays the literal text
"&xxe;" and a billion-laughs document stays small (tests/test_opml.py checks both). The second read
below, for ``htmlUrl`` (which listparser does not report), uses the same kind of parser with the
network disabled. Only bytes are ever handed to listparser: given a str that starts with "http" it
would fetch it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # building only; parsing is listparser's job
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import listparser
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from bot.format import http_url

MAX_OPML_BYTES = 5 * 1024 * 1024


@dataclass(frozen=True)
class OpmlFeed:
    """One feed from an OPML file. ``categories`` are folder paths and category attributes, "a/b" for nesting."""

    url: str
    title: str | None
    html_url: str | None
    categories: tuple[str, ...]


def parse_opml(data: bytes, *, where: str) -> list[OpmlFeed]:
    """The http(s) feeds of an OPML document, first occurrence of each URL kept, in document order.

    Raises ValueError naming ``where`` when the input is too large, is not OPML, or holds no usable feed.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{where}: OPML must be given as bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_OPML_BYTES:
        raise ValueError(f"{where}: OPML file is {len(data):,} bytes; the limit is {MAX_OPML_BYTES // 1024 // 1024} MB")
    if not data.strip():
        raise ValueError(f"{where}: OPML file is empty")
    result = listparser.parse(data)
    problem = f" ({result['bozo_exception']})" if result.get("bozo") and result.get("bozo_exception") else ""
    if not str(result.get("version") or "").startswith("opml"):
        raise ValueError(f"{where}: not an OPML document (no <opml> element found){problem}")

    html_urls = _html_urls(data)
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    for item in result.get("feeds") or ():
        url = http_url(str(item.get("url") or "").strip())
        if url is None or url in seen:
            continue
        seen.add(url)
        title = str(item.get("title") or "").strip()
        feeds.append(OpmlFeed(
            url=url,
            title=title if title and title != url else None,  # export writes the URL as text when untitled
            html_url=html_urls.get(url),
            categories=_categories(item.get("categories") or ()),
        ))
    if not feeds:
        raise ValueError(f"{where}: no http(s) feed URLs (xmlUrl) found in the OPML document{problem}")
    return feeds


def _categories(paths: Any) -> tuple[str, ...]:
    """listparser's category paths (lists of folder names) as "a/b" strings, duplicates dropped."""
    joined = ("/".join(part for part in path if part) for path in paths)
    return tuple(dict.fromkeys(category for category in joined if category))


def _html_urls(data: bytes) -> dict[str, str]:
    """xmlUrl → htmlUrl for outlines that have both (first outline wins), read the way listparser reads."""
    parser = etree.HTMLParser(recover=True, no_network=True)  # HTML mode lowercases attribute names
    root = etree.fromstring(data, parser)
    found: dict[str, str] = {}
    if root is None:
        return found
    for outline in root.iter("outline"):
        xml_url = (outline.get("xmlurl") or "").strip()
        html_url = http_url((outline.get("htmlurl") or "").strip())
        if xml_url and html_url and xml_url not in found:
            found[xml_url] = html_url
    return found


def export_opml(feeds: Sequence[OpmlFeed], *, title: str = "digestbot sources") -> bytes:
    """An OPML 2.0 document (UTF-8) listing ``feeds`` flat, folders given as ``category`` attributes.

    Commas inside a category name become spaces: the attribute is a comma-separated list.
    """
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds:
        attrs = {"type": "rss", "text": feed.title or feed.url}
        if feed.title:
            attrs["title"] = feed.title
        attrs["xmlUrl"] = feed.url
        if feed.html_url:
            attrs["htmlUrl"] = feed.html_url
        categories = [" ".join(c.replace(",", " ").split()) for c in feed.categories]
        if any(categories):
            attrs["category"] = ",".join(c for c in categories if c)
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
