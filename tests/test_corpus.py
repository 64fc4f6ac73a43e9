"""Sweep of the shared feed corpus (set DIGESTBOT_CORPUS to its folder, e.g. ../shared/corpus).

Which files must parse is decided from MANIFEST.tsv: every ``well_formed=yes`` file whose ``format`` is a feed
format (rss2, rdf, atom, json) or CDF (``format=other``, notes ``cdf/...``; feedparser reads it). The other
``format=other`` files are not feeds at all (an HTML page, ``<catalog>`` samples, empty documents): for them,
as for every ill-formed file, a ParsedFeed or a ParseError is fine, any other exception is not.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.errors import ParseError
from bot.normalize import normalize_entries
from bot.parse import parse_fast, parse_feed, parse_with_feedparser
from bot.text import clean_inline

pytestmark = pytest.mark.corpus

CORPUS = os.environ.get("DIGESTBOT_CORPUS")
URL = "https://example.org/feed"
FEED_FORMATS = {"rss2", "rdf", "atom", "json"}
# See tests/test_parse.py: feedparser leaks a nested xml:base and mis-resolves these Atom ids.
FEEDPARSER_XML_BASE_LEAK = {"real/rss-parser/reddit-home.rss"}


@dataclass(frozen=True)
class Row:
    file: str
    format: str
    well_formed: bool
    notes: str

    @property
    def must_parse(self) -> bool:
        is_feed = self.format in FEED_FORMATS or (self.format == "other" and self.notes.startswith("cdf"))
        return self.well_formed and is_feed


def _rows() -> list[Row]:
    if not CORPUS:
        return []
    with open(Path(CORPUS) / "MANIFEST.tsv", encoding="utf-8", newline="") as fh:
        return [Row(r["file"], r["format"], r["well_formed"] == "yes", r["notes"] or "")
                for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]


needs_corpus = pytest.mark.skipif(not CORPUS, reason="set DIGESTBOT_CORPUS to the corpus folder (../shared/corpus)")


@needs_corpus
def test_manifest_is_readable():
    rows = _rows()
    assert len(rows) > 2000
    assert all((Path(CORPUS) / r.file).is_file() for r in rows)  # type: ignore[arg-type]


@needs_corpus
def test_sweep_parses_and_normalises_everything():
    """One test over ~2,400 files (parametrizing would cost more than parsing): failures are collected."""
    failures: list[str] = []
    parsed = refused = 0
    for row in _rows():
        body = (Path(CORPUS) / row.file).read_bytes()  # type: ignore[arg-type]
        try:
            feed = parse_feed(body, URL)
        except ParseError as exc:
            refused += 1
            if row.must_parse:
                failures.append(f"{row.file}: well-formed feed refused: {exc}")
            continue
        except Exception as exc:
            failures.append(f"{row.file}: {type(exc).__name__}: {exc}")
            continue
        parsed += 1
        try:
            entries = normalize_entries(feed, "s", feed_url=URL)
        except Exception as exc:
            failures.append(f"{row.file}: normalize_entries raised {type(exc).__name__}: {exc}")
            continue
        for e in entries:
            if not e.key or not e.title or (e.published is not None and e.published.tzinfo is None):
                failures.append(f"{row.file}: bad entry {e.key!r}")
                break
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:50])
    assert parsed > 2000 and refused < 200


@needs_corpus
def test_fast_path_equals_feedparser_on_real_feeds():
    """On corpus/real, every feed the fast path takes gives feedparser's ids, links, titles and dates."""
    problems: list[str] = []
    fast_count = 0
    real = [r for r in _rows() if r.file.startswith("real/") and r.format != "json"]
    for row in real:
        body = (Path(CORPUS) / row.file).read_bytes()  # type: ignore[arg-type]
        fast = parse_fast(body.lstrip() if body.lstrip().startswith(b"<?xml") else body)
        if fast is None:
            continue
        fast_count += 1
        slow = parse_with_feedparser(body, URL)
        if len(fast.entries) != len(slow.entries):
            problems.append(f"{row.file}: {len(fast.entries)} entries vs feedparser {len(slow.entries)}")
            continue
        for a, b in zip(fast.entries, slow.entries, strict=True):
            checks = {"link": (a.link, b.link), "title": (clean_inline(a.title or ""), clean_inline(b.title or "")),
                      "published": (a.published, b.published), "updated": (a.updated, b.updated)}
            if row.file not in FEEDPARSER_XML_BASE_LEAK:
                checks["guid"] = (a.guid, b.guid)
            for field, (mine, theirs) in checks.items():
                if mine != theirs:
                    problems.append(f"{row.file}: {field} {mine!r} != feedparser {theirs!r}")
    assert fast_count > 250, "the fast path should take almost every real feed"
    assert not problems, "\n".join(problems[:40])
