"""One poll of one source: fetch → parse → normalise → tag → store + queue deliveries.

A poll never raises: a failing source becomes a result with its error stored, backs off
exponentially (or as the server's Retry-After says) and never delays the other sources.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TypeVar

from bot.clock import Clock
from bot.config import Config, SourceConfig
from bot.errors import DigestError, FetchError
from bot.fetch import Fetcher
from bot.format import defuse_mentions
from bot.ingest import IngestPool
from bot.models import Entry
from bot.route import Router
from bot.store.sqlite import FetchMark, SQLiteStorage

log = logging.getLogger(__name__)
T = TypeVar("T")
Indexable = Callable[[Sequence[Entry], Sequence[tuple[str, str]]], None]
"""Takes newly stored entries (with ids) and their index tokens, for the search index."""


@dataclass(frozen=True, slots=True)
class PollOutcome:
    source_id: str
    ok: bool
    new_entries: int = 0
    queued_messages: int = 0
    not_modified: bool = False
    skipped: str | None = None
    error: str | None = None


def safe_notice(text: str) -> str:
    """Notices quote feed errors; keep them short and unable to ping."""
    return defuse_mentions(text)[:1900]


class Poller:
    def __init__(self, config: Config, storage: SQLiteStorage, fetcher: Fetcher, *, clock: Clock,
                 rng: random.Random | None = None, pool: IngestPool | None = None,
                 on_new_entries: Callable[[int], None] | None = None, router: Router | None = None,
                 on_indexable: Indexable | None = None) -> None:
        self.config = config
        self.router = router or Router(config)
        self.storage = storage
        self.fetcher = fetcher
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.pool = pool or IngestPool.for_config(config, processes=0)
        self.on_new_entries = on_new_entries
        self.on_indexable = on_indexable

    async def poll(self, source: SourceConfig, *, force: bool = False) -> PollOutcome:
        try:
            return await self._poll(source, force=force)
        except Exception as exc:  # the scheduler job must never raise
            log.exception("poll of %s failed unexpectedly", source.id)
            await self._record_failure(source, f"internal error: {type(exc).__name__}", None, 0)
            return PollOutcome(source.id, ok=False, error=f"internal error: {type(exc).__name__}")

    async def _poll(self, source: SourceConfig, *, force: bool) -> PollOutcome:
        state = await self._read_now(partial(self.storage.source_state, source.id, count_entries=False))
        now = self.clock()
        if state.status == "gone":
            return PollOutcome(source.id, ok=False, skipped="gone (HTTP 410); change its URL to resume")
        if not force and state.next_poll_at is not None and state.next_poll_at > now:
            return PollOutcome(source.id, ok=False, skipped=f"backing off until {state.next_poll_at:%H:%M:%S}")
        try:
            result = await self.fetcher.fetch(state.url, etag=state.etag, last_modified=state.last_modified,
                                              allow_file=source.allow_file)
        except FetchError as exc:
            await self._record_failure(source, str(exc), exc.retry_after, state.consecutive_failures,
                                       gone=exc.gone)
            return PollOutcome(source.id, ok=False, error=str(exc))
        if result.body is None:
            await asyncio.to_thread(
                self.storage.record_fetch_success, source.id, now=self.clock(),
                etag=result.etag or state.etag, last_modified=result.last_modified or state.last_modified,
                new_url=result.permanent_url)
            await self._note_recovery(source, state.status)
            return PollOutcome(source.id, ok=True, not_modified=True)
        # A first poll stores every entry: tokenize them for the index in the same worker trip.
        tokens: list[tuple[str, str]] | None = None
        try:
            if self.on_indexable is not None and not state.polled_once:
                entries, tokens = await self.pool.parse_for_index(result.body, result.url, result.content_type,
                                                                  source.id, source.topics)
            else:
                entries = await self.pool.parse(result.body, result.url, result.content_type, source.id,
                                                source.topics)
        except DigestError as exc:
            await self._record_failure(source, str(exc), None, state.consecutive_failures)
            return PollOutcome(source.id, ok=False, error=str(exc))
        router = self.router
        stored = await asyncio.to_thread(
            self.storage.store_entries, source.id, entries, now=self.clock(), backfill=source.backfill,
            plan=lambda to_post: router.plan(source, to_post),
            fetched=FetchMark(result.etag, result.last_modified, result.permanent_url))
        await self._note_recovery(source, state.status)
        if stored.new_entries:
            await self._hand_to_index(source, stored.new_entries, entries, tokens)
        if stored.new_entries and self.on_new_entries:
            self.on_new_entries(len(stored.new_entries))
        return PollOutcome(source.id, ok=True, new_entries=len(stored.new_entries),
                           queued_messages=stored.queued_messages)

    async def _read_now(self, read: Callable[[], T]) -> T:
        """A one-row read: inline when the database is free (most of the time), else in a thread."""
        done, value = self.storage.call_if_free(read)
        if done:
            return value  # type: ignore[return-value]  # set whenever done
        return await asyncio.to_thread(read)

    async def _hand_to_index(self, source: SourceConfig, new: Sequence[Entry], parsed: Sequence[Entry],
                             tokens: Sequence[tuple[str, str]] | None) -> None:
        """Give the indexer the new entries and their tokens, so it need not read them back from the
        database. Best effort: whatever is not handed over, the indexer reads and tokenizes itself."""
        if self.on_indexable is None:
            return
        try:
            if tokens is not None:
                by_key = dict(zip((e.key for e in parsed), tokens, strict=True))
                new_tokens = [by_key[e.key] for e in new]
            else:
                new_tokens = await self.pool.tokenize(new)
            self.on_indexable(new, new_tokens)
        except Exception:  # the entries are stored; the indexer's catch-up still finds them
            log.warning("could not tokenize new entries of %s for the index here", source.id, exc_info=True)

    async def _record_failure(self, source: SourceConfig, error: str, retry_after: float | None,
                              failures_before: int, *, gone: bool = False) -> None:
        delay = self.backoff(source, failures_before, retry_after)
        log.warning("source %s failed (%d in a row), next try in %s: %s", source.id, failures_before + 1,
                    delay, error)
        failures = await asyncio.to_thread(
            self.storage.record_fetch_failure, source.id, now=self.clock(), error=error,
            next_poll_at=None if gone else self.clock() + delay, gone=gone)
        if failures == self.config.defaults.pause_after_failures and not gone:
            await asyncio.to_thread(self.storage.set_source_status, source.id, "paused")
            await self._notify(source, f"⏸️ Source **{source.name}** failed {failures} times in a row and is "
                               f"paused (retried every {self.config.defaults.max_backoff}). Last error: {error}")
        elif gone:
            await self._notify(source, f"🛑 Source **{source.name}** is gone (HTTP 410) and is no longer polled.")

    async def _note_recovery(self, source: SourceConfig, status_before: str) -> None:
        if status_before == "paused":
            await asyncio.to_thread(self.storage.set_source_status, source.id, "active")
            await self._notify(source, f"✅ Source **{source.name}** recovered and is polled normally again.")

    async def _notify(self, source: SourceConfig, text: str) -> None:
        channel = self.config.discord.admin_channel
        if channel is not None:
            await asyncio.to_thread(self.storage.enqueue_notice, channel, source.id, safe_notice(text),
                                    now=self.clock())
            if self.on_new_entries:
                self.on_new_entries(0)

    def backoff(self, source: SourceConfig, failures_before: int, retry_after: float | None) -> timedelta:
        """Retry-After when given; else the interval doubled per failure, capped, with ±10% jitter."""
        if retry_after is not None:
            return timedelta(seconds=max(0.0, retry_after))
        if failures_before + 1 >= self.config.defaults.pause_after_failures:
            return self.config.defaults.max_backoff
        base = source.interval * (2 ** min(failures_before, 16))
        capped = min(base, self.config.defaults.max_backoff)
        jittered: timedelta = capped * self.rng.uniform(0.9, 1.1)
        return jittered
