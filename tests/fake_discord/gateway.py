"""Gateway transport pieces for the fake Discord: transport compression, one connection, one session.

Discord's ``compress=zlib-stream`` is one zlib context for the whole connection; every payload is
compressed and flushed with ``Z_SYNC_FLUSH`` so each websocket message ends with ``00 00 ff ff``.
``zstd-stream`` is only offered when a zstd module is importable (discord.py asks for it only then).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web

ZLIB_SUFFIX = b"\x00\x00\xff\xff"


class Compressor(Protocol):
    def __call__(self, data: bytes) -> bytes: ...


def make_compressor(kind: str | None) -> Compressor | None:
    """A per-connection compressor for the ``compress`` query value; None means plain text frames."""
    if kind is None:
        return None
    if kind == "zlib-stream":
        ctx = zlib.compressobj()

        def zlib_stream(data: bytes) -> bytes:
            return ctx.compress(data) + ctx.flush(zlib.Z_SYNC_FLUSH)

        return zlib_stream
    if kind == "zstd-stream":
        try:
            import zstandard  # type: ignore[import-not-found]
        except ImportError:
            zstandard = None
        if zstandard is not None:
            zctx = zstandard.ZstdCompressor().compressobj()

            def zstd_stream(data: bytes) -> bytes:
                out: bytes = zctx.compress(data) + zctx.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
                return out

            return zstd_stream
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14+

        sctx = zstd.ZstdCompressor()

        def stdlib_zstd(data: bytes) -> bytes:
            out: bytes = sctx.compress(data, mode=zstd.ZstdCompressor.FLUSH_BLOCK)
            return out

        return stdlib_zstd
    raise ValueError(f"unsupported gateway compression {kind!r}")


@dataclass
class Session:
    """One gateway session: its sequence counter and every dispatch sent in it (for RESUME replay)."""

    id: str
    shard: list[int]
    intents: int
    seq: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def next_dispatch(self, event: str, data: Any) -> dict[str, Any]:
        self.seq += 1
        payload = {"op": 0, "t": event, "s": self.seq, "d": data}
        self.events.append(payload)
        return payload


class Connection:
    """One accepted gateway websocket; payloads are compressed in send order and written by one task."""

    def __init__(self, ws: web.WebSocketResponse, compressor: Compressor | None, url: str) -> None:
        self.ws = ws
        self.url = url
        self.compressor = compressor
        self.session: Session | None = None
        self.dropped = 0
        self._queue: asyncio.Queue[tuple[bytes | str, asyncio.Future[None]] | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_loop(), name="fake-discord-gateway-writer")

    def send(self, payload: dict[str, Any]) -> asyncio.Future[None]:
        """Queue a payload (compressed now, so the zlib stream keeps queue order); the future resolves once written."""
        raw = json.dumps(payload, separators=(",", ":"))
        frame: bytes | str = raw if self.compressor is None else self.compressor(raw.encode())
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((frame, done))
        return done

    async def _write_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            frame, done = item
            try:
                if isinstance(frame, str):
                    await self.ws.send_str(frame)
                else:
                    await self.ws.send_bytes(frame)
            except Exception:  # a closing socket; the session keeps the event for a RESUME replay
                self.dropped += 1
            if not done.done():
                done.set_result(None)

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        self._queue.put_nowait(None)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(asyncio.shield(self._writer), 2.0)
        if not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if not self.ws.closed:
            await self.ws.close(code=code, message=message)

    async def finish(self) -> None:
        """Stop the writer after the socket is gone (pending payloads are dropped; RESUME replays them)."""
        if not self._writer.done():
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None and not item[1].done():
                self.dropped += 1
                item[1].set_result(None)
