"""Composition root: config → storage → index → fetcher → poller → outbox → scheduler → adapter.

Resources open and close in pairs, in one place (``App.open`` is an async context manager).
Nothing happens at import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, TextIO

from bot import USER_AGENT
from bot.catalog import Catalog
from bot.clock import Clock, utc_now
from bot.config import Config
from bot.deliver import ConsoleDeliverer, Deliverer, OutboxWorker
from bot.errors import ConfigError
from bot.fetch import Fetcher, FetchSettings
from bot.format import MessageSpec, header_content, render_entry
from bot.health import HealthChecks, start_health_server
from bot.indexer import Indexer, retag_if_config_changed
from bot.ingest import IngestPool
from bot.models import Entry, OutboxMessage
from bot.poll import Poller, PollOutcome
from bot.schedule import build_scheduler, scheduler_alive
from bot.search.index import SearchIndex
from bot.store.sqlite import SQLiteStorage

if TYPE_CHECKING:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger(__name__)


def fetch_settings(config: Config) -> FetchSettings:
    f = config.fetch
    return FetchSettings(
        connect_timeout=f.connect_timeout.total_seconds(), read_timeout=f.read_timeout.total_seconds(),
        total_timeout=f.total_timeout.total_seconds(), max_body_bytes=f.max_body,
        per_host_limit=f.per_host_limit, max_redirects=f.max_redirects,
        user_agent=f.user_agent or USER_AGENT, allow_networks=tuple(f.allow_private_networks))


class App:
    """The running bot's parts, wired together. Use ``async with App.open(config) as app``."""

    def __init__(self, config: Config, storage: SQLiteStorage, index: SearchIndex, fetcher: Fetcher,
                 *, clock: Clock, pool: IngestPool | None = None) -> None:
        self.config = config
        self.storage = storage
        self.index = index
        self.fetcher = fetcher
        self.clock = clock
        self.pool = pool or IngestPool(0, config.topics)
        self.indexer = Indexer(storage, index, pool=self.pool)
        self.catalog = Catalog(config, storage, index, clock=clock)
        self.worker: OutboxWorker | None = None
        self.poller = Poller(config, storage, fetcher, clock=clock, pool=self.pool,
                             on_new_entries=self._on_new_entries)
        self.scheduler: AsyncIOScheduler | None = None
        self.topic_labels = {k: v.label or k for k, v in config.topics.items()}

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, config: Config, *, clock: Clock = utc_now) -> AsyncIterator[App]:
        storage = await asyncio.to_thread(SQLiteStorage, config.storage.path)
        try:
            await asyncio.to_thread(storage.sync_sources, [(s.id, s.url) for s in config.sources])
            index = await asyncio.to_thread(SearchIndex.open, config.storage.resolved_index_path)
            pool = IngestPool(config.ingest.processes, config.topics)
            try:
                async with Fetcher(fetch_settings(config)) as fetcher:
                    app = cls(config, storage, index, fetcher, clock=clock, pool=pool)
                    await app.indexer.catch_up_async()
                    await asyncio.to_thread(retag_if_config_changed, config, storage, index)
                    yield app
            finally:
                await asyncio.to_thread(pool.close)
                await asyncio.to_thread(index.close)
        finally:
            await asyncio.to_thread(storage.close)

    # -- wiring -----------------------------------------------------------------------------
    def _on_new_entries(self, count: int) -> None:
        self.indexer.wake.set()
        if self.worker is not None:
            self.worker.wake.set()

    def render_message(self, message: OutboxMessage, entries: Sequence[Entry]) -> MessageSpec:
        source = self.config.source(message.source_id)
        name = source.name if source else message.source_id
        embeds = tuple(render_entry(e, source_name=name, summary_length=source.summary_length if source else 300,
                                    color=source.color if source else None, topic_labels=self.topic_labels)
                       for e in entries)
        return MessageSpec(content=header_content(message.header), embeds=embeds)

    def attach_deliverer(self, deliverer: Deliverer) -> OutboxWorker:
        self.worker = OutboxWorker(self.storage, deliverer, self.render_message, clock=self.clock)
        return self.worker

    # -- one-shot operations ----------------------------------------------------------------
    async def poll_all(self, *, force: bool = False) -> list[PollOutcome]:
        sources = [s for s in self.config.sources if s.enabled]
        return list(await asyncio.gather(*(self.poller.poll(s, force=force) for s in sources)))

    async def run_once(self, deliverer: Deliverer) -> list[PollOutcome]:
        """Poll every source once, deliver what is due, index what is new."""
        worker = self.attach_deliverer(deliverer)
        outcomes = await self.poll_all(force=True)
        await worker.deliver_due()
        await self.indexer.catch_up_async()
        return outcomes

    # -- long-running ------------------------------------------------------------------------
    async def run_forever(self, deliverer: Deliverer, *, checks: HealthChecks | None = None,
                          stop: asyncio.Event | None = None, extra: Sequence[asyncio.Task[None]] = (),
                          ready: Callable[[], bool] | None = None) -> None:
        stop = stop or asyncio.Event()
        worker = self.attach_deliverer(deliverer)
        self.scheduler = build_scheduler(self.config.sources, self.poller.poll, jitter=self.config.defaults.jitter,
                                         first_run=self.clock() + timedelta(seconds=1))
        self.scheduler.start()
        tasks = [asyncio.create_task(worker.run_forever(ready=ready), name="outbox"),
                 asyncio.create_task(self.indexer.run_forever(), name="indexer"), *extra]
        runner = None
        if self.config.health.enabled:
            checks = checks or self.health_checks(gateway=lambda: True)
            runner = await start_health_server(checks, self.config.health.host, self.config.health.port)
        try:
            waiters = [asyncio.create_task(stop.wait()), *tasks]
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiters[0] and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            log.info("shutting down")
            self.scheduler.shutdown(wait=False)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()

    def database_ok(self) -> bool:
        try:
            self.storage.get_meta("install_id")
        except Exception:
            return False
        return True

    def health_checks(self, *, gateway: Callable[[], bool]) -> HealthChecks:
        return HealthChecks(scheduler=lambda: scheduler_alive(self.scheduler), database=self.database_ok,
                            gateway=gateway)


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run_dry(config: Config, *, once: bool, stream: TextIO | None = None) -> list[PollOutcome]:
    """Poll and print what would be posted, instead of posting it."""
    deliverer = ConsoleDeliverer(stream or sys.stdout)
    async with App.open(config) as app:
        if once:
            return await app.run_once(deliverer)
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await app.run_forever(deliverer, stop=stop)
        return []


async def run_discord(config: Config) -> None:
    """Run the bot for real: Discord gateway + slash commands + scheduled polling."""
    if not config.token:
        raise ConfigError("no bot token: set DISCORD_TOKEN (or DISCORD_TOKEN_FILE), or use --dry-run",
                          key="DISCORD_TOKEN")
    from bot.discord_adapter.client import DigestBot, point_discord_py_at
    from bot.discord_adapter.delivery import DiscordDeliverer

    point_discord_py_at(config.discord.api_base, config.discord.gateway_url)
    async with App.open(config) as app:
        client = DigestBot(config, app.catalog)
        stop = asyncio.Event()
        install_signal_handlers(stop)

        async def run_client() -> None:
            async with client:
                await client.start(config.token or "")

        client_task = asyncio.create_task(run_client(), name="discord")
        try:
            await app.run_forever(DiscordDeliverer(client), checks=app.health_checks(gateway=lambda: client.connected),
                                  stop=stop, extra=[client_task], ready=lambda: client.connected)
        finally:
            if not client.is_closed():
                await client.close()
