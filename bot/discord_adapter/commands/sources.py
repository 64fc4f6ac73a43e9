"""/sources: list, and (Manage Server) add, remove, pause, resume, edit, import and export OPML.

The whole group needs Manage Server by default (Discord hides it from others; a server can grant
it to more roles under Server Settings → Integrations), and every command that changes something
checks Manage Server again here, because default permissions are only a default. An admin can
only see and change sources that post into their own server.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.admin import AdminError, SourceAdmin
from bot.config import parse_duration
from bot.discord_adapter.commands.search import source_choices
from bot.discord_adapter.embeds import render_sources, to_discord_embed
from bot.discord_adapter.errors import defer
from bot.format import render_entry, safe_text

if TYPE_CHECKING:
    from bot.discord_adapter.client import DigestBot

log = logging.getLogger(__name__)

Interaction = discord.Interaction["DigestBot"]
MAX_OPML_BYTES = 1_000_000
NONE = discord.AllowedMentions.none()


def require_manage_guild(interaction: Interaction) -> None:
    """The server-side half of the permission check (default permissions are only a default)."""
    permissions = interaction.permissions
    if not (permissions.manage_guild or permissions.administrator):
        raise app_commands.MissingPermissions(["manage_guild"])


def _topics(text: str | None) -> list[str]:
    return [t.strip().lower() for t in (text or "").replace("，", ",").split(",") if t.strip()]


def _interval(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise AdminError(f"interval: {exc}") from None


def _check_channel(interaction: Interaction, channel: discord.TextChannel | discord.Thread) -> None:
    """The bot must be able to post there; say so now rather than fail on the first entry."""
    me = interaction.guild.me if interaction.guild is not None else None
    if me is None:
        return
    perms = channel.permissions_for(me)
    if not (perms.view_channel and perms.send_messages and perms.embed_links):
        raise AdminError(f"I cannot post embeds in #{channel.name}: give me View Channel, Send Messages and "
                         "Embed Links there, or pick another channel")


class ConfirmAdd(discord.ui.View):
    """Save / Cancel under a preview; only the person who asked can press them."""

    def __init__(self, owner: int, save: object) -> None:
        super().__init__(timeout=600)
        self.owner = owner
        self.save = save
        self.result: str | None = None

    async def interaction_check(self, interaction: discord.Interaction[discord.Client]) -> bool:
        if interaction.user.id != self.owner:
            await interaction.response.send_message("Only the person who ran /sources add can answer.",
                                                    ephemeral=True, allowed_mentions=NONE)
            return False
        return True

    @discord.ui.button(label="Save", style=discord.ButtonStyle.success, custom_id="digestbot:add:save")
    async def confirm(self, interaction: discord.Interaction[discord.Client],
                      button: discord.ui.Button[ConfirmAdd]) -> None:
        await interaction.response.defer()
        try:
            text = await self.save()  # type: ignore[operator]
        except AdminError as exc:
            text = f"Not added: {exc}"
        self.stop()
        await interaction.edit_original_response(content=text, view=None, allowed_mentions=NONE)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary, custom_id="digestbot:add:cancel")
    async def cancel(self, interaction: discord.Interaction[discord.Client],
                     button: discord.ui.Button[ConfirmAdd]) -> None:
        self.stop()
        await interaction.response.edit_message(content="Cancelled; nothing was saved.", embed=None, view=None,
                                                allowed_mentions=NONE)


class SourcesGroup(app_commands.Group, name="sources", description="The feeds posting into this server",
                   guild_only=True, default_permissions=discord.Permissions(manage_guild=True)):
    def __init__(self, bot: DigestBot) -> None:
        super().__init__()
        self.bot = bot

    @property
    def admin(self) -> SourceAdmin:
        if self.bot.admin is None:
            raise AdminError("managing sources from Discord is not available")
        return self.bot.admin

    def allowed(self, interaction: Interaction) -> tuple[str, ...]:
        return self.bot.allowed_sources_for_guild(interaction.guild_id)

    @app_commands.command(name="list", description="Each feed posting into this server and how it is doing")
    async def list_sources(self, interaction: Interaction) -> None:
        require_manage_guild(interaction)  # statuses show last errors: admins only, like the rest of /sources
        await defer(interaction, ephemeral=True)
        statuses = await asyncio.to_thread(self.bot.catalog.sources, self.allowed(interaction))
        secrets = [self.bot.config.token] if self.bot.config.token else []
        await interaction.followup.send(embed=render_sources(statuses, secrets=secrets), ephemeral=True,
                                        allowed_mentions=NONE)

    @app_commands.command(name="add", description="Add a feed: fetched once and previewed before it is saved")
    @app_commands.describe(url="The feed's http(s) URL (RSS, Atom, RDF or JSON Feed)",
                           channel="Where its entries go (default: this channel)",
                           topics="Topic ids, comma-separated (see /topics)",
                           interval="How often to check, e.g. 15m, 1h (default from the config)",
                           name="Display name (default: the site's name)")
    async def add(self, interaction: Interaction, url: app_commands.Range[str, 8, 2000],
                  channel: discord.TextChannel | None = None, topics: app_commands.Range[str, 1, 200] | None = None,
                  interval: app_commands.Range[str, 1, 16] | None = None,
                  name: app_commands.Range[str, 1, 100] | None = None) -> None:
        require_manage_guild(interaction)
        await defer(interaction, ephemeral=True)
        target = channel or interaction.channel
        if not isinstance(target, discord.TextChannel | discord.Thread):
            raise AdminError("pick a text channel for this feed")
        _check_channel(interaction, target)
        seconds = _interval(interval)
        topic_list = _topics(topics)
        self.admin.check_settings({"topics": topic_list})  # refuse before fetching, not after Save
        preview = await self.admin.preview(url)
        embed = None
        if preview.newest is not None:
            embed = to_discord_embed(render_entry(preview.newest, source_name=name or "preview", summary_length=300,
                                                  topic_labels=self.bot.topic_labels))
        admin, guild_id = self.admin, interaction.guild_id

        async def save() -> str:
            source = await admin.add(url=preview.url, name=name, channel_id=target.id, topics=topic_list,
                                     interval=None if seconds is None else parse_duration(f"{seconds}s"),
                                     guild_id=guild_id)
            return (f"✅ Added **{safe_text(source.name)}** (`{source.id}`) → <#{target.id}>. Its first poll "
                    f"posts only the newest {source.backfill} entries.")

        view = ConfirmAdd(interaction.user.id, save)
        text = (f"Found {preview.entries} entries at <{preview.url}>. The newest is below. Save this source "
                f"(posting into <#{target.id}>)?")
        await interaction.followup.send(text, embed=embed or discord.utils.MISSING, view=view, ephemeral=True,
                                        allowed_mentions=NONE)

    async def _change(self, interaction: Interaction, source: str, verb: str, changes: dict[str, object]) -> None:
        require_manage_guild(interaction)
        await defer(interaction, ephemeral=True)
        updated = await self.admin.change(source, changes, allowed=self.allowed(interaction))
        label = safe_text(updated.name) if updated else safe_text(source)
        await interaction.followup.send(f"{verb} **{label}**.", ephemeral=True, allowed_mentions=NONE)

    @app_commands.command(name="remove", description="Stop following a feed (its past entries stay searchable)")
    @app_commands.describe(source="The feed (name or id)")
    async def remove(self, interaction: Interaction, source: app_commands.Range[str, 1, 100]) -> None:
        await self._change(interaction, source, "Removed", {"removed": True})

    @app_commands.command(name="pause", description="Stop checking a feed until /sources resume")
    @app_commands.describe(source="The feed (name or id)")
    async def pause(self, interaction: Interaction, source: app_commands.Range[str, 1, 100]) -> None:
        await self._change(interaction, source, "Paused", {"enabled": False})

    @app_commands.command(name="resume", description="Check a paused feed again")
    @app_commands.describe(source="The feed (name or id)")
    async def resume(self, interaction: Interaction, source: app_commands.Range[str, 1, 100]) -> None:
        await self._change(interaction, source, "Resumed", {"enabled": True})

    @app_commands.command(name="edit", description="Change a feed's name, URL, topics, interval or channel")
    @app_commands.describe(source="The feed (name or id)", name="New display name", url="New http(s) feed URL",
                           topics="Topic ids, comma-separated (empty: none)", interval="e.g. 15m, 1h",
                           channel="Post into this channel instead")
    async def edit(self, interaction: Interaction, source: app_commands.Range[str, 1, 100],
                   name: app_commands.Range[str, 1, 100] | None = None,
                   url: app_commands.Range[str, 8, 2000] | None = None,
                   topics: app_commands.Range[str, 1, 200] | None = None,
                   interval: app_commands.Range[str, 1, 16] | None = None,
                   channel: discord.TextChannel | None = None) -> None:
        changes: dict[str, object] = {}
        if name:
            changes["name"] = name
        if url:
            changes["url"] = url
        if topics is not None:
            changes["topics"] = _topics(topics)
        if interval:
            changes["interval"] = _interval(interval)
        if channel is not None:
            _check_channel(interaction, channel)
            changes["channels"] = [channel.id]
        if not changes:
            raise AdminError("nothing to change: give at least one of name, url, topics, interval, channel")
        await self._change(interaction, source, "Updated", changes)

    @app_commands.command(name="import", description="Add every feed of an OPML file")
    @app_commands.describe(file="An OPML file (feed reader export), up to 1 MB",
                           channel="Where the new feeds post (default: this channel)")
    async def import_opml(self, interaction: Interaction, file: discord.Attachment,
                          channel: discord.TextChannel | None = None) -> None:
        require_manage_guild(interaction)
        await defer(interaction, ephemeral=True)
        if file.size > MAX_OPML_BYTES:
            raise AdminError(f"{file.filename[:80]} is larger than 1 MB")
        target = channel or interaction.channel
        if not isinstance(target, discord.TextChannel | discord.Thread):
            raise AdminError("pick a text channel for these feeds")
        _check_channel(interaction, target)
        data = await file.read()
        report = await self.admin.import_opml(data, channel_id=target.id, guild_id=interaction.guild_id,
                                              where=file.filename[:80])
        lines = [f"Added {len(report.added)} feeds → <#{target.id}>; skipped {len(report.skipped)}."]
        lines += [f"• {safe_text(reason)[:180]}" for reason in report.skipped[:10]]
        await interaction.followup.send("\n".join(lines)[:2000], ephemeral=True, allowed_mentions=NONE)

    @app_commands.command(name="export", description="Download this server's feeds as an OPML file")
    async def export_opml(self, interaction: Interaction) -> None:
        require_manage_guild(interaction)
        await defer(interaction, ephemeral=True)
        data = self.admin.export_opml(allowed=self.allowed(interaction))
        await interaction.followup.send(file=discord.File(io.BytesIO(data), filename="digestbot-sources.opml"),
                                        ephemeral=True, allowed_mentions=NONE)

    @remove.autocomplete("source")
    @pause.autocomplete("source")
    @resume.autocomplete("source")
    @edit.autocomplete("source")
    async def _source(self, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        return source_choices(self.bot, interaction, current)
