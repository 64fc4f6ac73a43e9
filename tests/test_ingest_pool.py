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
import time
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
    async def run() -> None:
        pool = IngestPool(2, TOPICS)
        try:
            await pool.wait_ready()
            innocent = asyncio.ensure_future(pool.run(_slow_pid, 0.5))
            await asyncio.sleep(0.1)  # the innocent job is running in the other worker
            with pytest.raises(WorkerCrashError, match="worker process died"):
                await pool.run(_die)
            # The crash took the innocent job's pool down too: it was run again, on a new pool.
            assert isinstance(await innocent, int)
            assert pool.restarts == 2  # once per run of the killing job
            entries = await pool.parse(FEED, "https://e.org/feed", None, "s", ())
            assert [e.title for e in entries] == ["LLM paper"]
            assert entries[0].topics == ("llm",)  # the new workers got the topic matcher too
        finally:
            pool.close()

    asyncio.run(run())


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
    pool = IngestPool(1, config.topics)
    try:
        async with Fetcher(fetch_settings(config)) as fetcher:
            poller = Poller(config, storage, fetcher, clock=Clock(), pool=pool)
            with monkeypatch.context() as patch:
                patch.setattr(ingest, "parse_and_tag", _die_with_args)  # run in the worker by name
                patch.setattr(ingest, "parse_tag_and_tokenize", _die_with_args)
                outcome = await poller.poll(bad)
            assert not outcome.ok and "worker process died" in (outcome.error or "")
            assert "worker process died" in (storage.source_state(bad.id).last_error or "")
            outcome = await poller.poll(good)
            assert outcome.ok and outcome.new_entries == 1
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
    async def run() -> None:
        pool = IngestPool(2, TOPICS)
        try:
            await pool.wait_ready()
            innocent = asyncio.ensure_future(pool.run(_slow_pid, 1.0))
            await asyncio.sleep(0.1)  # the innocent job is running in the other worker
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
            # The innocent job's worker went with it; it was run again on the new pool.
            assert isinstance(await innocent, int)
            assert (pool.timeouts, pool.restarts) == (1, 1)
            entries = await pool.parse(FEED, "https://e.org/feed", None, "s", ())
            assert entries[0].topics == ("llm",)
        finally:
            pool.close()

    asyncio.run(run())


def test_in_thread_mode_a_slow_job_is_given_up_and_the_bot_goes_on():
    async def run() -> None:
        pool = IngestPool(0, TOPICS)
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="cannot be stopped"):
            await pool.run(time.sleep, 1.5, timeout=0.1)
        assert time.monotonic() - started < 1.5  # given up, not waited for
        assert pool.timeouts == 1
        entries = await pool.parse(FEED, "https://e.org/feed", None, "s", ())
        assert entries[0].topics == ("llm",)

    asyncio.run(run())


async def test_a_feed_whose_parse_never_ends_is_that_sources_error_and_others_still_poll(
        tmp_path, site, monkeypatch):
    """Through the real poller, with ``ingest.parse_timeout``: the source's last error says what
    happened and which setting, the worker is replaced, the next source polls."""
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
    pool = IngestPool(1, config.topics, parse_timeout=0.5)
    try:
        async with Fetcher(fetch_settings(config)) as fetcher:
            poller = Poller(config, storage, fetcher, clock=Clock(), pool=pool)
            with monkeypatch.context() as patch:
                patch.setattr(ingest, "parse_and_tag", _stuck_parse)  # run in the worker by name
                patch.setattr(ingest, "parse_tag_and_tokenize", _stuck_parse)
                outcome = await poller.poll(bad)
            assert not outcome.ok
            assert isinstance(outcome.error, str) and "not parsed within 0.5s (ingest.parse_timeout)" in outcome.error
            state = storage.source_state(bad.id)
            assert state.last_error == outcome.error and state.consecutive_failures == 1  # backs off
            outcome = await poller.poll(good)
            assert outcome.ok and outcome.new_entries == 1
            assert pool.timeouts == 1
    finally:
        pool.close()
        storage.close()


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
