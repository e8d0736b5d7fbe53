//! What the gateway reports ([`AuditEvent`]) and what the store holds ([`AuditRow`]).

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// One event, as the gateway reports it, before it is chained.
///
/// `arguments` must already be redacted: the store writes what it is given.
///
/// ```
/// use warden_store::AuditEvent;
/// let mut event = AuditEvent::new(chrono::Utc::now(), "call", "ALLOW");
/// event.tool_name = Some("create_issue".into());
/// event.action_class = Some("write".into());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// When the gateway decided. Stored at microsecond precision (UTC).
    #[serde(with = "rfc3339_micros")]
    pub event_time: DateTime<Utc>,
    /// The JSON-RPC id as text.
    pub request_id: Option<String>,
    /// `legacy` or `modern` protocol era.
    pub era: Option<String>,
    /// The kind of event: `call`, `list`, `auth`, `server_request`, `unknown_server`, `drift`,
    /// `quarantine`, `approval_granted`, `approval_used`, `containment`, ...
    pub event: String,
    /// The MCP method, e.g. `tools/call`.
    pub method: Option<String>,
    /// The principal's subject.
    pub actor_id: Option<String>,
    /// `user`, `service` or `admin`.
    pub actor_class: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub session_id: Option<String>,
    pub server_name: Option<String>,
    pub tool_name: Option<String>,
    /// `read`, `write` or `irreversible`.
    pub action_class: Option<String>,
    /// The call's arguments, already redacted by the caller.
    pub arguments: Option<serde_json::Value>,
    /// How many values were redacted from the arguments and the result.
    pub redactions: i64,
    /// Hex SHA-256 of the result, computed by the caller.
    pub result_hash: Option<String>,
    /// `ALLOW`, `DENY`, `REQUIRE_APPROVAL`, `AUTH_FAILED`, `RATE_LIMITED`, `LIMITED`, ...
    pub decision: String,
    /// The policies behind the decision.
    pub policy_ids: Vec<String>,
    pub reason: Option<String>,
    pub approval_id: Option<String>,
    /// `ok`, `error`, `refused`, `timeout`, ...
    pub outcome: Option<String>,
    pub error_code: Option<i64>,
    /// Milliseconds; a value that is not finite is stored as absent.
    pub latency_ms: Option<f64>,
    /// What the response guards found, by type and location, never the value (a JSON array).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<serde_json::Value>,
    /// The scopes of the caller's token on a tool call (`None`: no token carried scopes, e.g. the
    /// local principal), so that a review can compare the scopes presented with those used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
}

impl AuditEvent {
    /// An event of kind `event` with verdict `decision` at `event_time`; every other field empty.
    pub fn new(event_time: DateTime<Utc>, event: &str, decision: &str) -> AuditEvent {
        AuditEvent { event_time, event: event.to_owned(), decision: decision.to_owned(), ..AuditEvent::default() }
    }

    /// The event as it will read back from the store: time cut to microseconds, no NaN latency.
    pub(crate) fn normalized(mut self) -> AuditEvent {
        self.event_time = self.event_time.trunc_subsecs(6);
        self.latency_ms = self.latency_ms.filter(|ms| ms.is_finite());
        self
    }
}

/// A stored row: the event and its place in the hash chain.
///
/// Serializes as one flat JSON object (the JSONL export format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    #[serde(flatten)]
    pub event: AuditEvent,
    /// The previous row's `row_hash` (64 zeros for row 1).
    pub prev_hash: String,
    /// `hex(sha256(prev_hash || "\n" || canonical))`, see the crate docs.
    pub row_hash: String,
    /// The chain it belongs to: `""` for a SQLite file's, else the writing gateway process's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chain: String,
    /// Its place in its chain, from 1.
    #[serde(default)]
    pub link: i64,
}

/// The text form of a time as stored in SQLite and as hashed: `YYYY-MM-DD HH:MM:SS.ffffff`, UTC.
///
/// It sorts as text and compares with SQLite's `datetime('now', ...)` and
/// `strftime('%Y-%m-%d %H:%M:%f', 'now', ...)`.
pub(crate) fn stored_time(time: &DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Parses [`stored_time`]'s format.
pub(crate) fn parse_stored_time(text: &str) -> Option<DateTime<Utc>> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok().map(|naive| naive.and_utc())
}

/// RFC 3339 with exactly six fractional digits and `Z`, for JSON.
mod rfc3339_micros {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&time.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::parse_from_rfc3339(&text).map(|time| time.with_timezone(&Utc)).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stored_time_is_microseconds_and_round_trips() {
        let time = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + chrono::Duration::nanoseconds(123_456_789);
        let event = AuditEvent::new(time, "call", "ALLOW").normalized();
        let text = stored_time(&event.event_time);
        assert_eq!(text, "2026-03-04 05:06:07.123456");
        assert_eq!(parse_stored_time(&text), Some(event.event_time));
    }

    #[test]
    fn row_serializes_flat_with_rfc3339_micros() {
        let time = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let mut event = AuditEvent::new(time, "call", "DENY");
        event.policy_ids = vec!["p1".into()];
        event.arguments = Some(serde_json::json!({"path": "[REDACTED]"}));
        let row =
            AuditRow { seq: 7, event, prev_hash: "a".into(), row_hash: "b".into(), chain: String::new(), link: 7 };
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["seq"], 7);
        assert_eq!(json["event_time"], "2026-01-02T03:04:05.000000Z");
        assert_eq!(json["policy_ids"], serde_json::json!(["p1"]));
        assert_eq!(json["arguments"]["path"], "[REDACTED]");
        let back: AuditRow = serde_json::from_value(json).unwrap();
        assert_eq!(back, row);
    }

    #[test]
    fn nan_latency_is_dropped() {
        let mut event = AuditEvent::new(Utc::now(), "call", "ALLOW");
        event.latency_ms = Some(f64::NAN);
        assert_eq!(event.normalized().latency_ms, None);
    }
}
