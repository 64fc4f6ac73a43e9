"""Plain data passed between the pipeline stages. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one HTTP (or file) fetch produced.

    ``body`` is None when the server answered 304 Not Modified. ``permanent_url`` is set when a
    301/308 redirect chain ended elsewhere, so the stored URL can be updated.
    """

    url: str
    status: int
    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    permanent_url: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.body is None


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry as the feed states it, before normalisation. Text fields may hold HTML."""

    guid: str | None
    link: str | None
    title: str | None
    summary_html: str | None
    published: datetime | None = None
    updated: datetime | None = None
    author: str | None = None
    categories: tuple[str, ...] = ()
    thumbnail: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed as parsed. ``warning`` holds a best-effort note (e.g. the XML was not well-formed)."""

    title: str | None
    link: str | None
    entries: tuple[ParsedEntry, ...]
    format: str
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """A normalised entry: plain text, UTC times, an identity ``key`` unique within its source.

    ``id`` is the database row id, None until stored.
    """

    source_id: str
    key: str
    title: str
    link: str | None
    summary: str
    published: datetime | None
    updated: datetime | None = None
    author: str | None = None
    categories: tuple[str, ...] = ()
    thumbnail: str | None = None
    topics: tuple[str, ...] = ()
    id: int | None = None
    first_seen: datetime | None = None

    def __reduce__(self) -> tuple[type[Entry], tuple[object, ...]]:
        # Entries cross a process boundary after every parse. The dataclass default pickles by
        # state and restores field by field through ``fields()``; a constructor call is ~3x faster.
        return Entry, (self.source_id, self.key, self.title, self.link, self.summary, self.published,
                       self.updated, self.author, self.categories, self.thumbnail, self.topics, self.id,
                       self.first_seen)

    def stored_as(self, entry_id: int, first_seen: datetime) -> Entry:
        """This entry as the database now holds it (``dataclasses.replace`` costs ~4x more)."""
        return Entry(self.source_id, self.key, self.title, self.link, self.summary, self.published,
                     self.updated, self.author, self.categories, self.thumbnail, self.topics, entry_id,
                     first_seen)


@dataclass(frozen=True, slots=True)
class SearchHit:
    entry_id: int
    score: float


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """A search as a user asked it. ``text`` is raw user text; the engine parses and escapes it."""

    text: str = ""
    topic: str | None = None
    source_ids: tuple[str, ...] | None = None  # None = any source; () = none allowed
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 10
    offset: int = 0


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: tuple[SearchHit, ...]
    total: int
    terms: tuple[str, ...] = field(default=())  # surface forms to highlight in snippets


@dataclass(frozen=True, slots=True)
class SourceState:
    """What the database remembers about a source between polls and restarts."""

    source_id: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    status: str = "active"  # active | gone | paused
    polled_once: bool = False
    last_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    consecutive_failures: int = 0
    next_poll_at: datetime | None = None
    entry_count: int = 0


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One Discord message waiting to be sent: a group of entries for one channel.

    The grouping is decided when the entries are stored, so a retry after a crash re-sends
    exactly the same message with the same ``nonce``.
    """

    id: int
    channel_id: int
    source_id: str
    header: str | None
    entry_ids: tuple[int, ...]
    nonce: str
    attempts: int = 0
    last_error: str | None = None
    route_id: str | None = None
    destination: str = ""
    """``channel:<id>`` or ``webhook:<route id>``: the ordered queue this message belongs to."""
    payload: str | None = None
    """The message as rendered when queued (``MessageSpec.to_json``); None for older rows."""

    @property
    def webhook_route(self) -> str | None:
        return self.destination.removeprefix("webhook:") if self.destination.startswith("webhook:") else None


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """A message the router decided to send, rendered and ready to queue."""

    route_id: str
    destination: str
    channel_id: int
    entry_ids: tuple[int, ...]
    payload: str


@dataclass(frozen=True, slots=True)
class RoutingPlan:
    messages: tuple[PlannedMessage, ...] = ()
    digest_items: tuple[tuple[str, int], ...] = ()
    """(route id, entry id) pairs held for the route's next digest."""


@dataclass(frozen=True, slots=True)
class StoreResult:
    new_entries: tuple[Entry, ...]
    queued_messages: int
    reissued: int = 0
    """Entries skipped because their guid changed while link and title stayed the same."""
