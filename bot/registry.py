"""The effective source list: the config file's sources, changed by what was done from Discord.

Precedence (also in the README): the YAML is the starting point; every change made from Discord
(``/sources add|remove|pause|resume|edit``, OPML import) is stored in the database and wins over
the YAML for the fields it changed, across restarts. Editing a source in the YAML still takes effect
for every field that was not changed from Discord. ``digestbot sources reset ID`` forgets the
Discord-side changes of one source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from bot.config import Config, SourceConfig, slugify
from bot.errors import ConfigError

EDITABLE = ("name", "url", "topics", "interval", "channels", "enabled")
_URL = re.compile(r"^https?://[^\s/]+", re.IGNORECASE)


def validate_settings(settings: dict[str, Any], config: Config, *, added: bool) -> dict[str, Any]:
    """Clean settings coming from Discord or OPML; ConfigError names the field."""
    clean: dict[str, Any] = {}
    for key, value in settings.items():
        if key not in EDITABLE and key != "removed":
            raise ConfigError(f"cannot change {key!r} from Discord", key=key)
        if key == "url":
            value = str(value).strip()
            if not _URL.match(value):
                raise ConfigError("must be an http:// or https:// URL", key="url")
            if len(value) > 2000:
                raise ConfigError("is too long", key="url")
        elif key == "name":
            value = " ".join(str(value).split())[:100]
            if not value:
                raise ConfigError("must not be empty", key="name")
        elif key == "topics":
            value = [str(t).strip().lower() for t in value if str(t).strip()]
            unknown = [t for t in value if config.topics and t not in config.topics]
            if unknown:
                raise ConfigError(f"unknown topic(s) {', '.join(unknown)}; see /topics", key="topics")
        elif key == "interval":
            value = float(value)
            if value < 60:
                raise ConfigError("must be at least 1 minute", key="interval")
            if value > 7 * 86400:
                raise ConfigError("must be at most 7 days", key="interval")
        elif key == "channels":
            value = [int(c) for c in value]
        elif key in ("enabled", "removed"):
            value = bool(value)
        clean[key] = value
    if added and not {"name", "url"} <= clean.keys():
        raise ConfigError("a new source needs a name and a URL", key="url")
    return clean


def new_source_id(name: str, taken: Sequence[str]) -> str:
    base = slugify(name)[:56]
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _apply(source: SourceConfig, settings: dict[str, Any]) -> SourceConfig:
    update: dict[str, Any] = {}
    for key, value in settings.items():
        if key == "interval":
            update["interval"] = timedelta(seconds=value)
        elif key in ("topics", "channels"):
            update[key] = tuple(value)
        elif key in ("name", "url", "enabled"):
            update[key] = value
    if "url" in update:
        update["allow_file"] = False  # a URL set from Discord is never a local file
    return source.model_copy(update=update)


def effective_sources(base: Config, rows: Sequence[tuple[str, str, dict[str, Any], int | None]]
                      ) -> tuple[SourceConfig, ...]:
    """``base.sources`` (from the YAML) with the database's changes applied, then the added ones."""
    overrides = {sid: settings for sid, kind, settings, _ in rows if kind == "override"}
    out: list[SourceConfig] = []
    for source in base.sources:
        settings = overrides.get(source.id)
        if settings is None:
            out.append(source)
        elif not settings.get("removed"):
            out.append(_apply(source, settings))
    yaml_ids = {s.id for s in base.sources}
    defaults = base.defaults
    for sid, kind, settings, guild_id in rows:
        if kind != "added" or sid in yaml_ids or settings.get("removed"):
            continue
        source = SourceConfig(
            id=sid, name=settings["name"], url=settings["url"], topics=(), interval=defaults.interval,
            channels=(), color=None, backfill=defaults.backfill, header=defaults.header,
            summary_length=defaults.summary_length, enabled=True, allow_file=False, origin="discord",
            guild_id=guild_id)
        out.append(_apply(source, settings))
    return tuple(out)
