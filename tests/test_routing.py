"""Routes: config validation, the router (topics, filters, templates, roles, webhooks) and what the
poller queues through it, against a real local feed server and a real SQLite file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App
from bot.config import load_config
from bot.errors import ConfigError
from bot.format import MessageSpec
from tests.local_feeds import Site

CH_NEWS, CH_DIFF, CH_TEXT = 1001, 1002, 1003
WEBHOOK = "https://discord.com/api/webhooks/123456789012345678/abcDEF_-token"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 0, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def feed(items: list[tuple[str, str, str]]) -> bytes:
    """(guid, title, description) items, oldest first in the pubDate sense."""
    body = "".join(
        f"<item><title>{t}</title><guid>{g}</guid><link>https://x.example/{g}?utm_source=feed</link>"
        f"<description>{d}</description><pubDate>Mon, {i + 1:02d} Nov 2026 10:00:00 GMT</pubDate></item>"
        for i, (g, t, d) in enumerate(items))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


BASE = """
storage: {{path: {db}}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
health: {{enabled: false}}
defaults: {{backfill: 0, header: "📡 LATEST"}}
topics:
  diffusion: {{label: "Diffusion 扩散", keywords: [diffusion, 扩散模型]}}
  hallucination: {{keywords: [hallucination, 幻觉]}}
  llm: {{keywords: [llm, 大模型]}}
sources:
  - {{name: Lab Notes, id: lab, url: "{base}/lab.xml", channels: [{news}], webhook_username: "Lab Bot"}}
  - {{name: Papers, id: papers, url: "{base}/papers.xml"}}
"""


def config_text(tmp_path: Path, site: Site, routes: str) -> str:
    return BASE.format(db=tmp_path / "db.sqlite3", base=site.base, news=CH_NEWS) + routes


# -- config validation ----------------------------------------------------------------------------

@pytest.mark.parametrize(("routes", "expected"), [
    ("routes: [{channel: 5, webhook: " + WEBHOOK + "}]", "routes[0]: give exactly one of 'channel'"),
    ("routes: [{channel: 5, mode: digest}]", "a digest route needs 'schedule'"),
    ("routes: [{channel: 5, mode: digest, schedule: '61 9 * * *'}]", "routes[0].schedule: invalid cron"),
    ("routes: [{channel: 5, mode: digest, schedule: '0 9 * * *', timezone: Mars/Base}]",
     "routes[0].schedule: unknown time zone 'Mars/Base'"),
    ("routes: [{channel: 5, sources: [nope]}]", "routes[0].sources: unknown source 'nope'"),
    ("routes: [{channel: 5, topics: [nope]}]", "routes[0].topics: unknown topic 'nope'"),
    ("routes: [{channel: 5, mention_roles: {nope: 7}}]", "routes[0].mention_roles: unknown topic 'nope'"),
    ("routes: [{channel: 5, include: {regex: ['(unclosed']}}]", "routes[0].include.regex[0]"),
    ("routes: [{channel: 5, template: '{title.__class__}'}]", "routes[0].template"),
    ("routes: [{channel: 5, template: '{nope}'}]", "routes[0].template"),
    ("routes: [{webhook: 'https://example.com/not-a-hook'}]", "routes[0].webhook: not a Discord webhook URL"),
    ("routes: [{channel: 5, username: x}]", "'username' and 'avatar_url' only apply to webhook routes"),
    ("routes: [{id: a, channel: 5}, {id: a, channel: 6}]", "routes[1].id: 'a' is used twice"),
    ("routes: [{channel: abc}]", "routes[0].channel"),
])
def test_bad_routes_are_refused_naming_the_key(tmp_path: Path, site: Site, routes: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, config_text(tmp_path, site, routes)), env={})
    assert expected in str(caught.value), str(caught.value)
    assert "c.yaml" in str(caught.value)
    assert "abcDEF_-token" not in str(caught.value)


def test_good_routes_resolve_with_implicit_ones(tmp_path: Path, site: Site) -> None:
    config = load_config(write(tmp_path, config_text(tmp_path, site, f"""
routes:
  - {{id: diffusion-room, channel: {CH_DIFF}, topics: [diffusion]}}
  - {{id: daily, webhook: "${{HOOK}}", mode: digest, schedule: "0 9 * * mon-fri", timezone: Asia/Shanghai}}
""")), env={"HOOK": WEBHOOK})
    ids = [r.id for r in config.all_routes()]
    assert ids == [f"lab>{CH_NEWS}", "diffusion-room", "daily"]
    daily = config.route("daily")
    assert daily is not None and daily.webhook_url == WEBHOOK and daily.destination == "webhook:daily"
    assert WEBHOOK not in repr(daily)


# -- routing through a real poll -------------------------------------------------------------------

def pending_payloads(app: App) -> list[tuple[str, str | None, MessageSpec, tuple[int, ...]]]:
    rows = app.storage.pending_messages(now=datetime(2100, 1, 1, tzinfo=UTC), limit=1000)
    return [(m.destination, m.route_id, MessageSpec.from_json(m.payload or "{}"), m.entry_ids) for m in rows]


LAB = [("l1", "Diffusion Models from SDE", "score matching"),
       ("l2", "大模型幻觉综述", "幻觉的成因"),
       ("l3", "Weekly links", "@everyone look <@123>")]
PAPERS = [("p1", "扩散模型 入门", "DDPM"),
          ("p2", "Sponsored: buy GPUs", "advert"),
          ("p3", "LLM serving", "kv cache")]


async def run_poll(tmp_path: Path, site: Site, routes: str, env: dict[str, str] | None = None) -> App:
    site.bodies["/lab.xml"] = feed(LAB)
    site.bodies["/papers.xml"] = feed(PAPERS)
    config = load_config(write(tmp_path, config_text(tmp_path, site, routes)), env=env or {})
    clock = Clock()
    async with App.open(config, clock=clock) as app:
        # First poll: backfill 0 stores everything, posts nothing.
        await app.poll_all(force=True)
        assert app.storage.pending_count() == 0
        site.bodies["/lab.xml"] = feed([(g + "n", t, d) for g, t, d in LAB] + LAB)
        site.bodies["/papers.xml"] = feed([(g + "n", t, d) for g, t, d in PAPERS] + PAPERS)
        await app.poll_all(force=True)
        return app


async def test_topic_route_collects_from_every_source_and_filters_apply(tmp_path: Path, site: Site) -> None:
    app = await run_poll(tmp_path, site, f"""
routes:
  - id: diffusion-room
    channel: {CH_DIFF}
    topics: [diffusion]
  - id: text-room
    channel: {CH_TEXT}
    exclude: {{keywords: [sponsored]}}
    include: {{regex: ['^(LLM|Diffusion|大模型|扩散)']}}
    template: "🔖 {{title}} — {{link}} [{{source}}] {{topics}}"
    mention_roles: {{diffusion: 4242}}
""")
    app.storage = _reopen(app)
    rows = pending_payloads(app)
    by_dest: dict[str, list[MessageSpec]] = {}
    for dest, _route, spec, _ids in rows:
        by_dest.setdefault(dest, []).append(spec)

    # The implicit lab → news route: every new lab entry, as embeds, with the source header.
    news = by_dest[f"channel:{CH_NEWS}"]
    assert [e.title for m in news for e in m.embeds] == ["Diffusion Models from SDE", "大模型幻觉综述", "Weekly links"]
    assert news[0].content == "📡 LATEST"
    assert all("@everyone" not in e.description for m in news for e in m.embeds)

    # Topic route: the diffusion entries of both sources (English keyword and Chinese keyword).
    diffusion = [e.title for m in by_dest[f"channel:{CH_DIFF}"] for e in m.embeds]
    assert sorted(diffusion) == ["Diffusion Models from SDE", "扩散模型 入门"]

    # Template route: text, filtered (regex include, keyword exclude), role pinged only for diffusion.
    texts = by_dest[f"channel:{CH_TEXT}"]
    assert all(not m.embeds for m in texts)
    joined = "\n".join(m.content or "" for m in texts)
    assert "Diffusion Models from SDE" in joined and "大模型幻觉综述" in joined and "LLM serving" in joined
    assert "扩散模型 入门" in joined
    assert "Sponsored" not in joined and "Weekly links" not in joined
    assert "<@&4242>" in joined
    assert {r for m in texts for r in m.allowed_roles} == {4242}
    for m in texts:
        assert ("<@&4242>" in (m.content or "")) == bool(m.allowed_roles)
    app.storage.close()


async def test_webhook_route_uses_per_source_identity_and_never_stores_the_url(tmp_path: Path, site: Site) -> None:
    app = await run_poll(tmp_path, site, """
routes:
  - {id: hook, webhook: "${HOOK}", sources: [lab, papers], username: "Digest", avatar_url: "https://x.example/a.png"}
""", env={"HOOK": WEBHOOK})
    app.storage = _reopen(app)
    rows = [r for r in pending_payloads(app) if r[0] == "webhook:hook"]
    names = {spec.username for _, _, spec, _ in rows}
    assert names == {"Lab Bot", "Digest"}  # lab has its own webhook name; papers falls back to the route's
    dump = json.dumps([r.payload for r in app.storage.pending_messages(now=datetime(2100, 1, 1, tzinfo=UTC))])
    assert "abcDEF_-token" not in dump
    assert "abcDEF_-token" not in (tmp_path / "db.sqlite3").read_bytes().decode("latin-1")
    app.storage.close()


def _reopen(app: App):  # the App context closed its storage; reopen the same file to inspect it
    from bot.store.sqlite import SQLiteStorage

    return SQLiteStorage(app.config.storage.path)
