"""The search index: tantivy (BM25) over our own tokens, derived from the database.

Why tantivy: at a million mixed-language entries SQLite FTS5's bm25() scores every match of a
frequent term (p99 ≈ 400 ms measured here); tantivy answers top-10 in milliseconds. Text is
tokenized by ``bot.search.tokenize`` and handed to tantivy joined by spaces (its built-in
``whitespace`` tokenizer, which neither lowercases nor splits further), so index and query see
exactly the same tokens.

Ranking: BM25 over ``text`` (title and summary tokens) plus 1.5 × BM25 over ``title``; equal scores
newest first. Filters score 0. A broad query (> ``BROAD`` estimated matches) selects on ``text``
alone and adds the title part to its best ``RERANK`` hits (``_rerank``): half the time at 1M entries.

The database stays the source of truth: ``last_indexed_id`` is the catch-up mark (kept in a small
JSON file written after each tantivy commit), adds are upserts by id, and a tokenizer or schema
change (or an unreadable index) empties the index and sets ``needs_rebuild``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

import tantivy

from bot.errors import QueryError
from bot.models import Entry, SearchHit, SearchPage, SearchRequest
from bot.search.query import ParsedQuery, Unit, parse_query
from bot.search.tokenize import TOKENIZER_VERSION, tokenize

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
TITLE_BOOST = 1.5  # on top of the title's words also counting in ``text``
MAX_LIMIT = 100
MAX_OFFSET = 1000  # deeper pages are not useful in a chat; bounds the top-k heap
TIE_WINDOW = 20  # extra hits fetched so equal scores just past the page can be re-ordered by recency
PREFIX_TERMS = 64  # a prefix expands to at most this many index terms (the most frequent)
BROAD = 20_000  # estimated matches above which the title boost is applied by _rerank
RERANK = 200  # hits of a broad query that get their title boost
WRITER_HEAP = 256_000_000
_META = "digestbot-index.json"
_RECENCY_FROM = 946_684_800  # 2000-01-01
_RECENCY_SPAN = 60 * 365.25 * 86_400
Occur = tantivy.Occur
MatchMode = Literal["auto", "all", "any"]


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", stored=False, indexed=True, fast=True)
    builder.add_text_field("title", stored=False, tokenizer_name="whitespace", index_option="position")
    builder.add_text_field("text", stored=False, tokenizer_name="whitespace", index_option="position")
    builder.add_text_field("topic", stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("source", stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("published", stored=False, indexed=True, fast=True)
    builder.add_float_field("recency", stored=False, indexed=False, fast=True)
    return builder.build()


def _current_meta() -> dict[str, int]:
    return {"tokenizer": TOKENIZER_VERSION, "schema": SCHEMA_VERSION}


def entry_time(entry: Entry) -> int:
    """Seconds since the epoch of ``published``, else ``first_seen``, else 0."""
    when = entry.published or entry.first_seen
    return int(when.timestamp()) if when else 0


def recency(seconds: int) -> float:
    """A score weight that breaks ties newest first, too small to reorder anything else.

    tantivy multiplies a score by log2(2 + w) ≈ 1 + 0.72·w; w ≤ 1e-3 changes a score by at most
    0.07%, and f32 scores still resolve ~10,000 steps over 2000–2060 (about one per two days).
    Equal scores within a step are ordered in Python (``TIE_WINDOW``). Used only when ties reach
    past the hits fetched (``_ties_past``).
    """
    return min(max((seconds - _RECENCY_FROM) / _RECENCY_SPAN, 0.0), 1.0) * 1e-3


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


class SearchIndex:
    """Use ``SearchIndex.open(path)``; ``path=None`` keeps the index in memory (tests).

    Writes (add/delete/commit/clear) come from one thread at a time; searches may run in others.
    """

    def __init__(self, path: Path | None, index: tantivy.Index, schema: tantivy.Schema, *,
                 needs_rebuild: bool, last_id: int) -> None:
        self.path = path
        self._index = index
        self._schema = schema
        self._lock = threading.Lock()
        self._writer: tantivy.IndexWriter | None = None
        self._source_counts: dict[str, int] | None = None  # per committed state, for _source_filter
        self.needs_rebuild = needs_rebuild
        """True when an existing index was discarded: the app must feed every entry again."""
        self._high_water = self._max_id()  # highest id possibly in the index: below it, adds delete first
        self.last_indexed_id = max(last_id, self._high_water)

    # -- opening ------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: Path | None) -> SearchIndex:
        schema = _schema()
        if path is None:
            return cls(None, cls._new_index(schema, None), schema, needs_rebuild=False, last_id=0)
        meta_file = path / _META
        discarded = False
        meta: dict[str, int] = {}
        if path.exists():
            try:
                meta = json.loads(meta_file.read_text())
            except (OSError, ValueError):
                meta = {}
            if not isinstance(meta, dict) or {k: meta.get(k) for k in _current_meta()} != _current_meta():
                log.warning("search index at %s is from another tokenizer/schema: rebuilding it", path)
                shutil.rmtree(path)  # derived data: refilled from the database by the caller
                discarded, meta = True, {}
        path.mkdir(parents=True, exist_ok=True)
        try:
            index = cls._new_index(schema, path)
        except (OSError, ValueError) as exc:
            log.warning("search index at %s is unreadable (%s): rebuilding it", path, exc)
            shutil.rmtree(path)
            path.mkdir(parents=True)
            index = cls._new_index(schema, path)
            discarded, meta = True, {}
        last_id = meta.get("last_id", 0)
        self = cls(path, index, schema, needs_rebuild=discarded,
                   last_id=last_id if isinstance(last_id, int) else 0)
        self._write_meta()
        return self

    @staticmethod
    def _new_index(schema: tantivy.Schema, path: Path | None) -> tantivy.Index:
        # Segments sorted newest first: among equal scores tantivy keeps the lower doc, i.e. newer.
        return tantivy.Index(schema, path=None if path is None else str(path), reuse=True,
                             sort_by_field="published", sort_order=tantivy.Order.Desc)

    def _write_meta(self) -> None:
        if self.path is None:
            return
        meta_file = self.path / _META
        tmp = meta_file.with_suffix(".tmp")
        with tmp.open("w") as handle:
            json.dump({**_current_meta(), "last_id": self.last_indexed_id}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(meta_file)

    # -- writing ------------------------------------------------------------------------------
    def _get_writer(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=min(2, os.cpu_count() or 1))
        return self._writer

    def add(self, entries: Sequence[Entry], tokens: Sequence[tuple[str, str]] | None = None) -> None:
        """Upsert entries (their ``id`` set; others are skipped). ``tokens`` (title, body), when
        given, were made by ``tokenize`` elsewhere (a worker process) and joined with spaces."""
        if tokens is None:
            tokens = [(" ".join(tokenize(e.title)), " ".join(tokenize(e.summary))) for e in entries]
        with self._lock:
            writer = self._get_writer()
            for entry, (title_tokens, body_tokens) in zip(entries, tokens, strict=True):
                if entry.id is None:
                    continue
                if entry.id <= self._high_water:
                    self._delete_id(writer, entry.id)
                self._high_water = max(self._high_water, entry.id)
                doc = tantivy.Document()
                doc.add_unsigned("id", entry.id)
                doc.add_text("title", title_tokens)
                doc.add_text("text", f"{title_tokens} {body_tokens}")
                for topic in entry.topics:
                    doc.add_text("topic", topic)
                doc.add_text("source", entry.source_id)
                published = entry_time(entry)
                doc.add_integer("published", published)
                doc.add_float("recency", recency(published))
                writer.add_document(doc)

    def _delete_id(self, writer: tantivy.IndexWriter, entry_id: int) -> None:
        # delete_documents_by_term builds an i64 term from a Python int, which never matches this
        # u64 field (checked on tantivy-py 0.27); a term query is typed by the schema.
        writer.delete_documents_by_query(tantivy.Query.term_query(self._schema, "id", entry_id))

    def commit(self, last_id: int) -> None:
        """Make adds/deletes durable and visible, then record ``last_id`` as the catch-up mark."""
        with self._lock:
            if self._writer is not None:
                self._writer.commit()  # the writer stays open: merges go on in its threads
            self._index.reload()
            self._source_counts = None
            self.last_indexed_id = max(self.last_indexed_id, last_id)
            self._write_meta()

    def delete(self, ids: Sequence[int]) -> None:
        """Queue deletions; they apply at the next ``commit``."""
        with self._lock:
            writer = self._get_writer()
            for entry_id in ids:
                self._delete_id(writer, entry_id)

    def clear(self) -> None:
        """Empty the index (committed) and reset the catch-up mark to 0."""
        with self._lock:
            writer = self._get_writer()
            writer.delete_all_documents()
            writer.commit()
            self._index.reload()
            self._source_counts = None
            self.last_indexed_id = self._high_water = 0
            self._write_meta()

    def close(self) -> None:
        """Uncommitted changes are dropped (the catch-up mark still points before them)."""
        with self._lock:
            if self._writer is not None:
                self._writer.rollback()
                self._writer.wait_merging_threads()
                self._writer = None

    def _max_id(self) -> int:
        searcher = self._index.searcher()
        if searcher.num_docs == 0:
            return 0
        result = searcher.search(tantivy.Query.all_query(), limit=1, count=False, order_by_field="id")
        return int(result.hits[0][0]) if result.hits else 0

    def doc_count(self) -> int:
        return int(self._index.searcher().num_docs)

    # -- query building -----------------------------------------------------------------------
    def _unit(self, field: str, unit: Unit) -> tantivy.Query:
        if len(unit.tokens) == 1:
            query = tantivy.Query.term_query(self._schema, field, unit.tokens[0])
        elif unit.ordered:
            query = tantivy.Query.phrase_query(self._schema, field, list(unit.tokens))
        else:
            query = tantivy.Query.boolean_query([(Occur.Must, tantivy.Query.term_query(self._schema, field, t))
                                                 for t in dict.fromkeys(unit.tokens)])
        if unit.parts:
            parts = (tantivy.Query.phrase_query(self._schema, field, list(unit.parts)) if len(unit.parts) > 1
                     else tantivy.Query.term_query(self._schema, field, unit.parts[0]))
            query = tantivy.Query.boolean_query([(Occur.Should, query), (Occur.Should, parts)])
        return query

    def _filters(self, searcher: tantivy.Searcher, req: SearchRequest) -> list[tuple[tantivy.Occur, tantivy.Query]]:
        """Filter clauses, scored 0 so they never change the ranking (a raw topic term scored by
        BM25 would favour entries with fewer topics)."""
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
        if req.topic is not None:
            clauses.append((Occur.Must, tantivy.Query.term_query(self._schema, "topic", req.topic)))
        if req.source_ids is not None:
            clauses.extend(self._source_filter(searcher, set(req.source_ids)))
        if req.since is not None or req.until is not None:
            clauses.append((Occur.Must, tantivy.Query.range_query(
                self._schema, "published", tantivy.FieldType.Integer, _epoch(req.since), _epoch(req.until))))
        return [(occur, q if occur == Occur.MustNot else tantivy.Query.const_score_query(q, 0.0))
                for occur, q in clauses]

    def _source_filter(self, searcher: tantivy.Searcher,
                       allowed: set[str]) -> list[tuple[tantivy.Occur, tantivy.Query]]:
        """"Any of these sources". A guild usually sees most sources: excluding the few others
        walks far fewer postings than a union of the allowed ones (30 of 40 sources at 1M
        entries: p99 41 → 33 ms)."""
        counts = self._source_counts
        if counts is None:
            counts = self._source_counts = dict(searcher.terms_with_prefix("source", ""))
        excluded = [s for s in counts if s not in allowed]
        if sum(counts[s] for s in excluded) < sum(counts.get(s, 0) for s in allowed):
            if not excluded:
                return []
            return [(Occur.MustNot, tantivy.Query.term_set_query(self._schema, "source", excluded))]
        return [(Occur.Must, tantivy.Query.term_set_query(self._schema, "source", sorted(allowed)))]

    def _text_parts(self, searcher: tantivy.Searcher, parsed: ParsedQuery, *,
                    any_word: bool) -> tuple[list[tuple[tantivy.Occur, tantivy.Query]], list[tantivy.Query], int]:
        """(clauses that select: units on ``text`` — title and summary together, one posting list
        per token — and exclusions; title queries whose matches add a boosted score; an estimate
        of how many entries match, from document frequencies)."""
        units = parsed.fallback_units() if any_word else parsed.must
        required = [self._unit("text", unit) for unit in units]
        in_title = [self._unit("title", unit) for unit in units]
        sizes = [self._unit_size(searcher, unit) for unit in units]
        if parsed.prefix is not None:
            found = searcher.terms_with_prefix("text", parsed.prefix.text, limit=PREFIX_TERMS)
            terms = [str(term) for term, _ in found]
            terms += [s for s in parsed.prefix.stems if s not in terms]
            required.append(self._any_term("text", terms))
            in_title.append(self._any_term("title", terms))
            sizes.append(sum(int(count) for _, count in found))
        if any_word and len(required) > 1:
            required = [tantivy.Query.boolean_query([(Occur.Should, q) for q in required])]
        clauses = [(Occur.Must, q) for q in required]
        clauses += [(Occur.MustNot, self._unit("text", unit)) for unit in parsed.must_not]
        estimate = (sum(sizes) if any_word else min(sizes)) if sizes else 0
        return clauses, in_title, estimate

    def _unit_size(self, searcher: tantivy.Searcher, unit: Unit) -> int:
        """At most how many entries match ``unit`` (its rarest token; or its parts' rarest)."""
        def rarest(tokens: Sequence[str]) -> int:
            return min(int(searcher.doc_freq("text", t)) for t in tokens)
        return max(rarest(unit.tokens), rarest(unit.parts)) if unit.parts else rarest(unit.tokens)

    def _any_term(self, field: str, terms: Sequence[str]) -> tantivy.Query:
        if not terms:
            return tantivy.Query.empty_query()
        return tantivy.Query.boolean_query([(Occur.Should, tantivy.Query.term_query(self._schema, field, t))
                                            for t in terms])

    # -- searching ----------------------------------------------------------------------------
    def search(self, req: SearchRequest, *, mode: MatchMode = "auto") -> SearchPage:
        """BM25 over title and summary plus 1.5 × BM25 of the title, ties newest first.

        ``mode`` "auto": every word required, any word as a fallback when that finds nothing
        ("all"/"any" force one; for the relevance suite). ``total`` is the exact match count."""
        if req.source_ids is not None and not req.source_ids:
            return SearchPage(hits=(), total=0)
        parsed = parse_query(req.text)
        searcher = self._index.searcher()
        filters = self._filters(searcher, req)
        if parsed.empty and not filters:
            if parsed.must_not:
                raise QueryError("add a word to search for, not only words to leave out")
            raise QueryError("type some words to search for (or pick a topic)")
        limit = max(1, min(req.limit, MAX_LIMIT))
        offset = max(0, min(req.offset, MAX_OFFSET))
        if parsed.empty:  # filters only: the newest matching entries
            exclusions = self._text_parts(searcher, parsed, any_word=False)[0]
            query = tantivy.Query.boolean_query([(Occur.Must, tantivy.Query.all_query()), *filters, *exclusions])
            result = searcher.search(query, limit=limit, offset=offset, count=True, order_by_field="published")
            ids = searcher.fast_field_values("id", [address for _, address in result.hits])
            return SearchPage(hits=tuple(SearchHit(int(i or 0), 0.0) for i in ids), total=_count(result))
        # any-word differs from every-word with several units, or when stopwords were dropped
        can_widen = len(parsed.must) + (parsed.prefix is not None) > 1 or parsed.fallback_units() != parsed.must
        window = offset + limit + TIE_WINDOW
        for any_word in {"auto": (False, True), "all": (False,), "any": (True,)}[mode]:
            clauses, in_title, estimate = self._text_parts(searcher, parsed, any_word=any_word)
            if estimate <= BROAD:  # title boost inside the query: exact
                boosts = [(Occur.Should, tantivy.Query.boost_query(q, TITLE_BOOST)) for q in in_title]
                query, depth = tantivy.Query.boolean_query([*clauses, *boosts, *filters]), window
            else:  # title boost added to the best RERANK by the rest: see _rerank
                query, depth = tantivy.Query.boolean_query([*clauses, *filters]), window + RERANK
            result = searcher.search(query, limit=depth, count=True)
            if _ties_past(result.hits, offset + limit, depth):
                result = searcher.search(query, limit=depth, count=True, weight_by_field="recency")
            hits = (self._rerank(searcher, result.hits, in_title) if estimate > BROAD
                    else [(float(score), address) for score, address in result.hits])
            if hits or not can_widen:
                break
        addresses = [address for _, address in hits]
        ids = searcher.fast_field_values("id", addresses)
        times = searcher.fast_field_values("published", addresses)
        scored = sorted(zip((score for score, _ in hits), ids, times, strict=True),
                        key=lambda hit: (-float(f"{hit[0]:.5g}"), -int(hit[2] or 0)))  # equal: newer first
        page = tuple(SearchHit(int(entry_id or 0), score) for score, entry_id, _ in scored[offset:offset + limit])
        return SearchPage(hits=page, total=_count(result), terms=parsed.highlight)

    def _rerank(self, searcher: tantivy.Searcher, hits: Sequence[tuple[float, tantivy.DocAddress]],
                in_title: Sequence[tantivy.Query]) -> list[tuple[float, tantivy.DocAddress]]:
        """Add the title boost to the best hits of a broad query.

        Seeking the title postings for each of hundreds of thousands of candidates doubles the
        time of a query for common words ("大模型 model" at 1M entries: 22 → 37 ms); scoring the
        title of the best few hundred by a second, id-restricted query costs under 1 ms. Titles
        also count in ``text``, so an entry that the boost would lift to the first page is
        almost always among them.
        """
        if not hits or not in_title:
            return [(float(score), address) for score, address in hits]
        addresses = [address for _, address in hits]
        ids = [int(i or 0) for i in searcher.fast_field_values("id", addresses)]
        # a disjunction of id terms: ~0.6 ms for 220 ids at 1M entries, term_set_query takes ~3.5 ms
        restrict = tantivy.Query.const_score_query(tantivy.Query.boolean_query(
            [(Occur.Should, tantivy.Query.term_query(self._schema, "id", i)) for i in ids]), 0.0)
        boosts = [(Occur.Should, tantivy.Query.boost_query(q, TITLE_BOOST)) for q in in_title]
        titled = searcher.search(tantivy.Query.boolean_query([(Occur.Must, restrict), *boosts]),
                                 limit=len(ids), count=False)
        bonus = dict(zip(searcher.fast_field_values("id", [a for _, a in titled.hits]),
                         (float(score) for score, _ in titled.hits), strict=True))
        return [(float(score) + bonus.get(entry_id, 0.0), address)
                for (score, address), entry_id in zip(hits, ids, strict=True)]


def _same(a: float, b: float) -> bool:
    return f"{a:.5g}" == f"{b:.5g}"


def _ties_past(hits: Sequence[tuple[float, tantivy.DocAddress]], page_end: int, depth: int) -> bool:
    """Whether entries tied with the page's last hit may lie beyond the hits fetched: then which
    of them are shown is tantivy's pick, not the newest, and the search is redone with the
    recency weight (it costs ~10 ns per match, so only when needed)."""
    if len(hits) < depth:  # every match was fetched
        return False
    return _same(float(hits[min(page_end, len(hits)) - 1][0]), float(hits[-1][0]))


def _count(result: tantivy.SearchResult) -> int:
    """The exact match count (the stub omits ``SearchResult.count``)."""
    return int(getattr(result, "count", None) or 0)
