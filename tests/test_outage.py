"""A long Discord outage on a simulated clock, in process, with the real pieces.

Config with a few channels, ``SQLiteStorage`` on tmp_path, the ``Poller`` with the real ``Fetcher`` against
a local feed server, the ``OutboxWorker`` with the real ``DiscordDeliverer`` through a real ``DigestBot``
logged into the fake Discord (tests/fake_discord), and a clock the test advances. No real minutes pass:
discord.py's own ``asyncio.sleep`` calls (rate limits, 5xx retries) are recorded and return at once, so a
long sleep inside discord.py shows up as a recorded duration instead of a hung test.

Script (simulated minutes): Discord answers 500, then 502, then 503 to every create-message request,
then a *global* 429 with ``retry_after`` of 5 minutes, for several minutes, while the feed keeps publishing
and the bot keeps polling and delivering. Then Discord recovers. Checked: the backlog is kept, every entry
is posted exactly once per channel in order, the deleted channel (404, 10003) and the channel without
permission (403, 50013) have their rows marked failed with the reason and are not retried, and the other
channels are unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
import types
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import discord.http
import pytest

from bot.app import fetch_settings
from bot.catalog import Catalog
from bot.config import Config, load_config
from bot.deliver import OutboxWorker
from bot.discord_adapter.client import DigestBot
from bot.discord_adapter.delivery import DiscordDeliverer
from bot.fetch import Fetcher
from bot.format import MessageSpec, header_content, render_entry
from bot.models import Entry, OutboxMessage
from bot.poll import Poller
from bot.search.index import SearchIndex
from bot.store.sqlite import SQLiteStorage
from tests.fake_discord import FakeDiscord
from tests.feed_server import FeedServer

GUILD = 1_400_000_000_000_000_001
CH_A, CH_B = 1_400_000_000_000_000_011, 1_400_000_000_000_000_012
CH_GONE, CH_DENIED = 1_400_000_000_000_000_013, 1_400_000_000_000_000_014
MESSAGES = r"/channels/\d+/messages$"
LONG_RETRY_AFTER = 300.0   # the global 429's retry_after: 5 minutes
DISCORD_PY_MAX_WAIT = 30.0  # discord.py's smallest max_ratelimit_timeout; longer waits must surface


class SimClock:
    """The bot's clock (datetime) and the fake's clock (seconds), moved only by the test."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, tzinfo=UTC)
        self._epoch = self.now

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        return (self.now - self._epoch).total_seconds() + 1_000.0

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Feed:
    """A feed that keeps publishing: ``publish(n)`` appends n entries (newest first in the XML)."""

    server: FeedServer
    path: str
    name: str
    items: list[tuple[str, str, str]] = field(default_factory=list)

    def publish(self, count: int, clock: SimClock) -> None:
        for _ in range(count):
            n = len(self.items)
            when = (clock.now + timedelta(seconds=n)).strftime("%a, %d %b %Y %H:%M:%S GMT")
            self.items.append((f"{self.name}-{n:03d}", f"{self.name} entry {n:03d}", when))
        body = "".join(f"<item><title>{t}</title><guid>{g}</guid><link>https://x.example/{g}</link>"
                       f"<description>about {t}</description><pubDate>{d}</pubDate></item>"
                       for g, t, d in reversed(self.items))
        self.server.set_feed(self.path, f'<?xml version="1.0"?><rss version="2.0"><channel><title>{self.name}'
                                        f"</title>{body}</channel></rss>".encode())

    @property
    def titles(self) -> list[str]:
        return [t for _, t, _ in self.items]


class RecordedSleeps:
    """Replaces ``asyncio`` inside ``discord.http`` so its sleeps are recorded and return at once."""

    def __init__(self) -> None:
        self.durations: list[float] = []
        self._real_sleep = asyncio.sleep
        proxy = types.ModuleType("asyncio_for_discord_http")
        proxy.__dict__.update(asyncio.__dict__)
        proxy.sleep = self.sleep  # type: ignore[attr-defined]
        self.module = proxy

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self.durations.append(float(delay))
        await self._real_sleep(0)
        return result


def write_config(tmp_path: Path, fake: FakeDiscord, server: FeedServer) -> Config:
    path = tmp_path / "digestbot.yaml"
    path.write_text(f"""
discord: {{api_base: "{fake.api_base}", gateway_url: "{fake.gateway_url}", guild_ids: [{GUILD}]}}
storage: {{path: "{tmp_path / 'data' / 'bot.sqlite3'}"}}
health: {{enabled: false}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
defaults: {{backfill: 100, interval: 1m, jitter: 0s, pause_after_failures: 1000}}
sources:
  - {{name: News, id: news, url: "{server.url('/news.xml')}", channels: [{CH_A}, {CH_B}]}}
  - {{name: Papers, id: papers, url: "{server.url('/papers.xml')}", channels: [{CH_B}]}}
  - {{name: Gone, id: gone, url: "{server.url('/gone.xml')}", channels: [{CH_GONE}]}}
  - {{name: Denied, id: denied, url: "{server.url('/denied.xml')}", channels: [{CH_DENIED}]}}
""")
    return load_config(path, env={})


@dataclass
class Rig:
    config: Config
    storage: SQLiteStorage
    poller: Poller
    worker: OutboxWorker
    fake: FakeDiscord
    clock: SimClock
    feeds: dict[str, Feed]
    sleeps: RecordedSleeps
    client: DigestBot
    round_seconds: list[float] = field(default_factory=list)

    async def poll_and_deliver(self) -> None:
        started = time.monotonic()
        for source in self.config.sources:
            await self.poller.poll(source)
        await self.worker.deliver_due()
        self.round_seconds.append(time.monotonic() - started)

    def posted(self, channel: int) -> list[str]:
        return [e["title"] for m in self.fake.messages_in(channel) for e in m["embeds"]]

    def rows(self, channel: int) -> list[sqlite3.Row]:
        with contextlib.closing(sqlite3.connect(self.config.storage.path)) as db:
            db.row_factory = sqlite3.Row
            return db.execute("SELECT * FROM outbox WHERE channel_id = ? ORDER BY id", (channel,)).fetchall()

    def requests_to(self, channel: int) -> int:
        return sum(1 for r in self.fake.requests if r.path.startswith(f"/channels/{channel}"))


def render(config: Config) -> Any:
    """What ``App.render_message`` does: the payload rendered when queued, else render the entries."""
    def render_message(message: OutboxMessage, entries: list[Entry]) -> MessageSpec:
        if message.payload is not None:
            return MessageSpec.from_json(message.payload)
        source = config.source(message.source_id)
        embeds = tuple(render_entry(e, source_name=source.name if source else message.source_id) for e in entries)
        return MessageSpec(content=header_content(message.header), embeds=embeds)
    return render_message


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    clock = SimClock()
    sleeps = RecordedSleeps()
    monkeypatch.setattr(discord.http, "asyncio", sleeps.module)
    async with FakeDiscord(clock=clock.seconds) as fake, FeedServer() as server:
        fake.add_guild(GUILD, "outage", channels=[CH_A, CH_B, CH_GONE, CH_DENIED])
        fake.configure_discord_py()
        config = write_config(tmp_path, fake, server)
        storage = SQLiteStorage(config.storage.path)
        storage.sync_sources([(s.id, s.url) for s in config.sources])
        index = SearchIndex.open(tmp_path / "index")
        feeds = {s.id: Feed(server, f"/{s.id}.xml", s.id) for s in config.sources}
        for feed in feeds.values():
            feed.publish(3, clock)
        client = DigestBot(config, Catalog(config, storage, index, clock=clock))
        task = asyncio.create_task(client.start("fake.bot.token"), name="discord")
        try:
            await asyncio.wait_for(client.wait_until_ready(), 20)
            async with Fetcher(fetch_settings(config)) as fetcher:
                poller = Poller(config, storage, fetcher, clock=clock)
                worker = OutboxWorker(storage, DiscordDeliverer(client), render(config), clock=clock)
                yield Rig(config, storage, poller, worker, fake, clock, feeds, sleeps, client)
        finally:
            await client.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
            index.close()
            storage.close()


@pytest.mark.timeout(120)
async def test_long_outage_keeps_backlog_and_posts_everything_once_in_order(rig: Rig) -> None:
    fake, clock = rig.fake, rig.clock
    rig.fake.delete_channel(CH_GONE)
    rig.fake.deny_channel(CH_DENIED)
    await rig.poll_and_deliver()  # first poll: backfill (all 3 per source) posted
    assert rig.posted(CH_A) == rig.feeds["news"].titles

    faults: dict[str, int] = {}
    pending_peak = 0
    script = [("500", 4), ("502", 3), ("503", 3), ("429-global", 7), ("recovered", 12)]
    for phase, minutes in script:
        fake.clear_faults()
        before = sum(1 for r in fake.requests if r.injected)
        if phase in ("500", "502", "503"):
            fake.outage(int(phase), duration=minutes * 60.0 + 30, path_regex=MESSAGES, method="POST")
        elif phase == "429-global":
            fake.rate_limit_next(MESSAGES, retry_after=LONG_RETRY_AFTER, global_=True, count=100_000,
                                 method="POST")
        for minute in range(minutes):
            if phase != "recovered" or minute < 3:
                for source in ("news", "papers", "gone", "denied"):
                    rig.feeds[source].publish(2, clock)
            clock.advance(60)
            await rig.poll_and_deliver()
            pending_peak = max(pending_peak, rig.storage.pending_count())
            if phase != "recovered":
                # nothing gets through while Discord is down, and nothing is lost
                assert len(rig.posted(CH_A)) == 3
        faults[phase] = sum(1 for r in fake.requests if r.injected) - before
    fake.clear_faults()
    for _ in range(15):  # let every backoff run out
        clock.advance(5 * 60)
        await rig.poll_and_deliver()

    # everything posted exactly once per channel, in publication order, after the backlog was kept
    news, papers = rig.feeds["news"].titles, rig.feeds["papers"].titles
    assert rig.posted(CH_A) == news
    assert [t for t in rig.posted(CH_B) if t.startswith("news")] == news
    assert [t for t in rig.posted(CH_B) if t.startswith("papers")] == papers
    assert sorted(rig.posted(CH_B)) == sorted(news + papers)
    assert rig.storage.pending_count() == 0
    assert pending_peak >= 20, pending_peak
    for channel in (CH_A, CH_B):
        nonces = [m["nonce"] for m in fake.messages_in(channel)]
        assert len(nonces) == len(set(nonces))
        assert all(r["status"] == "sent" and r["message_id"] for r in rig.rows(channel))

    # the deleted channel and the forbidden one: failed with the reason, never retried in a loop
    for channel, reason in ((CH_GONE, "Unknown Channel"), (CH_DENIED, "Missing Permissions")):
        rows = rig.rows(channel)
        assert rows and all(r["status"] == "failed" for r in rows), [r["status"] for r in rows]
        assert all(reason in (r["last_error"] or "") for r in rows), rows[-1]["last_error"]
        # transient errors during the outage are retried with backoff (Discord could not say 403/404 then);
        # the first permanent answer ends a row for good
        assert all(r["attempts"] <= 12 for r in rows), [r["attempts"] for r in rows]
        requests = rig.requests_to(channel)
        for _ in range(20):
            clock.advance(600)
            await rig.poll_and_deliver()
        assert rig.requests_to(channel) == requests, "a permanently failed channel is being retried"
    assert not fake.messages_in(CH_GONE) and not fake.messages_in(CH_DENIED)

    # no real waiting: each round took seconds at most, and (reported) what discord.py slept by itself
    assert max(rig.round_seconds) < 15, max(rig.round_seconds)
    assert faults.pop("recovered") == 0
    assert all(count > 0 for count in faults.values()), faults
    long_sleeps = [d for d in rig.sleeps.durations if d >= DISCORD_PY_MAX_WAIT]
    print(f"faults injected per phase: {faults} (total {sum(faults.values())}); entries posted: "
          f"A={len(rig.posted(CH_A))} B={len(rig.posted(CH_B))}; messages={len(fake.messages)}; "
          f"pending peak={pending_peak}; rounds={len(rig.round_seconds)} max round={max(rig.round_seconds):.2f}s; "
          f"discord.py sleeps={len(rig.sleeps.durations)} (>= {DISCORD_PY_MAX_WAIT:.0f}s: {long_sleeps[:5]}); "
          f"requests to deleted channel={rig.requests_to(CH_GONE)}, denied={rig.requests_to(CH_DENIED)}")


@pytest.mark.timeout(60)
async def test_long_rate_limit_surfaces_as_retry_after_instead_of_sleeping(rig: Rig) -> None:
    await rig.poll_and_deliver()
    sent_before = len(rig.fake.messages)
    rig.feeds["news"].publish(1, rig.clock)
    # the new entry goes to channels A and B: both requests meet the global limit
    rig.fake.rate_limit_next(MESSAGES, retry_after=LONG_RETRY_AFTER, global_=True, count=2, method="POST")
    rig.clock.advance(60)
    await rig.poll_and_deliver()
    long_sleeps = [d for d in rig.sleeps.durations if d >= DISCORD_PY_MAX_WAIT]
    assert not long_sleeps, f"discord.py slept {long_sleeps} s inside send() (real time in production)"
    # surfaced: the row waits for Discord's retry_after, and nothing was posted meanwhile
    for channel in (CH_A, CH_B):
        row = rig.rows(channel)[-1]
        assert row["status"] == "pending" and "rate limited" in (row["last_error"] or ""), dict(row)
        assert row["next_attempt_at"] >= (rig.clock.now + timedelta(seconds=LONG_RETRY_AFTER - 1)).timestamp()
    assert len(rig.fake.messages) == sent_before
    rig.clock.advance(LONG_RETRY_AFTER)  # and once the limit is over, both go out
    await rig.poll_and_deliver()
    assert len(rig.fake.messages) == sent_before + 2
