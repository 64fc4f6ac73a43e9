"""APScheduler jobs: one per source, with jitter, no overlapping runs, misfires coalesced."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import SourceConfig

log = logging.getLogger(__name__)

PollJob = Callable[[SourceConfig], Awaitable[object]]


def build_scheduler(sources: Sequence[SourceConfig], poll: PollJob, *, jitter: timedelta,
                    first_run: datetime, stagger: timedelta = timedelta(seconds=2)) -> AsyncIOScheduler:
    """Every enabled source gets an interval job. First runs are staggered a little so a restart
    does not hit every server in the same second; later runs drift by up to ``jitter``."""
    scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={
        "coalesce": True,        # several missed runs collapse into one
        "max_instances": 1,      # never two polls of the same source at once
        "misfire_grace_time": None,
    })
    for position, source in enumerate(s for s in sources if s.enabled):
        scheduler.add_job(
            poll, IntervalTrigger(seconds=source.interval.total_seconds(),
                                  jitter=int(jitter.total_seconds()) or None),
            args=[source], id=f"poll:{source.id}", name=f"poll {source.name}",
            next_run_time=first_run + stagger * (position % 30), replace_existing=True)
    return scheduler


def scheduler_alive(scheduler: AsyncIOScheduler | None) -> bool:
    return bool(scheduler is not None and scheduler.running)
