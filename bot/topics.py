"""Topic assignment at ingest: config keywords in any language, the source's topics, feed categories.

Latin keywords match at a word start, case-insensitively (``diffusion`` matches "Diffusion-based",
``llm`` matches "LLMs"); CJK keywords match as substrings (Chinese has no spaces). Traditional
script is folded to Simplified on both sides so 幻覺 text gets the topic declared with 幻觉.

Every occurrence of every keyword counts, overlapping ones included: "vision-language model"
carries both ``vision-language`` and ``language model``, 扩散模型幻觉 both 扩散模型 and 模型幻觉. All
keywords go into one Aho–Corasick automaton (pyahocorasick, C), so tagging an entry is one scan of
its text whatever the number of keywords: about twice as fast as the equivalent regex.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import ahocorasick  # type: ignore[import-not-found]  # no stubs published

from bot.config import TopicDef
from bot.fold import CJK_CHAR, fold

MATCHING_VERSION = 2
"""Bump when the same keywords can give other topics: stored entries are re-tagged once."""
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
"""A Latin keyword preceded by one of these (in folded text) is inside a word: no match."""


@dataclass(frozen=True)
class TopicMatcher:
    automaton: Any | None
    """keyword → (its length - 1, whether it is Latin, its topics), or None without keywords."""
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
        automaton = None
        if by_keyword:
            automaton = ahocorasick.Automaton()
            for word, topic_ids in by_keyword.items():
                automaton.add_word(word, (len(word) - 1, CJK_CHAR.search(word) is None, tuple(topic_ids)))
            automaton.make_automaton()
        return cls(automaton, names, {t: i for i, t in enumerate(topics)})

    def keyword_topics(self, text: str) -> set[str]:
        """The topics whose keywords occur in ``text``, which must be folded (``bot.fold.fold``)."""
        found: set[str] = set()
        if self.automaton is None:
            return found
        for end, (back, latin, topic_ids) in self.automaton.iter(text):
            start = end - back
            if latin and start and text[start - 1] in _WORD_CHARS:
                continue
            found.update(topic_ids)
        return found

    def assign(self, *, title: str, summary: str, categories: Iterable[str],
               source_topics: Iterable[str]) -> tuple[str, ...]:
        return self.assign_folded(fold(f"{title}\n{summary}"), categories=categories, source_topics=source_topics)

    def assign_folded(self, folded: str, *, categories: Iterable[str],
                      source_topics: Iterable[str]) -> tuple[str, ...]:
        """``assign`` for a title and summary already folded as ``fold(f"{title}\\n{summary}")``."""
        found = self.keyword_topics(folded)
        folded_categories = {fold(c).strip() for c in categories}
        if folded_categories:
            found.update(t for t, names in self.names.items() if folded_categories & names)
        first = list(dict.fromkeys(source_topics))
        rest = sorted(found - set(first), key=lambda t: self.order.get(t, len(self.order)))
        return tuple(first + rest)
