"""The storage protocol: the only storage type the core sees."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from bot.models import Entry, OutboxMessage, RoutingPlan, SourceState, StoreResult

Planner = Callable[[Sequence[Entry]], RoutingPlan]
"""The router: stored entries to post → rendered messages and digest items."""


class Storage(Protocol):
    def close(self) -> None: ...

    def sync_sources(self, sources: Sequence[tuple[str, str]]) -> None:
        """Make sure a state row exists per (source_id, configured url); a changed configured URL
        replaces the stored one (and forgets its validators)."""

    def source_state(self, source_id: str) -> SourceState: ...

    def source_states(self) -> list[SourceState]: ...

    def record_fetch_success(self, source_id: str, *, now: datetime, etag: str | None,
                             last_modified: str | None, new_url: str | None = None) -> None: ...

    def record_fetch_failure(self, source_id: str, *, now: datetime, error: str,
                             next_poll_at: datetime | None, gone: bool = False) -> int:
        """Returns the number of consecutive failures including this one."""

    def store_entries(self, source_id: str, entries: Sequence[Entry], *, now: datetime, backfill: int,
                      plan: Planner | None = None) -> StoreResult:
        """Insert the entries not seen before and queue what ``plan`` makes of the ones to post
        (all new ones; on a first poll only the newest ``backfill``), in one transaction."""

    def pending_messages(self, *, now: datetime, limit: int = 100) -> list[OutboxMessage]: ...

    def mark_sent(self, message_id: int, *, now: datetime, discord_message_id: str | None) -> None: ...

    def mark_retry(self, message_id: int, *, error: str, next_attempt_at: datetime) -> None: ...

    def mark_failed(self, message_id: int, *, error: str) -> None: ...

    def entries_by_id(self, ids: Sequence[int]) -> list[Entry]: ...

    def entries_after(self, last_id: int, limit: int) -> list[Entry]: ...

    def max_entry_id(self) -> int: ...

    def latest_entries(self, *, topic: str | None, source_ids: Sequence[str] | None, limit: int,
                       offset: int = 0) -> list[Entry]: ...

    def topic_counts(self, source_ids: Sequence[str] | None = None) -> list[tuple[str, int]]: ...

    def set_entry_topics(self, updates: Sequence[tuple[int, tuple[str, ...]]]) -> None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def get_meta(self, key: str) -> str | None: ...

    def failed_delivery_counts(self) -> dict[str, tuple[int, str | None]]:
        """Per source: failed messages and the last failure reason."""
