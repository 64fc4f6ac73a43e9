"""The search index: tantivy (BM25) over our own tokens, derived from the database.

Why tantivy: at a million mixed-language entries SQLite FTS5's bm25() scores every match of a
frequent term (p99 ≈ 400 ms measured here); tantivy answers top-10 in milliseconds. Text is
tokenized by ``bot.search.tokenize`` and handed to tantivy joined by spaces (its built-in
``whitespace`` tokenizer, which neither lowercases nor splits further), so index and query see
exactly the same tokens.

Ranking: BM25 over ``text`` (title and summary tokens) plus 1.5 × BM25 over ``title``; equal scores
newest first. Filters score 0. A broad query (> ``BROAD`` estimated matches) picks its best
``RERANK`` + page candidates by the BM25 of its rarest token alone (the other tokens as 0-scored
filters: the same matches and exact count) and scores only those exactly (``_rescore``): a third
of the time at 1M entries. Answers are cached per committed state (``CACHE_SIZE`` pages): a
popular query, or the next page of one, costs nothing until the next commit.

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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Literal

import tantivy

from bot.errors import QueryError
from bot.models import Entry, SearchHit, SearchPage, SearchRequest
from bot.search.query import ParsedQuery, Unit, parse_query
from bot.search.tokenize import TOKENIZER_VERSION, tokenize_joined

log = logging.getLogger(__name__)

SCHEMA_VERSION = 4
TITLE_BOOST = 1.5  # on top of the title's words also counting in ``text``
MAX_LIMIT = 100
MAX_OFFSET = 1000  # deeper pages are not useful in a chat; bounds the top-k heap
TIE_WINDOW = 20  # extra hits fetched so equal scores just past the page can be re-ordered by recency
PREFIX_TERMS = 64  # a prefix expands to at most this many index terms (the most frequent)
BROAD = 20_000  # estimated matches above which candidates are picked cheaply, then scored (_rescore)
RERANK = 200  # extra candidates of a broad query that get their exact score
CHECK = 10_000  # plain units this selective are tried alone first (_surely_empty)
TITLE_FIRST = 60_000  # a broad query with at most this many entries having every word in their title
CACHE_SIZE = 256  # pages kept per committed state
WRITER_HEAP = 256_000_000
BULK_ADD = 1000
"""An add of at least this many entries (first polls of many feeds, a rebuild) goes to a writer with
two indexing threads when there are two cores: its commit takes about half the time (the 6,349
corpus entries: 0.23 -> 0.13 s). Smaller adds go to a one-thread writer: two threads cost about
twice the CPU per small commit (260 commits of 5 entries: 5.4 vs 11.9 s) and leave more segments."""
BULK_MAX_DOCS = 100_000
"""Bulk adds use two threads only while the index is smaller than this (a new bot's first polls):
a large rebuild keeps one thread, whose fewer segments keep queries faster (1M entries: 3 segments
instead of 8, p99 3-10% lower, for a build of 72 s instead of 54 s)."""
BULK_THREADS = min(2, os.cpu_count() or 1)
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
        self._writer_threads = 0
        self._dirty = False  # adds or deletes not committed yet: the writer must not be swapped
        self._source_counts: dict[str, int] | None = None  # per committed state, for _source_filter
        self._generation = 0  # bumped after each reload: keys the page cache
        self._cache: OrderedDict[tuple[object, ...], SearchPage] = OrderedDict()
        self._cache_lock = threading.Lock()
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
    def _get_writer(self, *, bulk: bool = False) -> tantivy.IndexWriter:
        """The writer, with ``BULK_THREADS`` indexing threads for a bulk add and one otherwise. It is
        swapped only at a commit boundary (dropping a writer drops what it has not committed)."""
        threads = BULK_THREADS if bulk else 1
        if self._writer is not None and self._writer_threads != threads and not self._dirty:
            self._writer = None  # releases the index lock; merges under way are abandoned, not lost
        if self._writer is None:
            self._writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=threads)
            self._writer_threads = threads
        return self._writer

    def add(self, entries: Sequence[Entry], tokens: Sequence[tuple[str, str]] | None = None) -> None:
        """Upsert entries (their ``id`` set; others are skipped). ``tokens`` (title, body), when
        given, were made by ``tokenize`` elsewhere (a worker process) and joined with spaces."""
        if tokens is None:
            tokens = [(tokenize_joined(e.title), tokenize_joined(e.summary)) for e in entries]
        with self._lock:
            writer = self._get_writer(bulk=len(entries) >= BULK_ADD and self.doc_count() < BULK_MAX_DOCS)
            for entry, (title_tokens, body_tokens) in zip(entries, tokens, strict=True):
                if entry.id is None:
                    continue
                self._dirty = True
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
            self._dirty = False
            self._index.reload()
            self._source_counts = None
            self._forget()
            self.last_indexed_id = max(self.last_indexed_id, last_id)
            self._write_meta()

    def delete(self, ids: Sequence[int]) -> None:
        """Queue deletions; they apply at the next ``commit``."""
        with self._lock:
            writer = self._get_writer()
            for entry_id in ids:
                self._delete_id(writer, entry_id)
                self._dirty = True

    def clear(self) -> None:
        """Empty the index (committed) and reset the catch-up mark to 0."""
        with self._lock:
            writer = self._get_writer()
            writer.delete_all_documents()
            writer.commit()
            self._dirty = False
            self._index.reload()
            self._source_counts = None
            self._forget()
            self.last_indexed_id = self._high_water = 0
            self._write_meta()

    def _forget(self) -> None:
        """After a reload: new searches key their pages by a new generation (bumped only after the
        reload, so a page from the old state is never stored under the new key)."""
        with self._cache_lock:
            self._generation += 1
            self._cache.clear()

    def close(self) -> None:
        """Uncommitted changes are dropped (the catch-up mark still points before them)."""
        with self._lock:
            if self._writer is not None:
                self._writer.rollback()
                self._writer.wait_merging_threads()
                self._writer = None
                self._dirty = False

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
        alternatives = self._alternatives(field, unit)
        if len(alternatives) == 1:
            return alternatives[0]
        return tantivy.Query.boolean_query([(Occur.Should, q) for q in alternatives])

    def _alternatives(self, field: str, unit: Unit) -> list[tantivy.Query]:
        """What matches ``unit``: its tokens, and its parts when it has them (a unit's score is
        the sum of its alternatives' scores)."""
        if len(unit.tokens) == 1:
            query = tantivy.Query.term_query(self._schema, field, unit.tokens[0])
        elif unit.ordered:
            query = tantivy.Query.phrase_query(self._schema, field, list(unit.tokens))
        else:
            query = tantivy.Query.boolean_query([(Occur.Must, tantivy.Query.term_query(self._schema, field, t))
                                                 for t in dict.fromkeys(unit.tokens)])
        if not unit.parts:
            return [query]
        parts = (tantivy.Query.phrase_query(self._schema, field, list(unit.parts)) if len(unit.parts) > 1
                 else tantivy.Query.term_query(self._schema, field, unit.parts[0]))
        return [query, parts]

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

    def _text_parts(self, searcher: tantivy.Searcher, parsed: ParsedQuery, *, any_word: bool) -> _TextPlan:
        """The text side of a query: units on ``text`` (title and summary together, one posting
        list per token) and exclusions, title queries whose matches add a boosted score, an
        estimate of how many entries match (from document frequencies) and, for every-word
        queries, a cheaper plan selecting the same entries (``_TextPlan.proxy``)."""
        units = parsed.fallback_units() if any_word else parsed.must
        required = [self._unit("text", unit) for unit in units]
        in_title = [self._unit("title", unit) for unit in units]
        text_alternatives = [self._alternatives("text", unit) for unit in units]
        title_alternatives = [self._alternatives("title", unit) for unit in units]
        freqs = [{t: int(searcher.doc_freq("text", t)) for t in (*unit.tokens, *unit.parts)} for unit in units]
        sizes = [_unit_size(unit, freq) for unit, freq in zip(units, freqs, strict=True)]
        if parsed.prefix is not None:
            found = searcher.terms_with_prefix("text", parsed.prefix.text, limit=PREFIX_TERMS)
            terms = [str(term) for term, _ in found]
            terms += [s for s in parsed.prefix.stems if s not in terms]
            required.append(self._any_term("text", terms))
            in_title.append(self._any_term("title", terms))
            text_alternatives.append([required[-1]])
            title_alternatives.append([in_title[-1]])
            sizes.append(sum(int(count) for _, count in found))
        exclusions = [(Occur.MustNot, self._unit("text", unit)) for unit in parsed.must_not]
        unions = [i for i in range(len(required)) if i == len(units) or units[i].parts]
        if any_word and len(required) > 1:
            selecting = [tantivy.Query.boolean_query([(Occur.Should, q) for q in required])]
        elif unions and len(required) - len(unions) > 1:
            # the plain units as one clause: a union is then seeked only where they all match
            # ("quanerzalin quanalic int8" at 1M entries: 7.9 → 0.9 ms)
            selecting = [tantivy.Query.boolean_query([(Occur.Must, q) for i, q in enumerate(required)
                                                      if i not in unions]), *(required[i] for i in unions)]
        else:
            selecting = required
        clauses = [(Occur.Must, q) for q in selecting] + exclusions
        estimate = (sum(sizes) if any_word else min(sizes)) if sizes else 0
        proxy = check = None
        if not any_word:
            proxy = self._proxy(units, freqs, required, exclusions)
            plain = [i for i, unit in enumerate(units) if not unit.parts]
            if len(plain) < len(required) and plain and min(sizes[i] for i in plain) <= CHECK:
                check = [required[i] for i in plain]
        in_titles = 0
        if not any_word and parsed.prefix is None and units and not any(unit.parts for unit in units):
            in_titles = min(_unit_size(unit, {t: int(searcher.doc_freq("title", t))
                                              for t in (*unit.tokens, *unit.parts)}) for unit in units)
        return _TextPlan(clauses, text_alternatives, title_alternatives, estimate, proxy, check, in_titles)

    def _proxy(self, units: Sequence[Unit], freqs: Sequence[dict[str, int]], required: Sequence[tantivy.Query],
               exclusions: Sequence[tuple[tantivy.Occur, tantivy.Query]]
               ) -> list[tuple[tantivy.Occur, tantivy.Query]] | None:
        """The every-word clauses with only the rarest plain token scored, the rest as 0-scored
        filters: the same entries, ranked by that token alone, for picking candidates of a broad
        query (``_rescore`` then scores them exactly). Scoring every token of every match is
        half the cost of a broad conjunction ("多头注意力" at 1M entries: 16.7 → 12.0 ms)."""
        plain = [(freq[t], i, t) for i, (unit, freq) in enumerate(zip(units, freqs, strict=True))
                 if not unit.ordered and not unit.parts for t in unit.tokens]
        if not plain:
            return None
        _, chosen, token = min(plain)
        rest = [(Occur.Must, q) for i, q in enumerate(required) if i != chosen]
        rest += [(Occur.Must, tantivy.Query.term_query(self._schema, "text", t))
                 for t in dict.fromkeys(units[chosen].tokens) if t != token]
        clauses = [(Occur.Must, tantivy.Query.term_query(self._schema, "text", token))]
        if rest:  # one 0-scored filter: cheaper than one per clause (10.5 vs 14.3 ms for three)
            clauses.append((Occur.Must, _filter(tantivy.Query.boolean_query(rest))))
        return clauses + list(exclusions)

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
        limit = max(1, min(req.limit, MAX_LIMIT))
        offset = max(0, min(req.offset, MAX_OFFSET))
        key = (self._generation, mode, BROAD, RERANK, TIE_WINDOW, PREFIX_TERMS, TITLE_BOOST, parsed.must,
               parsed.must_not, parsed.prefix, req.topic,
               None if req.source_ids is None else frozenset(req.source_ids), req.since, req.until, limit, offset)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None:
            return cached if not cached.terms else replace(cached, terms=parsed.highlight)
        page = self._search(parsed, req, mode, limit, offset)
        with self._cache_lock:
            self._cache[key] = page
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return page

    def _search(self, parsed: ParsedQuery, req: SearchRequest, mode: MatchMode, limit: int,
                offset: int) -> SearchPage:
        searcher = self._index.searcher()
        filters = self._filters(searcher, req)
        if parsed.empty and not filters:
            if parsed.must_not:
                raise QueryError("add a word to search for, not only words to leave out")
            raise QueryError("type some words to search for (or pick a topic)")
        if parsed.empty:  # filters only: the newest matching entries
            exclusions = self._text_parts(searcher, parsed, any_word=False).clauses
            query = tantivy.Query.boolean_query([(Occur.Must, tantivy.Query.all_query()), *filters, *exclusions])
            result = searcher.search(query, limit=limit, offset=offset, count=True, order_by_field="published")
            ids = searcher.fast_field_values("id", [address for _, address in result.hits])
            return SearchPage(hits=tuple(SearchHit(int(i or 0), 0.0) for i in ids), total=_count(result))
        # any-word differs from every-word with several units, or when stopwords were dropped
        can_widen = len(parsed.must) + (parsed.prefix is not None) > 1 or parsed.fallback_units() != parsed.must
        window = offset + limit + TIE_WINDOW
        hits: list[tuple[float, tantivy.DocAddress]] = []
        total = 0
        for any_word in {"auto": (False, True), "all": (False,), "any": (True,)}[mode]:
            plan = self._text_parts(searcher, parsed, any_word=any_word)
            if mode == "auto" and not any_word and can_widen and self._surely_empty(searcher, plan):
                continue  # the any-word pass answers; skip a costly every-word pass that finds nothing
            broad = plan.estimate > BROAD
            if broad and 0 < plan.in_titles <= TITLE_FIRST:
                found = self._title_first(searcher, plan, filters, window, offset + limit)
                if found is not None:
                    hits, total = found
                    break
            if not broad:  # title boost inside the query: exact
                boosts = [(Occur.Should, tantivy.Query.boost_query(_any(q), TITLE_BOOST)) for q in plan.title]
                query, depth = tantivy.Query.boolean_query([*plan.clauses, *boosts, *filters]), window
            else:  # candidates picked by a cheaper score, then scored exactly: see _rescore
                query = tantivy.Query.boolean_query([*(plan.proxy or plan.clauses), *filters])
                depth = window + RERANK
            result = searcher.search(query, limit=depth, count=True)
            # (a proxy ranking's ties at the cut are left to tantivy's order: newest first per segment)
            if (not broad or plan.proxy is None) and _ties_past(result.hits, offset + limit, depth):
                result = searcher.search(query, limit=depth, count=True, weight_by_field="recency")
            hits = (self._rescore(searcher, result.hits, plan) if broad
                    else [(float(score), address) for score, address in result.hits])
            total = _count(result)
            if hits or not can_widen:
                break
        addresses = [address for _, address in hits]
        ids = searcher.fast_field_values("id", addresses)
        times = searcher.fast_field_values("published", addresses)
        scored = sorted(zip((score for score, _ in hits), ids, times, strict=True),
                        key=lambda hit: (-float(f"{hit[0]:.5g}"), -int(hit[2] or 0)))  # equal: newer first
        page = tuple(SearchHit(int(entry_id or 0), score) for score, entry_id, _ in scored[offset:offset + limit])
        return SearchPage(hits=page, total=total, terms=parsed.highlight)

    def _title_first(self, searcher: tantivy.Searcher, plan: _TextPlan,
                     filters: list[tuple[tantivy.Occur, tantivy.Query]], window: int,
                     page_end: int) -> tuple[list[tuple[float, tantivy.DocAddress]], int] | None:
        """A broad every-word query from the entries with every word in their title, scored exactly;
        None when fewer than ``window`` have. The total comes from a count that scores nothing."""
        titled = [(Occur.Must, tantivy.Query.boost_query(_any(q), TITLE_BOOST)) for q in plan.title]
        query = tantivy.Query.boolean_query([*plan.clauses, *titled, *filters])
        result = searcher.search(query, limit=window, count=False)
        if len(result.hits) < window:
            return None
        if _ties_past(result.hits, page_end, window):
            result = searcher.search(query, limit=window, count=False, weight_by_field="recency")
        counting = [(Occur.Must, _filter(tantivy.Query.boolean_query(plan.clauses))), *filters]
        total = _count(searcher.search(tantivy.Query.boolean_query(counting), limit=1, count=True))
        return [(float(score), address) for score, address in result.hits], total

    def _surely_empty(self, searcher: tantivy.Searcher, plan: _TextPlan) -> bool:
        """Whether the selective plain units of an every-word plan already match nothing.

        A unit with alternatives ("int4": the token, or "int 4" as a phrase) is a union, and
        tantivy seeks a union by scoring a window of 4,096 documents around each target: with a
        rare word beside it ("int4 flatinemor proflaionra") a pass that finds nothing still
        costs ~8 ms at 1M entries. The plain units alone answer "nothing" in microseconds."""
        if plan.check is None:
            return False
        query = tantivy.Query.boolean_query([(Occur.Must, _filter(q)) for q in plan.check])
        return not searcher.search(query, limit=1, count=False).hits

    def _rescore(self, searcher: tantivy.Searcher, hits: Sequence[tuple[float, tantivy.DocAddress]],
                 plan: _TextPlan) -> list[tuple[float, tantivy.DocAddress]]:
        """Exact scores for the candidates of a broad query: text (when they were picked by the
        proxy) and the title boost, each by a small query restricted to their ids.

        Scoring hundreds of thousands of matches in full, with a title clause for each, costs
        more than the search itself ("大模型 model" at 1M entries: 21 ms + 5 ms); the candidates'
        scores take ~0.5 ms per query. Titles also count in ``text``, so an entry that the boost
        would lift to the first page is almost always among them.
        """
        if not hits:
            return []
        addresses = [address for _, address in hits]
        ids = [int(i or 0) for i in searcher.fast_field_values("id", addresses)]
        # a disjunction of id terms: ~0.4 ms for 230 ids at 1M entries, term_set_query takes ~3.5 ms
        restrict = (Occur.Must, _filter(tantivy.Query.boolean_query(
            [(Occur.Should, tantivy.Query.term_query(self._schema, "id", i)) for i in ids])))
        # Each alternative of a unit gets its own query: tantivy seeks a union by scoring a window
        # of 4,096 documents around each target ("int4" or "int 4": 6 ms for 230 ids, 0.5 ms apart).
        titles = [tantivy.Query.boost_query(q, TITLE_BOOST) for alternatives in plan.title for q in alternatives]
        queries: list[list[tuple[tantivy.Occur, tantivy.Query]]] = []
        if plan.proxy is None:  # the text scores are exact already
            scores = dict(zip(ids, (float(score) for score, _ in hits), strict=True))
        else:  # every candidate matches every unit; one title query rides along (a single Should)
            scores = dict.fromkeys(ids, 0.0)
            single = [(Occur.Must, alternatives[0]) for alternatives in plan.text if len(alternatives) == 1]
            if single:
                queries.append([*single, *((Occur.Should, q) for q in titles[:1])])
                titles = titles[1:]
            queries += [[(Occur.Must, q)] for alternatives in plan.text if len(alternatives) > 1 for q in alternatives]
        queries += [[(Occur.Must, q)] for q in titles]
        for clauses in queries:
            self._add_scores(searcher, scores, [restrict, *clauses])
        return [(scores[entry_id], address) for entry_id, address in zip(ids, addresses, strict=True)]

    def _add_scores(self, searcher: tantivy.Searcher, scores: dict[int, float],
                    clauses: list[tuple[tantivy.Occur, tantivy.Query]]) -> None:
        result = searcher.search(tantivy.Query.boolean_query(clauses), limit=len(scores), count=False)
        found = searcher.fast_field_values("id", [address for _, address in result.hits])
        for entry_id, (score, _) in zip(found, result.hits, strict=True):
            scores[int(entry_id or 0)] += float(score)


@dataclass(frozen=True, slots=True)
class _TextPlan:
    clauses: list[tuple[tantivy.Occur, tantivy.Query]]  # select: units (every or any) and exclusions
    text: list[list[tantivy.Query]]  # per unit (and the prefix): its alternatives on ``text``
    title: list[list[tantivy.Query]]  # the same on ``title``: their scores × TITLE_BOOST are added
    estimate: int  # at most how many entries match, from document frequencies
    proxy: list[tuple[tantivy.Occur, tantivy.Query]] | None = None  # see SearchIndex._proxy
    check: list[tantivy.Query] | None = None  # plain units to try first (see _surely_empty)
    in_titles: int = 0  # at most how many entries have every unit in their title; 0: not known


def _unit_size(unit: Unit, freq: dict[str, int]) -> int:
    """At most how many entries match ``unit`` (its rarest token; or its parts' rarest)."""
    rarest = min(freq[t] for t in unit.tokens)
    return max(rarest, min(freq[t] for t in unit.parts)) if unit.parts else rarest


def _any(queries: list[tantivy.Query]) -> tantivy.Query:
    return queries[0] if len(queries) == 1 else tantivy.Query.boolean_query([(Occur.Should, q) for q in queries])


def _filter(query: tantivy.Query) -> tantivy.Query:
    """``query`` as a filter scored 0: it selects, and costs no scoring."""
    return tantivy.Query.const_score_query(query, 0.0)


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
