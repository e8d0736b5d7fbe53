//! The audit guard: every request and every decision becomes one row of the audit log, and moves
//! the metrics.
//!
//! The request path fills a [`Note`] as it goes (which server and tool, which class, which
//! decision and which policies); [`Auditor::request`] turns it, with the answer, into the row.
//! Arguments are stored after secret redaction; results only as a SHA-256 hash.

use crate::client::ClientContext;
use crate::config::Config;
use crate::metrics::{CallLabels, KindLabels, MethodLabels, Metrics, ReasonLabels, ServerLabels};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_inspect::SecretScanner;
use warden_policy::{Decision, Principal, ToolClass, Verdict};
use warden_protocol::{Era, RpcError, error};
use warden_store::{AuditEvent, AuditLog};

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
    pub fn cleaned(&mut self, cleaning: crate::sanitize::Cleaning) {
        self.result_redactions += cleaning.redactions;
        self.findings.extend(cleaning.found);
    }

    fn decision_label(&self, answer: &Result<Value, RpcError>) -> (&'static str, Option<String>) {
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

/// One event in an approval's life, for [`Auditor::approval`].
pub struct ApprovalEvent<'a> {
    /// `approval_requested`, `approval_granted`, `approval_denied`, `approval_expired`,
    /// `approval_used` or `approval_revoked`.
    pub event: &'static str,
    /// The approval, as it is after the event.
    pub approval: &'a warden_store::approvals::Approval,
    /// Who decided (grants, denials, revocations).
    pub by: Option<&'a str>,
    /// What happened, in a few words.
    pub note: &'a str,
}

/// Largest arguments stored as they are (after redaction); larger ones are stored as a hash.
pub const MAX_STORED_ARGUMENTS: usize = 64 * 1024;

/// A bounded, single-line reason.
fn short(s: &str) -> String {
    crate::routing::shown(s)
}

/// Which methods are calls (of a tool, prompt or resource): the rest are "requests".
fn event_kind(method: &str, note: &Note) -> &'static str {
    if note.unknown_server {
        return "unknown_server";
    }
    match method {
        "tools/call" | "prompts/get" | "resources/read" => "call",
        "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => "list",
        _ => "request",
    }
}

/// Hex SHA-256 of a result as relayed.
pub fn result_hash(result: &Value) -> String {
    hex::encode(Sha256::digest(serde_json::to_vec(result).unwrap_or_default()))
}

/// Writes audit rows and moves the metrics.
pub struct Auditor {
    /// The metrics.
    pub metrics: Arc<Metrics>,
    log: Option<Arc<AuditLog>>,
    secrets: SecretScanner,
    sync: bool,
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
    pub fn new(metrics: Arc<Metrics>, log: Option<AuditLog>, sync: bool) -> Auditor {
        Auditor { metrics, log: log.map(Arc::new), secrets: SecretScanner::new(), sync }
    }

    /// Starts the row of a request; see [`Pending`].
    pub fn pending(self: &Arc<Self>, ctx: &ClientContext, request_id: &str, method: &str) -> Pending {
        Pending {
            auditor: self.clone(),
            caller: self.log.is_some().then(|| Caller::of(ctx)),
            request_id: request_id.to_owned(),
            method: method.to_owned(),
            started: Instant::now(),
            note: Note { request_id: request_id.to_owned(), ..Note::default() },
        }
    }

    /// A text a client or server chose, bounded and with secrets redacted.
    fn scrubbed(&self, text: &str) -> String {
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
    pub fn log(&self) -> Option<&AuditLog> {
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
            ..self.base(ctx)
        };
        self.write(log, row).await
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
        let _ = self.write(log, row).await;
    }

    /// Records what a person did outside the request path (`warden quarantine release`, ...):
    /// `event` and `decision` as given, `by` the person; `reason` names what it was done to.
    pub async fn operator_action(&self, event: &str, decision: &str, by: &str, reason: &str) -> Result<(), RpcError> {
        let Some(log) = &self.log else { return Ok(()) };
        let row = AuditEvent {
            actor_id: Some(short(by)),
            actor_class: Some("admin".to_owned()),
            reason: Some(self.scrubbed(reason)),
            outcome: Some("ok".to_owned()),
            ..AuditEvent::new(chrono::Utc::now(), event, decision)
        };
        self.write(log, row).await
    }

    /// Records one event in an approval's life. For a grant or denial, `by` is the person who
    /// decided; other events are about the caller whose call it is.
    pub async fn approval(&self, e: ApprovalEvent<'_>) -> Result<(), RpcError> {
        self.metrics.approvals.get_or_create(&crate::metrics::EventLabels { event: e.event.to_owned() }).inc();
        let Some(log) = &self.log else { return Ok(()) };
        let a = e.approval;
        let decision = match e.event {
            "approval_requested" => "REQUIRE_APPROVAL",
            "approval_granted" => "APPROVED",
            "approval_denied" => "DENIED",
            "approval_expired" => "EXPIRED",
            "approval_revoked" => "REVOKED",
            _ => "ALLOW",
        };
        let (actor, class) = match e.by {
            Some(by) => (short(by), if by.ends_with("(in the client)") { "user" } else { "admin" }),
            None => (short(&a.actor_id), "caller"),
        };
        let row = AuditEvent {
            method: Some("tools/call".to_owned()),
            request_id: a.request_id.as_deref().map(short),
            actor_id: Some(actor),
            actor_class: Some(class.to_owned()),
            tenant: a.tenant.as_deref().map(short),
            session_id: a.session_id.clone(),
            server_name: Some(a.server.clone()),
            tool_name: Some(self.scrubbed(&a.tool)),
            arguments: Some(a.arguments.clone()),
            approval_id: Some(a.id.clone()),
            reason: Some(self.scrubbed(&format!("{} (caller {}, {} flow): {}", a.id, a.actor_id, a.flow, e.note))),
            outcome: Some(a.status.clone()),
            ..AuditEvent::new(chrono::Utc::now(), e.event, decision)
        };
        self.write(log, row).await
    }

    /// Records a containment (`containment`) or its release (`containment_released`) of `server`
    /// by `by`.
    pub async fn containment(&self, event: &str, server: &str, by: &str, reason: &str) -> Result<(), RpcError> {
        self.metrics.approvals.get_or_create(&crate::metrics::EventLabels { event: event.to_owned() }).inc();
        let Some(log) = &self.log else { return Ok(()) };
        let decision = if event == "containment" { "CONTAINED" } else { "RELEASED" };
        let row = AuditEvent {
            actor_id: Some(short(by)),
            actor_class: Some("admin".to_owned()),
            server_name: Some(server.to_owned()),
            reason: Some(self.scrubbed(reason)),
            outcome: Some("ok".to_owned()),
            ..AuditEvent::new(chrono::Utc::now(), event, decision)
        };
        self.write(log, row).await
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
        self.write(log, row).await
    }

    /// Records what the integrity guard did to a definition (`drift`, `definition_held`,
    /// `definition_pinned`, `definition_removed`): not a request, so no caller.
    pub async fn integrity_event(&self, event: &str, server: &str, kind: &str, name: &str, reason: &str) {
        let Some(log) = &self.log else { return };
        let decision = match event {
            "definition_removed" => "REPORTED",
            "definition_pinned" => "PINNED",
            _ => "BLOCKED",
        };
        let row = AuditEvent {
            server_name: Some(server.to_owned()),
            tool_name: Some(self.scrubbed(name)),
            method: Some(format!("{kind} definition")),
            reason: Some(short(reason)),
            outcome: Some(if decision == "BLOCKED" { "held" } else { "reported" }.to_owned()),
            // Not a call: only rows of calls say what class of tool they concern.
            action_class: None,
            ..AuditEvent::new(chrono::Utc::now(), event, decision)
        };
        let _ = self.write(log, row).await;
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
        let _ = self.write(log, row).await;
    }

    /// Records a server's request to a client (sampling, elicitation, roots) and its decision.
    /// The row is written in the background: the exchange does not wait for it.
    pub fn server_request(&self, ctx: &ClientContext, server: &str, method: &str, refused: Option<&RpcError>) {
        if refused.is_some() {
            self.metrics.server_requests_refused.inc();
        }
        let Some(log) = self.log.clone() else { return };
        let row = AuditEvent {
            event: "server_request".to_owned(),
            method: Some(short(method)),
            server_name: Some(server.to_owned()),
            decision: if refused.is_some() { "DENY" } else { "ALLOW" }.to_owned(),
            reason: refused.map(|e| short(&e.message)),
            outcome: Some(if refused.is_some() { "refused" } else { "relayed" }.to_owned()),
            ..self.base(ctx)
        };
        let metrics = self.metrics.clone();
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
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            if let Err(e) = log.record(row).await {
                metrics.audit_failures.inc();
                tracing::error!("audit row not written: {e}");
            } else {
                metrics.audit_rows.inc();
            }
        });
    }

    /// The columns every row of this caller shares.
    fn base(&self, ctx: &ClientContext) -> AuditEvent {
        caller_columns(&Caller::of(ctx))
    }

    async fn write(&self, log: &AuditLog, row: AuditEvent) -> Result<(), RpcError> {
        match log.record(row).await {
            Ok(()) => {
                self.metrics.audit_rows.inc();
                Ok(())
            }
            Err(e) => {
                self.metrics.audit_failures.inc();
                tracing::error!("audit row not written: {e}");
                if self.sync {
                    Err(RpcError::internal("the audit log could not record this request: refused"))
                } else {
                    Ok(())
                }
            }
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
struct Caller {
    principal: Arc<Principal>,
    era: Era,
    session_id: Option<String>,
}

impl Caller {
    fn of(ctx: &ClientContext) -> Caller {
        Caller {
            principal: ctx.principal.clone(),
            era: ctx.era(),
            session_id: ctx.session.as_ref().map(|s| s.id.clone()),
        }
    }
}

fn caller_columns(c: &Caller) -> AuditEvent {
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

fn outcome(forwarded: bool, answer: &Result<Value, RpcError>) -> &'static str {
    match (forwarded, answer) {
        (false, _) => "refused",
        (true, Ok(r)) if r.get("isError").and_then(Value::as_bool) == Some(true) => "tool_error",
        (true, Ok(_)) => "ok",
        (true, Err(e)) if e.code == error::REQUEST_TIMEOUT => "timeout",
        (true, Err(_)) => "error",
    }
}

/// Where the configured audit log lives: a Postgres URL, or the SQLite file as a URL.
pub fn audit_url(config: &Config) -> Result<String, String> {
    let a = &config.audit;
    if let Some(url) = &a.postgres_url {
        return Ok(url.clone());
    }
    if let Some(var) = &a.postgres_url_env {
        return std::env::var(var).map_err(|_| format!("audit.postgres_url_env: the variable {var} is not set"));
    }
    let path = config.resolve(&a.path);
    let path = if path.is_absolute() {
        path
    } else {
        std::env::current_dir().map_err(|e| format!("the working directory: {e}"))?.join(path)
    };
    Ok(format!("sqlite://{}", path.display()))
}

/// Opens the configured audit log (creating it on first start) and the auditor writing to it.
pub async fn open(config: &Config, metrics: Arc<Metrics>) -> Result<Auditor, String> {
    let a = &config.audit;
    let durability = match a.durability {
        crate::config::Durability::Sync => warden_store::Durability::Sync,
        crate::config::Durability::Batched => warden_store::Durability::Batched { max_delay: a.max_delay.0 },
    };
    let settings = warden_store::AuditSettings {
        durability,
        retain: a.retain_days.map(|d| Duration::from_secs(u64::from(d) * 86_400)),
        ..log_settings(config)?
    };
    let log = AuditLog::open(settings).await.map_err(|e| format!("the audit log: {e}"))?;
    Ok(Auditor::new(metrics, Some(log), a.durability == crate::config::Durability::Sync))
}

/// Opens the configured audit log for a command a person runs (`warden quarantine release`):
/// each row is committed before the command goes on, a JSONL copy goes only to a file (standard
/// output is the person's), and retention is left to the gateway.
pub async fn open_for_operator(config: &Config) -> Result<Auditor, String> {
    let mut settings = log_settings(config)?;
    settings.jsonl = settings.jsonl.filter(|j| matches!(j, warden_store::JsonlSink::File(_)));
    let log = AuditLog::open(settings).await.map_err(|e| format!("the audit log: {e}"))?;
    Ok(Auditor::new(Arc::new(Metrics::new()), Some(log), true))
}

/// The settings every writer of the configured log shares; durability `sync`, no retention.
fn log_settings(config: &Config) -> Result<warden_store::AuditSettings, String> {
    let a = &config.audit;
    let jsonl = a.jsonl.as_deref().map(|j| match j {
        "-" => warden_store::JsonlSink::Stdout,
        file => warden_store::JsonlSink::File(config.resolve(std::path::Path::new(file))),
    });
    Ok(warden_store::AuditSettings {
        url: audit_url(config)?,
        durability: warden_store::Durability::Sync,
        max_batch: a.max_batch.max(1),
        queue: a.queue.max(1),
        jsonl,
        signing_key: a.signing_key.as_ref().map(|k| config.resolve(k)),
        retain: None,
    })
}
