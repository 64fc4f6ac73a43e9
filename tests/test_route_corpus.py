"""Routes over real-world feeds (copies from ../shared/corpus in tests/data/feeds, see LICENSES):
topic routes, keyword/regex filters and templates send exactly the entries they should, checked
entry by entry against an independent reading of the stored entries."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from bot.app import App
from bot.config import load_config
from bot.format import CONTENT_LIMIT, MessageSpec
from bot.store.sqlite import SQLiteStorage
from tests.local_feeds import Site

DATA = Path(__file__).parent / "data" / "feeds"
FEEDS = {"aibase": "aibase_daily.xml", "deepseek": "deepseek_news.xml", "zh-blog": "705749c3b1bd02d8.xml",
         "so": "stackoverflow.xml", "news-it": "rss_2.0_ilmessaggero.xml"}
TOPICS = Path(__file__).resolve().parents[1] / "config" / "topics.yaml"


class Clock:
    def __call__(self) -> datetime:
        return datetime(2026, 11, 28, 12, tzinfo=UTC)


async def test_corpus_feeds_are_routed_exactly_as_configured(tmp_path: Path, site: Site) -> None:
    for path in FEEDS.values():
        site.bodies[f"/{path}"] = (DATA / path).read_bytes()
    (tmp_path / "topics.yaml").write_text(TOPICS.read_text(encoding="utf-8"), encoding="utf-8")
    sources = "\n".join(f'  - {{name: {sid}, id: {sid}, url: "{site.base}/{path}"}}' for sid, path in FEEDS.items())
    config_path = tmp_path / "c.yaml"
    config_path.write_text(f"""
storage: {{path: {tmp_path / 'db.sqlite3'}}}
fetch: {{allow_private_networks: [127.0.0.1/32]}}
health: {{enabled: false}}
defaults: {{backfill: 100}}
include: [topics.yaml]
sources:
{sources}
routes:
  - {{id: multimodal, channel: 1, topics: [multimodal]}}
  - id: zh-models
    channel: 2
    include: {{keywords: [模型], fields: [title]}}
    exclude: {{regex: ['(?i)deepseek'], fields: [title]}}
  - id: text
    channel: 3
    sources: [so, news-it]
    template: "• {{title}} <{{link}}> ({{source}}, {{date}})"
""", encoding="utf-8")
    config = load_config(config_path, env={})
    async with App.open(config, clock=Clock()) as app:
        outcomes = await app.poll_all(force=True)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]

    storage = SQLiteStorage(config.storage.path)
    try:
        entries = storage.entries_after(0, 100_000)
        assert len(entries) > 45
        by_route: dict[str, set[int]] = {}
        texts: list[MessageSpec] = []
        for message in storage.pending_messages(now=datetime(2100, 1, 1, tzinfo=UTC), limit=10_000):
            by_route.setdefault(message.route_id or "", set()).update(message.entry_ids)
            if message.route_id == "text":
                texts.append(MessageSpec.from_json(message.payload or ""))

        multimodal = {e.id for e in entries if "multimodal" in e.topics}
        assert multimodal and by_route["multimodal"] == multimodal

        zh = {e.id for e in entries if "模型" in e.title and not re.search("(?i)deepseek", e.title)}
        assert zh and by_route["zh-models"] == zh
        assert any("DeepSeek" in e.title and "模型" in e.title for e in entries)  # the exclude had work to do

        text_sources = {e.id for e in entries if e.source_id in ("so", "news-it")}
        assert by_route["text"] == text_sources
        assert all(not m.embeds and len(m.content or "") <= CONTENT_LIMIT for m in texts)
        links = "\n".join(m.content or "" for m in texts)
        for entry in entries:
            if entry.source_id in ("so", "news-it") and entry.link:
                assert entry.link.replace("(", "%28").replace(")", "%29") in links
    finally:
        storage.close()
