-- Quarantine: results Warden withheld from a client because they carried instructions aimed at
-- the model, kept (after cleaning and secret redaction) for a person to review.
CREATE TABLE mcp_quarantine (
    id            TEXT PRIMARY KEY,
    created_at    TIMESTAMPTZ NOT NULL,
    server        TEXT NOT NULL,
    method        TEXT NOT NULL,
    item          TEXT NOT NULL,
    principal_key TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    tenant        TEXT,
    session_id    TEXT,
    request_id    TEXT,
    severity      TEXT NOT NULL,
    findings      TEXT NOT NULL,
    content       TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'released', 'discarded')),
    reviewed_by   TEXT,
    reviewed_at   TIMESTAMPTZ,
    CHECK ((status = 'held') = (reviewed_by IS NULL))
);
CREATE INDEX mcp_quarantine_status ON mcp_quarantine (status, created_at);
