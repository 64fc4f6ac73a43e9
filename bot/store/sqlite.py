"""SQLite storage, the embedded default.

One connection guarded by a lock, WAL journal, every write in a transaction. Methods are
synchronous; async callers run them with ``asyncio.to_thread``. Migrations are numbered SQL files
applied at open; the applied version lives in ``PRAGMA user_version`` and ``application_id``
marks the file as ours, so a foreign or newer database is refused instead of damaged.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from bot.errors import StorageError
from bot.models import Entry, OutboxMessage, PlannedMessage, RoutingPlan, SourceState, StoreResult
from bot.store.base import Planner

T = TypeVar("T")

APPLICATION_ID = 0x44474254  # "DGBT"


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def _migrations() -> list[tuple[int, str]]:
    folder = resources.files("bot.store") / "migrations"
    found = []
    for item in folder.iterdir():
        name = item.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), item.read_text(encoding="utf-8")))
    return sorted(found)


class SQLiteStorage:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                       timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {path}: {exc}") from None
        self._lock = threading.RLock()
        self._migrate()
        self.install_id = self._ensure_install_id()

    # -- plumbing ---------------------------------------------------------------------------
    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StorageError(f"database error: {exc}") from exc

    def call_if_free(self, call: Callable[[], T]) -> tuple[bool, T | None]:
        """``(True, call())`` when no other thread is using the database right now, else
        ``(False, None)`` at once, without waiting. For one-row reads on the event loop: a thread
        hop costs more than such a query, but waiting for another thread's transaction must never
        block the loop."""
        if not self._lock.acquire(blocking=False):
            return False, None
        try:
            return True, call()
        finally:
            self._lock.release()

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StorageError(f"database error: {exc}") from exc

    def _migrate(self) -> None:
        with self._lock:
            app_id = self._db.execute("PRAGMA application_id").fetchone()[0]
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            tables = self._db.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
            if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
                raise StorageError(f"{self.path} is not a digestbot database; refusing to touch it")
            migrations = _migrations()
            newest = migrations[-1][0] if migrations else 0
            if version > newest:
                raise StorageError(f"{self.path} was written by a newer digestbot (schema {version}, "
                                   f"this version knows {newest}); upgrade digestbot")
            for number, sql in migrations:
                if number <= version:
                    continue
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    for statement in _split_sql(sql):
                        self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version = {number}")
                    self._db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    self._db.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._db.execute("ROLLBACK")
                    raise StorageError(f"migration {number:04d} failed: {exc}") from exc

    def _ensure_install_id(self) -> str:
        existing = self.get_meta("install_id")
        if existing:
            return existing
        value = secrets.token_hex(4)
        self.set_meta("install_id", value)
        return value

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- meta -------------------------------------------------------------------------------
    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                       "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def get_meta(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return str(rows[0]["value"]) if rows else None

    # -- sources ----------------------------------------------------------------------------
    def sync_sources(self, sources: Sequence[tuple[str, str]]) -> None:
        with self._tx() as db:
            for source_id, url in sources:
                row = db.execute("SELECT config_url FROM sources WHERE id = ?", (source_id,)).fetchone()
                if row is None:
                    db.execute("INSERT INTO sources(id, config_url, url) VALUES (?, ?, ?)",
                               (source_id, url, url))
                elif row["config_url"] != url:
                    db.execute("UPDATE sources SET config_url = ?, url = ?, etag = NULL, last_modified = NULL,"
                               " status = 'active', consecutive_failures = 0, next_poll_at = NULL"
                               " WHERE id = ?", (url, url, source_id))

    def _state(self, row: sqlite3.Row, count: int) -> SourceState:
        return SourceState(
            source_id=row["id"], url=row["url"], etag=row["etag"], last_modified=row["last_modified"],
            status=row["status"], polled_once=bool(row["polled_once"]),
            last_polled_at=_dt(row["last_polled_at"]), last_success_at=_dt(row["last_success_at"]),
            last_error=row["last_error"], last_error_at=_dt(row["last_error_at"]),
            consecutive_failures=row["consecutive_failures"], next_poll_at=_dt(row["next_poll_at"]),
            entry_count=count,
        )

    def source_state(self, source_id: str, *, count_entries: bool = True) -> SourceState:
        """``count_entries=False`` (a poll): ``entry_count`` stays 0 and no entries are counted,
        which at 25,000 entries a source is most of the query's cost."""
        count = "(SELECT count(*) FROM entries e WHERE e.source_id = s.id)" if count_entries else "0"
        rows = self._query(f"SELECT s.*, {count} AS n FROM sources s WHERE s.id = ?", (source_id,))
        if not rows:
            raise StorageError(f"unknown source {source_id!r}")
        return self._state(rows[0], rows[0]["n"])

    def source_states(self) -> list[SourceState]:
        rows = self._query("SELECT s.*, (SELECT count(*) FROM entries e WHERE e.source_id = s.id) AS n"
                           " FROM sources s ORDER BY s.id")
        return [self._state(r, r["n"]) for r in rows]

    def record_fetch_success(self, source_id: str, *, now: datetime, etag: str | None,
                             last_modified: str | None, new_url: str | None = None) -> None:
        with self._tx() as db:
            _record_success(db, source_id, FetchMark(etag, last_modified, new_url), now)

    def record_fetch_failure(self, source_id: str, *, now: datetime, error: str,
                             next_poll_at: datetime | None, gone: bool = False) -> int:
        with self._tx() as db:
            db.execute(
                "UPDATE sources SET last_polled_at = ?, last_error = ?, last_error_at = ?,"
                " consecutive_failures = consecutive_failures + 1, next_poll_at = ?,"
                " status = CASE WHEN ? THEN 'gone' ELSE status END WHERE id = ?",
                (_ts(now), error[:1000], _ts(now), _ts(next_poll_at), gone, source_id))
            row = db.execute("SELECT consecutive_failures FROM sources WHERE id = ?", (source_id,)).fetchone()
            return int(row[0]) if row else 0

    def set_source_status(self, source_id: str, status: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE sources SET status = ? WHERE id = ?", (status, source_id))

    def enqueue_notice(self, channel_id: int, source_id: str, text: str, *, now: datetime) -> None:
        """A text-only message (e.g. to the admin channel) with the same delivery guarantees."""
        with self._tx() as db:
            db.execute("INSERT INTO outbox(channel_id, source_id, header, entry_ids, next_attempt_at, created_at,"
                       " destination) VALUES (?, ?, ?, '[]', ?, ?, ?)",
                       (channel_id, source_id, text, _ts(now), _ts(now), f"channel:{channel_id}"))

    # -- entries ----------------------------------------------------------------------------
    def store_entries(self, source_id: str, entries: Sequence[Entry], *, now: datetime, backfill: int,
                      plan: Planner | None = None, fetched: FetchMark | None = None) -> StoreResult:
        """Store what is new and, in the same transaction, queue what the routes want posted.

        ``plan`` (the router) turns the entries to post into rendered messages and digest items.
        ``fetched`` records the fetch's success (validators, moved URL) in the same transaction."""
        with self._tx() as db:
            if fetched is not None:
                _record_success(db, source_id, fetched, now)
            first_poll = not db.execute("SELECT polled_once FROM sources WHERE id = ?",
                                        (source_id,)).fetchone()["polled_once"]
            keys = [e.key for e in entries]
            known: set[str] = set()
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                known.update(r[0] for r in db.execute(
                    f"SELECT key FROM entries WHERE source_id = ? AND key IN ({marks})",
                    (source_id, *chunk)))
            reissued = self._reissued(db, source_id, [e for e in entries if e.key not in known])
            stored: list[Entry] = []
            seen: set[str] = set()
            for entry in entries:
                if entry.key in known or entry.key in seen or (entry.link, entry.title) in reissued:
                    continue
                seen.add(entry.key)
                cursor = db.execute(
                    "INSERT INTO entries(source_id, key, title, link, summary, published, updated, author,"
                    " categories, thumbnail, topics, first_seen) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (source_id, entry.key, entry.title, entry.link, entry.summary, _ts(entry.published),
                     _ts(entry.updated), entry.author, _json_list(entry.categories), entry.thumbnail,
                     _json_list(entry.topics), _ts(now)))
                entry_id = int(cursor.lastrowid or 0)
                if entry.topics:
                    db.executemany("INSERT OR IGNORE INTO entry_topics(topic, entry_id) VALUES (?, ?)",
                                   [(t, entry_id) for t in entry.topics])
                stored.append(entry.stored_as(entry_id, now))
            to_post = stored[-backfill:] if first_poll and backfill > 0 else ([] if first_poll else stored)
            queued = 0
            if plan is not None:
                routed = plan(to_post) if to_post else RoutingPlan()
                for message in routed.messages:
                    db.execute(
                        "INSERT INTO outbox(channel_id, source_id, header, entry_ids, next_attempt_at, created_at,"
                        " route_id, destination, payload) VALUES (?,?,?,?,?,?,?,?,?)",
                        (message.channel_id, source_id, None, json.dumps(list(message.entry_ids)), _ts(now),
                         _ts(now), message.route_id, message.destination, message.payload))
                    queued += 1
                db.executemany("INSERT OR IGNORE INTO digest_items(route_id, entry_id, queued_at) VALUES (?,?,?)",
                               [(route_id, entry_id, _ts(now)) for route_id, entry_id in routed.digest_items])
            db.execute("UPDATE sources SET polled_once = 1 WHERE id = ?", (source_id,))
            skipped = sum(1 for e in entries if e.key not in known and (e.link, e.title) in reissued)
            return StoreResult(new_entries=tuple(stored), queued_messages=queued, reissued=skipped)

    @staticmethod
    def _reissued(db: sqlite3.Connection, source_id: str, candidates: Sequence[Entry]) -> set[tuple[str, str]]:
        """(link, title) pairs already stored under another key: feeds whose guids change on every
        fetch would otherwise re-post everything."""
        links = list({e.link for e in candidates if e.link})
        found: set[tuple[str, str]] = set()
        for start in range(0, len(links), 500):
            chunk = links[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found.update((r[0], r[1]) for r in db.execute(
                f"SELECT link, title FROM entries WHERE source_id = ? AND link IN ({marks})", (source_id, *chunk)))
        return found

    def _entry(self, row: sqlite3.Row) -> Entry:
        return Entry(
            id=row["id"], source_id=row["source_id"], key=row["key"], title=row["title"], link=row["link"],
            summary=row["summary"], published=_dt(row["published"]), updated=_dt(row["updated"]),
            author=row["author"], categories=tuple(json.loads(row["categories"])),
            thumbnail=row["thumbnail"], topics=tuple(json.loads(row["topics"])),
            first_seen=_dt(row["first_seen"]))

    def entries_by_id(self, ids: Sequence[int]) -> list[Entry]:
        found: dict[int, Entry] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            marks = ",".join("?" * len(chunk))
            for row in self._query(f"SELECT * FROM entries WHERE id IN ({marks})", chunk):
                found[row["id"]] = self._entry(row)
        return [found[i] for i in ids if i in found]

    def entries_after(self, last_id: int, limit: int) -> list[Entry]:
        rows = self._query("SELECT * FROM entries WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit))
        return [self._entry(r) for r in rows]

    def entry_ids_after(self, last_id: int, limit: int) -> list[int]:
        return [int(r[0]) for r in self._query("SELECT id FROM entries WHERE id > ? ORDER BY id LIMIT ?",
                                               (last_id, limit))]

    def max_entry_id(self) -> int:
        return int(self._query("SELECT COALESCE(max(id), 0) FROM entries")[0][0])

    def latest_entries(self, *, topic: str | None, source_ids: Sequence[str] | None, limit: int,
                       offset: int = 0) -> list[Entry]:
        where, params = [], []
        if topic is not None:
            where.append("id IN (SELECT entry_id FROM entry_topics WHERE topic = ?)")
            params.append(topic)
        if source_ids is not None:
            if not source_ids:
                return []
            where.append(f"source_id IN ({','.join('?' * len(source_ids))})")
            params.extend(source_ids)
        sql = "SELECT * FROM entries"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY COALESCE(published, first_seen) DESC, id DESC LIMIT ? OFFSET ?"
        return [self._entry(r) for r in self._query(sql, (*params, limit, offset))]

    def topic_counts(self, source_ids: Sequence[str] | None = None) -> list[tuple[str, int]]:
        if source_ids is None:
            rows = self._query("SELECT topic, count(*) AS n FROM entry_topics GROUP BY topic"
                               " ORDER BY n DESC, topic")
        else:
            if not source_ids:
                return []
            marks = ",".join("?" * len(source_ids))
            sql = ("SELECT t.topic, count(*) AS n FROM entry_topics t JOIN entries e ON e.id = t.entry_id"
                   f" WHERE e.source_id IN ({marks}) GROUP BY t.topic ORDER BY n DESC, t.topic")
            rows = self._query(sql, list(source_ids))
        return [(r[0], int(r[1])) for r in rows]

    def set_entry_topics(self, updates: Sequence[tuple[int, tuple[str, ...]]]) -> None:
        with self._tx() as db:
            for entry_id, topics in updates:
                db.execute("UPDATE entries SET topics = ? WHERE id = ?", (_json_list(topics), entry_id))
                db.execute("DELETE FROM entry_topics WHERE entry_id = ?", (entry_id,))
                db.executemany("INSERT OR IGNORE INTO entry_topics(topic, entry_id) VALUES (?, ?)",
                               [(t, entry_id) for t in topics])

    def entry_topics_after(self, last_id: int, limit: int,
                           ) -> list[tuple[int, str, str, str, tuple[str, ...], tuple[str, ...]]]:
        """(id, source_id, title, summary, categories, topics) of the next ``limit`` entries after
        ``last_id``, for re-tagging in batches (never the whole table in memory)."""
        rows = self._query("SELECT id, source_id, title, summary, categories, topics FROM entries"
                           " WHERE id > ? ORDER BY id LIMIT ?", (last_id, limit))
        return [(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), tuple(json.loads(r[5]))) for r in rows]

    # -- outbox -----------------------------------------------------------------------------
    def pending_messages(self, *, now: datetime, limit: int = 100) -> list[OutboxMessage]:
        rows = self._query(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (_ts(now), limit))
        return [OutboxMessage(id=r["id"], channel_id=r["channel_id"], source_id=r["source_id"],
                              header=r["header"], entry_ids=tuple(json.loads(r["entry_ids"])),
                              nonce=f"{self.install_id}{r['id']}", attempts=r["attempts"],
                              last_error=r["last_error"], route_id=r["route_id"],
                              destination=r["destination"] or f"channel:{r['channel_id']}",
                              payload=r["payload"]) for r in rows]

    def blocked_destinations(self, *, now: datetime) -> set[str]:
        """Destinations whose oldest pending message is not due yet; later ones must wait (order)."""
        rows = self._query("SELECT destination, min(id), next_attempt_at FROM outbox WHERE status = 'pending'"
                           " GROUP BY destination")
        return {r[0] for r in rows if r[2] > (_ts(now) or 0.0)}

    def blocked_channels(self, *, now: datetime) -> set[int]:
        """Channel ids among ``blocked_destinations``."""
        return {int(d.removeprefix("channel:")) for d in self.blocked_destinations(now=now)
                if d.startswith("channel:")}

    def pending_count(self) -> int:
        return int(self._query("SELECT count(*) FROM outbox WHERE status = 'pending'")[0][0])

    def mark_sent(self, message_id: int, *, now: datetime, discord_message_id: str | None) -> None:
        with self._tx() as db:
            # The rendered payload is only needed to (re)send; drop it so a year of posts stays small.
            db.execute("UPDATE outbox SET status = 'sent', sent_at = ?, message_id = ?, attempts = attempts + 1,"
                       " payload = NULL WHERE id = ?", (_ts(now), discord_message_id, message_id))

    def mark_retry(self, message_id: int, *, error: str, next_attempt_at: datetime) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?"
                       " WHERE id = ?", (error[:1000], _ts(next_attempt_at), message_id))

    def mark_failed(self, message_id: int, *, error: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?"
                       " WHERE id = ?", (error[:1000], message_id))

    def failed_delivery_counts(self) -> dict[str, tuple[int, str | None]]:
        rows = self._query(
            "SELECT source_id, count(*), (SELECT last_error FROM outbox o2 WHERE o2.source_id = o.source_id"
            " AND o2.status = 'failed' ORDER BY id DESC LIMIT 1) FROM outbox o WHERE status = 'failed'"
            " GROUP BY source_id")
        return {r[0]: (int(r[1]), r[2]) for r in rows}

    # -- digests ----------------------------------------------------------------------------
    def digest_entries(self, route_id: str) -> list[Entry]:
        """Entries held for a digest route, oldest first."""
        rows = self._query("SELECT e.* FROM digest_items d JOIN entries e ON e.id = d.entry_id"
                           " WHERE d.route_id = ? ORDER BY e.id", (route_id,))
        return [self._entry(r) for r in rows]

    def last_digest_at(self, route_id: str) -> datetime | None:
        rows = self._query("SELECT last_digest_at FROM route_state WHERE route_id = ?", (route_id,))
        return _dt(rows[0][0]) if rows else None

    def start_digest_clock(self, route_id: str, *, now: datetime) -> datetime:
        """The first time a digest route is seen its period starts now; returns the period start."""
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO route_state(route_id, last_digest_at) VALUES (?, ?)",
                       (route_id, _ts(now)))
            row = db.execute("SELECT last_digest_at FROM route_state WHERE route_id = ?", (route_id,)).fetchone()
        return _dt(row[0]) or now

    def forget_digest_routes(self, *, keep: Sequence[str]) -> dict[str, int]:
        """Drop the held entries and the clock of every digest route not in ``keep``; returns
        {route id: entries dropped} for each route forgotten."""
        with self._tx() as db:
            known = {r[0]: 0 for r in db.execute("SELECT route_id FROM route_state")}
            known.update({r[0]: int(r[1]) for r in db.execute(
                "SELECT route_id, count(*) FROM digest_items GROUP BY route_id")})
            keep_ids = set(keep)
            gone = {route_id: held for route_id, held in known.items() if route_id not in keep_ids}
            for route_id in gone:
                db.execute("DELETE FROM digest_items WHERE route_id = ?", (route_id,))
                db.execute("DELETE FROM route_state WHERE route_id = ?", (route_id,))
        return gone

    def commit_digest(self, route_id: str, *, entry_ids: Sequence[int], messages: Sequence[PlannedMessage],
                      period_end: datetime, now: datetime) -> int:
        """Queue a digest's messages, release its entries and move the period on — all or nothing,
        so a crash never loses a digest and never queues one twice."""
        with self._tx() as db:
            for message in messages:
                db.execute(
                    "INSERT INTO outbox(channel_id, source_id, header, entry_ids, next_attempt_at, created_at,"
                    " route_id, destination, payload) VALUES (?,?,?,?,?,?,?,?,?)",
                    (message.channel_id, f"digest:{route_id}", None, json.dumps(list(message.entry_ids)),
                     _ts(now), _ts(now), route_id, message.destination, message.payload))
            for start in range(0, len(entry_ids), 500):
                chunk = list(entry_ids[start:start + 500])
                marks = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM digest_items WHERE route_id = ? AND entry_id IN ({marks})",
                           (route_id, *chunk))
            db.execute("INSERT INTO route_state(route_id, last_digest_at) VALUES (?, ?) ON CONFLICT(route_id)"
                       " DO UPDATE SET last_digest_at = excluded.last_digest_at", (route_id, _ts(period_end)))
        return len(messages)

    # -- sources managed from Discord -------------------------------------------------------
    def runtime_sources(self) -> list[tuple[str, str, dict[str, Any], int | None]]:
        """(id, kind, settings, guild id) for every source added or changed from Discord."""
        rows = self._query("SELECT id, kind, settings, guild_id FROM runtime_sources ORDER BY rowid")
        return [(r[0], r[1], json.loads(r[2]), r[3]) for r in rows]

    def put_runtime_source(self, source_id: str, kind: str, settings: dict[str, Any], *, guild_id: int | None,
                           now: datetime) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO runtime_sources(id, kind, settings, guild_id, updated_at) VALUES (?,?,?,?,?)"
                       " ON CONFLICT(id) DO UPDATE SET kind = excluded.kind, settings = excluded.settings,"
                       " guild_id = excluded.guild_id, updated_at = excluded.updated_at",
                       (source_id, kind, json.dumps(settings, ensure_ascii=False), guild_id, _ts(now)))

    def delete_runtime_source(self, source_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM runtime_sources WHERE id = ?", (source_id,))

    def sent_count(self) -> int:
        return int(self._query("SELECT count(*) FROM outbox WHERE status = 'sent'")[0][0])


@dataclass(frozen=True, slots=True)
class FetchMark:
    """What a successful fetch leaves on its source: the validators for the next conditional GET
    and, after a permanent redirect, the new URL."""

    etag: str | None
    last_modified: str | None
    new_url: str | None = None


def _record_success(db: sqlite3.Connection, source_id: str, mark: FetchMark, now: datetime) -> None:
    db.execute(
        "UPDATE sources SET etag = ?, last_modified = ?, url = COALESCE(?, url),"
        " last_polled_at = ?, last_success_at = ?, consecutive_failures = 0, next_poll_at = NULL,"
        " status = CASE WHEN status = 'gone' THEN 'active' ELSE status END"
        " WHERE id = ?",
        (mark.etag, mark.last_modified, mark.new_url, _ts(now), _ts(now), source_id))


def _json_list(values: Sequence[str]) -> str:
    return json.dumps(list(values), ensure_ascii=False) if values else "[]"


def _split_sql(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def open_storage(path: Path) -> SQLiteStorage:
    return SQLiteStorage(path)
