"""YAML + environment → a frozen, validated ``Config``.

Errors name the file and the key path (``sources[2].url``) and say what is wrong. Secrets never
come from the YAML: the bot token is read from ``DISCORD_TOKEN`` or the file named by
``DISCORD_TOKEN_FILE``. ``${NAME}`` / ``${NAME:-default}`` in any string value is replaced from the
environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError
from bot.filters import FIELDS, EntryFilter, FilterRule
from bot.templates import MessageTemplate

DEFAULT_API_BASE = "https://discord.com/api/v10"
DEFAULT_GATEWAY = "wss://gateway.discord.gg"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def parse_duration(value: object) -> timedelta:
    """``90``, ``"90s"``, ``"15m"``, ``"1h30m"``, ``"2d"`` → timedelta (bare numbers are seconds)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration like 15m, 1h or 90s")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"])
        compact = value.replace(" ", "")
        parts = _DURATION_PART.findall(compact)
        if parts and "".join(n + u for n, u in parts) == compact:
            return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))
    raise ValueError(f"expected a duration like 15m, 1h or 90s, got {value!r}")


def parse_size(value: object) -> int:
    """``1048576``, ``"10MB"``, ``"512 KiB"`` → bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 10MB")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()])
    raise ValueError(f"expected a size like 10MB or 512KiB, got {value!r}")


def parse_color(value: object) -> int | None:
    """``"#5865F2"``, ``"0x5865f2"`` or an int → 0xRRGGBB."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        if isinstance(value, int) and not 0 <= value <= 0xFFFFFF:
            raise ValueError("colour must be between 0x000000 and 0xFFFFFF")
        return value
    if isinstance(value, str):
        text = value.strip().lower().removeprefix("#").removeprefix("0x")
        if re.fullmatch(r"[0-9a-f]{6}", text):
            return int(text, 16)
    raise ValueError(f"expected a colour like '#5865F2', got {value!r}")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Color = Annotated[int | None, BeforeValidator(parse_color)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DiscordSettings(_Model):
    api_base: str = DEFAULT_API_BASE
    gateway_url: str = DEFAULT_GATEWAY
    guild_ids: tuple[int, ...] = ()
    """Guilds to sync slash commands to instantly (global sync can take up to an hour)."""
    admin_channel: int | None = None
    """Channel for operator notices (a source paused after repeated failures, and recovered)."""
    ephemeral_replies: bool = True
    results_per_page: int = Field(default=5, ge=1, le=10)

    @field_validator("api_base", "gateway_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        if not re.match(r"^(https?|wss?)://", value):
            raise ValueError("must be an http(s):// or ws(s):// URL")
        return value.rstrip("/")


class StorageSettings(_Model):
    path: Path = Path("data/digestbot.sqlite3")
    index_path: Path | None = None
    """Search index folder; defaults to ``<path>.index`` beside the database."""

    @property
    def resolved_index_path(self) -> Path:
        return self.index_path or self.path.with_name(self.path.name + ".index")


class FetchSettingsModel(_Model):
    connect_timeout: Duration = timedelta(seconds=10)
    read_timeout: Duration = timedelta(seconds=30)
    total_timeout: Duration = timedelta(seconds=60)
    max_body: Size = 10 * 1024 * 1024
    per_host_limit: int = Field(default=2, ge=1, le=32)
    max_redirects: int = Field(default=5, ge=0, le=20)
    user_agent: str | None = None
    allow_private_networks: tuple[str, ...] = ()
    """CIDRs exempt from the private-address guard, e.g. ``[127.0.0.1/32, 192.168.1.0/24]``."""

    @field_validator("allow_private_networks")
    @classmethod
    def _valid_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"{item!r} is not an IP network: {exc}") from None
        return value


class HealthSettings(_Model):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)


class PollDefaults(_Model):
    interval: Duration = timedelta(minutes=15)
    jitter: Duration = timedelta(seconds=30)
    backfill: int = Field(default=3, ge=0, le=100)
    summary_length: int = Field(default=300, ge=20, le=4096)
    header: str | None = "📡 LATEST UPDATES"
    max_backoff: Duration = timedelta(hours=6)
    pause_after_failures: int = Field(default=10, ge=1, le=1000)
    """After this many failures in a row a source is paused: polled only every max_backoff."""

    @field_validator("interval")
    @classmethod
    def _sane_interval(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=30):
            raise ValueError("must be at least 30s (be kind to feed servers)")
        return value


class IngestSettings(_Model):
    processes: int = Field(default=0, ge=0, le=64)
    """Worker processes for parsing and indexing; 0 = a thread (smallest footprint). Use the
    number of cores for hundreds of feeds."""
    parse_timeout: Duration = timedelta(minutes=2)
    """A feed still parsing after this is given up (the source's error); a worker process running
    it is killed and replaced."""

    @field_validator("parse_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value


class TopicDef(_Model):
    label: str | None = None
    keywords: tuple[str, ...] = ()

    @field_validator("keywords", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class SourceModel(_Model):
    id: str | None = None
    name: str
    url: str
    topics: tuple[str, ...] = ()
    interval: Duration | None = None
    channels: tuple[int, ...] = ()
    color: Color = None
    backfill: int | None = Field(default=None, ge=0, le=100)
    header: str | None = None
    summary_length: int | None = Field(default=None, ge=20, le=4096)
    enabled: bool = True
    webhook_username: str | None = Field(default=None, max_length=80)
    """Name this source posts under when a route delivers through a webhook."""
    webhook_avatar_url: str | None = None

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        value = value.strip()
        if not re.match(r"^(https?://[^\s/]+|file:)", value, re.IGNORECASE):
            raise ValueError("must be an http(s):// URL (or file: for a local file)")
        return value

    @field_validator("topics", mode="before")
    @classmethod
    def _topics(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("channels", mode="before")
    @classmethod
    def _channels(cls, value: object) -> object:
        items = value if isinstance(value, list | tuple) else [value]
        out = []
        for item in items:
            if isinstance(item, str) and item.strip().isdigit():
                item = int(item.strip())
            if isinstance(item, bool) or not isinstance(item, int) or item <= 0:
                raise ValueError(f"channel ids are Discord snowflakes (numbers), got {item!r}")
            out.append(item)
        return out

    @field_validator("interval")
    @classmethod
    def _sane_interval(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(seconds=30):
            raise ValueError("must be at least 30s (be kind to feed servers)")
        return value


class FilterModel(_Model):
    keywords: tuple[str, ...] = ()
    regex: tuple[str, ...] = ()
    fields: tuple[str, ...] = FIELDS

    @staticmethod
    def rule(model: FilterModel | None) -> FilterRule | None:
        """The filter module's form of an optional ``include:`` / ``exclude:``."""
        return None if model is None else FilterRule(keywords=model.keywords, regex=model.regex,
                                                     fields=model.fields)

    @field_validator("keywords", "regex", "fields", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


def _snowflake(value: object) -> object:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(f"must be a Discord id (a number), got {value!r}")
    return value


Snowflake = Annotated[int | None, BeforeValidator(_snowflake)]


class RouteModel(_Model):
    """Where entries go: from sources and/or topics to a channel or a webhook, now or as a digest."""

    id: str | None = None
    channel: Snowflake = None
    webhook: str | None = Field(default=None, repr=False)
    guild: Snowflake = None
    """For webhook routes: the server whose /search may show these sources."""
    sources: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    mode: Literal["realtime", "digest"] = "realtime"
    schedule: str | None = None
    timezone: str = "UTC"
    group_by: Literal["topic", "source", "none"] = "topic"
    max_messages: int = Field(default=1, ge=1, le=5)
    post_empty: bool = False
    header: str | None = None
    summary_length: int | None = Field(default=None, ge=20, le=4096)
    include: FilterModel | None = None
    exclude: FilterModel | None = None
    template: str | None = None
    mention_roles: dict[str, int] = {}
    username: str | None = Field(default=None, max_length=80)
    avatar_url: str | None = None
    enabled: bool = True

    @field_validator("sources", "topics", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> RouteModel:
        if (self.channel is None) == (self.webhook is None):
            raise ValueError("give exactly one of 'channel' (a channel id) or 'webhook' (a webhook URL)")
        if self.mode == "digest" and not self.schedule:
            raise ValueError("a digest route needs 'schedule' (cron, e.g. \"0 9 * * mon-fri\")")
        if self.mode == "realtime" and self.schedule:
            raise ValueError("'schedule' only applies to mode: digest")
        if self.webhook is None and (self.username or self.avatar_url):
            raise ValueError("'username' and 'avatar_url' only apply to webhook routes")
        return self


class ConfigModel(_Model):
    discord: DiscordSettings = DiscordSettings()
    storage: StorageSettings = StorageSettings()
    fetch: FetchSettingsModel = FetchSettingsModel()
    health: HealthSettings = HealthSettings()
    defaults: PollDefaults = PollDefaults()
    ingest: IngestSettings = IngestSettings()
    topics: dict[str, TopicDef] = {}
    include: tuple[str, ...] = ()
    sources: tuple[SourceModel, ...] = ()
    routes: tuple[RouteModel, ...] = ()

    @field_validator("topics", mode="before")
    @classmethod
    def _topic_shorthand(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {k: ({"keywords": v} if isinstance(v, list | str) else v) for k, v in value.items()}
        return value

    @field_validator("topics")
    @classmethod
    def _topic_ids(cls, value: dict[str, TopicDef]) -> dict[str, TopicDef]:
        for key in value:
            if not _SLUG.match(key):
                raise ValueError(f"topic id {key!r} must be lowercase letters, digits, '-', '_' or '.'")
        return value

    @model_validator(mode="after")
    def _unique_source_ids(self) -> ConfigModel:
        seen: dict[str, int] = {}
        for index, source in enumerate(self.sources):
            sid = source.id or slugify(source.name)
            if not _SLUG.match(sid):
                raise ValueError(f"sources[{index}].id {sid!r} must be lowercase letters, digits, '-', '_'")
            if sid in seen:
                raise ValueError(f"sources[{index}] has the same id {sid!r} as sources[{seen[sid]}]; "
                                 "give one of them an explicit 'id'")
            seen[sid] = index
        return self


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:64] or "source"


class SourceConfig(BaseModel):
    """A source with defaults applied and a stable id."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    url: str
    topics: tuple[str, ...]
    interval: timedelta
    channels: tuple[int, ...]
    color: int | None
    backfill: int
    header: str | None
    summary_length: int
    enabled: bool
    allow_file: bool
    """Only sources written by the operator into the config file may read local files."""
    webhook_username: str | None = None
    webhook_avatar_url: str | None = None
    origin: Literal["config", "discord"] = "config"
    guild_id: int | None = None
    """Sources added from Discord remember the server they were added in."""


class RouteConfig(BaseModel):
    """A resolved route. Sources with ``channels:`` get one implicit realtime route per channel."""

    model_config = ConfigDict(frozen=True)

    id: str
    channel_id: int | None
    webhook_url: str | None = Field(default=None, repr=False)
    guild_id: int | None = None
    sources: tuple[str, ...] = ()
    """Empty: every source."""
    topics: tuple[str, ...] = ()
    """Empty: any entry; else entries with at least one of these topics."""
    mode: Literal["realtime", "digest"] = "realtime"
    schedule: str | None = None
    timezone: str = "UTC"
    group_by: Literal["topic", "source", "none"] = "topic"
    max_messages: int = 1
    post_empty: bool = False
    header: str | None = None
    summary_length: int | None = None
    include: FilterModel | None = None
    exclude: FilterModel | None = None
    template: str | None = None
    mention_roles: dict[str, int] = {}
    username: str | None = None
    avatar_url: str | None = None
    implicit: bool = False

    @property
    def destination(self) -> str:
        """The outbox's ordering key: one ordered queue per channel or webhook."""
        return f"channel:{self.channel_id}" if self.channel_id is not None else f"webhook:{self.id}"

    def describe(self) -> str:
        where = f"channel {self.channel_id}" if self.channel_id is not None else "a webhook"
        when = f"digest {self.schedule} ({self.timezone})" if self.mode == "digest" else "realtime"
        return f"{self.id}: {when} → {where}"


def implicit_routes(sources: tuple[SourceConfig, ...], header: str | None = None) -> tuple[RouteConfig, ...]:
    """``channels:`` on a source is shorthand for a realtime route from that source to each channel."""
    return tuple(RouteConfig(id=f"{s.id}>{c}", channel_id=c, sources=(s.id,), header=s.header, implicit=True,
                             guild_id=s.guild_id)
                 for s in sources for c in s.channels)


class Config(BaseModel):
    model_config = ConfigDict(frozen=True)

    file: Path | None
    discord: DiscordSettings
    storage: StorageSettings
    fetch: FetchSettingsModel
    health: HealthSettings
    defaults: PollDefaults
    ingest: IngestSettings = IngestSettings()
    topics: dict[str, TopicDef]
    sources: tuple[SourceConfig, ...]
    routes: tuple[RouteConfig, ...] = ()
    """Explicit routes from the ``routes:`` section (implicit ones come from ``all_routes``)."""
    token: str | None = Field(default=None, repr=False)

    def source(self, source_id: str) -> SourceConfig | None:
        return next((s for s in self.sources if s.id == source_id), None)

    def all_routes(self) -> tuple[RouteConfig, ...]:
        return implicit_routes(self.sources) + self.routes

    def route(self, route_id: str) -> RouteConfig | None:
        return next((r for r in self.all_routes() if r.id == route_id), None)

    def with_sources(self, sources: tuple[SourceConfig, ...]) -> Config:
        """The same config with another source list (sources added or changed from Discord)."""
        return self.model_copy(update={"sources": sources})


def _substitute_env(value: Any, env: Mapping[str, str], path: str, file: str) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"environment variable {name} is not set", file=file, key=path or None)
        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute_env(v, env, f"{path}.{k}" if path else str(k), file) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, env, f"{path}[{i}]", file) for i, v in enumerate(value)]
    return value


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read: {exc}", file=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {where}{problem}", file=str(path)) from None


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"function-before[_one_or_many(), tuple[str, ...]]"}:
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


def _raw_document(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    data = _read_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of settings", file=str(path))
    data = _substitute_env(data, env, "", str(path))
    if "token" in data or (isinstance(data.get("discord"), dict) and "token" in data["discord"]):
        raise ConfigError("the bot token must not be in the config file; set DISCORD_TOKEN "
                          "(or DISCORD_TOKEN_FILE) in the environment", file=str(path), key="discord.token")
    return dict(data)


def _merge_includes(path: Path, data: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """``include: [topics.yaml]`` merges topics and appends sources from other files."""
    includes = data.get("include") or []
    if not isinstance(includes, list):
        raise ConfigError("must be a list of file names", file=str(path), key="include")
    merged = dict(data)
    for index, name in enumerate(includes):
        if not isinstance(name, str):
            raise ConfigError("must be a file name", file=str(path), key=f"include[{index}]")
        other_path = (path.parent / name).resolve()
        other = _raw_document(other_path, env)
        unknown = set(other) - {"topics", "sources", "routes"}
        if unknown:
            raise ConfigError("an included file may only hold 'topics', 'sources' and 'routes', "
                              f"not {sorted(unknown)}", file=str(other_path))
        try:
            ConfigModel.model_validate({"topics": other.get("topics") or {},
                                        "sources": other.get("sources") or [],
                                        "routes": other.get("routes") or []})
        except ValidationError as exc:
            raise _config_error(exc, other_path) from None
        topics = dict(other.get("topics") or {})
        topics.update(merged.get("topics") or {})
        merged["topics"] = topics
        merged["sources"] = list(merged.get("sources") or []) + list(other.get("sources") or [])
        merged["routes"] = list(merged.get("routes") or []) + list(other.get("routes") or [])
    return merged


def _config_error(exc: ValidationError, path: Path) -> ConfigError:
    lines = []
    for err in exc.errors():
        key = _key_path(tuple(err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling; see config/digestbot.example.yaml)"
        lines.append(f"{key}: {message}" if key else message)
    return ConfigError("; ".join(lines), file=str(path))


def read_token(env: Mapping[str, str]) -> str | None:
    """The bot token from ``DISCORD_TOKEN`` or the file named by ``DISCORD_TOKEN_FILE``."""
    token = env.get("DISCORD_TOKEN", "").strip()
    if token:
        return token
    token_file = env.get("DISCORD_TOKEN_FILE", "").strip()
    if token_file:
        try:
            return Path(token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ConfigError(f"cannot read DISCORD_TOKEN_FILE: {exc.strerror}", key="DISCORD_TOKEN_FILE") from None
    return None


def load_config(path: Path, env: Mapping[str, str] | None = None) -> Config:
    """Read, substitute, validate. Relative storage paths resolve against ``DIGESTBOT_DATA_DIR``
    when set, else the current directory; ``file:`` source URLs resolve against the config file."""
    env = os.environ if env is None else env
    path = path.expanduser()
    data = _merge_includes(path, _raw_document(path, env), env)
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, path) from None
    return _resolve(model, path, env)


def _resolve(model: ConfigModel, path: Path, env: Mapping[str, str]) -> Config:
    unknown_topics = {
        f"sources[{i}].topics: unknown topic {t!r}"
        for i, s in enumerate(model.sources) for t in s.topics
        if model.topics and t not in model.topics
    }
    if unknown_topics:
        raise ConfigError("; ".join(sorted(unknown_topics)) + " (declare it under 'topics')", file=str(path))
    data_dir = Path(env["DIGESTBOT_DATA_DIR"]) if env.get("DIGESTBOT_DATA_DIR") else None
    storage = model.storage
    if data_dir is not None and not storage.path.is_absolute():
        storage = storage.model_copy(update={"path": data_dir / storage.path.name})
    sources = []
    for source in model.sources:
        url = source.url
        if url.lower().startswith("file:"):
            raw = url[5:].removeprefix("//")
            file_path = Path(raw)
            if not file_path.is_absolute():
                file_path = (path.parent / file_path).resolve()
            url = file_path.as_uri()
        sources.append(SourceConfig(
            webhook_username=source.webhook_username,
            webhook_avatar_url=source.webhook_avatar_url,
            id=source.id or slugify(source.name),
            name=source.name.strip()[:256],
            url=url,
            topics=source.topics,
            interval=source.interval or model.defaults.interval,
            channels=source.channels,
            color=source.color,
            backfill=model.defaults.backfill if source.backfill is None else source.backfill,
            header=model.defaults.header if source.header is None else (source.header or None),
            summary_length=source.summary_length or model.defaults.summary_length,
            enabled=source.enabled,
            allow_file=True,
        ))
    routes = _resolve_routes(model, path, tuple(sources))
    return Config(
        file=path,
        discord=model.discord,
        storage=storage,
        fetch=model.fetch,
        health=model.health,
        defaults=model.defaults,
        ingest=model.ingest,
        topics=model.topics,
        sources=tuple(sources),
        routes=routes,
        token=read_token(env),
    )


_WEBHOOK_PATH = re.compile(r"^https?://[^\s/]+(/api(/v\d+)?)?/webhooks/\d+/[A-Za-z0-9_-]+/?$")


def check_route(route: RouteConfig, known_topics: Mapping[str, TopicDef], source_ids: set[str] | None,
                where: str) -> list[str]:
    """Every problem with one route, each naming its key path; [] when it is fine."""
    from bot.schedule import cron_trigger  # bot.schedule imports this module

    problems: list[str] = []
    if route.webhook_url is not None and not _WEBHOOK_PATH.match(route.webhook_url):
        problems.append(f"{where}.webhook: not a Discord webhook URL (…/api/webhooks/<id>/<token>)")
    if source_ids is not None:
        problems += [f"{where}.sources: unknown source {sid!r}" for sid in route.sources if sid not in source_ids]
    if known_topics:
        problems += [f"{where}.topics: unknown topic {t!r}" for t in route.topics if t not in known_topics]
        problems += [f"{where}.mention_roles: unknown topic {t!r}" for t in route.mention_roles
                     if t not in known_topics]
    if route.mode == "digest" and route.schedule:
        try:
            cron_trigger(route.schedule, route.timezone)
        except ValueError as exc:
            problems.append(f"{where}.schedule: {exc}")
    elif route.timezone != "UTC":
        try:
            cron_trigger("0 0 * * *", route.timezone)
        except ValueError as exc:
            problems.append(f"{where}.timezone: {exc}")
    try:
        EntryFilter.compile(FilterModel.rule(route.include), FilterModel.rule(route.exclude), where=where)
    except ValueError as exc:
        problems.append(str(exc))
    if route.template is not None:
        try:
            MessageTemplate.compile(route.template, where=f"{where}.template")
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def _resolve_routes(model: ConfigModel, path: Path, sources: tuple[SourceConfig, ...]) -> tuple[RouteConfig, ...]:
    routes: list[RouteConfig] = []
    problems: list[str] = []
    seen = {r.id for r in implicit_routes(sources)}
    source_ids = {s.id for s in sources}
    for index, item in enumerate(model.routes):
        where = f"routes[{index}]"
        route_id = item.id or f"route-{index + 1}"
        if not _SLUG.match(route_id):
            problems.append(f"{where}.id: {route_id!r} must be lowercase letters, digits, '-', '_' or '.'")
        if route_id in seen:
            problems.append(f"{where}.id: {route_id!r} is used twice")
        seen.add(route_id)
        route = RouteConfig(
            id=route_id, channel_id=item.channel, webhook_url=item.webhook, guild_id=item.guild,
            sources=item.sources, topics=item.topics, mode=item.mode, schedule=item.schedule,
            timezone=item.timezone, group_by=item.group_by, max_messages=item.max_messages,
            post_empty=item.post_empty,
            header=item.header if item.header is not None else model.defaults.header,
            summary_length=item.summary_length, include=item.include, exclude=item.exclude,
            template=item.template, mention_roles=item.mention_roles, username=item.username,
            avatar_url=item.avatar_url)
        problems += check_route(route, model.topics, source_ids, where)
        if item.enabled:
            routes.append(route)
    if problems:
        raise ConfigError("; ".join(problems), file=str(path))
    return tuple(routes)


def bundled_demo_config() -> Path:
    """The demo config shipped inside the package (sample feeds, no network needed)."""
    return Path(__file__).parent / "demo" / "demo.yaml"


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("DIGESTBOT_CONFIG"):
        return Path(env["DIGESTBOT_CONFIG"])
    local = Path("config/digestbot.yaml")
    return local if local.exists() else bundled_demo_config()


