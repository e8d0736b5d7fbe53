//! What a request came to, gathered on its way through the guards, and the row written even
//! when the request is abandoned.

use super::{Auditor, Caller, caller_columns, short};
use crate::client::ClientContext;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_policy::{Decision, ToolClass, Verdict};
use warden_protocol::{RpcError, error};
use warden_store::AuditEvent;

/// What a request came to, gathered on its way through the guards.
#[derive(Debug, Default)]
pub struct Note {
    /// The server that would serve it, once resolved.
    pub server: Option<String>,
    /// The tool or prompt (server-side name) or the resource URI, once resolved.
    pub item: Option<String>,
    /// The tool's class.
    pub class: Option<ToolClass>,
    /// The arguments as the client sent them (redacted before they are stored).
    pub arguments: Option<Value>,
    /// The policy decision, when one was made.
    pub decision: Option<Decision>,
    /// Whether every guard let it through and it was forwarded.
    pub forwarded: bool,
    /// The name asked for named no configured server (R10).
    pub unknown_server: bool,
    /// Values redacted from the result before the client saw it.
    pub result_redactions: u32,
    /// Rules of the injection scanner the result set off (the context is then tainted).
    pub injections: Vec<&'static str>,
    /// What the response guards found in the result, by kind or rule and place (never values).
    pub findings: Vec<Value>,
    /// The quarantine id, when the result was withheld.
    pub quarantined: Option<String>,
    /// The approval the call proceeded under.
    pub approval_id: Option<String>,
    /// The JSON-RPC id as text.
    pub request_id: String,
}

impl Note {
    /// Adds what cleaning a result redacted.
    pub fn cleaned(&mut self, cleaning: crate::guard::sanitize::Cleaning) {
        self.result_redactions += cleaning.redactions;
        self.findings.extend(cleaning.found);
    }

    pub(super) fn decision_label(&self, answer: &Result<Value, RpcError>) -> (&'static str, Option<String>) {
        if let Some(d) = &self.decision {
            match d.verdict {
                Verdict::Deny => return ("DENY", Some("policy".into())),
                Verdict::RequireApproval if self.approval_id.is_none() => {
                    return ("REQUIRE_APPROVAL", Some("approval".into()));
                }
                Verdict::RequireApproval | Verdict::Allow => {}
            }
        }
        match answer {
            Err(e) if !self.forwarded => match e.code {
                error::RATE_LIMITED => ("RATE_LIMITED", Some(short(&e.message))),
                error::CALL_LIMIT => ("LIMITED", Some(short(&e.message))),
                error::INSUFFICIENT_SCOPE => ("DENY", Some("scope".into())),
                _ if self.unknown_server => ("DENY", Some("unknown server".into())),
                _ => ("DENY", Some(short(&e.message))),
            },
            _ => ("ALLOW", None),
        }
    }
}

/// Which methods are calls (of a tool, prompt or resource): the rest are "requests".
pub(super) fn event_kind(method: &str, note: &Note) -> &'static str {
    if note.unknown_server {
        return "unknown_server";
    }
    match method {
        "tools/call" | "prompts/get" | "resources/read" => "call",
        "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => "list",
        _ => "request",
    }
}

/// A request on its way through the guards. If it is dropped unfinished (the client went away and
/// the call was cancelled), its row is still written, with the outcome `abandoned`.
pub struct Pending {
    auditor: Arc<Auditor>,
    caller: Option<Caller>,
    request_id: String,
    method: String,
    started: Instant,
    note: Note,
}

impl Pending {
    /// The note the guards fill.
    pub fn note(&mut self) -> &mut Note {
        &mut self.note
    }

    /// The note and the time taken, once the request is answered.
    pub fn finish(mut self) -> (Note, Duration) {
        self.caller = None;
        (std::mem::take(&mut self.note), self.started.elapsed())
    }
}

impl Pending {
    /// Starts the row of a request (the caller's columns are taken now).
    pub(super) fn start(auditor: Arc<Auditor>, ctx: &ClientContext, request_id: &str, method: &str) -> Pending {
        Pending {
            caller: auditor.log.is_some().then(|| Caller::of(ctx)),
            auditor,
            request_id: request_id.to_owned(),
            method: method.to_owned(),
            started: Instant::now(),
            note: Note { request_id: request_id.to_owned(), ..Note::default() },
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(caller) = self.caller.take() else { return };
        let Some(log) = self.auditor.log.clone() else { return };
        let note = std::mem::take(&mut self.note);
        let event = event_kind(&self.method, &note);
        let mut row = AuditEvent {
            event_time: chrono::Utc::now() - chrono::TimeDelta::from_std(self.started.elapsed()).unwrap_or_default(),
            event: event.to_owned(),
            method: Some(short(&self.method)),
            request_id: Some(short(&self.request_id)),
            server_name: note.server.clone(),
            tool_name: note.item.as_deref().map(|i| self.auditor.scrubbed(i)),
            action_class: note.class.map(|c| c.as_str().to_owned()),
            decision: if note.forwarded { "ALLOW" } else { "DENY" }.to_owned(),
            policy_ids: note.decision.as_ref().map(|d| d.policies.clone()).unwrap_or_default(),
            outcome: Some("abandoned".to_owned()),
            latency_ms: Some(self.started.elapsed().as_secs_f64() * 1000.0),
            ..caller_columns(&caller)
        };
        (row.arguments, row.redactions) = self.auditor.stored_arguments(note.arguments);
        let metrics = self.auditor.metrics.clone();
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(async move {
                if let Err(e) = log.record(row).await {
                    metrics.audit_failures.inc();
                    tracing::error!("audit row of an abandoned request not written: {e}");
                } else {
                    metrics.audit_rows.inc();
                }
            });
        }
    }
}

pub(super) fn outcome(forwarded: bool, answer: &Result<Value, RpcError>) -> &'static str {
    match (forwarded, answer) {
        (false, _) => "refused",
        (true, Ok(r)) if r.get("isError").and_then(Value::as_bool) == Some(true) => "tool_error",
        (true, Ok(_)) => "ok",
        (true, Err(e)) if e.code == error::REQUEST_TIMEOUT => "timeout",
        (true, Err(_)) => "error",
    }
}
