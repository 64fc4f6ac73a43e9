"""The search index: tantivy (BM25, block-max WAND) over our own tokens, derived from the database.

Why tantivy: at a million mixed-language entries SQLite FTS5's bm25() scores every match of a
frequent term (p99 ≈ 400 ms measured here) and PostgreSQL's ts_rank is slower still; tantivy's
block-max WAND answers top-10 in single-digit milliseconds. Text is tokenized by
``bot.search.tokenize`` and handed to tantivy joined by spaces (its ``whitespace`` tokenizer), so
index and query see exactly the same tokens.

The database stays the source of truth: the highest entry id in the index is the catch-up mark,
adds are upserts, and a tokenizer or schema change empties the index so it is rebuilt.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import tantivy

from bot.errors import QueryError
from bot.models import Entry, SearchHit, SearchPage, SearchRequest
from bot.search.query import ParsedQuery, Unit, parse_query
from bot.search.tokenize import TOKENIZER_VERSION, tokenize

SCHEMA_VERSION = 1
TITLE_BOOST = 2.5
MAX_RESULTS = 1000
_META = "digestbot-index.json"


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", stored=True, indexed=True, fast=True)
    builder.add_text_field("title", stored=False, tokenizer_name="whitespace", index_option="position")
    builder.add_text_field("body", stored=False, tokenizer_name="whitespace", index_option="position")
    builder.add_text_field("topic", stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("source", stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("published", stored=True, indexed=True, fast=True)
    return builder.build()


@dataclass(frozen=True)
class _Meta:
    tokenizer: int
    schema: int

    @classmethod
    def current(cls) -> _Meta:
        return cls(TOKENIZER_VERSION, SCHEMA_VERSION)


def entry_time(entry: Entry) -> int:
    when = entry.published or entry.first_seen
    return int(when.timestamp()) if when else 0


class SearchIndex:
    """Use ``SearchIndex.open(path)``; ``path=None`` keeps the index in memory (tests)."""

    def __init__(self, path: Path | None, index: tantivy.Index, schema: tantivy.Schema, *,
                 rebuilt: bool) -> None:
        self.path = path
        self._index = index
        self._schema = schema
        self._lock = threading.Lock()
        self._writer: Any = None
        self.needs_rebuild = rebuilt
        self.last_indexed_id = self._max_id()

    @classmethod
    def open(cls, path: Path | None) -> SearchIndex:
        schema = _schema()
        if path is None:
            return cls(None, tantivy.Index(schema), schema, rebuilt=False)
        meta_file = path / _META
        rebuilt = False
        if path.exists():
            try:
                meta = _Meta(**json.loads(meta_file.read_text()))
            except (OSError, ValueError, TypeError):
                meta = None
            if meta != _Meta.current():
                shutil.rmtree(path)  # derived data: rebuilt from the database by the caller
                rebuilt = True
        path.mkdir(parents=True, exist_ok=True)
        index = tantivy.Index(schema, path=str(path), reuse=True)
        tmp = meta_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(_Meta.current().__dict__))
        tmp.replace(meta_file)
        return cls(path, index, schema, rebuilt=rebuilt)

    # -- writing ------------------------------------------------------------------------------
    def _get_writer(self) -> Any:
        if self._writer is None:
            self._writer = self._index.writer(heap_size=128_000_000, num_threads=2)
        return self._writer

    def add(self, entries: Sequence[Entry], tokens: Sequence[tuple[str, str]] | None = None) -> None:
        """Upsert: an entry indexed before (id ≤ the mark) is replaced, never duplicated.
        ``tokens`` (title, body), when given, were made by ``tokenize`` elsewhere (a worker process)."""
        if tokens is None:
            tokens = [(" ".join(tokenize(e.title)), " ".join(tokenize(e.summary))) for e in entries]
        with self._lock:
            writer = self._get_writer()
            for entry, (title_tokens, body_tokens) in zip(entries, tokens, strict=True):
                if entry.id is None:
                    continue
                if entry.id <= self.last_indexed_id:
                    self._delete_id(writer, entry.id)
                doc = tantivy.Document()
                doc.add_unsigned("id", entry.id)
                doc.add_text("title", title_tokens)
                doc.add_text("body", body_tokens)
                for topic in entry.topics:
                    doc.add_text("topic", topic)
                doc.add_text("source", entry.source_id)
                doc.add_integer("published", entry_time(entry))
                writer.add_document(doc)

    def _delete_id(self, writer: Any, entry_id: int) -> None:
        # delete_documents_by_term builds an i64 term from a Python int, which never matches this
        # u64 field (found by test_upsert_never_duplicates); a term query is typed by the schema.
        writer.delete_documents_by_query(tantivy.Query.term_query(self._schema, "id", entry_id))

    def commit(self, last_id: int) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.commit()  # the writer stays open: merges go on in its threads
            self._index.reload()
            self.last_indexed_id = max(self.last_indexed_id, last_id, self._max_id())

    def delete(self, ids: Sequence[int]) -> None:
        with self._lock:
            writer = self._get_writer()
            for entry_id in ids:
                self._delete_id(writer, entry_id)

    def clear(self) -> None:
        with self._lock:
            writer = self._get_writer()
            writer.delete_all_documents()
            writer.commit()
            self._index.reload()
            self.last_indexed_id = 0

    def close(self) -> None:
        """Uncommitted additions are dropped (the catch-up mark still points before them)."""
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

    # -- reading ------------------------------------------------------------------------------
    def _unit(self, field: str, unit: Unit) -> tantivy.Query:
        if len(unit.tokens) == 1:
            return tantivy.Query.term_query(self._schema, field, unit.tokens[0])
        if unit.ordered:
            return tantivy.Query.phrase_query(self._schema, field, list(unit.tokens))
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, tantivy.Query.term_query(self._schema, field, t))
                                            for t in dict.fromkeys(unit.tokens)])

    def _either_field(self, unit: Unit) -> tantivy.Query:
        return tantivy.Query.boolean_query([
            (tantivy.Occur.Should, tantivy.Query.boost_query(self._unit("title", unit), TITLE_BOOST)),
            (tantivy.Occur.Should, self._unit("body", unit)),
        ])

    def _prefix(self, prefix: str) -> tantivy.Query:
        pattern = prefix + ".*"
        return tantivy.Query.boolean_query([
            (tantivy.Occur.Should, tantivy.Query.boost_query(
                tantivy.Query.regex_query(self._schema, "title", pattern), TITLE_BOOST)),
            (tantivy.Occur.Should, tantivy.Query.regex_query(self._schema, "body", pattern)),
        ])

    def _filters(self, req: SearchRequest) -> list[tuple[Any, tantivy.Query]]:
        clauses: list[tuple[Any, tantivy.Query]] = []
        if req.topic is not None:
            clauses.append((tantivy.Occur.Must, tantivy.Query.term_query(self._schema, "topic", req.topic)))
        if req.source_ids is not None:
            clauses.append((tantivy.Occur.Must, tantivy.Query.term_set_query(
                self._schema, "source", list(req.source_ids))))
        if req.since is not None or req.until is not None:
            clauses.append((tantivy.Occur.Must, tantivy.Query.range_query(
                self._schema, "published", tantivy.FieldType.Integer,
                _epoch(req.since), _epoch(req.until))))
        return clauses

    def _text_query(self, parsed: ParsedQuery, *, any_word: bool) -> list[tuple[Any, tantivy.Query]]:
        occur = tantivy.Occur.Should if any_word else tantivy.Occur.Must
        clauses = [(occur, self._either_field(unit)) for unit in parsed.must]
        if parsed.prefix is not None:
            clauses.append((occur, self._prefix(parsed.prefix)))
        if any_word and clauses:
            clauses = [(tantivy.Occur.Must, tantivy.Query.boolean_query(clauses))]
        for unit in parsed.must_not:
            clauses.append((tantivy.Occur.MustNot, self._unit("title", unit)))
            clauses.append((tantivy.Occur.MustNot, self._unit("body", unit)))
        return clauses

    def search(self, req: SearchRequest) -> SearchPage:
        if req.source_ids is not None and not req.source_ids:
            return SearchPage(hits=(), total=0)
        parsed = parse_query(req.text)
        filters = self._filters(req)
        if parsed.empty and not filters:
            raise QueryError("type some words to search for (or pick a topic)")
        searcher = self._index.searcher()
        limit = max(1, min(req.limit, 100))
        offset = max(0, min(req.offset, MAX_RESULTS))
        if parsed.empty:
            clauses = [*filters, *self._text_query(parsed, any_word=False)]
            query = tantivy.Query.boolean_query([(tantivy.Occur.Must, tantivy.Query.all_query()), *clauses])
            result = searcher.search(query, limit=limit, offset=offset, count=True, order_by_field="published")
            hits = tuple(SearchHit(self._id(searcher, addr), 0.0) for _, addr in result.hits)
            return SearchPage(hits=hits, total=_count(result), terms=())
        for any_word in (False, True):
            query = tantivy.Query.boolean_query([*self._text_query(parsed, any_word=any_word), *filters])
            result = searcher.search(query, limit=offset + limit + 10, count=True)
            if result.hits or len(parsed.must) + (parsed.prefix is not None) <= 1:
                break
        scored = [(float(score), *self._id_and_time(searcher, addr)) for score, addr in result.hits]
        scored.sort(key=lambda item: (-round(item[0], 5), -item[2]))  # equal scores: newer first
        hits = tuple(SearchHit(entry_id, score) for score, entry_id, _ in scored[offset:offset + limit])
        return SearchPage(hits=hits, total=_count(result), terms=parsed.highlight)

    @staticmethod
    def _id(searcher: tantivy.Searcher, addr: Any) -> int:
        return int(searcher.doc(addr)["id"][0])

    @staticmethod
    def _id_and_time(searcher: tantivy.Searcher, addr: Any) -> tuple[int, int]:
        doc = searcher.doc(addr)
        return int(doc["id"][0]), int(doc["published"][0])

    def doc_count(self) -> int:
        return int(self._index.searcher().num_docs)


def _count(result: tantivy.SearchResult) -> int:
    return int(getattr(result, "count", None) or 0)


def _epoch(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())
