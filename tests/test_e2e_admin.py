"""Managing sources and digests from Discord, end to end: the real ``App`` + ``DigestBot`` in this
process (with a controllable clock), the fake Discord (REST + gateway, tests/fake_discord) and a
local feed server, both on 127.0.0.1; a real SQLite file.

Covers the Manage Server gate (default permissions in the synced commands, and the bot's own check),
``/sources add`` (preview, Save/Cancel buttons, persistence, the first poll's backfill, the
private-address guard), ``pause|resume|edit|remove`` with guild-scoped autocomplete, ``/digest
preview|now`` and OPML export/import through an attachment.

The bot is wired the way ``bot.app.run_discord`` wires it, except that polls are driven by the test
(``app.poll_all``) instead of the scheduler, so nothing happens behind the test's back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.admin import SourceAdmin
from bot.app import App
from bot.config import load_config
from bot.discord_adapter.client import DigestBot, point_discord_py_at
from bot.discord_adapter.delivery import DiscordDeliverer
from bot.opml import OpmlFeed, export_opml, parse_opml
from tests.fake_discord import DEFAULT_PERMISSIONS, FakeDiscord, PushedInteraction
from tests.fake_discord import payloads as P
from tests.local_feeds import Site, rss

pytestmark = pytest.mark.timeout(60)

GUILD_A, GUILD_B = 1_410_000_000_000_000_001, 1_420_000_000_000_000_001
NEWS_A, LAB_A, DIGEST_A = 1_411_000_000_000_000_001, 1_411_000_000_000_000_002, 1_411_000_000_000_000_003
OTHER_B = 1_421_000_000_000_000_001
TOKEN = "fake-token-e2e-admin-0123456789"
EPHEMERAL = 1 << 6
MANAGE_GUILD = 1 << 5

MEMBER = P.VIEW_CHANNEL | P.SEND_MESSAGES  # an ordinary member: no Manage Server
ADMIN = DEFAULT_PERMISSIONS | MANAGE_GUILD
OTHER_ADMIN = P.user(1_300_000_000_000_000_202, "other-admin")

ALPHA = [("a1", "Alpha first"), ("a2", "Alpha LLM second"), ("a3", "Alpha LLM third")]
NEW = [("n1", "Old news"), ("n2", "Middle LLM post"), ("n3", "Newest LLM entry")]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def write_config(tmp_path: Path, fake: FakeDiscord, site: Site) -> Path:
    path = tmp_path / "digestbot.yaml"
    path.write_text(f"""
discord:
  api_base: {fake.api_base}
  gateway_url: {fake.gateway_url}
  guild_ids: [{GUILD_A}, {GUILD_B}]
storage: {{path: {tmp_path / 'data' / 'bot.sqlite3'}}}
health: {{enabled: false}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
defaults: {{backfill: 2, interval: 15m, jitter: 0s, header: "📡 LATEST UPDATES"}}
topics:
  llm: {{keywords: [llm]}}
  diffusion: {{keywords: [diffusion]}}
sources:
  - {{name: Alpha Feed, id: alpha, url: "{site.base}/alpha.xml", channels: [{NEWS_A}]}}
  - {{name: Beta Elsewhere, id: beta, url: "{site.base}/beta.xml", channels: [{OTHER_B}]}}
routes:
  - {{id: daily, channel: {DIGEST_A}, mode: digest, schedule: "0 9 * * *", sources: [alpha],
     header: "DAILY DIGEST", group_by: none}}
""")
    return path


@dataclass
class Env:
    fake: FakeDiscord
    site: Site
    app: App
    client: DigestBot
    clock: Clock
    config_path: Path

    async def command(self, name: str, options: Mapping[str, Any] | None = None, *, guild: int = GUILD_A,
                      channel: int | None = None, permissions: int = ADMIN,
                      user: dict[str, Any] | None = None) -> tuple[PushedInteraction, list[dict[str, Any]]]:
        channel = channel or (NEWS_A if guild == GUILD_A else OTHER_B)
        pushed = await self.fake.push_command(name, dict(options or {}), guild_id=guild, channel_id=channel,
                                              permissions=permissions, user=user)
        return pushed, await self.fake.wait_for_interaction_response(pushed, timeout=10)

    async def autocomplete(self, name: str, typed: str = "", *, guild: int = GUILD_A) -> list[dict[str, Any]]:
        pushed = await self.fake.push_autocomplete(name, {"source": typed}, focused="source", guild_id=guild,
                                                   channel_id=NEWS_A if guild == GUILD_A else OTHER_B,
                                                   permissions=ADMIN)
        (callback,) = await self.fake.wait_for_interaction_response(pushed)
        assert callback["type"] == 8
        choices: list[dict[str, Any]] = callback["data"]["choices"]
        return choices

    async def click(self, pushed: PushedInteraction, custom_id: str, *,
                    user: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Press a button on the (ephemeral) message that answered ``pushed``."""
        assert pushed.original is not None
        click = await self.fake.push_component(custom_id, message=self.fake.public(pushed.original),
                                               guild_id=int(pushed.payload["guild_id"]),
                                               channel_id=int(pushed.payload["channel_id"]), permissions=ADMIN,
                                               user=user)
        return await self.fake.wait_for_interaction_response(click, timeout=10)

    async def poll(self) -> None:
        """One forced poll of every enabled source; the outbox worker (woken by it) posts."""
        await self.app.poll_all(force=True)
        await self.settle()

    async def settle(self) -> None:
        """Until the outbox has nothing due (the worker runs in the background)."""
        for _ in range(100):
            pending = await asyncio.to_thread(self.app.storage.pending_messages, now=self.clock(), limit=10)
            if not pending:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"outbox still has due messages: {pending}")

    def runtime(self) -> list[Any]:
        return sorted(self.app.storage.runtime_sources(), key=lambda r: r[0])

    def sources(self) -> dict[str, tuple[str, bool, tuple[int, ...]]]:
        return {s.id: (s.name, s.enabled, tuple(s.channels)) for s in self.app.config.sources}

    def site_hits(self, path: str) -> int:
        return sum(1 for p, _ in self.site.requests if p == path)


@contextlib.asynccontextmanager
async def running_bot(tmp_path: Path, site: Site) -> AsyncIterator[Env]:
    site.bodies.setdefault("/alpha.xml", rss(ALPHA))
    site.bodies.setdefault("/beta.xml", rss([("b1", "Beta only entry")]))
    async with FakeDiscord() as fake:
        fake.add_guild(GUILD_A, "guild a", channels=[{"id": NEWS_A, "name": "news"}, {"id": LAB_A, "name": "lab"},
                                                     {"id": DIGEST_A, "name": "digest"}])
        fake.add_guild(GUILD_B, "guild b", channels=[{"id": OTHER_B, "name": "other"}])
        fake.configure_discord_py()  # remembers discord.py's globals; restored when the fake stops
        config_path = write_config(tmp_path, fake, site)
        config = load_config(config_path, env={"DISCORD_TOKEN": TOKEN})
        point_discord_py_at(config.discord.api_base, config.discord.gateway_url)  # as run_discord does
        clock = Clock()
        async with App.open(config, clock=clock) as app:
            client = DigestBot(app.config, app.catalog, admin=SourceAdmin(app), digests=app.digests,
                               wake_outbox=lambda: app.worker.wake.set() if app.worker else None)
            client._connection.guild_ready_timeout = 0.05  # the fake sends every GUILD_CREATE at once
            app.on_reconfigure.append(client.reconfigure)
            worker = app.attach_deliverer(DiscordDeliverer(client, ready_timeout=5))
            start = asyncio.create_task(client.start(TOKEN), name="discord")
            ready = asyncio.create_task(client.wait_until_ready())
            outbox: asyncio.Task[None] | None = None
            try:
                done, _ = await asyncio.wait({start, ready}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
                if start in done:
                    start.result()
                assert ready in done, "the bot did not become ready"
                outbox = asyncio.create_task(worker.run_forever(poll_every=0.5, ready=lambda: client.connected))
                yield Env(fake, site, app, client, clock, config_path)
            finally:
                ready.cancel()
                if outbox is not None:
                    outbox.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await outbox
                await client.close()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(start, 5)


# -- helpers over recorded responses ---------------------------------------------------------------

def _data(response: dict[str, Any]) -> dict[str, Any]:
    data = response.get("data")
    return data if isinstance(data, dict) else {}


def text_of(responses: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for response in responses:
        data = _data(response)
        parts.append(data.get("content") or "")
        for embed in data.get("embeds") or []:
            parts.append(embed.get("title") or "")
            parts.append(embed.get("description") or "")
            parts.append((embed.get("author") or {}).get("name") or "")
            parts.extend(f"{f.get('name')} {f.get('value')}" for f in embed.get("fields") or [])
    return "\n".join(p for p in parts if p)


def ephemeral(pushed: PushedInteraction) -> bool:
    """The first answer (a message, or the deferred "thinking…" one) was private."""
    callback = pushed.callback
    assert callback is not None
    return bool(int(_data(callback).get("flags") or 0) & EPHEMERAL)


def buttons(responses: list[dict[str, Any]]) -> dict[str, str]:
    out = {}
    for response in responses:
        for row in _data(response).get("components") or []:
            for component in row.get("components") or []:
                out[component.get("label")] = component.get("custom_id")
    return out


def titles(message: dict[str, Any]) -> list[str]:
    return [e["title"] for e in message["embeds"]]


# -- 1. the Manage Server gate ------------------------------------------------------------------------

async def test_admin_commands_need_manage_server(tmp_path: Path, site: Site) -> None:
    site.bodies["/new.xml"] = rss(NEW)
    async with running_bot(tmp_path, site) as env:
        for guild in (GUILD_A, GUILD_B):
            synced = {c["name"]: c for c in env.fake.guild_commands(guild)}
            assert {"sources", "digest", "search"} <= set(synced)
            # Discord hides these from everyone without Manage Server (bit 5) unless a server says otherwise
            # (discord.py sends the bit set as a number; Discord's docs type it as a string)
            assert str(synced["sources"]["default_member_permissions"]) == str(MANAGE_GUILD) == "32"
            assert str(synced["digest"]["default_member_permissions"]) == "32"
            assert synced["search"]["default_member_permissions"] is None  # reading stays open to all
        assert env.fake.global_commands == []

        await env.poll()  # alpha's newest 2 entries are held for the daily digest
        held = env.app.storage.digest_entries("daily")
        assert len(held) == 2
        before = (env.runtime(), env.sources(), len(env.fake.messages))

        attempts: list[tuple[str, dict[str, Any]]] = [
            ("sources add", {"url": f"{site.base}/new.xml", "channel": LAB_A, "topics": "llm"}),
            ("sources remove", {"source": "alpha"}),
            ("sources pause", {"source": "alpha"}),
            ("digest now", {}),
            ("digest preview", {}),
            ("sources list", {}),
        ]
        for name, options in attempts:
            pushed, responses = await env.command(name, options, permissions=MEMBER)
            shown = text_of(responses)
            assert ephemeral(pushed), name
            assert "Manage Server" in shown, f"/{name} answered {shown!r}"
            assert "Alpha" not in shown, name  # nothing about the sources leaked

        # nothing changed: no source added, removed or paused, the digest not consumed, nothing fetched
        await asyncio.sleep(0.3)
        assert (env.runtime(), env.sources(), len(env.fake.messages)) == before
        assert [e.id for e in env.app.storage.digest_entries("daily")] == [e.id for e in held]
        assert env.fake.messages_in(DIGEST_A) == []
        assert env.site_hits("/new.xml") == 0


# -- 2. /sources add ----------------------------------------------------------------------------------

async def test_add_previews_saves_on_click_and_posts_with_backfill(tmp_path: Path, site: Site) -> None:
    site.bodies["/new.xml"] = rss(NEW)
    site.bodies["/other.xml"] = rss([("o1", "Never saved")])
    async with running_bot(tmp_path, site) as env:
        pushed, responses = await env.command("sources add", {"url": f"{site.base}/new.xml", "channel": LAB_A,
                                                              "topics": "llm", "name": "Lab Notes"})
        assert ephemeral(pushed)
        shown = text_of(responses)
        assert "Found 3 entries" in shown and f"<#{LAB_A}>" in shown
        assert "Newest LLM entry" in shown and "Old news" not in shown  # the newest entry is previewed
        assert set(buttons(responses)) == {"Save", "Cancel"}
        save = buttons(responses)["Save"]
        assert env.runtime() == [] and "lab-notes" not in env.sources()  # nothing saved before the click

        # someone else cannot press it
        other = await env.click(pushed, save, user=OTHER_ADMIN)
        assert other[0]["type"] == 4 and int(_data(other[0])["flags"]) & EPHEMERAL
        assert "Only the person who ran /sources add" in text_of(other)
        assert env.runtime() == []

        saved = await env.click(pushed, save)
        assert "Added **Lab Notes**" in text_of(saved) and "`lab-notes`" in text_of(saved)
        assert f"<#{LAB_A}>" in text_of(saved)
        assert buttons(saved[-1:]) == {}  # the buttons are gone
        source = env.app.config.source("lab-notes")
        assert source is not None and source.channels == (LAB_A,) and source.topics == ("llm",)
        assert source.origin == "discord" and source.guild_id == GUILD_A
        [(sid, kind, settings, guild_id)] = env.runtime()
        assert (sid, kind, guild_id) == ("lab-notes", "added", GUILD_A)
        assert settings["url"] == f"{site.base}/new.xml"
        # autocomplete knows it at once (in its guild only)
        assert {"name": "Lab Notes", "value": "lab-notes"} in await env.autocomplete("sources pause", "lab")
        assert await env.autocomplete("sources pause", "lab", guild=GUILD_B) == []

        # the next poll posts only the newest `backfill` (2) entries, oldest first, into the chosen channel
        await env.poll()
        [message] = await env.fake.wait_for_messages(LAB_A, 1)
        assert titles(message) == ["Middle LLM post", "Newest LLM entry"]
        assert message["allowed_mentions"] == {"parse": []}
        site.bodies["/new.xml"] = rss([*NEW, ("n4", "Fresh LLM item")])
        env.clock.now += timedelta(minutes=20)
        await env.poll()
        later = await env.fake.wait_for_messages(LAB_A, 2)
        assert titles(later[-1]) == ["Fresh LLM item"]

        # Cancel saves nothing
        pushed, responses = await env.command("sources add", {"url": f"{site.base}/other.xml", "channel": LAB_A})
        assert "Never saved" in text_of(responses)
        cancelled = await env.click(pushed, buttons(responses)["Cancel"])
        assert cancelled[0]["type"] == 7 and "nothing was saved" in text_of(cancelled)
        assert [r[0] for r in env.runtime()] == ["lab-notes"]
        assert all(s.url != f"{site.base}/other.xml" for s in env.app.config.sources)

        # a loopback alias outside fetch.allow_private_networks is refused before any connection
        port = site.base.rsplit(":", 1)[1]
        pushed, responses = await env.command("sources add", {"url": f"http://127.0.0.2:{port}/x.xml",
                                                              "channel": LAB_A})
        shown = text_of(responses)
        assert ephemeral(pushed) and buttons(responses) == {}
        assert "127.0.0.2" in shown and "private" in shown, shown
        assert [r[0] for r in env.runtime()] == ["lab-notes"]

    # persisted: a fresh App on the same database sees the source added from Discord
    config = load_config(env.config_path, env={})
    async with App.open(config, clock=Clock()) as app:
        source = app.config.source("lab-notes")
        assert source is not None and source.url == f"{site.base}/new.xml" and source.channels == (LAB_A,)
        assert app.storage.source_state("lab-notes").entry_count == 4


# -- 3. pause / resume / edit / remove, scoped to the guild -------------------------------------------

async def test_manage_sources_only_in_their_own_guild(tmp_path: Path, site: Site) -> None:
    async with running_bot(tmp_path, site) as env:
        assert await env.autocomplete("sources pause") == [{"name": "Alpha Feed", "value": "alpha"}]
        assert await env.autocomplete("sources remove", guild=GUILD_B) == [
            {"name": "Beta Elsewhere", "value": "beta"}]
        assert await env.autocomplete("sources edit", "alp", guild=GUILD_B) == []

        # a guild-B admin cannot touch guild A's source, by id or by name
        for verb, target in (("pause", "alpha"), ("remove", "Alpha Feed"), ("edit", "alpha")):
            options = {"source": target, **({"name": "Hijacked"} if verb == "edit" else {})}
            pushed, responses = await env.command(f"sources {verb}", options, guild=GUILD_B)
            assert ephemeral(pushed) and "no source called" in text_of(responses), text_of(responses)
        assert env.runtime() == [] and env.sources()["alpha"] == ("Alpha Feed", True, (NEWS_A,))

        pushed, responses = await env.command("sources pause", {"source": "alpha"})
        assert ephemeral(pushed) and "Paused **Alpha Feed**" in text_of(responses)
        assert env.sources()["alpha"][1] is False
        await env.poll()
        assert env.site_hits("/alpha.xml") == 0 and env.site_hits("/beta.xml") == 1  # paused: not fetched
        assert env.fake.messages_in(NEWS_A) == []

        _, responses = await env.command("sources resume", {"source": "Alpha Feed"})
        assert "Resumed **Alpha Feed**" in text_of(responses)
        assert env.sources()["alpha"][1] is True
        await env.poll()
        [message] = await env.fake.wait_for_messages(NEWS_A, 1)
        assert titles(message) == ["Alpha LLM second", "Alpha LLM third"]

        _, responses = await env.command("sources edit", {"source": "alpha", "name": "Alpha Renamed",
                                                          "interval": "1h", "topics": "llm", "channel": LAB_A})
        assert "Updated **Alpha Renamed**" in text_of(responses), text_of(responses)
        alpha = env.app.config.source("alpha")
        assert alpha is not None and alpha.name == "Alpha Renamed" and alpha.interval == timedelta(hours=1)
        assert alpha.topics == ("llm",) and alpha.channels == (LAB_A,)
        assert await env.autocomplete("sources edit") == [{"name": "Alpha Renamed", "value": "alpha"}]
        _, responses = await env.command("sources edit", {"source": "alpha", "interval": "5s"})
        assert "at least 1 minute" in text_of(responses)
        _, responses = await env.command("sources edit", {"source": "alpha"})
        assert "nothing to change" in text_of(responses)

        site.bodies["/alpha.xml"] = rss([*ALPHA, ("a4", "Alpha moved item")])
        await env.poll()
        [moved] = await env.fake.wait_for_messages(LAB_A, 1)
        assert titles(moved) == ["Alpha moved item"] and moved["embeds"][0]["author"]["name"] == "Alpha Renamed"
        assert len(env.fake.messages_in(NEWS_A)) == 1  # the old channel no longer gets it

        _, responses = await env.command("sources remove", {"source": "alpha"})
        assert "Removed" in text_of(responses)
        assert "alpha" not in env.sources()
        assert await env.autocomplete("sources pause") == []
        _, responses = await env.command("sources resume", {"source": "alpha"})
        assert "no source called" in text_of(responses)
        assert env.sources() == {"beta": ("Beta Elsewhere", True, (OTHER_B,))}  # guild B's source untouched

    # the changes outlive the process (and win over the YAML, which still lists alpha)
    async with App.open(load_config(env.config_path, env={}), clock=Clock()) as app:
        assert [s.id for s in app.config.sources] == ["beta"]


# -- 4. /digest preview and /digest now ----------------------------------------------------------------

async def test_digest_preview_is_private_and_now_posts_once(tmp_path: Path, site: Site) -> None:
    async with running_bot(tmp_path, site) as env:
        await env.poll()  # alpha: newest 2 posted to #news and held for the daily digest
        await env.fake.wait_for_messages(NEWS_A, 1)
        env.clock.now += timedelta(hours=2)

        pushed, responses = await env.command("digest preview", {})
        shown = text_of(responses)
        assert ephemeral(pushed)
        assert "Preview of `daily`" in shown and "nothing was posted" in shown
        assert "DAILY DIGEST" in shown
        assert "Alpha LLM second" in shown and "Alpha LLM third" in shown and "Alpha first" not in shown
        await asyncio.sleep(0.3)
        await env.settle()
        assert env.fake.messages_in(DIGEST_A) == []
        assert len(env.app.storage.digest_entries("daily")) == 2  # a preview consumes nothing

        pushed, responses = await env.command("digest now", {})
        assert ephemeral(pushed)
        queued = re.search(r"Queued the `daily` digest: 2 entries in (\d+) message\(s\)", text_of(responses))
        assert queued is not None, text_of(responses)
        count = int(queued.group(1))
        assert count >= 1
        digest = await env.fake.wait_for_messages(DIGEST_A, count)
        await env.settle()
        assert len(env.fake.messages_in(DIGEST_A)) == count
        posted = text_of([{"data": m} for m in digest])
        assert "DAILY DIGEST" in posted and "Alpha LLM second" in posted and "Alpha LLM third" in posted
        assert all(m["allowed_mentions"] == {"parse": []} for m in digest)

        env.clock.now += timedelta(minutes=5)
        _, responses = await env.command("digest now", {})
        assert "nothing new since the last digest; nothing posted" in text_of(responses)
        _, responses = await env.command("digest preview", {"route": "daily"})
        assert "nothing has arrived since the last digest" in text_of(responses)
        await asyncio.sleep(0.3)
        await env.settle()
        assert len(env.fake.messages_in(DIGEST_A)) == count  # nothing new: nothing posted

        # guild B has no digest route, and cannot name guild A's
        _, responses = await env.command("digest now", {"route": "daily"}, guild=GUILD_B)
        assert "no digest route" in text_of(responses)
        _, responses = await env.command("digest preview", {}, guild=GUILD_B)
        assert "no digest route" in text_of(responses)
        assert len(env.fake.messages_in(DIGEST_A)) == count


# -- 5. OPML export and import ------------------------------------------------------------------------

async def test_export_and_import_opml(tmp_path: Path, site: Site) -> None:
    site.bodies["/imp1.xml"] = rss([("i1", "Imported one")])
    site.bodies["/imp2.xml"] = rss([("j1", "Imported two")])
    async with running_bot(tmp_path, site) as env:
        pushed, responses = await env.command("sources export", {})
        assert ephemeral(pushed)
        [opml_file] = [f for r in responses for f in r.get("files", [])]
        assert opml_file["filename"] == "digestbot-sources.opml"
        exported = parse_opml(opml_file["data"], where="export")
        assert [(f.url, f.title) for f in exported] == [(f"{site.base}/alpha.xml", "Alpha Feed")]
        assert b"beta.xml" not in opml_file["data"]

        upload = export_opml([
            OpmlFeed(url=f"{site.base}/imp1.xml", title="Imported One", html_url=None, categories=("llm",)),
            OpmlFeed(url=f"{site.base}/imp2.xml", title="Imported Two", html_url=None, categories=("cooking",)),
            OpmlFeed(url=f"{site.base}/alpha.xml", title="Alpha again", html_url=None, categories=()),
        ])
        attachment = env.fake.add_attachment("feeds.opml", upload, "text/x-opml")

        # not without Manage Server
        pushed, responses = await env.command("sources import", {"file": attachment["id"], "channel": LAB_A},
                                              permissions=MEMBER)
        assert "Manage Server" in text_of(responses) and env.runtime() == []

        pushed, responses = await env.command("sources import", {"file": attachment["id"], "channel": LAB_A})
        shown = text_of(responses)
        assert ephemeral(pushed)
        assert f"Added 2 feeds → <#{LAB_A}>; skipped 1." in shown, shown
        assert "already a source" in shown
        added = {s.id: s for s in env.app.config.sources if s.origin == "discord"}
        assert {s.name for s in added.values()} == {"Imported One", "Imported Two"}
        assert all(s.channels == (LAB_A,) and s.guild_id == GUILD_A for s in added.values())
        topics = {s.name: s.topics for s in added.values()}
        assert topics == {"Imported One": ("llm",), "Imported Two": ()}  # unknown categories are not topics

        # they belong to guild A: exported there, not in guild B
        _, responses = await env.command("sources export", {})
        urls = {f.url for r in responses for file in r.get("files", []) for f in parse_opml(file["data"], where="x")}
        assert urls == {f"{site.base}/alpha.xml", f"{site.base}/imp1.xml", f"{site.base}/imp2.xml"}
        _, responses = await env.command("sources export", {}, guild=GUILD_B)
        urls = {f.url for r in responses for file in r.get("files", []) for f in parse_opml(file["data"], where="x")}
        assert urls == {f"{site.base}/beta.xml"}

        await env.poll()
        posted = {t for m in await env.fake.wait_for_messages(LAB_A, 2) for t in titles(m)}
        assert posted == {"Imported one", "Imported two"}


# -- 6. the digest fires by itself at its cron time, into Discord -------------------------------------

async def test_scheduled_digest_fires_at_its_cron_time_into_discord(tmp_path: Path, site: Site) -> None:
    async with running_bot(tmp_path, site) as env:
        await env.poll()  # held: the newest 2 alpha entries; the clock says 28 Nov 12:00 UTC
        env.clock.now = datetime(2026, 11, 29, 8, 59, 59, tzinfo=UTC)
        assert await env.app.digests.run_due() == []
        env.clock.now = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)  # "0 9 * * *" in UTC
        runs = await env.app.digests.run_due()
        assert [(r.route_id, r.entries) for r in runs] == [("daily", 2)]
        env.client.wake_outbox()
        posted = await env.fake.wait_for_messages(DIGEST_A, runs[0].messages)
        await env.settle()
        text = text_of([{"data": m} for m in posted])
        assert "DAILY DIGEST" in text and "29 Nov 09:00 (UTC)" in text
        for message in posted:
            embeds = message.get("embeds", [])
            assert len(embeds) <= 10 and len(message.get("content") or "") <= 2000
            assert sum(len(e.get("title", "")) + len(e.get("description", "")) for e in embeds) <= 6000
        env.clock.now += timedelta(hours=23)  # 08:00 the next day: not due yet
        assert await env.app.digests.run_due() == []
        assert len(env.fake.messages_in(DIGEST_A)) == len(posted)
