//! The audit guard: every request and every decision becomes one row of the audit log, and moves
//! the metrics.
//!
//! The guards fill a [`Note`] as a request goes (which server and tool, which class, which
//! decision and which policies); [`Auditor::request`] turns it, with the answer, into the row.
//! Arguments are stored after secret redaction; results only as a SHA-256 hash. Every request a
//! server makes of a client is a row too, on every path ([`Auditor::server_request`]).
//!
//! Each row written is shown to the [`Notifier`], which tells the webhooks subscribed to it of
//! the rows that announce something ([`crate::notify::Notice::of_row`]): a row is the one
//! place where an approval request, a held definition, a quarantine or a containment is known
//! to have happened.

mod flood;
mod note;
mod open;
mod operator;

pub use note::{Note, Pending};
pub use open::{audit_url, open, open_for_operator};
pub use operator::ApprovalEvent;

use crate::client::ClientContext;
use crate::metrics::{CallLabels, KindLabels, MethodLabels, Metrics, ReasonLabels, ServerLabels};
use crate::notify::{Notice, Notifier};
use flood::Admit;
use note::{event_kind, outcome};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use warden_inspect::SecretScanner;
use warden_policy::{Principal, ToolClass};
use warden_protocol::{Era, RpcError};
use warden_store::{AuditEvent, AuditSink};

/// Largest arguments stored as they are (after redaction); larger ones are stored as a hash.
pub const MAX_STORED_ARGUMENTS: usize = 64 * 1024;

/// A bounded, single-line reason.
fn short(s: &str) -> String {
    crate::names::shown(s)
}

/// Hex SHA-256 of a result as relayed.
pub fn result_hash(result: &Value) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(result).unwrap_or_default()))
}

/// Writes audit rows and moves the metrics.
pub struct Auditor {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    pub(crate) log: Option<Arc<dyn AuditSink>>,
    secrets: SecretScanner,
    sync: bool,
    egress_refusals: flood::RefusalWindow,
    notifier: Option<Notifier>,
}

/// What the HTTP front tells the auditor about a refused credential.
pub struct AuthFailure<'a> {
    /// A fixed reason: `missing`, `invalid`, `expired`, `audience`, `issuer`, `scope`, `session`.
    pub reason: &'static str,
    /// What was said to the client.
    pub message: &'a str,
    /// The subject, when the token was valid but not enough.
    pub subject: Option<&'a str>,
    /// The method, when the body was read.
    pub method: Option<&'a str>,
}

impl Auditor {
    /// An auditor writing to `log` (`None`: metrics only, for tools that do not serve).
    pub fn new(metrics: Arc<Metrics>, log: Option<Arc<dyn AuditSink>>, sync: bool) -> Auditor {
        Auditor {
            metrics,
            log,
            secrets: SecretScanner::new(),
            sync,
            egress_refusals: Default::default(),
            notifier: None,
        }
    }

    /// The same auditor, telling `notifier` of the rows that announce something.
    pub fn notifying(self, notifier: Option<Notifier>) -> Auditor {
        Auditor { notifier, ..self }
    }

    /// Where notices go, when webhooks are configured.
    pub fn notifier(&self) -> Option<&Notifier> {
        self.notifier.as_ref()
    }

    /// Starts the row of a request; see [`Pending`].
    pub fn pending(self: &Arc<Self>, ctx: &ClientContext, request_id: &str, method: &str) -> Pending {
        Pending::start(self.clone(), ctx, request_id, method)
    }

    /// A text a client or server chose, bounded and with secrets redacted.
    pub(crate) fn scrubbed(&self, text: &str) -> String {
        short(&self.secrets.redact_str(text).0)
    }

    /// Arguments as stored: secrets redacted, and above [`MAX_STORED_ARGUMENTS`] bytes replaced by
    /// their size and hash.
    pub(crate) fn stored_arguments(&self, arguments: Option<Value>) -> (Option<Value>, i64) {
        let Some(mut args) = arguments else { return (None, 0) };
        let found = self.secrets.redact_json(&mut args);
        for (kind, n) in &found.by_kind {
            self.metrics.redactions.get_or_create(&KindLabels { kind: (*kind).to_owned() }).inc_by(u64::from(*n));
        }
        let text = serde_json::to_vec(&args).unwrap_or_default();
        if text.len() > MAX_STORED_ARGUMENTS {
            args = serde_json::json!({ "_truncated": true, "bytes": text.len(), "sha256": hex::encode(Sha256::digest(&text)) });
        }
        (Some(args), i64::from(found.total))
    }

    /// The log, to flush at shutdown.
    pub fn log(&self) -> Option<&dyn AuditSink> {
        self.log.as_deref()
    }

    /// Records a request and its answer. In `sync` durability, an error means the row could not
    /// be committed and the answer must not be given.
    pub async fn request(
        &self,
        ctx: &ClientContext,
        request_id: Option<&str>,
        method: &str,
        note: Note,
        answer: &Result<Value, RpcError>,
        elapsed: Duration,
    ) -> Result<(), RpcError> {
        let (decision, reason) = note.decision_label(answer);
        if reason.as_deref() == Some("scope") {
            self.metrics.scope_mismatches.inc();
        }
        let event = event_kind(method, &note);
        let class = note.class.map(ToolClass::as_str);
        self.count(method, event, decision, &note, class, answer, elapsed);
        if note.result_redactions > 0 {
            let labels = KindLabels { kind: "result".to_owned() };
            self.metrics.redactions.get_or_create(&labels).inc_by(u64::from(note.result_redactions));
        }
        let Some(log) = &self.log else { return Ok(()) };
        let (arguments, argument_redactions) = self.stored_arguments(note.arguments);
        let redactions = argument_redactions + i64::from(note.result_redactions);
        let policies = note.decision.as_ref().map(|d| d.policies.clone()).unwrap_or_default();
        let injections = (!note.injections.is_empty()).then(|| {
            let rules = note.injections.join(", ");
            match &note.quarantined {
                Some(id) => format!("quarantined as {id}, tainted: the result set off {rules}"),
                None => format!("tainted: the result set off {rules}"),
            }
        });
        let reason = match (&note.decision, reason) {
            (Some(d), Some(r)) if !d.reasons.is_empty() => Some(format!("{r}: {}", d.reasons.join("; "))),
            (_, r) => r.or(injections),
        }
        .map(|r| self.scrubbed(&r));
        let arrived = chrono::Utc::now() - chrono::TimeDelta::from_std(elapsed).unwrap_or_default();
        let row = AuditEvent {
            event_time: arrived,
            event: event.to_owned(),
            method: Some(short(method)),
            request_id: request_id.map(short),
            server_name: note.server,
            tool_name: note.item.map(|i| self.scrubbed(&i)),
            action_class: class.map(str::to_owned),
            arguments,
            redactions,
            result_hash: answer.as_ref().ok().filter(|_| note.forwarded).map(result_hash),
            decision: decision.to_owned(),
            policy_ids: policies,
            reason,
            outcome: Some(
                if note.quarantined.is_some() { "quarantined" } else { outcome(note.forwarded, answer) }.to_owned(),
            ),
            error_code: answer.as_ref().err().map(|e| i64::from(e.code)),
            latency_ms: Some(elapsed.as_secs_f64() * 1000.0),
            findings: (!note.findings.is_empty()).then(|| Value::Array(note.findings)),
            approval_id: note.approval_id,
            scopes: (event == "call").then(|| presented_scopes(&ctx.principal)).flatten(),
            ..self.base(ctx)
        };
        self.write(log.as_ref(), row).await
    }

    /// Records a result withheld and quarantined as `id` (its own row, event `quarantine`,
    /// beside the call's), and counts it.
    #[allow(clippy::too_many_arguments)]
    pub async fn quarantined(
        &self,
        ctx: &ClientContext,
        request_id: &str,
        method: &str,
        server: &str,
        item: &str,
        id: &str,
        rules: &[&str],
    ) {
        self.metrics.quarantined.inc();
        let Some(log) = &self.log else { return };
        let row = AuditEvent {
            event: "quarantine".to_owned(),
            method: Some(short(method)),
            request_id: Some(short(request_id)),
            server_name: Some(server.to_owned()),
            tool_name: Some(self.scrubbed(item)),
            decision: "QUARANTINED".to_owned(),
            reason: Some(short(&format!("{id}: the result set off {}", rules.join(", ")))),
            outcome: Some("held".to_owned()),
            ..self.base(ctx)
        };
        // The call's own row follows, and says the same; this one must not fail the call.
        let _ = self.write(log.as_ref(), row).await;
    }

    /// Records that stdio server `server` is configured to run unconfined (`sandbox = "off"`):
    /// written once each time the gateway starts.
    pub async fn unconfined(&self, server: &str) {
        let Some(log) = &self.log else { return };
        let row = AuditEvent {
            server_name: Some(server.to_owned()),
            reason: Some("sandbox = \"off\": the server runs with the gateway's user's files and network".to_owned()),
            outcome: Some("unconfined".to_owned()),
            action_class: None,
            ..AuditEvent::new(chrono::Utc::now(), "sandbox_off", "REPORTED")
        };
        let _ = self.write(log.as_ref(), row).await;
    }

    /// Records a legacy session's `initialize` (answered by the front, not the request path).
    pub async fn initialized(&self, ctx: &ClientContext, request_id: &str) -> Result<(), RpcError> {
        self.metrics
            .requests
            .get_or_create(&MethodLabels { method: "initialize".into(), decision: "ALLOW".into() })
            .inc();
        let Some(log) = &self.log else { return Ok(()) };
        let row = AuditEvent {
            method: Some("initialize".to_owned()),
            request_id: Some(short(request_id)),
            outcome: Some("ok".to_owned()),
            ..self.base(ctx)
        };
        self.write(log.as_ref(), row).await
    }

    /// Records what the integrity guard did to a definition (`drift`, `definition_held`,
    /// `definition_pinned`, `definition_removed`): not a request, so no caller.
    /// `findings`: the evidence of a hold (each finding's rule, family, pointer, span, excerpt,
    /// explanation and reviewer check), kept whole in the row's `findings` column.
    pub async fn integrity_event(
        &self,
        event: &str,
        server: &str,
        kind: &str,
        name: &str,
        reason: &str,
        findings: Option<Value>,
    ) {
        let Some(log) = &self.log else { return };
        let decision = match event {
            "definition_removed" => "REPORTED",
            "definition_pinned" => "PINNED",
            "credential_echoed" => "REDACTED",
            _ => "BLOCKED",
        };
        let row = AuditEvent {
            server_name: Some(server.to_owned()),
            tool_name: Some(self.scrubbed(name)),
            method: Some(format!("{kind} definition")),
            reason: Some(short(reason)),
            findings: findings.filter(|f| f.as_array().is_some_and(|a| !a.is_empty())),
            outcome: Some(if decision == "BLOCKED" { "held" } else { "reported" }.to_owned()),
            // Not a call: only rows of calls say what class of tool they concern.
            action_class: None,
            ..AuditEvent::new(chrono::Utc::now(), event, decision)
        };
        let _ = self.write(log.as_ref(), row).await;
    }

    /// Records a refused credential on the HTTP front.
    pub async fn auth_failure(&self, failure: AuthFailure<'_>) {
        self.metrics.auth_failures.get_or_create(&ReasonLabels { reason: failure.reason.to_owned() }).inc();
        match failure.reason {
            "scope" => {
                self.metrics.scope_mismatches.inc();
            }
            "audience" => {
                self.metrics.audience_mismatches.inc();
            }
            _ => {}
        }
        let Some(log) = &self.log else { return };
        let row = AuditEvent {
            event: "auth".to_owned(),
            method: failure.method.map(short),
            actor_id: failure.subject.map(short),
            decision: "AUTH_FAILED".to_owned(),
            reason: Some(format!("{}: {}", failure.reason, short(failure.message))),
            outcome: Some("refused".to_owned()),
            ..AuditEvent::new(chrono::Utc::now(), "auth", "AUTH_FAILED")
        };
        // A refused credential is answered whatever happens to its row.
        let _ = self.write(log.as_ref(), row).await;
    }

    /// Records a server's request to a client (sampling, elicitation, roots) and its decision:
    /// `to` the client it was for (`None`: no single client could answer it), `within` the
    /// client's request it was part of, `refused` why it was not relayed. Written in the
    /// background: the exchange does not wait for it.
    #[allow(clippy::too_many_arguments)]
    pub fn server_request(
        &self,
        to: Option<&ClientContext>,
        within: Option<&str>,
        server: &str,
        method: &str,
        findings: &[Value],
        answered: bool,
        refused: Option<&RpcError>,
    ) {
        if refused.is_some() {
            self.metrics.server_requests_refused.inc();
        }
        let Some(log) = self.log.clone() else { return };
        let outcome = match (refused, answered) {
            (Some(_), _) => "refused",
            (None, false) => "relayed",
            (None, true) => "answered by the gateway",
        };
        let base = match to {
            Some(ctx) => self.base(ctx),
            None => AuditEvent::new(chrono::Utc::now(), "server_request", "ALLOW"),
        };
        let row = AuditEvent {
            event: "server_request".to_owned(),
            method: Some(short(method)),
            request_id: within.map(short),
            server_name: Some(server.to_owned()),
            decision: if refused.is_some() { "DENY" } else { "ALLOW" }.to_owned(),
            reason: refused.map(|e| self.scrubbed(&e.message)),
            outcome: Some(outcome.to_owned()),
            findings: (!findings.is_empty()).then(|| Value::Array(findings.to_vec())),
            ..base
        };
        self.spawn_write(log, row);
    }

    /// Records a connection a sandboxed server asked its egress proxy for, allowed or refused.
    /// Written in the background: the proxy does not wait for it.
    pub fn egress(&self, event: &warden_upstream::egress::EgressEvent<'_>) {
        use warden_upstream::egress::Outcome;
        let (decision, outcome, reason) = match &event.outcome {
            Outcome::Connected { address } => ("ALLOW", "connected".to_owned(), format!("connected to {address}")),
            Outcome::Failed(why) => ("ALLOW", "failed".to_owned(), why.clone()),
            Outcome::Refused(why) => ("DENY", "refused".to_owned(), why.clone()),
        };
        let label = if outcome == "failed" { "FAILED" } else { decision };
        self.metrics
            .egress
            .get_or_create(&crate::metrics::EgressLabels {
                server: event.server.to_owned(),
                decision: label.to_owned(),
            })
            .inc();
        let Some(log) = self.log.clone() else { return };
        // A server that floods its proxy with refused connections gets a row for each of the
        // first in every minute and a summary row for the rest, not a row apiece.
        let mut reason = reason;
        if decision == "DENY" {
            match self.egress_refusals.admit(event.server, std::time::Instant::now()) {
                Admit::Row => {}
                Admit::RowAfter(skipped) => {
                    reason =
                        format!("{reason} ({skipped} more refusals in the minute before were counted, not written)");
                }
                Admit::Count => return,
            }
        }
        let row = AuditEvent {
            server_name: Some(event.server.to_owned()),
            method: Some("CONNECT".to_owned()),
            tool_name: Some(self.scrubbed(event.target)),
            reason: Some(self.scrubbed(&reason)),
            outcome: Some(outcome),
            action_class: None,
            ..AuditEvent::new(chrono::Utc::now(), "egress", decision)
        };
        self.spawn_write(log, row);
    }

    /// Writes a row in the background.
    fn spawn_write(&self, log: Arc<dyn AuditSink>, row: AuditEvent) {
        let metrics = self.metrics.clone();
        self.announce(self.notice_of(&row));
        tokio::spawn(async move {
            if let Err(e) = log.record(row).await {
                metrics.audit_failures.inc();
                tracing::error!("audit row not written: {e}");
            } else {
                metrics.audit_rows.inc();
            }
        });
    }

    /// Records that a context became tainted (`source`: what kind of content, `what`: the item
    /// read). Written in the background: the answer does not wait for it.
    pub fn tainted(&self, ctx: &ClientContext, source: &str, server: &str, what: &str) {
        let Some(log) = self.log.clone() else { return };
        let row = AuditEvent {
            event: "taint".to_owned(),
            server_name: Some(server.to_owned()),
            tool_name: Some(self.scrubbed(what)),
            decision: "TAINTED".to_owned(),
            reason: Some(format!(
                "{source}: the context read untrusted content; write and irreversible calls need approval"
            )),
            outcome: Some("tainted".to_owned()),
            ..self.base(ctx)
        };
        self.spawn_write(log, row);
    }

    /// The columns every row of this caller shares.
    fn base(&self, ctx: &ClientContext) -> AuditEvent {
        caller_columns(&Caller::of(ctx))
    }

    /// Writes a row, and announces it when what it records stands: always once written; when
    /// it could not be written, only in `batched` durability (in `sync` the event is refused).
    async fn write(&self, log: &dyn AuditSink, row: AuditEvent) -> Result<(), RpcError> {
        let notice = self.notice_of(&row);
        match log.record(row).await {
            Ok(()) => {
                self.metrics.audit_rows.inc();
                self.announce(notice);
                Ok(())
            }
            Err(e) => {
                self.metrics.audit_failures.inc();
                tracing::error!("audit row not written: {e}");
                if self.sync {
                    Err(RpcError::internal("the audit log could not record this request: refused"))
                } else {
                    self.announce(notice);
                    Ok(())
                }
            }
        }
    }

    fn notice_of(&self, row: &AuditEvent) -> Option<Notice> {
        self.notifier.as_ref()?.notice_of(row)
    }

    fn announce(&self, notice: Option<Notice>) {
        if let (Some(notifier), Some(notice)) = (&self.notifier, notice) {
            notifier.send(notice);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn count(
        &self,
        method: &str,
        event: &str,
        decision: &str,
        note: &Note,
        class: Option<&str>,
        answer: &Result<Value, RpcError>,
        elapsed: Duration,
    ) {
        let m = &self.metrics;
        // Only methods MCP defines become labels: a client cannot grow the label set.
        let method = if warden_protocol::methods::lookup(method).is_some() { method } else { "other" };
        m.requests.get_or_create(&MethodLabels { method: method.to_owned(), decision: decision.to_owned() }).inc();
        if event == "unknown_server" {
            m.unknown_servers.inc();
        }
        if !matches!(event, "call" | "unknown_server") {
            return;
        }
        let server = note.server.clone().unwrap_or_default();
        // Only names a server listed become labels: a client cannot grow the label set.
        let tool = if note.class.is_some() { note.item.clone().unwrap_or_default() } else { String::new() };
        let labels = CallLabels {
            decision: decision.to_owned(),
            server: server.clone(),
            tool,
            class: class.unwrap_or_default().to_owned(),
        };
        m.calls.get_or_create(&labels).inc();
        if note.forwarded {
            m.call_seconds.get_or_create(&ServerLabels { server }).observe(elapsed.as_secs_f64());
            if answer.is_ok() {
                m.results.inc();
            }
            if matches!(note.class, Some(ToolClass::Write | ToolClass::Irreversible)) && note.approval_id.is_none() {
                m.unapproved_writes.inc();
            }
        }
    }
}

/// Who a row is about: what the columns need of a request's context.
pub(crate) struct Caller {
    principal: Arc<Principal>,
    era: Era,
    session_id: Option<String>,
}

impl Caller {
    pub(crate) fn of(ctx: &ClientContext) -> Caller {
        Caller {
            principal: ctx.principal.clone(),
            era: ctx.era(),
            session_id: ctx.session.as_ref().map(|s| s.id.clone()),
        }
    }
}

/// The scopes a caller presented with its credential (a token's, or an API key's as configured),
/// bounded; `None` for the local principal, which presents nothing. Recorded on call rows so that
/// a review can name the credentials whose write scopes were only ever used to read.
fn presented_scopes(p: &Principal) -> Option<Vec<String>> {
    const MAX_SCOPES: usize = 64;
    (p.authority != warden_policy::Authority::Local)
        .then(|| p.scopes.iter().take(MAX_SCOPES).map(|s| short(s)).collect())
}

pub(crate) fn caller_columns(c: &Caller) -> AuditEvent {
    let p = &c.principal;
    AuditEvent {
        era: Some(if c.era == Era::Modern { "modern" } else { "legacy" }.to_owned()),
        actor_id: Some(short(&p.subject)),
        actor_class: Some(format!("{:?}", p.class).to_lowercase()),
        tenant: p.tenant.as_deref().map(short),
        client_id: p.client_id.as_deref().map(short),
        session_id: c.session_id.clone(),
        ..AuditEvent::new(chrono::Utc::now(), "request", "ALLOW")
    }
}

#[async_trait::async_trait]
impl crate::credentials::CredentialAudit for Auditor {
    /// A row of `event` of `server` for `principal`; `reason` never holds a token, only its id.
    async fn credential(&self, event: &str, server: &str, principal: &Principal, decision: &str, reason: &str) {
        let Some(log) = &self.log else { return };
        let row = AuditEvent {
            actor_id: Some(short(&principal.subject)),
            actor_class: Some(format!("{:?}", principal.class).to_lowercase()),
            tenant: principal.tenant.clone(),
            client_id: principal.client_id.clone(),
            server_name: Some(server.to_owned()),
            reason: Some(self.scrubbed(reason)),
            outcome: Some(if decision == "ALLOW" { "issued" } else { "refused" }.to_owned()),
            action_class: None,
            ..AuditEvent::new(chrono::Utc::now(), event, decision)
        };
        let _ = self.write(log.as_ref(), row).await;
    }
}
