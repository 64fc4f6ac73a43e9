"""A fake Discord (REST under ``/api/v10`` + gateway websocket) on 127.0.0.1 for end-to-end tests.

A test seeds state, points discord.py at the fake, runs the real bot, then drives and inspects it::

    async with FakeDiscord() as fake:
        fake.add_guild(GUILD, "test guild", channels=[CHANNEL])
        fake.configure_discord_py()        # sets discord.http.Route.BASE + DiscordWebSocket.DEFAULT_GATEWAY
        bot = MyBot(intents=discord.Intents.default(), guild_ready_timeout=0.05)
        task = asyncio.create_task(bot.start("dummy-token"))
        await fake.wait_until_identified()
        await bot.wait_until_ready()
        ...                                 # bot posts → fake.messages / fake.wait_for_messages(CHANNEL, 1)
        pushed = await fake.push_command("search", {"query": "llm"})
        responses = await fake.wait_for_interaction_response(pushed)
        await bot.close(); await task       # close the bot before leaving the ``async with``

Behaviour follows the Discord docs where tests depend on it: ``enforce_nonce`` (same author, channel
and nonce within ``nonce_window`` seconds returns the existing message), a deferred response's first
follow-up edits the loading message, interactions must be acknowledged once within 3 s, 403/404
error codes (50013, 10003, 10008, 10015, 10062, 40060), message/embed limits (50035, 50006), 429s with
real header shapes, RESUME replays missed dispatches. Faults are injected with ``fail_next``,
``rate_limit_next`` and ``outage``; everything seen is recorded (``requests``, ``messages``,
``interaction_responses``, ``commands``, ``unhandled``, ``gateway_received``).

Time: ``clock`` (seconds, default ``time.monotonic``) drives the nonce window, interaction
deadlines and ``outage(duration=...)``; snowflakes/timestamps/``X-RateLimit-Reset`` use wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from . import payloads as P
from .gateway import Connection, Session, make_compressor

API_VERSION = 10
DEFAULT_APP_ID = 1_300_000_000_000_000_001
DEFAULT_USER_ID = 1_300_000_000_000_000_101
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message_content
EPHEMERAL = 1 << 6
LOADING = 1 << 7
FINAL_CALLBACKS = {1, 4, 7, 8, 9, 12}
DEFERRED_CALLBACKS = {5, 6}
ALLOWED_CALLBACKS = {2: {4, 5, 9, 12}, 3: {4, 5, 6, 7, 9, 12}, 4: {8}, 5: {4, 5, 6, 7}}
INTERACTION_TOKEN_TTL = 15 * 60.0
_PRIVATE_KEYS = frozenset({"allowed_mentions", "enforce_nonce", "payload", "deleted", "files", "edits", "guild_id",
                           "source", "interaction_id"})

JsonBody = dict[str, Any] | list[Any] | str | None


def point_discord_py_at(api_base: str, gateway_url: str) -> tuple[str, Any]:
    """Send discord.py's REST and gateway traffic to the given URLs; returns the previous (base, gateway)."""
    import discord.gateway  # lazy: the fake itself does not need discord.py
    import discord.http
    import yarl

    previous = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    return previous


@dataclass
class Reply:
    """One injected answer. ``after_handling`` runs the real handler first (the request takes effect, the
    client still sees this reply: a lost response); ``drop`` closes the connection without any response."""

    status: int = 500
    body: JsonBody = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    after_handling: bool = False
    drop: bool = False


ReplySpec = Reply | int | tuple[int, JsonBody] | tuple[int, JsonBody, dict[str, str]]


def _as_reply(spec: ReplySpec) -> Reply:
    if isinstance(spec, Reply):
        return spec
    if isinstance(spec, int):
        return Reply(spec)
    if len(spec) == 2:
        return Reply(spec[0], spec[1])
    return Reply(spec[0], spec[1], dict(spec[2]))


@dataclass
class _Fault:
    method: str | None
    pattern: re.Pattern[str]
    replies: deque[Reply]
    repeat: Reply | None = None
    remaining: int | None = None
    until: float | None = None

    def take(self, method: str, path: str, now: float) -> Reply | None:
        if self.method is not None and self.method != method:
            return None
        if not self.pattern.search(path):
            return None
        if self.replies:
            return self.replies.popleft()
        if self.repeat is None or (self.until is not None and now >= self.until):
            return None
        if self.remaining is not None:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
        return self.repeat

    def spent(self, now: float) -> bool:
        if self.replies:
            return False
        if self.repeat is None:
            return True
        return (self.until is not None and now >= self.until) or (self.remaining is not None and self.remaining <= 0)


@dataclass
class RecordedRequest:
    method: str
    path: str  # relative to the API base, e.g. "/channels/1/messages"
    query: dict[str, str]
    body: Any
    time: float  # fake clock
    status: int = 0
    injected: bool = False  # answered by fail_next/rate_limit_next/outage


@dataclass
class PushedInteraction:
    """An interaction sent to the bot; its responses are appended as the bot answers."""

    id: int
    token: str
    type: int
    payload: dict[str, Any]
    created_at: float
    responses: list[dict[str, Any]] = field(default_factory=list)
    callback_type: int | None = None
    original: dict[str, Any] | None = None
    followups: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def callback(self) -> dict[str, Any] | None:
        return next((r for r in self.responses if r["kind"] == "callback"), None)

    def complete(self) -> bool:
        """Answered for good: a final callback, or a deferred one followed by an edit or follow-up."""
        if self.callback_type in FINAL_CALLBACKS:
            return True
        return self.callback_type in DEFERRED_CALLBACKS and any(r["kind"] != "callback" for r in self.responses)


@dataclass
class _Guild:
    id: int
    name: str
    everyone_permissions: int
    bot_permissions: int
    owner_id: int
    member_count: int
    bot_role_id: int
    channels: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Request:
    method: str
    path: str
    query: Mapping[str, str]
    body: Any
    files: list[dict[str, Any]]


class FakeDiscord:
    """The fake; see the module docstring. All ids are ints in the API, strings on the wire."""

    def __init__(self, *, application_id: int = DEFAULT_APP_ID, bot_user_id: int | None = None,
                 bot_name: str = "digestbot", clock: Callable[[], float] = time.monotonic,
                 nonce_window: float = 300.0, heartbeat_interval_ms: int = 41_250, validate: bool = True,
                 token: str | None = None, privileged_intents: bool = True,
                 interaction_ack_deadline: float = 3.0) -> None:
        self.application_id = application_id
        self.bot_user = P.user(bot_user_id or application_id, bot_name, bot=True)
        self.default_user = P.user(DEFAULT_USER_ID, "reader", global_name="Reader")
        self.clock = clock
        self.nonce_window = nonce_window
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.validate = validate
        self.token = token
        self.privileged_intents = privileged_intents
        self.interaction_ack_deadline = interaction_ack_deadline

        self.api_base = ""
        self.gateway_url = ""
        self.resume_gateway_url = ""

        # recorded
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[tuple[str, str]] = []
        self.messages: list[dict[str, Any]] = []
        self.interaction_responses: list[dict[str, Any]] = []
        self.commands: dict[int | None, list[dict[str, Any]]] = {}
        self.nonce_hits: list[dict[str, Any]] = []
        self.gateway_received: list[dict[str, Any]] = []
        self.gateway_connections: list[str] = []
        self.identify_payloads: list[dict[str, Any]] = []
        self.interactions: dict[int, PushedInteraction] = {}

        # state
        self.guilds: dict[int, _Guild] = {}
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.attachments: dict[int, tuple[dict[str, Any], bytes]] = {}
        self._channel_guild: dict[int, int] = {}
        self._deleted_channels: set[int] = set()
        self._denied: dict[int, int] = {}
        self._nonces: dict[tuple[int, int, str], tuple[float, dict[str, Any]]] = {}
        self._faults: list[_Fault] = []
        self._sessions: dict[str, Session] = {}
        self._connections: list[Connection] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._previous_discord_py: tuple[str, Any] | None = None

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/gateway-resume", self._gateway)
        app.router.add_get(r"/attachments/{attachment_id:\d+}/{filename}", self._get_attachment)
        app.router.add_route("*", r"/api/v{version:\d+}/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        self._routes = self._route_table()

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> FakeDiscord:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.api_base = f"http://127.0.0.1:{port}/api/v{API_VERSION}"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        self.resume_gateway_url = f"ws://127.0.0.1:{port}/gateway-resume"
        return self

    async def stop(self) -> None:
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(code=1001), 3.0)
        await self._runner.cleanup()
        for waiter in self._waiters:
            waiter.cancel()
        if self._previous_discord_py is not None:
            point_discord_py_at(*self._previous_discord_py)
            self._previous_discord_py = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def configure_discord_py(self) -> None:
        """Point discord.py at this fake; the previous globals come back on ``stop()``."""
        previous = point_discord_py_at(self.api_base, self.gateway_url)
        if self._previous_discord_py is None:
            self._previous_discord_py = previous

    # ---------------------------------------------------------------- seeding
    def add_guild(self, guild_id: int, name: str | None = None, channels: Iterable[int | Mapping[str, Any]] = (),
                  *, everyone_permissions: int = P.DEFAULT_PERMISSIONS, bot_permissions: int = P.DEFAULT_PERMISSIONS,
                  owner_id: int = DEFAULT_USER_ID, member_count: int = 2) -> None:
        """Seed a guild with text channels (ids, or dicts with id/name/type/position); live bots get GUILD_CREATE."""
        guild = _Guild(guild_id, name or f"guild-{guild_id}", everyone_permissions, bot_permissions, owner_id,
                       member_count, P.snowflake())
        self.guilds[guild_id] = guild
        for spec in channels:
            self._put_channel(guild, spec)
        self._emit("GUILD_CREATE", self._guild_create(guild), guild_id=guild_id)

    def add_channel(self, guild_id: int, channel_id: int, name: str | None = None, *, channel_type: int = 0) -> None:
        data = self._put_channel(self.guilds[guild_id], {"id": channel_id, "name": name, "type": channel_type})
        self._emit("CHANNEL_CREATE", data, guild_id=guild_id)

    def deny_channel(self, channel_id: int, *, code: int = 50013) -> None:
        """Posting there answers 403 (50013 Missing Permissions); the bot also sees a deny overwrite."""
        self._denied[channel_id] = code
        self._refresh_overwrites(channel_id)

    def allow_channel(self, channel_id: int) -> None:
        self._denied.pop(channel_id, None)
        self._refresh_overwrites(channel_id)

    def delete_channel(self, channel_id: int) -> None:
        """The channel answers 404 Unknown Channel from now on; live bots get CHANNEL_DELETE."""
        self._deleted_channels.add(channel_id)
        guild_id = self._channel_guild.get(channel_id)
        if guild_id is not None:
            data = self.guilds[guild_id].channels.pop(channel_id)
            self._emit("CHANNEL_DELETE", data, guild_id=guild_id)

    def add_webhook(self, webhook_id: int, token: str, channel_id: int, name: str = "webhook") -> str:
        """Register an incoming webhook; returns its execute URL on the fake."""
        self.webhooks[webhook_id] = {"token": token, "channel_id": channel_id, "name": name}
        return f"{self.api_base}/webhooks/{webhook_id}/{token}"

    def add_attachment(self, filename: str, data: bytes, content_type: str = "application/octet-stream"
                       ) -> dict[str, Any]:
        """An uploaded file a user can pass to an ATTACHMENT option (``push_command(..., {"file": a["id"]})``
        fills ``resolved.attachments``); its ``url`` serves ``data`` without auth, like Discord's CDN."""
        attachment_id = P.snowflake()
        base = self.api_base.rsplit("/api/", 1)[0]
        url = f"{base}/attachments/{attachment_id}/{filename}"
        meta = {"id": str(attachment_id), "filename": filename, "size": len(data), "content_type": content_type,
                "url": url, "proxy_url": url, "ephemeral": True}
        self.attachments[attachment_id] = (meta, data)
        return meta

    async def _get_attachment(self, request: web.Request) -> web.Response:
        found = self.attachments.get(int(request.match_info["attachment_id"]))
        if found is None or found[0]["filename"] != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=found[1], content_type=found[0]["content_type"])

    def _put_channel(self, guild: _Guild, spec: int | Mapping[str, Any]) -> dict[str, Any]:
        spec = {"id": spec} if isinstance(spec, int) else dict(spec)
        channel_id = int(spec["id"])
        data = P.text_channel(channel_id, guild.id, spec.get("name") or f"channel-{channel_id}",
                              position=spec.get("position", len(guild.channels)),
                              channel_type=spec.get("type", 0), overwrites=self._overwrites(channel_id))
        guild.channels[channel_id] = data
        self._channel_guild[channel_id] = guild.id
        self._deleted_channels.discard(channel_id)
        return data

    def _overwrites(self, channel_id: int) -> list[dict[str, Any]]:
        if channel_id not in self._denied:
            return []
        return [{"id": self.bot_user["id"], "type": 1, "allow": "0", "deny": str(P.SEND_MESSAGES | P.EMBED_LINKS)}]

    def _refresh_overwrites(self, channel_id: int) -> None:
        guild_id = self._channel_guild.get(channel_id)
        if guild_id is None or channel_id not in self.guilds[guild_id].channels:
            return
        data = self.guilds[guild_id].channels[channel_id]
        data["permission_overwrites"] = self._overwrites(channel_id)
        self._emit("CHANNEL_UPDATE", data, guild_id=guild_id)

    def channel(self, channel_id: int) -> dict[str, Any] | None:
        """The live channel payload, or None if unknown or deleted."""
        guild_id = self._channel_guild.get(channel_id)
        if guild_id is None or channel_id in self._deleted_channels:
            return None
        return self.guilds[guild_id].channels.get(channel_id)

    # ---------------------------------------------------------------- fault injection
    def fail_next(self, method: str | None, path_regex: str, responses: Sequence[ReplySpec] | ReplySpec) -> None:
        """Answer the next matching requests with these replies, in order (method None = any).

        ``path_regex`` is searched in the path relative to the API base, e.g. ``r"/channels/\\d+/messages$"``.
        A reply is a ``Reply``, a status, ``(status, body)`` or ``(status, body, headers)``.
        """
        specs = [responses] if isinstance(responses, Reply | int | tuple) else list(responses)
        self._faults.append(_Fault(method.upper() if method else None, re.compile(path_regex),
                                   deque(_as_reply(s) for s in specs)))  # type: ignore[arg-type]

    def rate_limit_next(self, path_regex: str, retry_after: float = 0.3, global_: bool = False, count: int = 1,
                        *, method: str | None = None, scope: str | None = None) -> None:
        """Answer the next ``count`` matching requests with a real-shaped 429."""
        replies = [Reply(429, *self._rate_limit_reply(retry_after, global_, scope)) for _ in range(count)]
        self.fail_next(method, path_regex, replies)

    def outage(self, status: int = 503, *, count: int | None = None, duration: float | None = None,
               path_regex: str = r".*", method: str | None = None, body: JsonBody = None) -> None:
        """Answer ``status`` to matching requests for ``count`` requests and/or ``duration`` clock seconds.

        Note discord.py retries 500/502/504/524 itself after sleeping 1 s, 3 s, ...; 503 raises at once.
        """
        if count is None and duration is None:
            raise ValueError("outage needs count= or duration=")
        if body is None:
            body = {"message": f"{status}: Service Unavailable" if status == 503 else f"{status}: Server Error",
                    "code": 0}
        until = None if duration is None else self.clock() + duration
        self._faults.append(_Fault(method.upper() if method else None, re.compile(path_regex), deque(),
                                   repeat=Reply(status, body), remaining=count, until=until))

    def clear_faults(self) -> None:
        self._faults.clear()

    @staticmethod
    def _rate_limit_reply(retry_after: float, global_: bool, scope: str | None) -> tuple[dict[str, Any],
                                                                                            dict[str, str]]:
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_, "code": 0}
        headers = {"Retry-After": str(max(1, math.ceil(retry_after))), "Via": "1.1 google",
                   "X-RateLimit-Scope": scope or ("global" if global_ else "user")}
        if global_:
            headers["X-RateLimit-Global"] = "true"
        else:
            headers.update({"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                            "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                            "X-RateLimit-Reset-After": f"{retry_after:.3f}", "X-RateLimit-Bucket": "fakebucket429"})
        return body, headers

    # ---------------------------------------------------------------- waiting
    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
        """Wait until ``predicate()`` returns something other than None/False (re-checked on every change)."""
        async def poll() -> Any:
            while True:
                result = predicate()
                if result is not None and result is not False:
                    return result
                waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                await waiter

        try:
            return await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            raise TimeoutError(f"fake Discord: timed out after {timeout}s waiting for {what}") from None

    async def wait_until_identified(self, timeout: float = 5.0) -> None:
        """Until a bot has IDENTIFYed and been sent READY plus its GUILD_CREATEs."""
        await self.wait_for(lambda: bool(self.identify_payloads), timeout, "IDENTIFY")

    def messages_in(self, channel_id: int, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        return [m for m in self.messages
                if m["channel_id"] == str(channel_id) and (include_deleted or not m["deleted"])]

    async def wait_for_messages(self, channel_id: int, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        def ready() -> list[dict[str, Any]] | None:
            found = self.messages_in(channel_id)
            return found if len(found) >= count else None
        result: list[dict[str, Any]] = await self.wait_for(ready, timeout, f"{count} message(s) in {channel_id}")
        return result

    async def wait_for_request(self, method: str, path_regex: str, count: int = 1,
                               timeout: float = 5.0) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)

        def ready() -> list[RecordedRequest] | None:
            found = [r for r in self.requests if r.method == method.upper() and pattern.search(r.path) and r.status]
            return found if len(found) >= count else None
        result: list[RecordedRequest] = await self.wait_for(ready, timeout, f"{count}x {method} {path_regex}")
        return result

    async def wait_for_gateway_op(self, op: int, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        def ready() -> list[dict[str, Any]] | None:
            found = [p for p in self.gateway_received if p.get("op") == op]
            return found if len(found) >= count else None
        result: list[dict[str, Any]] = await self.wait_for(ready, timeout, f"{count} gateway op {op}")
        return result

    async def wait_for_interaction_response(self, interaction: PushedInteraction | int, timeout: float = 5.0,
                                            count: int | None = None) -> list[dict[str, Any]]:
        """The responses recorded for an interaction once it is complete (or has ``count`` responses)."""
        pushed = self.interactions[interaction if isinstance(interaction, int) else interaction.id]

        def ready() -> list[dict[str, Any]] | None:
            if count is not None:
                return list(pushed.responses) if len(pushed.responses) >= count else None
            return list(pushed.responses) if pushed.complete() else None
        result: list[dict[str, Any]] = await self.wait_for(ready, timeout, f"responses to interaction {pushed.id}")
        return result

    # ---------------------------------------------------------------- commands (views for tests)
    @property
    def global_commands(self) -> list[dict[str, Any]]:
        return self.commands.get(None, [])

    def guild_commands(self, guild_id: int) -> list[dict[str, Any]]:
        return self.commands.get(guild_id, [])

    def find_command(self, name: str, guild_id: int | None = None) -> dict[str, Any] | None:
        for scope in ((guild_id, None) if guild_id is not None else (None,)):
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        return None

    # ---------------------------------------------------------------- REST plumbing
    def _route_table(self) -> list[tuple[str, re.Pattern[str], Callable[..., Any]]]:
        snowflake = r"(\d+)"
        token = r"([^/]+)"
        table: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", r"/users/@me", self._get_me),
            ("GET", r"/gateway", self._get_gateway),
            ("GET", r"/gateway/bot", self._get_gateway_bot),
            ("GET", r"/(?:oauth2/)?applications/@me", self._get_application),
            ("GET", rf"/applications/{snowflake}(?:/guilds/{snowflake})?/commands", self._list_commands),
            ("PUT", rf"/applications/{snowflake}(?:/guilds/{snowflake})?/commands", self._put_commands),
            ("POST", rf"/applications/{snowflake}(?:/guilds/{snowflake})?/commands", self._post_command),
            ("GET", rf"/applications/{snowflake}(?:/guilds/{snowflake})?/commands/{snowflake}", self._one_command),
            ("PATCH", rf"/applications/{snowflake}(?:/guilds/{snowflake})?/commands/{snowflake}", self._one_command),
            ("DELETE", rf"/applications/{snowflake}(?:/guilds/{snowflake})?/commands/{snowflake}",
             self._one_command),
            ("GET", rf"/guilds/{snowflake}", self._get_guild),
            ("GET", rf"/guilds/{snowflake}/channels", self._get_guild_channels),
            ("GET", rf"/channels/{snowflake}", self._get_channel),
            ("GET", rf"/channels/{snowflake}/messages", self._list_messages),
            ("POST", rf"/channels/{snowflake}/messages", self._create_message),
            ("GET", rf"/channels/{snowflake}/messages/{snowflake}", self._channel_message),
            ("PATCH", rf"/channels/{snowflake}/messages/{snowflake}", self._channel_message),
            ("DELETE", rf"/channels/{snowflake}/messages/{snowflake}", self._channel_message),
            ("POST", rf"/interactions/{snowflake}/{token}/callback", self._interaction_callback),
            ("POST", rf"/webhooks/{snowflake}/{token}", self._execute_webhook),
            ("GET", rf"/webhooks/{snowflake}/{token}/messages/(@original|\d+)", self._webhook_message),
            ("PATCH", rf"/webhooks/{snowflake}/{token}/messages/(@original|\d+)", self._webhook_message),
            ("DELETE", rf"/webhooks/{snowflake}/{token}/messages/(@original|\d+)", self._webhook_message),
        ]
        return [(method, re.compile(pattern), handler) for method, pattern, handler in table]

    @staticmethod
    def _json_response(status: int, body: JsonBody, headers: Mapping[str, str] | None = None) -> web.Response:
        extra = dict(headers or {})
        if body is None:
            return web.Response(status=204 if status == 200 else status, headers=extra)
        if isinstance(body, str):  # e.g. a Cloudflare HTML error page
            extra.setdefault("Content-Type", "text/html")
            return web.Response(status=status, body=body.encode(), headers=extra)
        # exactly "application/json", no charset: discord.py only parses bodies labelled so
        extra["Content-Type"] = "application/json"
        return web.Response(status=status, body=json.dumps(body).encode(), headers=extra)

    @staticmethod
    def _bucket_headers(method: str, path: str) -> dict[str, str]:
        template = re.sub(r"/\d+", "/:id", re.sub(r"/(webhooks|interactions)/(\d+)/[^/]+", r"/\1/\2/:token", path))
        bucket = hashlib.sha1(f"{method} {template}".encode(), usedforsecurity=False).hexdigest()[:32]
        return {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
                "X-RateLimit-Reset-After": "1.000", "X-RateLimit-Bucket": bucket, "Via": "1.1 google"}

    async def _read_body(self, request: web.Request) -> tuple[Any, list[dict[str, Any]]]:
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            body: Any = json.loads(str(form.get("payload_json") or "{}"))
            files = []
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    data = value.file.read()
                    files.append({"field": key, "filename": value.filename, "content_type": value.content_type,
                                  "size": len(data), "data": data})
            return body, files
        raw = await request.read()
        if not raw:
            return None, []
        try:
            return json.loads(raw), []
        except ValueError:
            return raw.decode("utf-8", "replace"), []

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await self._read_body(request)
        record = RecordedRequest(request.method, path, dict(request.query), body, self.clock())
        self.requests.append(record)
        req = _Request(request.method, path, request.query, body, files)
        try:
            response = await self._answer(request, req, record)
        finally:
            self._notify()
        return response

    async def _answer(self, request: web.Request, req: _Request, record: RecordedRequest) -> web.StreamResponse:
        now = self.clock()
        reply: Reply | None = None
        for fault in list(self._faults):
            reply = fault.take(req.method, req.path, now)
            if fault.spent(now):
                self._faults.remove(fault)
            if reply is not None:
                break
        if reply is not None:
            record.injected = True
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.after_handling:
                await self._handle(request, req)
            if reply.drop:
                record.status = -1
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=500)  # never written: the transport is gone
            record.status = reply.status
            body = reply.body
            if body is None and reply.status >= 400:
                body = {"message": f"{reply.status}: injected by the fake", "code": 0}
            return self._json_response(reply.status, body, reply.headers)
        status, body, headers = await self._handle(request, req)
        record.status = status
        return self._json_response(status, body, headers)

    async def _handle(self, request: web.Request, req: _Request) -> tuple[int, JsonBody, dict[str, str]]:
        headers = self._bucket_headers(req.method, req.path)
        public = req.path.startswith(("/webhooks/", "/interactions/"))
        auth = request.headers.get("Authorization")
        if self.token is not None and not public and auth != f"Bot {self.token}":
            return 401, {"message": "401: Unauthorized", "code": 0}, {}
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(req.path)
            if match and method == req.method:
                status, body = await handler(req, *match.groups())
                return status, body, headers
        self.unhandled.append((req.method, req.path))
        return 404, {"message": "404: Not Found", "code": 0}, {}

    # ---------------------------------------------------------------- REST: identity, gateway, application
    async def _get_me(self, req: _Request) -> tuple[int, JsonBody]:
        return 200, {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None, "locale": "en-US",
                     "premium_type": 0, "bio": "", "banner": None, "accent_color": None}

    async def _get_gateway(self, req: _Request) -> tuple[int, JsonBody]:
        return 200, {"url": self.gateway_url}

    async def _get_gateway_bot(self, req: _Request) -> tuple[int, JsonBody]:
        return 200, {"url": self.gateway_url, "shards": 1, "session_start_limit": {
            "total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}}

    async def _get_application(self, req: _Request) -> tuple[int, JsonBody]:
        return 200, {"id": str(self.application_id), "name": self.bot_user["username"], "icon": None,
                     "description": "", "summary": "", "type": None, "bot_public": True,
                     "bot_require_code_grant": False, "verify_key": "0" * 64, "owner": self.default_user,
                     "team": None, "flags": 0, "bot": self.bot_user, "rpc_origins": [], "tags": [],
                     "interactions_endpoint_url": None, "redirect_uris": [], "install_params": None,
                     "approximate_guild_count": len(self.guilds), "integration_types_config": {"0": {}}}

    # ---------------------------------------------------------------- REST: application commands
    def _command_scope(self, app_id: str, guild_id: str | None) -> tuple[int | None, tuple[int, JsonBody] | None]:
        if int(app_id) != self.application_id:
            return None, (403, {"message": "Missing Access", "code": 50001})
        if guild_id is not None and int(guild_id) not in self.guilds:
            return None, (403, {"message": "Missing Access", "code": 50001})
        return (int(guild_id) if guild_id else None), None

    def _store_command(self, scope: int | None, data: Mapping[str, Any],
                       existing: dict[str, Any] | None) -> dict[str, Any]:
        command = {"type": 1, "description": "", "options": [], "default_member_permissions": None, "nsfw": False,
                   "name_localizations": None, "description_localizations": None, **data,
                   "id": existing["id"] if existing else str(P.snowflake()),
                   "application_id": str(self.application_id), "version": str(P.snowflake())}
        if scope is not None:
            command["guild_id"] = str(scope)
        else:
            command.setdefault("contexts", None)
            command.setdefault("integration_types", [0])
        return command

    async def _list_commands(self, req: _Request, app_id: str, guild_id: str | None) -> tuple[int, JsonBody]:
        scope, error = self._command_scope(app_id, guild_id)
        return error or (200, self.commands.get(scope, []))

    async def _put_commands(self, req: _Request, app_id: str, guild_id: str | None) -> tuple[int, JsonBody]:
        scope, error = self._command_scope(app_id, guild_id)
        if error:
            return error
        if not isinstance(req.body, list):
            return 400, {"message": "Invalid Form Body", "code": 50035}
        old = {(c["name"], c.get("type", 1)): c for c in self.commands.get(scope, [])}
        self.commands[scope] = [self._store_command(scope, c, old.get((c["name"], c.get("type", 1))))
                                for c in req.body]
        return 200, self.commands[scope]

    async def _post_command(self, req: _Request, app_id: str, guild_id: str | None) -> tuple[int, JsonBody]:
        scope, error = self._command_scope(app_id, guild_id)
        if error:
            return error
        commands = self.commands.setdefault(scope, [])
        existing = next((c for c in commands if c["name"] == req.body["name"]
                         and c.get("type", 1) == req.body.get("type", 1)), None)
        command = self._store_command(scope, req.body, existing)
        if existing:
            commands[commands.index(existing)] = command
            return 200, command
        commands.append(command)
        return 201, command

    async def _one_command(self, req: _Request, app_id: str, guild_id: str | None,
                           command_id: str) -> tuple[int, JsonBody]:
        scope, error = self._command_scope(app_id, guild_id)
        if error:
            return error
        commands = self.commands.get(scope, [])
        existing = next((c for c in commands if c["id"] == command_id), None)
        if existing is None:
            return 404, {"message": "Unknown application command", "code": 10063}
        if req.method == "DELETE":
            commands.remove(existing)
            return 204, None
        if req.method == "PATCH":
            existing.update(req.body or {})
        return 200, existing

    # ---------------------------------------------------------------- REST: guilds and channels
    def _guild_object(self, guild: _Guild) -> dict[str, Any]:
        everyone = P.role(guild.id, "@everyone", guild.everyone_permissions)
        bot_role = P.role(guild.bot_role_id, self.bot_user["username"], guild.bot_permissions, position=1,
                          managed=True, bot_id=int(self.bot_user["id"]))
        return {"id": str(guild.id), "name": guild.name, "icon": None, "splash": None, "discovery_splash": None,
                "banner": None, "description": None, "owner_id": str(guild.owner_id), "afk_channel_id": None,
                "afk_timeout": 300, "verification_level": 0, "default_message_notifications": 0,
                "explicit_content_filter": 0, "roles": [everyone, bot_role], "emojis": [], "stickers": [],
                "features": [], "mfa_level": 0, "application_id": None, "system_channel_id": None,
                "system_channel_flags": 0, "rules_channel_id": None, "public_updates_channel_id": None,
                "safety_alerts_channel_id": None, "vanity_url_code": None, "premium_tier": 0,
                "premium_subscription_count": 0, "preferred_locale": "en-US", "nsfw_level": 0,
                "max_members": 500000, "max_video_channel_users": 25, "premium_progress_bar_enabled": False}

    def _guild_create(self, guild: _Guild) -> dict[str, Any]:
        channels = [{k: v for k, v in c.items() if k != "guild_id"} for c in guild.channels.values()]
        me = P.member(self.bot_user, roles=[guild.bot_role_id])
        return {**self._guild_object(guild), "unavailable": False, "large": False, "lazy": True,
                "member_count": guild.member_count, "joined_at": P.JOINED_AT, "channels": channels, "members": [me],
                "threads": [], "voice_states": [], "presences": [], "stage_instances": [],
                "guild_scheduled_events": [], "soundboard_sounds": []}

    async def _get_guild(self, req: _Request, guild_id: str) -> tuple[int, JsonBody]:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            return 404, {"message": "Unknown Guild", "code": 10004}
        return 200, self._guild_object(guild)

    async def _get_guild_channels(self, req: _Request, guild_id: str) -> tuple[int, JsonBody]:
        guild = self.guilds.get(int(guild_id))
        if guild is None:
            return 404, {"message": "Unknown Guild", "code": 10004}
        return 200, list(guild.channels.values())

    async def _get_channel(self, req: _Request, channel_id: str) -> tuple[int, JsonBody]:
        data = self.channel(int(channel_id))
        if data is None:
            return 404, {"message": "Unknown Channel", "code": 10003}
        return 200, data

    # ---------------------------------------------------------------- REST: messages
    @staticmethod
    def public(record: Mapping[str, Any]) -> dict[str, Any]:
        """A recorded message as the API returns it (recording-only keys removed)."""
        return {k: v for k, v in record.items() if k not in _PRIVATE_KEYS}

    def _new_message(self, channel_id: int, body: Mapping[str, Any], files: list[dict[str, Any]], *,
                     author: dict[str, Any], source: str, msg_type: int = 0, webhook_id: int | None = None,
                     extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        attachments = self._attachment_objects(channel_id, files)
        record: dict[str, Any] = {
            "id": str(P.snowflake()), "channel_id": str(channel_id), "author": author,
            "content": body.get("content") or "", "timestamp": P.iso_now(), "edited_timestamp": None,
            "tts": bool(body.get("tts")), "mention_everyone": False, "mentions": [], "mention_roles": [],
            "attachments": attachments, "embeds": [P.embed_out(e) for e in body.get("embeds") or []],
            "pinned": False, "type": msg_type, "flags": int(body.get("flags") or 0),
            "components": body.get("components") or [],
            # recording-only keys (see _PRIVATE_KEYS)
            "allowed_mentions": body.get("allowed_mentions"), "enforce_nonce": bool(body.get("enforce_nonce")),
            "payload": dict(body), "deleted": False, "files": files, "edits": [], "source": source,
            "guild_id": str(self._channel_guild.get(channel_id, "")) or None,
        }
        if body.get("nonce") is not None:
            record["nonce"] = body["nonce"]
        if webhook_id is not None:
            record["webhook_id"] = str(webhook_id)
        if extra:
            record.update(extra)
        return record

    def _attachment_objects(self, channel_id: int, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": str(P.snowflake()), "filename": f["filename"], "size": f["size"],
                 "content_type": f["content_type"],
                 "url": f"{self.api_base}/attachments/{channel_id}/{f['filename']}",
                 "proxy_url": f"{self.api_base}/attachments/{channel_id}/{f['filename']}"} for f in files]

    @staticmethod
    def _apply_edit(record: dict[str, Any], body: Mapping[str, Any],
                    uploaded: Sequence[dict[str, Any]] = ()) -> None:
        """``body.attachments`` lists the existing attachments to keep (by id); ``uploaded`` are new files'."""
        for key in ("content", "components", "allowed_mentions", "flags"):
            if key in body:
                record[key] = body[key] if body[key] is not None else ("" if key == "content" else [])
        if "attachments" in body or uploaded:
            existing = [a for a in record.get("attachments") or [] if "size" in a]
            if "attachments" in body:
                keep = {str(a.get("id")) for a in body["attachments"] or []}
                existing = [a for a in existing if a["id"] in keep]
            record["attachments"] = existing + list(uploaded)
        if "embeds" in body:
            record["embeds"] = [P.embed_out(e) for e in body["embeds"] or []]
        record["flags"] = int(record.get("flags") or 0) & ~LOADING
        record["edited_timestamp"] = P.iso_now()
        record["edits"].append(dict(body))

    def _check_message(self, body: Any, files: list[dict[str, Any]]) -> tuple[int, JsonBody] | None:
        if not isinstance(body, dict):
            return 400, {"message": "Invalid Form Body", "code": 50035}
        return P.validate_message(body, has_files=bool(files)) if self.validate else None

    async def _create_message(self, req: _Request, channel_id: str) -> tuple[int, JsonBody]:
        cid = int(channel_id)
        if self.channel(cid) is None:
            return 404, {"message": "Unknown Channel", "code": 10003}
        if cid in self._denied:
            return 403, {"message": "Missing Permissions", "code": self._denied[cid]}
        error = self._check_message(req.body, req.files)
        if error:
            return error
        body: dict[str, Any] = req.body
        nonce = body.get("nonce")
        key = (cid, int(self.bot_user["id"]), str(nonce))
        now = self.clock()
        if nonce is not None and body.get("enforce_nonce"):
            seen = self._nonces.get(key)
            if seen is not None and now - seen[0] <= self.nonce_window:
                self.nonce_hits.append({"channel_id": channel_id, "nonce": str(nonce), "message_id": seen[1]["id"]})
                return 200, self.public(seen[1])
        record = self._new_message(cid, body, req.files, author=self.bot_user, source="bot")
        self.messages.append(record)
        if nonce is not None:
            self._nonces[key] = (now, record)
        return 200, self.public(record)

    def _find_message(self, message_id: str, channel_id: str | None = None) -> dict[str, Any] | None:
        for record in reversed(self.messages):
            if record["id"] == message_id and not record["deleted"] and channel_id in (None, record["channel_id"]):
                return record
        return None

    async def _list_messages(self, req: _Request, channel_id: str) -> tuple[int, JsonBody]:
        if self.channel(int(channel_id)) is None:
            return 404, {"message": "Unknown Channel", "code": 10003}
        limit = int(req.query.get("limit", 50))
        found = [self.public(m) for m in reversed(self.messages_in(int(channel_id)))]
        return 200, found[:limit]

    async def _channel_message(self, req: _Request, channel_id: str, message_id: str) -> tuple[int, JsonBody]:
        if self.channel(int(channel_id)) is None:
            return 404, {"message": "Unknown Channel", "code": 10003}
        record = self._find_message(message_id, channel_id)
        if record is None:
            return 404, {"message": "Unknown Message", "code": 10008}
        if req.method == "DELETE":
            record["deleted"] = True
            return 204, None
        if req.method == "PATCH":
            if self.validate and isinstance(req.body, dict):
                error = P.validate_message(req.body, require_content=False)
                if error:
                    return error
            self._apply_edit(record, req.body or {})
        return 200, self.public(record)

    # ---------------------------------------------------------------- REST: interactions and webhooks
    def _interaction_message(self, pushed: PushedInteraction, body: Mapping[str, Any], *, msg_type: int,
                             loading: bool = False, files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        channel_id = int(pushed.payload["channel_id"])
        user = pushed.payload.get("member", {}).get("user") or pushed.payload.get("user")
        record = self._new_message(
            channel_id, body, files or [], author=self.bot_user, source="interaction", msg_type=msg_type,
            webhook_id=self.application_id,
            extra={"application_id": str(self.application_id), "interaction_id": str(pushed.id),
                   "interaction_metadata": {"id": str(pushed.id), "type": pushed.type, "user": user,
                                            "authorizing_integration_owners": {}}})
        if loading:
            record["flags"] |= LOADING
        return record

    def _record_response(self, pushed: PushedInteraction, kind: str, req: _Request, **extra: Any) -> None:
        entry = {"interaction_id": pushed.id, "kind": kind, "method": req.method, "path": req.path,
                 "data": req.body, "time": self.clock(), **extra}
        if req.files:
            entry["files"] = req.files  # [{field, filename, content_type, size, data}]
        pushed.responses.append(entry)
        self.interaction_responses.append(entry)

    async def _interaction_callback(self, req: _Request, interaction_id: str, token: str) -> tuple[int, JsonBody]:
        pushed = self.interactions.get(int(interaction_id))
        unknown = 404, {"message": "Unknown interaction", "code": 10062}
        if pushed is None or pushed.token != token:
            return unknown
        if pushed.callback_type is not None:
            return 400, {"message": "Interaction has already been acknowledged.", "code": 40060}
        if self.clock() - pushed.created_at > self.interaction_ack_deadline:
            return unknown
        body = req.body if isinstance(req.body, dict) else {}
        cb_type = body.get("type")
        data = body.get("data") or {}
        if cb_type not in ALLOWED_CALLBACKS.get(pushed.type, set()):
            return 400, P._form_error(["type"], "INTERACTION_RESPONSE_TYPE_INVALID",
                                      f"Callback type {cb_type} is not valid for interaction type {pushed.type}")
        if cb_type == 4 and self.validate:
            error = P.validate_message(data, has_files=bool(req.files))
            if error:
                return error
        pushed.callback_type = cb_type
        if cb_type in (4, 5):
            msg_type = 20 if pushed.type == 2 else 0
            pushed.original = self._interaction_message(pushed, data, msg_type=msg_type, loading=cb_type == 5,
                                                        files=req.files)
        elif cb_type in (6, 7):
            message_id = (pushed.payload.get("message") or {}).get("id")
            pushed.original = self._find_message(message_id) if message_id else None
            if pushed.original is None and pushed.payload.get("message"):
                pushed.original = {**pushed.payload["message"], "edits": [], "deleted": False}
            if cb_type == 7 and pushed.original is not None:
                self._apply_edit(pushed.original, data)
        self._record_response(pushed, "callback", req, type=cb_type, data=data,
                              message_id=pushed.original["id"] if pushed.original else None)
        if req.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        flags = int((pushed.original or {}).get("flags") or 0)
        interaction = {"id": str(pushed.id), "type": pushed.type, "activity_instance_id": None,
                       "response_message_id": pushed.original["id"] if pushed.original else None,
                       "response_message_loading": bool(flags & LOADING),
                       "response_message_ephemeral": bool(flags & EPHEMERAL)}
        resource: dict[str, Any] = {"type": cb_type}
        if pushed.original is not None and cb_type in (4, 5, 7):
            resource["message"] = self.public(pushed.original)
        return 200, {"interaction": interaction, "resource": resource}

    def _interaction_by_token(self, app_id: str, token: str) -> PushedInteraction | None:
        if int(app_id) != self.application_id:
            return None
        return next((p for p in self.interactions.values() if p.token == token), None)

    async def _execute_webhook(self, req: _Request, webhook_id: str, token: str) -> tuple[int, JsonBody]:
        unknown = 404, {"message": "Unknown Webhook", "code": 10015}
        wait = req.query.get("wait", "").lower() in ("1", "true")
        pushed = self._interaction_by_token(webhook_id, token)
        if pushed is not None:
            if pushed.callback_type is None or self.clock() - pushed.created_at > INTERACTION_TOKEN_TTL:
                return unknown
            error = self._check_message(req.body, req.files)
            if error:
                return error
            if pushed.callback_type == 5 and pushed.original is not None and pushed.original["flags"] & LOADING:
                # documented: the first follow-up after a deferred response edits the loading message
                self._apply_edit(pushed.original, {k: v for k, v in req.body.items() if k != "flags"},
                                 self._attachment_objects(int(pushed.original["channel_id"]), req.files))
                self._record_response(pushed, "followup", req, message_id=pushed.original["id"],
                                      edited_original=True)
                return 200, self.public(pushed.original)
            record = self._interaction_message(pushed, req.body, msg_type=0, files=req.files)
            pushed.followups[int(record["id"])] = record
            self._record_response(pushed, "followup", req, message_id=record["id"], edited_original=False)
            return 200, self.public(record)
        hook = self.webhooks.get(int(webhook_id))
        if hook is None or hook["token"] != token:
            return unknown
        channel_id = int(req.query.get("thread_id") or hook["channel_id"])
        if self.channel(channel_id) is None:
            return unknown
        error = self._check_message(req.body, req.files)
        if error:
            return error
        body = req.body
        author = P.user(int(webhook_id), body.get("username") or hook["name"], bot=True)
        record = self._new_message(channel_id, body, req.files, author=author, source="webhook",
                                   webhook_id=int(webhook_id))
        self.messages.append(record)
        return (200, self.public(record)) if wait else (204, None)

    async def _webhook_message(self, req: _Request, webhook_id: str, token: str,
                               message_id: str) -> tuple[int, JsonBody]:
        unknown_message = 404, {"message": "Unknown Message", "code": 10008}
        pushed = self._interaction_by_token(webhook_id, token)
        record: dict[str, Any] | None
        if pushed is not None:
            if message_id == "@original" or (pushed.original and pushed.original["id"] == message_id):
                record = pushed.original
            else:
                record = pushed.followups.get(int(message_id))
        else:
            hook = self.webhooks.get(int(webhook_id))
            if hook is None or hook["token"] != token:
                return 404, {"message": "Unknown Webhook", "code": 10015}
            record = self._find_message(message_id) if message_id != "@original" else None
            if record is not None and record.get("webhook_id") != webhook_id:
                record = None
        if record is None or record.get("deleted"):
            return unknown_message
        if req.method == "PATCH":
            if self.validate and isinstance(req.body, dict):
                error = P.validate_message(req.body, require_content=False)
                if error:
                    return error
            uploaded = self._attachment_objects(int(record["channel_id"]), req.files)
            self._apply_edit(record, req.body or {}, uploaded)
        elif req.method == "DELETE":
            record["deleted"] = True
        if pushed is not None and req.method != "GET":
            self._record_response(pushed, "edit" if req.method == "PATCH" else "delete", req,
                                  message_id=record["id"])
        return (204, None) if req.method == "DELETE" else (200, self.public(record))

    # ---------------------------------------------------------------- gateway
    def _live_session(self, guild_id: int | None = None) -> Session | None:
        """The newest session that owns this guild's shard (any session when guild_id is None)."""
        for session in reversed(list(self._sessions.values())):
            shard_id, shard_count = session.shard
            if guild_id is None or (guild_id >> 22) % max(shard_count, 1) == shard_id:
                return session
        return None

    def _emit(self, event: str, data: Any, *, guild_id: int | None = None) -> asyncio.Future[None] | None:
        """Dispatch to the session owning ``guild_id``; kept for RESUME replay while it is disconnected."""
        session = self._live_session(guild_id)
        if session is None:
            return None
        payload = session.next_dispatch(event, data)
        futures = [conn.send(payload) for conn in self._connections if conn.session is session]
        return futures[0] if futures else None

    async def dispatch(self, event: str, data: Any, *, guild_id: int | None = None) -> None:
        """Send a DISPATCH (op 0) to the connected bot and wait until it is written."""
        future = self._emit(event, data, guild_id=guild_id)
        if future is not None:
            await future

    @property
    def connected(self) -> bool:
        return any(conn.session is not None for conn in self._connections)

    async def disconnect_gateway(self, code: int = 4000) -> None:
        """Close the bot's gateway socket(s) with ``code``; 4000 makes discord.py RESUME on resume_gateway_url."""
        for conn in list(self._connections):
            await conn.close(code=code)

    async def send_reconnect(self) -> None:
        """Send op 7 RECONNECT (discord.py closes and RESUMEs)."""
        await asyncio.gather(*(conn.send({"op": 7, "d": None, "s": None, "t": None}) for conn in self._connections))

    async def invalidate_session(self, resumable: bool = False) -> None:
        """Send op 9 INVALID_SESSION; unresumable also forgets the sessions, so the bot IDENTIFYs again."""
        if not resumable:
            self._sessions.clear()
        await asyncio.gather(*(conn.send({"op": 9, "d": resumable, "s": None, "t": None})
                               for conn in self._connections))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0, timeout=5.0)
        await ws.prepare(request)
        self.gateway_connections.append(request.path_qs)
        query = request.query
        if query.get("encoding", "json") != "json":
            await ws.close(code=4002, message=b"Error while decoding payload.")
            return ws
        if query.get("v") not in (None, str(API_VERSION)):
            await ws.close(code=4012, message=b"Invalid API version")
            return ws
        try:
            compressor = make_compressor(query.get("compress"))
        except (ValueError, ImportError):
            await ws.close(code=4000, message=b"Unsupported compression")
            return ws
        conn = Connection(ws, compressor, request.path_qs)
        self._connections.append(conn)
        conn.send({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None, "t": None})
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    payload = json.loads(message.data)
                elif message.type == WSMsgType.BINARY:
                    payload = json.loads(message.data.decode())
                else:
                    break
                self.gateway_received.append(payload)
                await self._on_gateway_payload(conn, payload)
                self._notify()
        finally:
            self._connections.remove(conn)
            await conn.finish()
            self._notify()
        return ws

    async def _on_gateway_payload(self, conn: Connection, payload: dict[str, Any]) -> None:
        op, data = payload.get("op"), payload.get("d") or {}
        if op == 1:
            conn.send({"op": 11, "d": None, "s": None, "t": None})
        elif op == 2:
            await self._identify(conn, data)
        elif op == 6:
            session = self._sessions.get(str(data.get("session_id")))
            if session is None or (self.token is not None and data.get("token") != self.token):
                conn.send({"op": 9, "d": False, "s": None, "t": None})
                return
            conn.session = session
            seq = int(data.get("seq") or 0)
            for event in session.events:
                if event["s"] > seq:
                    conn.send(event)
            conn.send(session.next_dispatch("RESUMED", {}))
        elif op == 8:
            guild_id = int(data.get("guild_id", 0))
            if conn.session is not None and guild_id in self.guilds:
                guild = self.guilds[guild_id]
                chunk = {"guild_id": str(guild_id), "chunk_index": 0, "chunk_count": 1, "not_found": [],
                         "members": [P.member(self.bot_user, roles=[guild.bot_role_id])]}
                if data.get("nonce"):
                    chunk["nonce"] = data["nonce"]
                conn.send(conn.session.next_dispatch("GUILD_MEMBERS_CHUNK", chunk))

    async def _identify(self, conn: Connection, data: dict[str, Any]) -> None:
        self.identify_payloads.append({**data, "token": "<redacted>"})
        if self.token is not None and data.get("token") != self.token:
            await conn.close(code=4004, message=b"Authentication failed.")
            return
        intents = int(data.get("intents", 0))
        if not self.privileged_intents and intents & PRIVILEGED_INTENTS:
            await conn.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = list(data.get("shard") or [0, 1])
        session = Session(secrets.token_hex(16), shard, intents)
        self._sessions = {k: s for k, s in self._sessions.items() if s.shard != shard}
        self._sessions[session.id] = session
        conn.session = session
        guilds = [g for g in self.guilds.values() if (g.id >> 22) % max(shard[1], 1) == shard[0]]
        ready = {"v": API_VERSION, "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "email": None},
                 "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds], "session_id": session.id,
                 "session_type": "normal", "resume_gateway_url": self.resume_gateway_url, "shard": shard,
                 "application": {"id": str(self.application_id), "flags": 0}, "private_channels": [],
                 "relationships": [], "presences": [], "guild_join_requests": [], "geo_ordered_rtc_regions": [],
                 "user_settings": {}, "_trace": ["fake-discord"]}
        conn.send(session.next_dispatch("READY", ready))
        for guild in guilds:
            conn.send(session.next_dispatch("GUILD_CREATE", self._guild_create(guild)))

    # ---------------------------------------------------------------- pushing interactions
    def _default_target(self, guild_id: int | None, channel_id: int | None) -> tuple[int, int]:
        if guild_id is None:
            if channel_id is not None and channel_id in self._channel_guild:
                guild_id = self._channel_guild[channel_id]
            elif self.guilds:
                guild_id = next(iter(self.guilds))
            else:
                raise ValueError("no guild seeded: add_guild() first or pass guild_id")
        if channel_id is None:
            channels = self.guilds[guild_id].channels
            if not channels:
                raise ValueError(f"guild {guild_id} has no channels: pass channel_id")
            channel_id = next(iter(channels))
        return guild_id, channel_id

    async def push_interaction(self, interaction_type: int, data: dict[str, Any] | None, *,
                               guild_id: int | None = None, channel_id: int | None = None,
                               user: dict[str, Any] | None = None, permissions: int = P.DEFAULT_PERMISSIONS,
                               message: dict[str, Any] | None = None, locale: str = "en-US",
                               extra: Mapping[str, Any] | None = None) -> PushedInteraction:
        """Send INTERACTION_CREATE (guild context) to the bot; returns the record its answers land in."""
        guild_id, channel_id = self._default_target(guild_id, channel_id)
        if self._live_session(guild_id) is None:
            raise RuntimeError("no gateway session: wait_until_identified() first")
        guild = self.guilds[guild_id]
        channel = self.channel(channel_id) or P.text_channel(channel_id, guild_id, f"channel-{channel_id}")
        interaction_id = P.snowflake()
        token = "aW50ZXJhY3Rpb24" + secrets.token_urlsafe(96)
        payload: dict[str, Any] = {
            "id": str(interaction_id), "application_id": str(self.application_id), "type": interaction_type,
            "token": token, "version": 1, "guild_id": str(guild_id),
            "guild": {"id": str(guild_id), "locale": "en-US", "features": []},
            "channel_id": str(channel_id), "channel": channel,
            "member": P.member(user or self.default_user, permissions=permissions),
            "app_permissions": str(guild.bot_permissions), "locale": locale, "guild_locale": "en-US",
            "entitlements": [], "authorizing_integration_owners": {"0": str(guild_id)}, "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if data is not None:
            self._resolve_options(data, data.get("options") or [], guild_id, permissions)
            payload["data"] = data
        if message is not None:
            payload["message"] = message
        payload.update(extra or {})
        pushed = PushedInteraction(interaction_id, token, interaction_type, payload, self.clock())
        self.interactions[interaction_id] = pushed
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=guild_id)
        return pushed

    def _resolve_options(self, data: dict[str, Any], options: Sequence[Mapping[str, Any]], guild_id: int,
                         permissions: int) -> None:
        """Fill ``data.resolved`` for CHANNEL (7) options naming a seeded channel and ATTACHMENT (11) options
        naming an ``add_attachment`` id, as Discord does (discord.py converts those options from it)."""
        for option in options:
            if "options" in option:
                self._resolve_options(data, option["options"], guild_id, permissions)
                continue
            kind, value = option.get("type"), str(option.get("value"))
            if kind == 7 and value.isdigit() and (channel := self.channel(int(value))) is not None:
                resolved = data.setdefault("resolved", {}).setdefault("channels", {})
                resolved.setdefault(value, {**{k: channel[k] for k in ("id", "name", "type", "parent_id")},
                                            "permissions": str(permissions)})
            elif kind == 11 and value.isdigit() and int(value) in self.attachments:
                resolved = data.setdefault("resolved", {}).setdefault("attachments", {})
                resolved.setdefault(value, dict(self.attachments[int(value)][0]))

    def _command_data(self, name: str, options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
                      guild_id: int | None, focused: str | None = None) -> dict[str, Any]:
        root, *path = name.split()
        command = self.find_command(root, guild_id)
        data: dict[str, Any] = {"id": command["id"] if command else str(P.snowflake()), "name": root, "type": 1}
        if command and command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        definitions = (command or {}).get("options") or []
        if isinstance(options, Mapping):
            built = []
            leaf_defs = definitions
            for part in path:
                leaf_defs = next((o.get("options") or [] for o in leaf_defs if o["name"] == part), [])
            for key, value in options.items():
                option_def = next((o for o in leaf_defs if o["name"] == key), None)
                option_type = option_def["type"] if option_def else _option_type(value)
                if option_type in (6, 7, 8, 9, 11) and isinstance(value, int):
                    value = str(value)  # snowflakes are strings on the wire
                option = {"name": key, "type": option_type, "value": value}
                if key == focused:
                    option["focused"] = True
                built.append(option)
        else:
            built = [dict(o) for o in options or []]
        for part in reversed(path):
            group = next((o for o in definitions if o["name"] == part and o.get("type") == 2), None)
            built = [{"name": part, "type": 2 if group else 1, "options": built}]
        if built:
            data["options"] = built
        return data

    async def push_command(self, name: str, options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                           **kwargs: Any) -> PushedInteraction:
        """A slash command (type 2). ``name`` may be ``"group sub"``; option types come from the synced command
        (else from the Python value); pass a list of raw option dicts for full control."""
        guild_id, _ = self._default_target(kwargs.get("guild_id"), kwargs.get("channel_id"))
        return await self.push_interaction(2, self._command_data(name, options, guild_id), **kwargs)

    async def push_autocomplete(self, name: str, options: Mapping[str, Any], focused: str,
                                **kwargs: Any) -> PushedInteraction:
        """An autocomplete request (type 4) with ``focused`` marked; answer lands as callback type 8."""
        guild_id, _ = self._default_target(kwargs.get("guild_id"), kwargs.get("channel_id"))
        return await self.push_interaction(4, self._command_data(name, options, guild_id, focused), **kwargs)

    async def push_component(self, custom_id: str, *, message_id: int | str | None = None,
                             message: dict[str, Any] | None = None, component_type: int = 2,
                             values: list[str] | None = None, **kwargs: Any) -> PushedInteraction:
        """A component click (type 3) on a recorded message (``message_id``), a given message, or a synthetic one."""
        if message is None and message_id is not None:
            record = self._find_message(str(message_id))
            if record is None:
                raise ValueError(f"no recorded message {message_id}")
            message = self.public(record)
            kwargs.setdefault("channel_id", int(record["channel_id"]))
        guild_id, channel_id = self._default_target(kwargs.pop("guild_id", None), kwargs.pop("channel_id", None))
        if message is None:
            button = {"type": 2, "style": 1, "label": custom_id, "custom_id": custom_id}
            message = self.public(self._new_message(
                channel_id, {"content": "", "components": [{"type": 1, "components": [button]}]}, [],
                author=self.bot_user, source="synthetic"))
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        return await self.push_interaction(3, data, guild_id=guild_id, channel_id=channel_id, message=message,
                                           **kwargs)


def _option_type(value: Any) -> int:
    """Application command option type for a Python value (STRING 3, INTEGER 4, BOOLEAN 5, NUMBER 10)."""
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3
