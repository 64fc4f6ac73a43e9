"""Crash safety end to end: the bot is SIGKILLed again and again while it posts a burst, and every
entry still reaches every configured channel exactly once.

What makes that hold: entries and their outbox rows are written in one transaction, a row is
marked sent only after Discord accepted it, and a retried row carries the same nonce (install id +
outbox id) with ``enforce_nonce``, so a message Discord accepted just before the kill is not
created a second time when the restarted bot sends it again.

The fake Discord is slowed down on purpose: every create-message request waits before the message
is created *and* again before the answer goes back, so kills land both before Discord has the
message (it must be sent again) and after Discord has it but before the bot heard back (it must
not be created again).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.bot_process import BotProcess
from tests.discord_fake import DiscordFake
from tests.local_feeds import Site

GUILD_A, GUILD_B = 830000000000000001, 840000000000000001
CH1, CH2, CH3 = 831000000000000001, 831000000000000002, 841000000000000001
TOKEN = "fake-token-crash-0123456789"
ENTRIES = 90                       # per feed; backfill is the same, so the first poll posts them all
KILLS = 20
READY_DELAY = 2.0  # discord.py's guild_ready_timeout: it waits this long after the last GUILD_CREATE
SEED = 20261128
BEFORE_CREATE, AFTER_CREATE = 0.1, 0.1  # the fake's delay around creating each message
# each feed → its channels
ROUTES = {"a": [CH1], "b": [CH1, CH2], "c": [CH2, CH3]}
# summaries are kept up to 2,000 chars, so two embeds fill a message (6,000): many small messages
LONG_SUMMARY = " ".join(f"word{i}" for i in range(600))


def feed(source: str, count: int) -> bytes:
    items = "".join(
        f"<item><title>{title(source, i)}</title><guid>{source}-{i}</guid>"
        f"<link>https://x.example/{source}/{i}</link><description>{LONG_SUMMARY}</description>"
        f"<pubDate>{_date(i)}</pubDate></item>" for i in range(count))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{source}</title>{items}</channel></rss>'.encode()


def title(source: str, index: int) -> str:
    return f"Feed {source.upper()} item {index:03d}"


def _date(index: int) -> str:
    day, minute = divmod(index, 60)
    return f"Mon, {day + 1:02d} Nov 2026 10:{minute:02d}:00 GMT"


class SlowDiscord(DiscordFake):
    """Counts create-message requests and slows each one down around the moment of creation."""

    def __init__(self) -> None:
        super().__init__()
        self.posts_received = 0
        self.posts_answered = 0
        self.nonce_hits = 0  # requests answered with an existing message (enforce_nonce)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST" or not request.path.endswith("/messages") or "/channels/" not in request.path:
            return await super()._rest(request)
        self.posts_received += 1
        self._changed.set()
        await asyncio.sleep(BEFORE_CREATE)
        before = len(self.messages)
        response = await super()._rest(request)
        if len(self.messages) == before and response.status == 200:
            self.nonce_hits += 1
        await asyncio.sleep(AFTER_CREATE)
        self.posts_answered += 1
        return response


@pytest.fixture
async def fake() -> AsyncIterator[SlowDiscord]:
    async with SlowDiscord() as server:
        server.add_guild(GUILD_A, [CH1, CH2])
        server.add_guild(GUILD_B, [CH3])
        yield server


def write_config(tmp_path: Path, fake: DiscordFake, site: Site) -> Path:
    path = tmp_path / "digestbot.yaml"
    sources = "\n".join(
        f'  - {{name: Source {s.upper()}, id: {s}, url: "{site.base}/{s}.xml", channels: {channels}}}'
        for s, channels in ROUTES.items())
    path.write_text(f"""
discord:
  api_base: {fake.api_base}
  gateway_url: {fake.gateway_url}
  guild_ids: [{GUILD_A}, {GUILD_B}]
storage: {{path: {tmp_path / 'data' / 'bot.sqlite3'}}}
health: {{enabled: false}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
defaults: {{backfill: {ENTRIES}, interval: 30s, jitter: 0s, summary_length: 4000}}
sources:
{sources}
""")
    return path


async def wait_until(predicate: object, timeout: float, step: float = 0.05) -> bool:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


@pytest.mark.timeout(240)
async def test_every_entry_exactly_once_under_repeated_sigkill(tmp_path: Path, fake: SlowDiscord,
                                                              site: Site) -> None:
    for source in ROUTES:
        site.bodies[f"/{source}.xml"] = feed(source, ENTRIES)
    expected = Counter((str(channel), title(source, i))
                       for source, channels in ROUTES.items() for channel in channels for i in range(ENTRIES))
    rng = random.Random(SEED)
    last_source = list(ROUTES)[-1]
    log = tmp_path / "bot.log"
    bot = BotProcess(write_config(tmp_path, fake, site), log, token=TOKEN)

    def fetches(source: str) -> int:
        return sum(1 for path, _ in site.requests if path == f"/{source}.xml")

    def posted() -> Counter[tuple[str, str]]:
        return Counter((m["channel_id"], e["title"]) for m in fake.messages for e in m["embeds"])

    kills = mid_flight = 0
    timings: list[float] = []
    try:
        for round_ in range(KILLS):
            fake.identified.clear()
            await bot.start()
            started = time.monotonic()
            assert await wait_until(fake.identified.is_set, 30), "the bot never connected to the gateway"
            # discord.py reports ready (and the outbox starts) READY_DELAY after the gateway
            # handshake; sources are first polled 1 s, 3 s and 5 s after start. The first run is
            # killed around the first poll, the second right after the last source was fetched
            # (while its entries are being stored), the rest 0.3-1.5 s into the burst.
            if round_ == 1:
                fetched = fetches(last_source)
                assert await wait_until(lambda n=fetched: fetches(last_source) > n, 30)
                await asyncio.sleep(rng.uniform(0.0, 0.3))
            else:
                await asyncio.sleep(rng.uniform(0.5, 1.5) if round_ == 0 else READY_DELAY + rng.uniform(0.3, 1.5))
            timings.append(round(time.monotonic() - started, 1))
            if fake.posts_received > fake.posts_answered:
                mid_flight += 1  # a create-message request was in flight at the kill
            await bot.kill()
            kills += 1

        pending_at_end = sum((expected - posted()).values())
        await bot.start()
        last = [len(fake.messages), time.monotonic()]

        def settled() -> bool:
            if len(fake.messages) != last[0]:
                last[:] = [len(fake.messages), time.monotonic()]
            return set(posted()) >= set(expected) and time.monotonic() - last[1] >= 3.0

        assert await wait_until(settled, 90), f"still missing: {sorted(set(expected) - set(posted()))[:10]}"
        assert await bot.stop() == 0

        got = posted()
        lost = sorted(expected - got)
        duplicated = sorted((key, n) for key, n in got.items() if n > 1)
        unexpected = sorted(set(got) - set(expected))
        print(f"kills={kills} (mid-request {mid_flight}) entries={ENTRIES * len(ROUTES)} "
              f"channel-entries={sum(expected.values())} messages={len(fake.messages)} "
              f"create-requests={fake.posts_received} answered={fake.posts_answered} "
              f"duplicates-suppressed-by-nonce={fake.nonce_hits} pending-before-last-run={pending_at_end} "
              f"kill-times={timings}")
        assert not lost, f"lost {len(lost)}: {lost[:10]}"
        assert not duplicated, f"duplicated {len(duplicated)}: {duplicated[:10]}"
        assert not unexpected, f"unexpected: {unexpected[:10]}"
        assert kills >= 20, f"the burst ended after {kills} kills; make it longer"
        assert fake.nonce_hits > 0, "no kill hit the window the nonce protects; the test proved less than it should"
    finally:
        bot.ensure_dead()
        print(log.read_text(errors="replace")[-3000:])
