"""A scheduled digest's entries → Discord messages: duplicates merged, grouped, within every limit.

Pure functions. Everything that cannot be shown in full is still accounted for: each item is a
full block (linked title, sources, short summary), a compact line in a closing "More" embed, or
counted in a final "…and N more" pointer to /search. ``DigestLayout`` reports the three counts.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.format import (
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    TITLE_LIMIT,
    EmbedSpec,
    MessageSpec,
    defuse_mentions,
    http_url,
    safe_text,
)
from bot.models import Entry
from bot.text import truncate_text

GroupBy = Literal["topic", "source", "none"]

_TRACKING = {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_hsenc", "_hsmi",
             "ref", "ref_src", "spm", "share", "from"}
_OTHER = "Other"
_TITLE_IN_BLOCK = 200
_COMPACT_TITLE = 90
_MORE_RESERVE = 700
"""Room kept in the last message for the compact list and the closing pointer when things overflow."""


@dataclass(frozen=True)
class DigestItem:
    entry: Entry
    sources: tuple[str, ...]
    """Display names of every source that reported this entry, in first-seen order."""


@dataclass(frozen=True)
class DigestLayout:
    messages: list[MessageSpec]
    full: int
    compact: int
    overflow: int


# -- duplicates -----------------------------------------------------------------------------------
def normalize_link(url: str | None) -> str | None:
    """A link with the differences that do not matter removed (scheme, www., tracking, fragment)."""
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return url.strip()
    host = parts.netloc.lower().removeprefix("www.")
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                   if not (k.lower().startswith("utm_") or k.lower() in _TRACKING))
    path = parts.path.rstrip("/") or ""
    return urlunsplit(("http", host, path, urlencode(query), ""))


def _title_key(title: str) -> str | None:
    key = " ".join(unicodedata.normalize("NFKC", title).casefold().split())
    return key or None


def _when(entry: Entry) -> datetime:
    return entry.published or entry.first_seen or datetime.min.replace(tzinfo=UTC)


def merge_duplicates(entries: Sequence[tuple[Entry, str]]) -> list[DigestItem]:
    """One item per story: same normalised link, or the same title, reported by several sources."""
    items: list[DigestItem] = []
    by_link: dict[str, int] = {}
    by_title: dict[str, int] = {}
    for entry, source in entries:
        link, title = normalize_link(entry.link), _title_key(entry.title)
        index = by_link.get(link) if link else None
        if index is None and title:
            index = by_title.get(title)
        if index is None:
            index = len(items)
            items.append(DigestItem(entry, (source,)))
        else:
            current = items[index]
            topics = tuple(dict.fromkeys((*current.entry.topics, *entry.topics)))
            keep = entry if entry.published and current.entry.published and entry.published < \
                current.entry.published else current.entry
            sources = current.sources if source in current.sources else (*current.sources, source)
            items[index] = DigestItem(dataclasses.replace(keep, topics=topics), sources)
        for key, table in ((link, by_link), (title, by_title)):
            if key:
                table.setdefault(key, index)
    return items


# -- grouping -------------------------------------------------------------------------------------
def _groups(items: Sequence[DigestItem], group_by: GroupBy, topic_labels: Mapping[str, str],
            topic_order: Sequence[str]) -> list[tuple[str, list[DigestItem]]]:
    order = {t: i for i, t in enumerate(topic_order)}
    grouped: dict[str, list[DigestItem]] = {}
    for item in items:
        if group_by == "none":
            key = ""
        elif group_by == "source":
            key = item.sources[0]
        else:
            ranked = sorted(item.entry.topics, key=lambda t: order.get(t, len(order)))
            key = ranked[0] if ranked else _OTHER
        grouped.setdefault(key, []).append(item)

    def rank(key: str) -> tuple[int, int, str]:
        if key == _OTHER and group_by == "topic":
            return (2, 0, "")
        label = topic_labels.get(key, key) if group_by == "topic" else key
        return (0, order[key], "") if group_by == "topic" and key in order else (1, 0, label.casefold())

    out = []
    for key in sorted(grouped, key=rank):
        label = (topic_labels.get(key, key) if group_by == "topic" else key) or "Latest"
        newest_first = sorted(grouped[key], key=lambda i: _when(i.entry), reverse=True)
        out.append((label, newest_first))
    return out


# -- blocks ---------------------------------------------------------------------------------------
def _link_target(url: str | None) -> str | None:
    safe = http_url(url)
    return safe.replace("(", "%28").replace(")", "%29") if safe else None


def _title(entry: Entry, limit: int) -> str:
    return safe_text(truncate_text(entry.title or "(untitled)", limit))


def _full_block(item: DigestItem, summary_length: int) -> str:
    title = _title(item.entry, _TITLE_IN_BLOCK)
    link = _link_target(item.entry.link)
    head = f"**[{title}]({link})**" if link else f"**{title}**"
    sources = safe_text(", ".join(item.sources))[:300]
    summary = safe_text(truncate_text(" ".join(item.entry.summary.split()), summary_length))
    block = f"{head} · {sources}"
    return f"{block}\n{summary}" if summary else block


def _compact_line(item: DigestItem) -> str:
    title = _title(item.entry, _COMPACT_TITLE)
    link = _link_target(item.entry.link)
    return f"• [{title}]({link})" if link else f"• {title}"


def _embed(title: str, lines: Sequence[str], color: int | None) -> EmbedSpec:
    return EmbedSpec(title=truncate_text(title, TITLE_LIMIT), url=None, description="\n\n".join(lines),
                     author="", timestamp=None, footer="", thumbnail=None, color=color)


def _period(period_start: datetime, period_end: datetime, tz: tzinfo) -> str:
    start, end = period_start.astimezone(tz), period_end.astimezone(tz)
    zone = getattr(tz, "key", None) or end.tzname() or "UTC"
    return f"{start:%d %b %H:%M} → {end:%d %b %H:%M} ({zone})"


def _content(header: str | None, period: str, count: int) -> str:
    tail = f"{period} · {count} {'entry' if count == 1 else 'entries'}"
    head = defuse_mentions(header.strip()) if header and header.strip() else ""
    room = CONTENT_LIMIT - len(tail) - 1
    head = truncate_text(head, room) if head else ""
    return f"{head}\n{tail}" if head else tail


# -- layout ---------------------------------------------------------------------------------------
class _Packer:
    """Fills messages with embeds, never past a Discord limit."""

    def __init__(self, max_messages: int, color: int | None, reserve: int) -> None:
        self.max_messages = max_messages
        self.color = color
        self.reserve = reserve
        self.messages: list[list[EmbedSpec]] = [[]]
        self.label = ""
        self.lines: list[str] = []
        self.continued = False

    def _used(self) -> int:
        return sum(e.size for e in self.messages[-1])

    def _last(self) -> bool:
        return len(self.messages) == self.max_messages

    def _room(self) -> tuple[int, int]:
        """(characters, embeds) still free in the current message, keeping the reserve in the last."""
        chars = EMBED_TOTAL_LIMIT - self._used() - (self.reserve if self._last() else 0)
        embeds = EMBEDS_PER_MESSAGE - len(self.messages[-1]) - (1 if self._last() and self.reserve else 0)
        return chars, embeds

    def close_embed(self) -> None:
        if self.lines:
            title = f"{self.label} (cont.)" if self.continued else self.label
            self.messages[-1].append(_embed(title, self.lines, self.color))
            self.lines = []
            self.continued = True

    def start_group(self, label: str) -> None:
        self.close_embed()
        self.label, self.continued = label, False

    def add(self, block: str) -> bool:
        """Add a block to the open embed, else a new embed, else a new message; False when nothing fits."""
        title_len = len(self.label) + len(" (cont.)")
        while True:
            chars, embeds = self._room()  # closed embeds only; the open one is title + its lines
            if self.lines:
                size = len("\n\n".join(self.lines)) + 2 + len(block)
                if size <= DESCRIPTION_LIMIT and title_len + size <= chars:
                    self.lines.append(block)
                    return True
                self.close_embed()
                continue
            if embeds >= 1 and len(block) <= DESCRIPTION_LIMIT and title_len + len(block) <= chars:
                self.lines.append(block)
                return True
            if self._last() or not self.messages[-1]:
                return False
            self.messages.append([])

    def finish(self) -> list[list[EmbedSpec]]:
        self.close_embed()
        return [m for m in self.messages if m] or [[]]


def layout_digest(items: Sequence[DigestItem], *, header: str | None, period_start: datetime,
                  period_end: datetime, tz: tzinfo, group_by: GroupBy, topic_labels: Mapping[str, str],
                  topic_order: Sequence[str], color: int | None = None, max_messages: int = 1,
                  summary_length: int = 160, search_hint: str = "/search") -> DigestLayout:
    if not items:
        return DigestLayout([], 0, 0, 0)
    max_messages = max(1, max_messages)
    groups = _groups(items, group_by, topic_labels, topic_order)
    for reserve in (0, _MORE_RESERVE):
        packer = _Packer(max_messages, color, reserve)
        shown: set[int] = set()
        stopped = False
        for label, members in groups:
            packer.start_group(f"{label} · {len(members)}" if group_by != "none" else label)
            for item in members:
                if stopped or not packer.add(_full_block(item, summary_length)):
                    stopped = True
                    break
                shown.add(id(item))
            if stopped:
                break
        if not stopped:
            break
    messages = packer.finish()
    rest = [item for _, members in groups for item in members if id(item) not in shown]
    compact = 0
    if rest:
        last = messages[-1]
        chars = EMBED_TOTAL_LIMIT - sum(e.size for e in last) - len("More") - 8
        budget = min(DESCRIPTION_LIMIT, chars)
        lines: list[str] = []
        used = 0
        for index, item in enumerate(rest):
            line = _compact_line(item)
            remaining = len(rest) - index - 1
            closing = len(f"\n…and {remaining} more — use {search_hint}") + 4 if remaining else 0
            if used + len(line) + 1 + closing > budget:
                break
            lines.append(line)
            used += len(line) + 1
        compact = len(lines)
        overflow = len(rest) - compact
        if overflow:
            lines.append(f"…and {overflow} more — use {safe_text(search_hint)[:200]}")
        if lines and len(last) < EMBEDS_PER_MESSAGE:
            last.append(_embed("More", ["\n".join(lines)], color))
        elif lines:  # no embed slot left (cannot happen with the reserve, but never break a limit)
            compact, overflow = 0, len(rest)
    overflow = len(rest) - compact
    content = _content(header, _period(period_start, period_end, tz), len(items))
    specs = [MessageSpec(content=content if i == 0 else None, embeds=tuple(embeds))
             for i, embeds in enumerate(messages)]
    return DigestLayout(specs, len(shown), compact, overflow)


def empty_digest_message(header: str | None, period_start: datetime, period_end: datetime,
                         tz: tzinfo) -> MessageSpec:
    period = _period(period_start, period_end, tz)
    head = defuse_mentions(header.strip()) if header and header.strip() else ""
    text = f"No new entries between {period}."
    return MessageSpec(content=(f"{truncate_text(head, CONTENT_LIMIT - len(text) - 1)}\n{text}" if head else text),
                       embeds=())
