"""Shared fakes for the Discord adapter tests: a small in-memory catalog and config builders."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from bot.catalog import ResultItem, ResultPage, SourceStatus
from bot.config import (
    Config,
    DiscordSettings,
    FetchSettingsModel,
    HealthSettings,
    PollDefaults,
    SourceConfig,
    StorageSettings,
    TopicDef,
)
from bot.errors import QueryError
from bot.format import safe_text
from bot.models import Entry, SourceState

__all__ = ["FakeCatalog", "ResultItem", "ResultPage", "SourceStatus", "make_config", "make_entry"]

GUILD_ID = 1_000_000_000_000_001
OTHER_GUILD_ID = 1_000_000_000_000_002
CHANNEL_ID = 2_000_000_000_000_001
OTHER_CHANNEL_ID = 2_000_000_000_000_002


def source_config(source_id: str, name: str, channels: Sequence[int], topics: Sequence[str] = ()) -> SourceConfig:
    return SourceConfig(id=source_id, name=name, url=f"https://example.org/{source_id}.xml", topics=tuple(topics),
                        interval=timedelta(minutes=15), channels=tuple(channels), color=None, backfill=3,
                        header=None, summary_length=300, enabled=True, allow_file=False)


def make_config(*, sources: Sequence[SourceConfig] | None = None, ephemeral: bool = True, per_page: int = 3,
                api_base: str = "https://discord.com/api/v10", gateway_url: str = "wss://gateway.discord.gg",
                guild_ids: Sequence[int] = (), token: str | None = "secret-token-value") -> Config:
    if sources is None:
        sources = [source_config("lab", "Lab News", [CHANNEL_ID], ["ml"]),
                   source_config("papers", "Papers", [OTHER_CHANNEL_ID], ["ml", "nlp"])]
    return Config(
        file=None,
        discord=DiscordSettings(api_base=api_base, gateway_url=gateway_url, guild_ids=tuple(guild_ids),
                                ephemeral_replies=ephemeral, results_per_page=per_page),
        storage=StorageSettings(), fetch=FetchSettingsModel(), health=HealthSettings(), defaults=PollDefaults(),
        topics={"ml": TopicDef(label="Machine learning"), "nlp": TopicDef(label="Language")},
        sources=tuple(sources), token=token)


def make_entry(n: int, *, source_id: str = "lab", title: str | None = None, summary: str | None = None,
               topics: Sequence[str] = ("ml",), link: str | None = None) -> Entry:
    return Entry(source_id=source_id, key=f"k{n}", title=title if title is not None else f"Entry number {n}",
                 link=link if link is not None else f"https://example.org/e/{n}",
                 summary=summary if summary is not None else f"Summary of entry {n} about transformers.",
                 published=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n), topics=tuple(topics), id=n)


class FakeCatalog:
    """Enough of ``bot.catalog.Catalog`` for the adapter: substring search, newest first."""

    def __init__(self, entries: Sequence[Entry], names: dict[str, str] | None = None) -> None:
        self.entries = sorted(entries, key=lambda e: e.published or datetime.min.replace(tzinfo=UTC), reverse=True)
        self.names = names or {"lab": "Lab News", "papers": "Papers"}
        self.calls: list[tuple[str, dict[str, object]]] = []

    def _page(self, found: list[Entry], page: int, per_page: int, terms: Sequence[str]) -> ResultPage:
        start = (page - 1) * per_page
        items = []
        for entry in found[start:start + per_page]:
            snippet = safe_text(entry.summary)
            for term in terms:
                snippet = re.sub(re.escape(term), lambda m: f"**{m.group(0)}**", snippet, flags=re.IGNORECASE)
            items.append(ResultItem(entry=entry, source_name=self.names.get(entry.source_id, entry.source_id),
                                    snippet=snippet, score=1.0))
        return ResultPage(items=tuple(items), total=len(found), page=page, per_page=per_page)

    def _filter(self, topic: str | None, source: str | None, allowed: Sequence[str] | None) -> list[Entry]:
        if source is not None and source not in self.names:
            raise QueryError(f"no source called {source!r}; try /sources")
        return [e for e in self.entries
                if (allowed is None or e.source_id in allowed) and (source is None or e.source_id == source)
                and (topic is None or topic in e.topics)]

    def search(self, text: str = "", *, topic: str | None = None, source: str | None = None,
               since: str | None = None, until: str | None = None, page: int = 1, per_page: int = 5,
               allowed: Sequence[str] | None = None) -> ResultPage:
        self.calls.append(("search", {"text": text, "topic": topic, "source": source, "since": since,
                                      "until": until, "page": page, "per_page": per_page, "allowed": allowed}))
        if since == "bad":
            raise QueryError("since: use a date like 2026-01-01 or an age like 7d, 12h, 2w")
        if not text.strip() and topic is None and not source:
            raise QueryError("type something to search for, or pick a topic or a source")
        words = text.lower().split()
        found = [e for e in self._filter(topic, source, allowed)
                 if all(w in (e.title + " " + e.summary).lower() for w in words)]
        return self._page(found, max(1, page), per_page, words)

    def latest(self, *, topic: str | None = None, source: str | None = None, page: int = 1,
               per_page: int = 5, allowed: Sequence[str] | None = None) -> ResultPage:
        self.calls.append(("latest", {"topic": topic, "source": source, "page": page, "allowed": allowed}))
        return self._page(self._filter(topic, source, allowed), max(1, page), per_page, ())

    def topics(self, allowed: Sequence[str] | None = None) -> list[tuple[str, str, int]]:
        counts: dict[str, int] = {}
        for entry in self._filter(None, None, allowed):
            for topic in entry.topics:
                counts[topic] = counts.get(topic, 0) + 1
        return sorted(((t, t.upper(), c) for t, c in counts.items()), key=lambda r: (-r[2], r[0]))

    def sources(self, allowed: Sequence[str] | None = None) -> list[SourceStatus]:
        return [SourceStatus(sid, name, f"https://example.org/{sid}.xml",
                             SourceState(source_id=sid, url=f"https://example.org/{sid}.xml", polled_once=True,
                                         entry_count=sum(e.source_id == sid for e in self.entries)), 0, None)
                for sid, name in self.names.items() if allowed is None or sid in allowed]

    def topic_choices(self, typed: str, allowed: Sequence[str] | None = None) -> list[tuple[str, str]]:
        return [(t.upper(), t) for t in ("ml", "nlp") if typed.lower() in t][:25]

    def source_choices(self, typed: str, allowed: Sequence[str] | None = None) -> list[tuple[str, str]]:
        return [(name, sid) for sid, name in self.names.items()
                if (allowed is None or sid in allowed) and typed.lower() in name.lower()][:25]
