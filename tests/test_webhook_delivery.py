"""Webhook routes end to end: entries polled from a local feed go out through the real WebhookSender
to the fake Discord. Webhooks take no nonce, so the documented guarantee is *at least once*: a lost
answer (Discord accepted, the bot never heard) repeats that one message; nothing is ever lost."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import discord.http
import pytest

from bot.app import App
from bot.config import load_config
from bot.discord_adapter.webhooks import WebhookSender
from tests.fake_discord import FakeDiscord, Reply
from tests.local_feeds import Site, rss

GUILD = 1_330_000_000_000_000_001
CHANNEL = 1_330_000_000_000_000_011
HOOK = 1_330_000_000_000_000_101
TOKEN = "hook-secret-token_0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class NoChannels:
    async def send(self, channel_id: int, message: object, *, nonce: str) -> str | None:
        raise AssertionError("this test routes only to a webhook")


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


def make_config(tmp_path: Path, site: Site, hook_url: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"""
storage: {{path: {tmp_path / 'db.sqlite3'}}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
health: {{enabled: false}}
defaults: {{backfill: 0}}
sources:
  - {{name: Lab, id: lab, url: "{site.base}/lab.xml", webhook_username: "Lab Bot"}}
routes:
  - {{id: hook, webhook: "${{HOOK_URL}}", guild: {GUILD}}}
""")
    return path


def posted_titles(fake: FakeDiscord) -> list[str]:
    return [embed["title"] for message in fake.messages_in(CHANNEL) for embed in message.get("embeds", [])]


async def test_webhook_route_posts_every_entry_at_least_once(tmp_path: Path, site: Site, fake: FakeDiscord) -> None:
    hook_url = fake.add_webhook(HOOK, TOKEN, CHANNEL, name="hook")
    site.bodies["/lab.xml"] = rss([])
    config = load_config(make_config(tmp_path, site, hook_url), env={"HOOK_URL": hook_url})
    clock = Clock()
    async with App.open(config, clock=clock) as app, WebhookSender(api_base=fake.api_base, timeout=5) as sender:
        worker = app.attach_deliverer(NoChannels(), sender)
        await app.poll_all(force=True)
        site.bodies["/lab.xml"] = rss([(f"g{i}", f"Entry {i}") for i in range(12)])
        await app.poll_all(force=True)
        # The first webhook call takes effect on Discord but its answer is lost; the second gets a 503.
        fake.fail_next("POST", rf"/webhooks/{HOOK}/", [Reply(500, after_handling=True), Reply(503)])
        for _ in range(6):
            await worker.deliver_due()
            clock.now += timedelta(minutes=10)
        assert app.storage.pending_count() == 0
    titles = posted_titles(fake)
    expected = [f"Entry {i}" for i in range(12)]
    assert sorted(set(titles), key=expected.index) == expected  # nothing lost, in order
    assert len(titles) - len(set(titles)) <= 10  # at most the one lost-answer message repeated
    messages = fake.messages_in(CHANNEL)
    assert {m["author"]["username"] for m in messages} == {"Lab Bot"}
    assert TOKEN not in (tmp_path / "db.sqlite3").read_bytes().decode("latin-1")


async def test_deleted_webhook_fails_for_good_without_a_tight_loop(tmp_path: Path, site: Site,
                                                                   fake: FakeDiscord) -> None:
    hook_url = fake.add_webhook(HOOK, TOKEN, CHANNEL, name="hook")
    fake.webhooks.pop(HOOK)  # deleted on Discord's side
    site.bodies["/lab.xml"] = rss([])
    config = load_config(make_config(tmp_path, site, hook_url), env={"HOOK_URL": hook_url})
    clock = Clock()
    async with App.open(config, clock=clock) as app, WebhookSender(api_base=fake.api_base, timeout=5) as sender:
        worker = app.attach_deliverer(NoChannels(), sender)
        await app.poll_all(force=True)
        site.bodies["/lab.xml"] = rss([("a", "A"), ("b", "B")])
        await app.poll_all(force=True)
        for _ in range(5):
            await worker.deliver_due()
            clock.now += timedelta(hours=1)
        attempts = [r for r in fake.requests if r.path.startswith(f"/webhooks/{HOOK}")]
        assert len(attempts) == 1  # one message, one try, marked failed with the reason
        failures = app.storage.failed_delivery_counts()
        count, reason = failures["lab"]
        assert count == 1 and reason is not None and "webhook" in reason and TOKEN not in reason
