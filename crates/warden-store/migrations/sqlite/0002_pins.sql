-- Pins: the hash of each definition a server offers (tool, prompt, resource template, and its
-- instructions) as a person or trust-on-first-use accepted it. Times are UTC text
-- `YYYY-MM-DD HH:MM:SS.ffffff`, as in the audit log.
CREATE TABLE mcp_pins (
    server     TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('tool', 'prompt', 'resource_template', 'instructions')),
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    definition TEXT NOT NULL,
    pinned_at  TEXT NOT NULL,
    pinned_by  TEXT NOT NULL,
    PRIMARY KEY (server, kind, name)
);

-- What the gateway saw but did not pin: a new definition in strict mode, a changed hash, a
-- definition gone from the listing, or one the poisoning rules flagged. One row per distinct
-- hash; `definition` is NULL exactly when the definition was removed.
CREATE TABLE mcp_pin_candidates (
    server     TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('tool', 'prompt', 'resource_template', 'instructions')),
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    definition TEXT,
    reason     TEXT NOT NULL CHECK (reason IN ('new', 'drift', 'removed', 'poisoned', 'cross_server', 'unhashable')),
    findings   TEXT NOT NULL DEFAULT '[]',
    first_seen TEXT NOT NULL,
    last_seen  TEXT NOT NULL,
    PRIMARY KEY (server, kind, name, hash),
    CHECK ((reason = 'removed') = (definition IS NULL))
);
