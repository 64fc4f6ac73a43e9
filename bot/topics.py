"""Topic assignment at ingest: config keywords in any language, the source's topics, feed categories.

Latin keywords match at a word start, case-insensitively (``diffusion`` matches "Diffusion-based",
``llm`` matches "LLMs"); CJK keywords match as substrings (Chinese has no spaces). Traditional
script is folded to Simplified on both sides so 幻覺 text gets the topic declared with 幻觉.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from bot.config import TopicDef

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


@lru_cache(maxsize=1)
def _t2s() -> object:
    from opencc import OpenCC

    return OpenCC("t2s")


def fold(text: str) -> str:
    """NFKC, casefold, Traditional → Simplified for CJK text."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if _CJK.search(text):
        text = str(_t2s().convert(text))  # type: ignore[attr-defined]
    return text


@dataclass(frozen=True)
class TopicMatcher:
    """Compiled keyword patterns per topic."""

    patterns: tuple[tuple[str, re.Pattern[str]], ...]
    names: Mapping[str, frozenset[str]]

    @classmethod
    def from_config(cls, topics: Mapping[str, TopicDef]) -> TopicMatcher:
        patterns = []
        names = {}
        for topic_id, definition in topics.items():
            words = [fold(k) for k in (*definition.keywords, topic_id) if k.strip()]
            parts = []
            for word in sorted(set(words), key=len, reverse=True):
                escaped = re.escape(word)
                parts.append(escaped if _CJK.search(word) else rf"(?<![a-z0-9]){escaped}")
            patterns.append((topic_id, re.compile("|".join(parts))))
            names[topic_id] = frozenset({fold(topic_id), *(fold(w) for w in definition.keywords),
                                         *([fold(definition.label)] if definition.label else [])})
        return cls(tuple(patterns), names)

    def assign(self, *, title: str, summary: str, categories: Iterable[str],
               source_topics: Iterable[str]) -> tuple[str, ...]:
        text = fold(f"{title}\n{summary}")
        folded_categories = {fold(c).strip() for c in categories}
        found = list(dict.fromkeys(source_topics))
        for topic_id, pattern in self.patterns:
            if topic_id in found:
                continue
            if pattern.search(text) or folded_categories & self.names[topic_id]:
                found.append(topic_id)
        return tuple(found)
