from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest

from bot.deliver import Deliverer
from bot.discord_adapter.delivery import DiscordDeliverer, map_http_error
from bot.errors import DeliveryError
from bot.format import EmbedSpec, MessageSpec

SPEC = EmbedSpec(title="T", url="https://example.org", description="@everyone d", author="A",
                 timestamp=datetime(2026, 1, 1, tzinfo=UTC), footer="F", thumbnail=None, color=None)
MESSAGE = MessageSpec(content="📡 header", embeds=(SPEC, SPEC))


def http_error(cls: type[discord.HTTPException], status: int, code: int = 0, message: str = "boom",
               headers: dict[str, str] | None = None) -> discord.HTTPException:
    response = SimpleNamespace(status=status, reason="Reason", headers=headers or {})
    return cls(response, {"code": code, "message": message})  # type: ignore[arg-type]


class FakeChannel(discord.abc.Messageable):
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.sent: list[dict[str, Any]] = []

    async def _get_channel(self) -> Any:  # pragma: no cover - not used, send is overridden
        return self

    async def send(self, **kwargs: Any) -> Any:  # type: ignore[override]
        self.sent.append(kwargs)
        if self.error is not None:
            raise self.error
        return SimpleNamespace(id=123456789)


class FakeClient:
    def __init__(self, channel: Any = None, *, fetch_error: BaseException | None = None, ready: bool = True) -> None:
        self.channel = channel
        self.fetch_error = fetch_error
        self.ready = ready
        self.fetched: list[int] = []
        self.cached = True
        self.closed = False

    def is_closed(self) -> bool:
        return self.closed

    async def wait_until_ready(self) -> None:
        if not self.ready:
            await asyncio.sleep(10)

    def get_channel(self, channel_id: int) -> Any:
        return self.channel if self.cached else None

    async def fetch_channel(self, channel_id: int) -> Any:
        self.fetched.append(channel_id)
        if self.fetch_error is not None:
            raise self.fetch_error
        return self.channel


def deliverer(client: FakeClient) -> DiscordDeliverer:
    return DiscordDeliverer(client, ready_timeout=0.05)  # type: ignore[arg-type]


def test_satisfies_the_deliverer_protocol() -> None:
    instance: Deliverer = deliverer(FakeClient())
    assert instance is not None


async def test_sends_embeds_with_nonce_and_no_mentions() -> None:
    channel = FakeChannel()
    message_id = await deliverer(FakeClient(channel)).send(42, MESSAGE, nonce="abc")
    assert message_id == "123456789"
    [kwargs] = channel.sent
    assert kwargs["nonce"] == "abc"
    assert kwargs["content"] == "📡 header"
    assert kwargs["allowed_mentions"].to_dict() == {"parse": []}
    assert [e.title for e in kwargs["embeds"]] == ["T", "T"]
    assert "@everyone" not in kwargs["embeds"][0].description


async def test_fetches_uncached_channels() -> None:
    client = FakeClient(FakeChannel())
    client.cached = False
    assert await deliverer(client).send(42, MESSAGE, nonce="n") == "123456789"
    assert client.fetched == [42]


@pytest.mark.parametrize(("error", "permanent", "words"), [
    (http_error(discord.NotFound, 404, 10003, "Unknown Channel"), True, "no longer exists"),
    (http_error(discord.Forbidden, 403, 50001, "Missing Access"), True, "cannot see"),
    (http_error(discord.Forbidden, 403, 50013, "Missing Permissions"), True, "lacks permission"),
    (http_error(discord.HTTPException, 400, 50035, "Invalid Form Body: embeds.0.url"), True, "Invalid Form Body"),
    (http_error(discord.DiscordServerError, 502, 0, "Bad Gateway"), False, "unavailable"),
    (http_error(discord.HTTPException, 401, 0, "401: Unauthorized"), False, "token"),
])
async def test_http_errors_map_to_permanent_or_transient(error: discord.HTTPException, permanent: bool,
                                                         words: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliverer(FakeClient(FakeChannel(error))).send(42, MESSAGE, nonce="n")
    assert caught.value.permanent is permanent
    assert words in str(caught.value)
    assert str(caught.value).startswith("channel 42:")


async def test_rate_limit_carries_retry_after() -> None:
    error = http_error(discord.HTTPException, 429, 0, "You are being rate limited.", {"Retry-After": "37.5"})
    with pytest.raises(DeliveryError) as caught:
        await deliverer(FakeClient(FakeChannel(error))).send(42, MESSAGE, nonce="n")
    assert not caught.value.permanent and caught.value.retry_after == 37.5
    with pytest.raises(DeliveryError) as caught:
        await deliverer(FakeClient(FakeChannel(discord.RateLimited(12.0)))).send(42, MESSAGE, nonce="n")
    assert not caught.value.permanent and caught.value.retry_after == 12.0


@pytest.mark.parametrize("error", [aiohttp.ClientConnectionError("reset"), TimeoutError(), ConnectionResetError()])
async def test_network_errors_are_transient(error: BaseException) -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliverer(FakeClient(FakeChannel(error))).send(42, MESSAGE, nonce="n")
    assert not caught.value.permanent and caught.value.retry_after is None


async def test_deleted_channel_found_while_fetching_is_permanent() -> None:
    client = FakeClient(fetch_error=http_error(discord.NotFound, 404, 10003, "Unknown Channel"))
    client.cached = False
    with pytest.raises(DeliveryError) as caught:
        await deliverer(client).send(42, MESSAGE, nonce="n")
    assert caught.value.permanent and "channel 42" in str(caught.value)


async def test_non_text_channel_is_permanent() -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliverer(FakeClient(SimpleNamespace(type=discord.ChannelType.category))).send(42, MESSAGE, nonce="n")
    assert caught.value.permanent and "category" in str(caught.value)


async def test_not_ready_is_transient() -> None:
    with pytest.raises(DeliveryError) as caught:
        await deliverer(FakeClient(FakeChannel(), ready=False)).send(42, MESSAGE, nonce="n")
    assert not caught.value.permanent and "not connected" in str(caught.value)


async def test_closed_client_is_transient() -> None:
    client = FakeClient(FakeChannel())
    client.closed = True
    with pytest.raises(DeliveryError) as caught:
        await deliverer(client).send(42, MESSAGE, nonce="n")
    assert not caught.value.permanent and "closed" in str(caught.value)


def test_unknown_4xx_is_permanent_and_names_discord_text() -> None:
    error = map_http_error("channel 1", http_error(discord.HTTPException, 413, 40005, "Request entity too large"))
    assert error.permanent and "Request entity too large" in str(error) and "40005" in str(error)
