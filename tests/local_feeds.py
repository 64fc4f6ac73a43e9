"""A tiny local feed server for tests: per-path bodies with ETags (304s), or canned answers."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web


def rss(items: list[tuple[str, str]]) -> bytes:
    body = "".join(f"<item><title>{t}</title><guid>{g}</guid><link>https://x.example/{g}</link>"
                   f"<pubDate>{d}</pubDate></item>" for g, t, d in
                   ((g, t, f"Mon, {i + 1:02d} Nov 2026 10:00:00 GMT") for i, (g, t) in enumerate(items)))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{body}</channel></rss>'.encode()


@dataclass
class Site:
    """A tiny feed server: per-path bodies with ETags, or canned error answers."""

    bodies: dict[str, bytes] = field(default_factory=dict)
    answers: dict[str, Callable[[], web.Response]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append((path, dict(request.headers)))
        if path in self.answers:
            return self.answers[path]()  # a fresh response per request
        if path not in self.bodies:
            raise web.HTTPNotFound()
        body = self.bodies[path]
        etag = '"' + hashlib.sha1(body).hexdigest()[:12] + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, headers={"ETag": etag, "Content-Type": "application/rss+xml"})


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    state = Site()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", state.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    server = web.TCPSite(runner, "127.0.0.1", 0)
    await server.start()
    state.base = f"http://127.0.0.1:{server._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield state
    await runner.cleanup()
