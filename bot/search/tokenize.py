"""One tokenizer for index and query time, built for mixed Chinese/English text.

- NFKC; Traditional Chinese folded to Simplified (幻覺 → 幻觉);
- runs of CJK ideographs become overlapping character bigrams (a lone character is kept as
  itself), because Chinese has no spaces and a run like 模型幻觉问题 must match 幻觉;
- Latin words are lowercased and Snowball-stemmed (transformers → transform); camelCase and
  letter–digit words are indexed whole *and* in parts (FlashAttention → flashattent, flash, attent;
  Llama3 → llama3, llama, 3), so either spelling finds them.

Bump ``TOKENIZER_VERSION`` whenever the output changes: the index rebuilds itself.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

from bot.fold import to_simplified

TOKENIZER_VERSION = 1

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_CJK_RUN = re.compile(rf"[{_CJK}]+")
_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+|[^\W\d_A-Za-z]+")
_STEMMER = Stemmer.Stemmer("english")
MAX_WORD = 40


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return str(_STEMMER.stemWord(word))


def cjk_bigrams(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i:i + 2] for i in range(len(run) - 1)]


@lru_cache(maxsize=100_000)
def _word_tokens(word: str) -> tuple[str, ...]:
    lower = word.casefold()
    if len(lower) > MAX_WORD:
        return (lower[:MAX_WORD],)
    whole = stem(lower)
    parts = _PARTS.findall(word)
    if len(parts) <= 1:
        return (whole,)
    return (whole, *(stem(p.casefold()) for p in parts))


def is_cjk(token: str) -> bool:
    return bool(_CJK_RUN.match(token))


def split_runs(text: str) -> list[str]:
    """NFKC text → runs: each a CJK run (already Simplified) or a Latin/other word (case kept)."""
    text = unicodedata.normalize("NFKC", text)
    return [to_simplified(r) if _CJK_RUN.match(r) else r for r in _RUN.findall(text)]


def tokenize(text: str) -> list[str]:
    """Index-side tokens, in order."""
    out: list[str] = []
    for run in split_runs(text):
        if _CJK_RUN.match(run):
            out.extend(cjk_bigrams(run))
        else:
            out.extend(_word_tokens(run))
    return out


def query_units(text: str) -> list[tuple[str, ...]]:
    """Query-side: each unit must match. A Latin word is one term (its whole stem); a CJK run is a
    phrase of its bigrams. Parts of camelCase words are not required separately: the whole stem
    is indexed too."""
    units: list[tuple[str, ...]] = []
    for run in split_runs(text):
        if _CJK_RUN.match(run):
            units.append(tuple(cjk_bigrams(run)))
        else:
            units.append((_word_tokens(run)[0],))
    return units
