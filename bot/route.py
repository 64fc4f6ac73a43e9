"""Which destinations get which entries, rendered: pure, no I/O.

The router runs inside the transaction that stores a poll's new entries, so what it decides
(messages to send now, entries to hold for a digest) is recorded together with the entries:
nothing can be stored without its deliveries being queued, or queued twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.config import Config, FilterModel, RouteConfig, SourceConfig
from bot.digest_layout import DigestLayout, layout_digest, merge_duplicates
from bot.filters import EntryFilter
from bot.format import (
    CONTENT_LIMIT,
    MessageSpec,
    header_content,
    pack_embeds,
    render_entry,
    safe_text,
)
from bot.models import Entry, PlannedMessage, RoutingPlan
from bot.templates import MessageTemplate

log = logging.getLogger(__name__)

DEFAULT_SUMMARY_LENGTH = 300


@dataclass(frozen=True)
class CompiledRoute:
    config: RouteConfig
    filter: EntryFilter
    template: MessageTemplate | None
    zone: ZoneInfo

    @property
    def id(self) -> str:
        return self.config.id

    def wants_source(self, source_id: str) -> bool:
        return not self.config.sources or source_id in self.config.sources

    def wants(self, entry: Entry) -> bool:
        topics = self.config.topics
        if topics and not set(topics).intersection(entry.topics):
            return False
        return self.filter.matches(entry)


def compile_route(route: RouteConfig) -> CompiledRoute:
    where = f"route {route.id}"
    template = MessageTemplate.compile(route.template, where=f"{where}.template") if route.template else None
    return CompiledRoute(config=route, filter=EntryFilter.compile(FilterModel.rule(route.include),
                                                                  FilterModel.rule(route.exclude), where=where),
                         template=template, zone=ZoneInfo(route.timezone))


class Router:
    """Built from the effective config; rebuilt when sources change from Discord."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.routes = [compile_route(r) for r in config.all_routes()]
        self.by_id = {r.id: r for r in self.routes}
        self.topic_labels = {k: v.label or k for k, v in config.topics.items()}
        self.topic_order = list(config.topics)
        self.sources = {s.id: s for s in config.sources}

    def digest_routes(self) -> list[CompiledRoute]:
        return [r for r in self.routes if r.config.mode == "digest"]

    def routes_for_source(self, source_id: str) -> list[CompiledRoute]:
        return [r for r in self.routes if r.wants_source(source_id)]

    # -- realtime -----------------------------------------------------------------------------
    def plan(self, source: SourceConfig, entries: Sequence[Entry]) -> RoutingPlan:
        """``entries`` are stored (they have ids), oldest first."""
        messages: list[PlannedMessage] = []
        held: list[tuple[str, int]] = []
        for route in self.routes_for_source(source.id):
            chosen = [e for e in entries if route.wants(e)]
            if not chosen:
                continue
            if route.config.mode == "digest":
                held.extend((route.id, e.id or 0) for e in chosen)
                continue
            for spec, group in self.render_realtime(route, source, chosen):
                channel = route.config.channel_id or 0
                messages.append(PlannedMessage(route_id=route.id, destination=route.config.destination,
                                               channel_id=channel, entry_ids=tuple(e.id or 0 for e in group),
                                               payload=spec.to_json()))
        return RoutingPlan(messages=tuple(messages), digest_items=tuple(held))

    def render_realtime(self, route: CompiledRoute, source: SourceConfig,
                        entries: Sequence[Entry]) -> list[tuple[MessageSpec, list[Entry]]]:
        config = route.config
        header = config.header  # an implicit route carries its source's header
        summary_length = config.summary_length or source.summary_length or DEFAULT_SUMMARY_LENGTH
        username, avatar = self._identity(config, source)
        out: list[tuple[MessageSpec, list[Entry]]] = []
        if route.template is not None:
            groups = self._pack_text(route, source, entries, header, summary_length)
            for text, group in groups:
                roles, content = self._with_roles(config, group, text)
                out.append((MessageSpec(content=content, embeds=(), allowed_roles=roles, username=username,
                                        avatar_url=avatar), group))
            return out
        embeds = [render_entry(e, source_name=source.name, summary_length=summary_length, color=source.color,
                               topic_labels=self.topic_labels) for e in entries]
        for index, group_indexes in enumerate(pack_embeds(embeds)):
            group = [entries[i] for i in group_indexes]
            roles, content = self._with_roles(config, group, header_content(header) if index == 0 else None)
            out.append((MessageSpec(content=content, embeds=tuple(embeds[i] for i in group_indexes),
                                    allowed_roles=roles, username=username, avatar_url=avatar), group))
        return out

    def _pack_text(self, route: CompiledRoute, source: SourceConfig, entries: Sequence[Entry],
                   header: str | None, summary_length: int) -> list[tuple[str, list[Entry]]]:
        assert route.template is not None
        budget = CONTENT_LIMIT - 200  # room for role mentions
        groups: list[tuple[str, list[Entry]]] = []
        text = header_content(header) or ""
        group: list[Entry] = []
        for entry in entries:
            block = route.template.render(entry, source=source.name, topic_labels=self.topic_labels,
                                          summary_length=summary_length, tz=route.zone)[:budget]
            if not block.strip():  # e.g. a template of only {link} for an entry without one
                block = safe_text(entry.title or "(untitled)")[:budget]
            joined = f"{text}\n\n{block}" if text else block
            if len(joined) > budget and group:
                groups.append((text, group))
                text, group = block, [entry]
            else:
                text = joined
                group.append(entry)
        if group:
            groups.append((text, group))
        return groups

    @staticmethod
    def _with_roles(config: RouteConfig, entries: Sequence[Entry], content: str | None
                    ) -> tuple[tuple[int, ...], str | None]:
        """Role mentions are opt-in per topic; only the roles named for these entries' topics."""
        if not config.mention_roles:
            return (), content
        roles: list[int] = []
        for entry in entries:
            for topic in entry.topics:
                role = config.mention_roles.get(topic)
                if role is not None and role not in roles:
                    roles.append(role)
        if not roles:
            return (), content
        mentions = " ".join(f"<@&{r}>" for r in roles)
        return tuple(roles), (f"{mentions}\n{content}" if content else mentions)[:CONTENT_LIMIT]

    @staticmethod
    def _identity(config: RouteConfig, source: SourceConfig | None) -> tuple[str | None, str | None]:
        """Webhooks post under the source's own name and avatar when it has them, else the route's."""
        if config.webhook_url is None:
            return None, None
        username = (source.webhook_username if source else None) or config.username or (
            source.name[:80] if source else None)
        avatar = (source.webhook_avatar_url if source else None) or config.avatar_url
        return username, avatar

    # -- digests --------------------------------------------------------------------------------
    def render_digest(self, route: CompiledRoute, entries: Sequence[Entry], *, period_start: datetime,
                      period_end: datetime) -> tuple[DigestLayout, list[PlannedMessage]]:
        config = route.config
        named = [(e, self.sources[e.source_id].name if e.source_id in self.sources else e.source_id)
                 for e in entries]
        items = merge_duplicates(named)
        layout = layout_digest(
            items, header=config.header, period_start=period_start, period_end=period_end, tz=route.zone,
            group_by=config.group_by, topic_labels=self.topic_labels, topic_order=self.topic_order,
            max_messages=config.max_messages, summary_length=min(config.summary_length or 160, 600),
            search_hint="/search")
        username, avatar = self._identity(config, None)
        ids = tuple(e.id or 0 for e in entries)
        planned = []
        for index, spec in enumerate(layout.messages):
            roles, content = self._with_roles(config, entries, spec.content) if index == 0 else ((), spec.content)
            spec = MessageSpec(content=content, embeds=spec.embeds, allowed_roles=roles, username=username,
                               avatar_url=avatar)
            planned.append(PlannedMessage(route_id=route.id, destination=config.destination,
                                          channel_id=config.channel_id or 0,
                                          entry_ids=ids if index == 0 else (), payload=spec.to_json()))
        return layout, planned


def sources_in_guild(config: Config, guild_id: int | None, channel_guild: Callable[[int], int | None]
                     ) -> tuple[str, ...]:
    """Sources that post into this guild: through a route whose channel is in it (or a webhook
    route declared with ``guild:``), or added from Discord in it. In DMs: none."""
    if guild_id is None:
        return ()
    every = [s.id for s in config.sources]
    allowed: dict[str, None] = {}
    for route in config.all_routes():
        route_guild = route.guild_id if route.channel_id is None else channel_guild(route.channel_id)
        if route_guild == guild_id:
            allowed.update(dict.fromkeys(route.sources or every))
    allowed.update(dict.fromkeys(s.id for s in config.sources if s.guild_id == guild_id))
    known = set(every)
    return tuple(s for s in allowed if s in known)
