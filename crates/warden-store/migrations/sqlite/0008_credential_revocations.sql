-- Revocations of the credentials Warden obtains per caller for a server (token exchange,
-- authorizations users granted): a credential issued at or before revoked_at is not used again,
-- by any gateway sharing this database. subject '' revokes every caller's.
CREATE TABLE mcp_credential_revocations (
    server     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    revoked_at TEXT NOT NULL,
    revoked_by TEXT NOT NULL,
    PRIMARY KEY (server, subject)
);
