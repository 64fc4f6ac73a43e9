"""Payload builders and validation for the fake Discord (shapes follow the Discord API v10 docs).

Kept apart from the server so tests can build matching objects (users, members, messages) themselves.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits (https://discord.com/developers/docs/topics/permissions)
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5

DEFAULT_PERMISSIONS = (
    ADD_REACTIONS | VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | ATTACH_FILES | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS | USE_APPLICATION_COMMANDS | SEND_MESSAGES_IN_THREADS
)

JOINED_AT = "2025-01-01T00:00:00.000000+00:00"

_lock = threading.Lock()
_counter = itertools.count()
_last_ms = 0


def snowflake() -> int:
    """A fresh, strictly increasing snowflake whose timestamp is now (discord.py derives created_at from it)."""
    global _last_ms
    with _lock:
        ms = max(int(time.time() * 1000), _last_ms)
        _last_ms = ms
        return ((ms - DISCORD_EPOCH_MS) << 22) | (next(_counter) & 0xFFF)


def iso_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def user(user_id: int, username: str, *, bot: bool = False, global_name: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": str(user_id), "username": username, "discriminator": "0",
                            "global_name": global_name, "avatar": None, "public_flags": 0, "flags": 0}
    if bot:
        data["bot"] = True
    return data


def member(user_data: dict[str, Any], *, roles: list[int] | None = None,
           permissions: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"user": user_data, "roles": [str(r) for r in roles or []], "nick": None, "avatar": None,
                            "joined_at": JOINED_AT, "premium_since": None, "deaf": False, "mute": False,
                            "pending": False, "flags": 0, "communication_disabled_until": None}
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def role(role_id: int, name: str, permissions: int, *, position: int = 0, managed: bool = False,
         bot_id: int | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": str(role_id), "name": name, "permissions": str(permissions), "position": position,
                            "color": 0, "colors": {"primary_color": 0, "secondary_color": None,
                                                   "tertiary_color": None},
                            "hoist": False, "icon": None, "unicode_emoji": None, "managed": managed,
                            "mentionable": False, "flags": 0}
    if bot_id is not None:
        data["tags"] = {"bot_id": str(bot_id)}
    return data


def text_channel(channel_id: int, guild_id: int, name: str, *, position: int = 0,
                 overwrites: list[dict[str, Any]] | None = None, channel_type: int = 0) -> dict[str, Any]:
    return {"id": str(channel_id), "type": channel_type, "guild_id": str(guild_id), "name": name,
            "position": position, "permission_overwrites": overwrites or [], "topic": None, "nsfw": False,
            "parent_id": None, "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}


def embed_out(embed: dict[str, Any]) -> dict[str, Any]:
    """Embeds as Discord echoes them back: with a type."""
    return {"type": "rich", **embed}


# -- validation (limits from https://discord.com/developers/docs/resources/message#embed-object-embed-limits) --

def _form_error(path: list[str | int], code: str, message: str) -> dict[str, Any]:
    errors: dict[str, Any] = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(path):
        errors = {str(part): errors}
    return {"code": 50035, "message": "Invalid Form Body", "errors": errors}


def _too_long(path: list[str | int], limit: int) -> dict[str, Any]:
    return _form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


EMBED_LIMITS = {"title": 256, "description": 4096}


def validate_message(body: dict[str, Any], *, has_files: bool = False, require_content: bool = True,
                     ) -> tuple[int, dict[str, Any]] | None:
    """Return (status, error body) when Discord would refuse this message payload, else None."""
    content = body.get("content")
    if content is not None and len(str(content)) > 2000:
        return 400, _too_long(["content"], 2000)
    nonce = body.get("nonce")
    if isinstance(nonce, str) and len(nonce) > 25:
        return 400, _too_long(["nonce"], 25)
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        return 400, _form_error(["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        for key, limit in EMBED_LIMITS.items():
            value = embed.get(key) or ""
            total += len(value)
            if len(value) > limit:
                return 400, _too_long(["embeds", i, key], limit)
        fields = embed.get("fields") or []
        if len(fields) > 25:
            return 400, _form_error(["embeds", i, "fields"], "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for j, fld in enumerate(fields):
            for key, limit in (("name", 256), ("value", 1024)):
                value = str(fld.get(key) or "")
                total += len(value)
                if not value:
                    return 400, _form_error(["embeds", i, "fields", j, key], "BASE_TYPE_REQUIRED",
                                            "This field is required")
                if len(value) > limit:
                    return 400, _too_long(["embeds", i, "fields", j, key], limit)
        for key, sub, limit in (("footer", "text", 2048), ("author", "name", 256)):
            value = str((embed.get(key) or {}).get(sub) or "")
            total += len(value)
            if len(value) > limit:
                return 400, _too_long(["embeds", i, key, sub], limit)
    if total > 6000:
        return 400, _form_error(["embeds"], "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    empty = not content and not embeds and not has_files and not body.get("components") \
        and not body.get("sticker_ids") and not body.get("poll") and not body.get("attachments")
    if require_content and empty:
        return 400, {"code": 50006, "message": "Cannot send an empty message"}
    return None
