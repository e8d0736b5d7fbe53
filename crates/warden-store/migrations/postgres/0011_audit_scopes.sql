-- The caller's token scopes on tool-call rows (a JSON array's text), so that a review can compare
-- the scopes presented with those the tools called needed. Older rows have none, and hash as
-- they did (the column is hashed only when set).
ALTER TABLE mcp_audit ADD COLUMN scopes TEXT;
