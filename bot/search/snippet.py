"""A short window of an entry's text around the first match, matched words in **bold**.

Feed text is escaped (it cannot inject markdown or pings); matching is CJK-aware (a Chinese term is
found inside a longer run, Traditional text matches a Simplified term and the reverse) and
stem-aware for Latin words (``hallucination`` highlights "hallucinate").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from bot.fold import to_simplified
from bot.format import safe_text
from bot.search.query import ParsedQuery
from bot.search.tokenize import is_cjk, normalize, split_runs, stem, word_tokens

_MIN_STEM = 4  # shorter words are matched as typed (a stem of "gqa" or "3" adds nothing)
_LATIN = r"a-z0-9\u00c0-\u024f"  # what continues a Latin word (CJK does not: 预训练pretraining)


def _fold_char(char: str) -> str:
    folded = unicodedata.normalize("NFKC", char).lower()
    return folded if len(folded) == 1 else char


def _comparable(text: str) -> str:
    """Same length as ``text`` (so offsets carry over): NFKC per character, lower-cased, Simplified."""
    if text.isascii():
        return text.lower()
    return to_simplified("".join(map(_fold_char, text)))


def _term_patterns(term: str) -> list[str]:
    patterns = []
    for run in split_runs(term):
        if is_cjk(run):
            patterns.append(re.escape(run))
            continue
        lower = run.lower()
        roots = {stem(lower) if len(lower) >= _MIN_STEM else lower}
        roots.update(part for part in word_tokens(run)[1:] if len(part) >= 2)  # FlashAttention: flash, attent
        patterns.extend(rf"(?<![{_LATIN}]){re.escape(root)}[{_LATIN}]*" for root in roots)
    return patterns


def _pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    patterns = {p for term in terms if term.strip() for p in _term_patterns(normalize(term))}
    if not patterns:
        return None
    return re.compile("|".join(sorted(patterns, key=len, reverse=True)))


def make_snippet(text: str, terms: Sequence[str] | ParsedQuery, width: int = 160) -> str:
    """``width`` characters of ``text`` around the first match (the start when nothing matches),
    escaped for Discord, matches in bold, ``…`` where the text was cut."""
    surface = terms.highlight if isinstance(terms, ParsedQuery) else terms
    text = " ".join(text.split())
    pattern = _pattern(surface)
    matches = list(pattern.finditer(_comparable(text))) if pattern else []
    if not matches:
        return safe_text(text[:width]) + ("…" if len(text) > width else "")
    first = matches[0].start()
    start = max(0, first - width // 3)
    if start > 0 and not is_cjk(text[first]):
        space = text.rfind(" ", max(0, start - 15), first)
        start = space + 1 if space != -1 else start
    end = min(len(text), start + width)
    if end < len(text) and not is_cjk(text[end - 1]):
        space = text.rfind(" ", end - 15, end)
        end = space if space > first else end
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
