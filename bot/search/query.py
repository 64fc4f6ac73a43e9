"""User search text → a structured query. Nothing a user types reaches an engine's query syntax:
the index builds term and phrase queries from these parts programmatically."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.search.tokenize import is_cjk, query_units, split_runs

MAX_QUERY_CHARS = 300
MAX_UNITS = 24
_PIECE = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_PREFIX_WORD = re.compile(r"^[a-z0-9]{2,40}$")

@dataclass(frozen=True, slots=True)
class Unit:
    """What one query word or quoted phrase requires: every token (``ordered``: as a phrase)."""

    tokens: tuple[str, ...]
    ordered: bool = False


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    must: tuple[Unit, ...] = ()
    must_not: tuple[Unit, ...] = ()
    prefix: str | None = None
    highlight: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.must and self.prefix is None


def _phrase(text: str) -> Unit:
    return Unit(tuple(token for unit in query_units(text) for token in unit), ordered=True)


def _word_units(text: str) -> list[Unit]:
    # A CJK run's bigrams are required as separate terms rather than as a phrase: the
    # conjunction is driven by the rarest bigram (fast at a million entries) and overlapping
    # bigrams already pin the word down; "quoted" text keeps strict phrase order. One word
    # stays one unit, so the any-word fallback never matches a single bigram of a word.
    return [Unit(unit) for unit in query_units(text)]


def parse_query(text: str) -> ParsedQuery:
    """Words must all match; ``"a phrase"`` in order; ``-word`` / ``-"phrase"`` excluded;
    ``transf*`` (last word) is a prefix. Unbalanced quotes and stray operators are just text."""
    text = text[:MAX_QUERY_CHARS]
    must: list[Unit] = []
    must_not: list[Unit] = []
    highlight: list[str] = []
    prefix: str | None = None
    pieces = list(_PIECE.finditer(text))
    for index, match in enumerate(pieces):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if quoted is not None:
            unit = _phrase(quoted)
            if unit.tokens:
                (must_not if negated else must).append(unit)
                if not negated:
                    highlight.extend(split_runs(quoted))
            continue
        word = bare or ""
        if word.startswith("-") and len(word) > 1:
            must_not.extend(_word_units(word[1:]))
            continue
        if word.endswith("*") and index == len(pieces) - 1:
            stem_part = word.rstrip("*").casefold()
            runs = split_runs(stem_part)
            if len(runs) == 1 and not is_cjk(runs[0]) and _PREFIX_WORD.match(runs[0]):
                prefix = runs[0]
                highlight.append(runs[0])
                continue
        must.extend(_word_units(word))
        highlight.extend(split_runs(word))
    # words past the limit are ignored: a long paste still searches, and cheaply
    must, must_not = must[:MAX_UNITS], must_not[:max(0, MAX_UNITS - len(must))]
    return ParsedQuery(tuple(dict.fromkeys(must)), tuple(dict.fromkeys(must_not)), prefix,
                       tuple(dict.fromkeys(h for h in highlight if h)))
