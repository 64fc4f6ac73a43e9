"""A fake Discord (REST + gateway) for end-to-end tests; see ``server.py`` for how a test uses it."""

from .payloads import DEFAULT_PERMISSIONS, snowflake
from .server import (
    DEFAULT_APP_ID,
    DEFAULT_USER_ID,
    FakeDiscord,
    PushedInteraction,
    RecordedRequest,
    Reply,
    point_discord_py_at,
)

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_PERMISSIONS",
    "DEFAULT_USER_ID",
    "FakeDiscord",
    "PushedInteraction",
    "RecordedRequest",
    "Reply",
    "point_discord_py_at",
    "snowflake",
]
