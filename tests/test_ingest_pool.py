"""The ingest process pool survives its workers dying (the OOM killer, a crash in a C library), and
stops a parse that never ends.

A ``ProcessPoolExecutor`` whose worker dies is broken for good; without a replacement every later
poll of every source would fail until the bot restarts. These tests kill real worker processes, and
hang real ones in C code (a backtracking regex) that only killing the process can stop.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from bot.config import TopicDef
from bot.errors import ParseTimeoutError, WorkerCrashError
from bot.ingest import IngestPool

FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>LLM paper</title><link>https://e.org/1</link><description>GQA</description></item>"
        b"</channel></rss>")
TOPICS = {"llm": TopicDef(keywords=("llm",))}


def _die() -> None:
    """Runs in a worker: ends its process the way the OOM killer does."""
    os.kill(os.getpid(), signal.SIGKILL)


def _slow_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def _pid() -> int:
    return os.getpid()


def _stuck_in_c(pid_file: str) -> None:
    """Runs in a worker: notes its pid, then backtracks 2**40 steps inside the regex engine, in C,
    holding the interpreter (hours): no exception or signal handler can end it, only a kill."""
    Path(pid_file).write_text(str(os.getpid()))
    re.match(r"(a+)+$", "a" * 40 + "b")


def _stuck_parse(*_args: object) -> None:
    re.match(r"(a+)+$", "a" * 40 + "b")


def _alive(pid: int) -> bool:
    """Running (a zombie, killed and not yet reaped, is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_job_that_kills_its_worker_fails_alone_and_the_pool_goes_on():
    async def kill(pool: IngestPool) -> None:
        with pytest.raises(WorkerCrashError, match="worker process died"):
            await pool.run(_die)

    pool = asyncio.run(_beside_an_innocent_job(kill))
    assert pool.restarts == 2  # once per run of the killing job


async def _beside_an_innocent_job(trouble: Callable[[IngestPool], Awaitable[None]]) -> IngestPool:
    """``trouble`` runs in one worker of two while an innocent job runs in the other. The innocent
    job's result still arrives (its pool went down too: it is run again on a new one), and the new
    workers parse and tag (they got the topic matcher). Returns the closed pool, for its counters."""
    pool = IngestPool(2, TOPICS)
    try:
        await pool.wait_ready()
        innocent = asyncio.ensure_future(pool.run(_slow_pid, 0.5))
        await asyncio.sleep(0.1)  # the innocent job is running in the other worker
        await trouble(pool)
        assert isinstance(await innocent, int)
        entries = await pool.parse(FEED, "https://e.org/feed", None, "s", ())
        assert [e.title for e in entries] == ["LLM paper"]
        assert entries[0].topics == ("llm",)
    finally:
        pool.close()
    return pool


def test_a_worker_killed_while_idle_does_not_break_the_next_poll():
    async def run() -> None:
        pool = IngestPool(1, TOPICS)
        try:
            await pool.wait_ready()
            pid = await pool.run(_pid)  # the one worker
            os.kill(pid, signal.SIGKILL)
            await asyncio.sleep(0.3)  # the executor notices the dead worker and marks itself broken
            entries, tokens = await pool.parse_for_index(FEED, "https://e.org/feed", None, "s", ())
            assert [e.title for e in entries] == ["LLM paper"]
            assert tokens == [("llm paper", "gqa")]
            assert pool.restarts == 1
            assert await pool.run(_pid) != pid
        finally:
            pool.close()

    asyncio.run(run())


async def test_a_feed_that_kills_the_parser_is_that_sources_error_and_others_still_poll(
        tmp_path, site, monkeypatch):
    """Through the real poller: the crash is the failing source's last error; the next source polls."""
    bad, good, _ = await _poll_with_a_bad_parser(tmp_path, site, monkeypatch, _die_with_args, IngestPool(1, TOPICS))
    assert not bad.ok and "worker process died" in (bad.error or "")
    assert good.ok and good.new_entries == 1


async def _poll_with_a_bad_parser(tmp_path, site, monkeypatch, parser, pool):
    """Through the real poller: source "bad" polled with ``parser`` standing in for the parse
    functions (run in a worker by name), then source "good" with the real ones. Returns both
    outcomes and the bad source's stored state; closes ``pool``."""
    from bot import ingest
    from bot.app import fetch_settings
    from bot.fetch import Fetcher
    from bot.poll import Poller
    from bot.store.sqlite import SQLiteStorage
    from tests.local_feeds import rss
    from tests.test_poll import Clock, make_config

    config = make_config(tmp_path, site)
    storage = SQLiteStorage(config.storage.path)
    storage.sync_sources([(s.id, s.url) for s in config.sources])
    site.bodies["/good.xml"] = site.bodies["/bad.xml"] = rss([("a", "A llm")])
    good, bad = config.sources
    try:
        async with Fetcher(fetch_settings(config)) as fetcher:
            poller = Poller(config, storage, fetcher, clock=Clock(), pool=pool)
            with monkeypatch.context() as patch:
                patch.setattr(ingest, "parse_and_tag", parser)
                patch.setattr(ingest, "parse_tag_and_tokenize", parser)
                bad_outcome = await poller.poll(bad)
            state = storage.source_state(bad.id)
            assert state.last_error == bad_outcome.error
            return bad_outcome, await poller.poll(good), state
    finally:
        pool.close()
        storage.close()


def _die_with_args(*_args: object) -> None:
    _die()


def test_workers_killed_as_fast_as_they_start_make_ingest_fall_back_to_a_thread(monkeypatch):
    """A memory limit too small for the workers: pools are not respawned without end."""
    from bot import ingest

    monkeypatch.setattr(ingest, "RESTART_BUDGET", 2)
    monkeypatch.setattr(ingest, "_matcher", None)  # the fallback sets this process's matcher: undone after

    async def run() -> None:
        pool = IngestPool(1, TOPICS)
        try:
            for _ in range(3):
                pid = await pool.run(_pid)
                assert pid != os.getpid()
                os.kill(pid, signal.SIGKILL)
                await asyncio.sleep(0.3)
            # The third broken pool in a row: this parse, sent as a worker job (no matcher), and
            # everything after it run in a thread, tagged all the same.
            entries = await pool.parse(FEED, "https://e.org/feed", None, "s", ())
            assert entries[0].topics == ("llm",)
            assert pool.restarts == 2
            assert await pool.run(_pid) == os.getpid()
            assert await pool.tokenize(entries) == [("llm paper", "gqa")]
        finally:
            pool.close()

    asyncio.run(run())


def test_a_job_stuck_in_c_code_is_given_up_at_its_timeout_and_its_worker_killed(tmp_path):
    async def hang(pool: IngestPool) -> None:
        pid_file = tmp_path / "stuck.pid"
        with pytest.raises(TimeoutError, match="worker process was killed"):
            await pool.run(_stuck_in_c, str(pid_file), timeout=0.5)
        stuck = int(pid_file.read_text())
        assert stuck != os.getpid()
        for _ in range(50):
            if not _alive(stuck):
                break
            await asyncio.sleep(0.1)
        assert not _alive(stuck)

    pool = asyncio.run(_beside_an_innocent_job(hang))
    assert (pool.timeouts, pool.restarts) == (1, 1)  # one job given up, one replacement pool


def test_in_thread_mode_a_slow_job_is_given_up_and_the_bot_goes_on():
    async def run() -> None:
        pool = IngestPool(0, TOPICS)
        release, finished = threading.Event(), threading.Event()

        def held() -> None:
            release.wait(30)
            finished.set()

        with pytest.raises(TimeoutError, match="cannot be stopped"):
            await pool.run(held, timeout=0.1)
        assert not finished.is_set()  # given up while it still runs, not waited for
        release.set()
        assert pool.timeouts == 1
        entries = await pool.parse(FEED, "https://e.org/feed", None, "s", ())
        assert entries[0].topics == ("llm",)

    asyncio.run(run())


async def test_a_feed_whose_parse_never_ends_is_that_sources_error_and_others_still_poll(
        tmp_path, site, monkeypatch):
    """Through the real poller, with ``ingest.parse_timeout``: the source's last error says what
    happened and which setting, the source backs off, the worker is replaced, the next source polls."""
    pool = IngestPool(1, TOPICS, parse_timeout=0.5)
    bad, good, state = await _poll_with_a_bad_parser(tmp_path, site, monkeypatch, _stuck_parse, pool)
    assert not bad.ok and "not parsed within 0.5s (ingest.parse_timeout)" in (bad.error or "")
    assert state.consecutive_failures == 1
    assert good.ok and good.new_entries == 1
    assert (pool.timeouts, pool.restarts) == (1, 1)


def test_in_thread_mode_a_feed_given_up_is_not_parsed_again_while_its_thread_still_runs():
    """A thread cannot be stopped: polling the feed again must not start a second stuck thread."""
    from bot import ingest

    async def run() -> None:
        pool = IngestPool(0, TOPICS, parse_timeout=0.2)
        started = []

        def slow(*args: object) -> list[object]:
            started.append(args[1])
            time.sleep(1.0)
            return []

        original = ingest.parse_and_tag
        ingest.parse_and_tag = slow  # type: ignore[assignment]
        try:
            with pytest.raises(ParseTimeoutError, match="a parse thread cannot be stopped"):
                await pool.parse(FEED, "https://e.org/feed", None, "s", ())
            with pytest.raises(ParseTimeoutError, match="previous parse, given up, is still running"):
                await pool.parse(FEED, "https://e.org/feed", None, "s", ())
            assert started == ["https://e.org/feed"]  # the second poll started nothing
            await asyncio.sleep(1.2)  # the stuck thread ends
        finally:
            ingest.parse_and_tag = original
        entries = await pool.parse(FEED, "https://e.org/feed", None, "s", ())
        assert entries[0].topics == ("llm",)

    asyncio.run(run())
