-- Resources are pinned like the other definitions: the pin tables accept the kind 'resource'.
-- SQLite cannot change a CHECK constraint in place, so both tables are rebuilt.
CREATE TABLE mcp_pins_new (
    server     TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('tool', 'prompt', 'resource', 'resource_template', 'instructions')),
    name       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    definition TEXT NOT NULL,
    pinned_at  TEXT NOT NULL,
    pinned_by  TEXT NOT NULL,
    PRIMARY KEY (server, kind, name)
);
INSERT INTO mcp_pins_new SELECT server, kind, name, hash, definition, pinned_at, pinned_by FROM mcp_pins;
DROP TABLE mcp_pins;
ALTER TABLE mcp_pins_new RENAME TO mcp_pins;

CREATE TABLE mcp_pin_candidates_new (
    server     TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('tool', 'prompt', 'resource', 'resource_template', 'instructions')),
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
INSERT INTO mcp_pin_candidates_new
    SELECT server, kind, name, hash, definition, reason, findings, first_seen, last_seen FROM mcp_pin_candidates;
DROP TABLE mcp_pin_candidates;
ALTER TABLE mcp_pin_candidates_new RENAME TO mcp_pin_candidates;
