"""ParsedFeed -> list[Entry]: plain text, absolute http(s) links, UTC times and a stable identity key."""

from __future__ import annotations

import hashlib
import html
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

from bot.models import Entry, ParsedEntry, ParsedFeed
from bot.text import clean_inline, html_to_text, truncate_text

log = logging.getLogger(__name__)

MAX_CATEGORIES = 20
MAX_CATEGORY_CHARS = 100
MAX_AUTHOR_CHARS = 200
MAX_KEY_CHARS = 1000
UNTITLED = "(untitled)"
MAX_TITLE_INPUT = 4096
"""Characters of a title's markup read at most. An HTML parser takes quadratic time on deeply nested
unclosed tags (512 kB of ``<div>`` in a title: 27 s), and no title needs more."""
_INPUT_PER_OUTPUT_CHAR = 20  # markup read per character kept, for authors and categories
_TITLE_FROM_SUMMARY_CHARS = 80
# Bounded: an "<img" without ">" used to scan to the end of the summary from every start (quadratic:
# 400 kB of "<img " took minutes). Attributes before src rarely exceed a few hundred characters.
_IMG_SRC = re.compile(r"""<img\b[^>]{0,512}?\ssrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_IMG_SEARCH_CHARS = 64 * 1024  # the first image is near the top; never scan megabytes for it


def normalize_entries(feed: ParsedFeed, source_id: str, *, feed_url: str,
                      max_summary_chars: int = 2000) -> list[Entry]:
    """Entries in feed order; an entry whose key was already seen in this feed is dropped."""
    seen: set[str] = set()
    out: list[Entry] = []
    for parsed in feed.entries:
        try:
            entry = normalize_entry(parsed, source_id, feed_url=feed_url, max_summary_chars=max_summary_chars)
        except Exception:  # one odd entry must not lose the whole feed
            log.warning("skipping an entry of %s that could not be normalised", feed_url, exc_info=True)
            continue
        if entry.key not in seen:
            seen.add(entry.key)
            out.append(entry)
    return out


def normalize_entry(parsed: ParsedEntry, source_id: str, *, feed_url: str, max_summary_chars: int = 2000) -> Entry:
    summary_html = parsed.summary_html if isinstance(parsed.summary_html, str) else ""
    text = _leading_text(summary_html, max_summary_chars)
    summary = truncate_text(text, max(0, max_summary_chars))
    title = clean_inline(parsed.title[:MAX_TITLE_INPUT]) if isinstance(parsed.title, str) else ""
    published = utc(parsed.published) or utc(parsed.updated)
    link = http_url(parsed.link, feed_url)
    return Entry(
        source_id=source_id,
        key=entry_key(parsed, link, title, published),
        title=title or truncate_text(text, _TITLE_FROM_SUMMARY_CHARS) or UNTITLED,
        link=link,
        summary=summary,
        published=published,
        updated=utc(parsed.updated),
        author=_author(parsed.author),
        categories=_categories(parsed.categories),
        thumbnail=http_url(parsed.thumbnail, feed_url) or _first_image(summary_html, feed_url),
    )


def _leading_text(summary_html: str, chars: int) -> str:
    """Enough text for ``chars`` characters of summary, without converting megabytes of HTML to get it."""
    head = max(2048, chars * 4)
    text = html_to_text(summary_html[:head])
    if len(summary_html) > head and len(text) <= chars:
        # Markup-heavy HTML: read further, not much (nested unclosed tags make the parse quadratic).
        text = html_to_text(summary_html[: max(head * 4, chars * 16)])
    return text


def entry_key(parsed: ParsedEntry, link: str | None, title: str, published: datetime | None) -> str:
    """guid/id, else the (absolute) link, else a hash of title and date. Over-long keys are hashed."""
    guid = parsed.guid.strip() if isinstance(parsed.guid, str) else ""
    raw_link = parsed.link.strip() if isinstance(parsed.link, str) else ""
    key = guid or link or raw_link
    if not key:
        stamp = published.isoformat() if published else ""
        return "sha1:" + hashlib.sha1(f"{title}\x00{stamp}".encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324
    if len(key) > MAX_KEY_CHARS:
        return "sha1:" + hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()  # noqa: S324
    return key


def utc(value: object) -> datetime | None:
    """A timezone-aware UTC datetime; a naive one is taken to be UTC already."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def http_url(value: object, base: str) -> str | None:
    """``value`` resolved against ``base``, kept only if it is an http(s) URL with a host."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value or any(c in value for c in "\x00\r\n\t"):
        return None
    try:
        # urljoin returns an absolute http(s) URL unchanged: skip it in that (usual) case
        absolute = value if not base or value.startswith(("https://", "http://")) else urljoin(base, value)
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return absolute


def _first_image(summary_html: str, base: str) -> str | None:
    m = _IMG_SRC.search(summary_html, 0, _IMG_SEARCH_CHARS)
    if m is None:
        return None
    src = html.unescape(next(g for g in m.groups() if g is not None))
    return http_url(src, base)


def _author(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return truncate_text(clean_inline(value[:MAX_AUTHOR_CHARS * _INPUT_PER_OUTPUT_CHAR]), MAX_AUTHOR_CHARS) or None


def _categories(values: object) -> tuple[str, ...]:
    if not isinstance(values, tuple | list):
        return ()
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        name = truncate_text(clean_inline(value[:MAX_CATEGORY_CHARS * _INPUT_PER_OUTPUT_CHAR]), MAX_CATEGORY_CHARS)
        folded = name.casefold()
        if name and folded not in seen:
            seen.add(folded)
            out.append(name)
            if len(out) == MAX_CATEGORIES:
                break
    return tuple(out)
