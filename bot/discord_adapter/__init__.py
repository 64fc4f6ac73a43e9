"""The Discord edge: gateway client, slash commands, pagination and delivery.

Everything Discord-specific lives here; the core (``bot.catalog``, ``bot.deliver``, ``bot.format``)
knows nothing of Discord. The adapter talks to the core only through :class:`CatalogPort`, which
``bot.catalog.Catalog`` satisfies structurally (and test fakes can too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.catalog import ResultPage, SourceStatus

__all__ = ["CatalogPort"]


class CatalogPort(Protocol):
    """The read side the commands use. Synchronous: call it through ``asyncio.to_thread``
    (except the two ``*_choices`` methods, which are in-memory and cheap)."""

    def search(self, text: str = "", *, topic: str | None = None, source: str | None = None,
               since: str | None = None, until: str | None = None, page: int = 1, per_page: int = 5,
               allowed: Sequence[str] | None = None) -> ResultPage: ...

    def latest(self, *, topic: str | None = None, source: str | None = None, page: int = 1,
               per_page: int = 5, allowed: Sequence[str] | None = None) -> ResultPage: ...

    def topics(self, allowed: Sequence[str] | None = None) -> list[tuple[str, str, int]]: ...

    def sources(self, allowed: Sequence[str] | None = None) -> list[SourceStatus]: ...

    def topic_choices(self, typed: str, allowed: Sequence[str] | None = None) -> list[tuple[str, str]]: ...

    def source_choices(self, typed: str, allowed: Sequence[str] | None = None) -> list[tuple[str, str]]: ...
