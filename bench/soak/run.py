"""Soak: 1,000 generated feeds on a local server, 24 simulated hours of polling with churn and faults.

    python3 -m bench.soak.run [--sources 1000] [--hours 24] [--quick] [--seed 1] [--keep DIR]

The bot runs in this process on a simulated clock advanced ``--step`` minutes per round; the feed
server (bench/soak/feeds.py) runs in its own process. Each round polls the sources that are due
(the Poller itself skips sources still backing off), delivers what is due through a recording
deliverer that injects delivery faults, and catches the search index up. At the end it checks,
against the server's ground truth and the deliverer's record, that nothing was lost or duplicated,
and that memory stayed flat. Exit status 1 when a check fails. A benchmark, not a CI test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from bench.soak.feeds import EPOCH, GONE_EVERY, MAX_BODY, feed_spec

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"/f(\d+)/e(\d+)\.html$")
CHANNEL_BASE = 900_000_000_000_000_000
DEAD_CHANNEL = CHANNEL_BASE + 99
"""Every send to this channel fails for good (a deleted channel)."""
INTERVALS_MIN = (15, 15, 30, 30, 30, 60, 60, 120)


def rss_mb() -> float:
    try:
        import psutil  # type: ignore[import-not-found]

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:
        pass
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def size_mb(path: Path) -> float:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file()) / 2**20


class SimClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class ErrorCounter(logging.Handler):
    """Counts the bot's log records at ERROR and above (and keeps a few), instead of printing thousands
    of expected warnings."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.counts: Counter[str] = Counter()
        self.samples: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.msg if isinstance(record.msg, str) else repr(record.msg)] += 1
        if record.exc_info and len(self.samples) < 3:
            self.samples.append(self.format(record))


@dataclass
class RecordingDeliverer:
    """A stand-in for Discord. Records every accepted message (on disk, so its bookkeeping does not
    count as the bot's memory) and behaves like Discord with ``enforce_nonce``: a repeated nonce
    returns the message already posted. Injects transient failures (with and without Retry-After),
    lost replies (accepted, then the answer never arrives) and a permanently failing channel."""

    path: Path
    seed: int
    rng: random.Random = field(init=False)
    accepted: set[str] = field(default_factory=set)
    faults: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    nonce_dedupes: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.seed}:deliver")
        self.log = self.path.open("a", encoding="utf-8")

    async def send(self, channel_id: int, message: object, *, nonce: str) -> str | None:
        from bot.errors import DeliveryError

        self.calls += 1
        target = f"channel {channel_id}"
        if channel_id == DEAD_CHANNEL:
            self.faults["permanent (unknown channel)"] += 1
            raise DeliveryError(target, "404 Unknown Channel", permanent=True)
        key = f"{channel_id}:{nonce}"
        if key in self.accepted:
            self.nonce_dedupes += 1
            return f"m-{nonce}"
        u = self.rng.random()
        if u < 0.03:
            self.faults["429 with retry_after"] += 1
            raise DeliveryError(target, "429 rate limited", retry_after=self.rng.choice((1.0, 30.0, 120.0, 600.0)))
        if u < 0.045:
            self.faults["5xx / network"] += 1
            raise DeliveryError(target, "503 upstream")
        urls = [e.url for e in message.embeds]  # type: ignore[attr-defined]
        self.accepted.add(key)
        self.log.write(json.dumps({"c": channel_id, "n": nonce, "u": urls}) + "\n")
        if u < 0.06:
            self.faults["lost reply (accepted, then error)"] += 1
            raise DeliveryError(target, "connection reset before the reply")
        return f"m-{nonce}"

    def close(self) -> None:
        self.log.close()


def channels_for(i: int) -> tuple[int, ...]:
    """Source i posts to one of 19 live channels; every 5th also to a second one; every 97th also to
    the dead channel."""
    chans = [CHANNEL_BASE + i % 19]
    if i % 5 == 0:
        chans.append(CHANNEL_BASE + (i * 7 + 3) % 19 + 20)
    if i % 97 == 0:
        chans.append(DEAD_CHANNEL)
    return tuple(chans)


def write_config(workdir: Path, base: str, sources: int, seed: int, backfill: int) -> Path:
    rng = random.Random(f"{seed}:intervals")
    lines = []
    for i in range(sources):
        interval = rng.choice(INTERVALS_MIN)
        chans = ", ".join(str(c) for c in channels_for(i))
        lines.append(f"  - {{id: s{i:04d}, name: 'Soak {i}', url: '{base}/f/{i}', interval: {interval}m,"
                     f" channels: [{chans}]}}")
    (workdir / "topics.yaml").write_text((ROOT / "config" / "topics.yaml").read_text(encoding="utf-8"),
                                         encoding="utf-8")
    path = workdir / "soak.yaml"
    path.write_text(f"""
include: [topics.yaml]
storage: {{path: {workdir / 'soak.sqlite3'}}}
health: {{enabled: false}}
fetch: {{allow_private_networks: [127.0.0.0/8], per_host_limit: 32, connect_timeout: 1s, read_timeout: 1s,
         total_timeout: 1.5s, max_body: {MAX_BODY}}}
ingest: {{processes: 0}}
defaults: {{backfill: {backfill}, jitter: 0s}}
sources:
""" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Sample:
    round: int
    sim: datetime
    rss: float
    entries: int
    deliveries: int
    db_mb: float
    index_mb: float
    wall: float
    py_objects: int
    py_blocks: int


async def soak(args: argparse.Namespace, workdir: Path) -> int:
    from bot.app import App
    from bot.config import load_config

    step = timedelta(minutes=args.step)
    rounds = int(args.hours * 60 // args.step)
    gone_at = args.hours * 3600 / 2
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.soak.feeds", "--seed", str(args.seed), "--sources", str(args.sources),
        "--gone-at", str(gone_at), "--fault-scale", str(args.fault_scale), stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT))
    assert server.stdout is not None
    base = (await server.stdout.readline()).decode().strip()
    errors = ErrorCounter()
    logging.getLogger().addHandler(errors)
    logging.getLogger().setLevel(logging.ERROR)
    recorder = RecordingDeliverer(workdir / "deliveries.jsonl", args.seed)
    samples: list[Sample] = []
    polls: Counter[str] = Counter()
    delivered = 0
    t_start = time.perf_counter()
    try:
        config = load_config(write_config(workdir, base, args.sources, args.seed, args.backfill), env={})
        clock = SimClock(EPOCH)
        sources = [s for s in config.sources if s.enabled]
        sim_start = EPOCH
        next_due = {s.id: sim_start + timedelta(minutes=args.step * (i % max(1, s.interval // step)))
                    for i, s in enumerate(sources)}
        limit = asyncio.Semaphore(args.concurrency)
        async with aiohttp.ClientSession() as control, App.open(config, clock=clock) as app:
            app.poller.rng = random.Random(args.seed)
            worker = app.attach_deliverer(recorder)
            db_path = config.storage.path
            index_path = config.storage.resolved_index_path

            async def poll(source):
                async with limit:
                    return await app.poller.poll(source)

            async def deliver() -> int:
                total = 0
                for _ in range(50):
                    sent = await worker.deliver_due()
                    total += sent
                    if not sent:
                        break
                return total

            def sample(r: int) -> None:
                gc.collect()
                if args.malloc_trim:
                    import ctypes

                    ctypes.CDLL("libc.so.6").malloc_trim(0)
                samples.append(Sample(r, clock.now, rss_mb(), app.storage.max_entry_id(), delivered,
                                      size_mb(db_path), size_mb(index_path), time.perf_counter() - t_start,
                                      len(gc.get_objects()), sys.getallocatedblocks()))

            sample_every = max(1, rounds // args.samples)
            for r in range(rounds + 1):
                clock.now = sim_start + step * r
                async with control.post(f"{base}/_clock", params={"round": str(r),
                                                                  "t": str((clock.now - EPOCH).total_seconds())}):
                    pass
                due = [s for s in sources if next_due[s.id] <= clock.now]
                for s in due:
                    while next_due[s.id] <= clock.now:
                        next_due[s.id] += s.interval
                for outcome in await asyncio.gather(*(poll(s) for s in due)):
                    polls["polls"] += 1
                    polls["skipped (backing off / gone)" if outcome.skipped else "not modified (304)"
                          if outcome.not_modified else "ok (200)" if outcome.ok else "failed"] += 1
                delivered += await deliver()
                if r % args.index_every == 0:
                    await app.indexer.catch_up_async()
                if r % sample_every == 0 or r == rounds:
                    sample(r)
                    if args.verbose:
                        s = samples[-1]
                        print(f"round {r}/{rounds} {s.sim:%d %H:%M} rss {s.rss:.0f} MB objects {s.py_objects} "
                              f"blocks {s.py_blocks} entries {s.entries} "
                              f"deliveries {s.deliveries} wall {s.wall:.0f}s", file=sys.stderr, flush=True)
            # Drain: no more polling; let the outbox's retries (Retry-After, backoff) run out.
            drain_rounds = 0
            while app.storage.pending_count() and drain_rounds < 48:
                drain_rounds += 1
                clock.now += step
                delivered += await deliver()
            await app.indexer.catch_up_async()
            if drain_rounds:
                sample(rounds + drain_rounds)
            pending = app.storage.pending_count()
            index_docs = app.index.doc_count()
        async with aiohttp.ClientSession() as control, control.get(f"{base}/_truth") as resp:
            truth = await resp.json()
    finally:
        recorder.close()
        if server.returncode is None:
            server.terminate()
            await server.wait()
    wall = time.perf_counter() - t_start
    report = verify(args, db_path, workdir / "deliveries.jsonl", truth)
    return print_report(args, rounds, drain_rounds, wall, samples, polls, delivered, pending, recorder, truth,
                        report, errors, db_path, index_path, index_docs)


@dataclass
class Verdict:
    entries: int = 0
    stored_per_format: Counter[str] = field(default_factory=Counter)
    lost_fetch: int = 0
    lost_fetch_examples: list[str] = field(default_factory=list)
    dup_stored: int = 0
    unmapped_entries: int = 0
    unmapped_examples: list[str] = field(default_factory=list)
    expected_posts: int = 0
    delivered_posts: int = 0
    lost_delivery: int = 0
    lost_delivery_examples: list[str] = field(default_factory=list)
    duplicated: int = 0
    duplicated_examples: list[str] = field(default_factory=list)
    unexpected: int = 0
    unexpected_examples: list[str] = field(default_factory=list)
    failed_as_expected: int = 0
    out_of_order: int = 0
    backfill_not_newest: int = 0
    messages_accepted: int = 0
    outbox_sent: int = 0
    outbox_failed: int = 0
    outbox_pending: int = 0


def verify(args: argparse.Namespace, db_path: Path, log_path: Path, truth: dict) -> Verdict:
    v = Verdict()
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    by_source: dict[str, list[tuple[int, str, float, tuple[int, int] | None]]] = defaultdict(list)
    for entry_id, source_id, link, first_seen in db.execute(
            "SELECT id, source_id, link, first_seen FROM entries ORDER BY id"):
        m = LINK.search(link or "")
        by_source[source_id].append((entry_id, link or "", first_seen, (int(m[1]), int(m[2])) if m else None))
    outbox = db.execute("SELECT id, channel_id, source_id, entry_ids, status FROM outbox").fetchall()
    db.close()
    failed_rows: dict[tuple[int, str], set[int]] = defaultdict(set)
    for _id, channel, source_id, entry_ids, status in outbox:
        v.outbox_sent += status == "sent"
        v.outbox_failed += status == "failed"
        v.outbox_pending += status == "pending"
        if status == "failed":
            failed_rows[(channel, source_id)].update(json.loads(entry_ids))
    # Deliveries: (channel, feed) -> seqs in acceptance order, one record per accepted nonce.
    posted: dict[tuple[int, int], list[int]] = defaultdict(list)
    with log_path.open(encoding="utf-8") as handle:
        for line in handle:
            rec = json.loads(line)
            v.messages_accepted += 1
            for url in rec["u"]:
                m = LINK.search(url or "")
                if m:
                    posted[(rec["c"], int(m[1]))].append(int(m[2]))
                else:
                    v.unexpected += 1
                    if len(v.unexpected_examples) < 3:
                        v.unexpected_examples.append(f"channel {rec['c']}: unmapped url {url!r}")
    served = {int(k): set(s) for k, s in truth["served"].items()}
    for i in range(args.sources):
        sid = f"s{i:04d}"
        rows = by_source.get(sid, [])
        v.entries += len(rows)
        v.stored_per_format[feed_spec(args.seed, i).fmt] += len(rows)
        seqs = Counter(r[3][1] for r in rows if r[3] is not None and r[3][0] == i)
        for r in rows:
            if r[3] is None or r[3][0] != i:
                v.unmapped_entries += 1
                if len(v.unmapped_examples) < 3:
                    v.unmapped_examples.append(f"{sid}: id {r[0]} link {r[1]!r}")
        v.dup_stored += sum(n - 1 for n in seqs.values() if n > 1)
        missing = served.get(i, set()) - set(seqs)
        v.lost_fetch += len(missing)
        if missing and len(v.lost_fetch_examples) < 3:
            v.lost_fetch_examples.append(f"{sid}: served but not stored {sorted(missing)[:5]}")
        if not rows:
            continue
        first = min(r[2] for r in rows)
        first_batch = [r for r in rows if r[2] == first]
        later = [r for r in rows if r[2] != first]
        posted_first = sorted(first_batch, key=lambda r: r[0])[-args.backfill:] if args.backfill else []
        newest = sorted((r for r in first_batch if r[3]), key=lambda r: r[3][1])[-args.backfill:] \
            if args.backfill else []
        v.backfill_not_newest += len({r[0] for r in posted_first} - {r[0] for r in newest})
        expected_rows = posted_first + later
        expected = Counter(r[3][1] for r in expected_rows if r[3] is not None and r[3][0] == i)
        for channel in channels_for(i):
            v.expected_posts += sum(expected.values())
            if channel == DEAD_CHANNEL:
                failed_ids = failed_rows.get((channel, sid), set())
                for r in expected_rows:
                    if r[0] in failed_ids:
                        v.failed_as_expected += 1
                    else:
                        v.lost_delivery += 1
                        if len(v.lost_delivery_examples) < 3:
                            v.lost_delivery_examples.append(f"{sid} → dead channel: entry {r[0]} neither "
                                                            "delivered nor marked failed")
                continue
            got_list = posted.get((channel, i), [])
            got = Counter(got_list)
            v.delivered_posts += len(got_list)
            if got_list != sorted(got_list):
                v.out_of_order += 1
            for seq, n in got.items():
                if n > 1:
                    v.duplicated += n - 1
                    if len(v.duplicated_examples) < 3:
                        v.duplicated_examples.append(f"{sid} → {channel}: e{seq} posted {n} times")
                if seq not in expected:
                    v.unexpected += n
                    if len(v.unexpected_examples) < 3:
                        v.unexpected_examples.append(f"{sid} → {channel}: e{seq} posted but not expected")
            for seq in expected:
                if seq not in got:
                    v.lost_delivery += 1
                    if len(v.lost_delivery_examples) < 3:
                        v.lost_delivery_examples.append(f"{sid} → {channel}: e{seq} stored, never delivered")
    return v


def quarter_means(samples: list[Sample]) -> tuple[float, float]:
    """Mean RSS of the first and last quarter of the samples taken after the warm-up (once every
    source has had its first poll, i.e. after the longest interval)."""
    warm = EPOCH + timedelta(minutes=max(INTERVALS_MIN))
    body = [s for s in samples if s.sim >= warm]
    if len(body) < 4:
        body = samples[1:] if len(samples) > 4 else samples
    q = max(1, len(body) // 4)
    first = sum(s.rss for s in body[:q]) / q
    last = sum(s.rss for s in body[-q:]) / q
    return first, last


def print_report(args: argparse.Namespace, rounds: int, drain_rounds: int, wall: float, samples: list[Sample],
                 polls: Counter[str], delivered: int, pending: int, recorder: RecordingDeliverer, truth: dict,
                 v: Verdict, errors: ErrorCounter, db_path: Path, index_path: Path,
                 index_docs: int | None) -> int:
    print(f"\nSoak: {args.sources} sources, {args.hours:g} simulated hours, {args.step:g}-minute rounds, "
          f"seed {args.seed}\n")
    print("| round | simulated time | wall s | RSS MB | Python objects k | Python blocks k | entries stored "
          "| deliveries | db+WAL MB | index MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in samples:
        print(f"| {s.round} | {s.sim:%a %H:%M} | {s.wall:.0f} | {s.rss:.1f} | {s.py_objects / 1000:.0f} | "
              f"{s.py_blocks / 1000:.0f} | {s.entries} | {s.deliveries} | {s.db_mb:.1f} | {s.index_mb:.1f} |")
    mem_first, mem_last = quarter_means(samples)
    growth = (mem_last / mem_first - 1) if mem_first else 0.0
    server_faults = truth["faults"]
    after_gone = sum(truth["after_gone"].values())
    checks = {
        "entries served but not stored (lost)": v.lost_fetch,
        "entries stored twice": v.dup_stored,
        "posts lost (expected, never delivered nor marked failed)": v.lost_delivery,
        "posts duplicated (same entry, same channel, distinct messages)": v.duplicated,
        "posts not expected (flood / unknown)": v.unexpected,
        "outbox still pending after drain": pending,
        "polls of a feed after it answered 410": after_gone,
        "backfill posts that were not the newest": v.backfill_not_newest,
    }
    print("\n| summary | value |\n|---|---|")
    rows = [
        ("sources", args.sources), ("simulated hours", f"{args.hours:g}"),
        ("rounds (+ drain rounds)", f"{rounds + 1} (+{drain_rounds})"), ("wall time s", f"{wall:.0f}"),
        ("feed requests", truth["requests"]),
        ("HTTP statuses served", ", ".join(f"{k}: {n}" for k, n in sorted(truth["statuses"].items()))),
        ("feed faults injected", f"{sum(server_faults.values())} ("
         + ", ".join(f"{k} {n}" for k, n in sorted(server_faults.items())) + ")"),
        ("delivery faults injected", f"{sum(recorder.faults.values())} ("
         + ", ".join(f"{k} {n}" for k, n in sorted(recorder.faults.items())) + ")"),
        ("polls", ", ".join(f"{k} {n}" for k, n in polls.items())),
        ("entries stored", f"{v.entries} (" + ", ".join(f"{k} {n}" for k, n in sorted(v.stored_per_format.items()))
         + ")"),
        ("entries stored from damaged answers (unmapped link)", v.unmapped_entries),
        ("entries in search index", index_docs if index_docs is not None else "n/a"),
        ("deliveries made (messages accepted)", v.messages_accepted),
        ("entry posts expected / delivered / failed for good (dead channel)",
         f"{v.expected_posts} / {v.delivered_posts} / {v.failed_as_expected}"),
        ("send calls / nonce-deduplicated retries", f"{recorder.calls} / {recorder.nonce_dedupes}"),
        ("outbox sent / failed / pending", f"{v.outbox_sent} / {v.outbox_failed} / {v.outbox_pending}"),
        ("channels delivered out of order (source, channel pairs)", v.out_of_order),
        ("bot errors logged", sum(errors.counts.values())),
        *((f"  {k[:70]}", n) for k, n in errors.counts.most_common(5)),
        ("lost", v.lost_fetch + v.lost_delivery), ("duplicated", v.duplicated + v.dup_stored),
        ("RSS start / end / max MB",
         f"{samples[0].rss:.1f} / {samples[-1].rss:.1f} / {max(s.rss for s in samples):.1f}"),
        ("RSS mean first quarter → last quarter (after warm-up)",
         f"{mem_first:.1f} → {mem_last:.1f} MB ({growth:+.1%})"),
        ("MALLOC_ARENA_MAX", os.environ.get("MALLOC_ARENA_MAX", "unset (glibc default: 8 × cores)")
         + (", malloc_trim(0) before each sample" if args.malloc_trim else "")),
        ("database MB", f"{size_mb(db_path):.1f}"), ("index MB", f"{size_mb(index_path):.1f}"),
    ]
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\n| check ({len(truth['gone'])} feeds went 410 Gone) | found | verdict |\n|---|---|---|")
    for name, n in checks.items():
        print(f"| {name} | {n} | {'FAIL' if n else 'ok'} |")
    print(f"| RSS growth, first → last quarter after warm-up | {growth:+.1%} | "
          f"{'FAIL' if growth > args.max_growth else 'ok'} (limit {args.max_growth:.0%}) |")
    failures = [f"{name}: {n}" for name, n in checks.items() if n]
    if growth > args.max_growth:
        failures.append(f"memory grew {growth:.1%} between the first and last quarter (limit {args.max_growth:.0%})")
        objects = (min(s.py_objects for s in samples[1:] or samples), samples[-1].py_objects)
        if objects[1] < objects[0] * 1.05:
            print(f"  note: Python objects stayed flat ({objects[0]} → {objects[1]}), so the growth is native "
                  "memory (allocator arenas, SQLite, tantivy); compare with --malloc-arena-max 2")
    for examples in (v.lost_fetch_examples, v.lost_delivery_examples, v.duplicated_examples, v.unexpected_examples,
                     v.unmapped_examples, errors.samples):
        for line in examples:
            print(f"  e.g. {line}")
    print("\nPASS" if not failures else "\nFAIL: " + "; ".join(failures))
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", type=int, default=None, help="feeds (default 1000; --quick 100)")
    parser.add_argument("--hours", type=float, default=None, help="simulated hours (default 24; --quick 6)")
    parser.add_argument("--quick", action="store_true", help="100 sources, 6 hours (≈15-25 s)")
    parser.add_argument("--step", type=float, default=5.0, help="simulated minutes per round")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backfill", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="polls in flight (≤ fetch.per_host_limit)")
    parser.add_argument("--index-every", type=int, default=1, help="rounds between search index catch-ups")
    parser.add_argument("--fault-scale", type=float, default=1.0, help="multiply every feed fault rate")
    parser.add_argument("--samples", type=int, default=24, help="memory samples over the run")
    parser.add_argument("--max-growth", type=float, default=0.20, help="allowed RSS growth, first→last quarter")
    parser.add_argument("--keep", type=Path, help="keep the database, index and delivery log in this folder")
    parser.add_argument("--malloc-arena-max", type=int, metavar="N",
                        help="run with MALLOC_ARENA_MAX=N (glibc; re-executes the bench with it set)")
    parser.add_argument("--malloc-trim", action="store_true",
                        help="call glibc malloc_trim(0) before each memory sample (tells freed-but-kept memory "
                             "from live memory)")
    parser.add_argument("--verbose", action="store_true", help="progress on stderr")
    args = parser.parse_args()
    if args.malloc_arena_max and os.environ.get("MALLOC_ARENA_MAX") != str(args.malloc_arena_max):
        env = {**os.environ, "MALLOC_ARENA_MAX": str(args.malloc_arena_max)}
        os.execve(sys.executable, [sys.executable, "-m", "bench.soak.run", *sys.argv[1:]], env)
    args.sources = args.sources or (100 if args.quick else 1000)
    args.hours = args.hours or (6 if args.quick else 24)
    if GONE_EVERY <= 7:
        raise SystemExit("GONE_EVERY must exceed 7")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.iterdir()):
            raise SystemExit(f"{args.keep} is not empty")
        return asyncio.run(soak(args, args.keep))
    with tempfile.TemporaryDirectory(prefix="digestbot-soak-") as tmp:
        return asyncio.run(soak(args, Path(tmp)))


if __name__ == "__main__":
    sys.exit(main())
