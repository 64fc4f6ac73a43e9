"""One tokenizer for index and query time, built for mixed Chinese/English text.

- NFKC; Traditional Chinese folded to Simplified (幻覺 → 幻觉) with OpenCC's character table
  (``bot.fold``): the library's own converter is pure Python, ~60x slower;
- runs of CJK ideographs (and kana/hangul) become overlapping character bigrams, a lone character
  kept as itself, because Chinese has no spaces and a run like 模型幻觉问题 must match 幻觉;
- Latin words are lowercased and Snowball-stemmed (transformers → transform); camelCase and
  letter–digit words are indexed whole *and* in parts (FlashAttention → flashattent, flash, attent;
  Llama3 → llama3, llama, 3), so either spelling finds them. A run changes at a script change
  (预训练阶段pretraining → …, 阶段, pretrain) and at punctuation (MHA/MQA/GQA → mha, mqa, gqa).

Bump ``TOKENIZER_VERSION`` whenever the output changes: the index rebuilds itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import chain

import Stemmer

from bot.fold import ASTRAL_CHAR, stream_safe, to_simplified

TOKENIZER_VERSION = 2
MAX_WORD = 40  # longer "words" (hashes, URLs run together) are cut: nobody searches for them whole

# Han (incl. extensions and compatibility ideographs), kana and hangul: scripts without spaces
# (or, for Korean, with particles glued on), so bigrams are what can be matched.
_CJK = (r"\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
        r"\U00020000-\U0002fa1f")
_RUN = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")
_ASCII_RUN = re.compile(r"[A-Za-z0-9]+")  # the same runs, for ASCII text
_CJK_CHAR = re.compile(rf"[{_CJK}]")
# Parts of an ASCII word: an upper-case run not followed by lower case (the "GQA" of "GQAttention"),
# a capitalised or lower-case word, a number.
_PARTS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# Parts of any other word: letter runs and digit runs only (café stays whole).
_LETTER_DIGIT = re.compile(r"[^\W\d_]+|\d+")
# No PyStemmer-side cache: ``stem`` and the run cache below memoise already, and its cache makes
# every call ~3x slower.
_STEMMER = Stemmer.Stemmer("english", 0)


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Snowball English stem of a lower-case word."""
    return str(_STEMMER.stemWord(word))


def is_cjk(token: str) -> bool:
    """True when ``token`` starts with a CJK character (tokens are never mixed)."""
    return bool(token) and _CJK_CHAR.match(token) is not None


def cjk_bigrams(run: str) -> list[str]:
    if len(run) < 3:
        return [run]
    return list(map(str.__add__, run, run[1:]))


def _parts(word: str) -> list[str]:
    """The parts of a compound word, or [] when it is not one. Single letters ("o" of 4o, "V" of
    DeepSeekV3) are dropped as noise; digits are kept, they carry versions."""
    parts = _PARTS.findall(word) if word.isascii() else _LETTER_DIGIT.findall(word)
    if len(parts) <= 1:
        return []
    return [p for p in parts if len(p) > 1 or p.isdigit()]


@lru_cache(maxsize=200_000)
def word_tokens(word: str) -> tuple[str, ...]:
    """One Latin/other word (case kept) → its stem, then the stems of its parts when it has several."""
    lower = word.lower()
    if len(lower) > MAX_WORD:
        return (lower[:MAX_WORD],)
    whole = stem(lower)
    parts = _parts(word)
    if not parts:
        return (whole,)
    return (whole, *(stem(p.lower()) for p in parts))


@lru_cache(maxsize=1)
def _fold_table() -> tuple[re.Pattern[str], dict[str, str]]:
    """One regex over every BMP character that NFKC or Traditional → Simplified changes, and what
    it becomes (BMP only: sre matches a BMP-only class with a bitmap, an astral one by a linear
    scan). Full NFKC costs ~30 µs per 300-char Chinese entry (full-width punctuation is
    everywhere) and a translate table as much; a regex scan that only calls back on hits is ~5x faster."""
    mapping: dict[str, str] = {}
    for code in range(0x80, 0x10000):
        char = chr(code)
        if not 0xD800 <= code < 0xE000:
            folded = unicodedata.normalize("NFKC", char)
            if folded != char:
                mapping[char] = to_simplified(folded)
    hanzi = "".join(chr(c) for r in ((0x3400, 0xA000), (0xF900, 0xFB00)) for c in range(*r))
    for char, simple in zip(hanzi, to_simplified(hanzi), strict=True):
        if char != simple:
            mapping[char] = simple
    pattern = re.compile("[" + "".join(re.escape(c) for c in sorted(mapping)) + "]")
    return pattern, mapping


def normalize(text: str) -> str:
    """NFKC, then Traditional → Simplified (one-for-one characters: CJK offsets are kept). Runs of
    combining marks are cut to 30 first (``bot.fold.stream_safe``): NFKC is quadratic on long ones."""
    if text.isascii():
        return text
    astral = ASTRAL_CHAR.search(text) is not None
    text = stream_safe(text, astral=astral)
    if not astral:
        pattern, mapping = _fold_table()
        folded = pattern.sub(lambda match: mapping[match.group()], text)
        if unicodedata.is_normalized("NFKC", folded):  # else: combining marks and the like
            return folded
    return to_simplified(unicodedata.normalize("NFKC", text))


def split_runs(text: str) -> list[str]:
    """Text → runs: each a CJK run (normalised, Simplified) or a Latin/other word (case kept)."""
    return _RUN.findall(normalize(text))


class _RunTokens(dict[str, str]):
    """run → its tokens joined by spaces, filled on a miss (``__missing__`` is called from C, so a
    hit costs one dict lookup). Joined, because the index takes a text's tokens as one spaced
    string: joining a few strings per word beats joining a token list (a CJK run is many bigrams).
    Bounded: cleared when full. Long CJK runs are rarely repeated and are not kept."""

    LIMIT = 100_000

    def __missing__(self, run: str) -> str:
        if _CJK_CHAR.match(run):
            tokens = " ".join(cjk_bigrams(run))
            if len(run) > 12:
                return tokens
        else:
            tokens = " ".join(word_tokens(run))
        if len(self) >= self.LIMIT:
            self.clear()
        self[run] = tokens
        return tokens


_run_tokens = _RunTokens()


def _runs(text: str) -> list[str]:
    return _normalized_runs(normalize(text))


def _normalized_runs(text: str) -> list[str]:
    return _ASCII_RUN.findall(text) if text.isascii() else _RUN.findall(text)


def tokenize(text: str) -> list[str]:
    """Index-side tokens, in order (positions matter for phrases)."""
    return tokenize_joined(text).split()


def tokenize_joined(text: str) -> str:
    """``" ".join(tokenize(text))``: how the index takes a text."""
    return " ".join(map(_run_tokens.__getitem__, _runs(text)))


def tokenize_many(texts: Iterable[str]) -> list[list[str]]:
    """``[tokenize(t) for t in texts]``, faster: the words not seen yet are stemmed in one batch."""
    return [joined.split() for joined in tokenize_joined_many(texts)]


def tokenize_joined_many(texts: Iterable[str], *, normalized: bool = False) -> list[str]:
    """``[tokenize_joined(t) for t in texts]``, with the words not seen yet stemmed in one batch.
    ``normalized``: the texts went through ``normalize`` already (ingest shares it with tagging)."""
    runs = [_normalized_runs(text) for text in texts] if normalized else [_runs(text) for text in texts]
    cache = _run_tokens
    missing = [run for run in set(chain.from_iterable(runs)) if run not in cache and
               (len(run) <= 12 or not _CJK_CHAR.match(run))]
    if missing:
        if len(cache) + len(missing) > cache.LIMIT:
            cache.clear()
        cache.update(zip(missing, _batch_tokens(missing), strict=True))
    get = cache.__getitem__
    return [" ".join(map(get, text_runs)) for text_runs in runs]


def _batch_tokens(runs: Sequence[str]) -> list[str]:
    """What ``_RunTokens.__missing__`` gives for each run, with one ``stemWords`` call per kind.

    Most runs are plain words (all lower, all upper, Capitalised, all digits; any letters outside
    ASCII): one stem each and no parts, so they skip the parts regex and are written straight out."""
    out = [""] * len(runs)
    word_at: list[int] = []  # plain words: one stem each
    words: list[str] = []
    compounds: list[tuple[int, int]] = []  # (run index, how many stems: whole + parts)
    pieces: list[str] = []
    for i, run in enumerate(runs):
        if not run.isascii() and _CJK_CHAR.match(run):
            out[i] = " ".join(cjk_bigrams(run))
            continue
        lower = run.lower()
        if len(lower) > MAX_WORD:
            out[i] = lower[:MAX_WORD]
        elif ((run.isalpha() and (run.islower() or not run.isascii() or run.isupper() or run.istitle()))
              or (run.isdigit() and run.isascii())):
            word_at.append(i)
            words.append(lower)
        else:
            parts = _parts(run)
            if parts:
                compounds.append((i, 1 + len(parts)))
                pieces.append(lower)
                pieces.extend([p.lower() for p in parts])
            else:
                word_at.append(i)
                words.append(lower)
    if words:
        for i, stemmed in zip(word_at, _STEMMER.stemWords(words), strict=True):
            out[i] = stemmed
    if compounds:
        stems = _STEMMER.stemWords(pieces)
        at = 0
        for i, count in compounds:
            out[i] = " ".join(stems[at:at + count])
            at += count
    return out


def query_word(run: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Query side of one run from ``split_runs``: (tokens that must all match, alternative parts).

    A CJK run must match all its bigrams; a Latin word its whole stem — or, for a compound typed
    whole (``Llama3``, ``FlashAttention``), its parts as a phrase, so it also finds "Llama 3".
    """
    if is_cjk(run):
        return tuple(cjk_bigrams(run)), ()
    tokens = word_tokens(run)
    return (tokens[0],), tokens[1:]
