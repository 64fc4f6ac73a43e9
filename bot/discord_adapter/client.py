"""The gateway client: intents, global no-mentions, command registration and sync, guild scoping."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
import discord.gateway
import discord.http
import yarl
from discord.ext import commands

from bot.config import DEFAULT_GATEWAY, Config
from bot.discord_adapter import CatalogPort
from bot.discord_adapter.commands import add_commands
from bot.discord_adapter.errors import DigestCommandTree
from bot.discord_adapter.views import PageButton
from bot.errors import ConfigError
from bot.route import sources_in_guild

if TYPE_CHECKING:
    from bot.admin import SourceAdmin
    from bot.digest import DigestRunner

log = logging.getLogger(__name__)

ReadyHook = Callable[[], Awaitable[None]]
MAX_RATELIMIT_WAIT = 30.0
"""Seconds discord.py may sleep on a 429 by itself (its minimum); longer limits surface as retry-after."""


def _gateway_url(gateway_url: str) -> yarl.URL:
    url = yarl.URL(gateway_url)
    if url.scheme not in ("ws", "wss") or not url.host:
        raise ConfigError("must be a ws:// or wss:// URL", key="discord.gateway_url")
    if url.query_string or url.fragment:
        # discord.py builds the connect URL with ``with_query(v=10, encoding=json, …)``, which
        # replaces any query of ours: refuse rather than silently drop it.
        raise ConfigError("must not have a query string (discord.py adds its own ?v=…&encoding=…)",
                          key="discord.gateway_url")
    return url if url.path else url.with_path("/")


def point_discord_py_at(api_base: str, gateway_url: str) -> None:
    """Send every REST call (including interaction responses and webhooks, which share
    ``Route.BASE``) to ``api_base`` and the first gateway connect to ``gateway_url``.

    discord.py's ``Client`` (unsharded) never asks ``/gateway/bot`` for the URL: it connects to
    ``DiscordWebSocket.DEFAULT_GATEWAY``, goes back there after an invalidated session, and resumes
    at the ``resume_gateway_url`` from READY. :class:`DigestBot` pins resumes to a custom gateway
    too, so a proxy or a fake is never bypassed.
    """
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = _gateway_url(gateway_url)


def _custom_gateway(gateway_url: str) -> yarl.URL | None:
    if gateway_url.rstrip("/") == DEFAULT_GATEWAY.rstrip("/"):
        return None
    return _gateway_url(gateway_url)


def intents() -> discord.Intents:
    """Default intents minus the privileged ones: slash commands need no message content."""
    wanted = discord.Intents.default()
    wanted.message_content = False
    wanted.members = False
    wanted.presences = False
    return wanted


class DigestBot(commands.Bot):
    """Slash commands over a :class:`CatalogPort`; feed posts go out through ``DiscordDeliverer``."""

    def __init__(self, config: Config, catalog: CatalogPort, *, on_ready_hook: ReadyHook | None = None,
                 admin: SourceAdmin | None = None, digests: DigestRunner | None = None,
                 wake_outbox: Callable[[], None] | None = None) -> None:
        # Rate limits longer than this raise discord.RateLimited instead of being slept inside
        # channel.send(); DiscordDeliverer turns that into DeliveryError(retry_after) and the outbox
        # reschedules the row, so a global 429 of minutes never blocks a delivery round (or shutdown).
        super().__init__(command_prefix=commands.when_mentioned, help_command=None, intents=intents(),
                         allowed_mentions=discord.AllowedMentions.none(), tree_cls=DigestCommandTree,
                         max_ratelimit_timeout=MAX_RATELIMIT_WAIT)
        self.config = config
        self.catalog = catalog
        self.admin = admin
        self.digests = digests
        self._wake_outbox = wake_outbox
        self.topic_labels = {key: topic.label or key for key, topic in config.topics.items()}
        self._on_ready_hook = on_ready_hook
        self._pinned_gateway = _custom_gateway(config.discord.gateway_url)

    @property
    def ephemeral(self) -> bool:
        return self.config.discord.ephemeral_replies

    @property
    def connected(self) -> bool:
        """For the health check: READY seen, not closed, and the gateway socket open right now."""
        ws = getattr(self, "ws", None)
        return self.is_ready() and not self.is_closed() and ws is not None and ws.open

    def allowed_sources_for_guild(self, guild_id: int | None) -> tuple[str, ...]:
        """Sources that post into this guild (channel → guild from the gateway cache); none in DMs."""
        return sources_in_guild(self.config, guild_id, self.channel_guild)

    def wake_outbox(self) -> None:
        if self._wake_outbox is not None:
            self._wake_outbox()

    def reconfigure(self, config: Config) -> None:
        """Sources changed from Discord: scope checks and autocomplete use the new list at once."""
        self.config = config

    def channel_guild(self, channel_id: int) -> int | None:
        guild = getattr(self.get_channel(channel_id), "guild", None)
        return guild.id if guild is not None else None

    async def setup_hook(self) -> None:
        await add_commands(self)
        self.add_dynamic_items(PageButton)
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """With ``discord.guild_ids`` set, commands go to those guilds only (instant) and the global
        list is emptied, so no command shows twice; otherwise a global sync (can take an hour).

        A failed sync is logged, not fatal: feeds still post without commands."""
        guilds = [discord.Object(id=guild_id) for guild_id in self.config.discord.guild_ids]
        for guild in guilds:
            self.tree.copy_global_to(guild=guild)
        if guilds:
            self.tree.clear_commands(guild=None)
        try:
            synced = await self.tree.sync()
            log.info("synced %d global commands", len(synced))
        except discord.HTTPException:
            log.exception("could not sync global slash commands")
        for guild in guilds:
            try:
                synced = await self.tree.sync(guild=guild)
                log.info("synced %d commands to guild %s", len(synced), guild.id)
            except discord.Forbidden:
                log.error("cannot sync commands to guild %s: is the bot in it, invited with the "
                          "applications.commands scope?", guild.id)
            except discord.HTTPException:
                log.exception("could not sync slash commands to guild %s", guild.id)

    async def on_connect(self) -> None:
        """READY has just set ``ws.gateway`` to Discord's ``resume_gateway_url``; with a custom
        gateway configured, resume there instead so it is never bypassed."""
        ws = getattr(self, "ws", None)
        if self._pinned_gateway is not None and ws is not None and ws.gateway != self._pinned_gateway:
            log.debug("resuming at %s instead of %s", self._pinned_gateway, ws.gateway)
            ws.gateway = self._pinned_gateway

    async def on_ready(self) -> None:
        log.info("connected to Discord as %s in %d guilds", self.user, len(self.guilds))
        if self._on_ready_hook is not None:
            await self._on_ready_hook()
