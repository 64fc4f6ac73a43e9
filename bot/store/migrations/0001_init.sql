-- digestbot schema, version 1
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE sources (
    id                   TEXT PRIMARY KEY,
    config_url           TEXT NOT NULL,
    url                  TEXT NOT NULL,
    etag                 TEXT,
    last_modified        TEXT,
    status               TEXT NOT NULL DEFAULT 'active',
    polled_once          INTEGER NOT NULL DEFAULT 0,
    last_polled_at       REAL,
    last_success_at      REAL,
    last_error           TEXT,
    last_error_at        REAL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    next_poll_at         REAL
);

CREATE TABLE entries (
    id          INTEGER PRIMARY KEY,
    source_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    title       TEXT NOT NULL,
    link        TEXT,
    summary     TEXT NOT NULL,
    published   REAL,
    updated     REAL,
    author      TEXT,
    categories  TEXT NOT NULL DEFAULT '[]',
    thumbnail   TEXT,
    topics      TEXT NOT NULL DEFAULT '[]',
    first_seen  REAL NOT NULL,
    UNIQUE (source_id, key)
);
CREATE INDEX entries_by_source_time ON entries (source_id, first_seen DESC);
CREATE INDEX entries_by_time ON entries (COALESCE(published, first_seen) DESC);

CREATE TABLE entry_topics (
    topic    TEXT NOT NULL,
    entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    PRIMARY KEY (topic, entry_id)
) WITHOUT ROWID;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    channel_id      INTEGER NOT NULL,
    source_id       TEXT NOT NULL,
    header          TEXT,
    entry_ids       TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    sent_at         REAL,
    message_id      TEXT
);
CREATE INDEX outbox_pending ON outbox (status, next_attempt_at, id);
