-- Approvals: tool calls Warden held for a person's approval, and that person's decision. The
-- approved call is then let through once, only for the same caller, server, tool and
-- arguments, and only before `expires_at_ms`: unix milliseconds, compared as a number on both
-- backends.
CREATE TABLE mcp_approvals (
    id            TEXT PRIMARY KEY,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    server        TEXT NOT NULL,
    tool          TEXT NOT NULL,
    exposed       TEXT NOT NULL,
    principal_key TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    tenant        TEXT,
    session_id    TEXT,
    request_id    TEXT,
    args_hash     TEXT NOT NULL,
    arguments     TEXT NOT NULL,
    reasons       TEXT NOT NULL,
    flow          TEXT NOT NULL CHECK (flow IN ('out_of_band', 'input_required', 'elicitation')),
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'approved', 'denied', 'used', 'expired', 'revoked')),
    decided_by    TEXT,
    decided_at    TIMESTAMPTZ,
    used_at       TIMESTAMPTZ,
    CHECK (status = 'expired' OR (status = 'pending') = (decided_by IS NULL)),
    CHECK ((decided_by IS NULL) = (decided_at IS NULL)),
    CHECK ((status = 'used') = (used_at IS NOT NULL))
);
CREATE INDEX mcp_approvals_status ON mcp_approvals (status, created_at);
CREATE INDEX mcp_approvals_call ON mcp_approvals (principal_key, server, tool, args_hash);

-- Servers an operator contained, who did it and why. A server stays contained until an operator
-- releases it, which deletes its row.
CREATE TABLE mcp_containment (
    server       TEXT PRIMARY KEY,
    contained_at TIMESTAMPTZ NOT NULL,
    contained_by TEXT NOT NULL,
    reason       TEXT NOT NULL
);
