"""Scheduled digests with a controllable clock: cron time in the route's time zone, grouping and
limits, empty periods, a digest missed during downtime posted once, nothing lost or doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import App
from bot.config import load_config
from bot.format import (
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    TITLE_LIMIT,
    MessageSpec,
)
from tests.local_feeds import Site

CHANNEL = 2001
# Friday 27 Nov 2026, 00:30 UTC = 08:30 in Shanghai.
START = datetime(2026, 11, 27, 0, 30, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """A Deliverer that keeps what it was given (and dedupes by nonce the way Discord does)."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, MessageSpec]] = []
        self.nonces: set[str] = set()

    async def send(self, channel_id: int, message: MessageSpec, *, nonce: str) -> str | None:
        if nonce in self.nonces:
            return "dup"
        self.nonces.add(nonce)
        self.messages.append((channel_id, message))
        return str(len(self.messages))


def feed(n: int, *, prefix: str = "e", start: int = 0) -> bytes:
    words = ["Diffusion models", "大模型幻觉", "FlashAttention 注意力", "DPO 偏好优化", "Weekly notes"]
    items = "".join(
        f"<item><title>{words[i % len(words)]} #{i}</title><guid>{prefix}{i}</guid>"
        f"<link>https://x.example/{prefix}{i}</link><description>{'summary text ' * 30}{i}</description>"
        f"<pubDate>Mon, 02 Nov 2026 {i % 24:02d}:00:00 GMT</pubDate></item>"
        for i in range(start, start + n))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{items}</channel></rss>'.encode()


def make_config(tmp_path: Path, site: Site, extra: str = "") -> Path:
    """Two sources whose feeds start empty (their first poll starts the digest period)."""
    site.bodies["/lab.xml"] = feed(0)
    site.bodies["/mirror.xml"] = feed(0)
    path = tmp_path / "c.yaml"
    path.write_text(f"""
storage: {{path: {tmp_path / 'db.sqlite3'}}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
health: {{enabled: false}}
defaults: {{backfill: 0}}
topics:
  diffusion: {{label: Diffusion, keywords: [diffusion]}}
  hallucination: {{label: "Hallucination 幻觉", keywords: [幻觉]}}
  attention: {{keywords: [attention, 注意力]}}
sources:
  - {{name: Lab, id: lab, url: "{site.base}/lab.xml"}}
  - {{name: Mirror, id: mirror, url: "{site.base}/mirror.xml"}}
routes:
  - id: daily
    channel: {CHANNEL}
    mode: digest
    schedule: "0 9 * * mon-fri"
    timezone: Asia/Shanghai
    header: "INCOMING TRANSMISSION · LATEST UPDATES"
    {extra}
""")
    return path


def assert_within_limits(spec: MessageSpec) -> None:
    assert len(spec.embeds) <= EMBEDS_PER_MESSAGE
    assert len(spec.content or "") <= CONTENT_LIMIT
    assert sum(e.size for e in spec.embeds) <= EMBED_TOTAL_LIMIT
    for embed in spec.embeds:
        assert len(embed.title) <= TITLE_LIMIT and len(embed.description) <= DESCRIPTION_LIMIT


async def test_digest_fires_at_cron_time_in_its_zone_groups_and_skips_empty(tmp_path: Path, site: Site) -> None:
    clock = Clock()
    recorder = Recorder()
    config = load_config(make_config(tmp_path, site), env={})
    async with App.open(config, clock=clock) as app:
        worker = app.attach_deliverer(recorder)
        await app.poll_all(force=True)  # first poll of empty feeds; starts the digest period
        assert await app.digests.run_due() == []
        site.bodies["/lab.xml"] = feed(6)
        site.bodies["/mirror.xml"] = feed(2, start=0)  # the same links as two lab entries: merged
        clock.now = START + timedelta(minutes=10)
        await app.poll_all(force=True)
        await worker.deliver_due()
        assert recorder.messages == []  # held for the digest, nothing realtime

        clock.now = START + timedelta(minutes=29, seconds=59)  # 08:59:59 Shanghai
        assert await app.digests.run_due() == []
        clock.now = START + timedelta(minutes=30)  # 09:00 Shanghai, a Friday
        runs = await app.digests.run_due()
        assert [(r.route_id, r.entries) for r in runs] == [("daily", 8)]
        await worker.deliver_due()
        assert len(recorder.messages) == 1
        channel, message = recorder.messages[0]
        assert channel == CHANNEL
        assert message.content is not None and message.content.startswith("INCOMING TRANSMISSION · LATEST UPDATES")
        assert "Asia/Shanghai" in message.content
        assert_within_limits(message)
        titles = [e.title for e in message.embeds]
        assert any(t.startswith("Diffusion") for t in titles)
        assert any(t.startswith("Hallucination 幻觉") for t in titles)
        text = "\n".join(e.description for e in message.embeds)
        assert text.count("Diffusion models #0") == 1  # reported by two sources, shown once
        assert "Lab, Mirror" in text or "Mirror, Lab" in text, text

        # Nothing new: the next weekday's digest time passes without a message (post_empty off).
        clock.now = START + timedelta(days=3, minutes=30)  # Monday 09:00 Shanghai
        runs = await app.digests.run_due()
        assert [r.messages for r in runs] == [0]
        await worker.deliver_due()
        assert len(recorder.messages) == 1
        # Not due again until Tuesday 09:00.
        clock.now += timedelta(hours=23)
        assert await app.digests.run_due() == []


async def test_missed_digest_is_posted_once_after_downtime_and_not_again(tmp_path: Path, site: Site) -> None:
    clock = Clock()
    config = load_config(make_config(tmp_path, site), env={})
    async with App.open(config, clock=clock) as app:
        await app.poll_all(force=True)
        site.bodies["/lab.xml"] = feed(3, prefix="a")
        clock.now = START + timedelta(minutes=5)
        await app.poll_all(force=True)
    # Down from Friday 08:35 until Tuesday 12:00 Shanghai: Friday and Monday digests were missed.
    recorder = Recorder()
    clock.now = START + timedelta(days=4, hours=3, minutes=30)
    async with App.open(config, clock=clock) as app:
        worker = app.attach_deliverer(recorder)
        runs = await app.digests.run_due()
        assert [(r.entries, r.messages) for r in runs] == [(3, 1)]  # one catch-up digest, not two
        assert runs[0].period_start == START
        await worker.deliver_due()
        assert len(recorder.messages) == 1
    # Restart straight after: nothing is due, nothing is posted twice.
    async with App.open(config, clock=clock) as app:
        worker = app.attach_deliverer(recorder)
        assert await app.digests.run_due() == []
        await worker.deliver_due()
        assert len(recorder.messages) == 1


async def test_big_digest_respects_limits_and_points_to_search(tmp_path: Path, site: Site) -> None:
    clock = Clock()
    recorder = Recorder()
    config = load_config(make_config(tmp_path, site, extra="max_messages: 2"), env={})
    async with App.open(config, clock=clock) as app:
        worker = app.attach_deliverer(recorder)
        await app.poll_all(force=True)
        site.bodies["/lab.xml"] = feed(300)
        await app.poll_all(force=True)
        clock.now = START + timedelta(minutes=30)
        runs = await app.digests.run_due()
        assert runs[0].entries == 300
        layout = runs[0].layout
        assert layout is not None and layout.full + layout.compact + layout.overflow == 300
        assert layout.overflow > 0
        await worker.deliver_due()
        assert 1 <= len(recorder.messages) <= 2
        for _, message in recorder.messages:
            assert_within_limits(message)
        everything = "\n".join(e.description for _, m in recorder.messages for e in m.embeds)
        assert "/search" in everything


async def test_post_empty_and_preview_do_not_consume(tmp_path: Path, site: Site) -> None:
    clock = Clock()
    recorder = Recorder()
    config = load_config(make_config(tmp_path, site, extra="post_empty: true"), env={})
    async with App.open(config, clock=clock) as app:
        worker = app.attach_deliverer(recorder)
        await app.poll_all(force=True)
        site.bodies["/lab.xml"] = feed(2)
        await app.poll_all(force=True)
        route = app.router.digest_routes()[0]
        run, planned = await app.digests.preview(route)
        assert run.entries == 2 and len(planned) == 1
        run, planned = await app.digests.preview(route)
        assert run.entries == 2  # a preview consumes nothing
        clock.now = START + timedelta(minutes=30)
        await app.digests.run_due()
        clock.now = START + timedelta(days=3, minutes=30)
        await app.digests.run_due()  # empty Monday: posts the "no new entries" notice
        await worker.deliver_due()
        assert len(recorder.messages) == 2
        assert "No new entries" in (recorder.messages[1][1].content or "")


async def test_a_removed_digest_route_is_forgotten_and_comes_back_fresh(tmp_path: Path, site: Site) -> None:
    """Entries held for a route that left the config are dropped at start: re-adding the route
    months later must not post them, nor a catch-up digest for the months in between."""
    clock = Clock()
    config_path = make_config(tmp_path, site)
    with_route = config_path.read_text()
    config = load_config(config_path, env={})
    async with App.open(config, clock=clock) as app:
        await app.poll_all(force=True)
        site.bodies["/lab.xml"] = feed(4, prefix="old")
        clock.now = START + timedelta(minutes=5)
        await app.poll_all(force=True)
        assert len(app.storage.digest_entries("daily")) == 4

    config_path.write_text(with_route.replace("mode: digest", "mode: realtime").replace(
        'schedule: "0 9 * * mon-fri"', "").replace("id: daily", "id: live"))
    clock.now = START + timedelta(days=1)
    async with App.open(load_config(config_path, env={}), clock=clock) as app:
        assert app.storage.digest_entries("daily") == []
        assert app.storage.last_digest_at("daily") is None

    config_path.write_text(with_route)
    clock.now = START + timedelta(days=60)  # Tuesday 26 Jan 2027, 08:30 Shanghai
    recorder = Recorder()
    async with App.open(load_config(config_path, env={}), clock=clock) as app:
        worker = app.attach_deliverer(recorder)
        assert app.storage.last_digest_at("daily") == clock.now  # a fresh period, no catch-up
        site.bodies["/lab.xml"] = feed(5, prefix="old")  # one new entry
        await app.poll_all(force=True)
        clock.now += timedelta(days=1, hours=1)  # Wednesday 09:30: one digest time passed
        runs = await app.digests.run_due()
        assert [(r.route_id, r.entries) for r in runs] == [("daily", 1)]
        await worker.deliver_due()
        text = "\n".join(e.description for _, m in recorder.messages for e in m.embeds)
        assert "#4" in text and "#0" not in text
