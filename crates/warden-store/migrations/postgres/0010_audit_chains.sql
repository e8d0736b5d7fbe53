-- One chain per gateway process. Several gateways append to the audit log without a shared lock:
-- each writes its own chain (`chain`, a name unique to the process), `link` counting from 1
-- within it, each row's hash covering its chain and link. Rows written before chains existed
-- are the chain '' and keep `seq` as their link. `seq` stays unique across chains (from the
-- sequence below), ordering rows as they were written.
ALTER TABLE mcp_audit ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE mcp_audit ADD COLUMN link BIGINT;
UPDATE mcp_audit SET link = seq;
ALTER TABLE mcp_audit ALTER COLUMN link SET NOT NULL;
CREATE UNIQUE INDEX mcp_audit_chain_link ON mcp_audit (chain, link);

CREATE SEQUENCE mcp_audit_seq;
SELECT setval('mcp_audit_seq', GREATEST((SELECT MAX(seq) FROM mcp_audit), (SELECT MAX(seq) FROM mcp_audit_checkpoints), 0) + 1, false);

-- A retention checkpoint names the chain and link of the last row it deleted.
ALTER TABLE mcp_audit_checkpoints ADD COLUMN chain TEXT NOT NULL DEFAULT '';
ALTER TABLE mcp_audit_checkpoints ADD COLUMN link BIGINT;
UPDATE mcp_audit_checkpoints SET link = seq;
ALTER TABLE mcp_audit_checkpoints ALTER COLUMN link SET NOT NULL;

-- Signed statements of every chain's head, written by each gateway every few seconds and when it
-- stops: a chain deleted whole, or cut short, after a statement named its head is found by
-- `warden audit verify`. `heads` is a JSON array of [chain, link, row_hash].
CREATE TABLE mcp_audit_heads (
    id         BIGSERIAL PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    chain      TEXT NOT NULL,
    heads      TEXT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL
);
