"""Topic assignment at ingest: config keywords in any language, the source's topics, feed categories.

Latin keywords match at a word start, case-insensitively (``diffusion`` matches "Diffusion-based",
``llm`` matches "LLMs"); CJK keywords match as substrings (Chinese has no spaces). Traditional
script is folded to Simplified on both sides so 幻覺 text gets the topic declared with 幻觉. All
keywords are compiled into one pattern, so tagging an entry is a single scan of its text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.config import TopicDef
from bot.fold import CJK_CHAR, fold


@dataclass(frozen=True)
class TopicMatcher:
    pattern: re.Pattern[str] | None
    topics_by_keyword: Mapping[str, tuple[str, ...]]
    names: Mapping[str, frozenset[str]]
    order: Mapping[str, int]

    @classmethod
    def from_config(cls, topics: Mapping[str, TopicDef]) -> TopicMatcher:
        by_keyword: dict[str, list[str]] = {}
        names = {}
        for topic_id, definition in topics.items():
            for word in {fold(k).strip() for k in (*definition.keywords, topic_id) if k.strip()}:
                by_keyword.setdefault(word, []).append(topic_id)
            names[topic_id] = frozenset({fold(topic_id), *(fold(w) for w in definition.keywords),
                                         *([fold(definition.label)] if definition.label else [])})
        # One scan finds non-overlapping matches, longest first; so a keyword also carries the topics
        # of every keyword that would have matched inside it ("vision-language" → vision too).
        contained = {}
        for word in by_keyword:
            inner = [other for other in by_keyword if other != word and (
                other in word if CJK_CHAR.search(other) else re.search(rf"(?<![a-z0-9]){re.escape(other)}", word))]
            contained[word] = list(dict.fromkeys(t for o in [word, *inner] for t in by_keyword[o]))
        by_keyword = contained
        latin = [w for w in by_keyword if not CJK_CHAR.search(w)]
        cjk = [w for w in by_keyword if CJK_CHAR.search(w)]
        parts = ([rf"(?<![a-z0-9])(?={_first_chars(latin)}){_trie_regex(latin)}"] if latin else []) + (
            [f"(?={_first_chars(cjk)}){_trie_regex(cjk)}"] if cjk else [])
        return cls(re.compile("|".join(parts)) if parts else None,
                   {k: tuple(v) for k, v in by_keyword.items()}, names,
                   {t: i for i, t in enumerate(topics)})

    def assign(self, *, title: str, summary: str, categories: Iterable[str],
               source_topics: Iterable[str]) -> tuple[str, ...]:
        found: set[str] = set()
        if self.pattern is not None:
            for word in set(self.pattern.findall(fold(f"{title}\n{summary}"))):
                found.update(self.topics_by_keyword.get(word, ()))
        folded_categories = {fold(c).strip() for c in categories}
        if folded_categories:
            found.update(t for t, names in self.names.items() if folded_categories & names)
        first = list(dict.fromkeys(source_topics))
        rest = sorted(found - set(first), key=lambda t: self.order.get(t, len(self.order)))
        return tuple(first + rest)


def _first_chars(words: Iterable[str]) -> str:
    """A character class of the words' first characters: a cheap reject before the trie is tried."""
    return "[" + "".join(re.escape(c) for c in sorted({w[0] for w in words})) + "]"


def _trie_regex(words: Iterable[str]) -> str:
    """One regex matching the longest of ``words`` at a position, built as a character trie.

    Same matches as the alternation of the words longest first (a trie path is deterministic, and
    each node tries to go on before it stops), but sre walks one branch per character instead of
    trying every word at every position: ~2.5x faster over feed text.
    """
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # marks the end of a word

    def build(node: dict[str, Any]) -> str:
        alternatives = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if "" in node:
            return f"(?:{'|'.join(alternatives)})?" if alternatives else ""
        return alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"

    return build(trie)
