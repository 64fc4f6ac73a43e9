"""A short window of an entry's text around the first match, matched words in **bold**.

Feed text is escaped (it cannot inject markdown or pings); matching is CJK-aware (a Chinese term is
found inside a longer run, Traditional text matches a Simplified term) and stem-aware for Latin
words (``hallucinate`` highlights "hallucination").
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.fold import to_simplified
from bot.format import safe_text
from bot.search.tokenize import is_cjk, stem


def _comparable(text: str) -> str:
    """Same length as ``text``, lower-cased and Simplified, so offsets carry over."""
    lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
    return to_simplified(lowered)


def _pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    parts = []
    for term in sorted({t for t in terms if t.strip()}, key=len, reverse=True):
        folded = _comparable(term.strip())
        if is_cjk(folded):
            parts.append(re.escape(folded))
        else:
            root = stem(folded) if len(folded) > 3 else folded
            parts.append(rf"(?<![a-z0-9]){re.escape(root)}[a-z0-9]*")
    return re.compile("|".join(parts)) if parts else None


def make_snippet(text: str, terms: Sequence[str], width: int = 160) -> str:
    text = " ".join(text.split())
    pattern = _pattern(terms)
    matches = list(pattern.finditer(_comparable(text))) if pattern else []
    if not matches:
        cut = text[:width]
        return safe_text(cut) + ("…" if len(text) > width else "")
    first = matches[0].start()
    start = max(0, first - width // 3)
    if start > 0:
        space = text.rfind(" ", start - 15, first)
        start = space + 1 if space != -1 and not is_cjk(text[first]) else start
    end = min(len(text), start + width)
    pieces = ["…"] if start > 0 else []
    position = start
    for match in matches:
        if match.start() < position or match.end() > end:
            continue
        pieces.append(safe_text(text[position:match.start()]))
        pieces.append(f"**{safe_text(text[match.start():match.end()])}**")
        position = match.end()
    pieces.append(safe_text(text[position:end]))
    if end < len(text):
        pieces.append("…")
    return "".join(pieces)
