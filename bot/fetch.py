"""Fetching a source: conditional GET, size cap, deadlines, manual redirects through the guard.

Returns a ``FetchResult`` or raises ``FetchError`` with a short human message (never a
traceback, never the URL's user:password). Bodies are decompressed here, incrementally and
capped (aiohttp's own decompression is switched off), so a gzip bomb stops at
``max_body_bytes`` without being inflated in memory. The whole fetch, redirects included, runs
under one total deadline, so a server that drips a byte at a time cannot keep resetting the
read timeout.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib
import os
import ssl
import stat
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from bot import USER_AGENT
from bot.errors import BlockedAddressError, FetchError
from bot.models import FetchResult
from bot.netguard import AddressPolicy, GuardedResolver

ACCEPT = ("application/feed+json, application/atom+xml, application/rss+xml, application/rdf+xml, "
          "application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
MAX_RETRY_AFTER = 24 * 3600.0
REDIRECT_STATUSES = frozenset((301, 302, 303, 307, 308))
_CHUNK = 64 * 1024


def _load_brotli() -> Any:
    """Google's ``brotli`` >= 1.2, whose decoder can cap its output; None otherwise (then br is
    not advertised: an older decoder could inflate a bomb in one call)."""
    try:
        module = importlib.import_module("brotli")
    except ImportError:
        return None
    decoder = getattr(module, "Decompressor", None)
    return module if decoder is not None and hasattr(decoder, "can_accept_more_data") else None


_BROTLI = _load_brotli()
ACCEPT_ENCODING = "gzip, deflate, br" if _BROTLI is not None else "gzip, deflate"

_FILE_TYPES = {".json": "application/json", ".atom": "application/atom+xml", ".rss": "application/rss+xml",
               ".rdf": "application/rdf+xml", ".xml": "application/xml"}


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
    """CIDRs exempt from the private-address guard."""
    total_limit: int = 64
    """Connections open at once over all hosts."""


def redact(url: str) -> str:
    """The URL without user:password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))


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


def _too_large(url: str, limit: int) -> FetchError:
    return FetchError(url, f"body larger than {limit} bytes", permanent=True)


class _Decoder:
    """Incremental Content-Encoding decoding with a hard cap on the decoded size.

    zlib is driven with ``max_length`` so no call ever produces more than the bytes still allowed
    (+1 to notice the overflow): a bomb costs at most ``limit`` bytes of memory.
    """

    def __init__(self, encoding: str, limit: int, url: str) -> None:
        self.limit = limit
        self.url = url
        self.size = 0
        self.parts: list[bytes] = []
        self._wbits = 0
        self._z: Any = None
        self._br: Any = None
        codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
        codings = [c for c in codings if c != "identity"]
        if len(codings) > 1:
            raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")
        coding = codings[0] if codings else ""
        if coding in ("gzip", "x-gzip"):
            self._wbits = 16 + zlib.MAX_WBITS
        elif coding == "deflate":
            self._wbits = zlib.MAX_WBITS  # zlib-wrapped; raw deflate is detected on the first chunk
        elif coding == "br" and _BROTLI is not None:
            self._br = _BROTLI.Decompressor()
        elif coding:
            raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")
        if self._wbits:
            self._z = zlib.decompressobj(self._wbits)
        self._started = False
        self._head = b""

    def _room(self) -> int:
        return self.limit - self.size + 1

    def _add(self, data: bytes) -> None:
        if data:
            self.size += len(data)
            if self.size > self.limit:
                raise _too_large(self.url, self.limit)
            self.parts.append(data)

    def feed(self, data: bytes) -> None:
        if self._br is not None:
            self._feed_brotli(data)
        elif self._z is not None:
            self._feed_zlib(data)
        else:
            self._add(data)

    def _feed_zlib(self, data: bytes) -> None:
        if not self._started:
            data = self._head + data
            if self._wbits == zlib.MAX_WBITS and len(data) < 2:  # need the 2-byte zlib header to decide
                self._head = data
                return
            self._started = bool(data)
            if self._wbits == zlib.MAX_WBITS and not _zlib_header(data):  # "deflate" sent as raw deflate
                self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            while data:
                self._add(self._z.decompress(data, self._room()))
                data = self._z.unconsumed_tail
                if self._z.eof:
                    rest = self._z.unused_data
                    if self._wbits > zlib.MAX_WBITS and rest.strip(b"\0"):  # another gzip member
                        self._z = zlib.decompressobj(self._wbits)
                        data = rest
                    else:
                        return
        except zlib.error:
            raise FetchError(self.url, "corrupt compressed body") from None

    def _feed_brotli(self, data: bytes) -> None:
        try:
            self._add(self._br.process(data, output_buffer_limit=self._room()))
            while not self._br.is_finished() and not self._br.can_accept_more_data():
                self._add(self._br.process(b"", output_buffer_limit=self._room()))
        except _BROTLI.error:
            raise FetchError(self.url, "corrupt compressed body") from None

    def finish(self) -> bytes:
        if self._head:
            raise FetchError(self.url, "compressed body cut short")
        if self._z is not None:
            try:
                self._add(self._z.flush())
            except zlib.error:
                raise FetchError(self.url, "corrupt compressed body") from None
            if self._started and not self._z.eof:
                raise FetchError(self.url, "compressed body cut short")
        if self._br is not None and not self._br.is_finished():
            raise FetchError(self.url, "compressed body cut short")
        return b"".join(self.parts)


def _zlib_header(data: bytes) -> bool:
    """Whether ``data`` starts with a zlib (RFC 1950) header rather than raw deflate."""
    return (data[0] & 0x0F) == 8 and (data[0] >> 4) <= 7 and ((data[0] << 8) | data[1]) % 31 == 0


def _connect_message(exc: aiohttp.ClientConnectorError) -> str:
    os_error = exc.os_error
    if isinstance(os_error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(os_error, ConnectionResetError):
        return "connection reset"
    reason = os_error.strerror or str(os_error) or type(os_error).__name__
    return f"cannot connect: {reason}"


class Fetcher:
    """One HTTP session for all sources. Use as ``async with Fetcher(settings) as fetcher``.

    ``resolver`` replaces the system resolver underneath the guard (tests use it to map names
    without touching the network); the guard always checks what it returns.
    """

    def __init__(self, settings: FetchSettings | None = None, *, resolver: AbstractResolver | None = None) -> None:
        self.settings = settings or FetchSettings()
        self.policy = AddressPolicy.from_strings(self.settings.allow_networks)
        self._inner_resolver = resolver
        self._resolver: GuardedResolver | None = None
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        s = self.settings
        self._resolver = GuardedResolver(self.policy, self._inner_resolver, timeout=s.connect_timeout)
        connector = aiohttp.TCPConnector(resolver=self._resolver, limit=s.total_limit,
                                         limit_per_host=s.per_host_limit, ttl_dns_cache=60)
        timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=s.connect_timeout,
                                        sock_read=s.read_timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False,
                                              trust_env=False, headers={"User-Agent": s.user_agent})
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._resolver is not None:
            await self._resolver.close()
            self._resolver = None

    async def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                    allow_file: bool = False) -> FetchResult:
        """Fetch ``url`` (http, https, or file when ``allow_file``) with the stored validators."""
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError:
            raise FetchError(redact(url), "invalid URL", permanent=True) from None
        if scheme == "file":
            if not allow_file:
                raise FetchError(redact(url), "file: URLs are only allowed for sources in the config file",
                                 permanent=True)
            return await asyncio.to_thread(self._read_file, url, etag, last_modified)
        if scheme not in ("http", "https"):
            raise FetchError(redact(url), f"unsupported URL scheme {scheme or '(none)'!r} (only http and https)",
                             permanent=True)
        try:
            async with asyncio.timeout(self.settings.total_timeout):
                return await self._fetch_http(url, etag, last_modified)
        except TimeoutError:
            raise FetchError(redact(url), f"no complete answer within {self.settings.total_timeout:g}s "
                             "(total deadline)") from None

    async def _fetch_http(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        if self._session is None:
            raise RuntimeError("Fetcher used outside 'async with'")
        headers = {"Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = url
        visited = {urlsplit(url)._replace(fragment="").geturl()}
        permanent = True
        for _hop in range(self.settings.max_redirects + 1):
            target = self._checked_url(current)
            try:
                async with self._session.get(target, headers=headers, allow_redirects=False) as response:
                    if response.status in REDIRECT_STATUSES:
                        nxt = self._redirect_target(url, current, response)
                        permanent = permanent and response.status in (301, 308)
                        key = urlsplit(nxt)._replace(fragment="").geturl()
                        if key in visited:
                            raise FetchError(redact(url), f"redirect loop (back to {redact(nxt)})")
                        visited.add(key)
                        current = nxt
                        continue
                    return await self._finish(current, response, moved=permanent and current != url)
            except BlockedAddressError as exc:
                raise BlockedAddressError(redact(current), _reason(exc), permanent=True) from None
            except aiohttp.InvalidURL:
                raise FetchError(redact(current), "invalid URL", permanent=True) from None
            except aiohttp.ClientConnectorDNSError:
                host = urlsplit(current).hostname or "?"
                raise FetchError(redact(current), f"DNS lookup of {host} failed (no such host?)") from None
            except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientConnectorSSLError, aiohttp.ClientSSLError,
                    ssl.SSLError) as exc:
                raise FetchError(redact(current), f"TLS error: {_tls_reason(exc)}") from None
            except aiohttp.ClientConnectorError as exc:
                raise FetchError(redact(current), _connect_message(exc)) from None
            except aiohttp.ConnectionTimeoutError:
                raise FetchError(redact(current), f"could not connect within {self.settings.connect_timeout:g}s") \
                    from None
            except aiohttp.ServerTimeoutError:
                raise FetchError(redact(current), f"the server sent nothing for {self.settings.read_timeout:g}s "
                                 "(read timeout)") from None
            except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
                raise FetchError(redact(current), "the connection broke off mid-answer") from None
            except aiohttp.ClientResponseError as exc:
                raise FetchError(redact(current), f"bad HTTP answer: {exc.message}", status=exc.status) from None
            except aiohttp.ClientError as exc:
                raise FetchError(redact(current), f"request failed: {type(exc).__name__}") from None
        raise FetchError(redact(url), f"more than {self.settings.max_redirects} redirects")

    def _checked_url(self, url: str) -> URL:
        """The URL to request, after the guard has seen its host if that is an IP literal (aiohttp
        connects to literals without asking the resolver)."""
        try:
            target = URL(url)
        except (ValueError, TypeError):
            raise FetchError(redact(url), "invalid URL", permanent=True) from None
        host = target.raw_host
        if not host:
            raise FetchError(redact(url), "invalid URL (no host)", permanent=True)
        try:
            self.policy.check_url_host(host)
        except BlockedAddressError as exc:
            raise BlockedAddressError(redact(url), _reason(exc), permanent=True) from None
        return target

    @staticmethod
    def _redirect_target(start: str, current: str, response: aiohttp.ClientResponse) -> str:
        location = response.headers.get("Location")
        if not location:
            raise FetchError(redact(current), f"HTTP {response.status} redirect without a Location",
                             status=response.status)
        try:
            target = urljoin(current, location.strip())
            scheme = urlsplit(target).scheme.lower()
        except ValueError:
            raise FetchError(redact(current), "redirect to an invalid URL", permanent=True) from None
        if scheme not in ("http", "https"):
            raise FetchError(redact(start), f"redirect to a non-HTTP URL ({scheme or 'no scheme'}:) refused; only "
                             "http and https are followed", permanent=True)
        return target

    async def _finish(self, final: str, response: aiohttp.ClientResponse, *, moved: bool) -> FetchResult:
        status = response.status
        shown = redact(final)
        permanent_url = final if moved else None
        if status == 304:
            return FetchResult(url=final, status=304, body=None, etag=response.headers.get("ETag"),
                               last_modified=response.headers.get("Last-Modified"), permanent_url=permanent_url)
        if status == 410:
            raise FetchError(shown, "HTTP 410 Gone: the feed was removed", status=410, gone=True, permanent=True)
        if status in (429, 503):
            retry = parse_retry_after(response.headers.get("Retry-After"))
            what = "too many requests" if status == 429 else "service unavailable"
            raise FetchError(shown, f"HTTP {status} {what}" + (f", retry after {retry:.0f}s" if retry is not None
                                                              else ""), status=status, retry_after=retry)
        if status >= 500:
            raise FetchError(shown, f"HTTP {status} server error", status=status)
        if status >= 400:
            raise FetchError(shown, f"HTTP {status} {response.reason or ''}".rstrip(), status=status,
                             permanent=status not in (408, 425, 429))
        if not 200 <= status < 300 or status in (204, 205):
            raise FetchError(shown, f"unexpected HTTP {status}", status=status)
        limit = self.settings.max_body_bytes
        length = response.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > limit:
            raise FetchError(shown, f"body larger than {limit} bytes (Content-Length {length})", permanent=True)
        decoder = _Decoder(response.headers.get("Content-Encoding", ""), limit, shown)
        received = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            received += len(chunk)
            if received > limit:
                raise _too_large(shown, limit)
            decoder.feed(chunk)
        return FetchResult(url=final, status=status, body=decoder.finish(), etag=response.headers.get("ETag"),
                           last_modified=response.headers.get("Last-Modified"),
                           content_type=response.headers.get("Content-Type"), permanent_url=permanent_url)

    def _read_file(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        """A ``file:///abs/path`` source, read in a worker thread with the same size cap.

        ``last_modified`` is the file's mtime as an HTTP date; ``etag`` is a finer validator
        (mtime in ns, size, inode), so an edit within the same second is still seen. A re-poll
        with matching validators returns ``body=None`` (status 304) without reading the file.
        """
        parts = urlsplit(url)
        shown = redact(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise FetchError(shown, "file: URLs must be file:///absolute/path", permanent=True)
        path = Path(unquote(parts.path))
        limit = self.settings.max_body_bytes
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise FetchError(shown, "not a regular file", permanent=True)
            mtime = email.utils.formatdate(info.st_mtime, usegmt=True)
            tag = f'"f-{info.st_mtime_ns:x}-{info.st_size:x}-{info.st_ino:x}"'
            if (etag == tag) if etag else (last_modified is not None and last_modified == mtime):
                return FetchResult(url=url, status=304, body=None, etag=tag, last_modified=mtime)
            if info.st_size > limit:
                raise _too_large(shown, limit)
            with path.open("rb") as handle:
                body = handle.read(limit + 1)
        except FileNotFoundError:
            raise FetchError(shown, "no such file") from None
        except PermissionError:
            raise FetchError(shown, "permission denied") from None
        except OSError as exc:
            raise FetchError(shown, f"cannot read: {exc.strerror or type(exc).__name__}") from None
        if len(body) > limit:
            raise _too_large(shown, limit)
        content_type = _FILE_TYPES.get(os.path.splitext(path.name)[1].lower())
        return FetchResult(url=url, status=200, body=body, etag=tag, last_modified=mtime, content_type=content_type)


def _reason(exc: FetchError) -> str:
    """The message of a FetchError without its ``url: `` prefix."""
    text = str(exc)
    prefix = f"{exc.url}: "
    return text[len(prefix):] if text.startswith(prefix) else text


def _tls_reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert = exc.certificate_error
        return getattr(cert, "verify_message", None) or getattr(cert, "reason", None) or "certificate rejected"
    inner = getattr(exc, "os_error", exc)
    return getattr(inner, "reason", None) or type(inner).__name__
