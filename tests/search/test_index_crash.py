"""The index is derived: kill the process while it indexes (SIGKILL, several times, at different
points), start again, and the index matches the database exactly — every entry once, nothing extra."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.indexer import Indexer
from bot.ingest import IngestPool
from bot.models import Entry, SearchRequest
from bot.search.index import SearchIndex
from bot.store.sqlite import SQLiteStorage

ROOT = Path(__file__).resolve().parents[2]
ENTRIES = 6000
WORDS = ["attention", "diffusion", "幻觉", "大模型", "偏好优化", "kv cache", "mixture", "量化", "agent", "vision"]

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[3])
from bot.indexer import Indexer
from bot.search.index import SearchIndex
from bot.store.sqlite import SQLiteStorage
storage = SQLiteStorage(sys.argv[1])
index = SearchIndex.open(__import__("pathlib").Path(sys.argv[2]))
print("ready", flush=True)
Indexer(storage, index, batch=250).catch_up(progress=lambda done, total: time.sleep(0.1))
print("done", flush=True)
"""


def fill(path: Path) -> SQLiteStorage:
    storage = SQLiteStorage(path)
    storage.sync_sources([("s", "http://example.org/feed")])
    base = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [Entry(source_id="s", key=f"k{i}", title=f"{WORDS[i % 10]} entry {i}", link=None,
                     summary=f"{WORDS[(i * 7) % 10]} text number {i} 第{i}篇", published=base + timedelta(minutes=i))
               for i in range(ENTRIES)]
    storage.store_entries("s", entries, now=base, backfill=0)
    return storage


@pytest.mark.timeout(180)
def test_killed_while_indexing_then_caught_up_exactly(tmp_path: Path) -> None:
    db, ix = tmp_path / "db.sqlite3", tmp_path / "index"
    storage = fill(db)
    kills, marks = 0, []
    for delay in (0.6, 0.8, 0.7, 0.9, 0.6):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(ix), str(ROOT)],
                                stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(30)
        opened = SearchIndex.open(ix)
        mark = opened.last_indexed_id
        opened.close()
        assert 0 <= mark <= storage.max_entry_id()
        marks.append(mark)
    # Most runs were killed part-way, each after committing some batches and before the end.
    assert kills >= 3 and sum(0 < m < storage.max_entry_id() for m in marks) >= 3, marks
    assert marks == sorted(marks)  # progress is kept across kills, never lost

    index = SearchIndex.open(ix)
    try:
        Indexer(storage, index).catch_up()  # what App.open does at start
        assert index.doc_count() == ENTRIES  # upserts: no entry twice, whatever was redone
        assert index.search(SearchRequest(text="entry", source_ids=("s",))).total == ENTRIES
        stored = {e.key: e.id for e in storage.entries_after(0, ENTRIES + 10)}
        for n in (0, 1234, 2999, 4321, ENTRIES - 1):  # early, middle and late batches all present
            hits = index.search(SearchRequest(text=f"第{n}篇", source_ids=("s",))).hits
            assert [h.entry_id for h in hits[:1]] == [stored[f"k{n}"]]
        assert index.search(SearchRequest(text="幻觉", source_ids=("s",))).total == ENTRIES // 10 * 2
    finally:
        index.close()
        storage.close()


async def test_catch_up_in_worker_processes_matches_a_thread(tmp_path: Path) -> None:
    storage = fill(tmp_path / "db.sqlite3")
    pool = IngestPool(2, {})
    try:
        await pool.wait_ready()
        by_pool = SearchIndex.open(tmp_path / "a")
        assert await Indexer(storage, by_pool, batch=700, pool=pool).catch_up_async() == ENTRIES
        by_thread = SearchIndex.open(tmp_path / "b")
        Indexer(storage, by_thread, batch=700).catch_up()
        assert by_pool.last_indexed_id == by_thread.last_indexed_id == storage.max_entry_id()
        for query in ("幻觉", "kv cache", "attention entry", "第12篇"):
            request = SearchRequest(text=query, source_ids=("s",))
            assert by_pool.search(request).total == by_thread.search(request).total > 0
        by_pool.close()
        by_thread.close()
    finally:
        pool.close()
        storage.close()
