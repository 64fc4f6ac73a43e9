"""A fake Discord for end-to-end tests: REST + gateway websocket (zlib-stream) on 127.0.0.1.

    async with DiscordFake() as fake:
        fake.add_guild(GUILD, channels=[CHANNEL])
        # point the bot at fake.api_base / fake.gateway_url (config discord.api_base / gateway_url)
        await fake.wait_until_identified()
        msgs = await fake.wait_for_messages(CHANNEL, 3)
        response = await fake.push_command("search", {"query": "幻觉"}, guild_id=GUILD, channel_id=CHANNEL)

It records created messages (content, embeds, nonce, allowed_mentions), interaction callbacks and
follow-ups, honours ``enforce_nonce`` the way Discord documents it (a repeated nonce from the same
author in the same channel within a few minutes returns the existing message), and can answer
with real-shaped 429s (``X-RateLimit-*`` headers, ``Retry-After``, ``Via``) or 5xx on demand.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

APP_ID = 900000000000000001
BOT_USER = {"id": str(APP_ID), "username": "digestbot", "discriminator": "0", "global_name": None,
            "avatar": None, "bot": True, "flags": 0}
MEMBER_USER = {"id": "700000000000000001", "username": "reader", "discriminator": "0", "global_name": "Reader",
               "avatar": None}
NONCE_WINDOW = 300.0


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # exactly "application/json" (no charset): discord.py only parses JSON bodies labelled so
    return web.Response(status=status, body=json.dumps(data).encode(),
                        headers={"Content-Type": "application/json", "X-RateLimit-Limit": "5",
                                 "X-RateLimit-Remaining": "4",
                                 "X-RateLimit-Reset-After": "1.0", "X-RateLimit-Bucket": "fake",
                                 **(headers or {})})


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Interaction:
    id: str
    token: str
    responses: list[dict[str, Any]] = field(default_factory=list)


class DiscordFake:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self.guilds: dict[int, list[int]] = {}
        self.denied: set[int] = set()
        self.messages: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.unhandled: list[tuple[str, str]] = []
        self.interactions: dict[str, Interaction] = {}
        self.faults: list[Fault] = []
        self._nonces: dict[tuple[int, str], tuple[float, dict[str, Any]]] = {}
        self._sockets: list[tuple[web.WebSocketResponse, Any]] = []
        self._seq = 0
        self._changed = asyncio.Event()
        self.identified = asyncio.Event()
        self.api_base = ""
        self.gateway_url = ""
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> DiscordFake:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.api_base = f"http://127.0.0.1:{port}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/gateway"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws, _ in list(self._sockets):
            await ws.close()
        await self._runner.cleanup()

    # -- seeding and faults ------------------------------------------------------------------------
    def add_guild(self, guild_id: int, channels: list[int]) -> None:
        self.guilds[guild_id] = list(channels)

    def deny_channel(self, channel_id: int) -> None:
        self.denied.add(channel_id)

    def fail_next(self, method: str, path_regex: str, status: int, *, count: int = 1,
                  headers: dict[str, str] | None = None, body: dict[str, Any] | None = None) -> None:
        for _ in range(count):
            self.faults.append(Fault(method, re.compile(path_regex), status, headers or {},
                                     body or {"message": f"{status} error", "code": 0}))

    def rate_limit_next(self, path_regex: str, *, retry_after: float = 0.5, count: int = 1,
                        global_: bool = False) -> None:
        headers = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                   "X-RateLimit-Reset-After": f"{retry_after:.3f}", "X-RateLimit-Bucket": "fake-bucket",
                   "X-RateLimit-Scope": "global" if global_ else "user", "Retry-After": f"{retry_after:.0f}",
                   "Via": "1.1 google"}
        if global_:
            headers["X-RateLimit-Global"] = "true"
        self.fail_next("POST", path_regex, 429, count=count, headers=headers,
                       body={"message": "You are being rate limited.", "retry_after": retry_after,
                             "global": global_, "code": 0})

    # -- waiting -------------------------------------------------------------------------------------
    async def _wait(self, predicate: Callable[[], Any], timeout: float) -> Any:
        async def loop() -> Any:
            while True:
                result = predicate()
                if result:
                    return result
                self._changed.clear()
                await self._changed.wait()
        return await asyncio.wait_for(loop(), timeout)

    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["channel_id"] == str(channel_id)]

    async def wait_for_messages(self, channel_id: int, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return await self._wait(lambda: len(self.messages_in(channel_id)) >= count and self.messages_in(channel_id),
                                timeout)

    async def wait_until_identified(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self.identified.wait(), timeout)

    # -- REST ---------------------------------------------------------------------------------------
    def _message(self, channel_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return {"id": str(next(self._ids)), "channel_id": str(channel_id), "author": BOT_USER,
                "content": body.get("content") or "", "timestamp": "2026-11-28T12:00:00+00:00",
                "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
                "mention_roles": [], "attachments": [], "embeds": body.get("embeds") or [], "pinned": False,
                "type": 0, "flags": body.get("flags", 0) or 0, "components": body.get("components") or [],
                "nonce": body.get("nonce"), "allowed_mentions": body.get("allowed_mentions")}

    def _channel(self, channel_id: int) -> dict[str, Any] | None:
        for guild_id, channels in self.guilds.items():
            if channel_id in channels:
                return {"id": str(channel_id), "type": 0, "guild_id": str(guild_id), "name": f"c{channel_id}",
                        "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None}
        return None

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        raw = await request.read()
        body = json.loads(raw) if raw else {}
        self.requests.append((request.method, path))
        self._changed.set()
        for fault in list(self.faults):
            if fault.method == request.method and fault.path.search(path):
                self.faults.remove(fault)
                return _json(fault.body, fault.status, fault.headers)
        if path == "/users/@me":
            return _json(BOT_USER)
        if path in ("/gateway", "/gateway/bot"):
            return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": {
                "total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}})
        if path in ("/applications/@me", "/oauth2/applications/@me"):
            return _json({"id": str(APP_ID), "name": "digestbot", "icon": None, "description": "",
                          "bot_public": True, "bot_require_code_grant": False, "verify_key": "00", "flags": 0,
                          "owner": MEMBER_USER})
        match = re.fullmatch(r"/applications/\d+(?:/guilds/(\d+))?/commands", path)
        if match:
            scope = match.group(1) or "global"
            if request.method == "PUT":
                self.commands[scope] = [{**c, "id": str(next(self._ids)), "application_id": str(APP_ID),
                                         "version": "1", **({"guild_id": scope} if scope != "global" else {})}
                                        for c in body]
            return _json(self.commands.get(scope, []))
        match = re.fullmatch(r"/channels/(\d+)(/messages)?", path)
        if match:
            channel_id = int(match.group(1))
            channel = self._channel(channel_id)
            if channel is None:
                return _json({"message": "Unknown Channel", "code": 10003}, 404)
            if not match.group(2):
                return _json(channel)
            if channel_id in self.denied:
                return _json({"message": "Missing Permissions", "code": 50013}, 403)
            return _json(self._create_message(channel_id, body))
        match = re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path)
        if match:
            interaction = self.interactions.get(match.group(1))
            if interaction is not None:
                interaction.responses.append({"kind": "callback", **body})
            return _json({"interaction": {"id": match.group(1), "type": body.get("type")}})
        match = re.fullmatch(r"/webhooks/\d+/([^/]+)(/messages/.+)?", path)
        if match:
            for interaction in self.interactions.values():
                if interaction.token == match.group(1):
                    interaction.responses.append({"kind": "followup" if request.method == "POST" else "edit",
                                                  **body})
            if request.method == "DELETE":
                return web.Response(status=204)
            return _json(self._message(0, body))
        self.unhandled.append((request.method, path))
        return _json({"message": "404: Not Found", "code": 0}, 404)

    def _create_message(self, channel_id: int, body: dict[str, Any]) -> dict[str, Any]:
        nonce = body.get("nonce")
        now = self.clock()
        if nonce is not None and body.get("enforce_nonce"):
            seen = self._nonces.get((channel_id, str(nonce)))
            if seen is not None and now - seen[0] <= NONCE_WINDOW:
                return seen[1]
        message = self._message(channel_id, body)
        self.messages.append(message)
        if nonce is not None:
            self._nonces[(channel_id, str(nonce))] = (now, message)
        return message

    # -- gateway ------------------------------------------------------------------------------------
    async def _send(self, ws: web.WebSocketResponse, compressor: Any, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        if compressor is None:
            await ws.send_str(data.decode())
        else:
            await ws.send_bytes(compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        self._seq += 1
        for ws, compressor in list(self._sockets):
            await self._send(ws, compressor, {"op": 0, "t": event, "s": self._seq, "d": data})

    def _guild_payload(self, guild_id: int, channels: list[int]) -> dict[str, Any]:
        everyone = {"id": str(guild_id), "name": "@everyone", "permissions": "2147483647", "position": 0,
                    "color": 0, "hoist": False, "managed": False, "mentionable": False, "flags": 0}
        return {"id": str(guild_id), "name": f"guild {guild_id}", "icon": None, "owner_id": MEMBER_USER["id"],
                "roles": [everyone], "emojis": [], "stickers": [], "features": [], "member_count": 2,
                "large": False, "unavailable": False, "joined_at": "2026-01-01T00:00:00+00:00",
                "channels": [{k: v for k, v in (self._channel(c) or {}).items() if k != "guild_id"}
                             for c in channels],
                "members": [{"user": BOT_USER, "roles": [], "joined_at": "2026-01-01T00:00:00+00:00",
                             "deaf": False, "mute": False, "flags": 0}],
                "threads": [], "voice_states": [], "presences": [], "stage_instances": [],
                "guild_scheduled_events": [], "verification_level": 0, "default_message_notifications": 0,
                "explicit_content_filter": 0, "mfa_level": 0, "premium_tier": 0, "nsfw_level": 0,
                "preferred_locale": "en-US", "system_channel_flags": 0, "afk_timeout": 300}

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        compressor = zlib.compressobj() if request.query.get("compress") == "zlib-stream" else None
        entry = (ws, compressor)
        self._sockets.append(entry)
        await self._send(ws, compressor, {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                op = payload.get("op")
                if op == 1:
                    await self._send(ws, compressor, {"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:
                    self._seq += 1
                    await self._send(ws, compressor, {"op": 0, "t": "READY", "s": self._seq, "d": {
                        "v": 10, "user": BOT_USER, "guilds": [{"id": str(g), "unavailable": True}
                                                              for g in self.guilds],
                        "session_id": "fake-session", "resume_gateway_url": self.gateway_url,
                        "application": {"id": str(APP_ID), "flags": 0}, "private_channels": []}})
                    for guild_id, channels in self.guilds.items():
                        self._seq += 1
                        await self._send(ws, compressor, {"op": 0, "t": "GUILD_CREATE", "s": self._seq,
                                                          "d": self._guild_payload(guild_id, channels)})
                    self.identified.set()
                    self._changed.set()
                elif op == 6:
                    self._seq += 1
                    await self._send(ws, compressor, {"op": 0, "t": "RESUMED", "s": self._seq, "d": {}})
        finally:
            self._sockets.remove(entry)
        return ws

    # -- interactions ----------------------------------------------------------------------------------
    async def push_command(self, name: str, options: dict[str, str], *, guild_id: int, channel_id: int,
                           timeout: float = 10.0, permissions: str = "2147483647") -> list[dict[str, Any]]:
        """Send a slash command as a member; return its callback and follow-ups once answered."""
        interaction = Interaction(id=str(next(self._ids)), token=f"itoken{next(self._ids)}")
        self.interactions[interaction.id] = interaction
        name, *sub = name.split()
        command_id = next((c["id"] for scope in (str(guild_id), "global") for c in self.commands.get(scope, [])
                           if c["name"] == name), "1")
        built: list[dict[str, Any]] = [{"name": k, "type": 3, "value": v} for k, v in options.items()]
        for part in reversed(sub):  # "sources list" → a subcommand option holding the options
            built = [{"name": part, "type": 1, "options": built}]
        await self.dispatch("INTERACTION_CREATE", {
            "id": interaction.id, "application_id": str(APP_ID), "type": 2, "token": interaction.token,
            "version": 1, "guild_id": str(guild_id), "channel_id": str(channel_id),
            "channel": {k: v for k, v in (self._channel(channel_id) or {}).items()},
            "member": {"user": MEMBER_USER, "roles": [], "joined_at": "2026-01-01T00:00:00+00:00",
                       "deaf": False, "mute": False, "flags": 0, "permissions": permissions},
            "app_permissions": "2147483647", "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)}, "context": 0,
            "attachment_size_limit": 10485760,
            "data": {"id": command_id, "name": name, "type": 1, "guild_id": str(guild_id),
                     "options": built}})

        def answered() -> list[dict[str, Any]] | None:
            kinds = [r["kind"] for r in interaction.responses]
            if "followup" in kinds or "edit" in kinds:
                return interaction.responses
            if any(r.get("type") == 4 for r in interaction.responses):
                return interaction.responses
            return None

        result: list[dict[str, Any]] = await self._wait(answered, timeout)
        return result
