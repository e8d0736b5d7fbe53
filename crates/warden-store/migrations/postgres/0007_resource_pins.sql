-- Resources are pinned like the other definitions: the pin tables accept the kind 'resource'.
ALTER TABLE mcp_pins DROP CONSTRAINT IF EXISTS mcp_pins_kind_check;
ALTER TABLE mcp_pins ADD CONSTRAINT mcp_pins_kind_check
    CHECK (kind IN ('tool', 'prompt', 'resource', 'resource_template', 'instructions'));
ALTER TABLE mcp_pin_candidates DROP CONSTRAINT IF EXISTS mcp_pin_candidates_kind_check;
ALTER TABLE mcp_pin_candidates ADD CONSTRAINT mcp_pin_candidates_kind_check
    CHECK (kind IN ('tool', 'prompt', 'resource', 'resource_template', 'instructions'));
