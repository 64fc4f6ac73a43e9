"""One error tree for the whole bot. Foreign exceptions are wrapped where they enter."""

from __future__ import annotations


class DigestError(Exception):
    """Base of every error digestbot raises on purpose."""


class ConfigError(DigestError):
    """Bad configuration. The message names the file and the key path."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ": ".join(part for part in (file, key) if part)
        super().__init__(f"{where}: {message}" if where else message)


class FetchError(DigestError):
    """A source could not be fetched. ``retry_after`` (seconds) is set when the server asked for it;
    ``gone`` is set for 410 Gone (stop polling); ``permanent`` for errors retrying will not fix soon."""

    def __init__(
        self,
        url: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        gone: bool = False,
        permanent: bool = False,
    ) -> None:
        self.url = url
        self.status = status
        self.retry_after = retry_after
        self.gone = gone
        self.permanent = permanent
        super().__init__(f"{url}: {message}")


class BlockedAddressError(FetchError):
    """The URL resolves to an address the SSRF guard refuses (loopback, private, link-local...)."""


class ParseError(DigestError):
    """Bytes that are not a feed we can read."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        super().__init__(f"{url}: {message}")


class ParseTimeoutError(ParseError):
    """A feed was still parsing when ``ingest.parse_timeout`` ran out (a pathological document)."""


class WorkerCrashError(DigestError):
    """An ingest worker process died (killed, out of memory, a crash in a C library) while running
    a job, and again when the job was retried on a fresh pool."""


class StorageError(DigestError):
    """The database refused or failed an operation."""


class QueryError(DigestError):
    """A search query or filter a user typed that cannot be understood (message is user-facing)."""


class DeliveryError(DigestError):
    """A message could not be delivered. ``permanent`` means retrying will not help (deleted channel,
    missing permission); otherwise ``retry_after`` may say when to try again."""

    def __init__(self, target: str, message: str, *, permanent: bool = False,
                 retry_after: float | None = None) -> None:
        self.target = target
        self.permanent = permanent
        self.retry_after = retry_after
        super().__init__(f"{target}: {message}")
