"""Plain-text helpers: HTML to text, titles, and length-limited truncation."""

from __future__ import annotations

import html
import re
import unicodedata

from selectolax.lexbor import LexborHTMLParser

# Zero-width characters and bidi controls: invisible, but they break matching and can reorder text.
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u200e\u200f\u061c\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
# Deleting those plus C0/C1 controls (tab/newline/CR become spaces via whitespace collapsing).
_DELETE = re.compile(f"[{_INVISIBLE}\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]+")
_ASCII_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_TAG_LIKE = re.compile(r"<[A-Za-z/!?]")
# Elements whose content is never readable text.
_DROP = ["script", "style", "iframe", "noscript", "template", "object", "embed", "svg", "math", "head", "select",
         "button", "canvas", "audio", "video"]
# A space before each block-level tag (open or close) keeps "<p>a</p><p>b</p>" from becoming "ab".
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|div|br|hr|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|thead|tbody|tfoot|caption|blockquote|pre|"
    r"section|article|aside|header|footer|nav|figure|figcaption|main|address|details|summary|img)\b)",
    re.IGNORECASE)
_TRAILING = " \t\n\r\u00a0\u3000.,;:!?-–—·…、，。；：！？"


def _collapse(text: str) -> str:
    collapsed = " ".join(text.split())
    # _ASCII_CONTROL is a subset of _DELETE: the ASCII check spares the slower scan for most text
    if (not collapsed.isascii() or _ASCII_CONTROL.search(collapsed)) and _DELETE.search(collapsed):
        collapsed = " ".join(_DELETE.sub("", collapsed).split())
    return collapsed


def html_to_text(html_text: str) -> str:
    """Readable single-line text from an HTML fragment; plain text passes through (entities decoded)."""
    if not html_text:
        return ""
    if not _TAG_LIKE.search(html_text):
        return _collapse(html.unescape(html_text) if "&" in html_text else html_text)
    tree = LexborHTMLParser(_BLOCK_TAG.sub(" <", html_text))
    tree.strip_tags(_DROP)
    body = tree.body
    return _collapse(body.text(deep=True, separator="") if body is not None else "")


def clean_inline(text: str) -> str:
    """A one-line title: entities decoded, tags stripped, whitespace collapsed, invisible characters removed."""
    if not text:
        return ""
    if _TAG_LIKE.search(text):
        return html_to_text(text)
    return _collapse(html.unescape(text) if "&" in text else text)


def _is_wide(ch: str) -> bool:
    """CJK-like characters: a line may break before or after any of them."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def _breakable(text: str, i: int) -> bool:
    """True if cutting ``text`` to ``text[:i]`` ends at a word or CJK character boundary."""
    before, after = text[i - 1], text[i]
    return before.isspace() or after.isspace() or _is_wide(before) or _is_wide(after)


def _glued(text: str, i: int) -> bool:
    """True if ``text[i]`` belongs to the sequence before it (combining mark, joiner, low surrogate...)."""
    ch = text[i]
    return (unicodedata.combining(ch) != 0 or ch in "\u200d\ufe0e\ufe0f" or "\udc00" <= ch <= "\udfff"
            or text[i - 1] == "\u200d" or unicodedata.category(ch) == "Mn")


def truncate_text(text: str, limit: int, ellipsis: str = "…") -> str:
    """Shorten ``text`` to at most ``limit`` characters, at a word (or CJK character) boundary when one is near.

    The result is ``text`` itself when it fits, else a prefix of it plus ``ellipsis``; when the limit leaves no
    room for the ellipsis, a bare prefix.
    """
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    budget = limit - len(ellipsis)
    if budget <= 0:
        return _safe_cut(text, limit)
    cut = budget
    floor = max(1, budget // 2)  # don't throw away more than half looking for a space
    i = cut
    while i > floor and not _breakable(text, i):
        i -= 1
    if i > floor or _breakable(text, i):
        cut = i
    head = _safe_cut(text, cut).rstrip(_TRAILING)
    return head + ellipsis


def _safe_cut(text: str, i: int) -> str:
    """``text[:i]``, moved back so a combining sequence or surrogate pair is not split."""
    while 0 < i < len(text) and _glued(text, i):
        i -= 1
    return text[:i]
