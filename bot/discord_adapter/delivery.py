"""``Deliverer`` for Discord: one ``MessageSpec`` → one channel message, errors → ``DeliveryError``.

The nonce is sent with ``enforce_nonce`` (discord.py ≥2.4 adds it whenever a nonce is given), so
Discord answers a repeat within a few minutes with the message it already created: a retry after
a crash or a lost response does not post twice.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import discord

from bot.discord_adapter.embeds import to_discord_embed
from bot.errors import DeliveryError
from bot.format import MessageSpec

log = logging.getLogger(__name__)

_PERMANENT_REASONS = {
    10003: "the channel no longer exists (Unknown Channel)",
    50001: "the bot cannot see the channel (Missing Access)",
    50013: "the bot lacks permission to post there (Missing Permissions: View Channel, Send Messages, "
           "Embed Links)",
    50008: "the channel is not a text channel",
}


def _retry_after(exc: discord.HTTPException) -> float | None:
    try:
        value = exc.response.headers.get("Retry-After")
        return float(value) if value is not None else None
    except (AttributeError, TypeError, ValueError):
        return None


def map_http_error(target: str, exc: discord.HTTPException) -> DeliveryError:
    """Discord's answer → permanent (never retried) or transient (retried with backoff)."""
    detail = f"{exc.status} {exc.text or ''}".strip() + (f" (code {exc.code})" if exc.code else "")
    if exc.code in _PERMANENT_REASONS:
        return DeliveryError(target, f"{_PERMANENT_REASONS[exc.code]}; Discord said {detail}", permanent=True)
    if isinstance(exc, discord.NotFound):
        return DeliveryError(target, f"not found; Discord said {detail}", permanent=True)
    if isinstance(exc, discord.Forbidden):
        return DeliveryError(target, f"forbidden; Discord said {detail}", permanent=True)
    if exc.status == 429:
        return DeliveryError(target, f"rate limited; Discord said {detail}", retry_after=_retry_after(exc))
    if isinstance(exc, discord.DiscordServerError) or exc.status >= 500 or exc.status in (401, 408):
        # 401 is the token, not this message: keep the message and let the operator fix the token.
        return DeliveryError(target, f"Discord is unavailable or refused the token: {detail}")
    return DeliveryError(target, f"Discord rejected the message: {detail}", permanent=True)


def allowed_mentions(message: MessageSpec) -> discord.AllowedMentions:
    """Nobody can be pinged, except the roles a route names explicitly in ``mention_roles``."""
    if not message.allowed_roles:
        return discord.AllowedMentions.none()
    return discord.AllowedMentions(everyone=False, users=False, replied_user=False,
                                   roles=[discord.Object(id=role) for role in message.allowed_roles])


class DiscordDeliverer:
    """Posts outbox messages through a logged-in discord.py client."""

    def __init__(self, client: discord.Client, *, ready_timeout: float = 30.0) -> None:
        self.client = client
        self.ready_timeout = ready_timeout

    async def _wait_ready(self, target: str) -> None:
        if self.client.is_closed():
            raise DeliveryError(target, "the Discord client is closed (shutting down?)")
        try:
            await asyncio.wait_for(self.client.wait_until_ready(), timeout=self.ready_timeout)
        except (TimeoutError, RuntimeError):  # RuntimeError: not logged in yet
            raise DeliveryError(target, "not connected to Discord yet") from None

    async def _resolve(self, channel_id: int, target: str) -> discord.abc.Messageable:
        channel = self.client.get_channel(channel_id)
        if channel is None:
            channel = await self.client.fetch_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            kind = getattr(getattr(channel, "type", None), "name", type(channel).__name__)
            raise DeliveryError(target, f"cannot post into a {kind} channel; configure a text channel",
                                permanent=True)
        return channel

    async def send(self, channel_id: int, message: MessageSpec, *, nonce: str) -> str | None:
        target = f"channel {channel_id}"
        await self._wait_ready(target)
        embeds = [to_discord_embed(spec) for spec in message.embeds]
        try:
            channel = await self._resolve(channel_id, target)
            sent = await channel.send(content=message.content or None, embeds=embeds, nonce=nonce,
                                      allowed_mentions=allowed_mentions(message))
        except discord.HTTPException as exc:
            raise map_http_error(target, exc) from exc
        except discord.RateLimited as exc:
            raise DeliveryError(target, "rate limited", retry_after=exc.retry_after) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(target, f"network error: {type(exc).__name__}: {exc}") from exc
        log.debug("delivered nonce %s to %s as message %s", nonce, target, sent.id)
        return str(sent.id)
