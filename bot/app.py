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
from typing import TYPE_CHECKING, Any, TextIO

from bot import USER_AGENT
from bot.admin import SourceAdmin
from bot.catalog import Catalog
from bot.clock import Clock, utc_now
from bot.config import Config, SourceConfig
from bot.deliver import ConsoleDeliverer, ConsoleWebhooks, Deliverer, OutboxWorker, WebhookPoster
from bot.digest import DigestRunner
from bot.errors import ConfigError
from bot.fetch import Fetcher, FetchSettings
from bot.format import MessageSpec, header_content, render_entry
from bot.health import HealthChecks, start_health_server
from bot.indexer import Indexer, retag_if_config_changed
from bot.ingest import IngestPool
from bot.models import Entry, OutboxMessage
from bot.poll import Poller, PollOutcome
from bot.registry import effective_sources
from bot.route import Router
from bot.schedule import build_scheduler, scheduler_alive, sync_poll_jobs
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
    """The running bot's parts, wired together. Use ``async with App.open(config) as app``.

    ``base_config`` is what the YAML says; ``config`` is the effective one (sources added or
    changed from Discord applied, see ``bot.registry``). ``reconfigure`` swaps it everywhere."""

    def __init__(self, config: Config, storage: SQLiteStorage, index: SearchIndex, fetcher: Fetcher,
                 *, clock: Clock, pool: IngestPool | None = None, base_config: Config | None = None) -> None:
        self.base_config = base_config or config
        self.config = config
        self.storage = storage
        self.index = index
        self.fetcher = fetcher
        self.clock = clock
        self.pool = pool or IngestPool.for_config(config, processes=0)
        self.indexer = Indexer(storage, index, pool=self.pool)
        self.catalog = Catalog(config, storage, index, clock=clock)
        self.worker: OutboxWorker | None = None
        self.router = Router(config)
        self.poller = Poller(config, storage, fetcher, clock=clock, pool=self.pool,
                             on_new_entries=self._on_new_entries, router=self.router,
                             on_indexable=self.indexer.offer)
        self.digests = DigestRunner(storage, self.router, clock=clock)
        self.scheduler: AsyncIOScheduler | None = None
        self.topic_labels = {k: v.label or k for k, v in config.topics.items()}
        self.on_reconfigure: list[Callable[[Config], None]] = []
        self._polls: set[asyncio.Task[Any]] = set()
        self._stopping = False

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, config: Config, *, clock: Clock = utc_now) -> AsyncIterator[App]:
        storage = await asyncio.to_thread(SQLiteStorage, config.storage.path)
        try:
            effective = config.with_sources(effective_sources(config, await asyncio.to_thread(
                storage.runtime_sources)))
            await asyncio.to_thread(storage.sync_sources, [(s.id, s.url) for s in effective.sources])
            index = await asyncio.to_thread(SearchIndex.open, config.storage.resolved_index_path)
            pool = IngestPool.for_config(config)
            try:
                async with Fetcher(fetch_settings(config)) as fetcher:
                    app = cls(effective, storage, index, fetcher, clock=clock, pool=pool, base_config=config)
                    await app.digests.start_clocks()
                    await app.indexer.catch_up_async()
                    await asyncio.to_thread(retag_if_config_changed, effective, storage, index)
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

    async def reconfigure(self) -> Config:
        """Re-read the sources managed from Discord and swap the effective config everywhere."""
        rows = await asyncio.to_thread(self.storage.runtime_sources)
        config = self.base_config.with_sources(effective_sources(self.base_config, rows))
        await asyncio.to_thread(self.storage.sync_sources, [(s.id, s.url) for s in config.sources])
        self.config = config
        self.router = Router(config)
        self.poller.config = config
        self.poller.router = self.router
        self.digests.router = self.router
        await self.digests.start_clocks()
        self.catalog.reconfigure(config)
        if self.scheduler is not None:
            sync_poll_jobs(self.scheduler, config.sources, self._scheduled_poll, jitter=config.defaults.jitter,
                           first_run=self.clock() + timedelta(seconds=1))
        for hook in self.on_reconfigure:
            hook(config)
        self.digests.wake.set()
        return config

    def render_message(self, message: OutboxMessage, entries: Sequence[Entry]) -> MessageSpec:
        """Rows queued before routes existed, and admin notices, are rendered when sent."""
        if message.payload is not None:
            return MessageSpec.from_json(message.payload)
        source = self.config.source(message.source_id)
        name = source.name if source else message.source_id
        embeds = tuple(render_entry(e, source_name=name, summary_length=source.summary_length if source else 300,
                                    color=source.color if source else None, topic_labels=self.topic_labels)
                       for e in entries)
        return MessageSpec(content=header_content(message.header), embeds=embeds)

    def webhook_url(self, route_id: str) -> str | None:
        route = self.config.route(route_id)
        return route.webhook_url if route is not None else None

    def attach_deliverer(self, deliverer: Deliverer, webhooks: WebhookPoster | None = None) -> OutboxWorker:
        self.worker = OutboxWorker(self.storage, deliverer, self.render_message, clock=self.clock,
                                   webhooks=webhooks, webhook_url=self.webhook_url)
        return self.worker

    # -- one-shot operations ----------------------------------------------------------------
    async def poll_all(self, *, force: bool = False) -> list[PollOutcome]:
        sources = [s for s in self.config.sources if s.enabled]
        return list(await asyncio.gather(*(self.poller.poll(s, force=force) for s in sources)))

    async def run_once(self, deliverer: Deliverer, webhooks: WebhookPoster | None = None) -> list[PollOutcome]:
        """Poll every source once, deliver what is due (digests only when due), index what is new."""
        worker = self.attach_deliverer(deliverer, webhooks)
        outcomes = await self.poll_all(force=True)
        await self.digests.run_due()
        await worker.deliver_due()
        await self.indexer.catch_up_async()
        return outcomes

    # -- long-running ------------------------------------------------------------------------
    async def run_forever(self, deliverer: Deliverer, *, checks: HealthChecks | None = None,
                          stop: asyncio.Event | None = None, extra: Sequence[asyncio.Task[None]] = (),
                          ready: Callable[[], bool] | None = None, webhooks: WebhookPoster | None = None,
                          shutdown_grace: float = 5.0) -> None:
        stop = stop or asyncio.Event()
        worker = self.attach_deliverer(deliverer, webhooks)
        self.scheduler = build_scheduler(self.config.sources, self._scheduled_poll,
                                         jitter=self.config.defaults.jitter,
                                         first_run=self.clock() + timedelta(seconds=1))
        self.scheduler.start()
        tasks = [asyncio.create_task(worker.run_forever(ready=ready), name="outbox"),
                 asyncio.create_task(self.indexer.run_forever(), name="indexer"),
                 asyncio.create_task(self.digests.run_forever(on_queued=worker.wake), name="digests"), *extra]
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
            # Every database write is one transaction and every send carries its nonce, so
            # cancelling mid-send is safe: the row stays pending and a restart resends it once.
            # Polls still running (a slow feed) are cancelled here too, before the fetcher and the
            # database close under them; the scheduler does not cancel its running jobs.
            self._stopping = True
            running = [*tasks, *self._polls]
            for task in running:
                task.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*running, return_exceptions=True), timeout=shutdown_grace)
            if runner is not None:
                await runner.cleanup()

    async def _scheduled_poll(self, source: SourceConfig) -> None:
        """The scheduler's job: one poll, tracked so that shutdown can cancel it."""
        task = asyncio.current_task()
        if task is not None:
            self._polls.add(task)
        try:
            await self.poller.poll(source)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Shutting down: nothing was half-stored (one transaction); the next start polls again.
            # Returning (instead of re-raising) keeps APScheduler from logging an error traceback.
        finally:
            if task is not None:
                self._polls.discard(task)

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
    webhooks = ConsoleWebhooks(deliverer)
    async with App.open(config) as app:
        if once:
            return await app.run_once(deliverer, webhooks)
        stop = asyncio.Event()
        install_signal_handlers(stop)
        await app.run_forever(deliverer, stop=stop, webhooks=webhooks)
        return []


async def run_discord(config: Config) -> None:
    """Run the bot for real: Discord gateway + slash commands + scheduled polling."""
    if not config.token:
        raise ConfigError("no bot token: set DISCORD_TOKEN (or DISCORD_TOKEN_FILE), or use --dry-run",
                          key="DISCORD_TOKEN")
    from bot.discord_adapter.client import DigestBot, point_discord_py_at
    from bot.discord_adapter.delivery import DiscordDeliverer
    from bot.discord_adapter.webhooks import WebhookSender

    point_discord_py_at(config.discord.api_base, config.discord.gateway_url)
    async with App.open(config) as app:
        client = DigestBot(app.config, app.catalog, admin=SourceAdmin(app), digests=app.digests,
                           wake_outbox=lambda: app.worker.wake.set() if app.worker else None)
        app.on_reconfigure.append(client.reconfigure)
        stop = asyncio.Event()
        install_signal_handlers(stop)

        async def run_client() -> None:
            async with client:
                await client.start(config.token or "")

        client_task = asyncio.create_task(run_client(), name="discord")
        webhooks = WebhookSender(api_base=config.discord.api_base)
        try:
            await app.run_forever(DiscordDeliverer(client), checks=app.health_checks(gateway=lambda: client.connected),
                                  stop=stop, extra=[client_task], ready=lambda: client.connected, webhooks=webhooks)
        finally:
            await webhooks.close()
            if not client.is_closed():
                await client.close()
