"""Storage: the database is the source of truth for entries, source state and the outbox."""

from bot.store.base import Storage
from bot.store.sqlite import SQLiteStorage, open_storage

__all__ = ["SQLiteStorage", "Storage", "open_storage"]
