"""The poller hands the indexer what it just stored, tokenized; catching up takes that from memory
and reads from the database only what was not handed over. Either way the index ends up the same."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.indexer import READY_LIMIT, Indexer
from bot.ingest import IngestPool, tokenize_for_index
from bot.models import Entry, SearchRequest
from bot.search.index import SearchIndex
from bot.store.sqlite import SQLiteStorage

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def entries(prefix: str, n: int) -> list[Entry]:
    return [Entry(source_id="s", key=f"{prefix}{i}", title=f"{prefix} diffusion {i}", link=None,
                  summary=f"模型幻觉 note {i}", published=NOW - timedelta(minutes=i)) for i in range(n)]


class CountingStorage(SQLiteStorage):
    """Counts the entries read back from the database for indexing."""

    read_back = 0

    def entries_after(self, last_id: int, limit: int) -> list[Entry]:
        found = super().entries_after(last_id, limit)
        self.read_back += len(found)
        return found

    def entries_by_id(self, ids):  # type: ignore[no-untyped-def]
        found = super().entries_by_id(ids)
        self.read_back += len(found)
        return found


@pytest.fixture
def setup(tmp_path: Path):
    storage = CountingStorage(tmp_path / "db.sqlite3")
    storage.sync_sources([("s", "https://x.example/feed")])
    index = SearchIndex.open(None)
    pool = IngestPool(0, {})
    yield storage, index, Indexer(storage, index, batch=7, pool=pool)
    index.close()
    storage.close()


def stored(storage: SQLiteStorage, items: list[Entry]) -> list[Entry]:
    return list(storage.store_entries("s", items, now=NOW, backfill=0).new_entries)


def hits(index: SearchIndex, query: str) -> int:
    return index.search(SearchRequest(text=query, limit=1)).total


def test_handed_over_entries_are_not_read_back(setup) -> None:
    storage, index, indexer = setup
    new = stored(storage, entries("a", 20))
    indexer.offer(new, tokenize_for_index([(e.title, e.summary) for e in new]))
    assert asyncio.run(indexer.catch_up_async()) == 20
    assert storage.read_back == 0
    assert index.doc_count() == 20 and hits(index, "幻觉") == 20 and index.last_indexed_id == new[-1].id


def test_what_was_not_handed_over_is_read_from_the_database(setup) -> None:
    storage, index, indexer = setup
    stored(storage, entries("a", 10))  # stored by something that hands nothing over
    second = stored(storage, entries("b", 10))
    offered = second[::2]
    indexer.offer(offered, tokenize_for_index([(e.title, e.summary) for e in offered]))
    assert asyncio.run(indexer.catch_up_async()) == 20
    assert storage.read_back == 15  # all of ``first``, and the half of ``second`` not handed over
    assert index.doc_count() == 20 and hits(index, "diffusion") == 20
    assert not indexer._ready


def test_stale_and_excess_offers_are_dropped(setup, monkeypatch) -> None:
    storage, index, indexer = setup
    old = stored(storage, entries("a", 5))
    indexer.catch_up()  # indexed from the database
    indexer.offer(old, tokenize_for_index([(e.title, e.summary) for e in old]))
    assert not indexer._ready  # already indexed: nothing kept
    monkeypatch.setattr("bot.indexer.READY_LIMIT", 3)
    new = stored(storage, entries("b", 6))
    indexer.offer(new, tokenize_for_index([(e.title, e.summary) for e in new]))
    assert len(indexer._ready) == 3 and READY_LIMIT > 3
    assert asyncio.run(indexer.catch_up_async()) == 6
    assert index.doc_count() == 11 and storage.read_back == 5 + 3


def test_a_first_poll_hands_its_tokens_over(tmp_path: Path) -> None:
    """Through the app: the first poll's entries reach the index without a read back, and search
    finds them."""
    from bot.app import App
    from bot.config import load_config

    feed = tmp_path / "feed.xml"
    items = "".join(f"<item><title>Diffusion {i}</title><guid>g{i}</guid><description>幻觉 {i}</description></item>"
                    for i in range(12))
    feed.write_text(f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>')
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"storage: {{path: {tmp_path / 'db.sqlite3'}}}\nhealth: {{enabled: false}}\n"
                   f"sources:\n  - {{id: s, name: S, url: 'file:feed.xml'}}\n")

    async def run() -> tuple[int, int, int]:
        async with App.open(load_config(cfg, env={})) as app:
            reads = 0
            original = app.storage.entries_after

            def counting(last_id: int, limit: int) -> list[Entry]:
                nonlocal reads
                found = original(last_id, limit)
                reads += len(found)
                return found

            app.storage.entries_after = counting  # type: ignore[method-assign]
            await app.poll_all(force=True)
            ready = len(app.indexer._ready)
            await app.indexer.catch_up_async()
            return ready, reads, app.index.search(SearchRequest(text="幻觉", limit=1)).total

    assert asyncio.run(run()) == (12, 0, 12)
