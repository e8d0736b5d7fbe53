//! `[audit]`, `[admin]`, `[telemetry]` and `[gates]`: what Warden records, exposes and alerts on.

use super::ConfigDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// `[audit]`: the audit log. It is always on: every request and decision is a row.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// The SQLite database (relative to this file), created on first start. Ignored when
    /// `postgres_url` or `postgres_url_env` is set.
    pub path: PathBuf,
    /// A Postgres URL, for several gateways sharing one log. Prefer `postgres_url_env` when the
    /// URL holds a password.
    pub postgres_url: Option<String>,
    /// The environment variable holding the Postgres URL.
    pub postgres_url_env: Option<String>,
    /// `sync`: a call is answered only after its row is committed. `batched`: rows are committed
    /// at least every `max_delay`; that much is at risk if the process is killed with SIGKILL.
    /// Nothing is lost on a clean shutdown or SIGTERM in either mode.
    pub durability: Durability,
    /// How long a row may wait for its batch (`batched`).
    pub max_delay: ConfigDuration,
    /// Most rows committed in one transaction.
    pub max_batch: usize,
    /// Rows that may wait to be written; callers wait when it is full (rows are never dropped).
    pub queue: usize,
    /// Also write every row as one JSON line: `"-"` for standard output, or a file (relative to
    /// this file), for a SIEM.
    pub jsonl: Option<String>,
    /// Delete rows older than this many days, keeping the chain verifiable through a signed
    /// checkpoint. Needs `signing_key`.
    pub retain_days: Option<u32>,
    /// Ed25519 key (64 hex characters) that signs retention checkpoints; created on first start
    /// when missing.
    pub signing_key: Option<PathBuf>,
}

/// When a row is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Before the call is answered.
    Sync,
    /// Within `max_delay`.
    Batched,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            path: PathBuf::from("warden-audit.db"),
            postgres_url: None,
            postgres_url_env: None,
            durability: Durability::Batched,
            max_delay: ConfigDuration(Duration::from_millis(50)),
            max_batch: 512,
            queue: 8192,
            jsonl: None,
            retain_days: None,
            signing_key: None,
        }
    }
}

/// `[admin]`: the admin listener, separate from the MCP listener.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSection {
    /// Address serving `/metrics` (Prometheus) and `/healthz`, such as `"127.0.0.1:9464"`. Off
    /// when unset.
    pub listen: Option<String>,
    /// Keys for operators only, by name: each opens the console (break-glass sign-in) and the
    /// operator API as an admin principal of that name, and is never accepted at the MCP
    /// endpoint. Only their SHA-256 hashes are configured (`warden apikey new NAME`).
    pub api_keys: std::collections::BTreeMap<String, OperatorKeySection>,
}

/// `[admin.api_keys.NAME]`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorKeySection {
    /// `sha256:` and the hex SHA-256 of the key.
    pub hash: String,
}

impl AdminSection {
    /// Operator keys are well formed, and none is also a key that calls tools.
    pub(super) fn validate_keys(&self, auth: &super::AuthSection) -> Result<(), (Vec<String>, String)> {
        for (name, key) in &self.api_keys {
            let hex = key.hash.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                let key = vec!["admin".into(), "api_keys".into(), name.clone(), "hash".into()];
                return Err((key, "must be \"sha256:\" and 64 hex digits (see `warden apikey new`)".into()));
            }
            if auth.api_keys.values().any(|k| k.hash.eq_ignore_ascii_case(&key.hash)) {
                let key = vec!["admin".into(), "api_keys".into(), name.clone()];
                return Err((key, "is also a key of [auth.api_keys]: an operator key must not call tools".into()));
            }
        }
        Ok(())
    }
}

/// `[telemetry]`: OpenTelemetry traces.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySection {
    /// OTLP/HTTP endpoint receiving traces, such as `"http://127.0.0.1:4318"`. Off (at no cost)
    /// when unset. With it, each call is a span, and its trace context is passed to servers in
    /// `_meta` (`traceparent`, `tracestate`).
    pub otlp_endpoint: Option<String>,
    /// The `service.name` of the spans.
    pub service_name: Option<String>,
}

/// `[gates]`: detection gates over the audit log (`warden gates`, and at run time).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GatesSection {
    /// Evaluate the default gates (unapproved writes, unknown servers, drift outside deploy
    /// windows, scope mismatches, quarantine ratio).
    pub defaults: bool,
    /// Deploy windows in which manifest drift is expected, as RFC 3339 `start` and `end`.
    pub deploy_windows: Vec<DeployWindow>,
    /// More gates: a count (or a ratio of two counts) over rows of a time window.
    pub custom: Vec<CustomGate>,
    /// While serving, evaluate the gates this often and POST each newly tripped gate here
    /// (https, public address only).
    pub webhook: Option<String>,
    /// Allow a webhook on a private or loopback address, over http or https (an internal
    /// alert receiver). Off by default: the webhook must be https to a public address.
    pub webhook_allow_private: bool,
    /// How often gates are evaluated while serving (with `webhook`, or a `[notifications]`
    /// webhook subscribed to `gate`).
    pub interval: ConfigDuration,
}

impl Default for GatesSection {
    fn default() -> Self {
        GatesSection {
            defaults: true,
            deploy_windows: vec![],
            custom: vec![],
            webhook: None,
            webhook_allow_private: false,
            interval: ConfigDuration(Duration::from_secs(60)),
        }
    }
}

/// A period in which tool definitions are expected to change.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployWindow {
    /// Start, RFC 3339.
    pub start: String,
    /// End, RFC 3339.
    pub end: String,
}

/// A gate of one's own.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomGate {
    /// Its name, as printed.
    pub name: String,
    /// A SQL condition on `mcp_audit` rows; matching rows in the window are counted.
    pub count_where: String,
    /// With it, the gate's value is the count divided by the count of rows matching this.
    pub total_where: Option<String>,
    /// The window counted, up to now.
    pub window: ConfigDuration,
    /// The gate trips when its value is above this.
    pub threshold: f64,
}
