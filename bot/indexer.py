"""Keeps the derived search index caught up with the database, by entry id.

The database is the source of truth. The index remembers the highest entry id it committed; on
start (and whenever woken) everything after it is fed again. Adds are upserts, so a crash between
an index commit and its bookkeeping never duplicates anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Callable

from bot.config import Config
from bot.ingest import IngestPool
from bot.search.index import SearchIndex
from bot.store.sqlite import SQLiteStorage
from bot.topics import TopicMatcher

log = logging.getLogger(__name__)
Progress = Callable[[int, int], None]


class Indexer:
    def __init__(self, storage: SQLiteStorage, index: SearchIndex, *, batch: int = 5000,
                 pool: IngestPool | None = None) -> None:
        self.storage = storage
        self.index = index
        self.pool = pool
        self.batch = batch
        self.wake = asyncio.Event()

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
            done += len(entries)
            if progress:
                progress(done, max(total, done))

    async def catch_up_async(self) -> int:
        """Like ``catch_up``, tokenizing in the ingest pool (all cores) when there is one."""
        if self.pool is None or self.pool.processes == 0:
            return await asyncio.to_thread(self.catch_up)
        done = 0
        last = committed = self.index.last_indexed_id
        while True:
            entries = await asyncio.to_thread(self.storage.entries_after, last, self.batch)
            if entries:
                tokens = await self.pool.tokenize(entries)
                await asyncio.to_thread(self.index.add, entries, tokens)
                last = entries[-1].id or last
                done += len(entries)
            # A commit costs ~0.2 s whatever its size: one per 4 batches, and at the end.
            if last != committed and (not entries or done % (4 * self.batch) == 0):
                await asyncio.to_thread(self.index.commit, last)
                committed = last
            if not entries:
                return done

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
            "sources": {s.id: list(s.topics) for s in config.sources}}
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def retag_if_config_changed(config: Config, storage: SQLiteStorage, index: SearchIndex) -> int:
    """Re-assign topics of stored entries when the topic config changed; reindex those entries."""
    fingerprint = topics_fingerprint(config)
    if storage.get_meta("topics_fingerprint") == fingerprint:
        return 0
    matcher = TopicMatcher.from_config(config.topics)
    source_topics = {s.id: s.topics for s in config.sources}
    changed = []
    for entry_id, source_id, title, summary, categories, topics in storage.all_entry_topics():
        new = matcher.assign(title=title, summary=summary, categories=categories,
                             source_topics=source_topics.get(source_id, ()))
        if new != topics:
            changed.append((entry_id, new))
    if changed:
        storage.set_entry_topics(changed)
        ids = [entry_id for entry_id, _ in changed]
        for start in range(0, len(ids), 5000):
            index.add(storage.entries_by_id(ids[start:start + 5000]))
        index.commit(index.last_indexed_id)
    storage.set_meta("topics_fingerprint", fingerprint)
    log.log(logging.INFO if changed else logging.DEBUG,
            "topic configuration changed: re-tagged %d stored entries", len(changed))
    return len(changed)
