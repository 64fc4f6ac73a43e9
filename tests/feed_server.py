"""A reusable local feed server for tests and benchmarks (127.0.0.1 only, random port).

    async with FeedServer() as srv:
        srv.set_feed("/feed.xml", b"<rss ...>")
        url = srv.url("/feed.xml")

Or take the ``feed_server`` / ``feed_server_factory`` pytest fixtures: declare
``pytest_plugins = ["tests.feed_server"]`` in the test module (import ``FeedServer`` there only under
``TYPE_CHECKING``, or pytest warns that the module was imported before it could rewrite asserts),
or list the module in the root conftest's ``pytest_plugins``. Per path, the server answers with one of:

* ``set_feed``: a feed with an ETag (derived from the body) and a Last-Modified that moves when the
  body changes; conditional GET answers 304; gzip/deflate when the client asks for it;
* ``set_response``: any canned status, headers and body (410, 429 + Retry-After, 500, ...);
* ``redirect``: a 30x to another path or URL;
* ``stream`` / ``slow_drip``: a body sent in pieces, optionally slowly, without Content-Length;
* ``gzip_bomb``: a small gzip stream that inflates to ``size`` bytes of zeros;
* ``serve_directory``: real files under a prefix, with file-based validators;
* ``set_handler``: any aiohttp handler.

Every request is recorded in ``requests`` (path, method, headers); ``hits(path)`` counts them.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import gzip
import hashlib
import mimetypes
import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_FEED_TYPES = {".json": "application/feed+json", ".atom": "application/atom+xml", ".rss": "application/rss+xml",
               ".xml": "application/xml", ".rdf": "application/rdf+xml"}


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    method: str
    headers: CIMultiDictProxy[str]
    query: str = ""


@dataclass
class _Feed:
    body: bytes
    content_type: str
    etag: bool
    last_modified: bool
    compress: bool
    modified_at: float
    extra_headers: dict[str, str] = field(default_factory=dict)

    @property
    def etag_value(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    @property
    def last_modified_value(self) -> str:
        return email.utils.formatdate(self.modified_at, usegmt=True)


@functools.lru_cache(maxsize=8)
def gzip_bomb_bytes(size: int) -> bytes:
    """A valid gzip stream of ``size`` zero bytes, built without ever holding them inflated; cached,
    so each size is built once per process. 1 GiB → about 1 MB, in ~0.3 s.

    After a full flush the deflate state is reset, so every 1 MiB block of zeros compresses to the
    same bytes: compress one block, repeat its output, and finish with the remainder and trailer.
    """
    block = bytes(1 << 20)
    whole, rest = divmod(size, len(block))
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    repeated = compressor.compress(block) + compressor.flush(zlib.Z_FULL_FLUSH) if whole else b""
    tail = compressor.compress(bytes(rest)) + compressor.flush()
    crc = 0
    for _ in range(whole):
        crc = zlib.crc32(block, crc)
    crc = zlib.crc32(bytes(rest), crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    trailer = struct.pack("<II", crc, size & 0xFFFFFFFF)
    return header + repeated * whole + tail + trailer


def _accepts(request: web.Request, coding: str) -> bool:
    for part in request.headers.get("Accept-Encoding", "").split(","):
        name, _, params = part.strip().partition(";")
        if name.strip().lower() == coding:
            return params.replace(" ", "") not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    weakless = etag.removeprefix("W/")
    return "*" in tags or any(t.removeprefix("W/") == weakless for t in tags)


def _not_modified(request: web.Request, etag: str | None, modified_at: float | None) -> bool:
    """RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since."""
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        return etag is not None and _etag_matches(inm, etag)
    ims = request.headers.get("If-Modified-Since")
    if ims and modified_at is not None:
        try:
            since = email.utils.parsedate_to_datetime(ims).timestamp()
        except (TypeError, ValueError, IndexError):
            return False
        return int(modified_at) <= since
    return False


def _encode(request: web.Request, body: bytes, headers: CIMultiDict[str]) -> bytes:
    headers["Vary"] = "Accept-Encoding"
    if _accepts(request, "gzip"):
        headers["Content-Encoding"] = "gzip"
        return gzip.compress(body, mtime=0)
    if _accepts(request, "deflate"):
        headers["Content-Encoding"] = "deflate"
        return zlib.compress(body)
    return body


class FeedServer:
    """An aiohttp server on 127.0.0.1 (or ``host``, e.g. the loopback alias 127.0.0.2) serving feeds."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._routes: dict[str, Handler] = {}
        self._prefixes: dict[str, Path] = {}
        self._feeds: dict[str, _Feed] = {}
        self._runner: web.AppRunner | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> FeedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        # handler_cancellation: a client that gives up (deadline, size cap) must not leave a drip running
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[-1][1])
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FeedServer:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def base(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base + (path if path.startswith("/") else "/" + path)

    # -- what to serve ----------------------------------------------------------------------------------

    def set_handler(self, path: str, handler: Handler) -> None:
        """Any aiohttp handler for ``path`` (exact match, query string ignored)."""
        self._routes[path] = handler

    def set_feed(self, path: str, body: bytes, *, content_type: str = "application/rss+xml", etag: bool = True,
                 last_modified: bool = True, compress: bool = True,
                 headers: Mapping[str, str] | None = None) -> None:
        """Serve ``body``; changing the body between polls changes the ETag and moves Last-Modified
        forward (at least one second, so If-Modified-Since sees the change)."""
        old = self._feeds.get(path)
        now = time.time()
        if old is not None and old.body == body:
            modified_at = old.modified_at
        elif old is not None:
            modified_at = max(now, old.modified_at + 1)
        else:
            modified_at = now
        feed = _Feed(body, content_type, etag, last_modified, compress, modified_at, dict(headers or {}))
        self._feeds[path] = feed

        async def handler(request: web.Request) -> web.StreamResponse:
            out: CIMultiDict[str] = CIMultiDict(feed.extra_headers)
            out["Content-Type"] = feed.content_type
            tag = feed.etag_value if feed.etag else None
            when = feed.modified_at if feed.last_modified else None
            if tag:
                out["ETag"] = tag
            if when is not None:
                out["Last-Modified"] = feed.last_modified_value
            if _not_modified(request, tag, when):
                del out["Content-Type"]
                return web.Response(status=304, headers=out)
            data = _encode(request, feed.body, out) if feed.compress else feed.body
            return web.Response(body=data, headers=out)

        self._routes[path] = handler

    def set_response(self, path: str, status: int, *, headers: Mapping[str, str] | None = None,
                     body: bytes = b"") -> None:
        """Answer ``status`` with these headers and body, every time."""
        fixed = dict(headers or {})

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers=fixed, body=body or None)

        self._routes[path] = handler

    def redirect(self, path: str, to: str, status: int = 301) -> None:
        """Redirect ``path`` to ``to`` (a path on this server, any URL, or any other Location value)."""
        self.set_response(path, status, headers={"Location": to})

    def stream(self, path: str, body: bytes, *, chunk_size: int = 64 * 1024, delay: float = 0.0,
               content_type: str = "application/rss+xml", headers: Mapping[str, str] | None = None,
               content_length: bool = False) -> None:
        """Send ``body`` in ``chunk_size`` pieces, ``delay`` seconds apart; chunked transfer encoding
        unless ``content_length``."""
        extra = dict(headers or {})

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": content_type, **extra})
            if content_length:
                response.content_length = len(body)
            else:
                response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(body), chunk_size):
                if delay and start:
                    await asyncio.sleep(delay)
                await response.write(body[start:start + chunk_size])
            await response.write_eof()
            return response

        self._routes[path] = handler

    def slow_drip(self, path: str, body: bytes, bytes_per_second: float, *, chunk_size: int = 1) -> None:
        """Send ``body`` a few bytes at a time, ``bytes_per_second`` on average: each write comes well
        inside any read timeout, so only a total deadline stops it."""
        self.stream(path, body, chunk_size=chunk_size, delay=chunk_size / bytes_per_second)

    def gzip_bomb(self, path: str, size: int, *, content_length: bool = False) -> None:
        """``Content-Encoding: gzip`` that inflates to ``size`` zero bytes (sent whatever the client
        accepts). The compressed form (~1/1000 of ``size``) is built once per size and process."""
        data = gzip_bomb_bytes(size)
        self.stream(path, data, content_length=content_length,
                    headers={"Content-Encoding": "gzip", "Content-Type": "application/rss+xml"})

    def serve_directory(self, prefix: str, folder: str | Path) -> None:
        """Serve the files under ``folder`` at ``prefix`` + relative path, with ETag/Last-Modified from
        the file (so conditional GET works) and a feed-ish Content-Type from the suffix."""
        self._prefixes["/" + prefix.strip("/") + "/"] = Path(folder).resolve()

    def clear(self) -> None:
        """Forget every route and recorded request."""
        self._routes.clear()
        self._prefixes.clear()
        self._feeds.clear()
        self.requests.clear()

    # -- what happened ----------------------------------------------------------------------------------

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    def last_request(self, path: str | None = None) -> RecordedRequest:
        matching = [r for r in self.requests if path is None or r.path == path]
        if not matching:
            raise LookupError(f"no request for {path}")
        return matching[-1]

    # -- dispatch ---------------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(RecordedRequest(request.path, request.method, request.headers, request.query_string))
        handler = self._routes.get(request.path)
        if handler is not None:
            return await handler(request)
        for prefix, folder in self._prefixes.items():
            if request.path.startswith(prefix):
                return await self._serve_file(request, folder, request.path[len(prefix):])
        raise web.HTTPNotFound()

    async def _serve_file(self, request: web.Request, folder: Path, relative: str) -> web.StreamResponse:
        target = (folder / relative).resolve()
        if not target.is_relative_to(folder) or not target.is_file():
            raise web.HTTPNotFound()
        info = target.stat()
        headers: CIMultiDict[str] = CIMultiDict()
        headers["ETag"] = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        headers["Last-Modified"] = email.utils.formatdate(info.st_mtime, usegmt=True)
        if _not_modified(request, headers["ETag"], info.st_mtime):
            return web.Response(status=304, headers=headers)
        headers["Content-Type"] = (_FEED_TYPES.get(target.suffix.lower()) or mimetypes.guess_type(target.name)[0]
                                   or "application/octet-stream")
        body = await asyncio.to_thread(target.read_bytes)
        return web.Response(body=_encode(request, body, headers), headers=headers)


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    """A started ``FeedServer`` on 127.0.0.1, closed after the test."""
    async with FeedServer() as server:
        yield server


@pytest.fixture
async def feed_server_factory() -> AsyncIterator[Callable[..., Awaitable[FeedServer]]]:
    """``await feed_server_factory(host="127.0.0.2")``: more servers (e.g. on a loopback alias), all
    closed after the test."""
    servers: list[FeedServer] = []

    async def make(host: str = "127.0.0.1", port: int = 0) -> FeedServer:
        server = await FeedServer(host, port).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.close()
