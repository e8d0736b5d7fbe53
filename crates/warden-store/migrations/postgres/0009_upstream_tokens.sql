-- Tokens users granted Warden for servers that need their own authorization (OAuth), one row per
-- server and caller. sealed is the token set encrypted with the gateway's credential key
-- (AES-256-GCM, bound to server and caller): the database alone does not give the tokens away.
CREATE TABLE mcp_upstream_tokens (
    server        TEXT NOT NULL,
    principal_key TEXT NOT NULL,
    subject       TEXT NOT NULL,
    sealed        TEXT NOT NULL,
    issued_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (server, principal_key)
);
CREATE INDEX mcp_upstream_tokens_subject ON mcp_upstream_tokens (server, subject);
