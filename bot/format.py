"""Entry → a platform-neutral embed within Discord's limits, and packing embeds into messages.

Limits are respected by construction: every field is cut to its limit here, and the packer never
puts more than 10 embeds or 6,000 embed characters into one message. Feed text is data: markdown
in titles is escaped and mention syntax is defused (allowed_mentions none is the second guard).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.models import Entry
from bot.text import truncate_text

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
EMBED_TOTAL_LIMIT = 6000
EMBEDS_PER_MESSAGE = 10
CONTENT_LIMIT = 2000
URL_LIMIT = 2048

_MARKDOWN = re.compile(r"([\\*_`~|\[\]<>])")
_LINE_START = re.compile(r"^(\s*)([#>-])", re.MULTILINE)
_MENTION = re.compile(r"@(everyone|here)|<(@[!&]?|#)(\d+)>")
_INVITE = re.compile(r"(discord(?:app)?\.(?:gg|com/invite))/", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class EmbedSpec:
    title: str
    url: str | None
    description: str
    author: str
    timestamp: datetime | None
    footer: str
    thumbnail: str | None
    color: int | None

    @property
    def size(self) -> int:
        """Characters Discord counts toward the 6,000 limit."""
        return len(self.title) + len(self.description) + len(self.author) + len(self.footer)


@dataclass(frozen=True, slots=True)
class MessageSpec:
    content: str | None
    embeds: tuple[EmbedSpec, ...]
    allowed_roles: tuple[int, ...] = ()
    """Roles this message may ping (a route's explicit ``mention_roles``); nothing else ever pings."""
    username: str | None = None
    """Webhook deliveries only: the display name to post under."""
    avatar_url: str | None = None
    """Webhook deliveries only: the avatar to post with."""

    def to_json(self) -> str:
        """Stored in the outbox, so a retry sends exactly what was queued."""
        return json.dumps({
            "content": self.content, "allowed_roles": list(self.allowed_roles), "username": self.username,
            "avatar_url": self.avatar_url,
            "embeds": [{"title": e.title, "url": e.url, "description": e.description, "author": e.author,
                        "timestamp": e.timestamp.isoformat() if e.timestamp else None, "footer": e.footer,
                        "thumbnail": e.thumbnail, "color": e.color} for e in self.embeds],
        }, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> MessageSpec:
        data = json.loads(text)
        embeds = tuple(EmbedSpec(
            title=e["title"], url=e["url"], description=e["description"], author=e["author"],
            timestamp=datetime.fromisoformat(e["timestamp"]) if e["timestamp"] else None, footer=e["footer"],
            thumbnail=e["thumbnail"], color=e["color"]) for e in data["embeds"])
        return cls(content=data["content"], embeds=embeds, allowed_roles=tuple(data.get("allowed_roles") or ()),
                   username=data.get("username"), avatar_url=data.get("avatar_url"))


def defuse_mentions(text: str) -> str:
    """Insert a zero-width joiner so @everyone, @here, <@id>, <@&id>, <#id> render as text."""
    return _MENTION.sub(lambda m: m.group(0)[0] + "\u200b" + m.group(0)[1:], text)


def escape_markdown(text: str) -> str:
    """Escape inline markdown, masked-link brackets and line-start headings/quotes/lists."""
    return _LINE_START.sub(r"\1\\\2", _MARKDOWN.sub(r"\\\1", text))


def safe_text(text: str) -> str:
    """Feed text as Discord should show it: markdown escaped, mentions and invites defused."""
    return _INVITE.sub(lambda m: m.group(1) + "\u200b/", defuse_mentions(escape_markdown(text)))


def _cut_escaped(text: str, limit: int) -> str:
    """Escape, then truncate without leaving a dangling backslash."""
    escaped = safe_text(text)
    if len(escaped) <= limit:
        return escaped
    cut = truncate_text(escaped, limit)
    body = cut.removesuffix("…")
    if body.endswith("\\") and not body.endswith("\\\\"):
        body = body[:-1]
    return (body + "…")[:limit]


def http_url(url: str | None) -> str | None:
    if url and len(url) <= URL_LIMIT and re.match(r"^https?://[^\s<>]+$", url, re.IGNORECASE):
        return url
    return None


def render_entry(entry: Entry, *, source_name: str, summary_length: int = 300,
                 color: int | None = None, topic_labels: dict[str, str] | None = None) -> EmbedSpec:
    labels = topic_labels or {}
    summary = truncate_text(entry.summary, max(1, summary_length))
    topics = " · ".join(labels.get(t, t) for t in entry.topics)
    footer = truncate_text(f"{source_name} · {topics}" if topics else source_name, FOOTER_LIMIT)
    return EmbedSpec(
        title=_cut_escaped(entry.title or "(untitled)", TITLE_LIMIT),
        url=http_url(entry.link),
        description=_cut_escaped(summary, DESCRIPTION_LIMIT),
        author=truncate_text(defuse_mentions(source_name), AUTHOR_LIMIT),
        timestamp=entry.published or entry.first_seen,
        footer=defuse_mentions(footer),
        thumbnail=http_url(entry.thumbnail),
        color=color,
    )


def pack_embeds(embeds: Sequence[EmbedSpec]) -> list[list[int]]:
    """Group embed indexes into messages: ≤10 embeds and ≤6,000 characters each, order kept."""
    groups: list[list[int]] = []
    current: list[int] = []
    size = 0
    for index, embed in enumerate(embeds):
        if current and (len(current) >= EMBEDS_PER_MESSAGE or size + embed.size > EMBED_TOTAL_LIMIT):
            groups.append(current)
            current, size = [], 0
        current.append(index)
        size += embed.size
    if current:
        groups.append(current)
    return groups


def header_content(header: str | None) -> str | None:
    if not header:
        return None
    return truncate_text(defuse_mentions(header), CONTENT_LIMIT)


def render_embed_as_text(embed: EmbedSpec) -> str:
    """How the console (dry run) shows an embed."""
    lines = [f"🔖 {embed.title}" + (f" — {embed.url}" if embed.url else "")]
    if embed.description:
        lines.append("   " + embed.description.replace("\n", "\n   "))
    if embed.footer or embed.timestamp:  # digest group embeds have neither
        when = embed.timestamp.strftime("%Y-%m-%d %H:%M UTC") if embed.timestamp else "undated"
        lines.append(f"   [{embed.footer} · {when}]")
    return "\n".join(lines)
