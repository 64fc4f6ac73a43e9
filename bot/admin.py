"""Managing sources at run time (from Discord or the CLI): add, remove, pause, resume, edit, OPML.

Every change is written to the database (``runtime_sources``) and then applied to the running
app with ``App.reconfigure``; see ``bot.registry`` for how it combines with the YAML. Only http(s)
URLs can be set this way, and they go through the same private-address guard as every fetch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bot.config import SourceConfig
from bot.errors import ConfigError, DigestError, QueryError
from bot.models import Entry
from bot.opml import OpmlFeed, export_opml, parse_opml
from bot.registry import new_source_id, validate_settings

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


class AdminError(QueryError):
    """A management request that cannot be done; the message is shown to the person who asked."""


@dataclass(frozen=True)
class SourcePreview:
    url: str
    entries: int
    newest: Entry | None


@dataclass(frozen=True)
class ImportReport:
    added: tuple[str, ...]
    skipped: tuple[str, ...]
    """'url: why' for each feed not added (already present, invalid)."""


class SourceAdmin:
    def __init__(self, app: App) -> None:
        self.app = app
        self._lock = asyncio.Lock()

    # -- look-ups ---------------------------------------------------------------------------
    def source(self, source_id: str, *, allowed: Sequence[str] | None = None) -> SourceConfig:
        """A source by id or name that the caller may manage (``allowed``: the guild's sources)."""
        wanted = source_id.strip().casefold()
        for source in self.app.config.sources:
            if wanted in (source.id.casefold(), source.name.casefold()):
                if allowed is not None and source.id not in allowed:
                    break
                return source
        raise AdminError(f"no source called {source_id.strip()[:80]!r} here; see /sources list")

    def check_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Cleaned settings, or AdminError naming what is wrong."""
        try:
            return validate_settings(settings, self.app.config, added=False)
        except ConfigError as exc:
            raise AdminError(str(exc)) from None

    def _check_host(self, url: str) -> None:
        """Refuse a private IP literal at once (names are checked after DNS, at every fetch)."""
        host = urlsplit(url).hostname or ""
        try:
            self.app.fetcher.policy.check_url_host(host)
        except DigestError as exc:
            raise AdminError(str(exc)) from None

    # -- preview ----------------------------------------------------------------------------
    async def preview(self, url: str) -> SourcePreview:
        """Fetch and parse once, as the poller would (guarded, http(s) only), without storing."""
        settings = self.check_settings({"url": url})
        try:
            result = await self.app.fetcher.fetch(settings["url"], allow_file=False)
            if result.body is None:
                raise AdminError("the server answered 304 Not Modified to a first request; cannot preview")
            entries = await self.app.pool.parse(result.body, result.url, result.content_type, "preview", ())
        except DigestError as exc:
            raise AdminError(f"cannot use that feed: {exc}") from None
        newest = max(entries, key=lambda e: (e.published or e.updated or _EPOCH), default=None)
        return SourcePreview(url=settings["url"], entries=len(entries), newest=newest)

    # -- changes ----------------------------------------------------------------------------
    async def add(self, *, url: str, name: str | None, channel_id: int | None, topics: Sequence[str] = (),
                  interval: timedelta | None = None, guild_id: int | None = None) -> SourceConfig:
        async with self._lock:
            config = self.app.config
            settings: dict[str, Any] = {"url": url, "name": name or _name_from_url(url)}
            if topics:
                settings["topics"] = list(topics)
            if interval is not None:
                settings["interval"] = interval.total_seconds()
            if channel_id is not None:
                settings["channels"] = [channel_id]
            try:
                clean = validate_settings(settings, config, added=True)
            except ConfigError as exc:
                raise AdminError(str(exc)) from None
            self._check_host(clean["url"])
            if any(s.url.rstrip("/") == clean["url"].rstrip("/") for s in config.sources):
                raise AdminError(f"{clean['url'][:200]} is already a source")
            taken = [s.id for s in config.sources] + [r[0] for r in await asyncio.to_thread(
                self.app.storage.runtime_sources)]
            source_id = new_source_id(clean["name"], taken)
            await asyncio.to_thread(self.app.storage.put_runtime_source, source_id, "added", clean,
                                    guild_id=guild_id, now=self.app.clock())
            new_config = await self.app.reconfigure()
            log.info("source %s added (%s)", source_id, clean["url"])
            added = new_config.source(source_id)
            assert added is not None
            return added

    async def change(self, source_id: str, changes: dict[str, Any], *,
                     allowed: Sequence[str] | None = None) -> SourceConfig | None:
        """Apply ``changes`` (name, url, topics, interval seconds, channels, enabled, removed)."""
        async with self._lock:
            source = self.source(source_id, allowed=allowed)
            clean = self.check_settings(changes)
            if "url" in clean:
                # the same guarded, http(s)-only fetch as /sources add: refuse now, not at the next poll
                await self.preview(clean["url"])
            rows = {r[0]: r for r in await asyncio.to_thread(self.app.storage.runtime_sources)}
            existing = rows.get(source.id)
            kind = "added" if source.origin == "discord" else "override"
            settings = dict(existing[2]) if existing else {}
            if kind == "added" and clean.get("removed"):
                await asyncio.to_thread(self.app.storage.delete_runtime_source, source.id)
            else:
                settings.update(clean)
                await asyncio.to_thread(self.app.storage.put_runtime_source, source.id, kind, settings,
                                        guild_id=existing[3] if existing else source.guild_id,
                                        now=self.app.clock())
            config = await self.app.reconfigure()
            log.info("source %s changed: %s", source.id, sorted(clean))
            return config.source(source.id)

    async def remove(self, source_id: str, *, allowed: Sequence[str] | None = None) -> None:
        await self.change(source_id, {"removed": True}, allowed=allowed)

    async def pause(self, source_id: str, *, allowed: Sequence[str] | None = None) -> None:
        await self.change(source_id, {"enabled": False}, allowed=allowed)

    async def resume(self, source_id: str, *, allowed: Sequence[str] | None = None) -> None:
        await self.change(source_id, {"enabled": True}, allowed=allowed)

    async def reset(self, source_id: str) -> bool:
        """Forget what was changed from Discord for a config-file source (CLI only)."""
        rows = {r[0]: r for r in await asyncio.to_thread(self.app.storage.runtime_sources)}
        if source_id not in rows:
            return False
        await asyncio.to_thread(self.app.storage.delete_runtime_source, source_id)
        await self.app.reconfigure()
        return True

    # -- OPML -------------------------------------------------------------------------------
    async def import_opml(self, data: bytes, *, channel_id: int | None, guild_id: int | None,
                          where: str = "OPML file") -> ImportReport:
        try:
            feeds = parse_opml(data, where=where)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        added: list[str] = []
        skipped: list[str] = []
        for feed in feeds:
            topics = [t for t in (c.strip().lower() for c in feed.categories) if t in self.app.config.topics]
            try:
                source = await self.add(url=feed.url, name=feed.title, channel_id=channel_id, topics=topics,
                                        guild_id=guild_id)
            except AdminError as exc:
                skipped.append(f"{feed.url[:200]}: {exc}")
                continue
            added.append(source.id)
        return ImportReport(tuple(added), tuple(skipped))

    def export_opml(self, *, allowed: Sequence[str] | None = None) -> bytes:
        feeds = [OpmlFeed(url=s.url, title=s.name, html_url=None, categories=tuple(s.topics))
                 for s in self.app.config.sources
                 if (allowed is None or s.id in allowed) and s.url.lower().startswith(("http://", "https://"))]
        return export_opml(feeds)


def _name_from_url(url: str) -> str:
    host = urlsplit(url.strip()).hostname or "feed"
    return host.removeprefix("www.")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
