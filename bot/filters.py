"""Include/exclude filters for routes: keywords (CJK-aware, case-insensitive) and guarded regexes.

Keywords are matched on folded text (NFKC, casefold, Traditional → Simplified, see ``bot.fold``), so
幻覺 finds 幻觉 and "LLaMA" finds "llama". A keyword holding CJK characters matches as a substring
(CJK text has no spaces); any other keyword must stand at word edges, so "ai" does not hit "said" but
does hit "AI-powered" and "生成式AI模型". Regexes are the operator's own and run on the raw field text
with a timeout: a pattern that backtracks forever must not stall polling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import regex  # type: ignore[import-untyped]  # no stubs installed (types-regex is not a dependency)

from bot.fold import CJK_CHAR, fold
from bot.models import Entry

log = logging.getLogger(__name__)

FIELDS = ("title", "summary", "author", "topics")
_TEXT_FIELDS = ("title", "summary", "author")

# A "word character" for keyword edges: letters, digits, marks, underscore, except CJK scripts, which
# never glue onto a Latin word: "生成式AI模型" holds the word "AI", and so does "AI를" (Korean particle).
_WORDISH = r"[[\p{L}\p{N}\p{M}_]--[\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}]]"
_WORDISH_CHAR = regex.compile(_WORDISH, regex.V1)
_FIELD_SEPARATOR = "\x00"  # never a word character nor whitespace: keywords cannot span two fields


@dataclass(frozen=True)
class FilterRule:
    """One include or exclude rule as configured: any keyword or regex hit in any field counts."""

    keywords: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    fields: tuple[str, ...] = FIELDS


@dataclass(frozen=True)
class _CompiledRule:
    text_fields: tuple[str, ...]
    keyword_pattern: regex.Pattern[str] | None
    topic_keywords: frozenset[str]
    check_topics: bool
    patterns: tuple[regex.Pattern[str], ...]


def _keyword_source(folded: str) -> str:
    """A regex for one folded keyword: substring when it holds CJK, else anchored at word edges."""
    body = r"[\s\x1c-\x1f]+".join(regex.escape(part) for part in folded.split())  # str.split whitespace
    if CJK_CHAR.search(folded):
        return body
    start = f"(?<!{_WORDISH})" if _WORDISH_CHAR.match(folded[0]) else ""
    end = f"(?!{_WORDISH})" if _WORDISH_CHAR.match(folded[-1]) else ""
    return start + body + end


def _compile_rule(rule: FilterRule, where: str) -> _CompiledRule:
    fields = tuple(rule.fields)
    if not fields:
        raise ValueError(f"{where}.fields: must list at least one field (allowed: {', '.join(FIELDS)})")
    for i, name in enumerate(fields):
        if name not in FIELDS:
            raise ValueError(f"{where}.fields[{i}]: unknown field {name!r} (allowed: {', '.join(FIELDS)})")
    keywords = tuple(rule.keywords)
    patterns = tuple(rule.regex)
    if not keywords and not patterns:
        raise ValueError(f"{where}: needs at least one keyword or regex")

    folded: list[str] = []
    for i, keyword in enumerate(keywords):
        if not isinstance(keyword, str):
            raise ValueError(f"{where}.keywords[{i}]: must be a string, not {type(keyword).__name__}")
        value = " ".join(fold(keyword).split())
        if not value:
            raise ValueError(f"{where}.keywords[{i}]: empty keyword")
        folded.append(value)

    compiled: list[regex.Pattern[str]] = []
    for i, source in enumerate(patterns):
        if not isinstance(source, str):
            raise ValueError(f"{where}.regex[{i}]: must be a string, not {type(source).__name__}")
        if not source:
            raise ValueError(f"{where}.regex[{i}]: empty pattern (it would match everything)")
        try:
            compiled.append(regex.compile(source, regex.IGNORECASE))
        except regex.error as exc:
            raise ValueError(f"{where}.regex[{i}]: invalid regular expression {source!r}: {exc}") from None

    text_fields = tuple(name for name in fields if name in _TEXT_FIELDS)
    keyword_pattern = None
    if folded and text_fields:
        # One alternation for all keywords: a single scan per entry, whatever the keyword count.
        keyword_pattern = regex.compile("|".join(_keyword_source(k) for k in dict.fromkeys(folded)), regex.V1)
    return _CompiledRule(
        text_fields=text_fields,
        keyword_pattern=keyword_pattern,
        topic_keywords=frozenset(folded) if "topics" in fields else frozenset(),
        check_topics="topics" in fields,
        patterns=tuple(compiled),
    )


def _field_text(entry: Entry, name: str) -> str:
    if name == "title":
        return entry.title or ""
    if name == "summary":
        return entry.summary or ""
    return entry.author or ""


@dataclass(frozen=True)
class EntryFilter:
    """A route's compiled filters. Build with :meth:`compile`; :meth:`matches` never raises."""

    include: _CompiledRule | None
    exclude: _CompiledRule | None
    timeout: float
    _warned: set[str] = field(default_factory=set, compare=False, repr=False)

    @classmethod
    def compile(cls, include: FilterRule | None, exclude: FilterRule | None, *, where: str,
                timeout: float = 0.05) -> EntryFilter:
        """Validate and compile both rules; ``where`` (e.g. "routes[2]") prefixes every error's key path."""
        if not timeout > 0:
            raise ValueError(f"{where}: regex timeout must be a positive number of seconds, not {timeout!r}")
        return cls(
            include=_compile_rule(include, f"{where}.include") if include is not None else None,
            exclude=_compile_rule(exclude, f"{where}.exclude") if exclude is not None else None,
            timeout=timeout,
        )

    def matches(self, entry: Entry) -> bool:
        """True if the entry passes the include rule (when there is one) and does not hit the exclude rule."""
        cache: dict[str, str] = {}
        if self.include is not None and not self._hits(self.include, entry, cache, on_timeout=False):
            return False
        # A timed-out exclude pattern counts as a hit: when unsure, do not post.
        return self.exclude is None or not self._hits(self.exclude, entry, cache, on_timeout=True)

    def _hits(self, rule: _CompiledRule, entry: Entry, cache: dict[str, str], *, on_timeout: bool) -> bool:
        if rule.keyword_pattern is not None:
            key = "\x00".join(rule.text_fields)
            if key not in cache:
                cache[key] = _FIELD_SEPARATOR.join(fold(_field_text(entry, name)) for name in rule.text_fields)
            if self._search(rule.keyword_pattern, cache[key], on_timeout):
                return True
        if rule.check_topics and rule.topic_keywords and any(fold(t) in rule.topic_keywords for t in entry.topics):
            return True
        texts = [_field_text(entry, name) for name in rule.text_fields]
        if rule.check_topics:
            texts.extend(entry.topics)
        return any(self._search(pattern, text, on_timeout) for pattern in rule.patterns for text in texts)

    def _search(self, pattern: regex.Pattern[str], text: str, on_timeout: bool) -> bool:
        try:
            return pattern.search(text, timeout=self.timeout) is not None
        except TimeoutError:
            if pattern.pattern not in self._warned:
                self._warned.add(pattern.pattern)
                log.warning("filter pattern %r timed out after %.3fs; treating it as %s", pattern.pattern,
                            self.timeout, "a hit (exclude)" if on_timeout else "no hit (include)")
            return on_timeout

