"""Core view objects → ``discord.Embed``, always within Discord's embed limits.

Every piece of text is clipped to its own limit and every embed is budgeted so the characters
Discord counts (title, description, field names and values, footer, author) stay ≤ 6,000 even
when several are sent together. Mentions are defused once more here (idempotent) as a second
guard behind ``allowed_mentions=none``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import discord

from bot.format import (
    AUTHOR_LIMIT,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    FIELD_NAME_LIMIT,
    FIELD_VALUE_LIMIT,
    FOOTER_LIMIT,
    TITLE_LIMIT,
    EmbedSpec,
    defuse_mentions,
    http_url,
    safe_text,
)

if TYPE_CHECKING:
    from bot.catalog import ResultItem, ResultPage, SourceStatus

MAX_FIELDS = 25
BRAND_COLOUR = 0x5865F2
_EMPTY = "\u200b"
_MARKUP_TOKEN = re.compile(r"\\.|\*\*|.", re.DOTALL)
_URL_IN_TEXT = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s<>\"'`]+", re.IGNORECASE)


# -- text helpers ---------------------------------------------------------------------------
def clip(text: str, limit: int) -> str:
    """Plain clip with an ellipsis; for text that carries no markdown of ours."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + "…" if limit > 0 else ""


def cut_markdown(text: str, limit: int) -> str:
    """Cut already-escaped markdown to ``limit`` without splitting an escape (``\\x``) or a ``**``
    marker, closing bold that the cut left open."""
    if len(text) <= limit:
        return text
    if limit < 4:
        return "…"[:limit]
    end, bold = 0, False
    for match in _MARKUP_TOKEN.finditer(text):
        if match.end() > limit - 3:  # room for a closing "**" and "…"
            break
        end = match.end()
        if match.group() == "**":
            bold = not bold
    body = text[:end]
    if bold and body.endswith("**"):
        body, bold = body[:-2], False  # bold opened right at the cut: drop it instead
    return body + ("**" if bold else "") + "…"


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Drop secrets and reduce every URL to ``scheme://host/…``: feed URLs may carry keys that the
    config took from the environment, in the query, the user-info or even the path."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")

    def host_only(match: re.Match[str]) -> str:
        try:
            parts = urlsplit(match.group(0))
            host = parts.hostname or "?"
        except ValueError:
            return "[url]"
        more = parts.path.strip("/") or parts.query or parts.fragment or parts.username or parts.password
        return f"{parts.scheme}://{host}" + ("/…" if more else "")

    return _URL_IN_TEXT.sub(host_only, text)


def _utc(when: datetime) -> datetime:
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _date(when: datetime | None) -> str:
    """A Discord timestamp: every reader sees it in their own locale and time zone."""
    return discord.utils.format_dt(_utc(when), "D") if when else "undated"


def _ago(when: datetime | None) -> str:
    return discord.utils.format_dt(_utc(when), "R") if when else "never"


def _link_target(url: str) -> str:
    """Parentheses would end the markdown link early."""
    return url.replace("(", "%28").replace(")", "%29")


def _fit_total(embed: discord.Embed) -> discord.Embed:
    """Last guard: drop trailing fields until the embed counts ≤ 6,000 characters."""
    while len(embed) > EMBED_TOTAL_LIMIT and embed.fields:
        embed.remove_field(len(embed.fields) - 1)
    if len(embed) > EMBED_TOTAL_LIMIT and embed.description:
        over = len(embed) - EMBED_TOTAL_LIMIT
        embed.description = cut_markdown(embed.description, max(1, len(embed.description) - over))
    return embed


# -- feed entries -----------------------------------------------------------------------------
def to_discord_embed(spec: EmbedSpec) -> discord.Embed:
    """An ``EmbedSpec`` (already escaped and cut by ``bot.format``) as a ``discord.Embed``."""
    embed = discord.Embed(
        title=clip(defuse_mentions(spec.title), TITLE_LIMIT) or None,
        url=http_url(spec.url),
        description=cut_markdown(defuse_mentions(spec.description), DESCRIPTION_LIMIT) or None,
        timestamp=_utc(spec.timestamp) if spec.timestamp else None,
        colour=spec.color,
    )
    if spec.author:
        embed.set_author(name=clip(defuse_mentions(spec.author), AUTHOR_LIMIT))
    if spec.footer:
        embed.set_footer(text=clip(defuse_mentions(spec.footer), FOOTER_LIMIT))
    thumbnail = http_url(spec.thumbnail)
    if thumbnail:
        embed.set_thumbnail(url=thumbnail)
    return _fit_total(embed)


# -- search results ------------------------------------------------------------------------------
def _result_field(number: int, item: ResultItem, cap: int, labels: Mapping[str, str]) -> tuple[str, str]:
    entry = item.entry
    name = clip(f"{number}. {defuse_mentions(item.source_name)}", min(FIELD_NAME_LIMIT, max(16, cap // 4)))
    cap = max(32, min(FIELD_VALUE_LIMIT, cap - len(name)))
    title = cut_markdown(safe_text(entry.title or "(untitled)"), max(12, min(200, cap // 3)))
    url = http_url(entry.link)
    head = f"**[{title}]({_link_target(url)})**" if url and len(url) <= cap // 3 else f"**{title}**"
    topics = [safe_text(labels.get(t, t)) for t in entry.topics]
    meta = clip(" · ".join([_date(entry.published or entry.first_seen), *topics]), max(16, cap // 6))
    room = cap - len(head) - len(meta) - 2
    snippet = cut_markdown(defuse_mentions(item.snippet.strip()), room) if room >= 16 else ""
    value = "\n".join(part for part in (head, meta, snippet) if part)
    return name or _EMPTY, cut_markdown(value, cap) or _EMPTY


def render_result_page(page: ResultPage, *, title: str, query_label: str, note: str | None = None,
                       topic_labels: Mapping[str, str] | None = None, exact_total: bool = True) -> discord.Embed:
    """One embed for one page of results: a field per result (title as a link, date, topics,
    snippet), page X/Y and the total in the footer. ``exact_total=False`` for /latest, whose total
    only says whether there is a next page."""
    labels = topic_labels or {}
    lines = [cut_markdown(defuse_mentions(query_label), 1000)]
    if note:
        lines.append(clip(defuse_mentions(note), 300))
    if not page.items:
        lines.append("No matching entries." if page.page == 1 else "No more entries on this page.")
    embed = discord.Embed(title=clip(defuse_mentions(title), TITLE_LIMIT) or None,
                          description="\n".join(line for line in lines if line) or None, colour=BRAND_COLOUR)
    if exact_total:
        noun = "result" if page.total == 1 else "results"
        footer = f"Page {page.page}/{page.pages} · {page.total} {noun}"
    else:
        footer = f"Page {page.page}" + (" · more on the next page" if page.page < page.pages else "")
    embed.set_footer(text=footer)
    items = page.items[:MAX_FIELDS]
    if items:
        budget = EMBED_TOTAL_LIMIT - len(embed) - 16
        per_item = budget // len(items)
        first = (page.page - 1) * page.per_page + 1
        for offset, item in enumerate(items):
            name, value = _result_field(first + offset, item, per_item, labels)
            embed.add_field(name=name, value=value, inline=False)
    return _fit_total(embed)


# -- /topics and /sources -----------------------------------------------------------------------
def render_topics(rows: Sequence[tuple[str, str, int]], *, title: str = "Topics") -> discord.Embed:
    """(id, label, count) rows as one embed; rows that do not fit are counted, not dropped silently."""
    embed = discord.Embed(title=title, colour=BRAND_COLOUR)
    lines: list[str] = []
    size = 0
    for shown, (topic_id, label, count) in enumerate(rows):
        noun = "entry" if count == 1 else "entries"
        name = safe_text(label) if label == topic_id else f"{safe_text(label)} (`{safe_text(topic_id)}`)"
        line = clip(f"**{name}** — {count} {noun}", 300)
        if size + len(line) + 1 > DESCRIPTION_LIMIT - 40:
            lines.append(f"…and {len(rows) - shown} more")
            break
        lines.append(line)
        size += len(line) + 1
    embed.description = defuse_mentions("\n".join(lines)) if lines else "No topics yet."
    return _fit_total(embed)


def _status_badge(status: SourceStatus) -> str:
    state = status.state
    if state.status == "gone":
        return "⛔ gone (410)"
    if state.status == "paused":
        return "⏸️ paused"
    if state.consecutive_failures:
        return f"⚠️ failing ({state.consecutive_failures} in a row)"
    if not state.polled_once and state.last_success_at is None:
        return "⏳ not polled yet"
    return "🟢 ok"


def _source_field(status: SourceStatus, cap: int, secrets: Sequence[str]) -> tuple[str, str]:
    state = status.state
    name = clip(defuse_mentions(status.name), min(FIELD_NAME_LIMIT, 100)) or status.source_id
    noun = "entry" if state.entry_count == 1 else "entries"
    lines = [f"{_status_badge(status)} · {state.entry_count} {noun} stored",
             f"last success {_ago(state.last_success_at)}"]
    cap = max(32, min(FIELD_VALUE_LIMIT, cap - len(name)))
    if status.failed_deliveries:
        reason = status.last_delivery_error
        tail = f" — {safe_text(clip(redact(reason, secrets), min(120, cap // 4)))}" if reason else ""
        lines.append(f"failed deliveries: {status.failed_deliveries}{tail}")
    if state.last_error:  # gets whatever room is left
        when = f" ({_ago(state.last_error_at)})" if state.last_error_at else ""
        head = f"last error{when}: "
        room = min(300, cap - sum(len(line) + 1 for line in lines) - len(head))
        if room >= 24:
            lines.append(head + cut_markdown(safe_text(redact(state.last_error, secrets)), room))
    return name, cut_markdown(defuse_mentions("\n".join(lines)), cap)


def render_sources(statuses: Sequence[SourceStatus], *, secrets: Sequence[str] = (),
                   title: str = "Sources") -> discord.Embed:
    """One field per source (status, last success, last error, entries, failed deliveries).

    Never shows feed URLs or secrets: errors are passed through :func:`redact`."""
    embed = discord.Embed(title=title, colour=BRAND_COLOUR)
    if not statuses:
        embed.description = "No sources post into this server."
        return embed
    shown = statuses[: MAX_FIELDS - 1] if len(statuses) > MAX_FIELDS else statuses
    if len(shown) < len(statuses):
        embed.set_footer(text=f"{len(statuses) - len(shown)} more sources not shown")
    per_item = (EMBED_TOTAL_LIMIT - len(embed) - 16) // len(shown)
    for status in shown:
        name, value = _source_field(status, per_item, secrets)
        embed.add_field(name=name, value=value, inline=False)
    return _fit_total(embed)
