"""A minimal static file server with ETag/Last-Modified and 304s, for benchmarks (loopback only)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.utils import formatdate
from pathlib import Path

from aiohttp import web

LOOPBACK_HOSTS = 16
"""The server also listens on 127.0.0.2 … 127.0.0.16 (same port), so a benchmark can spread feeds
over several hosts as real feeds are, instead of queueing every request behind one host's limit."""


def spread_over_hosts(base: str, paths: list[str], hosts: int = LOOPBACK_HOSTS) -> list[str]:
    """``http://127.0.0.1:P`` + paths → URLs round-robin over 127.0.0.1 … 127.0.0.<hosts>."""
    port = base.rsplit(":", 1)[1]
    return [f"http://127.0.0.{i % hosts + 1}:{port}/{path}" for i, path in enumerate(paths)]


@asynccontextmanager
async def serve_folder(folder: Path) -> AsyncIterator[str]:
    cache: dict[str, tuple[bytes, str, str]] = {}
    for path in folder.rglob("*"):
        if path.is_file():
            body = path.read_bytes()
            cache[path.relative_to(folder).as_posix()] = (
                body, '"' + hashlib.sha1(body).hexdigest() + '"', formatdate(path.stat().st_mtime, usegmt=True))

    async def handle(request: web.Request) -> web.Response:
        item = cache.get(request.match_info["path"])
        if item is None:
            raise web.HTTPNotFound()
        body, etag, modified = item
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag, "Last-Modified": modified})
        ctype = "application/json" if request.match_info["path"].endswith(".json") else "application/xml"
        return web.Response(body=body, headers={"ETag": etag, "Last-Modified": modified, "Content-Type": ctype})

    app = web.Application()
    app.router.add_get("/{path:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    for host in range(2, LOOPBACK_HOSTS + 1):  # loopback aliases only (127.0.0.0/8 is all loopback)
        await web.TCPSite(runner, f"127.0.0.{host}", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def serve_folder_in_process(folder: Path) -> AsyncIterator[str]:
    """The same server in its own process, as real feed servers are: the engine under test then
    does not share its event loop (or its core) with the server."""
    import asyncio
    import sys

    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bench.feed_http", str(folder),
                                                stdout=asyncio.subprocess.PIPE,
                                                cwd=str(Path(__file__).resolve().parents[1]))
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    try:
        yield line.decode().strip()
    finally:
        proc.terminate()
        await proc.wait()


def _main() -> None:
    import asyncio
    import sys

    async def run() -> None:
        async with serve_folder(Path(sys.argv[1])) as base:
            print(base, flush=True)
            await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    _main()
