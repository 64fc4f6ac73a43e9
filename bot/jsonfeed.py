"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org) -> ParsedFeed. Every field may be missing or of the wrong type."""

from __future__ import annotations

import calendar
import html
import json
from datetime import UTC, datetime
from typing import Any

from feedparser.datetimes import _parse_date as _fp_parse_date

from bot.errors import ParseError
from bot.models import ParsedEntry, ParsedFeed

_MAX_CATEGORIES = 50


def looks_like_json(body: bytes, content_type: str | None = None) -> bool:
    """True when the body starts like a JSON object (the Content-Type alone is not trusted)."""
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"{")


def parse_json_feed(body: bytes, url: str) -> ParsedFeed:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ParseError(url, f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ParseError(url, "JSON document is not a JSON Feed object")
    version = doc.get("version")
    items = doc.get("items")
    is_jsonfeed = isinstance(version, str) and "jsonfeed.org/version/" in version
    if not is_jsonfeed and not isinstance(items, list):
        raise ParseError(url, "JSON document is not a JSON Feed (no jsonfeed.org version, no items)")
    entries = tuple(_entry(item) for item in (items if isinstance(items, list) else []) if isinstance(item, dict))
    fmt = "json11" if isinstance(version, str) and version.rstrip("/").endswith("1.1") else "json10"
    return ParsedFeed(title=_str(doc.get("title")), link=_str(doc.get("home_page_url")), entries=entries,
                      format=fmt)


def _str(value: Any) -> str | None:
    """A non-empty stripped string, or None (numbers are accepted: ids are often numeric)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value.strip() or None
    return None


def _date(value: Any) -> datetime | None:
    """RFC 3339 as the spec says; RFC 822 and the other formats feedparser knows, as feeds do."""
    text = _str(value) if isinstance(value, str) else None
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        tup = _fp_parse_date(text)
        if tup is None:
            return None
        try:
            return datetime.fromtimestamp(calendar.timegm(tup), UTC)
        except (OverflowError, ValueError, OSError):
            return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # no offset given: the spec requires one, assume UTC
    return parsed.astimezone(UTC)


def _author(item: dict[str, Any]) -> str | None:
    """1.1 ``authors`` (list) first, then 1.0 ``author`` (object)."""
    authors = item.get("authors")
    if isinstance(authors, list):
        for author in authors:
            if isinstance(author, dict) and _str(author.get("name")):
                return _str(author.get("name"))
    author = item.get("author")
    if isinstance(author, dict):
        return _str(author.get("name"))
    return None


def _thumbnail(item: dict[str, Any]) -> str | None:
    for key in ("image", "banner_image"):
        if _str(item.get(key)):
            return _str(item.get(key))
    attachments = item.get("attachments")
    if isinstance(attachments, list):
        for att in attachments:
            if (isinstance(att, dict) and _str(att.get("url"))
                    and str(_str(att.get("mime_type")) or "").lower().startswith("image/")):
                return _str(att.get("url"))
    return None


def _body(item: dict[str, Any]) -> str | None:
    content_html = _str(item.get("content_html")) if isinstance(item.get("content_html"), str) else None
    if content_html:
        return content_html
    for key in ("content_text", "summary"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return html.escape(value.strip(), quote=False)
    return None


def _entry(item: dict[str, Any]) -> ParsedEntry:
    tags = item.get("tags")
    categories: tuple[str, ...] = ()
    if isinstance(tags, list):
        names = (_str(t) for t in tags if isinstance(t, str))
        categories = tuple(dict.fromkeys(n for n in names if n))[:_MAX_CATEGORIES]
    title = item.get("title")
    url = item.get("url")
    external = item.get("external_url")
    link = url if isinstance(url, str) and url.strip() else external
    return ParsedEntry(
        guid=_str(item.get("id")),
        link=_str(link) if isinstance(link, str) else None,
        title=_str(title) if isinstance(title, str) else None,
        summary_html=_body(item),
        published=_date(item.get("date_published")),
        updated=_date(item.get("date_modified")),
        author=_author(item),
        categories=categories,
        thumbnail=_thumbnail(item),
    )
