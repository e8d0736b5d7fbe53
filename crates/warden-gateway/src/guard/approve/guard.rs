//! The approval guard on the request path, and its part on the way back.

use super::{Approvals, Asking, CONTINUE_PREFIX, Continuing, Obtained, reasons};
use crate::catalogue::{CallKind, Route};
use crate::guard::contain::Containment;
use crate::guard::{Flow, Reply, Request, RequestGuard, ResponseGuard};
use std::sync::Arc;
use warden_policy::Verdict;
use warden_protocol::RpcError;

/// Holds a tool call that needs a human's approval (a `@require_approval` policy, a high-impact
/// call from a tainted context or in emergency mode, a credential in its arguments) until one is
/// given, and lets an approved call through once.
pub struct Approve {
    approvals: Arc<Approvals>,
    containment: Arc<Containment>,
}

impl Approve {
    /// The guard over `approvals`, in the emergency mode `containment` says.
    pub fn new(approvals: Arc<Approvals>, containment: Arc<Containment>) -> Approve {
        Approve { approvals, containment }
    }
}

#[async_trait::async_trait]
impl RequestGuard for Approve {
    fn name(&self) -> &'static str {
        "approve"
    }

    async fn check(&self, request: &mut Request<'_>) -> Result<Flow, RpcError> {
        if request.route != Route::Call(CallKind::Tool) {
            // Approvals are given for tool calls; the guards before refuse what else needs one.
            return Ok(Flow::Next);
        }
        let (Some(tool), Some(target), Some(decision)) =
            (&request.tool, &request.target, request.note.decision.as_mut())
        else {
            // A tool call that reached this guard unresolved or undecided is not let through.
            return Err(RpcError::internal("a tool call reached the approval guard undecided: refused"));
        };
        let emergency = self.containment.emergency();
        let mut why = reasons(decision, tool.facts.class, request.tainted, emergency);
        why.extend(request.holds.iter().cloned());
        if !request.holds.is_empty() && decision.verdict == Verdict::Allow {
            decision.verdict = Verdict::RequireApproval;
            decision.reasons.extend(request.holds.iter().cloned());
        }
        let needs = decision.verdict == Verdict::RequireApproval;
        let continues = request
            .params
            .get("requestState")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|s| s.starts_with(CONTINUE_PREFIX));
        if !needs && !continues {
            return Ok(Flow::Next);
        }
        let arguments = request.params.get("arguments").filter(|a| !a.is_null()).cloned();
        let server = target.server.name.clone();
        let continuing =
            Continuing { ctx: request.ctx, server: &server, tool: &tool.facts.name, arguments: arguments.as_ref() };
        let continued = self.approvals.continuation(&continuing, &mut request.params).await?;
        request.note.approval_id = continued.clone();
        if !needs || request.resumes || continued.is_some() {
            return Ok(Flow::Next);
        }
        let Some(slot) = request.slot.as_ref() else {
            return Err(RpcError::internal("a call needing approval was not admitted by the limits: refused"));
        };
        let exposed = request.params.get("name").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        let asking = Asking {
            ctx: request.ctx,
            out: request.out,
            slot,
            server: &server,
            tool: &tool.facts,
            settings: &tool.settings,
            exposed: &exposed,
            arguments: arguments.as_ref(),
            request_id: &request.note.request_id,
            params: &request.params,
            reasons: why,
            emergency,
        };
        match self.approvals.obtain(&asking).await? {
            Obtained::Ask(question) => Ok(Flow::Answer(question)),
            Obtained::Approved(id) => {
                request.note.approval_id = Some(id);
                if let Some(p) = request.params.as_object_mut() {
                    p.remove("requestState");
                    p.remove("inputResponses");
                }
                Ok(Flow::Next)
            }
        }
    }
}

/// An approved call whose server answers `input_required`: its `requestState` is sealed with the
/// approval, so the client's retry continues the approved call instead of asking again.
pub struct SealContinuation {
    approvals: Arc<Approvals>,
}

impl SealContinuation {
    /// The guard over `approvals`.
    pub fn new(approvals: Arc<Approvals>) -> SealContinuation {
        SealContinuation { approvals }
    }
}

#[async_trait::async_trait]
impl ResponseGuard for SealContinuation {
    fn name(&self) -> &'static str {
        "seal_continuation"
    }

    async fn check(&self, request: &mut Request<'_>, reply: &mut Reply) -> Result<(), RpcError> {
        let (Some(id), Some(tool), Some(target)) = (&request.note.approval_id, &request.tool, &request.target) else {
            return Ok(());
        };
        if request.route != Route::Call(CallKind::Tool) || !reply.is_input_required() {
            return Ok(());
        }
        let arguments = request.params.get("arguments").filter(|a| !a.is_null());
        let continuing =
            Continuing { ctx: request.ctx, server: &target.server.name, tool: &tool.facts.name, arguments };
        match reply.result_mut() {
            Some(result) => self.approvals.seal_continuation(&continuing, id, result),
            None => Ok(()),
        }
    }
}
