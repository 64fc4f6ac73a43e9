"""CPU-heavy ingest steps as plain functions, so they can run in a thread or a process pool.

Parsing, normalising and tagging a feed, and tokenizing entries for the index, are pure CPU work
under the GIL. With ``ingest.processes: N`` they run in N worker processes, which is what lets a
bot with hundreds of feeds use every core; with 0 (the default, the smallest footprint) they run
in a thread.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from bot.config import Config, TopicDef
from bot.errors import ParseTimeoutError, WorkerCrashError
from bot.models import Entry
from bot.normalize import normalize_entries
from bot.parse import parse_feed
from bot.topics import TopicMatcher

log = logging.getLogger(__name__)
T = TypeVar("T")
RESTART_BUDGET = 6
RESTART_WINDOW = 600.0
"""More than ``RESTART_BUDGET`` broken pools within ``RESTART_WINDOW`` seconds (workers killed as
fast as they start: a memory limit too small for them) and ingest goes on in a thread instead."""
PARSE_TIMEOUT = 120.0
"""Seconds a feed may take to parse (``ingest.parse_timeout``)."""
_matcher: TopicMatcher | None = None


def _init_worker(topics: Mapping[str, TopicDef]) -> None:
    global _matcher  # one matcher per worker process, built once
    _matcher = TopicMatcher.from_config(topics)


def _warm_up() -> None:
    """Runs once per worker as the pool opens: the worker process is spawned (interpreter start,
    imports, topic matcher) and the tokenizer's tables are built then, not in the first poll."""
    from bot.fold import _long_nonstarter_runs
    from bot.search.tokenize import _fold_table

    _fold_table()
    _long_nonstarter_runs()
    gc.collect()
    gc.freeze()


def parse_and_tag(body: bytes, url: str, content_type: str | None, source_id: str,
                  source_topics: Sequence[str], matcher: TopicMatcher | None = None) -> list[Entry]:
    """bytes → tagged entries, oldest first. Raises ParseError."""
    return _parse_and_tag(body, url, content_type, source_id, source_topics, matcher)[0]


def parse_tag_and_tokenize(body: bytes, url: str, content_type: str | None, source_id: str,
                           source_topics: Sequence[str], matcher: TopicMatcher | None = None,
                           ) -> tuple[list[Entry], list[tuple[str, str]]]:
    """``parse_and_tag`` plus each entry's index tokens, in one trip to a worker: for a first poll,
    when every entry is new and would be tokenized for the index right after it is stored."""
    entries, texts = _parse_and_tag(body, url, content_type, source_id, source_topics, matcher)
    return entries, tokenize_for_index(texts, normalized=True)


def _parse_and_tag(body: bytes, url: str, content_type: str | None, source_id: str, source_topics: Sequence[str],
                   matcher: TopicMatcher | None) -> tuple[list[Entry], list[tuple[str, str]]]:
    """Tagged entries, oldest first, with their title and summary normalised (NFKC, Traditional →
    Simplified) once for both uses: tagging matches their case-folded form, which is what
    ``bot.fold.fold`` gives, and the tokenizer splits them."""
    from bot.search.tokenize import normalize

    use = matcher or _matcher
    feed = parse_feed(body, url, content_type)
    entries = normalize_entries(feed, source_id, feed_url=url)
    texts = [(normalize(e.title), normalize(e.summary)) for e in entries]
    if use is not None:
        assign = use.assign_folded
        for e, (title, summary) in zip(entries, texts, strict=True):
            # fresh objects nobody else holds yet: set the field, skip a dataclasses.replace copy
            object.__setattr__(e, "topics", assign(f"{title}\n{summary}".casefold(), categories=e.categories,
                                                   source_topics=source_topics))
    order = oldest_first_order(entries)
    return [entries[i] for i in order], [texts[i] for i in order]


def oldest_first_order(entries: Sequence[Entry]) -> list[int]:
    """Positions of ``entries``, oldest first. Feeds list newest first, usually: sort by date when
    every entry has one, else reverse."""
    if entries and all(e.published is not None for e in entries):
        return sorted(range(len(entries)), key=lambda i: (entries[i].published, -i))
    return list(range(len(entries) - 1, -1, -1))


def tokenize_for_index(texts: Sequence[tuple[str, str]], *, normalized: bool = False) -> list[tuple[str, str]]:
    """(title, summary) pairs → the space-joined tokens the index stores. ``normalized``: the texts
    went through ``bot.search.tokenize.normalize`` already."""
    from bot.search.tokenize import tokenize_joined_many

    joined = iter(tokenize_joined_many((text for pair in texts for text in pair), normalized=normalized))
    return list(zip(joined, joined, strict=True))


class IngestPool:
    """Runs ingest functions in a process pool, or in a thread when ``processes`` is 0.

    A worker that dies (the OOM killer, a crash in a C library) breaks a ``ProcessPoolExecutor``
    for good: every later job would fail. So a broken pool is replaced, and each job it took down
    is run once more on the new one, one such retry at a time; a job that fails that way twice
    raises ``WorkerCrashError`` (the poller records it as that source's error). When pools keep
    breaking (``RESTART_BUDGET``), ingest falls back to a thread, as with ``processes: 0``.

    A feed still parsing after ``parse_timeout`` seconds raises ``ParseTimeoutError``. It may be
    stuck inside C code (a regex backtracking, which holds its worker's interpreter), and killing
    the process is the only way to stop that: the pool's workers are killed and replaced (which one
    runs the job is not known), and the other jobs they held run again, as after a crash. A thread
    cannot be stopped: in thread mode the job is only given up, and goes on in the background."""

    def __init__(self, processes: int, topics: Mapping[str, TopicDef], *,
                 parse_timeout: float = PARSE_TIMEOUT) -> None:
        self.processes = processes
        self.parse_timeout = parse_timeout
        self.matcher = TopicMatcher.from_config(topics)
        self._topics = dict(topics)
        self._executor: Executor | None = None
        self._warming: list[Future[None]] = []
        self._retry_lock = asyncio.Lock()
        self._broken_at: list[float] = []
        self.restarts = 0
        """How many times a broken process pool was replaced."""
        self.timeouts = 0
        """How many jobs were given up at their timeout."""
        self._abandoned: dict[str, threading.Event] = {}  # feed URL -> set when its given-up thread ends
        if processes > 0:
            self._executor = self._start_processes()
            # Each submit spawns a worker now, in the background.
            self._warming = [self._executor.submit(_warm_up) for _ in range(processes)]

    @classmethod
    def for_config(cls, config: Config, *, processes: int | None = None) -> IngestPool:
        """The pool ``config.ingest`` asks for (``processes`` overrides its process count)."""
        return cls(config.ingest.processes if processes is None else processes, config.topics,
                   parse_timeout=config.ingest.parse_timeout.total_seconds())

    def _start_processes(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")  # never fork a threaded process
        return ProcessPoolExecutor(max_workers=self.processes, mp_context=context,
                                   initializer=_init_worker, initargs=(self._topics,))

    def _replace_broken(self, broken: Executor) -> None:
        """A new pool for the broken one, unless another job already replaced it."""
        if self._executor is not broken:
            return
        broken.shutdown(wait=False, cancel_futures=True)
        now = time.monotonic()
        self._broken_at = [t for t in self._broken_at if now - t < RESTART_WINDOW] + [now]
        if len(self._broken_at) > RESTART_BUDGET:
            log.error("ingest worker processes died %d times in %d minutes (a memory limit too small for "
                      "them?); parsing in a thread from now on", len(self._broken_at), RESTART_WINDOW // 60)
            _init_worker(self._topics)  # jobs queued for a worker (no matcher argument) tag like one
            self._executor = None
            return
        log.warning("an ingest worker process died; starting a new process pool")
        self._executor = self._start_processes()
        self.restarts += 1

    async def wait_ready(self) -> None:
        """Until every worker process has started (imports done); immediate in thread mode."""
        await asyncio.gather(*(asyncio.wrap_future(f) for f in self._warming))

    def _kill_workers(self, executor: Executor) -> None:
        """Stop a job stuck in ``executor``: kill its worker processes and replace the pool. Jobs the
        others held fail with ``BrokenProcessPool`` and are run again (``run``). Not counted towards
        ``RESTART_BUDGET``: the kill was ours, not a sign that workers cannot live."""
        processes = getattr(executor, "_processes", None) or {}
        for process in list(processes.values()):
            process.kill()
        if self._executor is executor:
            self._executor = self._start_processes()
            executor.shutdown(wait=False)  # queued jobs fail as broken (and run again), not cancelled
            self.restarts += 1

    async def run(self, func: Callable[..., T], *args: Any, timeout: float | None = None,
                  key: str | None = None) -> T:
        """``func(*args)`` in a worker (or the thread). Past ``timeout`` seconds: ``TimeoutError``,
        after the worker running it was killed (process mode) or with the thread left running (and
        remembered under ``key``: see ``_in_thread``)."""
        if self._executor is None:
            return await self._in_thread(func, args, timeout, key)
        executor = self._executor
        try:
            return await self._in_process(executor, func, args, timeout)
        except BrokenProcessPool:
            self._replace_broken(executor)
        # Every job the dead worker's pool held fails alike, the one that killed it among them. They
        # are run again one at a time, so a job that kills a worker twice takes no other job with it.
        async with self._retry_lock:
            executor = self._executor
            if executor is None:
                return await self._in_thread(func, args, timeout, key)
            try:
                return await self._in_process(executor, func, args, timeout)
            except BrokenProcessPool:
                self._replace_broken(executor)
        raise WorkerCrashError("an ingest worker process died while running this job, twice "
                               "(killed, out of memory, or a crash in a parser library)")

    async def _in_process(self, executor: Executor, func: Callable[..., T], args: tuple[Any, ...],
                          timeout: float | None) -> T:
        job = asyncio.get_running_loop().run_in_executor(executor, func, *args)
        if timeout is None:
            return await job
        try:
            return await asyncio.wait_for(job, timeout)
        except TimeoutError:
            self.timeouts += 1
            self._kill_workers(executor)
            raise TimeoutError("its worker process was killed and replaced") from None

    async def _in_thread(self, func: Callable[..., T], args: tuple[Any, ...], timeout: float | None,
                         key: str | None = None) -> T:
        """A thread cannot be stopped: a job given up goes on in the background. While it does, no
        other job with the same ``key`` (feed URL) starts, so a feed polled again and again does
        not pile up threads stuck on it."""
        if timeout is None:
            return await asyncio.to_thread(func, *args)
        if key is not None:
            earlier = self._abandoned.get(key)
            if earlier is not None and not earlier.is_set():
                raise TimeoutError("its previous parse, given up, is still running in a thread: not "
                                   "starting another")
            self._abandoned.pop(key, None)
        done = threading.Event()

        def job() -> T:
            try:
                return func(*args)
            finally:
                done.set()

        try:
            return await asyncio.wait_for(asyncio.to_thread(job), timeout)
        except TimeoutError:
            self.timeouts += 1
            if key is not None:
                self._abandoned[key] = done
            raise TimeoutError("a parse thread cannot be stopped and goes on in the background; with "
                               "ingest.processes of 1 or more it runs in a process that can be") from None

    async def parse(self, body: bytes, url: str, content_type: str | None, source_id: str,
                    source_topics: Sequence[str]) -> list[Entry]:
        return await self._parse_with(parse_and_tag, body, url, content_type, source_id, source_topics)

    async def parse_for_index(self, body: bytes, url: str, content_type: str | None, source_id: str,
                              source_topics: Sequence[str]) -> tuple[list[Entry], list[tuple[str, str]]]:
        return await self._parse_with(parse_tag_and_tokenize, body, url, content_type, source_id, source_topics)

    async def _parse_with(self, func: Callable[..., T], body: bytes, url: str, content_type: str | None,
                          source_id: str, source_topics: Sequence[str]) -> T:
        """A thread gets this pool's matcher; a worker process uses the one it built at start."""
        timeout = self.parse_timeout
        try:
            if self._executor is None:
                return await self._in_thread(func, (body, url, content_type, source_id, source_topics,
                                                    self.matcher), timeout, url)
            return await self.run(func, body, url, content_type, source_id, tuple(source_topics), timeout=timeout,
                                  key=url)
        except TimeoutError as exc:
            log.warning("%s: not parsed within %gs (ingest.parse_timeout): %s", url, timeout, exc)
            raise ParseTimeoutError(url, f"not parsed within {timeout:g}s (ingest.parse_timeout): {exc}") from None

    async def tokenize(self, entries: Sequence[Entry]) -> list[tuple[str, str]]:
        texts = [(e.title, e.summary) for e in entries]
        if self._executor is None or len(texts) < 200:
            return await asyncio.to_thread(tokenize_for_index, texts)
        step = -(-len(texts) // self.processes)
        parts = await asyncio.gather(*(self.run(tokenize_for_index, texts[i:i + step])
                                       for i in range(0, len(texts), step)))
        return [pair for part in parts for pair in part]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
