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
    /// Servers' error messages reach clients scrubbed (secrets, paths, internal hosts and stack
    /// traces removed). `drop` (the default) keeps nothing more; `keep` also stores each
    /// original, as sent, in the audit database's table `mcp_server_errors`, apart from the
    /// audit log so that access to it can be granted apart (`warden audit server-errors`).
    pub server_errors: ServerErrors,
    /// Base64 payloads (a `blob`, the `data` of image and audio content) are decoded: text is
    /// cleaned and redacted like any text. What is not text (an image, a PDF) cannot be cleaned:
    /// `scan` (the default) looks for credentials in it and refuses the message if one is found;
    /// `refuse` refuses any such payload; `pass` lets it through unread, and the audit row says
    /// so (`binary.uninspected`).
    pub binary: BinaryPayloads,
}

/// What becomes of a base64 payload that is not text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BinaryPayloads {
    /// Scanned for credentials; refused if one is found.
    #[default]
    Scan,
    /// Refused.
    Refuse,
    /// Passed unread, and declared in the audit row.
    Pass,
}

/// What becomes of a server's original error message once a scrubbed copy went to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServerErrors {
    /// Nothing is kept.
    #[default]
    Drop,
    /// Kept in `mcp_server_errors`.
    Keep,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection {
            quarantine_at: "high".to_owned(),
            server_errors: ServerErrors::Drop,
            binary: BinaryPayloads::Scan,
        }
    }
}

/// Whether `level` is a valid `quarantine_at`.
pub fn is_quarantine_level(level: &str) -> bool {
    matches!(level, "low" | "medium" | "high" | "critical" | "off")
}
