//! `[output]`: what Warden does with what servers send back, beyond the per-tool settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Severities `quarantine_at` accepts.
pub const QUARANTINE_LEVELS: &str = "low, medium, high, critical or off";

/// `[output]`: the response guards' gateway-wide settings.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OutputSection {
    /// A tool, prompt or resource result whose instructions aimed at the model reach this
    /// severity is quarantined: the client gets a notice instead, and the result is kept for a
    /// person to review (`warden quarantine`). `low`, `medium`, `high`, `critical`, or `off`.
    /// A tool's own `quarantine_at` overrides it.
    pub quarantine_at: String,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection { quarantine_at: "high".to_owned() }
    }
}

/// Whether `level` is a valid `quarantine_at`.
pub fn is_quarantine_level(level: &str) -> bool {
    matches!(level, "low" | "medium" | "high" | "critical" | "off")
}
