"""One poll of one source, end to end through a real local HTTP server, real fetcher and SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from bot.app import fetch_settings
from bot.config import Config, load_config
from bot.fetch import Fetcher
from bot.poll import Poller
from bot.store.sqlite import SQLiteStorage
from tests.local_feeds import Site, rss


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def make_config(tmp_path: Path, site: Site, extra: str = "") -> Config:
    path = tmp_path / "c.yaml"
    path.write_text(f"""
storage: {{path: {tmp_path / 'db.sqlite3'}}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
discord: {{admin_channel: 999}}
defaults: {{backfill: 2, pause_after_failures: 3, interval: 1m}}
topics: {{llm: [llm, 大模型]}}
sources:
  - {{name: Good, url: "{site.base}/good.xml", channels: [1]}}
  - {{name: Bad, url: "{site.base}/bad.xml", channels: [1]}}
{extra}""")
    return load_config(path, env={})


@pytest.fixture
async def rig(tmp_path, site):
    config = make_config(tmp_path, site)
    storage = SQLiteStorage(config.storage.path)
    storage.sync_sources([(s.id, s.url) for s in config.sources])
    clock = Clock()
    async with Fetcher(fetch_settings(config)) as fetcher:
        yield config, storage, Poller(config, storage, fetcher, clock=clock), clock, site
    storage.close()


def queued_titles(storage: SQLiteStorage, now: datetime) -> list[str]:
    return [e.title for m in storage.pending_messages(now=now) for e in storage.entries_by_id(m.entry_ids)]


async def test_backfill_then_new_entries_oldest_first_then_not_modified(rig):
    config, storage, poller, clock, site = rig
    site.bodies["/good.xml"] = rss([("a", "A"), ("b", "B 大模型"), ("c", "C")])
    outcome = await poller.poll(config.sources[0])
    assert outcome.ok and outcome.new_entries == 3
    assert queued_titles(storage, clock.now) == ["B 大模型", "C"]  # newest 2, oldest first
    assert storage.latest_entries(topic="llm", source_ids=None, limit=5)[0].title == "B 大模型"
    site.bodies["/good.xml"] = rss([("a", "A"), ("b", "B 大模型"), ("c", "C"), ("d", "D"), ("e", "E")])
    outcome = await poller.poll(config.sources[0])
    assert outcome.new_entries == 2
    assert queued_titles(storage, clock.now)[-2:] == ["D", "E"]
    outcome = await poller.poll(config.sources[0])
    assert outcome.not_modified
    _path, headers = site.requests[-1]
    assert headers.get("If-None-Match") and headers["User-Agent"].startswith("digestbot/")


async def test_redated_and_duplicated_entries_are_not_posted_again(rig):
    config, storage, poller, clock, site = rig
    site.bodies["/good.xml"] = rss([("a", "A"), ("b", "B"), ("c", "C")])
    await poller.poll(config.sources[0])
    posted = len(queued_titles(storage, clock.now))
    # The same guids come back re-dated (rss() dates by position, so reversing re-dates every
    # entry), with one guid listed twice and one new entry.
    site.bodies["/good.xml"] = rss([("d", "D"), ("c", "C"), ("b", "B"), ("a", "A"), ("a", "A again")])
    outcome = await poller.poll(config.sources[0])
    assert outcome.ok and outcome.new_entries == 1
    assert queued_titles(storage, clock.now)[posted:] == ["D"]
    assert storage.source_state("good").entry_count == 4


async def test_failure_is_stored_backs_off_and_does_not_touch_other_sources(rig):
    config, storage, poller, clock, site = rig
    site.bodies["/good.xml"] = rss([("a", "A")])
    site.answers["/bad.xml"] = lambda: web.Response(status=500)
    good, bad = config.sources
    assert (await poller.poll(bad)).error is not None
    assert (await poller.poll(good)).ok
    state = storage.source_state(bad.id)
    assert "HTTP 500" in (state.last_error or "")
    assert state.next_poll_at is not None and state.next_poll_at > clock.now
    skipped = await poller.poll(bad)
    assert skipped.skipped and "backing off" in skipped.skipped
    clock.now += timedelta(minutes=5)
    await poller.poll(bad)
    assert storage.source_state(bad.id).consecutive_failures == 2


async def test_retry_after_is_honoured(rig):
    config, storage, poller, clock, site = rig
    site.answers["/bad.xml"] = lambda: web.Response(status=429, headers={"Retry-After": "3600"})
    await poller.poll(config.sources[1])
    assert storage.source_state("bad").next_poll_at == clock.now + timedelta(hours=1)


async def test_gone_stops_polling(rig):
    config, storage, poller, clock, site = rig
    site.answers["/bad.xml"] = lambda: web.Response(status=410)
    await poller.poll(config.sources[1])
    assert storage.source_state("bad").status == "gone"
    hits = len(site.requests)
    outcome = await poller.poll(config.sources[1], force=True)
    assert outcome.skipped and "410" in outcome.skipped and len(site.requests) == hits
    assert "gone" in queued_titles_or_notices(storage, clock.now)[0]


def queued_titles_or_notices(storage, now):
    return [m.header or "" for m in storage.pending_messages(now=now) if not m.entry_ids]


async def test_permanent_redirect_updates_stored_url(rig):
    config, storage, poller, _clock, site = rig
    site.answers["/good.xml"] = lambda: web.Response(status=301, headers={"Location": "/moved.xml"})
    site.bodies["/moved.xml"] = rss([("a", "A")])
    assert (await poller.poll(config.sources[0])).ok
    assert storage.source_state("good").url == f"{site.base}/moved.xml"


async def test_paused_after_repeated_failures_and_notice_on_recovery(rig):
    config, storage, poller, clock, site = rig
    site.answers["/bad.xml"] = lambda: web.Response(status=502)
    for _ in range(3):
        await poller.poll(config.sources[1], force=True)
    assert storage.source_state("bad").status == "paused"
    del site.answers["/bad.xml"]
    site.bodies["/bad.xml"] = rss([("a", "A")])
    assert (await poller.poll(config.sources[1], force=True)).ok
    assert storage.source_state("bad").status == "active"
    notices = queued_titles_or_notices(storage, clock.now)
    assert len(notices) == 2 and "paused" in notices[0] and "recovered" in notices[1]
    assert all(m.channel_id == 999 for m in storage.pending_messages(now=clock.now) if not m.entry_ids)


async def test_html_page_and_private_address_give_clear_errors(rig, tmp_path):
    config, storage, poller, _clock, site = rig
    site.answers["/bad.xml"] = lambda: web.Response(text="<html><body>hi</body></html>", content_type="text/html")
    outcome = await poller.poll(config.sources[1])
    assert outcome.error and "HTML" in outcome.error
    other = make_config(tmp_path, site, extra='  - {name: Lan, url: "http://127.0.0.2:9/feed"}')
    lan = other.sources[2]
    storage.sync_sources([(lan.id, lan.url)])
    outcome = await poller.poll(lan)
    assert outcome.error and "private or reserved" in outcome.error
