//! The hash chain: how a row is reduced to bytes and hashed.
//!
//! A row's hash covers its own columns as stored (text exactly as written, the time in its
//! stored form) and the previous row's hash, so editing any column, removing a row, or
//! moving one breaks the chain at that row.
//!
//! There is a chain per writer: the chain `''` of a SQLite file's one gateway (and of rows
//! written before chains existed), where a row's `link` is its `seq`; and, on Postgres, one per
//! gateway process, named when it starts, so that gateways append without waiting for each
//! other. A row of a named chain also hashes its chain and link.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::event::{AuditEvent, AuditRow, parse_stored_time, stored_time};

/// `prev_hash` of row 1.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The columns of `mcp_audit`, in table (and canonical) order.
pub(crate) const COLUMNS: &str = "seq, event_time, request_id, era, event, method, actor_id, \
    actor_class, tenant, client_id, session_id, server_name, tool_name, action_class, arguments, \
    redactions, result_hash, decision, policy_ids, reason, approval_id, outcome, error_code, \
    latency_ms, prev_hash, row_hash, findings, chain, link, scopes";

/// A row exactly as the database holds it: JSON columns as their text, the time as
/// [`stored_time`] text. This is what is hashed, so a row read back hashes as it was written
/// whatever a tamperer put in the JSON columns.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredRow {
    pub seq: i64,
    pub event_time: String,
    pub request_id: Option<String>,
    pub era: Option<String>,
    pub event: String,
    pub method: Option<String>,
    pub actor_id: Option<String>,
    pub actor_class: Option<String>,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub session_id: Option<String>,
    pub server_name: Option<String>,
    pub tool_name: Option<String>,
    pub action_class: Option<String>,
    pub arguments: Option<String>,
    pub redactions: i64,
    pub result_hash: Option<String>,
    pub decision: String,
    pub policy_ids: String,
    pub reason: Option<String>,
    pub approval_id: Option<String>,
    pub outcome: Option<String>,
    pub error_code: Option<i64>,
    pub latency_ms: Option<f64>,
    pub prev_hash: String,
    pub row_hash: String,
    pub findings: Option<String>,
    /// The chain: `''`, or the name of the gateway process that wrote it.
    pub chain: String,
    /// Its place in its chain, from 1 (in the chain `''`, its `seq`).
    pub link: i64,
    /// The caller's token scopes, as a JSON array's text (added later: absent on older rows).
    pub scopes: Option<String>,
}

impl StoredRow {
    /// Chains a (normalized) event after `prev_hash` as row `seq` of the chain `''`.
    #[cfg(test)]
    pub fn chain(seq: i64, event: &AuditEvent, prev_hash: &str) -> StoredRow {
        StoredRow::linked(seq, "", seq, event, prev_hash)
    }

    /// Chains a (normalized) event after `prev_hash` as row `seq`, link `link` of `chain`.
    pub fn linked(seq: i64, chain: &str, link: i64, event: &AuditEvent, prev_hash: &str) -> StoredRow {
        let mut row = StoredRow {
            seq,
            event_time: stored_time(&event.event_time),
            request_id: event.request_id.clone(),
            era: event.era.clone(),
            event: event.event.clone(),
            method: event.method.clone(),
            actor_id: event.actor_id.clone(),
            actor_class: event.actor_class.clone(),
            tenant: event.tenant.clone(),
            client_id: event.client_id.clone(),
            session_id: event.session_id.clone(),
            server_name: event.server_name.clone(),
            tool_name: event.tool_name.clone(),
            action_class: event.action_class.clone(),
            arguments: event.arguments.as_ref().map(Value::to_string),
            redactions: event.redactions,
            result_hash: event.result_hash.clone(),
            decision: event.decision.clone(),
            policy_ids: Value::from(event.policy_ids.clone()).to_string(),
            reason: event.reason.clone(),
            approval_id: event.approval_id.clone(),
            outcome: event.outcome.clone(),
            error_code: event.error_code,
            latency_ms: event.latency_ms,
            prev_hash: prev_hash.to_owned(),
            row_hash: String::new(),
            findings: event.findings.as_ref().map(Value::to_string),
            chain: chain.to_owned(),
            link,
            scopes: event.scopes.as_ref().map(|s| Value::from(s.clone()).to_string()),
        };
        row.row_hash = row.computed_hash();
        row
    }

    /// The fixed-order serialization that is hashed: a JSON array of `seq` and every column but
    /// `row_hash`, in table order, with `findings` (added later) after `prev_hash` only when set,
    /// so rows written before it existed hash as they did. A row of a named chain ends with
    /// `findings` (or null), its chain and its link. `scopes` (added after that) ends the array
    /// only when set, after `findings` (or null, so that the two cannot be confused), so rows
    /// without it hash as before too.
    pub fn canonical(&self) -> String {
        let text = |value: &Option<String>| value.clone().map_or(Value::Null, Value::String);
        let mut columns = vec![
            Value::from(self.seq),
            Value::from(self.event_time.clone()),
            text(&self.request_id),
            text(&self.era),
            Value::from(self.event.clone()),
            text(&self.method),
            text(&self.actor_id),
            text(&self.actor_class),
            text(&self.tenant),
            text(&self.client_id),
            text(&self.session_id),
            text(&self.server_name),
            text(&self.tool_name),
            text(&self.action_class),
            text(&self.arguments),
            Value::from(self.redactions),
            text(&self.result_hash),
            Value::from(self.decision.clone()),
            Value::from(self.policy_ids.clone()),
            text(&self.reason),
            text(&self.approval_id),
            text(&self.outcome),
            self.error_code.map_or(Value::Null, Value::from),
            // `Value::from(f64)` is null for NaN and infinities, which the writer never stores.
            self.latency_ms.map_or(Value::Null, Value::from),
            Value::from(self.prev_hash.clone()),
        ];
        if self.chain.is_empty() {
            if let Some(findings) = &self.findings {
                columns.push(Value::String(findings.clone()));
            }
        } else {
            columns.push(text(&self.findings));
            columns.push(Value::from(self.chain.clone()));
            columns.push(Value::from(self.link));
        }
        if let Some(scopes) = &self.scopes {
            if self.chain.is_empty() && self.findings.is_none() {
                columns.push(Value::Null);
            }
            columns.push(Value::String(scopes.clone()));
        }
        Value::Array(columns).to_string()
    }

    /// `hex(sha256(prev_hash || "\n" || canonical))`.
    pub fn computed_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.prev_hash.as_bytes());
        hasher.update(b"\n");
        hasher.update(self.canonical().as_bytes());
        hex::encode(hasher.finalize())
    }

    /// The typed view. Fails on JSON or time text that the writer would never have stored.
    pub fn into_row(self) -> Result<AuditRow, StoreError> {
        let seq = self.seq;
        let corrupt = |problem: String| StoreError::CorruptRow { seq, problem };
        let event_time = parse_stored_time(&self.event_time)
            .ok_or_else(|| corrupt(format!("event_time `{}` is not a time", self.event_time)))?;
        let arguments = match &self.arguments {
            None => None,
            Some(text) => {
                Some(serde_json::from_str(text).map_err(|err| corrupt(format!("arguments are not JSON: {err}")))?)
            }
        };
        let policy_ids = serde_json::from_str(&self.policy_ids)
            .map_err(|err| corrupt(format!("policy_ids is not a JSON array of strings: {err}")))?;
        let findings = match &self.findings {
            None => None,
            Some(text) => {
                Some(serde_json::from_str(text).map_err(|err| corrupt(format!("findings are not JSON: {err}")))?)
            }
        };
        let scopes = match &self.scopes {
            None => None,
            Some(text) => Some(
                serde_json::from_str(text)
                    .map_err(|err| corrupt(format!("scopes is not a JSON array of strings: {err}")))?,
            ),
        };
        Ok(AuditRow {
            seq,
            event: AuditEvent {
                event_time,
                request_id: self.request_id,
                era: self.era,
                event: self.event,
                method: self.method,
                actor_id: self.actor_id,
                actor_class: self.actor_class,
                tenant: self.tenant,
                client_id: self.client_id,
                session_id: self.session_id,
                server_name: self.server_name,
                tool_name: self.tool_name,
                action_class: self.action_class,
                arguments,
                redactions: self.redactions,
                result_hash: self.result_hash,
                decision: self.decision,
                policy_ids,
                reason: self.reason,
                approval_id: self.approval_id,
                outcome: self.outcome,
                error_code: self.error_code,
                latency_ms: self.latency_ms,
                findings,
                scopes,
            },
            prev_hash: self.prev_hash,
            row_hash: self.row_hash,
            chain: self.chain,
            link: self.link,
        })
    }

    /// The typed view of a row the writer just chained (no parsing needed).
    pub fn with_event(self, event: AuditEvent) -> AuditRow {
        AuditRow {
            seq: self.seq,
            event,
            prev_hash: self.prev_hash,
            row_hash: self.row_hash,
            chain: self.chain,
            link: self.link,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn event() -> AuditEvent {
        let mut event = AuditEvent::new(Utc.with_ymd_and_hms(2026, 5, 6, 7, 8, 9).unwrap(), "call", "ALLOW");
        event.tool_name = Some("read_file".into());
        event.arguments = Some(serde_json::json!({"b": 1, "a": [true, null]}));
        event.policy_ids = vec!["p1".into(), "p2".into()];
        event.latency_ms = Some(12.5);
        event
    }

    #[test]
    fn hash_is_stable_and_covers_every_column() {
        let row = StoredRow::chain(1, &event(), GENESIS_HASH);
        assert_eq!(row.row_hash, row.computed_hash());
        assert_eq!(row.row_hash.len(), 64);
        let mut edited = row.clone();
        edited.decision = "DENY".into();
        assert_ne!(edited.computed_hash(), row.row_hash);
        let mut moved = row.clone();
        moved.seq = 2;
        assert_ne!(moved.computed_hash(), row.row_hash);
        let mut relinked = row.clone();
        relinked.prev_hash = "1".repeat(64);
        assert_ne!(relinked.computed_hash(), row.row_hash);
        let mut unset = row.clone();
        unset.tool_name = None;
        assert_ne!(unset.computed_hash(), row.row_hash);
    }

    #[test]
    fn findings_are_hashed_when_present_and_absent_rows_hash_as_before() {
        let plain = StoredRow::chain(1, &event(), GENESIS_HASH);
        assert!(!plain.canonical().contains("findings"));
        let columns: Vec<Value> = serde_json::from_str(&plain.canonical()).unwrap();
        assert_eq!(columns.len(), 25, "seq and 24 columns, as before findings existed");
        let mut found = event();
        found.findings = Some(serde_json::json!([{ "kind": "github_token", "at": "/content/0/text" }]));
        let row = StoredRow::chain(1, &found, GENESIS_HASH);
        assert_ne!(row.row_hash, plain.row_hash);
        let mut removed = row.clone();
        removed.findings = None;
        assert_ne!(removed.computed_hash(), row.row_hash, "removing the findings breaks the chain");
        assert_eq!(row.clone().into_row().unwrap().event.findings, found.findings);
    }

    #[test]
    fn scopes_are_hashed_when_present_and_absent_rows_hash_as_before() {
        let plain = StoredRow::chain(1, &event(), GENESIS_HASH);
        let named = StoredRow::linked(1, "gw-a", 1, &event(), GENESIS_HASH);
        let mut scoped = event();
        scoped.scopes = Some(vec!["mcp".into(), "notes:write".into()]);
        for (before, after) in [
            (plain.clone(), StoredRow::chain(1, &scoped, GENESIS_HASH)),
            (named.clone(), StoredRow::linked(1, "gw-a", 1, &scoped, GENESIS_HASH)),
        ] {
            let mut without = after.clone();
            without.scopes = None;
            assert_eq!(without.computed_hash(), before.row_hash, "a row without scopes hashes as before they existed");
            assert_ne!(after.row_hash, before.row_hash);
            let mut edited = after.clone();
            edited.scopes = Some("[\"mcp\"]".into());
            assert_ne!(edited.computed_hash(), after.row_hash, "a scope removed breaks the chain");
            assert_eq!(after.clone().into_row().unwrap().event.scopes, scoped.scopes);
        }
        // Scopes without findings and findings without scopes cannot be taken for each other.
        let mut as_findings = StoredRow::chain(1, &event(), GENESIS_HASH);
        as_findings.findings = Some("[\"mcp\"]".into());
        let mut as_scopes = StoredRow::chain(1, &event(), GENESIS_HASH);
        as_scopes.scopes = Some("[\"mcp\"]".into());
        assert_ne!(as_findings.computed_hash(), as_scopes.computed_hash());
    }

    #[test]
    fn a_named_chain_hashes_its_name_and_link() {
        let legacy = StoredRow::chain(7, &event(), GENESIS_HASH);
        assert_eq!(legacy.link, 7);
        let row = StoredRow::linked(7, "gw-a", 1, &event(), GENESIS_HASH);
        assert_ne!(row.row_hash, legacy.row_hash);
        let mut moved = row.clone();
        moved.chain = "gw-b".into();
        assert_ne!(moved.computed_hash(), row.row_hash, "moved to another chain");
        let mut relinked = row.clone();
        relinked.link = 2;
        assert_ne!(relinked.computed_hash(), row.row_hash, "moved within its chain");
    }

    #[test]
    fn a_null_and_the_text_null_hash_differently() {
        let mut a = StoredRow::chain(1, &event(), GENESIS_HASH);
        a.reason = None;
        let mut b = a.clone();
        b.reason = Some("null".into());
        assert_ne!(a.computed_hash(), b.computed_hash());
    }

    #[test]
    fn into_row_round_trips_the_event() {
        let event = event().normalized();
        let row = StoredRow::chain(3, &event, GENESIS_HASH).into_row().unwrap();
        assert_eq!(row.event, event);
        assert_eq!(row.seq, 3);
    }

    #[test]
    fn corrupt_json_is_an_error_not_a_panic() {
        let mut row = StoredRow::chain(3, &event(), GENESIS_HASH);
        row.policy_ids = "{not json".into();
        assert!(matches!(row.into_row(), Err(StoreError::CorruptRow { seq: 3, .. })));
    }
}
