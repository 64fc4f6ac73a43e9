"""Scheduled digests: at each cron time of a digest route, everything held since the last one.

Fire times come from APScheduler's ``CronTrigger`` in the route's time zone, but are checked
against the app's clock and the database rather than an in-memory timer: the period start is
stored per route, so a digest missed while the bot was down is posted once when it comes back
(covering the whole gap), and a restart right after a digest does not post it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from bot.clock import Clock
from bot.digest_layout import DigestLayout, empty_digest_message
from bot.models import PlannedMessage
from bot.route import CompiledRoute, Router
from bot.schedule import cron_trigger, next_fire_after
from bot.store.sqlite import SQLiteStorage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DigestRun:
    route_id: str
    period_start: datetime
    period_end: datetime
    entries: int
    messages: int
    layout: DigestLayout | None


class DigestRunner:
    def __init__(self, storage: SQLiteStorage, router: Router, *, clock: Clock) -> None:
        self.storage = storage
        self.router = router
        self.clock = clock
        self.wake = asyncio.Event()
        self._lock = asyncio.Lock()

    def next_fire(self, route: CompiledRoute, after: datetime) -> datetime | None:
        assert route.config.schedule is not None
        return next_fire_after(cron_trigger(route.config.schedule, route.config.timezone), after)

    async def start_clocks(self) -> None:
        """A digest route's first period starts when the bot first runs with it (not when it is
        first checked), so a digest that falls due while the bot is down is still caught up.

        A digest route gone from the config (or turned realtime) is forgotten: its held entries
        would otherwise wait forever, and come out in one stale digest if the id were used again."""
        routes = self.router.digest_routes()
        dropped = await asyncio.to_thread(self.storage.forget_digest_routes, keep=[r.id for r in routes])
        for route_id, held in sorted(dropped.items()):
            log.info("digest route %s is no longer in the config: %d held entries dropped", route_id, held)
        for route in routes:
            await asyncio.to_thread(self.storage.start_digest_clock, route.id, now=self.clock())

    async def period_start(self, route: CompiledRoute) -> datetime:
        """Read-only: ``start_clocks`` (at open and on every reconfigure) wrote the first one."""
        return await asyncio.to_thread(self.storage.last_digest_at, route.id) or self.clock()

    async def due(self) -> list[CompiledRoute]:
        now = self.clock()
        due = []
        for route in self.router.digest_routes():
            start = await self.period_start(route)
            fire = self.next_fire(route, start)
            if fire is not None and fire <= now:
                due.append(route)
        return due

    async def run_due(self) -> list[DigestRun]:
        """Run every digest whose next fire time has passed (several missed fire times: one digest)."""
        runs = []
        for route in await self.due():
            runs.append(await self.run(route))
        return runs

    async def preview(self, route: CompiledRoute) -> tuple[DigestRun, list[PlannedMessage]]:
        """What the next digest would post now, without posting or consuming anything."""
        start = await self.period_start(route)
        run, planned, _ = await self._build(route, start, self.clock())
        return run, planned

    async def run(self, route: CompiledRoute) -> DigestRun:
        """Build and queue one digest now (also ``/digest now``)."""
        async with self._lock:
            start = await self.period_start(route)
            end = self.clock()
            run, planned, entry_ids = await self._build(route, start, end)
            await asyncio.to_thread(self.storage.commit_digest, route.id, entry_ids=entry_ids, messages=planned,
                                    period_end=end, now=end)
            log.info("digest %s: %d entries in %d messages (%s → %s)", route.id, run.entries, run.messages,
                     start, end)
            return run

    async def _build(self, route: CompiledRoute, start: datetime, end: datetime
                     ) -> tuple[DigestRun, list[PlannedMessage], list[int]]:
        """The digest's messages and the held entries they account for (only those are released:
        entries arriving while it is built wait for the next one)."""
        entries = await asyncio.to_thread(self.storage.digest_entries, route.id)
        if not entries:
            planned: list[PlannedMessage] = []
            if route.config.post_empty:
                spec = empty_digest_message(route.config.header, start, end, route.zone)
                planned = [PlannedMessage(route_id=route.id, destination=route.config.destination,
                                          channel_id=route.config.channel_id or 0, entry_ids=(),
                                          payload=spec.to_json())]
            return DigestRun(route.id, start, end, 0, len(planned), None), planned, []
        layout, planned = self.router.render_digest(route, entries, period_start=start, period_end=end)
        return (DigestRun(route.id, start, end, len(entries), len(planned), layout), planned,
                [e.id or 0 for e in entries])

    async def seconds_until_next(self) -> float:
        now = self.clock()
        waits = []
        for route in self.router.digest_routes():
            fire = self.next_fire(route, await self.period_start(route))
            if fire is not None:
                waits.append((fire - now).total_seconds())
        return max(0.0, min(waits)) if waits else 3600.0

    async def run_forever(self, *, max_sleep: float = 30.0, on_queued: asyncio.Event | None = None) -> None:
        """Check at each fire time (and at least every ``max_sleep`` seconds, so clock jumps and
        route changes are noticed)."""
        while True:
            try:
                runs = await self.run_due()
                if any(r.messages for r in runs) and on_queued is not None:
                    on_queued.set()
                sleep = min(max_sleep, await self.seconds_until_next())
            except Exception:
                log.exception("digest round failed; retrying shortly")
                sleep = max_sleep
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=max(0.5, sleep))

