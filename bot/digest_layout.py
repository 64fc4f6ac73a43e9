"""A scheduled digest's entries → Discord messages: duplicates merged, grouped, within every limit.

Pure functions. Everything that cannot be shown in full is still accounted for: each item is a
full block (linked title, sources, short summary), a compact line in a closing "More" embed, or
counted in a final "…and N more" pointer to /search. ``DigestLayout`` reports the three counts.

Limits hold by construction: every piece of a block has a hard cap (so one block always fits an
empty embed of an empty message), and the packer measures the open embed against the per-embed
and per-message limits before adding to it.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bot.fold import stream_safe
from bot.format import (
    CONTENT_LIMIT,
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    EMBEDS_PER_MESSAGE,
    TITLE_LIMIT,
    URL_LIMIT,
    EmbedSpec,
    MessageSpec,
    defuse_mentions,
    http_url,
    safe_text,
)
from bot.models import Entry
from bot.text import truncate_text

GroupBy = Literal["topic", "source", "none"]

_TRACKING = frozenset({"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_hsenc",
                       "_hsmi", "ref", "ref_src", "spm", "share", "from"})
_OTHER_LABEL = "Other"
_NONE_LABEL = "Latest"
_CONT = " (cont.)"
_MORE_TITLE = "More"
_BLOCK_SEP = "\n\n"

# Hard caps, in characters after escaping. A full block is at most
# 4 + _TITLE_CAP + 4 + URL_LIMIT + 1 + 3 + _SOURCES_CAP + 1 + _SUMMARY_CAP characters.
_TITLE_CAP = 400
_TITLE_RAW = 200
_SOURCES_CAP = 200
_SUMMARY_CAP = 1200
_COMPACT_TITLE_RAW = 90
_COMPACT_TITLE_CAP = 180
_HINT_CAP = 200
_LABEL_CAP = TITLE_LIMIT - len(_CONT) - len(" · 000000")
_MAX_BLOCK = 4 + _TITLE_CAP + 4 + URL_LIMIT + 1 + 3 + _SOURCES_CAP + 1 + _SUMMARY_CAP
assert _MAX_BLOCK <= DESCRIPTION_LIMIT and _MAX_BLOCK + TITLE_LIMIT <= EMBED_TOTAL_LIMIT

_LINK_UNSAFE = "\\()@`"
"""Percent-encoded in a link's path/query/fragment; a link whose host part holds one is not linked."""

_MORE_RESERVE = 700
"""Room kept in the last message for the "More" embed (compact list and closing pointer) on overflow."""


@dataclass(frozen=True)
class DigestItem:
    entry: Entry
    sources: tuple[str, ...]
    """Display names of every source that reported this entry, in first-seen order."""


@dataclass(frozen=True)
class DigestLayout:
    messages: list[MessageSpec]
    full: int
    """Items shown as a full block (title, sources, summary)."""
    compact: int
    """Items shown as one line in the closing "More" embed."""
    overflow: int
    """Items only counted in the closing "…and N more" line."""


# -- duplicates -----------------------------------------------------------------------------------
def normalize_link(url: str | None) -> str | None:
    """A link with the differences that do not matter removed (scheme, www., tracking, fragment, slash)."""
    if not url or not url.strip():
        return None
    text = url.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return text
    host = parts.netloc.lower().removeprefix("www.")
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                   if not (k.lower().startswith("utm_") or k.lower() in _TRACKING))
    return urlunsplit(("http", host, parts.path.rstrip("/"), urlencode(query), ""))


def _title_key(title: str) -> str | None:
    key = " ".join(unicodedata.normalize("NFKC", stream_safe(title)).casefold().split())
    return key or None


def _age_key(entry: Entry, index: int) -> tuple[int, datetime, int]:
    """Earliest first: by published, else first_seen; undated after dated; then input order."""
    when = entry.published or entry.first_seen
    return (0, when, index) if when else (1, datetime.min.replace(tzinfo=UTC), index)


def merge_duplicates(entries: Sequence[tuple[Entry, str]]) -> list[DigestItem]:
    """One item per story: same normalised link, or the same title, reported by one or several sources.

    The earliest duplicate is the representative entry, carrying the union of all duplicates' topics;
    items keep the input order of their first appearance.
    """
    reps: list[tuple[Entry, int]] = []  # representative and its input position
    topics: list[dict[str, None]] = []
    sources: list[dict[str, None]] = []
    by_link: dict[str, int] = {}
    by_title: dict[str, int] = {}
    for position, (entry, source) in enumerate(entries):
        link, title = normalize_link(entry.link), _title_key(entry.title)
        index = by_link.get(link) if link else None
        if index is None and title:
            index = by_title.get(title)
        if index is None:
            index = len(reps)
            reps.append((entry, position))
            topics.append(dict.fromkeys(entry.topics))
            sources.append({source: None})
        else:
            current, current_position = reps[index]
            if _age_key(entry, position) < _age_key(current, current_position):
                reps[index] = (entry, position)
            topics[index].update(dict.fromkeys(entry.topics))
            sources[index][source] = None
        if link:
            by_link.setdefault(link, index)
        if title:
            by_title.setdefault(title, index)
    return [DigestItem(dataclasses.replace(entry, topics=tuple(topics[i])), tuple(sources[i]))
            for i, (entry, _) in enumerate(reps)]


# -- grouping -------------------------------------------------------------------------------------
def _newest_key(item: DigestItem) -> tuple[int, datetime]:
    when = item.entry.published or item.entry.first_seen
    return (1, when) if when else (0, datetime.min.replace(tzinfo=UTC))


def _groups(items: Sequence[DigestItem], group_by: GroupBy, topic_labels: Mapping[str, str],
            topic_order: Sequence[str]) -> list[tuple[str, list[DigestItem]]]:
    """(label, items newest first) per group, in display order."""
    order: dict[str, int] = {}
    for i, topic in enumerate(topic_order):
        order.setdefault(topic, i)
    grouped: dict[str | None, list[DigestItem]] = {}  # None: the "Other" / single group
    for item in items:
        key: str | None
        if group_by == "none":
            key = None
        elif group_by == "source":
            key = item.sources[0] if item.sources else None
        else:
            ranked = sorted(item.entry.topics, key=lambda t: order.get(t, len(order)))  # stable
            key = ranked[0] if ranked else None
        grouped.setdefault(key, []).append(item)

    def label(key: str | None) -> str:
        if key is None:
            return _NONE_LABEL if group_by == "none" else _OTHER_LABEL
        return topic_labels.get(key, key) if group_by == "topic" else key

    def rank(key: str | None) -> tuple[int, int, str, str]:
        if key is None:
            return (2, 0, "", "")
        if group_by == "topic" and key in order:
            return (0, order[key], "", "")
        return (1, 0, label(key).casefold(), key)

    return [(label(key), sorted(grouped[key], key=_newest_key, reverse=True)) for key in sorted(grouped, key=rank)]


# -- text pieces ----------------------------------------------------------------------------------
def _fit(text: str, raw_limit: int, cap: int) -> str:
    """``text`` cut to ``raw_limit`` characters (word/CJK boundary, ellipsis), then made safe; cut further
    until the safe form is at most ``cap`` characters. Always the safe form of a prefix (+ "…")."""
    n = max(0, raw_limit)
    out = safe_text(truncate_text(text, n))
    while len(out) > cap and n > 0:
        n = min(n - 1, n * cap // len(out))
        out = safe_text(truncate_text(text, n))
    return out


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _link_target(url: str | None) -> str | None:
    """An http(s) link that cannot end the markdown link early or carry a mention (no userinfo, no "@")."""
    safe = http_url(url)
    if not safe:
        return None
    try:
        netloc = urlsplit(safe).netloc
    except ValueError:
        return None
    if not netloc or any(c in netloc for c in _LINK_UNSAFE):
        return None
    start = safe.index("//") + 2 + len(netloc)
    tail = safe[start:]
    for char in _LINK_UNSAFE:
        tail = tail.replace(char, f"%{ord(char):02X}")
    target = safe[:start] + tail
    return target if len(target) <= URL_LIMIT else None


def _full_block(item: DigestItem, summary_length: int) -> str:
    title = _fit(_one_line(item.entry.title) or "(untitled)", _TITLE_RAW, _TITLE_CAP)
    link = _link_target(item.entry.link)
    head = f"**[{title}]({link})**" if link else f"**{title}**"
    sources = _fit(_one_line(", ".join(item.sources)), _SOURCES_CAP, _SOURCES_CAP)
    if sources:
        head = f"{head} · {sources}"
    summary = _fit(_one_line(item.entry.summary), summary_length, _SUMMARY_CAP)
    return f"{head}\n{summary}" if summary else head


def _compact_line(item: DigestItem) -> str:
    title = _fit(_one_line(item.entry.title) or "(untitled)", _COMPACT_TITLE_RAW, _COMPACT_TITLE_CAP)
    link = _link_target(item.entry.link)
    return f"• [{title}]({link})" if link else f"• {title}"


def _group_title(label: str, count: int) -> str:
    return f"{_fit(_one_line(label), _LABEL_CAP, _LABEL_CAP) or '—'} · {count}"


def _embed(title: str, description: str, color: int | None) -> EmbedSpec:
    return EmbedSpec(title=title[:TITLE_LIMIT], url=None, description=description[:DESCRIPTION_LIMIT], author="",
                     timestamp=None, footer="", thumbnail=None, color=color)


def _zone_name(tz: tzinfo, at: datetime) -> str:
    key = getattr(tz, "key", None)
    return key if isinstance(key, str) and key else (at.tzname() or "UTC")


def _period(period_start: datetime, period_end: datetime, tz: tzinfo) -> str:
    start, end = period_start.astimezone(tz), period_end.astimezone(tz)
    fmt = "%d %b %Y %H:%M" if start.year != end.year else "%d %b %H:%M"
    return f"{start.strftime(fmt)} → {end.strftime(fmt)} ({_zone_name(tz, end)})"


def _with_header(header: str | None, tail: str) -> str:
    tail = truncate_text(tail, CONTENT_LIMIT)
    head = (header or "").strip()
    if not head:
        return tail
    room = CONTENT_LIMIT - len(tail) - 1
    head = truncate_text(defuse_mentions(head), room) if room > 0 else ""
    return f"{head}\n{tail}" if head else tail


# -- packing --------------------------------------------------------------------------------------
class _Packer:
    """Fills up to ``max_messages`` messages with group embeds, never past a Discord limit.

    ``reserve`` characters and one embed slot are kept free in the last message for the "More" embed.
    """

    def __init__(self, max_messages: int, color: int | None, reserve: int) -> None:
        self.max_messages = max_messages
        self.color = color
        self.reserve = reserve
        self.messages: list[list[EmbedSpec]] = [[]]
        self.label = ""
        self.count = 0
        self.blocks: list[str] = []
        self.continued = False

    def _last(self) -> bool:
        return len(self.messages) >= self.max_messages

    def _title(self) -> str:
        return _group_title(self.label, self.count) + (_CONT if self.continued else "")

    def _room(self) -> tuple[int, int]:
        """(characters, embeds) free in the current message besides the open embed."""
        reserve = self._last() and self.reserve > 0
        chars = EMBED_TOTAL_LIMIT - sum(e.size for e in self.messages[-1]) - (self.reserve if reserve else 0)
        embeds = EMBEDS_PER_MESSAGE - len(self.messages[-1]) - (1 if reserve else 0)
        return chars, embeds

    def close_embed(self) -> None:
        if self.blocks:
            self.messages[-1].append(_embed(self._title(), _BLOCK_SEP.join(self.blocks), self.color))
            self.blocks = []
            self.continued = True

    def start_group(self, label: str, count: int) -> None:
        self.close_embed()
        self.label, self.count, self.continued = label, count, False

    def _title_len(self) -> int:
        return len(_group_title(self.label, self.count)) + len(_CONT)  # the longer title this group can have

    def add(self, block: str) -> bool:
        """Add a block to the open embed, else a new embed, else a new message; False when nothing fits."""
        title_len = self._title_len()
        while True:
            chars, embeds = self._room()
            if self.blocks:
                size = len(_BLOCK_SEP.join(self.blocks)) + len(_BLOCK_SEP) + len(block)
                if size <= DESCRIPTION_LIMIT and title_len + size <= chars:
                    self.blocks.append(block)
                    return True
                self.close_embed()
                continue
            if embeds >= 1 and len(block) <= DESCRIPTION_LIMIT and title_len + len(block) <= chars:
                self.blocks.append(block)
                return True
            if self._last() or not self.messages[-1]:
                return False
            self.messages.append([])

    def finish(self) -> list[list[EmbedSpec]]:
        self.close_embed()
        return [m for m in self.messages if m]


def layout_digest(items: Sequence[DigestItem], *, header: str | None, period_start: datetime,
                  period_end: datetime, tz: tzinfo, group_by: GroupBy, topic_labels: Mapping[str, str],
                  topic_order: Sequence[str], color: int | None = None, max_messages: int = 1,
                  summary_length: int = 160, search_hint: str = "/search") -> DigestLayout:
    """Lay out a digest in at most ``max_messages`` messages; see the module docstring."""
    if not items:
        return DigestLayout([], 0, 0, 0)
    max_messages = max(1, max_messages)
    summary_length = max(0, summary_length)
    groups = _groups(items, group_by, topic_labels, topic_order)
    blocks = {id(item): _full_block(item, summary_length) for _, members in groups for item in members}

    packer = _Packer(max_messages, color, 0)
    shown: set[int] = set()
    for reserve in (0, _MORE_RESERVE):
        packer = _Packer(max_messages, color, reserve)
        shown = set()
        stopped = False
        for label, members in groups:
            packer.start_group(label, len(members))
            for item in members:
                if not packer.add(blocks[id(item)]):
                    stopped = True
                    break
                shown.add(id(item))
            if stopped:
                break
        if not stopped:
            break
    messages = packer.finish() or [[]]

    rest = [item for _, members in groups for item in members if id(item) not in shown]
    compact = 0
    if rest:
        hint = _fit(_one_line(search_hint), _HINT_CAP, _HINT_CAP) or "/search"
        last = messages[-1]
        room = EMBED_TOTAL_LIMIT - sum(e.size for e in last) - len(_MORE_TITLE)
        budget = min(DESCRIPTION_LIMIT, room)
        lines: list[str] = []
        used = 0  # length of "\n".join(lines)
        for index, item in enumerate(rest):
            line = _compact_line(item)
            remaining = len(rest) - index - 1
            closing = len(f"\n…and {remaining} more — use {hint}") if remaining else 0
            grown = used + (1 if lines else 0) + len(line)
            if grown + closing > budget:
                break
            lines.append(line)
            used = grown
        compact = len(lines)
        if compact < len(rest):
            lines.append(f"…and {len(rest) - compact} more — use {hint}")
        description = "\n".join(lines)
        if len(last) < EMBEDS_PER_MESSAGE and len(description) <= budget:
            last.append(_embed(_MORE_TITLE, description, color))
        else:  # unreachable with the reserve; never break a limit regardless
            compact = 0
    overflow = len(rest) - compact
    noun = "entry" if len(items) == 1 else "entries"
    content = _with_header(header, f"{_period(period_start, period_end, tz)} · {len(items)} {noun}")
    specs = [MessageSpec(content=content if i == 0 else None, embeds=tuple(embeds))
             for i, embeds in enumerate(messages)]
    return DigestLayout(specs, len(shown), compact, overflow)


def empty_digest_message(header: str | None, period_start: datetime, period_end: datetime,
                         tz: tzinfo) -> MessageSpec:
    """The notice for a digest period with nothing in it (whether to post it is the caller's choice)."""
    return MessageSpec(content=_with_header(header, f"No new entries between {_period(period_start, period_end, tz)}."),
                       embeds=())
