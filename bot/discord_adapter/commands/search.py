"""/search and /latest, with topic and source autocomplete."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import MISSING

from bot.discord_adapter.errors import defer, send_ephemeral
from bot.discord_adapter.views import PageQuery, build_page, fit_query

if TYPE_CHECKING:
    from bot.discord_adapter.client import DigestBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["DigestBot"]

TOPIC_HELP = "Only entries with this topic"
SOURCE_HELP = "Only entries from this feed"


def _choices(pairs: list[tuple[str, str]]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=name[:100], value=value[:100]) for name, value in pairs[:25]
            if name and value]


def topic_choices(bot: DigestBot, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """In-memory and fast: autocomplete has 3 seconds and no way to defer. Never raises."""
    try:
        return _choices(bot.catalog.topic_choices(current, bot.allowed_sources_for_guild(interaction.guild_id)))
    except Exception:
        log.exception("topic autocomplete failed for %r", current)
        return []


def source_choices(bot: DigestBot, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    try:
        return _choices(bot.catalog.source_choices(current, bot.allowed_sources_for_guild(interaction.guild_id)))
    except Exception:
        log.exception("source autocomplete failed for %r", current)
        return []


async def reply_with_page(bot: DigestBot, interaction: Interaction, query: PageQuery) -> None:
    await defer(interaction, ephemeral=bot.ephemeral)
    runnable, pageable, note = fit_query(query)
    embed, view = await build_page(bot, runnable, 1, interaction.guild_id, pageable=pageable, note=note)
    await interaction.followup.send(embed=embed, view=view or MISSING, ephemeral=bot.ephemeral,
                                    allowed_mentions=discord.AllowedMentions.none())


class SearchCog(commands.Cog):
    def __init__(self, bot: DigestBot) -> None:
        self.bot = bot

    @app_commands.command(name="search", description="Search every entry the feeds of this server have posted")
    @app_commands.guild_only()
    @app_commands.describe(
        query="Words to look for",
        topic=TOPIC_HELP,
        source=SOURCE_HELP,
        since="Only newer entries: an age like 7d, 12h, 2w or a date like 2026-01-31",
        until="Only older entries: an age like 7d or a date like 2026-01-31",
    )
    async def search(self, interaction: Interaction,
                     query: app_commands.Range[str, 1, 200] | None = None,
                     topic: app_commands.Range[str, 1, 100] | None = None,
                     source: app_commands.Range[str, 1, 100] | None = None,
                     since: app_commands.Range[str, 1, 32] | None = None,
                     until: app_commands.Range[str, 1, 32] | None = None) -> None:
        if not ((query and query.strip()) or topic or source):
            await send_ephemeral(interaction, "Type something to search for, or pick a topic or a source.")
            return
        await reply_with_page(self.bot, interaction, PageQuery("s", (query or "").strip(), topic, source,
                                                               since, until))

    @app_commands.command(name="latest", description="The newest entries from the feeds of this server")
    @app_commands.guild_only()
    @app_commands.describe(topic=TOPIC_HELP, source=SOURCE_HELP)
    async def latest(self, interaction: Interaction,
                     topic: app_commands.Range[str, 1, 100] | None = None,
                     source: app_commands.Range[str, 1, 100] | None = None) -> None:
        await reply_with_page(self.bot, interaction, PageQuery("l", "", topic, source))

    @search.autocomplete("topic")
    async def _search_topic(self, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        return topic_choices(self.bot, interaction, current)

    @search.autocomplete("source")
    async def _search_source(self, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        return source_choices(self.bot, interaction, current)

    @latest.autocomplete("topic")
    async def _latest_topic(self, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        return topic_choices(self.bot, interaction, current)

    @latest.autocomplete("source")
    async def _latest_source(self, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        return source_choices(self.bot, interaction, current)
