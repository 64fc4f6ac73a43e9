"""/topics: what this server's feeds cover (/sources lives in ``sources.py``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_adapter.embeds import render_topics
from bot.discord_adapter.errors import defer

if TYPE_CHECKING:
    from bot.discord_adapter.client import DigestBot

Interaction = discord.Interaction["DigestBot"]


class StatusCog(commands.Cog):
    def __init__(self, bot: DigestBot) -> None:
        self.bot = bot

    @app_commands.command(name="topics", description="Topics of this server's feeds, with how many entries each has")
    @app_commands.guild_only()
    async def topics(self, interaction: Interaction) -> None:
        await defer(interaction, ephemeral=self.bot.ephemeral)
        allowed = self.bot.allowed_sources_for_guild(interaction.guild_id)
        rows = await asyncio.to_thread(self.bot.catalog.topics, allowed)
        await interaction.followup.send(embed=render_topics(rows), ephemeral=self.bot.ephemeral,
                                        allowed_mentions=discord.AllowedMentions.none())
