//! The rows of what people do: operators' actions (a release, a containment, a sign-in to the
//! console) and each event in an approval's life.

use super::{Auditor, short};
use warden_protocol::RpcError;
use warden_store::AuditEvent;

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

impl Auditor {
    /// Records what a person did outside the request path (`warden quarantine release`, ...):
    /// `event` and `decision` as given, `by` the person; `reason` names what it was done to.
    pub async fn operator_action(&self, event: &str, decision: &str, by: &str, reason: &str) -> Result<(), RpcError> {
        self.operator_event(event, decision, by, None, reason).await
    }

    /// The same, about `server` when it is one server's.
    pub async fn operator_event(
        &self,
        event: &str,
        decision: &str,
        by: &str,
        server: Option<&str>,
        reason: &str,
    ) -> Result<(), RpcError> {
        let Some(log) = &self.log else { return Ok(()) };
        let row = AuditEvent {
            actor_id: Some(short(by)),
            actor_class: Some("admin".to_owned()),
            server_name: server.map(str::to_owned),
            reason: Some(self.scrubbed(reason)),
            outcome: Some("ok".to_owned()),
            ..AuditEvent::new(chrono::Utc::now(), event, decision)
        };
        self.write(log.as_ref(), row).await
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
        self.write(log.as_ref(), row).await
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
        self.write(log.as_ref(), row).await
    }
}
