"""APScheduler jobs: one per source, with jitter, no overlapping runs, misfires coalesced."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
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
        add_poll_job(scheduler, source, poll, jitter=jitter, first_run=first_run + stagger * (position % 30))
    return scheduler


def add_poll_job(scheduler: AsyncIOScheduler, source: SourceConfig, poll: PollJob, *, jitter: timedelta,
                 first_run: datetime) -> None:
    scheduler.add_job(
        poll, IntervalTrigger(seconds=source.interval.total_seconds(), jitter=int(jitter.total_seconds()) or None),
        args=[source], id=f"poll:{source.id}", name=f"poll {source.name}", next_run_time=first_run,
        replace_existing=True)


def sync_poll_jobs(scheduler: AsyncIOScheduler, sources: Sequence[SourceConfig], poll: PollJob, *,
                   jitter: timedelta, first_run: datetime) -> None:
    """Bring the jobs in line with a changed source list (added, removed, paused, edited from Discord)."""
    wanted = {s.id: s for s in sources if s.enabled}
    for job in scheduler.get_jobs():
        if job.id.startswith("poll:") and job.id[5:] not in wanted:
            job.remove()
    for source in wanted.values():
        job = scheduler.get_job(f"poll:{source.id}")
        if job is None or job.args[0] != source:
            add_poll_job(scheduler, source, poll, jitter=jitter, first_run=first_run)


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """A standard 5-field cron expression in a time zone; ValueError says what is wrong."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r} (use an IANA name such as Asia/Shanghai)") from None
    try:
        return CronTrigger.from_crontab(expression, timezone=zone)
    except ValueError as exc:
        raise ValueError(f"invalid cron expression {expression!r} (minute hour day month weekday): {exc}") from None


def next_fire_after(trigger: CronTrigger, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after``."""
    fire: datetime | None = trigger.get_next_fire_time(after, after)
    return fire


def scheduler_alive(scheduler: AsyncIOScheduler | None) -> bool:
    return bool(scheduler is not None and scheduler.running)
