"""Read side for people: search, latest, topics and source status as plain view objects.

Used by the Discord commands and the command-line ``search``; knows nothing of Discord. Every
call takes the set of sources the asker may see (``allowed``: None = all), which is how a guild
only ever sees entries from sources that post into it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.clock import Clock
from bot.config import Config
from bot.errors import QueryError
from bot.models import Entry, SearchRequest, SourceState
from bot.search.index import SearchIndex
from bot.search.snippet import make_snippet
from bot.store.sqlite import SQLiteStorage

MAX_CHOICES = 25
_RELATIVE = re.compile(r"^\s*(\d{1,4})\s*([hdwmy])\s*$", re.IGNORECASE)
_RELATIVE_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1),
                   "m": timedelta(days=30), "y": timedelta(days=365)}


@dataclass(frozen=True, slots=True)
class ResultItem:
    entry: Entry
    source_name: str
    snippet: str
    score: float


@dataclass(frozen=True, slots=True)
class ResultPage:
    items: tuple[ResultItem, ...]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source_id: str
    name: str
    url: str
    state: SourceState
    failed_deliveries: int
    last_delivery_error: str | None


def parse_when(value: str | None, *, now: datetime, key: str) -> datetime | None:
    """``7d``, ``12h``, ``2w`` (ago) or an ISO date ``2026-01-01`` → UTC datetime."""
    if value is None or not value.strip():
        return None
    match = _RELATIVE.match(value)
    if match:
        return now - int(match.group(1)) * _RELATIVE_UNITS[match.group(2).lower()]
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise QueryError(f"{key}: use a date like 2026-01-01 or an age like 7d, 12h, 2w") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class Catalog:
    def __init__(self, config: Config, storage: SQLiteStorage, index: SearchIndex, *, clock: Clock) -> None:
        self.config = config
        self.storage = storage
        self.index = index
        self.clock = clock
        self.names = {s.id: s.name for s in config.sources}
        self.topic_labels = {k: v.label or k for k, v in config.topics.items()}

    def reconfigure(self, config: Config) -> None:
        """Sources were added or changed from Discord; names of removed ones stay for old entries."""
        self.config = config
        self.names.update({s.id: s.name for s in config.sources})

    def _sources(self, allowed: Sequence[str] | None, source: str | None) -> tuple[str, ...] | None:
        if source:
            source_id = self.resolve_source(source)
            if allowed is not None and source_id not in allowed:
                return ()
            return (source_id,)
        return None if allowed is None else tuple(allowed)

    def resolve_source(self, text: str) -> str:
        wanted = text.strip().casefold()
        for source in self.config.sources:
            if wanted in (source.id.casefold(), source.name.casefold()):
                return source.id
        raise QueryError(f"no source called {text.strip()[:80]!r}; try /sources")

    def resolve_topic(self, text: str | None) -> str | None:
        if text is None or not text.strip():
            return None
        wanted = text.strip().casefold()
        for topic_id, label in self.topic_labels.items():
            if wanted in (topic_id.casefold(), label.casefold()):
                return topic_id
        if not self.config.topics:
            return text.strip()
        raise QueryError(f"no topic called {text.strip()[:80]!r}; try /topics")

    def search(self, text: str = "", *, topic: str | None = None, source: str | None = None,
               since: str | None = None, until: str | None = None, page: int = 1, per_page: int = 5,
               allowed: Sequence[str] | None = None) -> ResultPage:
        now = self.clock()
        page = max(1, page)
        request = SearchRequest(
            text=text or "", topic=self.resolve_topic(topic), source_ids=self._sources(allowed, source),
            since=parse_when(since, now=now, key="since"), until=parse_when(until, now=now, key="until"),
            limit=per_page, offset=(page - 1) * per_page)
        if not request.text.strip() and request.topic is None and not source:
            raise QueryError("type something to search for, or pick a topic or a source")
        result = self.index.search(request)
        entries = {e.id: e for e in self.storage.entries_by_id([h.entry_id for h in result.hits])}
        items = tuple(
            ResultItem(entry=entries[h.entry_id], source_name=self.names.get(entries[h.entry_id].source_id,
                                                                               entries[h.entry_id].source_id),
                       snippet=make_snippet(entries[h.entry_id].summary, result.terms), score=h.score)
            for h in result.hits if h.entry_id in entries)
        return ResultPage(items=items, total=result.total, page=page, per_page=per_page)

    def latest(self, *, topic: str | None = None, source: str | None = None, page: int = 1,
               per_page: int = 5, allowed: Sequence[str] | None = None) -> ResultPage:
        page = max(1, page)
        source_ids = self._sources(allowed, source)
        entries = self.storage.latest_entries(topic=self.resolve_topic(topic), source_ids=source_ids,
                                              limit=per_page + 1, offset=(page - 1) * per_page)
        more = len(entries) > per_page
        items = tuple(ResultItem(entry=e, source_name=self.names.get(e.source_id, e.source_id),
                                 snippet=make_snippet(e.summary, ()), score=0.0) for e in entries[:per_page])
        total = (page - 1) * per_page + len(items) + (1 if more else 0)
        return ResultPage(items=items, total=total, page=page, per_page=per_page)

    def topics(self, allowed: Sequence[str] | None = None) -> list[tuple[str, str, int]]:
        counts = dict(self.storage.topic_counts(allowed))
        ids = list(dict.fromkeys([*self.config.topics, *counts]))
        rows = [(t, self.topic_labels.get(t, t), counts.get(t, 0)) for t in ids]
        return sorted(rows, key=lambda r: (-r[2], r[0]))

    def sources(self, allowed: Sequence[str] | None = None) -> list[SourceStatus]:
        states = {s.source_id: s for s in self.storage.source_states()}
        failures = self.storage.failed_delivery_counts()
        out = []
        for source in self.config.sources:
            if allowed is not None and source.id not in allowed:
                continue
            state = states.get(source.id) or SourceState(source_id=source.id, url=source.url)
            failed, reason = failures.get(source.id, (0, None))
            out.append(SourceStatus(source.id, source.name, state.url, state, failed, reason))
        return out

    def topic_choices(self, typed: str, allowed: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """(label, value) pairs for autocomplete, ≤25, cheapest first: no database work."""
        wanted = typed.strip().casefold()
        choices = [(label if label == t else f"{label} ({t})", t) for t, label in self.topic_labels.items()
                   if not wanted or wanted in t.casefold() or wanted in label.casefold()]
        return [(name[:100], value[:100]) for name, value in choices[:MAX_CHOICES]]

    def source_choices(self, typed: str, allowed: Sequence[str] | None = None) -> list[tuple[str, str]]:
        wanted = typed.strip().casefold()
        choices = [(s.name, s.id) for s in self.config.sources
                   if (allowed is None or s.id in allowed)
                   and (not wanted or wanted in s.id.casefold() or wanted in s.name.casefold())]
        return [(name[:100], value[:100]) for name, value in choices[:MAX_CHOICES]]
