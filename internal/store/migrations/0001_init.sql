-- svcwatch store, version 1: host state, findings, the alert outbox, the
-- monitored host set and small key-values. Documents are JSON (the
-- inventory types' encoding); the columns beside them are for indexes.

CREATE TABLE host_state (
    host    TEXT PRIMARY KEY,
    state   TEXT NOT NULL,          -- JSON inventory.State
    updated TEXT NOT NULL           -- RFC 3339 UTC, store clock
) STRICT;

CREATE TABLE findings (
    id         TEXT PRIMARY KEY,    -- inventory.Finding.ID (deterministic)
    host       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    severity   INTEGER NOT NULL,
    suppressed INTEGER NOT NULL,
    at         TEXT NOT NULL,       -- Finding.At (event or observation time)
    created    TEXT NOT NULL,       -- when it was stored
    delivered  TEXT,                -- when Slack accepted it (NULL: not yet, or never sent)
    finding    TEXT NOT NULL        -- JSON inventory.Finding
) STRICT;
CREATE INDEX findings_host ON findings (host, created);
CREATE INDEX findings_kind ON findings (kind);
CREATE INDEX findings_severity ON findings (severity);
CREATE INDEX findings_created ON findings (created);

-- One batch per Commit / SaveHosts call that enqueued anything.
CREATE TABLE batches (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL
) STRICT;

CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    batch        INTEGER NOT NULL REFERENCES batches (id),
    finding_id   TEXT NOT NULL UNIQUE REFERENCES findings (id),
    enqueued     TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_attempt TEXT,
    last_error   TEXT
) STRICT;
CREATE INDEX outbox_batch ON outbox (batch);

CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    host TEXT NOT NULL              -- JSON inventory.Host
) STRICT;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
