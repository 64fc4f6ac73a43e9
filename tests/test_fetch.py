"""The fetcher against the local FeedServer: every connection goes to 127.0.0.1 (or the loopback
alias 127.0.0.2, which the guard must refuse before connecting). Names resolve through a fake
resolver, never the network."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import os
import socket
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from bot import USER_AGENT
from bot.errors import BlockedAddressError, FetchError
from bot.fetch import ACCEPT_ENCODING, MAX_RETRY_AFTER, Fetcher, FetchSettings, parse_retry_after, redact

if TYPE_CHECKING:
    from tests.feed_server import FeedServer

pytest_plugins = ["tests.feed_server"]

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><guid>1</guid></item></channel></rss>'
LOOPBACK = ("127.0.0.1/32",)


class HostsResolver(AbstractResolver):
    """A hosts-file resolver: known names map to fixed addresses, anything else fails at once."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        return [ResolveResult(hostname=host, host=self.table[host], port=port, family=socket.AF_INET, proto=0,
                              flags=0)]

    async def close(self) -> None:
        pass


def settings(**overrides: object) -> FetchSettings:
    base: dict[str, object] = {"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 5.0,
                               "allow_networks": LOOPBACK}
    base.update(overrides)
    return FetchSettings(**base)  # type: ignore[arg-type]


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    resolver = HostsResolver({"feeds.test": "127.0.0.1", "alias.test": "127.0.0.2"})
    async with Fetcher(settings(), resolver=resolver) as f:
        yield f


@pytest.fixture
async def alias_server(feed_server_factory: Callable[..., Awaitable[FeedServer]]) -> FeedServer:
    """A server on the loopback alias 127.0.0.2: not allow-listed, so it must never be hit."""
    server = await feed_server_factory(host="127.0.0.2")
    server.set_feed("/feed.xml", FEED)
    return server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- plain fetches and validators ------------------------------------------------------------------------


async def test_200_with_validators_and_headers(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED)
    result = await fetcher.fetch(feed_server.url("/feed.xml"))
    assert result.status == 200
    assert result.body == FEED
    assert result.etag and result.etag.startswith('"')
    assert result.last_modified and result.last_modified.endswith("GMT")
    assert result.content_type == "application/rss+xml"
    assert result.permanent_url is None and not result.not_modified
    sent = feed_server.last_request("/feed.xml").headers
    assert sent["User-Agent"] == USER_AGENT
    assert "application/rss+xml" in sent["Accept"] and "application/atom+xml" in sent["Accept"]
    assert sent["Accept-Encoding"] == ACCEPT_ENCODING
    assert "If-None-Match" not in sent and "If-Modified-Since" not in sent


async def test_custom_user_agent(feed_server: FeedServer) -> None:
    feed_server.set_feed("/f", FEED)
    async with Fetcher(settings(user_agent="digestbot-test/1")) as f:
        await f.fetch(feed_server.url("/f"))
    assert feed_server.last_request("/f").headers["User-Agent"] == "digestbot-test/1"


async def test_conditional_get_304_then_change(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED)
    first = await fetcher.fetch(feed_server.url("/feed.xml"))
    again = await fetcher.fetch(feed_server.url("/feed.xml"), etag=first.etag, last_modified=first.last_modified)
    assert again.status == 304 and again.body is None and again.not_modified
    assert again.etag == first.etag
    sent = feed_server.last_request("/feed.xml").headers
    assert sent["If-None-Match"] == first.etag and sent["If-Modified-Since"] == first.last_modified
    feed_server.set_feed("/feed.xml", FEED.replace(b"<guid>1", b"<guid>2"))
    changed = await fetcher.fetch(feed_server.url("/feed.xml"), etag=first.etag, last_modified=first.last_modified)
    assert changed.status == 200 and changed.body and b"<guid>2" in changed.body
    assert changed.etag != first.etag
    assert feed_server.hits("/feed.xml") == 3


async def test_if_modified_since_only(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_feed("/lm", FEED, etag=False)
    first = await fetcher.fetch(feed_server.url("/lm"))
    assert first.etag is None and first.last_modified
    again = await fetcher.fetch(feed_server.url("/lm"), last_modified=first.last_modified)
    assert again.not_modified and again.etag is None


async def test_304_without_validators_returns_what_server_sent(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/bare304", 304)
    result = await fetcher.fetch(feed_server.url("/bare304"), etag='"old"', last_modified="x")
    assert result.not_modified and result.etag is None and result.last_modified is None


# -- compression and size caps ---------------------------------------------------------------------------


async def test_gzip(fetcher: Fetcher, feed_server: FeedServer) -> None:
    big = FEED * 200
    feed_server.set_feed("/gz", big)
    result = await fetcher.fetch(feed_server.url("/gz"))
    assert result.body == big
    assert "gzip" in feed_server.last_request("/gz").headers["Accept-Encoding"]


@pytest.mark.parametrize("encoder", [zlib.compress, lambda data: zlib.compress(data, wbits=-15)],
                         ids=["zlib-deflate", "raw-deflate"])
async def test_deflate_both_flavours(fetcher: Fetcher, feed_server: FeedServer, encoder: object) -> None:
    payload = FEED * 50
    feed_server.set_response("/d", 200, headers={"Content-Encoding": "deflate"}, body=encoder(payload))  # type: ignore[operator]
    assert (await fetcher.fetch(feed_server.url("/d"))).body == payload


async def test_multi_member_gzip(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/mm", 200, headers={"Content-Encoding": "gzip"},
                             body=gzip.compress(b"abc") + gzip.compress(b"def"))
    assert (await fetcher.fetch(feed_server.url("/mm"))).body == b"abcdef"


async def test_corrupt_and_truncated_gzip(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/bad", 200, headers={"Content-Encoding": "gzip"}, body=b"\x1f\x8bnot gzip at all")
    with pytest.raises(FetchError, match="corrupt compressed body"):
        await fetcher.fetch(feed_server.url("/bad"))
    feed_server.set_response("/cut", 200, headers={"Content-Encoding": "gzip"}, body=gzip.compress(FEED * 20)[:60])
    with pytest.raises(FetchError, match="cut short"):
        await fetcher.fetch(feed_server.url("/cut"))


async def test_unsupported_encoding(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/z", 200, headers={"Content-Encoding": "compress"}, body=b"xx")
    with pytest.raises(FetchError, match="unsupported Content-Encoding"):
        await fetcher.fetch(feed_server.url("/z"))


async def test_brotli_when_installed(feed_server: FeedServer) -> None:
    brotli = pytest.importorskip("brotli")
    if "br" not in ACCEPT_ENCODING:
        pytest.skip("brotli too old to cap its output; br is not advertised")
    feed_server.set_response("/br", 200, headers={"Content-Encoding": "br"}, body=brotli.compress(FEED * 30))
    feed_server.set_response("/brbomb", 200, headers={"Content-Encoding": "br"},
                             body=brotli.compress(bytes(64 * 1024 * 1024)))
    async with Fetcher(settings(max_body_bytes=1_000_000)) as f:
        assert (await f.fetch(feed_server.url("/br"))).body == FEED * 30
        with pytest.raises(FetchError, match="body larger than 1000000 bytes"):
            await f.fetch(feed_server.url("/brbomb"))


async def test_content_length_over_cap_refused_before_reading(feed_server: FeedServer) -> None:
    feed_server.set_feed("/big", b"x" * 5000, compress=False)
    async with Fetcher(settings(max_body_bytes=1000)) as f:
        with pytest.raises(FetchError, match=r"body larger than 1000 bytes \(Content-Length 5000\)") as info:
            await f.fetch(feed_server.url("/big"))
    assert info.value.permanent


async def test_chunked_body_over_cap(feed_server: FeedServer) -> None:
    feed_server.stream("/chunked", b"y" * 300_000, chunk_size=8192)
    async with Fetcher(settings(max_body_bytes=100_000)) as f:
        with pytest.raises(FetchError, match="body larger than 100000 bytes"):
            await f.fetch(feed_server.url("/chunked"))
        feed_server.stream("/fits", b"y" * 100_000, chunk_size=8192)
        assert len((await f.fetch(feed_server.url("/fits"))).body or b"") == 100_000


@pytest.mark.parametrize("declared", [False, True], ids=["chunked", "content-length"])
async def test_gzip_bomb_stopped_without_inflating(feed_server: FeedServer, declared: bool) -> None:
    feed_server.gzip_bomb("/bomb", 1 << 30, content_length=declared)  # ~1 MB on the wire, 1 GiB inflated
    async with Fetcher(settings(max_body_bytes=2_000_000)) as f:
        tracemalloc.start()
        started = time.monotonic()
        try:
            with pytest.raises(FetchError, match="body larger than 2000000 bytes"):
                await f.fetch(feed_server.url("/bomb"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert time.monotonic() - started < 5
    assert peak < 40_000_000, peak  # bounded by the cap, not by the inflated size


# -- deadlines -------------------------------------------------------------------------------------------


async def test_slow_drip_hits_the_total_deadline(feed_server: FeedServer) -> None:
    feed_server.slow_drip("/drip", FEED, bytes_per_second=20)  # ~5 s for the whole body, a byte every 50 ms
    async with Fetcher(settings(read_timeout=1.0, total_timeout=1.5)) as f:
        started = time.monotonic()
        with pytest.raises(FetchError, match="total deadline"):
            await f.fetch(feed_server.url("/drip"))
    assert 1.4 < time.monotonic() - started < 3


async def test_read_timeout(feed_server: FeedServer) -> None:
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"<rss")
        await asyncio.sleep(5)
        return response

    feed_server.set_handler("/stall", stall)
    async with Fetcher(settings(read_timeout=0.3, total_timeout=3)) as f:
        with pytest.raises(FetchError, match="read timeout"):
            await f.fetch(feed_server.url("/stall"))


# -- redirects -------------------------------------------------------------------------------------------


async def test_permanent_redirect_chain(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.redirect("/old", "/older", status=301)
    feed_server.redirect("/older", feed_server.url("/new"), status=308)
    feed_server.set_feed("/new", FEED)
    result = await fetcher.fetch(feed_server.url("/old"))
    assert result.body == FEED
    assert result.url == feed_server.url("/new") and result.permanent_url == feed_server.url("/new")


async def test_temporary_hop_in_the_middle_is_not_permanent(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.redirect("/a", "/b", status=301)
    feed_server.redirect("/b", "/c", status=302)
    feed_server.redirect("/c", "/d", status=308)
    feed_server.set_feed("/d", FEED)
    result = await fetcher.fetch(feed_server.url("/a"))
    assert result.body == FEED and result.url == feed_server.url("/d")
    assert result.permanent_url is None


async def test_redirect_loop(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.redirect("/x", "/y", status=302)
    feed_server.redirect("/y", "/x", status=302)
    with pytest.raises(FetchError, match="redirect loop"):
        await fetcher.fetch(feed_server.url("/x"))
    assert feed_server.hits("/x") == 1 and feed_server.hits("/y") == 1


async def test_too_many_redirects(feed_server: FeedServer) -> None:
    for i in range(6):
        feed_server.redirect(f"/r{i}", f"/r{i + 1}", status=301)
    feed_server.set_feed("/r6", FEED)
    async with Fetcher(settings(max_redirects=5)) as f:
        with pytest.raises(FetchError, match="more than 5 redirects"):
            await f.fetch(feed_server.url("/r0"))
        assert feed_server.hits("/r6") == 0
        assert (await f.fetch(feed_server.url("/r1"))).body == FEED  # exactly 5 hops is fine


@pytest.mark.parametrize("target", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd", "gopher://127.0.0.1/",
                                    "javascript:alert(1)"])
async def test_redirect_to_other_schemes_refused(fetcher: Fetcher, feed_server: FeedServer, target: str) -> None:
    feed_server.redirect("/jump", target, status=302)
    scheme = target.split(":")[0]
    with pytest.raises(FetchError, match=rf"redirect to a non-HTTP URL \({scheme}:\) refused") as info:
        await fetcher.fetch(feed_server.url("/jump"), allow_file=True)
    assert info.value.permanent


async def test_redirect_without_location(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/noloc", 302)
    with pytest.raises(FetchError, match="without a Location"):
        await fetcher.fetch(feed_server.url("/noloc"))


# -- the guard in the fetch path -------------------------------------------------------------------------


async def test_literal_alias_refused_before_connecting(fetcher: Fetcher, alias_server: FeedServer) -> None:
    with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.2") as info:
        await fetcher.fetch(alias_server.url("/feed.xml"))
    assert info.value.permanent
    assert alias_server.requests == []


async def test_name_resolving_to_alias_refused_before_connecting(alias_server: FeedServer) -> None:
    resolver = HostsResolver({"alias.test": "127.0.0.2"})
    async with Fetcher(settings(), resolver=resolver) as f:
        with pytest.raises(BlockedAddressError, match=r"alias\.test resolves to 127\.0\.0\.2"):
            await f.fetch(f"http://alias.test:{alias_server.port}/feed.xml")
    assert resolver.calls == ["alias.test"]
    assert alias_server.requests == []


async def test_allow_listed_name_is_fetched(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED)
    result = await fetcher.fetch(f"http://feeds.test:{feed_server.port}/feed.xml")
    assert result.body == FEED
    assert feed_server.last_request().headers["Host"] == f"feeds.test:{feed_server.port}"


async def test_redirect_hop_is_rechecked(fetcher: Fetcher, feed_server: FeedServer,
                                         alias_server: FeedServer) -> None:
    feed_server.redirect("/to-literal", alias_server.url("/feed.xml"), status=302)
    feed_server.redirect("/to-name", f"http://alias.test:{alias_server.port}/feed.xml", status=301)
    for path in ("/to-literal", "/to-name"):
        with pytest.raises(BlockedAddressError):
            await fetcher.fetch(feed_server.url(path))
    assert alias_server.requests == []


async def test_loopback_refused_without_allow_list(feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED)
    async with Fetcher(settings(allow_networks=())) as f:
        with pytest.raises(BlockedAddressError, match="allow_private_networks"):
            await f.fetch(feed_server.url("/feed.xml"))
        for odd in ("http://2130706433/", "http://127.1/", "http://[::1]/", "http://[::ffff:127.0.0.1]/"):
            with pytest.raises(FetchError):
                await f.fetch(odd)
    assert feed_server.requests == []


# -- HTTP errors -----------------------------------------------------------------------------------------


async def test_410_gone(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/gone", 410)
    with pytest.raises(FetchError, match="410") as info:
        await fetcher.fetch(feed_server.url("/gone"))
    assert info.value.gone and info.value.status == 410


async def test_429_retry_after_seconds(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/busy", 429, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(feed_server.url("/busy"))
    assert info.value.status == 429 and info.value.retry_after == 120 and not info.value.permanent


async def test_429_retry_after_http_date(fetcher: Fetcher, feed_server: FeedServer) -> None:
    when = email.utils.formatdate(time.time() + 600, usegmt=True)
    feed_server.set_response("/busy", 429, headers={"Retry-After": when})
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(feed_server.url("/busy"))
    assert info.value.retry_after is not None and 590 <= info.value.retry_after <= 601


async def test_503_with_absurd_retry_after(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/down", 503, headers={"Retry-After": "999999999"})
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(feed_server.url("/down"))
    assert info.value.status == 503 and info.value.retry_after == MAX_RETRY_AFTER
    feed_server.set_response("/down", 503)
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(feed_server.url("/down"))
    assert info.value.status == 503 and info.value.retry_after is None


@pytest.mark.parametrize(("status", "permanent"), [(404, True), (403, True), (400, True), (408, False)])
async def test_4xx(fetcher: Fetcher, feed_server: FeedServer, status: int, permanent: bool) -> None:
    feed_server.set_response("/e", status)
    with pytest.raises(FetchError, match=str(status)) as info:
        await fetcher.fetch(feed_server.url("/e"))
    assert info.value.status == status and info.value.permanent is permanent and not info.value.gone


async def test_unrouted_path_is_404(fetcher: Fetcher, feed_server: FeedServer) -> None:
    with pytest.raises(FetchError, match="HTTP 404 Not Found") as info:
        await fetcher.fetch(feed_server.url("/nothing"))
    assert info.value.status == 404


async def test_5xx(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/boom", 500, body=b"Traceback (most recent call last): ...")
    with pytest.raises(FetchError, match="HTTP 500 server error") as info:
        await fetcher.fetch(feed_server.url("/boom"))
    assert info.value.status == 500 and not info.value.permanent and info.value.retry_after is None
    assert "Traceback" not in str(info.value)


# -- network failures ------------------------------------------------------------------------------------


async def test_connection_refused(fetcher: Fetcher) -> None:
    port = closed_port()
    with pytest.raises(FetchError, match="connection refused") as info:
        await fetcher.fetch(f"http://127.0.0.1:{port}/feed.xml")
    assert "Traceback" not in str(info.value) and info.value.status is None


async def test_dns_failure(fetcher: Fetcher) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"DNS lookup of nowhere\.invalid failed") as info:
        await fetcher.fetch("http://nowhere.invalid/feed.xml")
    assert not isinstance(info.value, BlockedAddressError)
    assert time.monotonic() - started < 1


async def test_tls_error(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_feed("/feed.xml", FEED)  # plain HTTP spoken to an https client
    with pytest.raises(FetchError) as info:
        await fetcher.fetch(f"https://127.0.0.1:{feed_server.port}/feed.xml")
    assert "Traceback" not in str(info.value) and len(str(info.value)) < 200


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "gopher://x", "feed.xml", "http://", "http://[::1/"])
async def test_bad_urls(fetcher: Fetcher, url: str) -> None:
    with pytest.raises(FetchError):
        await fetcher.fetch(url)


async def test_credentials_never_in_messages(fetcher: Fetcher, feed_server: FeedServer) -> None:
    feed_server.set_response("/private", 404)
    feed_server.redirect("/hop", "ftp://127.0.0.1/x", status=302)
    urls = [f"http://alice:s3cret@127.0.0.1:{feed_server.port}/private",
            f"http://alice:s3cret@127.0.0.1:{feed_server.port}/hop",
            f"http://alice:s3cret@127.0.0.1:{closed_port()}/x",
            "http://alice:s3cret@nowhere.invalid/x",
            "http://alice:s3cret@127.0.0.2/x",
            "http://alice:s3cret@127.0.0.1:99999/x"]
    for url in urls:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(url)
        assert "s3cret" not in str(info.value) and "alice" not in str(info.value), str(info.value)
        assert "s3cret" not in info.value.url


def test_redact() -> None:
    assert redact("https://u:p@example.com:8443/a?b=1#c") == "https://example.com:8443/a?b=1#c"
    assert redact("https://u@example.com/") == "https://example.com/"
    assert redact("http://u:p@[::1]:80/x") == "http://[::1]:80/x"
    assert redact("https://example.com/a@b") == "https://example.com/a@b"


def test_parse_retry_after() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("30", now=now) == 30
    assert parse_retry_after(" 0 ", now=now) == 0
    assert parse_retry_after("99999999", now=now) == MAX_RETRY_AFTER
    assert parse_retry_after(email.utils.formatdate(now + 90, usegmt=True), now=now) == 90
    assert parse_retry_after(email.utils.formatdate(now - 90, usegmt=True), now=now) == 0
    assert parse_retry_after(email.utils.formatdate(now + 10**7, usegmt=True), now=now) == MAX_RETRY_AFTER
    for junk in (None, "", "-5", "soon", "1.5"):
        assert parse_retry_after(junk, now=now) is None


# -- concurrency -----------------------------------------------------------------------------------------


async def test_per_host_limit_and_session_reuse(feed_server: FeedServer) -> None:
    active = 0
    peak = 0

    async def slow(request: web.Request) -> web.StreamResponse:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return web.Response(body=FEED)

    feed_server.set_handler("/slow", slow)
    async with Fetcher(settings(per_host_limit=2)) as f:
        results = await asyncio.gather(*(f.fetch(feed_server.url("/slow")) for _ in range(8)))
    assert all(r.body == FEED for r in results)
    assert peak == 2


# -- file: URLs ------------------------------------------------------------------------------------------


async def test_file_url_refused_unless_allowed(fetcher: Fetcher, tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_bytes(FEED)
    with pytest.raises(FetchError, match="only allowed for sources in the config file") as info:
        await fetcher.fetch(path.as_uri())
    assert info.value.permanent


async def test_file_url_and_cheap_repoll(fetcher: Fetcher, tmp_path: Path) -> None:
    path = tmp_path / "my feed.atom"
    path.write_bytes(FEED)
    first = await fetcher.fetch(path.as_uri(), allow_file=True)
    assert first.status == 200 and first.body == FEED and first.content_type == "application/atom+xml"
    assert first.last_modified == email.utils.formatdate(path.stat().st_mtime, usegmt=True)
    again = await fetcher.fetch(path.as_uri(), etag=first.etag, last_modified=first.last_modified, allow_file=True)
    assert again.not_modified
    only_lm = await fetcher.fetch(path.as_uri(), last_modified=first.last_modified, allow_file=True)
    assert only_lm.not_modified
    path.write_bytes(FEED + b"\n<!-- edited -->")  # within the same second: the etag still notices
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1000))
    edited = await fetcher.fetch(path.as_uri(), etag=first.etag, last_modified=first.last_modified, allow_file=True)
    assert edited.body == FEED + b"\n<!-- edited -->"


async def test_file_url_errors(tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes(b"x" * 2000)
    async with Fetcher(settings(max_body_bytes=1000)) as f:
        with pytest.raises(FetchError, match="body larger than 1000 bytes"):
            await f.fetch(big.as_uri(), allow_file=True)
        with pytest.raises(FetchError, match="no such file"):
            await f.fetch((tmp_path / "missing.xml").as_uri(), allow_file=True)
        with pytest.raises(FetchError, match="not a regular file"):
            await f.fetch(tmp_path.as_uri(), allow_file=True)
        with pytest.raises(FetchError, match="absolute"):
            await f.fetch("file://otherhost/etc/passwd", allow_file=True)


# -- the server's directory mode (used by other suites) ----------------------------------------------------


async def test_serve_directory(fetcher: Fetcher, feed_server: FeedServer, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.json").write_bytes(b'{"version": "https://jsonfeed.org/version/1.1", "items": []}')
    feed_server.serve_directory("/corpus", tmp_path)
    first = await fetcher.fetch(feed_server.url("/corpus/sub/a.json"))
    assert first.body and first.content_type == "application/feed+json"
    again = await fetcher.fetch(feed_server.url("/corpus/sub/a.json"), etag=first.etag)
    assert again.not_modified
    with pytest.raises(FetchError, match="404"):
        await fetcher.fetch(feed_server.url("/corpus/../test_fetch.py"))
