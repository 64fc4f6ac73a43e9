"""Stored entries follow the topic configuration: when it (or the matching rules) change, every
entry is tagged again once, in the database and in the search index; an unchanged config costs nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.config import load_config
from bot.indexer import Indexer, retag_if_config_changed
from bot.models import Entry, SearchRequest
from bot.search.index import SearchIndex
from bot.store.sqlite import SQLiteStorage

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def config(tmp_path: Path, keywords: str):
    path = tmp_path / "c.yaml"
    path.write_text(f"storage: {{path: {tmp_path / 'db.sqlite3'}}}\n"
                    f"topics:\n  llm: {{keywords: [{keywords}]}}\n"
                    "sources:\n  - {id: s, name: S, url: 'https://x.example/feed'}\n")
    return load_config(path, env={})


def test_changed_topics_retag_stored_entries_and_the_index(tmp_path: Path) -> None:
    storage = SQLiteStorage(tmp_path / "db.sqlite3")
    storage.sync_sources([("s", "https://x.example/feed")])
    index = SearchIndex.open(None)
    storage.store_entries("s", [
        Entry(source_id="s", key="a", title="A vision-language model", link=None, summary="", published=NOW),
        Entry(source_id="s", key="b", title="Cooking pasta", link=None, summary="", published=NOW),
    ], now=NOW, backfill=0)
    Indexer(storage, index).catch_up()
    first = config(tmp_path, "gpt")
    assert retag_if_config_changed(first, storage, index) == 0  # nothing matches either way
    assert retag_if_config_changed(first, storage, index) == 0  # and the fingerprint is now stored
    assert index.search(SearchRequest(topic="llm")).total == 0

    changed = config(tmp_path, "gpt, language model")
    assert retag_if_config_changed(changed, storage, index, batch=1) == 1  # one entry per batch
    assert [topics for *_, topics in storage.entry_topics_after(0, 10)] == [("llm",), ()]
    assert index.search(SearchRequest(topic="llm")).total == 1
    assert storage.topic_counts() == [("llm", 1)]
    assert retag_if_config_changed(changed, storage, index) == 0
    assert storage.entry_topics_after(1, 10)[0][0] == 2 and storage.entry_topics_after(2, 10) == []
    index.close()
    storage.close()


def test_the_matching_version_is_part_of_the_fingerprint(monkeypatch, tmp_path: Path) -> None:
    from bot import indexer

    cfg = config(tmp_path, "gpt")
    before = indexer.topics_fingerprint(cfg)
    monkeypatch.setattr(indexer, "MATCHING_VERSION", indexer.MATCHING_VERSION + 1)
    assert indexer.topics_fingerprint(cfg) != before
