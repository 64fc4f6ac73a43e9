"""Graceful shutdown: SIGTERM to ``python -m bot run`` (the way a container stops it) in the middle of a
delivery burst against a slowed-down fake Discord, and in the middle of a slow-drip feed fetch.

Checked: the process exits with code 0 within ``EXIT_BOUND`` seconds; the SQLite file passes
``PRAGMA integrity_check`` and has no outbox row in an in-between state (every row is pending, sent with
its Discord message id, or failed with a reason; a row marked sent names a message Discord really has);
and a restart sends everything not yet sent, exactly once (the nonce covers the message that was in
flight at the signal).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.bot_process import BotProcess
from tests.fake_discord import FakeDiscord
from tests.feed_server import FeedServer

GUILD = 1_500_000_000_000_000_001
CH1, CH2, CH3 = 1_500_000_000_000_000_011, 1_500_000_000_000_000_012, 1_500_000_000_000_000_013
TOKEN = "fake-token-shutdown-0123456789"
ROUTES = {"a": [CH1], "b": [CH1, CH2], "c": [CH3]}
ENTRIES = 30                    # per feed, all posted on the first poll (backfill = ENTRIES)
EXIT_BOUND = 10.0               # seconds from SIGTERM to exit
BEFORE_CREATE = AFTER_CREATE = 0.15  # the fake's delay around creating each message
LONG_SUMMARY = " ".join(f"word{i}" for i in range(600))  # 2 embeds per message: many messages
ROOT = Path(__file__).resolve().parents[1]


class SlowDiscord(FakeDiscord):
    """Every create-message request waits before the message is created and again before the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.posts_received = 0
        self.posts_answered = 0

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST" or not request.path.endswith("/messages") or "/channels/" not in request.path:
            return await super()._rest(request)
        self.posts_received += 1
        await asyncio.sleep(BEFORE_CREATE)
        response = await super()._rest(request)
        await asyncio.sleep(AFTER_CREATE)
        self.posts_answered += 1
        return response


def feed(source: str, count: int) -> bytes:
    items = "".join(
        f"<item><title>{title(source, i)}</title><guid>{source}-{i}</guid>"
        f"<link>https://x.example/{source}/{i}</link><description>{LONG_SUMMARY}</description>"
        f"<pubDate>Mon, 02 Nov 2026 10:{i:02d}:00 GMT</pubDate></item>" for i in range(count))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{source}</title>{items}</channel></rss>'.encode()


def title(source: str, index: int) -> str:
    return f"Feed {source.upper()} item {index:03d}"


async def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(step)
    return bool(predicate())


def write_config(tmp_path: Path, fake: FakeDiscord, server: FeedServer, sources: str,
                 extra: str = "") -> Path:
    path = tmp_path / "digestbot.yaml"
    path.write_text(f"""
discord: {{api_base: "{fake.api_base}", gateway_url: "{fake.gateway_url}", guild_ids: [{GUILD}]}}
storage: {{path: "{tmp_path / 'data' / 'bot.sqlite3'}"}}
health: {{enabled: false}}
fetch: {{allow_private_networks: [127.0.0.1/32]{extra}}}
defaults: {{backfill: {ENTRIES}, interval: 1h, jitter: 0s, summary_length: 4000}}
sources:
{sources}
""")
    return path


def db_state(path: Path) -> tuple[str, list[dict[str, Any]]]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        rows = [dict(r) for r in db.execute("SELECT * FROM outbox ORDER BY id")]
    return integrity, rows


def check_consistent(path: Path, fake: FakeDiscord) -> Counter[str]:
    integrity, rows = db_state(path)
    assert integrity == "ok"
    created = {m["id"] for m in fake.messages}
    for row in rows:
        assert row["status"] in ("pending", "sent", "failed"), row
        if row["status"] == "sent":
            assert row["sent_at"] is not None and row["message_id"] in created, row
        elif row["status"] == "pending":
            assert row["sent_at"] is None and row["message_id"] is None, row
        else:
            assert row["last_error"], row
    return Counter(r["status"] for r in rows)


@pytest.fixture
async def fake() -> AsyncIterator[SlowDiscord]:
    async with SlowDiscord() as server:
        server.add_guild(GUILD, "shutdown", channels=[CH1, CH2, CH3])
        yield server


@pytest.mark.timeout(150)
async def test_sigterm_during_burst_exits_cleanly_and_restart_sends_the_rest_once(tmp_path: Path,
                                                                                 fake: SlowDiscord) -> None:
    async with FeedServer() as server:
        for source in ROUTES:
            server.set_feed(f"/{source}.xml", feed(source, ENTRIES))
        sources = "\n".join(f'  - {{name: Source {s.upper()}, id: {s}, url: "{server.url(f"/{s}.xml")}", '
                            f"channels: {channels}}}" for s, channels in ROUTES.items())
        config = write_config(tmp_path, fake, server, sources)
        database = tmp_path / "data" / "bot.sqlite3"
        expected = Counter((str(ch), title(s, i)) for s, chs in ROUTES.items() for ch in chs for i in range(ENTRIES))

        def posted() -> Counter[tuple[str, str]]:
            return Counter((m["channel_id"], e["title"]) for m in fake.messages for e in m["embeds"])

        bot = BotProcess(config, tmp_path / "bot.log", token=TOKEN)
        try:
            await bot.start()
            await fake.wait_until_identified(timeout=30)
            # SIGTERM once the burst is under way, with a create-message request in flight
            assert await wait_until(lambda: len(fake.messages) >= 6, 40), "the burst never started"
            assert await wait_until(lambda: fake.posts_received > fake.posts_answered, 10)
            in_flight = fake.posts_received - fake.posts_answered
            code, took = await bot.terminate(EXIT_BOUND)
            assert code == 0, f"exit code {code} after {took:.1f}s (None: still running after {EXIT_BOUND}s)"
            assert took < EXIT_BOUND
            statuses = check_consistent(database, fake)
            first_run = sum(posted().values())
            assert statuses["pending"] > 0, "the burst finished before the signal; make it longer"
            assert not statuses["failed"]

            # restart: everything not yet sent goes out, exactly once
            fake.identify_payloads.clear()
            await bot.start()
            await fake.wait_until_identified(timeout=30)
            last = [len(fake.messages), time.monotonic()]

            def settled() -> bool:
                if len(fake.messages) != last[0]:
                    last[:] = [len(fake.messages), time.monotonic()]
                return set(posted()) >= set(expected) and time.monotonic() - last[1] >= 2.0

            assert await wait_until(settled, 90), f"missing: {sorted(set(expected) - set(posted()))[:5]}"
            code, took2 = await bot.terminate(EXIT_BOUND)
            assert code == 0 and took2 < EXIT_BOUND, (code, took2)
            statuses = check_consistent(database, fake)
            got = posted()
            assert got == expected, (f"lost {sorted(expected - got)[:5]}, "
                                     f"duplicated {sorted(k for k, n in got.items() if n > 1)[:5]}")
            assert statuses == Counter(sent=statuses["sent"]), statuses
            nonces = [m.get("nonce") for m in fake.messages]
            assert len(nonces) == len(set(nonces))
            print(f"messages={len(fake.messages)} channel-entries={sum(got.values())} "
                  f"(first run {first_run}) create-requests={fake.posts_received} in-flight-at-SIGTERM={in_flight} "
                  f"nonce-hits={len(fake.nonce_hits)} exit after {took:.2f}s / {took2:.2f}s")
        finally:
            bot.ensure_dead()
            print((tmp_path / "bot.log").read_text(errors="replace")[-3000:])


@pytest.mark.timeout(90)
async def test_sigterm_during_slow_drip_fetch_exits_in_time(tmp_path: Path, fake: SlowDiscord) -> None:
    async with FeedServer() as server:
        # ~40 s to send at 50 bytes/s; the fetch deadline (60 s) is longer, so only the shutdown can stop it
        server.slow_drip("/slow.xml", feed("s", 3)[:2000], bytes_per_second=50, chunk_size=5)
        server.set_feed("/quick.xml", feed("q", 2))
        sources = (f'  - {{name: Slow, id: slow, url: "{server.url("/slow.xml")}", channels: [{CH1}]}}\n'
                   f'  - {{name: Quick, id: quick, url: "{server.url("/quick.xml")}", channels: [{CH2}]}}')
        config = write_config(tmp_path, fake, server, sources, extra=", total_timeout: 60s, read_timeout: 30s")
        bot = BotProcess(config, tmp_path / "bot.log", token=TOKEN)
        try:
            await bot.start()
            await fake.wait_until_identified(timeout=30)
            assert await wait_until(lambda: server.hits("/slow.xml") >= 1, 30), "the slow feed was never fetched"
            await fake.wait_for_messages(CH2, 1, timeout=30)  # the quick one went through meanwhile
            await asyncio.sleep(1.0)  # well inside the drip
            code, took = await bot.terminate(EXIT_BOUND)
            assert code == 0, f"exit code {code} after {took:.1f}s (None: still running after {EXIT_BOUND}s)"
            assert took < EXIT_BOUND
            check_consistent(tmp_path / "data" / "bot.sqlite3", fake)
            print(f"exit {took:.2f}s after SIGTERM during a slow-drip fetch")
        finally:
            bot.ensure_dead()
            print((tmp_path / "bot.log").read_text(errors="replace")[-3000:])
