-- What the response guards found in a row's result, by type and location, never the value:
-- a JSON array of objects such as {"kind": "github_token", "at": "/content/0/text"} (a secret
-- redacted) or {"rule": "instruction.ignore_previous", "at": "/content/0/text"} (an
-- instruction aimed at the model). NULL when nothing was found. Hashed into the chain after
-- prev_hash when present, so rows written before this column existed verify unchanged.
ALTER TABLE mcp_audit ADD COLUMN findings TEXT;
