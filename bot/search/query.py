"""User search text → a structured query. Nothing a user types reaches an engine's query syntax:
the index builds term and phrase queries from these parts programmatically, so ``AND``, ``:``,
``(``, ``NEAR`` and friends are just words.

Syntax: words (all required; the index falls back to any-word when that finds nothing),
``"a phrase"``, ``-word`` / ``-"a phrase"`` excluded, ``transf*`` (last word) a prefix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.search.tokenize import is_cjk, normalize, query_word, split_runs, stem, tokenize

MAX_QUERY_CHARS = 300  # longer text is cut, not refused
MAX_UNITS = 16  # words past this are ignored (a long paste still searches, and cheaply)
MAX_PHRASE_TOKENS = 32
_PIECE = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_PREFIX_WORD = re.compile(r"^[a-z0-9]{2,40}$")
# Suffixes whose removal by the stemmer can cut into a typed prefix: hallucinat* must also find
# the stem "hallucin" (of hallucination), which does not start with "hallucinat".
_SUFFIXES = ("e", "s", "es", "ed", "ing", "ion", "ions", "ation", "ations", "er", "ers", "ive", "ity", "al",
             "ally", "ly", "ment", "ness", "ize", "ization", "ise", "ism", "ist", "ful", "ous", "ic")


# Dropped by the fallback pass only ("what is 幻觉" → 幻觉): with every word required they still count,
# so a title like "Attention Is All You Need" is found word for word.
STOPWORDS = frozenset({
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "could", "did", "do", "does", "for",
    "from", "how", "i", "in", "is", "it", "its", "me", "my", "of", "on", "or", "should", "that", "the",
    "their", "this", "to", "vs", "was", "were", "what", "when", "where", "which", "who", "why", "will",
    "with", "would", "you", "your",
})
# Question words glued to a Chinese query (什么是扩散模型): the fallback pass drops them.
_CJK_AFFIXES = re.compile(r"^(?:什么是|什么叫|为什么|如何|怎么|怎样|关于|请问)"
                          r"|(?:是什么|是啥|怎么样|怎么办|有哪些|的原理|原理)$")


@dataclass(frozen=True, slots=True)
class Unit:
    """What one query word or quoted phrase requires: every token (``ordered``: as a phrase),
    or else, when ``parts`` is set (a compound typed whole), those parts as a phrase.
    ``core``: the unit the any-word fallback uses instead (True: itself; None: the fallback drops it)."""

    tokens: tuple[str, ...]
    ordered: bool = False
    parts: tuple[str, ...] = ()
    core: Unit | bool | None = True


@dataclass(frozen=True, slots=True)
class Prefix:
    """``text*``: index terms starting with ``text``, or equal to one of ``stems`` (stems of
    ``text`` + a suffix that the stemmer cut back into ``text``)."""

    text: str
    stems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    must: tuple[Unit, ...] = ()
    must_not: tuple[Unit, ...] = ()
    prefix: Prefix | None = None
    highlight: tuple[str, ...] = ()  # surface forms (NFKC, Simplified) for snippets

    def fallback_units(self) -> tuple[Unit, ...]:
        """The units the any-word pass uses: stopwords and Chinese question words dropped
        (unless nothing would be left)."""
        cores = [u if u.core is True else u.core for u in self.must]
        kept = tuple(dict.fromkeys(u for u in cores if isinstance(u, Unit)))
        return kept or self.must

    @property
    def empty(self) -> bool:
        """No positive part: nothing to rank by (exclusions alone select nothing useful)."""
        return not self.must and self.prefix is None


def _phrase(text: str) -> Unit | None:
    tokens = tuple(tokenize(text))[:MAX_PHRASE_TOKENS]
    if not tokens:
        return None
    return Unit(tokens, ordered=len(tokens) > 1)


def _word_units(text: str) -> list[Unit]:
    """A bare word may hold several runs (``预训练pretraining``, ``MHA/GQA``): one unit each.

    A CJK run's bigrams are required as separate terms, not as a phrase: the conjunction is driven
    by the rarest bigram (fast at a million entries) and overlapping bigrams already pin the word
    down; ``"quoted"`` text keeps strict order. One word stays one unit, so the any-word fallback
    never matches a single bigram of a word.
    """
    units = []
    for run in split_runs(text):
        tokens, parts = query_word(run)
        core: Unit | bool | None = True
        if run.lower() in STOPWORDS:
            core = None
        elif is_cjk(run) and len(run) > 3:
            stripped = _CJK_AFFIXES.sub("", run)
            if stripped != run:
                core = Unit(query_word(stripped)[0]) if len(stripped) >= 2 else None
        units.append(Unit(tokens, parts=parts if len(parts) > 1 else (), core=core))
    return units


def make_prefix(word: str) -> Prefix | None:
    """``transf`` → Prefix; None when the word is not a plain lower-case ASCII word of 2–40 chars."""
    text = normalize(word).lower()
    if not _PREFIX_WORD.match(text):
        return None
    stems = {stem(text + suffix) for suffix in _SUFFIXES} | {stem(text)}
    return Prefix(text, tuple(sorted(s for s in stems if not s.startswith(text) and len(s) >= 3)))


def parse_query(text: str) -> ParsedQuery:
    """Parse user text; never raises. Unbalanced quotes and stray operators are just text."""
    text = text[:MAX_QUERY_CHARS]
    must: list[Unit] = []
    must_not: list[Unit] = []
    highlight: list[str] = []
    prefix: Prefix | None = None
    pieces = list(_PIECE.finditer(text))
    for index, match in enumerate(pieces):
        negated, quoted, bare = match.group(1), match.group(2), match.group(3)
        if quoted is not None:
            unit = _phrase(quoted)
            if unit is not None:
                (must_not if negated else must).append(unit)
                if not negated:
                    highlight.extend(split_runs(quoted))
            continue
        word = bare or ""
        if word.startswith("-") and len(word) > 1:
            must_not.extend(_word_units(word[1:]))
            continue
        if word.endswith("*") and index == len(pieces) - 1:
            word = word.rstrip("*")
            found = make_prefix(word)
            if found is not None:
                prefix = found
                highlight.append(found.text)
                continue
        must.extend(_word_units(word))
        highlight.extend(split_runs(word))
    return ParsedQuery(tuple(dict.fromkeys(must))[:MAX_UNITS], tuple(dict.fromkeys(must_not))[:MAX_UNITS],
                       prefix, tuple(dict.fromkeys(h for h in highlight if h)))


def highlight_terms(text: str) -> tuple[str, ...]:
    """Surface forms worth bolding for a query text (what ``SearchPage.terms`` carries)."""
    return parse_query(text).highlight
