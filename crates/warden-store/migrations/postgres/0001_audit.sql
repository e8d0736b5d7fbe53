-- The audit log. `seq` is assigned by the writer (under an advisory lock), contiguous from 1;
-- `row_hash` chains each row to the one before (see the crate docs).
CREATE TABLE mcp_audit (
    seq          BIGINT PRIMARY KEY,
    event_time   TIMESTAMPTZ NOT NULL,
    request_id   TEXT,
    era          TEXT,
    event        TEXT NOT NULL,
    method       TEXT,
    actor_id     TEXT,
    actor_class  TEXT,
    tenant       TEXT,
    client_id    TEXT,
    session_id   TEXT,
    server_name  TEXT,
    tool_name    TEXT,
    action_class TEXT,
    arguments    TEXT,
    redactions   BIGINT NOT NULL DEFAULT 0,
    result_hash  TEXT,
    decision     TEXT NOT NULL,
    policy_ids   TEXT NOT NULL DEFAULT '[]',
    reason       TEXT,
    approval_id  TEXT,
    outcome      TEXT,
    error_code   BIGINT,
    latency_ms   DOUBLE PRECISION,
    prev_hash    TEXT NOT NULL,
    row_hash     TEXT NOT NULL
);

CREATE INDEX mcp_audit_event_time ON mcp_audit (event_time);
CREATE INDEX mcp_audit_decision_action ON mcp_audit (decision, action_class);

-- Written by retention before it deletes rows: the last deleted row's seq and hash, signed.
CREATE TABLE mcp_audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    row_hash   TEXT NOT NULL,
    event_time TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);
