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


MAX_NONSTARTERS = 30
ASTRAL_CHAR = re.compile(r"[\U00010000-\U0010ffff]")


@lru_cache(maxsize=1)
def _long_nonstarter_runs() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Runs of more than ``MAX_NONSTARTERS`` combining characters: a pattern over the BMP ones (a
    bitmap class, ~8 ns a character) and one over all of them (astral ranges are matched by a
    linear scan, 10x slower), for text with astral characters."""
    def is_mark(char: str) -> bool:
        """A combining character, or one NFKC decomposes into one first (U+0F73, halfwidth U+FF9E)."""
        if unicodedata.combining(char) != 0:
            return True
        decomposed = unicodedata.normalize("NFKD", char) if unicodedata.decomposition(char) else char
        return unicodedata.combining(decomposed[0]) != 0

    def ranges(low: int, high: int) -> str:
        out, start = [], None
        for code in range(low, high + 1):
            mark = code < high and is_mark(chr(code))
            if mark and start is None:
                start = code
            elif not mark and start is not None:
                out.append(f"{re.escape(chr(start))}-{re.escape(chr(code - 1))}")
                start = None
        return "".join(out)

    bmp, astral = ranges(0x300, 0x10000), ranges(0x10000, 0x110000)
    count = f"{{{MAX_NONSTARTERS + 1},}}"
    return re.compile(f"[{bmp}]{count}"), re.compile(f"[{bmp}{astral}]{count}")


def stream_safe(text: str, *, astral: bool | None = None) -> str:
    """Runs of combining characters cut to ``MAX_NONSTARTERS`` (after Unicode's Stream-Safe Text
    Format, UAX #15). NFKC sorts such a run with an insertion sort, quadratic in its length: one
    title of 64,000 alternating accents took 12 s. No real text stacks 30 marks on one letter."""
    bmp, everything = _long_nonstarter_runs()
    if astral is None:  # ``astral``: whether text has characters beyond the BMP, when the caller knows
        astral = ASTRAL_CHAR.search(text) is not None
    pattern = everything if astral else bmp
    return pattern.sub(lambda run: run.group()[:MAX_NONSTARTERS], text)


def to_simplified(text: str) -> str:
    return text.translate(_t2s_table())


def fold(text: str) -> str:
    """NFKC, casefold, and Traditional → Simplified when the text holds CJK characters."""
    if text.isascii():  # NFKC leaves ASCII alone and casefold is lower there
        return text.lower()
    text = unicodedata.normalize("NFKC", stream_safe(text)).casefold()
    return to_simplified(text) if CJK_CHAR.search(text) else text
