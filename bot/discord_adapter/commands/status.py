"""/topics and /sources: what this server's feeds cover and how they are doing."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord_adapter.embeds import render_sources, render_topics
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

    @app_commands.command(name="sources", description="The feeds posting into this server and how they are doing")
    @app_commands.guild_only()
    async def sources(self, interaction: Interaction) -> None:
        await defer(interaction, ephemeral=self.bot.ephemeral)
        allowed = self.bot.allowed_sources_for_guild(interaction.guild_id)
        statuses = await asyncio.to_thread(self.bot.catalog.sources, allowed)
        secrets = [self.bot.config.token] if self.bot.config.token else []
        await interaction.followup.send(embed=render_sources(statuses, secrets=secrets), ephemeral=self.bot.ephemeral,
                                        allowed_mentions=discord.AllowedMentions.none())
