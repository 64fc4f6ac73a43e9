"""Previous/Next buttons that survive restarts: the ``custom_id`` carries the query itself.

``custom_id`` = ``dg:<kind>:<page>:<state>``, kind ``s`` (search) or ``l`` (latest), state the
query as compact JSON ``[text, topic, source, since, until]`` (trailing nulls dropped, Unicode
kept, not base64: base64 of UTF-8 would halve what fits). Discord allows 100 characters, so a
long query text is shortened at a word boundary *before* page 1 runs, and every page runs the same
shortened query; the embed says so. A click re-runs the query with the *clicking* user's guild
restrictions, so a button copied elsewhere can never widen what someone sees.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import discord

from bot.discord_adapter.embeds import render_result_page
from bot.discord_adapter.errors import report_error
from bot.errors import QueryError
from bot.format import safe_text

if TYPE_CHECKING:
    from bot.discord_adapter.client import DigestBot

log = logging.getLogger(__name__)

CUSTOM_ID_LIMIT = 100
MAX_PAGE = 99_999
TEMPLATE = re.compile(r"dg:(?P<kind>[sl]):(?P<page>\d{1,5}):(?P<state>.*)", re.DOTALL)
_FIELD_LIMIT = 100
_FAST_ENOUGH = 2.0  # seconds to answer a click in place before deferring instead
SHORTENED_NOTE = "ℹ️ Your query was shortened to fit the page buttons."
NO_PAGING_NOTE = "ℹ️ Too long to page through; narrow the search to see more."
Kind = Literal["s", "l"]


def _units(text: str) -> int:
    """Length as Discord counts it (UTF-16 code units), never less than ``len``."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True, slots=True)
class PageQuery:
    kind: Kind
    text: str = ""
    topic: str | None = None
    source: str | None = None
    since: str | None = None
    until: str | None = None

    def state(self) -> str:
        values: list[str | None] = [self.text, self.topic, self.source, self.since, self.until]
        while values and not values[-1]:
            values.pop()
        return json.dumps(values, ensure_ascii=False, separators=(",", ":"))

    def custom_id(self, page: int) -> str:
        return f"dg:{self.kind}:{max(0, min(page, MAX_PAGE))}:{self.state()}"

    def fits(self) -> bool:
        return _units(self.custom_id(MAX_PAGE)) <= CUSTOM_ID_LIMIT

    @classmethod
    def decode(cls, kind: str, state: str) -> PageQuery:
        """Parse a state back; ValueError for anything that is not what we wrote."""
        values = json.loads(state) if state else []
        if kind not in ("s", "l") or not isinstance(values, list) or len(values) > 5:
            raise ValueError("not a digestbot page state")
        padded = [*values, *[None] * (5 - len(values))]
        if not all(v is None or (isinstance(v, str) and len(v) <= 200) for v in padded):
            raise ValueError("not a digestbot page state")
        text, topic, source, since, until = (v or None for v in padded)
        return cls("s" if kind == "s" else "l", text or "", topic, source, since, until)

    def label(self) -> str:
        """How the query is shown above the results (user text escaped)."""
        parts = [f"🔎 “{safe_text(self.text)}”"] if self.text else []
        for name, value in (("topic", self.topic), ("source", self.source), ("since", self.since),
                            ("until", self.until)):
            if value:
                parts.append(f"{name}: {safe_text(value)}")
        return " · ".join(parts) or "everything"


def _shorten(text: str, size: int) -> str:
    if size >= len(text):
        return text
    cut = text[:size]
    if not text[size].isspace() and " " in cut.strip():
        cut = cut[: cut.rstrip().rfind(" ")]
    return cut.rstrip()


def _clip(value: str | None) -> str | None:
    return value[:_FIELD_LIMIT] if value else None


def fit_query(query: PageQuery) -> tuple[PageQuery, bool, str | None]:
    """(query to run, whether it can be paged, note for the user)."""
    clipped = replace(query, topic=_clip(query.topic), source=_clip(query.source), since=_clip(query.since),
                      until=_clip(query.until))
    if clipped.fits():
        return clipped, True, None
    low, high = 0, len(clipped.text)
    while low < high:  # the longest prefix that fits
        middle = (low + high + 1) // 2
        if replace(clipped, text=_shorten(clipped.text, middle)).fits():
            low = middle
        else:
            high = middle - 1
    shortened = replace(clipped, text=_shorten(clipped.text, low))
    if shortened.fits() and len(shortened.text) >= min(20, len(clipped.text)) and shortened.text.strip():
        return shortened, True, SHORTENED_NOTE
    return clipped, False, NO_PAGING_NOTE


class PageButton(discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=TEMPLATE):
    """One Previous/Next button; everything it needs is in its ``custom_id``."""

    def __init__(self, custom_id: str, *, label: str, disabled: bool = False) -> None:
        super().__init__(discord.ui.Button(label=label, custom_id=custom_id, disabled=disabled,
                                           style=discord.ButtonStyle.secondary))

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction[Any],  # type: ignore[override]
                             item: discord.ui.Button[discord.ui.View], match: re.Match[str], /) -> PageButton:
        return cls(match.group(0), label=item.label or "", disabled=item.disabled)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        from bot.discord_adapter.client import DigestBot

        try:
            match = TEMPLATE.fullmatch(self.custom_id)
            bot = interaction.client
            if match is None or not isinstance(bot, DigestBot):
                raise ValueError(f"unexpected page button {self.custom_id!r}")
            try:
                query = PageQuery.decode(match.group("kind"), match.group("state"))
            except ValueError:
                raise QueryError("These buttons are from an older message; run the command again.") from None
            page = max(1, int(match.group("page")))
            await _answer_click(interaction, build_page(bot, query, page, interaction.guild_id))
        except Exception as exc:
            await report_error(interaction, exc, where="page button")


async def _answer_click(interaction: discord.Interaction[Any],
                        work: Coroutine[Any, Any, tuple[discord.Embed, discord.ui.View | None]]) -> None:
    """Edit the message in place if the page is ready fast; otherwise acknowledge first."""
    task: asyncio.Task[tuple[discord.Embed, discord.ui.View | None]] = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=_FAST_ENOUGH)
    none = discord.AllowedMentions.none()
    if done:
        embed, view = task.result()
        await interaction.response.edit_message(embed=embed, view=view, allowed_mentions=none)
        return
    await interaction.response.defer()
    embed, view = await task
    await interaction.edit_original_response(embed=embed, view=view, allowed_mentions=none)


def page_view(query: PageQuery, page: int, pages: int) -> discord.ui.View | None:
    """Previous/Next, or nothing when everything fits on one page."""
    if page <= 1 and pages <= 1:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(PageButton(query.custom_id(page - 1), label="◀ Previous", disabled=page <= 1))
    view.add_item(PageButton(query.custom_id(page + 1), label="Next ▶", disabled=page >= pages))
    return view


async def build_page(bot: DigestBot, query: PageQuery, page: int, guild_id: int | None, *,
                     pageable: bool = True, note: str | None = None) -> tuple[discord.Embed, discord.ui.View | None]:
    """Run ``query`` for ``page`` as the guild may see it and render it with its buttons."""
    allowed = bot.allowed_sources_for_guild(guild_id)
    per_page = bot.config.discord.results_per_page
    catalog = bot.catalog
    if query.kind == "s":
        result = await asyncio.to_thread(catalog.search, query.text, topic=query.topic, source=query.source,
                                         since=query.since, until=query.until, page=page, per_page=per_page,
                                         allowed=allowed)
        title = "Search results"
    else:
        result = await asyncio.to_thread(catalog.latest, topic=query.topic, source=query.source, page=page,
                                         per_page=per_page, allowed=allowed)
        title = "Latest entries"
    embed = render_result_page(result, title=title, query_label=query.label(), note=note,
                               topic_labels=bot.topic_labels, exact_total=query.kind == "s")
    view = page_view(query, result.page, result.pages) if pageable else None
    return embed, view
