"""The whole loop with real local servers: a fake Discord (REST + zlib-stream gateway), a local feed
server whose feeds change, a real SQLite file, and the bot started the way a user starts it
(``python -m bot run --config FILE`` with ``DISCORD_TOKEN`` in the environment)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot_process import BotProcess
from tests.discord_fake import DiscordFake
from tests.local_feeds import Site, rss

GUILD_A, GUILD_B = 810000000000000001, 820000000000000001
NEWS, PAPERS, OTHER = 811000000000000001, 811000000000000002, 821000000000000001
TOKEN = "fake-token-e2e-0123456789"

CHINESE = [("zh1", "大模型幻觉：成因与缓解"), ("zh2", "FlashAttention 原理"), ("zh3", "DPO 直接偏好优化")]
ENGLISH = [("en1", "Diffusion Models from SDE"), ("en2", "MHA, MQA and GQA explained"), ("en3", "The Llama 3 Herd")]


def write_config(tmp_path: Path, fake: DiscordFake, site: Site) -> Path:
    path = tmp_path / "digestbot.yaml"
    path.write_text(f"""
discord:
  api_base: {fake.api_base}
  gateway_url: {fake.gateway_url}
  guild_ids: [{GUILD_A}, {GUILD_B}]
storage: {{path: {tmp_path / 'data' / 'bot.sqlite3'}}}
health: {{enabled: false}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
defaults: {{backfill: 2, interval: 30s, jitter: 0s, header: "📡 LATEST UPDATES"}}
topics:
  hallucination: {{label: "Hallucination 幻觉", keywords: [hallucination, 幻觉]}}
  attention: {{keywords: [attention, gqa, 注意力]}}
sources:
  - {{name: 读书会 Notes, id: notes, url: "{site.base}/zh.xml", channels: [{NEWS}]}}
  - {{name: Paper Picks, id: papers, url: "{site.base}/en.xml", channels: [{NEWS}, {PAPERS}]}}
  - {{name: Other Guild Feed, id: other, url: "{site.base}/other.xml", channels: [{OTHER}]}}
""")
    return path


@pytest.fixture
async def fake() -> AsyncIterator[DiscordFake]:
    async with DiscordFake() as server:
        server.add_guild(GUILD_A, [NEWS, PAPERS])
        server.add_guild(GUILD_B, [OTHER])
        yield server


def titles(message: dict) -> list[str]:
    return [e["title"] for e in message["embeds"]]


@pytest.mark.timeout(120)
async def test_whole_loop(tmp_path: Path, fake: DiscordFake, site: Site) -> None:
    site.bodies["/zh.xml"] = rss(CHINESE)
    site.bodies["/en.xml"] = rss(ENGLISH)
    site.bodies["/other.xml"] = rss([("o1", "Hallucination in the other guild")])
    fake.rate_limit_next(rf"/channels/{PAPERS}/messages", retry_after=1.0)  # the first post there is 429'd
    log = tmp_path / "bot.log"
    bot = BotProcess(write_config(tmp_path, fake, site), log, token=TOKEN)
    await bot.start()
    try:
        await fake.wait_until_identified(timeout=30)
        # first poll of each source: everything stored, only the newest `backfill` (2) posted, oldest first
        news = await fake.wait_for_messages(NEWS, 2, timeout=30)
        papers = await fake.wait_for_messages(PAPERS, 1, timeout=30)
        by_source = {m["embeds"][0]["author"]["name"]: m for m in news}
        assert titles(by_source["读书会 Notes"]) == ["FlashAttention 原理", "DPO 直接偏好优化"]
        assert titles(by_source["Paper Picks"]) == ["MHA, MQA and GQA explained", "The Llama 3 Herd"]
        assert titles(papers[0]) == ["MHA, MQA and GQA explained", "The Llama 3 Herd"]
        assert ("POST", f"/channels/{PAPERS}/messages") in fake.requests  # the 429 was met and waited out
        for message in fake.messages:
            assert message["allowed_mentions"] == {"parse": []}
            assert message["content"] == "📡 LATEST UPDATES"
            assert message["nonce"]
            assert all(e["url"].startswith("https://x.example/") for e in message["embeds"])
        # commands were synced to the configured guilds
        assert {c["name"] for c in fake.commands[str(GUILD_A)]} >= {"search", "latest", "topics", "sources", "digest"}

        # /search from guild A finds the Chinese entry (stored though not posted) and not guild B's
        responses = await fake.push_command("search", {"query": "幻觉"}, guild_id=GUILD_A, channel_id=NEWS)
        shown = _embed_text(responses)
        assert "大模型幻觉：成因与缓解" in shown
        assert "other guild" not in shown
        assert all((r.get("flags") or r.get("data", {}).get("flags") or 0) & 64 for r in responses
                   if r["kind"] != "edit" or "flags" in r)
        responses = await fake.push_command("search", {"query": "GQA"}, guild_id=GUILD_A, channel_id=NEWS)
        assert "MHA, MQA and GQA explained" in _embed_text(responses)
        await fake.wait_for_messages(OTHER, 1, timeout=30)
        for _ in range(20):  # the index catches up right after the poll that stored the entry
            responses = await fake.push_command("search", {"query": "hallucination"}, guild_id=GUILD_B,
                                                channel_id=OTHER)
            if "Hallucination in the other guild" in _embed_text(responses):
                break
            await asyncio.sleep(0.25)
        assert "Hallucination in the other guild" in _embed_text(responses)
        assert "大模型幻觉" not in _embed_text(responses)
        # every read command is scoped to the guild it runs in
        latest = _embed_text(await fake.push_command("latest", {}, guild_id=GUILD_B, channel_id=OTHER))
        assert "Hallucination in the other guild" in latest and "GQA" not in latest
        sources = _embed_text(await fake.push_command("sources list", {}, guild_id=GUILD_B, channel_id=OTHER))
        assert "Other Guild Feed" in sources and "Paper Picks" not in sources and "读书会" not in sources
        assert TOKEN not in sources
        sources = _embed_text(await fake.push_command("sources list", {}, guild_id=GUILD_A, channel_id=NEWS))
        assert "Paper Picks" in sources and "读书会 Notes" in sources and "Other Guild Feed" not in sources
        topics = _embed_text(await fake.push_command("topics", {}, guild_id=GUILD_A, channel_id=NEWS))
        assert "attention" in topics.lower()

        assert await bot.stop() == 0
        before = len(fake.messages)

        # restart after the feeds changed: only the new entries are posted, nothing twice
        site.bodies["/zh.xml"] = rss([*CHINESE, ("zh4", "扩散模型入门"), ("zh5", "注意力机制综述")])
        await bot.start()
        news = await fake.wait_for_messages(NEWS, 3, timeout=30)
        assert titles(news[-1]) == ["扩散模型入门", "注意力机制综述"]
        await asyncio.sleep(2.0)  # give a duplicate every chance to appear
        assert len(fake.messages) == before + 1
        all_titles = [t for m in fake.messages for t in titles(m) if m["channel_id"] == str(NEWS)]
        assert len(all_titles) == len(set(all_titles))
        assert await bot.stop() == 0
        logged = log.read_text(errors="replace")
        assert "shutting down" in logged  # the log was written at INFO level...
        assert TOKEN not in logged  # ...and never shows the token
    finally:
        bot.ensure_dead()
        print(log.read_text(errors="replace")[-4000:])  # shown by pytest when the test fails


def _embed_text(responses: list[dict]) -> str:
    parts: list[str] = []
    for response in responses:
        data = response.get("data", response)
        for embed in data.get("embeds") or []:
            parts.append(embed.get("title") or "")
            parts.append(embed.get("description") or "")
            parts.extend(f"{f.get('name')} {f.get('value')}" for f in embed.get("fields") or [])
        parts.append(data.get("content") or "")
    return "\n".join(parts)
