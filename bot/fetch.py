"""Fetching a source: conditional GET, size cap, deadlines, manual redirects through the guard.

Returns a ``FetchResult`` or raises ``FetchError`` with a short human message. Bodies are
decompressed here, incrementally and capped, so a gzip bomb stops at ``max_body_bytes`` without
ever being inflated in memory; a server that drips bytes hits the total deadline.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import aiohttp

from bot import USER_AGENT
from bot.errors import BlockedAddressError, FetchError
from bot.models import FetchResult
from bot.netguard import AddressPolicy, BlockedAddress, GuardedConnector

ACCEPT = ("application/feed+json, application/atom+xml, application/rss+xml, application/rdf+xml, "
          "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
MAX_RETRY_AFTER = 24 * 3600.0
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchSettings:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_body_bytes: int = 10 * 1024 * 1024
    per_host_limit: int = 2
    max_redirects: int = 5
    user_agent: str = USER_AGENT
    allow_networks: tuple[str, ...] = ()
    total_limit: int = 64


def redact(url: str) -> str:
    """The URL without user:password, for messages and logs."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date → seconds from now (capped at 24 h)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return min(max(0.0, when.timestamp() - current), MAX_RETRY_AFTER)


class _Decoder:
    """Incremental gzip/deflate decoding with a hard cap on output size."""

    def __init__(self, encoding: str, limit: int, url: str) -> None:
        self.limit = limit
        self.url = url
        self.size = 0
        encoding = encoding.strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._z: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = zlib.decompressobj()
        elif encoding in ("", "identity"):
            self._z = None
        else:
            raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")
        self.parts: list[bytes] = []

    def feed(self, data: bytes) -> None:
        if self._z is None:
            self._add(data)
            return
        try:
            out = self._z.decompress(data, self.limit - self.size + 1)
            self._add(out)
            while self._z.unconsumed_tail:
                out = self._z.decompress(self._z.unconsumed_tail, self.limit - self.size + 1)
                self._add(out)
        except zlib.error as exc:
            raise FetchError(self.url, f"corrupt compressed body: {exc}") from None

    def _add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise FetchError(self.url, f"body larger than {self.limit} bytes", permanent=True)
        self.parts.append(data)

    def finish(self) -> bytes:
        if self._z is not None:
            try:
                self._add(self._z.flush())
            except zlib.error as exc:
                raise FetchError(self.url, f"corrupt compressed body: {exc}") from None
        return b"".join(self.parts)


class Fetcher:
    """One HTTP session for all sources. Use as ``async with Fetcher(settings) as fetcher``."""

    def __init__(self, settings: FetchSettings | None = None) -> None:
        self.settings = settings or FetchSettings()
        self.policy = AddressPolicy.from_strings(self.settings.allow_networks)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        connector = GuardedConnector(self.policy, limit=self.settings.total_limit,
                                     limit_per_host=self.settings.per_host_limit, ttl_dns_cache=300)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout,
                                        sock_read=self.settings.read_timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                              headers={"User-Agent": self.settings.user_agent})
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                    allow_file: bool = False) -> FetchResult:
        scheme = urlsplit(url).scheme.lower()
        if scheme == "file":
            if not allow_file:
                raise FetchError(redact(url), "local files can only be read by sources in the config file",
                                 permanent=True)
            return await asyncio.to_thread(self._read_file, url, last_modified)
        if scheme not in ("http", "https"):
            raise FetchError(redact(url), f"unsupported URL scheme {scheme!r} (only http and https)",
                             permanent=True)
        try:
            async with asyncio.timeout(self.settings.total_timeout):
                return await self._fetch_http(url, etag, last_modified)
        except TimeoutError:
            raise FetchError(redact(url), f"no complete answer within {self.settings.total_timeout:g}s") from None

    async def _fetch_http(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        if self._session is None:
            raise RuntimeError("Fetcher used outside 'async with'")
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        visited = {url}
        permanent = True
        for _hop in range(self.settings.max_redirects + 1):
            try:
                async with self._session.get(current, headers=headers, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308):
                        target = self._redirect_target(current, response)
                        permanent = permanent and response.status in (301, 308)
                        if target in visited:
                            raise FetchError(redact(url), f"redirect loop at {redact(target)}")
                        visited.add(target)
                        current = target
                        continue
                    return await self._finish(url, current, response, permanent and current != url)
            except BlockedAddress as exc:
                raise BlockedAddressError(redact(current), f"refused: {exc} (allow it with "
                                          "fetch.allow_private_networks)", permanent=True) from None
            except aiohttp.InvalidURL:
                raise FetchError(redact(current), "invalid URL", permanent=True) from None
            except aiohttp.ClientConnectorDNSError:
                raise FetchError(redact(current), "DNS lookup failed (no such host?)") from None
            except aiohttp.ClientConnectorCertificateError as exc:
                raise FetchError(redact(current), f"TLS certificate problem: {exc.certificate_error}") from None
            except aiohttp.ClientConnectorError as exc:
                raise FetchError(redact(current), f"cannot connect: {exc.strerror or exc}") from None
            except (aiohttp.ServerTimeoutError, aiohttp.SocketTimeoutError):
                raise FetchError(redact(current), "the server stopped answering (read timeout)") from None
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                raise FetchError(redact(current), "the connection broke off mid-answer") from None
            except aiohttp.TooManyRedirects:
                raise FetchError(redact(url), "too many redirects") from None
            except aiohttp.ClientResponseError as exc:
                raise FetchError(redact(current), f"bad HTTP answer: {exc.message}", status=exc.status) from None
            except (aiohttp.ClientError, ssl.SSLError) as exc:
                raise FetchError(redact(current), f"request failed: {type(exc).__name__}") from None
        raise FetchError(redact(url), f"more than {self.settings.max_redirects} redirects")

    @staticmethod
    def _redirect_target(current: str, response: aiohttp.ClientResponse) -> str:
        location = response.headers.get("Location")
        if not location:
            raise FetchError(redact(current), f"HTTP {response.status} redirect without a Location")
        target = urljoin(current, location)
        scheme = urlsplit(target).scheme.lower()
        if scheme not in ("http", "https"):
            raise FetchError(redact(current), f"redirect to a {scheme or 'relative'}: URL refused", permanent=True)
        return target

    async def _finish(self, url: str, final: str, response: aiohttp.ClientResponse,
                      moved: bool) -> FetchResult:
        status = response.status
        shown = redact(final)
        if status == 304:
            return FetchResult(url=final, status=304, body=None, etag=response.headers.get("ETag"),
                               last_modified=response.headers.get("Last-Modified"),
                               permanent_url=final if moved else None)
        if status == 410:
            raise FetchError(shown, "HTTP 410 Gone: the feed was removed", status=410, gone=True, permanent=True)
        if status in (429, 503):
            retry = parse_retry_after(response.headers.get("Retry-After"))
            raise FetchError(shown, f"HTTP {status}" + (f", retry after {retry:.0f}s" if retry is not None else ""),
                             status=status, retry_after=retry)
        if status >= 500:
            raise FetchError(shown, f"HTTP {status} server error", status=status)
        if status >= 400:
            raise FetchError(shown, f"HTTP {status} {response.reason or ''}".rstrip(), status=status,
                             permanent=status not in (408, 425))
        if status != 200:
            raise FetchError(shown, f"unexpected HTTP {status}", status=status)
        length = response.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > self.settings.max_body_bytes \
                and not response.headers.get("Content-Encoding"):
            raise FetchError(shown, f"body of {length} bytes is over the {self.settings.max_body_bytes}-byte limit",
                             permanent=True)
        decoder = _Decoder(response.headers.get("Content-Encoding", ""), self.settings.max_body_bytes, shown)
        received = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            received += len(chunk)
            if received > self.settings.max_body_bytes:
                raise FetchError(shown, f"body larger than {self.settings.max_body_bytes} bytes", permanent=True)
            decoder.feed(chunk)
        return FetchResult(url=final, status=200, body=decoder.finish(), etag=response.headers.get("ETag"),
                           last_modified=response.headers.get("Last-Modified"),
                           content_type=response.headers.get("Content-Type"),
                           permanent_url=final if moved else None)

    def _read_file(self, url: str, last_modified: str | None) -> FetchResult:
        path = Path(unquote(urlsplit(url).path))
        try:
            stat = path.stat()
            mtime = email.utils.formatdate(stat.st_mtime, usegmt=True)
            if last_modified == mtime:
                return FetchResult(url=url, status=304, body=None, last_modified=mtime)
            if stat.st_size > self.settings.max_body_bytes:
                raise FetchError(url, f"file larger than {self.settings.max_body_bytes} bytes", permanent=True)
            with path.open("rb") as handle:
                body = handle.read(self.settings.max_body_bytes + 1)
        except FileNotFoundError:
            raise FetchError(url, "no such file") from None
        except OSError as exc:
            raise FetchError(url, f"cannot read: {exc.strerror}") from None
        if len(body) > self.settings.max_body_bytes:
            raise FetchError(url, f"file larger than {self.settings.max_body_bytes} bytes", permanent=True)
        return FetchResult(url=url, status=200, body=body, last_modified=mtime)


