"""DigestBot end to end over real HTTP on 127.0.0.1: login, command sync, /search, a page click.

Interactions are fed in as raw INTERACTION_CREATE payloads (no gateway needed); every REST call
discord.py makes (interaction callbacks, follow-ups) goes to a tiny recorder standing in for
Discord's API, so the assertions are on the JSON Discord would receive.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from itertools import count
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest
from aiohttp import web

from bot.discord_adapter.client import DigestBot, point_discord_py_at
from tests.discord_adapter import CHANNEL_ID, GUILD_ID, FakeCatalog, make_config, make_entry

APP_ID = 3_000_000_000_000_001
USER = {"id": "4000000000000000001", "username": "tester", "discriminator": "0", "avatar": None,
        "global_name": "Tester"}
BOT_USER = {"id": str(APP_ID), "username": "digestbot", "discriminator": "0", "avatar": None, "bot": True}
_ids = count(5_000_000_000_000_000)


@dataclass
class Call:
    method: str
    path: str
    query: dict[str, str]
    body: Any


def json_response(data: Any, status: int = 200) -> web.Response:
    # discord.py only decodes JSON when the content type is exactly "application/json"
    return web.Response(body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"})


class RecorderAPI:
    """Just enough of Discord's REST API for login, command sync and interaction responses."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.changed = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/api/v10/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app)
        self.base = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}/api/v10"

    def message(self, body: dict[str, Any], *, flags: int = 0) -> dict[str, Any]:
        return {"id": str(next(_ids)), "channel_id": str(CHANNEL_ID), "author": BOT_USER,
                "content": body.get("content") or "", "timestamp": "2026-01-01T00:00:00+00:00",
                "edited_timestamp": None, "tts": False, "mention_everyone": False, "mentions": [],
                "mention_roles": [], "attachments": [], "embeds": body.get("embeds", []), "pinned": False,
                "type": 0, "flags": body.get("flags", flags), "components": body.get("components", [])}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        path = "/" + request.match_info["tail"]
        self.calls.append(Call(request.method, path, dict(request.query), body))
        self.changed.set()
        if path == "/users/@me":
            return json_response(BOT_USER)
        if path == "/oauth2/applications/@me":
            return json_response({"id": str(APP_ID), "name": "digestbot", "icon": None, "description": "",
                                      "bot_public": True, "bot_require_code_grant": False,
                                      "verify_key": "00", "flags": 0, "owner": USER})
        if path.endswith("/commands") and request.method == "PUT":
            return json_response([])
        if path.endswith("/callback"):
            interaction_id = path.split("/")[2]
            return json_response({"interaction": {"id": interaction_id, "type": body["type"]}})
        if path.startswith("/webhooks/") and request.method in ("POST", "PATCH"):
            return json_response(self.message(body))
        if request.method == "DELETE":
            return web.Response(status=204)
        return json_response({"message": "404: Not Found", "code": 0}, status=404)

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> list[Call]:
        async def poll() -> list[Call]:
            while True:
                found = [c for c in self.calls if predicate(c)]
                if found:
                    return found
                self.changed.clear()
                await self.changed.wait()
        return await asyncio.wait_for(poll(), timeout)


class FakeChannel:
    def __init__(self) -> None:
        self.guild = discord.Object(id=GUILD_ID)


@pytest.fixture
async def api() -> AsyncIterator[RecorderAPI]:
    recorder = RecorderAPI()
    await recorder.start()
    old_base, old_gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    point_discord_py_at(recorder.base, "ws://127.0.0.1:9/gateway")
    try:
        yield recorder
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway
        await recorder.runner.cleanup()


async def logged_in_bot(api: RecorderAPI, catalog: FakeCatalog, *, ephemeral: bool = True) -> DigestBot:
    config = make_config(api_base=api.base, gateway_url="ws://127.0.0.1:9/gateway", guild_ids=[GUILD_ID],
                         ephemeral=ephemeral, per_page=2)
    bot = DigestBot(config, catalog)
    bot.get_channel = {CHANNEL_ID: FakeChannel()}.get  # type: ignore[assignment,method-assign]
    await bot.login("fake-token")  # runs setup_hook: cogs, dynamic items, sync
    return bot


def interaction_payload(kind: int, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": str(next(_ids)), "application_id": str(APP_ID), "type": kind, "token": f"tok{next(_ids)}",
            "version": 1, "guild_id": str(GUILD_ID), "channel_id": str(CHANNEL_ID),
            "channel": {"id": str(CHANNEL_ID), "type": 0, "guild_id": str(GUILD_ID), "name": "news",
                        "position": 0, "permission_overwrites": [], "nsfw": False, "parent_id": None},
            "member": {"user": USER, "roles": [], "joined_at": "2025-01-01T00:00:00+00:00", "deaf": False,
                       "mute": False, "flags": 0, "permissions": "2147483647"},
            "app_permissions": "2147483647", "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)}, "context": 0, "attachment_size_limit": 10485760,
            "data": data, **extra}


def slash(name: str, **options: str) -> dict[str, Any]:
    # guild commands carry the guild id in their data, as Discord sends them
    return interaction_payload(2, {"id": str(next(_ids)), "name": name, "type": 1, "guild_id": str(GUILD_ID),
                                   "options": [{"name": k, "type": 3, "value": v} for k, v in options.items()]})


@pytest.fixture
async def bot(api: RecorderAPI) -> AsyncIterator[DigestBot]:
    entries = [make_entry(n) for n in range(5)] + [make_entry(9, source_id="papers", title="Hidden paper")]
    client = await logged_in_bot(api, FakeCatalog(entries))
    yield client
    await client.close()


async def test_login_syncs_commands_to_configured_guilds_only(api: RecorderAPI, bot: DigestBot) -> None:
    puts = [c for c in api.calls if c.method == "PUT"]
    assert [c.path for c in puts] == [f"/applications/{APP_ID}/commands",
                                      f"/applications/{APP_ID}/guilds/{GUILD_ID}/commands"]
    assert puts[0].body == []  # global list emptied: no command shows twice in the guild
    assert {c["name"] for c in puts[1].body} == {"search", "latest", "topics", "sources", "digest"}


async def test_search_defers_ephemerally_then_follows_up_and_pages(api: RecorderAPI, bot: DigestBot) -> None:
    payload = slash("search", query="transformers")
    bot._connection.parse_interaction_create(payload)
    [followup] = await api.wait_for(lambda c: c.method == "POST" and c.path.startswith(f"/webhooks/{APP_ID}/"))
    [callback] = [c for c in api.calls if c.path.endswith("/callback")]
    assert callback.path == f"/interactions/{payload['id']}/{payload['token']}/callback"
    assert callback.body == {"type": 5, "data": {"flags": 64}}  # deferred "thinking", ephemeral
    assert api.calls.index(callback) < api.calls.index(followup)
    body = followup.body
    assert body["allowed_mentions"] == {"parse": []}
    assert body["flags"] & 64
    [embed] = body["embeds"]
    assert embed["title"] == "Search results"
    assert embed["footer"]["text"] == "Page 1/3 · 5 results"  # the papers entry is another guild's
    assert all("Hidden" not in f["value"] for f in embed["fields"])
    [row] = body["components"]
    previous, following = row["components"]
    assert previous["disabled"] is True and following.get("disabled", False) is False
    assert following["custom_id"] == 'dg:s:2:["transformers"]'

    # The user clicks Next on the message the follow-up created.
    message = api.message(body, flags=64)
    click = interaction_payload(3, {"custom_id": following["custom_id"], "component_type": 2}, message=message)
    bot._connection.parse_interaction_create(click)
    [update] = await api.wait_for(lambda c: c.path == f"/interactions/{click['id']}/{click['token']}/callback")
    assert update.body["type"] == 7  # UPDATE_MESSAGE: edit in place
    data = update.body["data"]
    assert data["allowed_mentions"] == {"parse": []}
    assert data["embeds"][0]["footer"]["text"] == "Page 2/3 · 5 results"
    buttons = data["components"][0]["components"]
    assert [b.get("disabled", False) for b in buttons] == [False, False]
    search_calls = [kw for name, kw in bot.catalog.calls if name == "search"]  # type: ignore[attr-defined]
    assert [kw["page"] for kw in search_calls] == [1, 2]
    assert all(kw["allowed"] == ("lab",) for kw in search_calls)


async def test_query_error_is_a_friendly_ephemeral_message(api: RecorderAPI, bot: DigestBot) -> None:
    payload = slash("search", query="x", since="bad")
    bot._connection.parse_interaction_create(payload)
    [followup] = await api.wait_for(lambda c: c.method == "POST" and c.path.startswith(f"/webhooks/{APP_ID}/"))
    assert followup.body["content"].startswith("since: use a date")
    assert followup.body["flags"] & 64 and followup.body["allowed_mentions"] == {"parse": []}


async def test_missing_query_is_refused_without_deferring(api: RecorderAPI, bot: DigestBot) -> None:
    payload = slash("search")
    bot._connection.parse_interaction_create(payload)
    [callback] = await api.wait_for(lambda c: c.path.endswith("/callback"))
    assert callback.body["type"] == 4 and callback.body["data"]["flags"] == 64
    assert "Type something" in callback.body["data"]["content"]


async def test_unexpected_error_is_generic_and_logged(api: RecorderAPI, bot: DigestBot,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("/secret/path/db.sqlite3 is locked")

    bot.catalog.topics = explode  # type: ignore[method-assign]
    payload = slash("topics")
    bot._connection.parse_interaction_create(payload)
    [followup] = await api.wait_for(lambda c: c.method == "POST" and c.path.startswith(f"/webhooks/{APP_ID}/"))
    assert "Something went wrong" in followup.body["content"] and "secret" not in followup.body["content"]
    assert any("/topics failed" in r.getMessage() and str(GUILD_ID) in r.getMessage() for r in caplog.records)


async def test_public_replies_when_configured(api: RecorderAPI) -> None:
    client = await logged_in_bot(api, FakeCatalog([make_entry(1)]), ephemeral=False)
    try:
        payload = slash("latest")
        client._connection.parse_interaction_create(payload)
        [followup] = await api.wait_for(lambda c: c.method == "POST" and c.path.startswith(f"/webhooks/{APP_ID}/"))
        [callback] = [c for c in api.calls if c.path.endswith("/callback")]
        assert callback.body == {"type": 5, "data": {"flags": 0}} or callback.body == {"type": 5}
        assert not followup.body.get("flags", 0) & 64
        assert followup.body["embeds"][0]["title"] == "Latest entries"
        assert "components" not in followup.body or followup.body["components"] == []
    finally:
        await client.close()


async def test_autocomplete_offers_only_this_guilds_sources(api: RecorderAPI, bot: DigestBot) -> None:
    payload = interaction_payload(4, {"id": str(next(_ids)), "name": "search", "type": 1, "guild_id": str(GUILD_ID),
                                      "options": [{"name": "source", "type": 3, "value": "", "focused": True}]})
    bot._connection.parse_interaction_create(payload)
    [callback] = await api.wait_for(lambda c: c.path.endswith("/callback"))
    assert callback.body == {"type": 8, "data": {"choices": [{"name": "Lab News", "value": "lab"}]}}


async def test_error_after_public_defer_stays_private(api: RecorderAPI) -> None:
    client = await logged_in_bot(api, FakeCatalog([make_entry(1)]), ephemeral=False)
    try:
        payload = slash("search", query="x", since="bad")
        client._connection.parse_interaction_create(payload)
        [followup] = await api.wait_for(lambda c: c.method == "POST" and c.path.startswith(f"/webhooks/{APP_ID}/"))
        deletes = [c for c in api.calls if c.method == "DELETE"]
        assert [c.path for c in deletes] == [f"/webhooks/{APP_ID}/{payload['token']}/messages/@original"]
        assert api.calls.index(deletes[0]) < api.calls.index(followup)
        assert followup.body["flags"] & 64 and followup.body["content"].startswith("since:")
    finally:
        await client.close()
