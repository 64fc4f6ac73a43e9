"""The outbox worker: sends queued messages, marks them sent only after the target accepted them.

Messages for one channel go out in order; one channel failing never holds up another. Transient
failures are retried with exponential backoff (or the target's Retry-After); permanent ones
(deleted channel, missing permission) are marked failed with the reason and never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Protocol, TextIO

from bot.clock import Clock
from bot.errors import DeliveryError
from bot.format import MessageSpec, pack_embeds, render_embed_as_text
from bot.models import Entry, OutboxMessage
from bot.store.sqlite import SQLiteStorage

log = logging.getLogger(__name__)

Renderer = Callable[[OutboxMessage, Sequence[Entry]], MessageSpec]


class Deliverer(Protocol):
    async def send(self, channel_id: int, message: MessageSpec, *, nonce: str) -> str | None:
        """Deliver one message; return the platform's message id. Raise DeliveryError on failure."""


class WebhookPoster(Protocol):
    async def send(self, url: str, message: MessageSpec) -> str | None:
        """Execute the webhook; return the created message id. Raise DeliveryError on failure."""


class ConsoleDeliverer:
    """Prints what would be posted (the dry run)."""

    def __init__(self, stream: TextIO | None = None, *, channel_names: dict[int, str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.channel_names = channel_names or {}
        self.sent = 0

    async def send(self, channel_id: int, message: MessageSpec, *, nonce: str) -> str | None:
        self.show(self.channel_names.get(channel_id, f"channel {channel_id}"), message)
        return f"console-{nonce}"

    def show(self, target: str, message: MessageSpec) -> None:
        lines = [f"── to {target} " + "─" * max(0, 60 - len(target))]
        if message.content:
            lines.append(message.content)
        lines.extend(render_embed_as_text(e) for e in message.embeds)
        print("\n".join(lines) + "\n", file=self.stream, flush=True)
        self.sent += 1


class ConsoleWebhooks:
    """The dry run's webhook poster: prints, never shows the webhook's secret URL."""

    def __init__(self, console: ConsoleDeliverer) -> None:
        self.console = console

    async def send(self, url: str, message: MessageSpec) -> str | None:
        self.console.show("a webhook" + (f" as {message.username}" if message.username else ""), message)
        return None


class OutboxWorker:
    def __init__(self, storage: SQLiteStorage, deliverer: Deliverer, render: Renderer, *, clock: Clock,
                 base_backoff: timedelta = timedelta(seconds=5),
                 max_backoff: timedelta = timedelta(minutes=30), webhooks: WebhookPoster | None = None,
                 webhook_url: Callable[[str], str | None] | None = None) -> None:
        self.storage = storage
        self.deliverer = deliverer
        self.webhooks = webhooks
        self.webhook_url = webhook_url or (lambda _route: None)
        self.render = render
        self.clock = clock
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.wake = asyncio.Event()

    async def deliver_due(self) -> int:
        """Send every due message once; return how many were accepted."""
        now = self.clock()
        pending = await asyncio.to_thread(self.storage.pending_messages, now=now, limit=500)
        blocked = await asyncio.to_thread(self.storage.blocked_destinations, now=now)
        by_destination: dict[str, list[OutboxMessage]] = defaultdict(list)
        for message in pending:
            if message.destination not in blocked:
                by_destination[message.destination].append(message)
        results = await asyncio.gather(*(self._deliver_channel(msgs) for msgs in by_destination.values()))
        return sum(results)

    async def _deliver_channel(self, messages: list[OutboxMessage]) -> int:
        sent = 0
        for message in messages:
            outcome = await self._deliver_one(message)
            if outcome == "sent":
                sent += 1
            elif outcome == "retry":
                break  # keep the channel's order: later messages wait for this one
        return sent

    async def _deliver_one(self, message: OutboxMessage) -> str:
        entries = ([] if message.payload is not None
                   else await asyncio.to_thread(self.storage.entries_by_id, message.entry_ids))
        target = message.destination.replace(":", " ")
        try:
            spec = self.render(message, entries)
            message_id: str | None = None
            webhook_route = message.webhook_route
            for part, embeds in enumerate(_split_to_limits(spec)):
                nonce = message.nonce if part == 0 else f"{message.nonce}-{part}"
                if webhook_route is None:
                    message_id = await self.deliverer.send(message.channel_id, embeds, nonce=nonce[:25])
                else:
                    message_id = await self._send_webhook(webhook_route, embeds)
        except DeliveryError as exc:
            if exc.permanent:
                log.error("delivery to %s failed for good: %s", target, exc)
                await asyncio.to_thread(self.storage.mark_failed, message.id, error=str(exc))
                return "failed"
            delay = (timedelta(seconds=exc.retry_after) if exc.retry_after
                     else min(self.max_backoff, self.base_backoff * (2 ** min(message.attempts, 16))))
            log.warning("delivery to %s will be retried in %s: %s", target, delay, exc)
            await asyncio.to_thread(self.storage.mark_retry, message.id, error=str(exc),
                                    next_attempt_at=self.clock() + delay)
            return "retry"
        await asyncio.to_thread(self.storage.mark_sent, message.id, now=self.clock(),
                                discord_message_id=message_id)
        return "sent"

    async def _send_webhook(self, route_id: str, message: MessageSpec) -> str | None:
        """Webhooks have no nonce: a crash between Discord accepting and the commit can repeat
        one message after a restart (at-least-once; see README "Delivery guarantees")."""
        url = self.webhook_url(route_id)
        if url is None:
            raise DeliveryError(f"webhook {route_id}", "the route is no longer in the config", permanent=True)
        if self.webhooks is None:
            raise DeliveryError(f"webhook {route_id}", "webhook delivery is not available in this mode")
        return await self.webhooks.send(url, message)

    async def run_forever(self, poll_every: float = 5.0, *, ready: Callable[[], bool] | None = None) -> None:
        """Deliver whenever woken (new entries) or every ``poll_every`` seconds (retries).
        ``ready`` (e.g. "the gateway is connected") gates every round, so nothing is attempted
        against a client that is not logged in yet."""
        while True:
            while ready is not None and not ready():
                await asyncio.sleep(0.2)
            try:
                await self.deliver_due()
            except Exception:
                log.exception("outbox round failed; retrying shortly")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=poll_every)


def _split_to_limits(spec: MessageSpec) -> list[MessageSpec]:
    """A stored group normally fits one message; re-split if rendering changed since it was queued."""
    groups = pack_embeds(spec.embeds)
    if len(groups) <= 1:
        return [spec]
    return [MessageSpec(content=spec.content if i == 0 else None, embeds=tuple(spec.embeds[j] for j in group),
                        allowed_roles=spec.allowed_roles if i == 0 else (), username=spec.username,
                        avatar_url=spec.avatar_url) for i, group in enumerate(groups)]
