"""Structural checks on the command tree, on the payload Discord receives at sync time."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest
from discord import app_commands

from bot.discord_adapter.client import DigestBot, intents
from bot.discord_adapter.commands import add_commands
from tests.discord_adapter import FakeCatalog, make_config

NAME = re.compile(r"^[-_\w]{1,32}$")
EXPECTED = {"search", "latest", "topics", "sources", "digest"}


@pytest.fixture
async def bot() -> AsyncIterator[DigestBot]:
    client = DigestBot(make_config(), FakeCatalog([]))
    await add_commands(client)
    yield client
    await client.close()


@pytest.fixture
def payloads(bot: DigestBot) -> list[dict[str, Any]]:
    return [command.to_dict(bot.tree) for command in bot.tree.get_commands()]


def walk_options(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for option in options:
        out.append(option)
        out += walk_options(option.get("options", []))
    return out


def test_expected_commands_without_collisions(payloads: list[dict[str, Any]]) -> None:
    names = [p["name"] for p in payloads]
    assert sorted(names) == sorted(EXPECTED)
    assert len(names) == len(set(names))


def test_names_and_descriptions_follow_discord_rules(payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        for item in [payload, *walk_options(payload.get("options", []))]:
            assert NAME.match(item["name"]) and item["name"] == item["name"].lower(), item["name"]
            assert 1 <= len(item["description"]) <= 100, item
            assert item["description"] != "…", f"{item['name']} has no description"
            assert len(item.get("options", [])) <= 25
            assert len(item.get("choices", [])) <= 25
            option_names = [o["name"] for o in item.get("options", [])]
            assert len(option_names) == len(set(option_names))
            if "options" in item:  # required options must come first
                required = [o.get("required", False) for o in item["options"]]
                assert required == sorted(required, reverse=True)


def test_payload_size_under_discord_total(payloads: list[dict[str, Any]]) -> None:
    for payload in payloads:
        size = len(payload["name"]) + len(payload["description"]) + sum(
            len(o["name"]) + len(o["description"]) + sum(len(c["name"]) + len(str(c["value"]))
                                                         for c in o.get("choices", []))
            for o in walk_options(payload.get("options", [])))
        assert size <= 4000, payload["name"]


def test_every_command_is_guild_only(bot: DigestBot, payloads: list[dict[str, Any]]) -> None:
    for command in bot.tree.get_commands():
        assert isinstance(command, app_commands.Command | app_commands.Group)
        assert command.guild_only, command.name
    for payload in payloads:
        assert payload.get("contexts") == [0] or payload.get("dm_permission") is False, payload


def test_management_commands_need_manage_server_by_default(payloads: list[dict[str, Any]]) -> None:
    manage_guild = str(1 << 5)
    by_name = {p["name"]: p for p in payloads}
    for name in ("sources", "digest"):
        assert str(by_name[name]["default_member_permissions"]) == manage_guild, name
    for name in ("search", "latest", "topics"):
        assert by_name[name].get("default_member_permissions") is None, name


def test_search_options(bot: DigestBot) -> None:
    search = bot.tree.get_command("search")
    assert isinstance(search, app_commands.Command)
    params = {p.name: p for p in search.parameters}
    assert list(params) == ["query", "topic", "source", "since", "until"]
    assert not any(p.required for p in params.values())
    assert params["query"].max_value == 200
    options = {o["name"]: o for o in search.to_dict(bot.tree)["options"]}
    assert options["query"]["max_length"] == 200 and options["since"]["max_length"] == 32
    assert params["topic"].autocomplete and params["source"].autocomplete
    assert not params["query"].autocomplete
    latest = bot.tree.get_command("latest")
    assert isinstance(latest, app_commands.Command)
    assert [p.name for p in latest.parameters] == ["topic", "source"]
    assert all(p.autocomplete for p in latest.parameters)


def test_client_settings(bot: DigestBot) -> None:
    wanted = intents()
    assert wanted.guilds and not wanted.message_content and not wanted.members and not wanted.presences
    assert bot.intents.value == wanted.value
    mentions = bot.allowed_mentions
    assert mentions is not None and mentions.to_dict() == {"parse": []}
    assert type(bot.tree).__name__ == "DigestCommandTree"
    assert bot.connected is False


def test_allowed_sources_follow_the_gateway_cache(bot: DigestBot, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.discord_adapter import CHANNEL_ID, GUILD_ID, OTHER_CHANNEL_ID, OTHER_GUILD_ID

    class FakeChannel:
        def __init__(self, guild_id: int) -> None:
            self.guild = discord.Object(id=guild_id)

    channels = {CHANNEL_ID: FakeChannel(GUILD_ID), OTHER_CHANNEL_ID: FakeChannel(OTHER_GUILD_ID)}
    monkeypatch.setattr(bot, "get_channel", channels.get)
    assert bot.allowed_sources_for_guild(GUILD_ID) == ("lab",)
    assert bot.allowed_sources_for_guild(OTHER_GUILD_ID) == ("papers",)
    assert bot.allowed_sources_for_guild(None) == ()
    assert bot.allowed_sources_for_guild(12345) == ()


def test_point_discord_py_at_sets_rest_base_and_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    import discord.gateway
    import discord.http

    from bot.discord_adapter.client import point_discord_py_at
    from bot.errors import ConfigError

    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY",
                        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    point_discord_py_at("http://127.0.0.1:8000/api/v10/", "ws://127.0.0.1:8001")
    assert discord.http.Route("GET", "/users/@me").url == "http://127.0.0.1:8000/api/v10/users/@me"
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    assert str(gateway.with_query(v=10, encoding="json")) == "ws://127.0.0.1:8001/?v=10&encoding=json"
    point_discord_py_at("http://127.0.0.1:8000/api/v10", "ws://127.0.0.1:8001/gw")
    assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:8001/gw"
    with pytest.raises(ConfigError, match="query string"):
        point_discord_py_at("http://127.0.0.1:8000/api/v10", "ws://127.0.0.1:8001/?token=x")


async def test_resume_is_pinned_to_a_custom_gateway() -> None:
    import yarl

    custom = DigestBot(make_config(gateway_url="ws://127.0.0.1:8001/gw"), FakeCatalog([]))
    default = DigestBot(make_config(), FakeCatalog([]))
    try:
        for client in (custom, default):
            ws = type("WS", (), {"gateway": yarl.URL("wss://gateway-us-east1-b.discord.gg"), "open": False})()
            client.ws = ws  # type: ignore[assignment]
            await client.on_connect()
        assert custom.ws.gateway == yarl.URL("ws://127.0.0.1:8001/gw")
        assert default.ws.gateway == yarl.URL("wss://gateway-us-east1-b.discord.gg")
    finally:
        for client in (custom, default):
            client.ws = None  # type: ignore[assignment]
            await client.close()
