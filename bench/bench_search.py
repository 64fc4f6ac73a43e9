"""Search benchmark: synthetic mixed Chinese/English entries, index build and /search latency.

    python bench/bench_search.py --entries 100000
    python bench/bench_search.py --entries 1000000 [--catalog]

Entries (~300 characters, Zipf-distributed vocabulary: 5,000 English-like words headed by real ML
words, 2,000 Chinese terms headed by real ML terms) are generated, never committed. Reports the
tokenizer's single-core speed, build time (tokenize in N processes, overlapped with tantivy
indexing), index size, peak memory, and p50/p99 of ``SearchIndex.search`` over 1,000 queries with
and without topic/source/date filters. ``--catalog`` also stores the entries in SQLite and times
the whole /search path (index + loading the page's entries + snippets, ``Catalog.search``).
``--no-cache`` turns off the index's page cache (repeated queries then cost a full search each).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.ingest import tokenize_for_index
from bot.models import Entry, SearchRequest
from bot.search import index as index_module
from bot.search.index import SearchIndex
from bot.search.tokenize import tokenize

EN = ("model models language large training transformer transformers attention layer layers token tokens "
      "inference latency throughput memory cache kv quantization int4 int8 gptq awq diffusion score noise "
      "sampling sampler denoising image images video vision detection segmentation benchmark dataset data "
      "alignment preference reward policy rlhf dpo ppo reasoning chain thought agent agents tool tools "
      "retrieval rag embedding embeddings vector search context window long sparse mixture experts moe "
      "routing gate gating parameter parameters scaling law compute gpu gpus kernel flash paged serving "
      "batch batching speculative decoding draft verifier hallucination factuality evaluation eval "
      "multimodal audio speech text code coding math instruction tuning finetuning lora adapter pretraining "
      "open weights release paper survey method results state art performance efficient fast small").split()
ZH = ("大模型 语言模型 注意力 多头注意力 扩散模型 目标检测 图像分割 偏好优化 强化学习 奖励模型 幻觉 事实性 "
      "推理 量化 稀疏 混合专家 智能体 工具调用 检索增强 向量 上下文 长文本 预训练 微调 指令 对齐 评测 基准 "
      "数据集 多模态 视觉 语音 代码 数学 蒸馏 剪枝 缓存 吞吐 延迟 显存 算子 并行 分布式 训练 部署 开源").split()
_SYLLABLES = ["ka", "lo", "mi", "ne", "ra", "tor", "gen", "sta", "pro", "lin", "ver", "tri", "dex", "fla",
              "mor", "quan", "ti", "za", "ex", "on", "al", "ic", "er", "ing", "ion", "ent"]
_HANZI = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
          "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性"
          "好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第"
          "向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管"
          "特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处")


def _vocabulary(rng: random.Random) -> tuple[list[str], list[str]]:
    """~5,000 English-like and ~2,000 Chinese terms: the ML words first (most frequent under Zipf),
    then generated ones, so posting lists have a realistic long tail."""
    english = list(dict.fromkeys(EN + ["".join(rng.choices(_SYLLABLES, k=rng.randint(2, 4)))
                                      for _ in range(6000)]))[:5000]
    chinese = list(dict.fromkeys(ZH + ["".join(rng.choices(_HANZI, k=rng.randint(2, 4)))
                                      for _ in range(2500)]))[:2000]
    return english, chinese


TOPICS = ["llm", "attention", "diffusion", "alignment", "hallucination", "vision", "inference", "moe",
          "quantization", "agents", "multimodal"]
SOURCES = [f"source-{i:02d}" for i in range(40)]


def zipf_choice(rng: random.Random, words: list[str], cum_weights: list[float], k: int) -> list[str]:
    return rng.choices(words, cum_weights=cum_weights, k=k)


def zipf_weights(n: int) -> list[float]:
    return list(itertools.accumulate(1 / (i + 1) for i in range(n)))


def generate(n: int, seed: int = 7) -> list[Entry]:
    rng = random.Random(seed)
    EN, ZH = _vocabulary(random.Random(1))
    en_w = zipf_weights(len(EN))
    zh_w = zipf_weights(len(ZH))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    entries = []
    for i in range(n):
        chinese = rng.random() < 0.5
        if chinese:
            title = "".join(zipf_choice(rng, ZH, zh_w, 4)) + " " + " ".join(zipf_choice(rng, EN, en_w, 1))
            body = "，".join("".join(zipf_choice(rng, ZH, zh_w, 6)) + " " + zipf_choice(rng, EN, en_w, 1)[0]
                            for _ in range(9))[:300]
        else:
            title = " ".join(zipf_choice(rng, EN, en_w, 7)).capitalize()
            body = " ".join(zipf_choice(rng, EN, en_w, 60))[:300]
        entries.append(Entry(id=i + 1, source_id=rng.choice(SOURCES), key=str(i), title=title, link=None,
                             summary=body, published=start + timedelta(minutes=rng.randrange(0, 2 * 365 * 1440)),
                             topics=tuple(rng.sample(TOPICS, rng.randint(0, 3)))))
    return entries


def queries(rng: random.Random, count: int) -> list[str]:
    EN, ZH = _vocabulary(random.Random(1))
    en_w = zipf_weights(len(EN))
    zh_w = zipf_weights(len(ZH))
    out = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.4:
            out.append(" ".join(zipf_choice(rng, EN, en_w, rng.randint(1, 3))))
        elif kind < 0.8:
            out.append(zipf_choice(rng, ZH, zh_w, 1)[0])
        else:
            out.append(zipf_choice(rng, ZH, zh_w, 1)[0] + " " + zipf_choice(rng, EN, en_w, 1)[0])
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return max(own, children)


def tokenizer_speed(entries: list[Entry]) -> tuple[float, float]:
    """(entries/s, tokens/s) on one core, over title + summary."""
    texts = [(e.title, e.summary) for e in entries]
    t0 = time.perf_counter()
    count = sum(len(tokenize(title)) + len(tokenize(summary)) for title, summary in texts)
    seconds = time.perf_counter() - t0
    return len(texts) / seconds, count / seconds


def build(entries: list[Entry], index: SearchIndex, processes: int, batch: int = 10_000) -> None:
    """Workers tokenize batch k+1.. while this process hands batch k to tantivy's writer threads."""
    chunks = [entries[i:i + batch] for i in range(0, len(entries), batch)]
    texts = ([(e.title, e.summary) for e in chunk] for chunk in chunks)
    if processes > 0:
        with ProcessPoolExecutor(processes) as pool:
            for chunk, tokens in zip(chunks, pool.map(tokenize_for_index, texts), strict=True):
                index.add(chunk, tokens)
    else:
        for chunk, part in zip(chunks, texts, strict=True):
            index.add(chunk, tokenize_for_index(part))
    index.commit(entries[-1].id or 0)


def time_queries(run: Callable[[str], int], texts: list[str]) -> tuple[float, float, float, float, float, float]:
    """(p50, p99, max, share with results, p50 CPU, p99 CPU): wall-clock milliseconds, and this
    thread's CPU milliseconds (tantivy searches in the calling thread), which other processes on
    a shared machine do not inflate."""
    for text in texts[:20]:
        run(text)  # warm up
    times = []
    cpu = []
    found = 0
    for text in texts:
        t0, c0 = time.perf_counter(), time.thread_time()
        found += bool(run(text))
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.thread_time() - c0) * 1000)
    return (statistics.median(times), percentile(times, 0.99), max(times), found / len(texts),
            statistics.median(cpu), percentile(cpu, 0.99))


def index_variants(index: SearchIndex, rng: random.Random) -> dict[str, Callable[[str], int]]:
    now = datetime(2026, 12, 31, tzinfo=UTC)
    guild = tuple(SOURCES[:30])  # a guild sees 30 of the 40 sources, as /search does

    def run(**kw: object) -> Callable[[str], int]:
        def go(text: str) -> int:
            extra = {k: (v() if callable(v) else v) for k, v in kw.items()}
            return len(index.search(SearchRequest(text=text, **extra)).hits)  # type: ignore[arg-type]
        return go

    return {
        "text": run(),
        "text, guild sources (30 of 40)": run(source_ids=guild),
        "text + topic": run(topic=lambda: rng.choice(TOPICS)),
        "text + one source": run(source_ids=lambda: (rng.choice(SOURCES),)),
        "text + since 90 days": run(since=now - timedelta(days=90)),
        "text + topic + guild + since 1y": run(topic=lambda: rng.choice(TOPICS), source_ids=guild,
                                               since=now - timedelta(days=365)),
        "text, page 3": run(offset=20),
        "topic only (newest)": lambda _text: len(index.search(SearchRequest(topic=rng.choice(TOPICS))).hits),
    }


def store(entries: list[Entry], workdir: Path) -> tuple[Any, list[Entry]]:
    """Store in SQLite; return the storage and the entries with the ids SQLite gave them."""
    from bot.store.sqlite import SQLiteStorage

    storage = SQLiteStorage(workdir / "db.sqlite3")
    storage.sync_sources([(s, f"https://{s}.example/feed") for s in SOURCES])
    for s in SOURCES:
        mine = [e for e in entries if e.source_id == s]
        storage.store_entries(s, mine, now=datetime.now(UTC), backfill=0)
    real_ids = {str(key): int(entry_id) for key, entry_id in storage._query("SELECT key, id FROM entries")}
    return storage, sorted((replace(e, id=real_ids[e.key]) for e in entries), key=lambda e: e.id or 0)


def catalog_rows(storage: Any, index: SearchIndex, workdir: Path, texts: list[str],
                 rng: random.Random) -> list[tuple[str, float, float, float, float, float, float]]:
    from bot.catalog import Catalog
    from bot.config import SourceConfig, TopicDef, load_config

    cfg = workdir / "c.yaml"
    cfg.write_text("sources: []\n")
    config = load_config(cfg, env={})
    config = config.model_copy(update={
        "topics": {t: TopicDef(label=t.title()) for t in TOPICS},
        "sources": tuple(SourceConfig(id=s, name=s.replace("-", " ").title(), url="https://x", topics=(),
                                      interval=timedelta(minutes=15), channels=(), color=None, backfill=3,
                                      header=None, summary_length=300, enabled=True, allow_file=False)
                         for s in SOURCES)})
    catalog = Catalog(config, storage, index, clock=lambda: datetime(2026, 12, 31, tzinfo=UTC))
    allowed = tuple(SOURCES[:30])
    variants: dict[str, Callable[[str], int]] = {
        "Catalog.search, guild sources": lambda q: len(catalog.search(q, allowed=allowed).items),
        "Catalog.search + topic": lambda q: len(catalog.search(q, topic=rng.choice(TOPICS), allowed=allowed).items),
        "Catalog.search, topic only": lambda q: len(catalog.search("", topic=rng.choice(TOPICS),
                                                                   allowed=allowed).items),
    }
    return [(name, *time_queries(run, texts)) for name, run in variants.items()]


def autocomplete_latency(workdir: Path, calls: int = 2000) -> tuple[float, float]:
    """p50/p99 µs of the topic and source autocomplete (what Discord calls on every keystroke):
    the shipped topic set, 40 sources, guild-scoped; in memory, independent of the entry count."""
    from bot.catalog import Catalog
    from bot.config import load_config

    topics = Path(__file__).resolve().parents[1] / "config" / "topics.yaml"
    (workdir / "topics.yaml").write_text(topics.read_text(encoding="utf-8"), encoding="utf-8")
    sources = "\n".join(f"  - {{name: 'Feed {i} 资讯', id: 'feed-{i}', url: 'https://example.org/{i}.xml'}}"
                        for i in range(40))
    (workdir / "ac.yaml").write_text(f"include: [topics.yaml]\nsources:\n{sources}\n", encoding="utf-8")
    catalog = Catalog(load_config(workdir / "ac.yaml", env={}), None, None, clock=time.time)  # type: ignore[arg-type]
    allowed = tuple(f"feed-{i}" for i in range(30))
    typed = ["", "l", "ll", "diff", "扩散", "att", "feed 1", "资讯", "qu", "zz"]
    times = []
    for n in range(calls):
        text = typed[n % len(typed)]
        t0 = time.perf_counter()
        catalog.topic_choices(text, allowed)
        catalog.source_choices(text, allowed)
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times), percentile(times, 0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                        help="tokenizer processes during the build (0: tokenize in this process)")
    parser.add_argument("--catalog", action="store_true", help="also time Catalog.search (stores in SQLite)")
    parser.add_argument("--no-cache", action="store_true", help="turn off the index's page cache")
    args = parser.parse_args()
    if args.no_cache:
        index_module.CACHE_SIZE = 0
    workdir = Path(tempfile.mkdtemp(prefix="digestbot-bench-"))
    try:
        t0 = time.perf_counter()
        entries = generate(args.entries)
        generated = time.perf_counter() - t0
        per_second, tokens_per_second = tokenizer_speed(entries[:20_000])
        storage = None
        stored = 0.0
        if args.catalog:
            t0 = time.perf_counter()
            storage, entries = store(entries, workdir)
            stored = time.perf_counter() - t0

        index = SearchIndex.open(workdir / "index")
        t0 = time.perf_counter()
        build(entries, index, args.processes)
        built = time.perf_counter() - t0
        size_mb = folder_size(workdir / "index") / 1e6
        build_rss = rss_mb()

        rng = random.Random(11)
        texts = queries(rng, args.queries)
        rows = [(name, *time_queries(run, texts)) for name, run in index_variants(index, rng).items()]
        if storage is not None:
            rows += catalog_rows(storage, index, workdir, texts, rng)
            storage.close()
        index.close()

        ac50, ac99 = autocomplete_latency(workdir)
        chars = statistics.mean(len(e.title) + len(e.summary) for e in entries[:20_000])
        print(f"\nSearch: {args.entries:,} synthetic mixed-language entries (~{chars:.0f} chars), "
              f"{args.queries} queries, {os.cpu_count()} cores, page cache "
              f"{'off' if args.no_cache else 'on'}\n")
        print("| step | figure |\n|---|---|")
        print(f"| generate | {generated:.1f} s |")
        if stored:
            print(f"| store in SQLite | {stored:.1f} s |")
        print(f"| tokenizer, one core | {per_second:,.0f} entries/s, {tokens_per_second / 1e6:.2f} M tokens/s |")
        print(f"| index build (tokenize in {args.processes} processes + tantivy) | {built:.1f} s "
              f"({len(entries) / built:,.0f} entries/s) |")
        print(f"| index size on disk | {size_mb:.0f} MB |")
        print(f"| peak RSS (this process or a tokenizer worker) | {build_rss:.0f} MB |")
        print(f"| autocomplete (topic + source, ≤25 choices) p50 / p99 | {ac50:.0f} / {ac99:.0f} µs |")
        print("\n| query | p50 ms | p99 ms | max ms | with results | p50 CPU ms | p99 CPU ms |\n"
              "|---|---|---|---|---|---|---|")
        for name, p50, p99, worst, found, cpu50, cpu99 in rows:
            print(f"| {name} | {p50:.2f} | {p99:.2f} | {worst:.2f} | {found:.0%} | {cpu50:.2f} | {cpu99:.2f} |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
