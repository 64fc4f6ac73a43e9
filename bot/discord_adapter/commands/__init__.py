"""Slash commands as thin cogs: read the options, call the catalog, render."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.discord_adapter.commands.digest import DigestGroup
from bot.discord_adapter.commands.search import SearchCog
from bot.discord_adapter.commands.sources import SourcesGroup
from bot.discord_adapter.commands.status import StatusCog

if TYPE_CHECKING:
    from bot.discord_adapter.client import DigestBot

__all__ = ["DigestGroup", "SearchCog", "SourcesGroup", "StatusCog", "add_commands"]


async def add_commands(bot: DigestBot) -> None:
    """Add every cog (and so every slash command) to ``bot.tree``. Does not sync."""
    await bot.add_cog(SearchCog(bot))
    await bot.add_cog(StatusCog(bot))
    bot.tree.add_command(SourcesGroup(bot))
    bot.tree.add_command(DigestGroup(bot))
