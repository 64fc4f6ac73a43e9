"""/digest preview and /digest now (Manage Server): look at or post a digest route's next digest."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.admin import AdminError
from bot.discord_adapter.commands.sources import NONE, require_manage_guild
from bot.discord_adapter.embeds import to_discord_embed
from bot.discord_adapter.errors import defer
from bot.format import MessageSpec
from bot.route import CompiledRoute

if TYPE_CHECKING:
    from bot.digest import DigestRunner
    from bot.discord_adapter.client import DigestBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["DigestBot"]


class DigestGroup(app_commands.Group, name="digest", description="Scheduled digests of this server",
                  guild_only=True, default_permissions=discord.Permissions(manage_guild=True)):
    def __init__(self, bot: DigestBot) -> None:
        super().__init__()
        self.bot = bot

    @property
    def digests(self) -> DigestRunner:
        if self.bot.digests is None:
            raise AdminError("digests are not available")
        return self.bot.digests

    def routes_here(self, interaction: Interaction) -> list[CompiledRoute]:
        out = []
        for route in self.digests.router.digest_routes():
            config = route.config
            guild = config.guild_id if config.channel_id is None else self.bot.channel_guild(config.channel_id)
            if guild is not None and guild == interaction.guild_id:
                out.append(route)
        return out

    def route(self, interaction: Interaction, name: str | None) -> CompiledRoute:
        routes = self.routes_here(interaction)
        if not routes:
            raise AdminError("no digest route posts into this server (add one under 'routes:' in the config)")
        if name is None:
            if len(routes) > 1:
                raise AdminError("this server has several digest routes; pick one")
            return routes[0]
        for route in routes:
            if route.id == name.strip():
                return route
        raise AdminError(f"no digest route called {name.strip()[:80]!r} in this server")

    @app_commands.command(name="preview", description="Privately show what the next digest would post now")
    @app_commands.describe(route="The digest route (needed when this server has several)")
    async def preview(self, interaction: Interaction, route: app_commands.Range[str, 1, 64] | None = None) -> None:
        require_manage_guild(interaction)
        await defer(interaction, ephemeral=True)
        chosen = self.route(interaction, route)
        run, planned = await self.digests.preview(chosen)
        if not planned:
            await interaction.followup.send(
                f"`{chosen.id}`: nothing has arrived since the last digest; the next one would post nothing.",
                ephemeral=True, allowed_mentions=NONE)
            return
        first = MessageSpec.from_json(planned[0].payload)
        note = (f"Preview of `{chosen.id}` ({run.entries} entries, {len(planned)} message(s)); "
                "nothing was posted.\n")
        await interaction.followup.send((note + (first.content or ""))[:2000],
                                        embeds=[to_discord_embed(e) for e in first.embeds], ephemeral=True,
                                        allowed_mentions=NONE)

    @app_commands.command(name="now", description="Post the digest now instead of at its next scheduled time")
    @app_commands.describe(route="The digest route (needed when this server has several)")
    async def now(self, interaction: Interaction, route: app_commands.Range[str, 1, 64] | None = None) -> None:
        require_manage_guild(interaction)
        await defer(interaction, ephemeral=True)
        chosen = self.route(interaction, route)
        run = await self.digests.run(chosen)
        self.bot.wake_outbox()
        text = (f"Queued the `{chosen.id}` digest: {run.entries} entries in {run.messages} message(s)."
                if run.messages else f"`{chosen.id}`: nothing new since the last digest; nothing posted.")
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NONE)

    @preview.autocomplete("route")
    @now.autocomplete("route")
    async def _route(self, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        try:
            return [app_commands.Choice(name=r.config.describe()[:100], value=r.id)
                    for r in self.routes_here(interaction) if current.strip().lower() in r.id][:25]
        except Exception:
            log.exception("digest route autocomplete failed")
            return []
