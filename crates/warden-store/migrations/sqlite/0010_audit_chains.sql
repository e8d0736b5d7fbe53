-- One chain per gateway process (see the Postgres migration). A SQLite file has one writer: its
-- rows stay in the chain '', `link` equal to `seq`.
ALTER TABLE mcp_audit ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE mcp_audit ADD COLUMN link INTEGER;
UPDATE mcp_audit SET link = seq;
CREATE UNIQUE INDEX mcp_audit_chain_link ON mcp_audit (chain, link);

ALTER TABLE mcp_audit_checkpoints ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE mcp_audit_checkpoints ADD COLUMN link INTEGER;
UPDATE mcp_audit_checkpoints SET link = seq;

CREATE TABLE mcp_audit_heads (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    chain      TEXT NOT NULL,
    heads      TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);
