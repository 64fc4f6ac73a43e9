import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import StorageError
from bot.models import Entry, PlannedMessage, RoutingPlan
from bot.store.sqlite import SQLiteStorage

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def entry(key: str, minutes: int = 0, topics: tuple[str, ...] = ()) -> Entry:
    return Entry(source_id="s", key=key, title=f"title {key}", link=f"https://x.example/{key}",
                 summary=f"summary {key}", published=NOW - timedelta(minutes=minutes), topics=topics)


def one_per_message(entries):
    return [[e] for e in entries]


def to_channels(*channels, pack=one_per_message):
    """A planner like the router's for realtime routes: each channel gets the entries packed by ``pack``."""
    def plan(entries):
        return RoutingPlan(messages=tuple(
            PlannedMessage(route_id=f"r{c}", destination=f"channel:{c}", channel_id=c,
                           entry_ids=tuple(e.id for e in group), payload="{}")
            for c in channels for group in pack(entries)))
    return plan


@pytest.fixture
def store(tmp_path):
    s = SQLiteStorage(tmp_path / "db.sqlite3")
    s.sync_sources([("s", "https://x.example/feed")])
    yield s
    s.close()


def test_first_poll_stores_all_but_queues_only_backfill(store):
    result = store.store_entries("s", [entry(str(i), 10 - i) for i in range(10)], now=NOW, backfill=3,
                                 plan=to_channels(1, 2))
    assert len(result.new_entries) == 10
    assert result.queued_messages == 6  # 3 newest × 2 channels
    pending = store.pending_messages(now=NOW)
    assert [store.entries_by_id(m.entry_ids)[0].key for m in pending if m.channel_id == 1] == ["7", "8", "9"]
    # second poll: two new entries, both posted, old ones ignored
    result = store.store_entries("s", [entry(str(i), 10 - i) for i in range(12)], now=NOW, backfill=3,
                                 plan=to_channels(1))
    assert [e.key for e in result.new_entries] == ["10", "11"]
    assert result.queued_messages == 2


def test_restart_posts_nothing_twice(tmp_path):
    path = tmp_path / "db.sqlite3"
    s = SQLiteStorage(path)
    s.sync_sources([("s", "https://x")])
    s.store_entries("s", [entry("a")], now=NOW, backfill=3, plan=to_channels(1))
    s.close()
    s = SQLiteStorage(path)
    result = s.store_entries("s", [entry("a"), entry("b")], now=NOW, backfill=3, plan=to_channels(1))
    assert [e.key for e in result.new_entries] == ["b"]
    assert len(s.pending_messages(now=NOW)) == 2
    s.close()


def test_duplicate_keys_in_one_batch_stored_once(store):
    result = store.store_entries("s", [entry("a"), entry("a")], now=NOW, backfill=0, plan=to_channels(1))
    assert len(result.new_entries) == 1


def test_outbox_lifecycle_and_nonce_stability(store):
    store.store_entries("s", [entry("a"), entry("b")], now=NOW, backfill=5,
                        plan=to_channels(5, pack=lambda es: [list(es)]))
    [message] = store.pending_messages(now=NOW)
    assert len(message.entry_ids) == 2
    assert message.nonce == store.pending_messages(now=NOW)[0].nonce
    assert len(message.nonce) <= 25
    store.mark_retry(message.id, error="503", next_attempt_at=NOW + timedelta(minutes=1))
    assert store.pending_messages(now=NOW) == []
    assert store.blocked_channels(now=NOW) == {5}
    [again] = store.pending_messages(now=NOW + timedelta(minutes=2))
    assert again.nonce == message.nonce and again.attempts == 1
    store.mark_sent(message.id, now=NOW, discord_message_id="42")
    assert store.pending_messages(now=NOW + timedelta(days=1)) == []
    assert store.sent_count() == 1


def test_failed_delivery_is_reported_per_source(store):
    store.store_entries("s", [entry("a")], now=NOW, backfill=5, plan=to_channels(5))
    [message] = store.pending_messages(now=NOW)
    store.mark_failed(message.id, error="channel 5: Missing Permissions")
    assert store.failed_delivery_counts() == {"s": (1, "channel 5: Missing Permissions")}


def test_source_state_tracks_validators_failures_and_url_changes(store):
    store.record_fetch_success("s", now=NOW, etag='"v1"', last_modified="Sat, 28 Nov 2026 10:00:00 GMT")
    state = store.source_state("s")
    assert state.etag == '"v1"' and state.last_success_at == NOW
    assert store.record_fetch_failure("s", now=NOW, error="boom", next_poll_at=NOW + timedelta(hours=1)) == 1
    assert store.record_fetch_failure("s", now=NOW, error="boom2", next_poll_at=None, gone=True) == 2
    state = store.source_state("s")
    assert state.status == "gone" and state.last_error == "boom2" and state.consecutive_failures == 2
    store.record_fetch_success("s", now=NOW, etag=None, last_modified=None, new_url="https://moved.example/")
    state = store.source_state("s")
    assert state.url == "https://moved.example/" and state.status == "active"
    store.sync_sources([("s", "https://edited.example/feed")])  # config edited → forget the old URL
    assert store.source_state("s").url == "https://edited.example/feed"
    assert store.source_state("s").etag is None


def test_latest_and_topics(store):
    store.store_entries("s", [entry("a", 5, ("llm",)), entry("b", 1, ("llm", "moe"))], now=NOW, backfill=0)
    assert [e.key for e in store.latest_entries(topic="llm", source_ids=None, limit=10)] == ["b", "a"]
    assert store.latest_entries(topic=None, source_ids=(), limit=10) == []
    assert store.topic_counts() == [("llm", 2), ("moe", 1)]
    assert store.topic_counts(["other"]) == []


def test_foreign_and_newer_databases_are_refused(tmp_path):
    foreign = tmp_path / "foreign.sqlite3"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="not a digestbot database"):
        SQLiteStorage(foreign)
    newer = tmp_path / "newer.sqlite3"
    SQLiteStorage(newer).close()
    db = sqlite3.connect(newer)
    db.execute("PRAGMA user_version = 999")
    db.commit()
    db.close()
    with pytest.raises(StorageError, match="newer digestbot"):
        SQLiteStorage(newer)


def test_changing_guids_do_not_repost(store):
    store.store_entries("s", [entry("a"), entry("b")], now=NOW, backfill=5, plan=to_channels(1))
    regenerated = [Entry(source_id="s", key=f"random-{e.key}-2", title=e.title, link=e.link, summary="x",
                         published=e.published) for e in (entry("a"), entry("b"))]
    result = store.store_entries("s", [*regenerated, entry("c")], now=NOW, backfill=5,
                                 plan=to_channels(1))
    assert [e.key for e in result.new_entries] == ["c"]
    assert result.reissued == 2


def test_entries_and_the_fetch_that_brought_them_commit_together(store):
    from bot.store.sqlite import FetchMark

    store.record_fetch_failure("s", now=NOW, error="boom", next_poll_at=NOW + timedelta(hours=1))
    result = store.store_entries("s", [entry("a"), entry("b")], now=NOW, backfill=5,
                                 fetched=FetchMark('"v2"', "Sat, 28 Nov 2026 11:00:00 GMT", "https://moved.example/"))
    assert len(result.new_entries) == 2
    state = store.source_state("s")
    assert (state.etag, state.url, state.consecutive_failures, state.next_poll_at, state.entry_count) == (
        '"v2"', "https://moved.example/", 0, None, 2)
    assert store.source_state("s", count_entries=False).entry_count == 0  # a poll does not count
    assert store.entry_ids_after(0, 10) == [e.id for e in result.new_entries]
    assert store.entry_ids_after(result.new_entries[0].id, 10) == [result.new_entries[1].id]


def test_a_failed_store_records_no_fetch_success(store):
    from bot.store.sqlite import FetchMark

    def broken_plan(entries):
        raise RuntimeError("router bug")

    with pytest.raises(RuntimeError):
        store.store_entries("s", [entry("a")], now=NOW, backfill=5, plan=broken_plan,
                            fetched=FetchMark('"v3"', None))
    state = store.source_state("s")
    assert state.etag is None and state.entry_count == 0


def test_call_if_free_never_waits_for_another_thread(store):
    """The poller reads a source's state inline only when no other thread is in the database."""
    import threading

    inside, leave = threading.Event(), threading.Event()

    def long_transaction():
        with store._tx():
            inside.set()
            leave.wait(5)

    worker = threading.Thread(target=long_transaction)
    worker.start()
    assert inside.wait(5)
    try:
        assert store.call_if_free(lambda: store.source_state("s")) == (False, None)
    finally:
        leave.set()
        worker.join()
    done, state = store.call_if_free(lambda: store.source_state("s", count_entries=False))
    assert done and state is not None and state.source_id == "s"
