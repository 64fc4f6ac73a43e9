-- Routes, scheduled digests and sources managed from Discord.

-- Each outbox row goes to one destination ('channel:<id>' or 'webhook:<route id>'); rows for one
-- destination are sent in id order. payload is the message rendered when it was queued (JSON), so a
-- retry sends exactly the same thing; rows without it (notices, schema 2) are rendered when sent.
ALTER TABLE outbox ADD COLUMN route_id TEXT;
ALTER TABLE outbox ADD COLUMN destination TEXT;
ALTER TABLE outbox ADD COLUMN payload TEXT;
UPDATE outbox SET destination = 'channel:' || channel_id;
CREATE INDEX outbox_by_destination ON outbox (status, destination, id);

-- Entries waiting for a digest route's next run. Written in the same transaction that stores the
-- entries; removed in the same transaction that queues the digest message.
CREATE TABLE digest_items (
    route_id  TEXT NOT NULL,
    entry_id  INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    queued_at REAL NOT NULL,
    PRIMARY KEY (route_id, entry_id)
) WITHOUT ROWID;

CREATE TABLE route_state (
    route_id       TEXT PRIMARY KEY,
    last_digest_at REAL NOT NULL
);

-- Sources added from Discord or OPML (kind 'added'), and changes made from Discord to sources
-- from the config file (kind 'override': paused, removed, edited fields). These win over the YAML.
CREATE TABLE runtime_sources (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('added', 'override')),
    settings   TEXT NOT NULL,
    guild_id   INTEGER,
    updated_at REAL NOT NULL
);
