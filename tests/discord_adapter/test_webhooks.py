"""WebhookSender against the fake Discord on 127.0.0.1, plus URL parsing and redaction."""

from __future__ import annotations

import socket
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import aiohttp
import discord.http
import pytest

from bot.discord_adapter.webhooks import (
    WebhookSender,
    parse_webhook_url,
    point_webhooks_at,
    redact_webhook_url,
    webhook_target,
)
from bot.errors import DeliveryError
from bot.format import EmbedSpec, MessageSpec
from tests.fake_discord import FakeDiscord, Reply

GUILD = 1_320_000_000_000_000_001
CHANNEL = 1_320_000_000_000_000_011
HOOK = 1_320_000_000_000_000_101
TOKEN = "sEcReT-t0ken_ABCdef0123456789-xyz"
ROLE = 1_320_000_000_000_000_201

SPEC = EmbedSpec(title="Release 1.0", url="https://example.org/r/1", description="What changed", author="Example",
                 timestamp=datetime(2026, 1, 1, tzinfo=UTC), footer="example.org", thumbnail=None, color=0x00FF00)
MESSAGE = MessageSpec(content="📡 news", embeds=(SPEC, SPEC), username="Example Feed",
                      avatar_url="https://example.org/avatar.png")


def assert_secret_kept(err: BaseException) -> None:
    texts = [str(err), repr(err), getattr(err, "target", "")]
    cause = err.__cause__ or err.__context__
    if cause is not None and not err.__suppress_context__:
        texts += [str(cause), repr(cause)]
    for text in texts:
        assert TOKEN not in text, text


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _restore_route_base() -> Iterator[None]:
    before = discord.http.Route.BASE
    yield
    discord.http.Route.BASE = before


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        server.add_guild(GUILD, "guild", channels=[CHANNEL])
        yield server


@pytest.fixture
async def sender(fake: FakeDiscord) -> AsyncIterator[WebhookSender]:
    async with WebhookSender(api_base=fake.api_base, timeout=5.0) as instance:
        yield instance


@pytest.fixture
def url(fake: FakeDiscord) -> str:
    return fake.add_webhook(HOOK, TOKEN, CHANNEL, name="hook")


def webhook_requests(fake: FakeDiscord) -> list[str]:
    return [r.path for r in fake.requests if r.path.startswith("/webhooks/")]


# -- parsing and redaction ----------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    f"https://discord.com/api/webhooks/{HOOK}/{TOKEN}",
    f"https://discord.com/api/v10/webhooks/{HOOK}/{TOKEN}",
    f"https://discordapp.com/api/webhooks/{HOOK}/{TOKEN}",
    f"https://ptb.discord.com/api/webhooks/{HOOK}/{TOKEN}",
    f"https://canary.discord.com/api/v9/webhooks/{HOOK}/{TOKEN}/",
    f"  https://DISCORD.com/api/webhooks/{HOOK}/{TOKEN}\n",
    f"http://127.0.0.1:8080/api/v10/webhooks/{HOOK}/{TOKEN}",
    f"https://proxy.example/discord/webhooks/{HOOK}/{TOKEN}",
    f"https://proxy.example/webhooks/{HOOK}/{TOKEN}",
])
def test_parse_accepts_discord_and_proxy_urls(raw: str) -> None:
    assert parse_webhook_url(raw) == (HOOK, TOKEN)


@pytest.mark.parametrize(("raw", "problem"), [
    (f"https://discord.com/webhooks/{HOOK}/{TOKEN}", "/api/webhooks"),
    (f"https://discord.com/api/channels/{HOOK}/{TOKEN}", "/webhooks/<id>/<token>"),
    (f"https://discord.com/api/webhooks/{HOOK}/{TOKEN}/extra", "/webhooks/<id>/<token>"),
    (f"https://discord.com/api/webhooks/{HOOK}/{TOKEN}?thread_id=5", "query"),
    (f"https://discord.com/api/webhooks/{HOOK}/{TOKEN}#x", "query string or fragment"),
    (f"https://discord.com/api/webhooks/abc/{TOKEN}", "id must be a number"),
    (f"https://discord.com/api/webhooks/{'9' * 25}/{TOKEN}", "id must be a number"),
    (f"https://discord.com/api/webhooks/{HOOK}/", "token"),
    (f"https://discord.com/api/webhooks/{HOOK}/{TOKEN}%21", "token"),
    (f"ftp://discord.com/api/webhooks/{HOOK}/{TOKEN}", "http(s)"),
    (f"https://user:{TOKEN}@discord.com/api/webhooks/{HOOK}/{TOKEN}", "user name"),
    (f"discord.com/api/webhooks/{HOOK}/{TOKEN}", "http(s)"),
    (TOKEN, "http(s)"),
    ("", "http(s)"),
    (f"https://[::1/api/webhooks/{HOOK}/{TOKEN}", "parsed"),
])
def test_parse_rejects_with_a_message_that_never_shows_the_token(raw: str, problem: str) -> None:
    with pytest.raises(ValueError, match="not a Discord webhook URL") as info:
        parse_webhook_url(raw)
    assert problem in str(info.value)
    assert TOKEN not in str(info.value)
    assert "discord.com/api/webhooks/<id>/<token>" in str(info.value)  # says what is expected


@pytest.mark.parametrize(("raw", "shown"), [
    (f"https://discord.com/api/webhooks/{HOOK}/{TOKEN}", f"https://discord.com/api/webhooks/{HOOK}/***"),
    (f"https://discord.com/api/v10/webhooks/{HOOK}/{TOKEN}/", f"https://discord.com/api/v10/webhooks/{HOOK}/***"),
    (f"http://127.0.0.1:8080/api/v10/webhooks/{HOOK}/{TOKEN}",
     f"http://127.0.0.1:8080/api/v10/webhooks/{HOOK}/***"),
    (f"https://discord.com/api/webhooks/{HOOK}/{TOKEN}?wait=true#f",
     f"https://discord.com/api/webhooks/{HOOK}/***?***#***"),
    (f"https://u:{TOKEN}@proxy.example/webhooks/{HOOK}/{TOKEN}", f"https://***@proxy.example/webhooks/{HOOK}/***"),
    (f"https://discord.com/api/webhooks/{TOKEN}", "https://discord.com/api/webhooks/***"),
    (f"https://discord.com/api/webhooks/{HOOK}", f"https://discord.com/api/webhooks/{HOOK}"),
    (f"https://example.org/{TOKEN}", "https://example.org/***"),
    ("https://example.org/", "https://example.org/"),
    (TOKEN, "***"),
    ("", "***"),
    (f"https://[::1/{TOKEN}", "***"),
])
def test_redact(raw: str, shown: str) -> None:
    assert redact_webhook_url(raw) == shown
    assert TOKEN not in redact_webhook_url(raw)


def test_target_names_the_id_only() -> None:
    assert webhook_target(HOOK) == f"webhook …/webhooks/{HOOK}/***"


def test_point_webhooks_at_moves_the_shared_route_base() -> None:
    import discord.webhook.async_ as webhook_module

    point_webhooks_at("http://127.0.0.1:9/api/v10/")
    assert discord.http.Route.BASE == "http://127.0.0.1:9/api/v10"
    route = webhook_module.Route("POST", "/webhooks/{webhook_id}/{webhook_token}", webhook_id=1, webhook_token="t")
    assert route.url == "http://127.0.0.1:9/api/v10/webhooks/1/t"
    with pytest.raises(ValueError, match="http"):
        point_webhooks_at("discord.com/api")


# -- delivery through the fake ------------------------------------------------------------------
async def test_message_with_embeds_username_and_avatar_arrives(fake: FakeDiscord, sender: WebhookSender,
                                                             url: str) -> None:
    message_id = await sender.send(url, MESSAGE)

    [record] = fake.messages
    assert message_id == record["id"]
    assert record["channel_id"] == str(CHANNEL)
    assert record["webhook_id"] == str(HOOK)
    assert record["source"] == "webhook"
    assert record["author"]["username"] == "Example Feed"
    assert record["content"] == "📡 news"
    assert [e["title"] for e in record["embeds"]] == ["Release 1.0", "Release 1.0"]
    assert record["embeds"][0]["url"] == "https://example.org/r/1"
    assert record["payload"]["avatar_url"] == "https://example.org/avatar.png"
    assert record["allowed_mentions"]["parse"] == []
    assert not record["allowed_mentions"].get("roles")
    [request] = [r for r in fake.requests if r.path.startswith("/webhooks/")]
    assert request.query.get("wait") in ("1", "true")


async def test_defaults_post_under_the_webhooks_own_name(fake: FakeDiscord, sender: WebhookSender,
                                                         url: str) -> None:
    await sender.send(url, MessageSpec(content=None, embeds=(SPEC,)))
    [record] = fake.messages
    assert record["author"]["username"] == "hook"
    assert "username" not in record["payload"] and "avatar_url" not in record["payload"]


async def test_everyone_in_content_cannot_ping(fake: FakeDiscord, sender: WebhookSender, url: str) -> None:
    await sender.send(url, MessageSpec(content="@everyone @here <@&123> <@456> look", embeds=()))
    [record] = fake.messages
    mentions = record["allowed_mentions"]
    assert mentions["parse"] == []  # no "everyone", "roles" or "users"
    assert not mentions.get("roles") and not mentions.get("users")
    assert record["mention_everyone"] is False


async def test_allowed_roles_are_the_only_mentions(fake: FakeDiscord, sender: WebhookSender, url: str) -> None:
    await sender.send(url, MessageSpec(content=f"<@&{ROLE}> @everyone", embeds=(SPEC,), allowed_roles=(ROLE,)))
    [record] = fake.messages
    mentions = record["allowed_mentions"]
    assert mentions["parse"] == []
    assert [int(role) for role in mentions["roles"]] == [ROLE]
    assert not mentions.get("users")


async def test_unknown_webhook_is_permanent_and_keeps_the_token_secret(fake: FakeDiscord,
                                                                       sender: WebhookSender) -> None:
    url = f"{fake.api_base}/webhooks/{HOOK}/{TOKEN}"  # never registered
    with pytest.raises(DeliveryError) as info:
        await sender.send(url, MESSAGE)
    err = info.value
    assert err.permanent and err.retry_after is None
    assert err.target == f"webhook …/webhooks/{HOOK}/***"
    assert "deleted or its token is wrong" in str(err) and "10015" in str(err)
    assert_secret_kept(err)
    assert fake.messages == []


async def test_wrong_token_and_deleted_webhook_are_permanent(fake: FakeDiscord, sender: WebhookSender,
                                                             url: str) -> None:
    with pytest.raises(DeliveryError) as info:
        await sender.send(url.replace(TOKEN, "other-token"), MESSAGE)
    assert info.value.permanent
    del fake.webhooks[HOOK]
    with pytest.raises(DeliveryError) as info:
        await sender.send(url, MESSAGE)
    assert info.value.permanent
    assert_secret_kept(info.value)


@pytest.mark.parametrize(("status", "body"), [
    (401, {"message": "Invalid Webhook Token", "code": 50027}),
    (403, {"message": "Missing Access", "code": 50001}),
])
async def test_401_and_403_are_permanent(fake: FakeDiscord, sender: WebhookSender, url: str, status: int,
                                         body: dict[str, object]) -> None:
    fake.fail_next("POST", r"^/webhooks/", (status, body))
    with pytest.raises(DeliveryError) as info:
        await sender.send(url, MESSAGE)
    assert info.value.permanent
    assert "deleted or its token is wrong" in str(info.value) and str(body["message"]) in str(info.value)
    assert_secret_kept(info.value)


async def test_400_is_permanent_with_discords_message(fake: FakeDiscord, sender: WebhookSender, url: str) -> None:
    with pytest.raises(DeliveryError) as info:
        await sender.send(url, MessageSpec(content=None, embeds=()))  # the fake's 50006 Cannot send an empty message
    assert info.value.permanent
    assert "rejected" in str(info.value) and "400" in str(info.value)
    assert "50006" in str(info.value)
    assert_secret_kept(info.value)


async def test_long_429_fails_fast_with_retry_after(fake: FakeDiscord, sender: WebhookSender, url: str) -> None:
    fake.rate_limit_next(r"^/webhooks/", retry_after=42.5)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        await sender.send(url, MESSAGE)
    assert time.monotonic() - started < 2.0  # not discord.py's in-line 42.5 s sleep
    err = info.value
    assert not err.permanent
    assert err.retry_after == pytest.approx(42.5)
    assert "rate limited" in str(err)
    assert_secret_kept(err)
    assert fake.messages == [] and len(webhook_requests(fake)) == 1


async def test_short_429_is_retried_in_line(fake: FakeDiscord, sender: WebhookSender, url: str) -> None:
    fake.rate_limit_next(r"^/webhooks/", retry_after=0.05)
    message_id = await sender.send(url, MESSAGE)
    assert [m["id"] for m in fake.messages] == [message_id]
    assert len(webhook_requests(fake)) == 2


async def test_429_without_via_header_maps_to_retry_after(fake: FakeDiscord, sender: WebhookSender,
                                                          url: str) -> None:
    """A 429 not from Discord's API (e.g. a Cloudflare ban) has no ``Via``: discord.py raises at once."""
    fake.fail_next("POST", r"^/webhooks/", Reply(429, {"message": "You are being rate limited.", "retry_after": 1,
                                                      "global": False, "code": 0}, {"Retry-After": "3"}))
    with pytest.raises(DeliveryError) as info:
        await sender.send(url, MESSAGE)
    assert not info.value.permanent
    assert info.value.retry_after == 3.0
    assert len(webhook_requests(fake)) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_transient_and_fails_fast(fake: FakeDiscord, sender: WebhookSender, url: str,
                                               status: int) -> None:
    fake.outage(status, count=5, path_regex=r"^/webhooks/")
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        await sender.send(url, MESSAGE)
    assert time.monotonic() - started < 2.0  # not discord.py's 1+3+5+7+9 s of in-line retries
    assert not info.value.permanent and info.value.retry_after is None
    assert "unavailable" in str(info.value) and str(status) in str(info.value)
    assert len(webhook_requests(fake)) == 1
    assert_secret_kept(info.value)


async def test_a_callers_session_is_used_bounded_by_timeout_and_left_open(fake: FakeDiscord, url: str) -> None:
    fake.outage(500, count=5, path_regex=r"^/webhooks/")  # discord.py would retry this for ~25 s
    async with aiohttp.ClientSession() as session:
        sender = WebhookSender(api_base=fake.api_base, session=session, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(DeliveryError) as info:
            await sender.send(url, MESSAGE)
        assert time.monotonic() - started < 2.0
        assert not info.value.permanent and "no answer within 0.5s" in str(info.value)
        await sender.close()
        assert not session.closed
        fake.clear_faults()
        # the sender is closed; the caller's session still works
        async with session.get(f"{fake.api_base}/gateway") as response:
            assert response.status == 200


async def test_slow_answer_times_out_as_transient(fake: FakeDiscord, url: str) -> None:
    fake.fail_next("POST", r"^/webhooks/", Reply(200, delay=3.0, after_handling=True))
    async with WebhookSender(api_base=fake.api_base, timeout=0.3) as sender:
        with pytest.raises(DeliveryError) as info:
            await sender.send(url, MESSAGE)
    assert not info.value.permanent
    assert "no answer" in str(info.value)


async def test_dropped_connection_is_transient_without_the_token(fake: FakeDiscord, sender: WebhookSender,
                                                                 url: str) -> None:
    fake.fail_next("POST", r"^/webhooks/", Reply(drop=True))
    with pytest.raises(DeliveryError) as info:
        await sender.send(url, MESSAGE)
    assert not info.value.permanent
    assert "network error" in str(info.value)
    assert_secret_kept(info.value)


async def test_connection_refused_is_transient_without_the_token() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}/api/v10"
    async with WebhookSender(api_base=base, timeout=5.0) as sender:
        with pytest.raises(DeliveryError) as info:
            await sender.send(f"{base}/webhooks/{HOOK}/{TOKEN}", MESSAGE)
    assert not info.value.permanent
    assert "network error" in str(info.value)
    assert_secret_kept(info.value)


async def test_requests_go_to_api_base_not_the_urls_host(fake: FakeDiscord, sender: WebhookSender,
                                                         url: str) -> None:
    assert fake.api_base == discord.http.Route.BASE
    message_id = await sender.send(f"https://discord.com/api/webhooks/{HOOK}/{TOKEN}", MESSAGE)
    assert [m["id"] for m in fake.messages] == [message_id]


async def test_bad_url_is_a_permanent_delivery_error(sender: WebhookSender) -> None:
    with pytest.raises(DeliveryError) as info:
        await sender.send(f"https://discord.com/api/webhooks/abc/{TOKEN}", MESSAGE)
    assert info.value.permanent
    assert_secret_kept(info.value)


async def test_closed_sender_refuses_transiently(fake: FakeDiscord, url: str) -> None:
    sender = WebhookSender(api_base=fake.api_base)
    await sender.send(url, MESSAGE)
    await sender.close()
    with pytest.raises(DeliveryError) as info:
        await sender.send(url, MESSAGE)
    assert not info.value.permanent and "closed" in str(info.value)
    assert len(fake.messages) == 1
