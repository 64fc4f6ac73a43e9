"""Managing sources at run time: add (validated by one guarded fetch), remove, pause, resume, edit,
OPML import/export; changes persist in the database, survive restarts and win over the YAML."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.__main__ import main
from bot.admin import AdminError, SourceAdmin
from bot.app import App
from bot.config import load_config
from tests.local_feeds import Site, rss

GUILD = 555


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def make_config(tmp_path: Path, site: Site, *, interval: str = "15m") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(f"""
storage: {{path: {tmp_path / 'db.sqlite3'}}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
health: {{enabled: false}}
topics: {{llm: [llm, 大模型], diffusion: [diffusion]}}
sources:
  - {{name: YAML Feed, id: yaml-feed, url: "{site.base}/yaml.xml", channels: [7], interval: {interval}}}
""")
    return path


@pytest.fixture
def feeds(site: Site) -> Site:
    site.bodies["/yaml.xml"] = rss([("y1", "From YAML")])
    site.bodies["/new.xml"] = rss([("n1", "Old news"), ("n2", "大模型 newest entry")])
    return site


async def test_add_previews_then_saves_and_survives_restart(tmp_path: Path, feeds: Site) -> None:
    config = load_config(make_config(tmp_path, feeds), env={})
    async with App.open(config, clock=Clock()) as app:
        admin = SourceAdmin(app)
        preview = await admin.preview(f"{feeds.base}/new.xml")
        assert preview.entries == 2 and preview.newest is not None
        assert preview.newest.title == "大模型 newest entry"
        source = await admin.add(url=f"{feeds.base}/new.xml", name="New Feed", channel_id=8, topics=["llm"],
                                 guild_id=GUILD)
        assert source.id == "new-feed" and source.channels == (8,) and source.topics == ("llm",)
        assert source.allow_file is False and source.origin == "discord"
        assert [s.id for s in app.config.sources] == ["yaml-feed", "new-feed"]
        assert app.config.route("new-feed>8") is not None  # it posts into channel 8 from now on
        with pytest.raises(AdminError, match="already a source"):
            await admin.add(url=f"{feeds.base}/new.xml", name="Again", channel_id=8)
        outcomes = await app.poll_all(force=True)
        assert all(o.ok for o in outcomes)
    async with App.open(config, clock=Clock()) as app:
        assert [s.id for s in app.config.sources] == ["yaml-feed", "new-feed"]
        assert app.storage.source_state("new-feed").entry_count == 2


@pytest.mark.parametrize(("url", "reason"), [
    ("file:///etc/passwd", "http:// or https://"),
    ("ftp://example.com/feed", "http:// or https://"),
    ("http://127.0.0.2:9/feed.xml", "127.0.0.2"),          # loopback alias outside the allow-list
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),  # refused before any connection
    ("http://[::1]:9/feed", "::1"),
])
async def test_add_refuses_local_files_other_schemes_and_private_addresses(tmp_path: Path, feeds: Site, url: str,
                                                                           reason: str) -> None:
    config = load_config(make_config(tmp_path, feeds), env={})
    async with App.open(config, clock=Clock()) as app:
        admin = SourceAdmin(app)
        with pytest.raises(AdminError) as caught:
            await admin.preview(url)
        assert reason in str(caught.value)
        if not url.startswith("http"):
            with pytest.raises(AdminError, match="http:// or https://"):
                await admin.add(url=url, name="x", channel_id=1)
        assert [s.id for s in app.config.sources] == ["yaml-feed"]


async def test_pause_resume_edit_remove_win_over_yaml_and_persist(tmp_path: Path, feeds: Site) -> None:
    path = make_config(tmp_path, feeds)
    config = load_config(path, env={})
    async with App.open(config, clock=Clock()) as app:
        admin = SourceAdmin(app)
        await admin.pause("YAML Feed")  # by display name
        assert app.config.sources[0].enabled is False
        assert not [o for o in await app.poll_all(force=True)]  # paused: not polled
        await admin.resume("yaml-feed")
        await admin.change("yaml-feed", {"interval": 3600, "topics": ["diffusion"], "name": "Renamed"})
        source = app.config.sources[0]
        assert (source.enabled, source.interval.total_seconds(), source.topics, source.name) == (
            True, 3600, ("diffusion",), "Renamed")
        with pytest.raises(AdminError, match="unknown topic"):
            await admin.change("yaml-feed", {"topics": ["nope"]})
        with pytest.raises(AdminError, match="no source called"):
            await admin.pause("yaml-feed", allowed=("something-else",))  # another guild's source
    # The YAML changes a field that was not changed from Discord, and one that was.
    path.write_text(path.read_text().replace("interval: 15m", "interval: 20m").replace(
        "channels: [7]", "channels: [9]"))
    config = load_config(path, env={})
    async with App.open(config, clock=Clock()) as app:
        source = app.config.sources[0]
        assert source.name == "Renamed" and source.interval.total_seconds() == 3600  # Discord wins
        assert source.channels == (9,)  # not changed from Discord: the YAML applies
        await SourceAdmin(app).remove("yaml-feed")
        assert app.config.sources == ()
    async with App.open(config, clock=Clock()) as app:
        assert app.config.sources == ()  # removed stays removed although it is still in the YAML
        assert await SourceAdmin(app).reset("yaml-feed") is True
        assert [s.name for s in app.config.sources] == ["YAML Feed"]


OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>subs</title></head><body>
  <outline text="ML">
    <outline type="rss" text="New Feed" xmlUrl="{base}/new.xml" category="llm"/>
    <outline type="rss" text="Dup of YAML" xmlUrl="{base}/yaml.xml"/>
    <outline type="rss" text="Private" xmlUrl="http://10.0.0.1/feed.xml"/>
  </outline>
</body></opml>"""


def test_opml_import_export_cli(tmp_path: Path, feeds: Site, capsys: pytest.CaptureFixture[str]) -> None:
    config = make_config(tmp_path, feeds)
    opml = tmp_path / "subs.opml"
    opml.write_text(OPML.format(base=feeds.base))
    assert main(["import-opml", str(opml), "--channel", "12", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "added 1 sources, skipped 2" in out and "already a source" in out
    assert "10.0.0.1" in out  # a private address is refused at import, not only when polled
    assert main(["export-opml", "--config", str(config)]) == 0
    exported = capsys.readouterr().out
    assert f"{feeds.base}/new.xml" in exported and f"{feeds.base}/yaml.xml" in exported
    assert 'category="llm"' in exported
    assert main(["sources", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "new-feed: New Feed" in listing and "added from Discord/OPML" in listing
