"""Ingest benchmark: the real feeds of the corpus over local HTTP, digestbot vs reader, side by side.

    python bench/bench_ingest.py [--corpus ../shared/corpus/real] [--runs 3]

First update (fetch, parse, normalise, store, index) and a second update where every feed answers
304. Each engine runs in its own subprocess so peak memory (ru_maxrss) is its own. With ``--runs N``
the two engines run side by side N times (alternating) and the table shows each engine's median
run; the speed-ups are given per run and as their median, since a shared machine's speed drifts.

    python bench/bench_ingest.py --stages [--topics config/topics.yaml]

CPU time (``time.process_time``, one process, no HTTP) of digestbot's CPU-bound ingest stages on the
same files: parse, normalise, topic tagging, index tokenization (cold caches). On a shared machine
this is the figure to compare; wall-clock moves with whatever else runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.feed_http import serve_folder_in_process as serve_folder
from bench.feed_http import spread_over_hosts


def corpus_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


async def run_digestbot(urls: list[str], workdir: Path) -> dict[str, float]:
    from bot.app import App
    from bot.config import load_config

    sources = "\n".join(f"  - {{name: 'feed {i}', id: 'f{i}', url: '{u}'}}" for i, u in enumerate(urls))
    cfg = workdir / "bench.yaml"
    cfg.write_text(f"""
storage: {{path: {workdir / 'db.sqlite3'}}}
health: {{enabled: false}}
fetch: {{allow_private_networks: [127.0.0.0/8]}}
ingest: {{processes: 2}}
sources:
{sources}
""")
    config = load_config(cfg, env={})
    def cpu() -> float:  # this process only (all its threads); the ingest workers are not in it
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    async with App.open(config) as app:
        await app.pool.wait_ready()  # worker processes start with the bot, not with its first poll
        t0, c0 = time.perf_counter(), cpu()
        outcomes = await app.poll_all(force=True)
        polled, c1 = time.perf_counter() - t0, cpu()
        await app.indexer.catch_up_async()
        first, c2 = time.perf_counter() - t0, cpu()
        print(f"digestbot: poll+store (first polls tokenize for the index too) {polled:.2f}s, "
              f"index {first - polled:.2f}s (main-process CPU: {c1 - c0:.2f}s, {c2 - c1:.2f}s)", file=sys.stderr)
        entries = sum(o.new_entries for o in outcomes)
        failed = sum(not o.ok for o in outcomes)
        t0 = time.perf_counter()
        outcomes2 = await app.poll_all(force=True)
        second = time.perf_counter() - t0
        not_modified = sum(o.not_modified for o in outcomes2)
    return {"first_s": first, "second_s": second, "entries": entries, "failed": failed,
            "not_modified": not_modified, "poll_s": polled}


def run_reader(urls: list[str], workdir: Path) -> dict[str, float]:
    from reader import make_reader

    reader = make_reader(str(workdir / "reader.sqlite"))
    reader.enable_search()
    for url in urls:
        reader.add_feed(url)
    t0 = time.perf_counter()
    results = list(reader.update_feeds_iter(scheduled=False, workers=8))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    reader.update_search()
    search_s = time.perf_counter() - t0
    failed = sum(1 for r in results if isinstance(r.value, Exception))
    entries = reader.get_entry_counts().total
    t0 = time.perf_counter()
    list(reader.update_feeds_iter(scheduled=False, workers=8))
    second = time.perf_counter() - t0
    reader.close()
    return {"first_s": first, "second_s": second, "entries": entries, "failed": failed, "not_modified": -1,
            "search_s": search_s}


def child(engine: str, corpus: Path) -> None:
    files = corpus_files(corpus)

    async def main() -> dict[str, float]:
        async with serve_folder(corpus) as base:
            # Feeds spread over 16 loopback hosts, as real feeds live on many servers (both engines).
            urls = spread_over_hosts(base, [p.relative_to(corpus).as_posix() for p in files])
            with tempfile.TemporaryDirectory() as tmp:
                if engine == "digestbot":
                    return await run_digestbot(urls, Path(tmp))
                return await asyncio.to_thread(run_reader, urls, Path(tmp))

    result = asyncio.run(main())
    result["feeds"] = len(files)
    result["peak_rss_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                             + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print(json.dumps(result))


def stages(corpus: Path, topics_file: Path, repeat: int) -> None:
    import yaml

    from bot.config import TopicDef
    from bot.ingest import tokenize_for_index
    from bot.normalize import normalize_entries
    from bot.parse import parse_feed
    from bot.search import tokenize as tokenizer
    from bot.topics import TopicMatcher

    raw = yaml.safe_load(topics_file.read_text(encoding="utf-8"))["topics"]
    matcher = TopicMatcher.from_config({k: TopicDef(**v) for k, v in raw.items()})
    bodies = [(f"http://127.0.0.1/{p.relative_to(corpus).as_posix()}", p.read_bytes()) for p in corpus_files(corpus)]
    clock = time.process_time
    runs: list[dict[str, float]] = []
    for _ in range(repeat):
        tokenizer._run_tokens.clear()
        tokenizer.stem.cache_clear()
        tokenizer.word_tokens.cache_clear()
        took = dict.fromkeys(("parse", "normalise", "tag", "tokenize"), 0.0)
        texts = []
        for url, body in bodies:
            t0 = clock()
            try:
                feed = parse_feed(body, url, None)
            except Exception:  # a refused feed costs its parse time, nothing more
                took["parse"] += clock() - t0
                continue
            t1 = clock()
            entries = normalize_entries(feed, "bench", feed_url=url)
            t2 = clock()
            for e in entries:
                matcher.assign(title=e.title, summary=e.summary, categories=e.categories, source_topics=("llm",))
            t3 = clock()
            took["parse"] += t1 - t0
            took["normalise"] += t2 - t1
            took["tag"] += t3 - t2
            texts.extend((e.title, e.summary) for e in entries)
        t0 = clock()
        tokenize_for_index(texts)
        took["tokenize"] = clock() - t0
        runs.append(took)
    print(f"CPU seconds per stage, one process, {len(bodies)} files, {len(texts)} entries "
          f"(median of {repeat}):")
    for name in runs[0]:
        print(f"  {name:10s} {sorted(r[name] for r in runs)[len(runs) // 2]:.3f}")
    print(f"  {'total':10s} {sorted(sum(r.values()) for r in runs)[len(runs) // 2]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(os.environ.get("DIGESTBOT_CORPUS", Path(__file__).resolve().parents[2] / "shared/corpus"))
    parser.add_argument("--corpus", type=Path, default=default / "real")
    parser.add_argument("--engines", default="digestbot,reader")
    parser.add_argument("--child")
    parser.add_argument("--stages", action="store_true", help="CPU time per stage, one process, no HTTP")
    parser.add_argument("--topics", type=Path, default=Path(__file__).resolve().parents[1] / "config/topics.yaml")
    parser.add_argument("--repeat", type=int, default=3, help="with --stages: runs per stage (median)")
    parser.add_argument("--runs", type=int, default=1, help="side-by-side runs of both engines (median)")
    args = parser.parse_args()
    if args.stages:
        stages(args.corpus, args.topics, args.repeat)
        return
    if args.child:
        child(args.child, args.corpus)
        return
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.runs):
        for engine in args.engines.split(","):
            out = subprocess.run([sys.executable, __file__, "--child", engine, "--corpus", str(args.corpus)],
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                print(f"{engine} failed:\n{out.stderr[-3000:]}", file=sys.stderr)
                continue
            for line in out.stderr.splitlines():
                if line.startswith(engine + ":"):
                    print(line)
            runs.setdefault(engine, []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = {engine: sorted(results, key=lambda r: r["first_s"])[len(results) // 2] for engine, results in runs.items()}
    print(f"\nIngest: {args.corpus} over local HTTP\n")
    print("| engine | feeds | entries | failed feeds | first update s | entries/s | feeds/s | 304 re-poll s "
          "| peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for engine, r in rows.items():
        print(f"| {engine} | {r['feeds']} | {r['entries']} | {r['failed']} | {r['first_s']:.2f} | "
              f"{r['entries'] / r['first_s']:.0f} | {r['feeds'] / r['first_s']:.0f} | {r['second_s']:.3f} | "
              f"{r['peak_rss_mb']:.0f} |")
    if "digestbot" in runs and "reader" in runs:
        pairs = list(zip(runs["digestbot"], runs["reader"], strict=False))
        first = [r["first_s"] / d["first_s"] for d, r in pairs]
        again = [r["second_s"] / d["second_s"] for d, r in pairs]
        both = [(r["first_s"] + r["search_s"]) / d["first_s"] for d, r in pairs]
        print(f"\nspeed-up vs reader, per run: first update {_ratios(first)}; 304 re-poll {_ratios(again)}")
        print(f"with search indexing on both sides (reader's update_search added): {_ratios(both)}")


def _ratios(values: list[float]) -> str:
    """Each run's ratio, then their median."""
    ordered = sorted(values)
    median = (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2
    return " ".join(f"{v:.1f}x" for v in values) + (f" (median {median:.1f}x)" if len(values) > 1 else "")


if __name__ == "__main__":
    main()
