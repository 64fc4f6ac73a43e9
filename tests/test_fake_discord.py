"""The fake Discord (tests/fake_discord) driven by real discord.py: login, gateway, messages, faults, interactions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import zlib
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.fake_discord import FakeDiscord, Reply
from tests.fake_discord.gateway import ZLIB_SUFFIX

GUILD = 1_310_000_000_000_000_001
CHANNEL = 1_310_000_000_000_000_011
DENIED = 1_310_000_000_000_000_012
GONE = 1_310_000_000_000_000_013


class ManualClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class DigestView(discord.ui.View):
    """A persistent view: timeout=None and a fixed custom_id, so it survives restarts."""

    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.clicks: list[int] = []

    @discord.ui.button(label="More", custom_id="digest:more", style=discord.ButtonStyle.primary)
    async def more(self, interaction: discord.Interaction, button: discord.ui.Button[DigestView]) -> None:
        self.clicks.append(interaction.user.id)
        await interaction.response.edit_message(content="expanded", view=self)


class DemoBot(commands.Bot):
    def __init__(self) -> None:
        super().__init__(command_prefix=commands.when_mentioned, intents=discord.Intents.default(),
                         guild_ready_timeout=0.05, allowed_mentions=discord.AllowedMentions.none())
        self.view = DigestView()
        tree = self.tree

        @tree.command(name="ping", description="Answer privately")
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong", ephemeral=True)

        @tree.command(name="search", description="Search entries")
        @app_commands.describe(query="words to look for", limit="how many")
        async def search(interaction: discord.Interaction, query: str, limit: int = 3) -> None:
            await interaction.response.defer(ephemeral=True, thinking=True)
            first = await interaction.followup.send(f"searching {query!r} (limit {limit})", wait=True)
            extra = await interaction.followup.send("page 2", ephemeral=True, wait=True)
            await extra.edit(content="page 2 (edited)")
            await interaction.edit_original_response(content=f"found 2 for {first.id}")

        @search.autocomplete("query")
        async def search_complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
            return [app_commands.Choice(name=f"{current} news", value=f"{current} news")]

        feeds = app_commands.Group(name="feeds", description="Manage feeds")

        @feeds.command(name="add", description="Add a feed")
        async def feeds_add(interaction: discord.Interaction, url: str, muted: bool = False) -> None:
            await interaction.response.send_message(f"added {url} muted={muted}")

        tree.add_command(feeds)

    async def setup_hook(self) -> None:
        self.add_view(self.view)
        guild = discord.Object(GUILD)
        self.tree.copy_global_to(guild=guild)
        await self.tree.sync(guild=guild)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fake(clock: ManualClock) -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(clock=clock) as fake:
        fake.add_guild(GUILD, "digest test", channels=[{"id": CHANNEL, "name": "feeds"}, DENIED, GONE])
        fake.deny_channel(DENIED)
        fake.delete_channel(GONE)
        fake.configure_discord_py()
        yield fake


@contextlib.asynccontextmanager
async def running(client: discord.Client, fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    task = asyncio.create_task(client.start("fake.bot.token"))
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=5, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises the start() failure
        assert ready in done, "bot did not become ready"
        yield client
    finally:
        ready.cancel()
        await client.close()
        await asyncio.wait_for(task, 5)


@pytest.fixture
async def bot(fake: FakeDiscord) -> AsyncIterator[DemoBot]:
    async with running(DemoBot(), fake) as client:
        assert isinstance(client, DemoBot)
        yield client


async def test_login_ready_and_seeded_guild(fake: FakeDiscord, bot: DemoBot) -> None:
    guild = bot.get_guild(GUILD)
    assert guild is not None and guild.name == "digest test"
    channel = guild.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel) and channel.name == "feeds"
    assert channel.permissions_for(guild.me).send_messages
    denied = guild.get_channel(DENIED)
    assert isinstance(denied, discord.TextChannel) and not denied.permissions_for(guild.me).send_messages
    assert guild.get_channel(GONE) is None
    assert bot.user is not None and bot.user.id == fake.application_id and bot.application_id == fake.application_id

    assert fake.gateway_connections[0].startswith("/gateway?v=10&encoding=json&compress=zlib-stream")
    (identify,) = fake.identify_payloads
    assert identify["intents"] == discord.Intents.default().value
    assert not identify["intents"] & ((1 << 1) | (1 << 8) | (1 << 15))  # no privileged intents
    assert not [p for p in fake.gateway_received if p["op"] == 8]  # no member chunking requested
    assert [p["op"] for p in fake.gateway_received][:2] in ([1, 2], [2, 1])  # first heartbeat + IDENTIFY
    assert fake.unhandled == []


async def test_message_embed_nonce_and_dedupe(fake: FakeDiscord, bot: DemoBot, clock: ManualClock) -> None:
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    embed = discord.Embed(title="New entry", description="body", url="https://example.org/a")
    first = await channel.send("hello", embed=embed, allowed_mentions=discord.AllowedMentions.none(), nonce="e-1")
    again = await channel.send("hello", embed=embed, allowed_mentions=discord.AllowedMentions.none(), nonce="e-1")
    assert again.id == first.id and first.embeds[0].title == "New entry"

    (record,) = fake.messages_in(CHANNEL)
    assert record["id"] == str(first.id) and record["content"] == "hello"
    assert record["nonce"] == "e-1" and record["enforce_nonce"] is True  # discord.py 2.7 sets it with nonce=
    assert record["allowed_mentions"] == {"parse": []}
    assert record["embeds"][0]["title"] == "New entry"
    assert fake.nonce_hits == [{"channel_id": str(CHANNEL), "nonce": "e-1", "message_id": str(first.id)}]

    clock.now += fake.nonce_window + 1  # outside the window the nonce no longer deduplicates
    later = await channel.send("hello", nonce="e-1")
    assert later.id != first.id and len(fake.messages_in(CHANNEL)) == 2

    with pytest.raises(discord.Forbidden) as forbidden:
        await bot.http.send_message(DENIED, params=discord.http.handle_message_parameters(content="x"))
    assert forbidden.value.code == 50013
    with pytest.raises(discord.NotFound) as missing:
        await bot.http.send_message(GONE, params=discord.http.handle_message_parameters(content="x"))
    assert missing.value.code == 10003
    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert too_long.value.code == 50035


async def test_rate_limit_is_waited_out(fake: FakeDiscord, bot: DemoBot) -> None:
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    fake.rate_limit_next(rf"^/channels/{CHANNEL}/messages$", retry_after=0.3)
    started = time.monotonic()
    message = await channel.send("after the 429")
    assert time.monotonic() - started >= 0.3
    posts = [r for r in fake.requests if r.method == "POST" and r.path == f"/channels/{CHANNEL}/messages"]
    assert [r.status for r in posts] == [429, 200] and posts[0].injected
    assert [m["id"] for m in fake.messages_in(CHANNEL)] == [str(message.id)]


async def test_outages_and_lost_responses(fake: FakeDiscord, bot: DemoBot) -> None:
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    fake.outage(503, count=1, path_regex=r"/messages$")
    with pytest.raises(discord.DiscordServerError):  # discord.py does not retry 503
        await channel.send("first try")
    assert fake.messages_in(CHANNEL) == []

    # the request takes effect but the answer is lost: a retry with the same nonce gets the same message back
    fake.fail_next("POST", r"/messages$", [Reply(503, after_handling=True)])
    with pytest.raises(discord.DiscordServerError):
        await channel.send("exactly once", nonce="n-42")
    retried = await channel.send("exactly once", nonce="n-42")
    assert [m["id"] for m in fake.messages_in(CHANNEL)] == [str(retried.id)]

    fake.fail_next("POST", r"/messages$", [Reply(drop=True)])
    with pytest.raises(aiohttp.ClientError):
        await channel.send("dropped")


async def test_slash_commands_synced_and_answered(fake: FakeDiscord, bot: DemoBot) -> None:
    synced = {c["name"]: c for c in fake.guild_commands(GUILD)}
    assert set(synced) == {"ping", "search", "feeds"}
    assert synced["search"]["options"][0]["autocomplete"] is True

    pushed = await fake.push_command("ping")
    (callback,) = await fake.wait_for_interaction_response(pushed)
    assert callback["kind"] == "callback" and callback["type"] == 4
    assert callback["data"]["content"] == "pong" and callback["data"]["flags"] == 64

    pushed = await fake.push_command("feeds add", {"url": "https://example.org/feed", "muted": True})
    (callback,) = await fake.wait_for_interaction_response(pushed)
    assert callback["data"]["content"] == "added https://example.org/feed muted=True"

    pushed = await fake.push_autocomplete("search", {"query": "llm"}, focused="query")
    (callback,) = await fake.wait_for_interaction_response(pushed)
    assert callback["type"] == 8 and callback["data"]["choices"] == [{"name": "llm news", "value": "llm news"}]


async def test_deferred_response_followups_and_edits(fake: FakeDiscord, bot: DemoBot) -> None:
    pushed = await fake.push_command("search", {"query": "幻觉", "limit": 2})
    responses = await fake.wait_for_interaction_response(pushed, count=5)
    assert [r["kind"] for r in responses] == ["callback", "followup", "followup", "edit", "edit"]
    callback, first, second, edit_second, edit_original = responses
    assert callback["type"] == 5 and callback["data"] == {"flags": 64}
    # Discord: the first follow-up after a deferred response edits the loading message instead of creating one
    assert first["edited_original"] and first["message_id"] == callback["message_id"]
    assert second["message_id"] != first["message_id"] and second["data"]["flags"] == 64
    assert edit_second["message_id"] == second["message_id"]
    assert edit_original["message_id"] == callback["message_id"]
    assert pushed.original is not None and pushed.original["content"] == f"found 2 for {callback['message_id']}"
    assert pushed.followups[int(second["message_id"])]["content"] == "page 2 (edited)"


async def test_button_click_reaches_persistent_view(fake: FakeDiscord, bot: DemoBot) -> None:
    channel = bot.get_channel(CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("digest", view=bot.view)
    record = fake.messages_in(CHANNEL)[0]
    assert record["components"][0]["components"][0]["custom_id"] == "digest:more"

    pushed = await fake.push_component("digest:more", message_id=sent.id)
    (callback,) = await fake.wait_for_interaction_response(pushed)
    assert callback["type"] == 7 and callback["data"]["content"] == "expanded"
    assert record["content"] == "expanded" and bot.view.clicks == [int(fake.default_user["id"])]

    pushed = await fake.push_component("digest:more")  # a message the bot never sent in this process
    (callback,) = await fake.wait_for_interaction_response(pushed)
    assert callback["type"] == 7 and len(bot.view.clicks) == 2


async def test_interaction_rules(fake: FakeDiscord, bot: DemoBot, clock: ManualClock) -> None:
    pushed = await fake.push_command("ping")
    await fake.wait_for_interaction_response(pushed)
    late = await fake.push_command("ping", guild_id=GUILD, channel_id=CHANNEL)
    clock.now += 10  # acknowledgement deadline passed: Unknown interaction
    await fake.wait_for_request("POST", rf"/interactions/{late.id}/")
    assert late.responses == []
    status = [r.status for r in fake.requests if r.path.startswith(f"/interactions/{late.id}/")]
    assert status == [404]


async def test_gateway_resume_replays_missed_dispatches(fake: FakeDiscord, bot: DemoBot) -> None:
    await fake.disconnect_gateway(4000)
    pushed = await fake.push_command("ping")  # sent while disconnected: replayed on RESUME
    (callback,) = await fake.wait_for_interaction_response(pushed)
    assert callback["data"]["content"] == "pong"
    (resume,) = await fake.wait_for_gateway_op(6)
    assert resume["d"]["session_id"] == bot.ws.session_id
    assert fake.gateway_connections[-1].startswith("/gateway-resume?")
    assert len(fake.identify_payloads) == 1


async def test_privileged_intents_refused(fake: FakeDiscord) -> None:
    fake.privileged_intents = False
    client = discord.Client(intents=discord.Intents.all())
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(client.start("fake.bot.token"), 5)
    await client.close()


async def test_unknown_route_is_recorded(fake: FakeDiscord, bot: DemoBot) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/users/@me/guilds"))
    assert fake.unhandled == [("GET", "/users/@me/guilds")]


@pytest.mark.parametrize("compress", [True, False])
async def test_gateway_wire_format(fake: FakeDiscord, compress: bool) -> None:
    query = "v=10&encoding=json" + ("&compress=zlib-stream" if compress else "")
    inflator = zlib.decompressobj()

    async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict:
        msg = await ws.receive(timeout=2)
        if compress:
            assert msg.type is aiohttp.WSMsgType.BINARY and msg.data.endswith(ZLIB_SUFFIX)
            return json.loads(inflator.decompress(msg.data))
        assert msg.type is aiohttp.WSMsgType.TEXT
        return json.loads(msg.data)

    async with aiohttp.ClientSession() as session, session.ws_connect(f"{fake.gateway_url}?{query}") as ws:
        hello = await receive(ws)
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
        await ws.send_json({"op": 1, "d": None})
        assert (await receive(ws))["op"] == 11
        await ws.send_json({"op": 2, "d": {"token": "t", "intents": 513, "properties": {}}})
        ready = await receive(ws)
        assert ready["t"] == "READY" and ready["s"] == 1
        assert ready["d"]["guilds"] == [{"id": str(GUILD), "unavailable": True}]
        assert ready["d"]["resume_gateway_url"] == fake.resume_gateway_url
        guild = await receive(ws)
        assert guild["t"] == "GUILD_CREATE" and guild["s"] == 2
        assert {c["id"] for c in guild["d"]["channels"]} == {str(CHANNEL), str(DENIED)}
        await ws.send_json({"op": 6, "d": {"token": "t", "session_id": "nope", "seq": 2}})
        assert (await receive(ws)) == {"op": 9, "d": False, "s": None, "t": None}


async def test_global_rate_limit_and_execute_webhook(fake: FakeDiscord, bot: DemoBot) -> None:
    url = fake.add_webhook(1_310_000_000_000_000_900, "hook-token", CHANNEL, name="feeds-hook")
    assert url.endswith("/webhooks/1310000000000000900/hook-token")
    fake.rate_limit_next(r"^/webhooks/", retry_after=0.1, global_=True)
    async with aiohttp.ClientSession() as session:
        hook = discord.Webhook.partial(1_310_000_000_000_000_900, "hook-token", session=session)
        sent = await hook.send("via webhook", embed=discord.Embed(title="t"), wait=True)
        await hook.send("fire and forget")
    first, second = fake.messages_in(CHANNEL)
    assert first["id"] == str(sent.id) and first["webhook_id"] == "1310000000000000900"
    assert first["author"]["username"] == "feeds-hook" and second["content"] == "fire and forget"
    statuses = [r.status for r in fake.requests if r.path.startswith("/webhooks/")]
    assert statuses == [429, 200, 204]
