//! `[approvals]` and `[taint]`: how a human approves what needs approval, and how long a context
//! that read untrusted content stays tainted.

use super::ConfigDuration;
use super::ToolClass;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a call that needs approval is put to a human.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalFlow {
    /// Asked in the client, where it declared elicitation: `input_required` for 2026-07-28
    /// clients, `elicitation/create` for legacy ones; out of band for any other client.
    InBand,
    /// Stored as a pending approval that an operator approves or denies with `warden approvals`
    /// or the admin API; the agent's retry with the same arguments then proceeds once.
    OutOfBand,
}

/// `[approvals]`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApprovalsSection {
    /// How long a request for approval waits for a human's decision (and how long the sealed
    /// state of an in-band request stays valid). Default 1h.
    pub ttl: ConfigDuration,
    /// Once an operator approves, how long the agent has to retry the call (once). Default 15m.
    pub use_within: ConfigDuration,
    /// How long a legacy client's user has to answer the gateway's `elicitation/create`.
    /// Default 2m.
    pub ask_timeout: ConfigDuration,
    /// Tool classes whose calls always need out-of-band approval, whatever the client can do.
    /// Default `["irreversible"]`.
    pub out_of_band_classes: Vec<ToolClass>,
    /// The key sealing the `requestState` of in-band approvals (HMAC-SHA256, at least 32 bytes).
    /// Unset: a random key per process, so in-band approvals pending at a restart must be asked
    /// again. Gateways sharing state need the same key.
    pub state_key: Option<StateKeySection>,
    /// Where people approve, shown to clients in the "approval pending" error (for example the
    /// URL of your approval tool). Default: the item's link in the operator console when it is
    /// served, and the `warden approvals approve <id>` command.
    pub approve_at: Option<String>,
    /// How often the gateway reads the containment list, to notice changes made by another
    /// process (`warden contain` without the admin API, or another gateway). Default 1s.
    pub containment_poll: ConfigDuration,
    /// Most requests for approval one caller may have pending at once; a call that would need
    /// another is refused (rate limited) until some are decided or expire. Default 20.
    pub max_pending_per_caller: u32,
}

impl Default for ApprovalsSection {
    fn default() -> Self {
        ApprovalsSection {
            ttl: ConfigDuration(Duration::from_secs(3600)),
            use_within: ConfigDuration(Duration::from_secs(15 * 60)),
            ask_timeout: ConfigDuration(Duration::from_secs(120)),
            out_of_band_classes: vec![ToolClass::Irreversible],
            state_key: None,
            approve_at: None,
            containment_poll: ConfigDuration(Duration::from_secs(1)),
            max_pending_per_caller: 20,
        }
    }
}

/// Where the in-band approval key comes from.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateKeySection {
    /// An environment variable of the gateway holding the key.
    pub env: Option<String>,
    /// A file holding the key (relative to the config file).
    pub file: Option<std::path::PathBuf>,
}

/// `[taint]`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TaintSection {
    /// For 2026-07-28 clients (no session), how long a context stays tainted after the last
    /// untrusted content it read. A legacy session stays tainted until it ends. Default 1h.
    pub ttl: ConfigDuration,
}

impl Default for TaintSection {
    fn default() -> Self {
        TaintSection { ttl: ConfigDuration(Duration::from_secs(3600)) }
    }
}
