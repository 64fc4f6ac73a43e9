"""Per-route message templates: ``{title}``-style placeholders, validated once, rendered Discord-safe.

Only bare placeholder names are accepted: no attribute or index access, conversions or format specs,
so a template cannot reach into Python objects. Rendering never calls ``str.format``; it joins the
parsed pieces. Feed values are escaped (markdown) and defused (mentions); the template's own text is
the operator's and kept as written, except that mentions are defused over the whole result.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from bot.format import CONTENT_LIMIT, defuse_mentions, http_url, safe_text
from bot.models import Entry
from bot.text import truncate_text

PLACEHOLDERS = ("title", "link", "summary", "source", "topics", "date", "author")
_ALLOWED = ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def _problem(where: str, what: str) -> ValueError:
    return ValueError(f"{where}: {what} (allowed placeholders: {_ALLOWED}; write {{{{ and }}}} for literal braces)")


@dataclass(frozen=True, slots=True)
class MessageTemplate:
    """A validated template: literal text and placeholder names, in order."""

    pieces: tuple[tuple[str, str | None], ...]

    @classmethod
    def compile(cls, text: str, *, where: str) -> MessageTemplate:
        """Validate ``text``; errors name ``where`` (e.g. "routes[2].template") and the allowed placeholders."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{where}: template is empty (allowed placeholders: {_ALLOWED})")
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise _problem(where, f"unbalanced braces: {exc}") from None
        pieces: list[tuple[str, str | None]] = []
        for literal, name, spec, conversion in parsed:
            if name is None:
                pieces.append((literal, None))
                continue
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            if name == "" or name.isdigit():
                raise _problem(where, f"positional placeholder {shown} is not allowed")
            if "." in name or "[" in name:
                raise _problem(where, f"attribute or index access in {shown} is not allowed")
            if name not in PLACEHOLDERS:
                raise _problem(where, f"unknown placeholder {shown}")
            if conversion:
                raise _problem(where, f"conversion !{conversion} in {shown} is not allowed")
            if spec:
                raise _problem(where, f"format spec :{spec} in {shown} is not allowed")
            pieces.append((literal, name))
        literal_size = sum(len(literal) for literal, _ in pieces)
        if literal_size > CONTENT_LIMIT:
            raise ValueError(f"{where}: template text is {literal_size} characters; a message holds {CONTENT_LIMIT}")
        return cls(pieces=tuple(pieces))

    @property
    def placeholders(self) -> tuple[str, ...]:
        """The placeholder names used, in order of first use."""
        return tuple(dict.fromkeys(name for _, name in self.pieces if name is not None))

    def render(self, entry: Entry, *, source: str, topic_labels: Mapping[str, str], summary_length: int = 300,
               tz: tzinfo = UTC) -> str:
        """The message content for one entry, at most ``CONTENT_LIMIT`` characters, mentions defused.

        The result can be empty (e.g. a template of only ``{link}`` for an entry without an http link).
        """
        values = _values(entry, source=source, topic_labels=topic_labels, summary_length=summary_length, tz=tz)
        text = "".join(literal + (values[name] if name is not None else "") for literal, name in self.pieces)
        # Over the whole string: the template's own "@everyone", and mentions formed by joining pieces.
        return truncate_text(defuse_mentions(text), CONTENT_LIMIT)


def _values(entry: Entry, *, source: str, topic_labels: Mapping[str, str], summary_length: int,
            tz: tzinfo) -> dict[str, str]:
    summary = truncate_text(entry.summary or "", max(1, summary_length))
    topics = ", ".join(topic_labels.get(topic, topic) for topic in entry.topics)
    return {
        "title": safe_text(entry.title or "(untitled)"),  # as in embeds (bot.format.render_entry)
        "link": _link(entry.link),
        "summary": safe_text(summary),
        "source": safe_text(source),
        "topics": safe_text(topics),
        "date": _date(entry.published or entry.updated, tz),
        "author": safe_text(entry.author or ""),
    }


def _link(url: str | None) -> str:
    """An http(s) link or "". Parentheses are percent-encoded so a link cannot close a masked link early."""
    checked = http_url(url)
    return checked.replace("(", "%28").replace(")", "%29") if checked else ""


def _date(when: datetime | None, tz: tzinfo) -> str:
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # stored times are UTC
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")
