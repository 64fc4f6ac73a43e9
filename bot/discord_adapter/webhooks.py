"""Webhook delivery: one ``MessageSpec`` → one message through an incoming webhook URL.

Webhook tokens are secrets: nothing here ever puts one in an exception, a log line or a
``DeliveryError`` (see :func:`redact_webhook_url`). Note that discord.py's own
``discord.webhook.async_`` logger prints the full execute URL at DEBUG level; keep it at INFO.

Where requests go. discord.py builds every webhook URL from ``Route.BASE`` (the webhook module
uses the same ``discord.http.Route`` as the bot's REST client, discord.py ≥ 2.0), so the host in
the configured webhook URL is *not* used: only its id and token are, and the request goes to
``api_base`` (a REST proxy, or the test fake). :func:`point_webhooks_at` sets that base; it is
process-wide and shared with the bot client, so it must be the same ``discord.api_base``.

Bounded waits. discord.py's webhook adapter retries on its own, with no upper bound on the wait:
a 429 sleeps the full ``retry_after`` (up to 5 times), a 5xx sleeps 1+3+5+7+9 s. The session a
:class:`WebhookSender` creates screens every response first (aiohttp's ``raise_for_status``
hook): a 429 asking for more than ``max_rate_limit_wait`` seconds and any 5xx fail at once
(the outbox retries later with backoff); short 429s are still retried inline by discord.py.
On top of that the whole send is bounded by ``timeout`` (also when a caller-supplied session
is used, which is not screened).

Webhooks take no nonce: unlike channel messages, a retry after a lost response (timeout,
dropped connection) can post the message twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any, NoReturn
from urllib.parse import urlsplit

import aiohttp
import discord
import discord.http
import discord.webhook.async_
from discord.utils import MISSING

from bot.discord_adapter.delivery import allowed_mentions
from bot.discord_adapter.embeds import to_discord_embed
from bot.errors import DeliveryError
from bot.format import MessageSpec

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_API_BASE",
    "WebhookSender",
    "map_webhook_error",
    "parse_webhook_url",
    "point_webhooks_at",
    "redact_webhook_url",
    "webhook_target",
]

DEFAULT_API_BASE = "https://discord.com/api/v10"
_DISCORD_HOSTS = frozenset({
    f"{prefix}{domain}" for prefix in ("", "ptb.", "canary.") for domain in ("discord.com", "discordapp.com")
})
_DISCORD_PREFIX = re.compile(r"/api(?:/v\d+)?")
_SHAPE = re.compile(r"(?P<prefix>.*?)/webhooks/(?P<id>[^/]*)/(?P<token>[^/]*)/?")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_EXAMPLE = "https://discord.com/api/webhooks/<id>/<token>"
_GONE = "the webhook was deleted or its token is wrong"


# -- URLs ---------------------------------------------------------------------------------------
def redact_webhook_url(url: str) -> str:
    """``url`` safe to show: the token (everything after ``/webhooks/<id>/``), any user info and
    query are replaced by ``***``. Anything that is not recognisably a URL becomes ``***``."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "***"
    if parts.scheme not in ("http", "https") or not host:
        return "***"
    netloc = ("***@" if "@" in parts.netloc else "") + (f"[{host}]" if ":" in host else host)
    netloc += f":{port}" if port is not None else ""
    index = parts.path.find("/webhooks/")
    if index < 0:
        path = "/***" if parts.path.strip("/") else parts.path
    else:
        head, sep, _ = parts.path[index + len("/webhooks/"):].partition("/")
        head = head if head.isascii() and head.isdigit() else ("***" if head else "")
        path = parts.path[: index + len("/webhooks/")] + head + ("/***" if sep else "")
    suffix = "?***" if parts.query else ""
    suffix += "#***" if parts.fragment else ""
    return f"{parts.scheme}://{netloc}{path}{suffix}"


def webhook_target(webhook_id: int | str) -> str:
    """The ``DeliveryError`` target for a webhook: its id, never its token."""
    return f"webhook …/webhooks/{webhook_id}/***"


def parse_webhook_url(url: str) -> tuple[int, str]:
    """``(webhook id, token)`` from an execute URL.

    Accepts ``https://discord.com/api/webhooks/<id>/<token>`` on discord.com, discordapp.com and
    their ptb./canary. hosts, with ``/api`` or ``/api/v<N>``; and any other http(s) host whose
    path ends in ``/webhooks/<id>/<token>`` (a REST proxy, the test fake). Raises ``ValueError``
    whose message shows the URL with the token redacted.
    """
    shown = redact_webhook_url(url)

    def fail(problem: str) -> NoReturn:
        raise ValueError(f"not a Discord webhook URL ({shown}): {problem}; expected {_EXAMPLE}")

    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        fail("cannot be parsed as a URL")
    if parts.scheme not in ("http", "https") or not host:
        fail("must be an http(s):// URL with a host")
    if parts.username is not None or parts.password is not None:
        fail("must not contain a user name or password")
    if parts.query or parts.fragment:
        fail("must not have a query string or fragment")
    match = _SHAPE.fullmatch(parts.path)
    if match is None:
        fail("the path must end in /webhooks/<id>/<token>")
    if host in _DISCORD_HOSTS and not _DISCORD_PREFIX.fullmatch(match["prefix"]):
        fail("on Discord the path must be /api/webhooks/<id>/<token> (or /api/v10/webhooks/...)")
    raw_id, token = match["id"], match["token"]
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 20 or not 0 < int(raw_id) < 2**64:
        fail("the webhook id must be a number (a Discord snowflake)")
    if not _TOKEN.fullmatch(token):
        fail("the token is missing or has characters a webhook token never has")
    return int(raw_id), token


def point_webhooks_at(api_base: str) -> None:
    """Send discord.py's webhook requests to ``api_base`` (e.g. ``https://discord.com/api/v10``).

    discord.py's webhook module shares ``discord.http.Route`` with the bot's REST client, so this
    also moves the bot's REST traffic: pass the same ``discord.api_base``. Should a discord.py
    version give the webhook module its own ``Route``, its ``BASE`` is set too."""
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"api_base must be an http(s):// URL, got {api_base!r}")
    base = api_base.rstrip("/")
    discord.http.Route.BASE = base
    webhook_route: Any = getattr(discord.webhook.async_, "Route", discord.http.Route)
    if webhook_route is not discord.http.Route:
        webhook_route.BASE = base


# -- errors -------------------------------------------------------------------------------------
def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _header_retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    for name in ("X-RateLimit-Reset-After", "Retry-After"):
        value = _float(headers.get(name))
        if value is not None:
            return value
    return None


def map_webhook_error(target: str, exc: discord.HTTPException, *, token: str | None = None) -> DeliveryError:
    """Discord's answer to a webhook execute → permanent (never retried) or transient."""
    detail = f"{exc.status} {exc.text or ''}".strip() + (f" (code {exc.code})" if exc.code else "")
    detail = _scrub(detail, token)
    if exc.code == 10015 or exc.status in (401, 403, 404):
        return DeliveryError(target, f"{_GONE}; Discord said {detail}", permanent=True)
    if exc.status == 429:
        retry_after = _header_retry_after(getattr(exc.response, "headers", None))
        return DeliveryError(target, f"rate limited; Discord said {detail}", retry_after=retry_after)
    if exc.status >= 500 or exc.status == 408:
        return DeliveryError(target, f"Discord is unavailable: {detail}")
    return DeliveryError(target, f"Discord rejected the message: {detail}", permanent=True)


class _Screened(Exception):
    """Raised from the session's response hook to stop discord.py's in-line retries."""

    def __init__(self, status: int, retry_after: float | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.retry_after = retry_after
        self.detail = detail


# -- sender -------------------------------------------------------------------------------------
class WebhookSender:
    """Posts ``MessageSpec`` s through incoming webhook URLs with discord.py.

    ``api_base``: where requests go (see the module docstring); the constructor calls
    :func:`point_webhooks_at`. ``session``: an aiohttp session to use (not closed by
    :meth:`close`, and not screened for long 429s and 5xx, see the module docstring); by
    default the sender creates its own on first use. ``timeout`` bounds one whole send, and
    ``max_rate_limit_wait`` is the longest 429 wait retried in line.
    """

    def __init__(self, *, api_base: str = DEFAULT_API_BASE, session: aiohttp.ClientSession | None = None,
                 timeout: float = 30.0, max_rate_limit_wait: float = 5.0) -> None:
        self.api_base = api_base.rstrip("/")
        if self.api_base != discord.http.Route.BASE:
            log.info("pointing discord.py's REST and webhook requests at %s", self.api_base)
        point_webhooks_at(self.api_base)
        self.timeout = timeout
        self.max_rate_limit_wait = max_rate_limit_wait
        self._session = session
        self._owns_session = session is None
        self._closed = False

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession(raise_for_status=self._screen)
        return self._session

    async def close(self) -> None:
        """Close the session this sender created (a caller's session is left open)."""
        self._closed = True
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _screen(self, response: aiohttp.ClientResponse) -> None:
        """Fail fast on 5xx and on 429s longer than ``max_rate_limit_wait``; let the rest through."""
        status = response.status
        if status != 429 and status < 500:
            return
        data: Any = None
        with contextlib.suppress(ValueError, aiohttp.ClientError, OSError):
            data = json.loads(await response.read())
        data = data if isinstance(data, dict) else {}
        message = str(data.get("message") or response.reason or "")
        code = data.get("code")
        detail = f"{status} {message}".strip() + (f" (code {code})" if code else "")
        if status >= 500:
            raise _Screened(status, None, detail)
        retry_after = _float(data.get("retry_after"))
        if retry_after is None:
            retry_after = _header_retry_after(response.headers)
        if retry_after is None or retry_after > self.max_rate_limit_wait:
            raise _Screened(status, retry_after, detail)

    async def send(self, url: str, message: MessageSpec) -> str | None:
        """Post ``message`` through the webhook at ``url``; return the new message's id.

        Raises ``DeliveryError`` (target ``webhook …/webhooks/<id>/***``): permanent for a bad
        URL, a deleted webhook or a wrong token (401/403/404, code 10015) and for other 4xx
        (e.g. 400 with Discord's message); transient with ``retry_after`` for 429; transient for
        5xx, network errors and timeouts."""
        try:
            webhook_id, token = parse_webhook_url(url)
        except ValueError as exc:
            raise DeliveryError(f"webhook {redact_webhook_url(url)}", str(exc), permanent=True) from None
        target = webhook_target(webhook_id)
        if self._closed:
            raise DeliveryError(target, "the webhook sender is closed (shutting down?)")
        webhook = discord.Webhook.partial(webhook_id, token, session=self.session)
        try:
            sent = await asyncio.wait_for(webhook.send(
                content=message.content or MISSING,
                embeds=[to_discord_embed(spec) for spec in message.embeds],
                username=message.username or MISSING,
                avatar_url=message.avatar_url or MISSING,
                allowed_mentions=allowed_mentions(message),
                wait=True,
            ), timeout=self.timeout)
        except discord.HTTPException as exc:
            raise map_webhook_error(target, exc, token=token) from exc  # its text never holds the URL
        except _Screened as exc:
            detail = _scrub(exc.detail, token)
            if exc.status == 429:
                raise DeliveryError(target, f"rate limited for {exc.retry_after}s (longer than the "
                                    f"{self.max_rate_limit_wait}s waited in line); Discord said {detail}",
                                    retry_after=exc.retry_after) from None
            raise DeliveryError(target, f"Discord is unavailable: {detail}") from None
        except TimeoutError as exc:
            if not isinstance(exc, aiohttp.ClientError):  # asyncio.wait_for, not aiohttp's own timeouts
                raise DeliveryError(target, f"no answer within {self.timeout}s (Discord slow or rate "
                                    "limiting)") from None
            raise DeliveryError(target, _scrub(f"network error: {type(exc).__name__}: {exc}", token)) from None
        except (aiohttp.ClientError, OSError) as exc:
            # aiohttp's messages can contain the request URL, i.e. the token: scrub, do not chain.
            reason = _scrub(f"network error: {type(exc).__name__}: {exc}", token)
            raise DeliveryError(target, reason) from None
        log.debug("delivered to %s as message %s", target, sent.id)
        return str(sent.id)
