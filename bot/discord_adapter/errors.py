"""How interactions fail: friendly text for the user, a full log line for the operator.

``QueryError`` carries a user-facing message and is shown as is. Anything else becomes a generic
"something went wrong" (exception text can hold paths, URLs or worse) plus a log line naming the
command, guild, channel and options. Errors are always answered ephemerally, and never swallowed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import discord
from discord import app_commands

from bot.errors import QueryError

log = logging.getLogger(__name__)

GENERIC_ERROR = "Something went wrong on my side. It has been logged; please try again later."
_EPHEMERAL_KEY = "digestbot.deferred_ephemeral"
_PERMISSION_NAMES = {"manage_guild": "Manage Server", "administrator": "Administrator"}
"""Discord's UI names for the permission flags discord.py reports as missing."""


async def defer(interaction: discord.Interaction[Any], *, ephemeral: bool) -> None:
    """Acknowledge within Discord's 3 seconds; remember how, so an error can still be private."""
    interaction.extras[_EPHEMERAL_KEY] = ephemeral
    await interaction.response.defer(ephemeral=ephemeral, thinking=True)


async def send_ephemeral(interaction: discord.Interaction[Any], text: str) -> None:
    """Tell only the user, whatever state the interaction is in."""
    none = discord.AllowedMentions.none()
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=none)
        return
    if interaction.extras.get(_EPHEMERAL_KEY) is False:
        # The first follow-up would fill the public "thinking…" message; remove it instead.
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=none)


def user_message(error: BaseException) -> str | None:
    """Text the user may see for ``error``; None for unexpected errors (shown generically)."""
    if isinstance(error, QueryError):
        return str(error) or "I could not understand that query."
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works in a server."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down a little: try again in {error.retry_after:.0f}s."
    if isinstance(error, app_commands.TransformerError):
        return "One of the options has a value I cannot use."
    if isinstance(error, app_commands.MissingPermissions):
        names = " and ".join(_PERMISSION_NAMES.get(p, p.replace("_", " ").title()) for p in error.missing_permissions)
        return f"You need the {names} permission to use this command."
    if isinstance(error, app_commands.CheckFailure):
        return "You cannot use this command here."
    return None


def _flatten(options: Sequence[Mapping[str, Any]], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for option in options:
        name = f"{prefix}{option.get('name')}"
        if "options" in option:
            out.update(_flatten(option["options"], name + " "))
        else:
            out[name] = option.get("value")
    return out


def describe_interaction(interaction: discord.Interaction[Any]) -> dict[str, Any]:
    """What an operator needs to reproduce a failure: the options, or the clicked custom_id."""
    data: Mapping[str, Any] = interaction.data or {}
    if "custom_id" in data:
        return {"custom_id": data["custom_id"]}
    return _flatten(data.get("options") or [])


async def report_error(interaction: discord.Interaction[Any], error: BaseException, *,
                       where: str | None = None) -> None:
    original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
    command = where or (f"/{interaction.command.qualified_name}" if interaction.command else "interaction")
    text = user_message(original)
    if text is None:
        log.error("%s failed (guild %s, channel %s, user %s, options %r)", command, interaction.guild_id,
                  interaction.channel_id, interaction.user.id if interaction.user else None,
                  describe_interaction(interaction), exc_info=original)
        text = GENERIC_ERROR
    else:
        log.info("%s refused in guild %s: %s", command, interaction.guild_id, text)
    if interaction.type is discord.InteractionType.autocomplete:
        return  # nothing can be shown for an autocomplete request
    try:
        await send_ephemeral(interaction, text)
    except (discord.HTTPException, discord.InteractionResponded) as exc:
        log.warning("could not tell the user that %s failed: %s", command, exc)


class DigestCommandTree(app_commands.CommandTree[Any]):
    """The command tree with digestbot's error handling."""

    async def on_error(self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /) -> None:
        await report_error(interaction, error)
