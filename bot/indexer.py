"""Keeps the derived search index caught up with the database, by entry id.

The database is the source of truth. The index remembers the highest entry id it committed; on
start (and whenever woken) everything after it is fed again. Adds are upserts, so a crash between
an index commit and its bookkeeping never duplicates anything.

The poller hands over what it just stored, already tokenized (``offer``): catching up then takes
those from memory and reads from the database only what was not handed over (a restart, a
tokenizing failure, entries stored by something else).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Sequence

from bot.config import Config
from bot.ingest import IngestPool
from bot.models import Entry
from bot.search.index import SearchIndex
from bot.store.sqlite import SQLiteStorage
from bot.topics import MATCHING_VERSION, TopicMatcher

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
Tokens = tuple[str, str]
READY_LIMIT = 10_000
"""Handed-over entries kept waiting for the index at most; past it, offers are dropped (and read
back from the database when their turn comes)."""


class Indexer:
    def __init__(self, storage: SQLiteStorage, index: SearchIndex, *, batch: int = 5000,
                 pool: IngestPool | None = None) -> None:
        self.storage = storage
        self.index = index
        self.pool = pool or IngestPool(0, {})  # tokenizing in a thread
        self.batch = batch
        self.wake = asyncio.Event()
        self._ready: dict[int, tuple[Entry, Tokens]] = {}

    def offer(self, entries: Sequence[Entry], tokens: Sequence[Tokens]) -> None:
        """Stored entries (ids set) and their tokens, as ``tokenize_for_index`` makes them."""
        floor = self.index.last_indexed_id
        ready = self._ready
        for entry, pair in zip(entries, tokens, strict=True):
            if entry.id is not None and entry.id > floor and len(ready) < READY_LIMIT:
                ready[entry.id] = (entry, pair)

    def catch_up(self, progress: Progress | None = None) -> int:
        """Index every entry newer than the index's mark; return how many were indexed."""
        done = 0
        last = self.index.last_indexed_id
        total = max(0, self.storage.max_entry_id() - last)
        while True:
            entries = self.storage.entries_after(last, self.batch)
            if not entries:
                return done
            self.index.add(entries)
            last = entries[-1].id or last
            self.index.commit(last)
            self._forget_ready(last)
            done += len(entries)
            if progress:
                progress(done, max(total, done))

    async def catch_up_async(self) -> int:
        """Like ``catch_up``, tokenizing in the ingest pool (all cores) when there is one, and taking
        what the poller handed over from memory."""
        done = 0
        last = committed = self.index.last_indexed_id
        while True:
            entries, tokens = await self._next_batch(last)
            if entries:
                await asyncio.to_thread(self.index.add, entries, tokens)
                last = entries[-1].id or last
                done += len(entries)
            # A commit costs ~0.2 s whatever its size: one per 4 batches, and at the end.
            if last != committed and (not entries or done % (4 * self.batch) == 0):
                await asyncio.to_thread(self.index.commit, last)
                committed = last
            if not entries:
                self._forget_ready(last)
                return done

    async def _next_batch(self, last: int) -> tuple[list[Entry], list[Tokens]]:
        """The next entries after id ``last`` with their tokens: handed over ones from memory, the
        others read from the database and tokenized (in the pool)."""
        ready = self._ready
        if not ready:  # nothing handed over (a restart, a rebuild): one range read, no id lookups
            entries = await asyncio.to_thread(self.storage.entries_after, last, self.batch)
            return entries, await self._tokenize(entries)
        ids = await asyncio.to_thread(self.storage.entry_ids_after, last, self.batch)
        missing = [i for i in ids if i not in ready]
        read = await asyncio.to_thread(self.storage.entries_by_id, missing) if missing else []
        found = dict(zip((e.id for e in read), zip(read, await self._tokenize(read), strict=True), strict=True))
        pairs = [p for p in (ready.pop(i, None) or found.get(i) for i in ids) if p is not None]
        return [entry for entry, _ in pairs], [tokens for _, tokens in pairs]

    async def _tokenize(self, entries: Sequence[Entry]) -> list[Tokens]:
        return await self.pool.tokenize(entries) if entries else []

    def _forget_ready(self, upto: int) -> None:
        """Drop handed-over entries the index already has (indexed from the database meanwhile)."""
        ready = self._ready
        if ready:
            for entry_id in list(ready):  # a C-level copy: offers may come in from the event loop meanwhile
                if entry_id <= upto:
                    ready.pop(entry_id, None)

    def rebuild(self, progress: Progress | None = None) -> int:
        self.index.clear()
        return self.catch_up(progress)

    async def run_forever(self, every: float = 30.0) -> None:
        while True:
            try:
                count = await self.catch_up_async()
                if count:
                    log.info("indexed %d new entries", count)
            except Exception:
                log.exception("search indexing failed; will retry")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=every)


def topics_fingerprint(config: Config) -> str:
    data = {"topics": {k: [v.label, list(v.keywords)] for k, v in sorted(config.topics.items())},
            "sources": {s.id: list(s.topics) for s in config.sources}, "matching": MATCHING_VERSION}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def retag_if_config_changed(config: Config, storage: SQLiteStorage, index: SearchIndex, *,
                            batch: int = 5000) -> int:
    """Re-assign topics of stored entries when the topic config changed; reindex those entries."""
    fingerprint = topics_fingerprint(config)
    if storage.get_meta("topics_fingerprint") == fingerprint:
        return 0
    matcher = TopicMatcher.from_config(config.topics)
    source_topics = {s.id: s.topics for s in config.sources}
    retagged = last = 0
    # In batches: a million entries never sit in memory at once. Stopped halfway (a crash), the
    # fingerprint is not yet stored and the next start does it all again (it is idempotent).
    while rows := storage.entry_topics_after(last, batch):
        changed = []
        for entry_id, source_id, title, summary, categories, topics in rows:
            new = matcher.assign(title=title, summary=summary, categories=categories,
                                 source_topics=source_topics.get(source_id, ()))
            if new != topics:
                changed.append((entry_id, new))
        last = rows[-1][0]
        if changed:
            storage.set_entry_topics(changed)
            index.add(storage.entries_by_id([entry_id for entry_id, _ in changed]))
            retagged += len(changed)
    if retagged:
        index.commit(index.last_indexed_id)
    storage.set_meta("topics_fingerprint", fingerprint)
    log.log(logging.INFO if retagged else logging.DEBUG,
            "topic configuration changed: re-tagged %d stored entries", retagged)
    return retagged
