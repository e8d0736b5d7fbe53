-- Servers' error messages as they sent them, before Warden scrubbed secrets, paths, hosts and
-- stack traces out of what clients saw. Written only when the gateway is configured to keep
-- them ([output] server_errors = "keep"). This table is apart from mcp_audit so that access to
-- it can be granted apart: people who read the audit log need not read these.
CREATE TABLE mcp_server_errors (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,
    server      TEXT NOT NULL,
    method      TEXT NOT NULL,
    item        TEXT,
    request_id  TEXT,
    session_id  TEXT,
    actor_id    TEXT,
    code        BIGINT NOT NULL,
    message     TEXT NOT NULL,
    data        TEXT
);
CREATE INDEX mcp_server_errors_created ON mcp_server_errors (created_at);
