"""Text folding shared by topic matching and search: NFKC, casefold, Traditional → Simplified.

OpenCC's character table (shipped by opencc-python-reimplemented) becomes one ``str.translate``
table, which runs in C: the library's own converter is pure Python and ~100x slower. Character-level
folding is what matching needs (幻覺 → 幻觉); phrase-level rewording is not.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

CJK_CHAR = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")


@lru_cache(maxsize=1)
def _t2s_table() -> dict[int, str]:
    text = (resources.files("opencc") / "dictionary" / "TSCharacters.txt").read_text(encoding="utf-8")
    table: dict[int, str] = {}
    for line in text.splitlines():
        source, _, targets = line.partition("\t")
        if len(source) == 1 and targets:
            target = targets.split(" ")[0]
            if len(target) == 1 and target != source:  # one-for-one keeps offsets aligned
                table[ord(source)] = target
    return table


def to_simplified(text: str) -> str:
    return text.translate(_t2s_table())


def fold(text: str) -> str:
    """NFKC, casefold, and Traditional → Simplified when the text holds CJK characters."""
    if text.isascii():  # NFKC leaves ASCII alone and casefold is lower there
        return text.lower()
    text = unicodedata.normalize("NFKC", text).casefold()
    return to_simplified(text) if CJK_CHAR.search(text) else text
