"""The outbox worker against a recording deliverer: order per channel, retries, permanent failures."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.deliver import OutboxWorker
from bot.errors import DeliveryError
from bot.format import MessageSpec, render_entry
from bot.models import Entry, PlannedMessage, RoutingPlan
from bot.store.sqlite import SQLiteStorage


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class RecordingDeliverer:
    def __init__(self) -> None:
        self.sent: list[tuple[int, list[str], str]] = []
        self.failures: dict[int, list[DeliveryError]] = {}

    async def send(self, channel_id: int, message: MessageSpec, *, nonce: str) -> str | None:
        queue = self.failures.get(channel_id)
        if queue:
            raise queue.pop(0)
        self.sent.append((channel_id, [e.title for e in message.embeds], nonce))
        return str(len(self.sent))


def render(message, entries):
    """Messages are rendered when queued (the router's payload); admin notices when sent."""
    if message.payload is not None:
        return MessageSpec.from_json(message.payload)
    return MessageSpec(content=message.header, embeds=tuple(render_entry(e, source_name="s") for e in entries))


def one_message_per_entry(*channels):
    def plan(entries):
        return RoutingPlan(messages=tuple(
            PlannedMessage(route_id=f"r{c}", destination=f"channel:{c}", channel_id=c, entry_ids=(e.id,),
                           payload=MessageSpec(content="H", embeds=(render_entry(e, source_name="s"),)).to_json())
            for c in channels for e in entries))
    return plan


@pytest.fixture
def setup(tmp_path):
    clock = Clock()
    storage = SQLiteStorage(tmp_path / "db.sqlite3")
    storage.sync_sources([("s", "https://x")])
    deliverer = RecordingDeliverer()
    worker = OutboxWorker(storage, deliverer, render, clock=clock)
    entries = [Entry(source_id="s", key=str(i), title=f"e{i}", link=None, summary="", published=None)
               for i in range(4)]
    storage.store_entries("s", entries, now=clock.now, backfill=10, plan=one_message_per_entry(1, 2))
    yield clock, storage, deliverer, worker
    storage.close()


async def test_delivers_in_order_and_marks_sent(setup):
    _clock, storage, deliverer, worker = setup
    assert await worker.deliver_due() == 8
    assert [t for c, t, _ in deliverer.sent if c == 1] == [["e0"], ["e1"], ["e2"], ["e3"]]
    assert await worker.deliver_due() == 0  # nothing twice
    assert storage.pending_count() == 0


async def test_transient_failure_keeps_channel_order_and_other_channels_flow(setup):
    clock, _storage, deliverer, worker = setup
    deliverer.failures[1] = [DeliveryError("channel 1", "503", retry_after=30)]
    assert await worker.deliver_due() == 4  # channel 2 unaffected
    assert [c for c, _, _ in deliverer.sent] == [2, 2, 2, 2]
    assert await worker.deliver_due() == 0  # channel 1 waits for its retry time, in order
    clock.now += timedelta(seconds=31)
    assert await worker.deliver_due() == 4
    assert [t for c, t, _ in deliverer.sent if c == 1] == [["e0"], ["e1"], ["e2"], ["e3"]]


async def test_retry_reuses_the_same_nonce(setup):
    clock, storage, deliverer, worker = setup
    first_nonce = storage.pending_messages(now=clock.now)[0].nonce
    deliverer.failures[1] = [DeliveryError("channel 1", "timeout")]
    await worker.deliver_due()
    clock.now += timedelta(hours=1)
    await worker.deliver_due()
    assert next(n for c, t, n in deliverer.sent if c == 1 and t == ["e0"]) == first_nonce


async def test_permanent_failure_is_recorded_once_and_not_retried(setup):
    clock, storage, deliverer, worker = setup
    deliverer.failures[2] = [DeliveryError("channel 2", "Missing Permissions", permanent=True)] * 4
    await worker.deliver_due()
    assert storage.failed_delivery_counts()["s"][0] == 4
    clock.now += timedelta(days=1)
    assert await worker.deliver_due() == 0
    assert [c for c, _, _ in deliverer.sent] == [1, 1, 1, 1]
