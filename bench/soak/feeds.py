"""Generated feeds for the soak, and the local server that serves them with churn and faults.

Every feed's content is a pure function of (seed, feed id, simulated time): entry ``seq`` of feed
``i`` is published at ``EPOCH + phase + (seq - SEQ0) * period`` and the feed shows the newest
``window`` entries, so new entries appear at per-feed rates and old ones fall off. Some feeds
re-date every entry on each fetch, a few change every guid on each fetch, some offer ETag, some
only Last-Modified, some neither (always 200).

The server runs in its own process (``python -m bench.soak.feeds --seed S --sources N``, prints its
base URL). The bench moves the simulated time with ``POST /_clock?round=R&t=SECONDS``; faults are
drawn per request from ``Random(seed, feed, round, request number)``, so a run is repeatable.
``GET /_truth`` returns the ground truth: which entries each feed served in a complete 200
answer, every fault injected by kind, and requests made to a feed after it answered 410.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from aiohttp import web

EPOCH = datetime(2026, 1, 5, tzinfo=UTC)
SEQ0 = 1000
LINK_BASE = "https://soak.example"
PERIODS_MIN = (20, 45, 90, 180, 360, 720, 1440)
FORMATS = ("rss", "atom", "json")
MAX_BODY = 1024 * 1024
"""The bot is configured with this ``fetch.max_body``; oversized answers exceed it."""

EN_TITLES = (
    "Scaling laws for {x} language models", "FlashAttention-{n}: faster attention with better parallelism",
    "A survey of hallucination in large language models", "Diffusion models beat GANs on {x} synthesis",
    "Direct preference optimization for {x} alignment", "Mixture of experts at {n}B parameters",
    "KV cache compression for long-context inference", "Quantization to INT4 without accuracy loss",
    "Agents that use tools: a benchmark of function calling", "Vision transformers for object detection",
    "Multimodal pretraining on image-text pairs", "RLHF with a learned reward model for {x} tasks",
)
ZH_TITLES = (
    "大模型预训练的{x}数据配比", "FlashAttention 原理与第{n}版改进", "大语言模型幻觉问题综述",
    "扩散模型在{x}生成中的应用", "基于人类反馈的价值对齐方法", "混合专家模型的{n}个训练技巧",
    "长上下文推理中的 KV cache 压缩", "INT4 量化部署实践", "智能体的工具调用评测",
    "视觉 Transformer 目标检测", "多模态图文预训练", "奖励模型与偏好优化",
)
EN_WORDS = ("code", "math", "speech", "video", "robotics", "medical", "multilingual", "small", "sparse")
ZH_WORDS = ("代码", "数学", "语音", "视频", "机器人", "医疗", "多语言", "小型", "稀疏")
SUMMARY_EN = ("We study {t}. Experiments on standard benchmarks show consistent gains; code and weights are "
              "released. The method needs no extra data and trains in a day on eight GPUs. ")
SUMMARY_ZH = ("本文研究{t}。在多个基准上的实验表明该方法稳定有效，代码与权重均已开源。该方法不需要额外数据，"
              "在八张 GPU 上一天即可完成训练。")


@dataclass(frozen=True, slots=True)
class FeedSpec:
    id: int
    fmt: str
    period: int
    """Seconds between new entries."""
    phase: int
    window: int
    redate: bool
    """Every fetch re-dates every entry (dates move, order kept)."""
    guid_churn: bool
    """Every fetch changes every guid (links and titles stay)."""
    validators: str
    """'etag', 'lastmod' or 'none'."""
    lang: str
    """'en', 'zh' or 'mixed'."""


def feed_spec(seed: int, i: int) -> FeedSpec:
    rng = random.Random(f"{seed}:spec:{i}")
    period = rng.choice(PERIODS_MIN) * 60
    return FeedSpec(
        id=i, fmt=FORMATS[i % 3], period=period, phase=rng.randrange(period), window=rng.randint(8, 25),
        redate=rng.random() < 0.05, guid_churn=rng.random() < 0.03,
        validators=rng.choices(("etag", "lastmod", "none"), weights=(75, 15, 10))[0],
        lang=rng.choice(("en", "zh", "mixed")))


def latest_seq(spec: FeedSpec, t: float) -> int:
    """The newest entry published at simulated second ``t`` (seconds since EPOCH)."""
    return SEQ0 + int((t - spec.phase) // spec.period)


def published(spec: FeedSpec, seq: int) -> datetime:
    return EPOCH + timedelta(seconds=spec.phase + (seq - SEQ0) * spec.period)


def entry_link(feed: int, seq: int) -> str:
    return f"{LINK_BASE}/f{feed}/e{seq}.html"


def entry_text(spec: FeedSpec, seq: int) -> tuple[str, str]:
    rng = random.Random(f"{spec.id}:{seq}")
    lang = spec.lang if spec.lang != "mixed" else rng.choice(("en", "zh"))
    if lang == "zh":
        title = rng.choice(ZH_TITLES).format(x=rng.choice(ZH_WORDS), n=rng.randint(2, 9))
        summary = SUMMARY_ZH.format(t=title) * rng.randint(1, 3)
    else:
        title = rng.choice(EN_TITLES).format(x=rng.choice(EN_WORDS), n=rng.randint(2, 64))
        summary = SUMMARY_EN.format(t=title.lower()) * rng.randint(1, 3)
    return f"{title} · #{seq}", summary


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None
    seqs: tuple[int, ...]


def render(spec: FeedSpec, t: float, fetch_no: int) -> Rendered:
    """The feed as served at simulated second ``t`` (``fetch_no`` drives guid churn)."""
    newest = latest_seq(spec, t)
    seqs = tuple(range(newest, newest - spec.window, -1))  # newest first, as feeds list
    now = EPOCH + timedelta(seconds=t)
    items = []
    for pos, seq in enumerate(seqs):
        title, summary = entry_text(spec, seq)
        date = now - timedelta(minutes=pos) if spec.redate else published(spec, seq)
        guid = f"soak:f{spec.id}:e{seq}" + (f":v{fetch_no}" if spec.guid_churn else "")
        items.append((title, summary, entry_link(spec.id, seq), guid, date))
    name = f"Soak feed {spec.id} ({spec.lang})"
    home = f"{LINK_BASE}/f{spec.id}/"
    if spec.fmt == "json":
        doc = {"version": "https://jsonfeed.org/version/1.1", "title": name, "home_page_url": home,
               "items": [{"id": g, "url": link, "title": title, "content_text": summary,
                          "date_published": date.isoformat()} for title, summary, link, g, date in items]}
        body = json.dumps(doc, ensure_ascii=False).encode()
        ctype = "application/feed+json"
    elif spec.fmt == "atom":
        parts = ['<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">',
                 f"<title>{escape(name)}</title><id>{home}</id><link href=\"{home}\"/>",
                 f"<updated>{(items[0][4] if items else now).isoformat()}</updated>"]
        for title, summary, link, guid, date in items:
            parts.append(f"<entry><title>{escape(title)}</title><link href=\"{link}\"/><id>{guid}</id>"
                         f"<published>{date.isoformat()}</published><updated>{date.isoformat()}</updated>"
                         f"<summary>{escape(summary)}</summary></entry>")
        parts.append("</feed>")
        body = "\n".join(parts).encode()
        ctype = "application/atom+xml"
    else:
        parts = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
                 f"<title>{escape(name)}</title><link>{home}</link><description>soak</description>"]
        for title, summary, link, guid, date in items:
            parts.append(f"<item><title>{escape(title)}</title><link>{link}</link>"
                         f"<guid isPermaLink=\"false\">{guid}</guid><pubDate>{format_datetime(date)}</pubDate>"
                         f"<description>{escape(summary)}</description></item>")
        parts.append("</channel></rss>")
        body = "\n".join(parts).encode()
        ctype = "application/rss+xml"
    etag = last_modified = None
    if spec.validators == "etag":
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
    elif spec.validators == "lastmod" and not spec.redate and not spec.guid_churn:
        last_modified = format_datetime(published(spec, newest), usegmt=True)
    return Rendered(body, ctype, etag, last_modified, seqs)


# Faults: kind -> probability per request (timeouts only in every TIMEOUT_EVERY-th round, so the
# seconds they cost overlap instead of adding up).
FAULTS = (("http_5xx", 0.015), ("http_429", 0.004), ("http_404", 0.004), ("garbage", 0.004),
          ("truncated", 0.004), ("oversized", 0.002), ("slow", 0.01), ("timeout", 0.015))
TIMEOUT_EVERY = 6
GONE_EVERY = 250
"""Feeds with ``id % GONE_EVERY == 7`` answer 410 Gone from ``--gone-at`` on."""


class FeedServer:
    def __init__(self, seed: int, sources: int, *, gone_at: float, fault_scale: float, hang: float,
                 slow: float) -> None:
        self.seed = seed
        self.specs = [feed_spec(seed, i) for i in range(sources)]
        self.gone_at = gone_at
        self.fault_scale = fault_scale
        self.hang = hang
        self.slow = slow
        self.round = 0
        self.t = 0.0
        self.served: dict[int, set[int]] = defaultdict(set)
        self.faults: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.requests = 0
        self.after_gone: Counter[int] = Counter()
        self.fetch_no: Counter[int] = Counter()
        self.round_requests: Counter[int] = Counter()
        self.cache: dict[int, tuple[int, Rendered]] = {}
        self.oversized = b"<rss><channel>" + b"<item><title>x</title></item>" * (MAX_BODY // 28 + 1000)

    def feed_for(self, spec: FeedSpec) -> Rendered:
        self.fetch_no[spec.id] += 1
        if spec.redate or spec.guid_churn:
            return render(spec, self.t, self.fetch_no[spec.id])
        newest = latest_seq(spec, self.t)
        cached = self.cache.get(spec.id)
        if cached is None or cached[0] != newest:
            cached = (newest, render(spec, self.t, 0))
            self.cache[spec.id] = cached
        return cached[1]

    def draw_fault(self, feed: int) -> tuple[str | None, random.Random]:
        k = self.round_requests[feed]
        self.round_requests[feed] += 1
        rng = random.Random(f"{self.seed}:{feed}:{self.round}:{k}")
        u = rng.random()
        acc = 0.0
        for kind, p in FAULTS:
            if kind == "timeout" and self.round % TIMEOUT_EVERY:
                continue
            acc += p * self.fault_scale
            if u < acc:
                return kind, rng
        return None, rng

    async def handle_feed(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        try:
            feed = int(request.match_info["feed"])
            spec = self.specs[feed]
        except (ValueError, IndexError):
            raise web.HTTPNotFound() from None
        if feed % GONE_EVERY == 7 and self.t >= self.gone_at:
            if self.faults[f"gone_{feed}"]:
                self.after_gone[feed] += 1
            else:
                self.faults["http_410"] += 1
            self.faults[f"gone_{feed}"] = 1
            self.statuses[410] += 1
            return web.Response(status=410, text="gone")
        kind, rng = self.draw_fault(feed)
        if kind is not None:
            self.faults[kind] += 1
        if kind == "http_5xx":
            status = rng.choice((500, 502, 503))
            self.statuses[status] += 1
            return web.Response(status=status, text="upstream trouble")
        if kind == "http_429":
            self.statuses[429] += 1
            return web.Response(status=429, headers={"Retry-After": str(rng.choice((60, 300, 900, 1800)))})
        if kind == "http_404":
            self.statuses[404] += 1
            return web.Response(status=404, text="not found")
        if kind == "timeout":
            await asyncio.sleep(self.hang)
            self.statuses[0] += 1
            return web.Response(status=504, text="too late")
        if kind == "oversized":
            self.statuses[200] += 1
            if rng.random() < 0.5:  # announced with Content-Length
                return web.Response(body=self.oversized, content_type="application/rss+xml")
            response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(self.oversized), 256 * 1024):
                await response.write(self.oversized[start:start + 256 * 1024])
            await response.write_eof()
            return response
        if kind == "garbage":
            self.statuses[200] += 1
            junk = rng.choice((b"<html><body><h1>Maintenance</h1></body></html>", rng.randbytes(2048),
                               b'{"error": "rate limited"', b"\x00\x01\x02 not a feed"))
            return web.Response(body=junk, content_type="application/xml")
        if kind == "slow":
            await asyncio.sleep(self.slow * rng.uniform(0.5, 1.0))
        feed_doc = self.feed_for(spec)
        headers = {"Content-Type": feed_doc.content_type}
        if feed_doc.etag:
            headers["ETag"] = feed_doc.etag
        if feed_doc.last_modified:
            headers["Last-Modified"] = feed_doc.last_modified
        if kind == "truncated":
            self.statuses[200] += 1
            cut = rng.randrange(len(feed_doc.body) // 4, len(feed_doc.body) - 10)
            return web.Response(body=feed_doc.body[:cut], headers={"Content-Type": feed_doc.content_type})
        if (feed_doc.etag and request.headers.get("If-None-Match") == feed_doc.etag) or (
                not feed_doc.etag and feed_doc.last_modified
                and request.headers.get("If-Modified-Since") == feed_doc.last_modified):
            self.statuses[304] += 1
            return web.Response(status=304, headers=headers)
        self.statuses[200] += 1
        self.served[feed].update(feed_doc.seqs)
        return web.Response(body=feed_doc.body, headers=headers)

    async def handle_clock(self, request: web.Request) -> web.Response:
        self.round = int(request.query["round"])
        self.t = float(request.query["t"])
        self.round_requests.clear()
        return web.Response(text="ok")

    async def handle_truth(self, request: web.Request) -> web.Response:
        faults = {k: v for k, v in self.faults.items() if not k.startswith("gone_")}
        gone = sorted(int(k.removeprefix("gone_")) for k in self.faults if k.startswith("gone_"))
        return web.json_response({
            "served": {str(k): sorted(v) for k, v in self.served.items()}, "faults": faults, "gone": gone,
            "after_gone": {str(k): v for k, v in self.after_gone.items()}, "requests": self.requests,
            "statuses": {str(k): v for k, v in self.statuses.items()}})


async def serve(args: argparse.Namespace) -> None:
    server = FeedServer(args.seed, args.sources, gone_at=args.gone_at, fault_scale=args.fault_scale,
                        hang=args.hang, slow=args.slow)
    app = web.Application()
    app.router.add_get("/f/{feed}", server.handle_feed)
    app.router.add_post("/_clock", server.handle_clock)
    app.router.add_get("/_truth", server.handle_truth)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--gone-at", type=float, default=12 * 3600, help="simulated second feeds start to 410")
    parser.add_argument("--fault-scale", type=float, default=1.0)
    parser.add_argument("--hang", type=float, default=2.5, help="wall seconds a 'timeout' answer hangs")
    parser.add_argument("--slow", type=float, default=0.4, help="wall seconds a 'slow' answer takes at most")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
