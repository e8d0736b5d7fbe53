//! The approval guard: a call that needs a human's approval (a `@require_approval` policy, a
//! `write` or `irreversible` tool called from a tainted context, or any such call in emergency
//! mode) proceeds only once a human approved it, exactly once.
//!
//! Three flows, chosen per call:
//!
//! | flow | when | how |
//! |---|---|---|
//! | `input_required` | 2026-07-28 clients that declared elicitation | the call is answered with `input_required` carrying an elicitation that shows server, tool and arguments; the retry with the user's acceptance proceeds |
//! | `elicitation` | legacy clients that declared elicitation | the gateway sends `elicitation/create` and waits (`approvals.ask_timeout`) |
//! | `out_of_band` | everyone else; tool classes in `approvals.out_of_band_classes` (default `irreversible`); a tool's `approval = "out_of_band"`; emergency mode | a pending approval is stored; an operator approves or denies it (`warden approvals`, admin API); the agent's retry with identical arguments proceeds once within `approvals.use_within` |
//!
//! Every approval is a row of `mcp_approvals`, bound to the caller (principal identity with its
//! OAuth client), the server, the tool and the SHA-256 of the arguments exactly as they are
//! forwarded (their JSON as Warden writes it to the server): arguments that differ in any byte
//! the server receives, even `1` against `1.0`, are another approval, so what runs is what the
//! human saw. A caller may have at most `approvals.max_pending_per_caller` requests pending. Using one is a single conditional update, so two
//! retries racing get one call. The `requestState` of the in-band flow is sealed with HMAC-SHA256
//! (rmcp's request-state codec) over the approval id, with the same binding as associated data and
//! the request's time limit: a client cannot forge one, move one to other arguments or another
//! caller, or use one twice (the row is redeemed once).

mod decide;
mod guard;

pub use decide::{Decider, Ruling, decide};
pub use guard::{Approve, SealContinuation};

use crate::client::{ClientContext, Outbound};
use crate::clock::Clock;
use crate::config::{ApprovalFlow, Config, ToolSection};
use crate::error::GatewayError;
use crate::guard::audit::{ApprovalEvent, Auditor};
use crate::guard::limit::CallSlot;
use rmcp::model::{RequestStateCodec, RequestStateError, SealOptions};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use warden_policy::{Decision, ToolClass, ToolFacts, Verdict};
use warden_protocol::{RpcError, error};
use warden_store::ApprovalStorage;
/// A person's answer to a pending approval: approve or deny.
pub use warden_store::approvals::Verdict as Answer;
use warden_store::approvals::{Approval, ApprovalRequest, Requested};

/// Prefix of the `requestState` values of in-band approvals.
pub const STATE_PREFIX: &str = "warden-approval:";
/// Prefix of the `requestState` of an approved call whose server asked for input.
pub const CONTINUE_PREFIX: &str = "warden-approved:";
/// The key of the approval question among a call's `inputRequests`.
pub const INPUT_KEY: &str = "warden-approval";

/// The approval guard's settings, store and key.
pub struct Approvals {
    store: Arc<dyn ApprovalStorage>,
    codec: RequestStateCodec,
    auditor: Arc<Auditor>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    use_within: Duration,
    ask_timeout: Duration,
    out_of_band_classes: Vec<ToolClass>,
    approve_at: Option<String>,
    /// The operator console's origin, when it is served at a known address.
    console: Option<String>,
    max_pending: u32,
    /// Continuations already used (SHA-256 of the sealed state), until they expire: each works once.
    spent: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::time::Instant>>,
    /// Continuations spent on any gateway (`[state] redis`).
    shared: std::sync::OnceLock<Arc<crate::state::SharedState>>,
}

/// Most continuations remembered as used; past this, new ones are refused (fail closed).
const MAX_SPENT: usize = 100_000;

/// A call that needs approval, and why.
pub struct Asking<'a> {
    pub ctx: &'a ClientContext,
    pub out: &'a Outbound,
    pub slot: &'a CallSlot,
    pub server: &'a str,
    pub tool: &'a ToolFacts,
    pub settings: &'a ToolSection,
    /// The name the client called.
    pub exposed: &'a str,
    /// The call's arguments (redacted before they are stored or shown).
    pub arguments: Option<&'a Value>,
    pub request_id: &'a str,
    /// The request's params: where a retry carries `requestState` and `inputResponses`.
    pub params: &'a Value,
    /// Why approval is needed (policy ids, `tainted`, `emergency`).
    pub reasons: Vec<String>,
    /// Emergency mode (a server is contained): only an operator may approve.
    pub emergency: bool,
}

/// An approved call, as its continuation is bound.
pub struct Continuing<'a> {
    pub ctx: &'a ClientContext,
    pub server: &'a str,
    /// The server-side tool name.
    pub tool: &'a str,
    pub arguments: Option<&'a Value>,
}

/// What the guard decided for now.
#[derive(Debug)]
pub enum Obtained {
    /// Approved: the call proceeds, under this approval id.
    Approved(String),
    /// The client must ask its user: this `input_required` result goes back.
    Ask(Value),
}

/// Turns an allowed call of a `write` or `irreversible` tool into one needing approval when its
/// context is tainted or a server is contained, and says why approval is needed (empty when it
/// is not).
pub fn reasons(decision: &mut Decision, class: ToolClass, tainted: bool, emergency: bool) -> Vec<String> {
    let high_impact = matches!(class, ToolClass::Write | ToolClass::Irreversible);
    let mut why = Vec::new();
    if decision.verdict == Verdict::RequireApproval {
        why.push(format!("policy {}", decision.policies.join(", ")));
    }
    if decision.verdict != Verdict::Deny && high_impact {
        if tainted {
            why.push("tainted".to_owned());
            decision.reasons.push("the context has read untrusted content".to_owned());
        }
        if emergency {
            why.push("emergency".to_owned());
            decision.reasons.push("emergency mode: a server is contained".to_owned());
        }
        if tainted || emergency {
            decision.verdict = Verdict::RequireApproval;
        }
    }
    why
}

/// Hex SHA-256 of the arguments as the server receives them: their JSON as Warden writes it
/// (absent arguments count as `{}`). Numbers keep their form (`1` is not `1.0`), so an approval
/// binds the bytes the server will read, not a value that merely compares equal.
pub fn arguments_hash(arguments: Option<&Value>) -> Result<String, RpcError> {
    let empty = json!({});
    let bytes = serde_json::to_vec(arguments.unwrap_or(&empty))
        .map_err(|_| RpcError::invalid_params("the arguments cannot be written as JSON"))?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// What an approval is bound to: caller, server, tool and argument hash. Lengths make it
/// unambiguous whatever the names contain.
fn binding(ctx: &ClientContext, server: &str, tool: &str, hash: &str) -> String {
    let part = |s: &str| format!("{}:{s}", s.len());
    format!("tools/call|{}|{}|{}|{}", part(&ctx.principal.identity_key()), part(server), part(tool), part(hash))
}

/// Reads the sealing key the configuration names; `None` when it names none.
fn configured_key(config: &Config) -> Result<Option<Vec<u8>>, GatewayError> {
    let Some(k) = &config.approvals.state_key else { return Ok(None) };
    let text = match (&k.env, &k.file) {
        (Some(var), None) => {
            std::env::var(var).map_err(|_| GatewayError::Config(format!("approvals.state_key: {var} is not set")))?
        }
        (None, Some(file)) => std::fs::read_to_string(config.resolve(file))
            .map_err(|e| GatewayError::io(format!("approvals.state_key: {}", file.display()), e))?,
        _ => return Err(GatewayError::Config("approvals.state_key: set exactly one of env and file".into())),
    };
    let key = text.trim().as_bytes().to_vec();
    if key.len() < RequestStateCodec::MIN_KEY_LENGTH {
        return Err(GatewayError::Config(format!(
            "approvals.state_key: at least {} bytes are needed",
            RequestStateCodec::MIN_KEY_LENGTH
        )));
    }
    Ok(Some(key))
}

pub(crate) fn unix_ms(clock: &dyn Clock) -> i64 {
    clock.wall().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Approvals {
    /// Shares the spent continuations through `state` with the other gateways (set once).
    pub fn share(&self, state: Option<Arc<crate::state::SharedState>>) {
        if let Some(s) = state {
            let _ = self.shared.set(s);
        }
    }

    /// The approval guard of `config`, storing in `store`.
    pub fn new(
        config: &Config,
        store: Arc<dyn ApprovalStorage>,
        auditor: Arc<Auditor>,
        clock: Arc<dyn Clock>,
    ) -> Result<Approvals, GatewayError> {
        let key = match configured_key(config)? {
            Some(k) => k,
            None => rand::random::<[u8; 32]>().to_vec(),
        };
        let codec =
            RequestStateCodec::try_new(key).map_err(|e| GatewayError::Config(format!("approvals.state_key: {e}")))?;
        let a = &config.approvals;
        Ok(Approvals {
            store,
            codec,
            auditor,
            clock,
            ttl: a.ttl.0,
            use_within: a.use_within.0,
            ask_timeout: a.ask_timeout.0,
            out_of_band_classes: a.out_of_band_classes.clone(),
            approve_at: a.approve_at.clone(),
            console: config
                .console
                .origin(config.admin.listen.as_deref())
                .filter(|_| !config.admin.listen.as_deref().is_some_and(|l| l.ends_with(":0"))),
            max_pending: a.max_pending_per_caller,
            spent: Default::default(),
            shared: Default::default(),
        })
    }

    /// The store, for the admin API.
    pub fn store(&self) -> &dyn ApprovalStorage {
        self.store.as_ref()
    }

    /// How long an approved request may wait for its retry.
    pub fn use_within(&self) -> Duration {
        self.use_within
    }

    /// Now, in unix milliseconds, as approvals measure time.
    pub fn now_ms(&self) -> i64 {
        unix_ms(self.clock.as_ref())
    }

    /// Gets the call approved, or says what the client must do.
    pub async fn obtain(&self, a: &Asking<'_>) -> Result<Obtained, RpcError> {
        let hash = arguments_hash(a.arguments)?;
        let state = a.params.get("requestState").and_then(Value::as_str).and_then(|s| s.strip_prefix(STATE_PREFIX));
        let out_of_band = a.emergency
            || a.settings.approval == Some(ApprovalFlow::OutOfBand)
            || (a.settings.approval.is_none() && self.out_of_band_classes.contains(&a.tool.class));
        if let Some(sealed) = state {
            if out_of_band {
                return Err(refused(
                    "this call needs an operator's approval; an approval given in the client does not count",
                    "out_of_band",
                ));
            }
            return self.redeem_in_band(a, sealed, &hash).await;
        }
        // A client asked in band must be able to show the question: one that did not declare
        // elicitation goes to an operator.
        let can_elicit = a.ctx.has_capability("elicitation");
        if !out_of_band && can_elicit && a.ctx.era() == warden_protocol::Era::Modern {
            return self.ask_in_band(a, &hash).await;
        }
        if !out_of_band && can_elicit && a.out.can_request() {
            return self.ask_by_elicitation(a, &hash).await;
        }
        self.out_of_band(a, &hash).await
    }

    async fn request(&self, a: &Asking<'_>, hash: &str, flow: &str, lasts: Duration) -> Result<Approval, RpcError> {
        let principal = &a.ctx.principal;
        let key = principal.identity_key();
        let (arguments, _) = self.auditor.stored_arguments(a.arguments.cloned());
        let arguments = arguments.unwrap_or_else(|| json!({}));
        let session = a.ctx.session.as_ref().map(|s| s.id.clone());
        let request = ApprovalRequest {
            server: a.server,
            tool: &a.tool.name,
            exposed: a.exposed,
            principal_key: &key,
            actor_id: &principal.subject,
            tenant: principal.tenant.as_deref(),
            session_id: session.as_deref(),
            request_id: Some(a.request_id),
            args_hash: hash,
            arguments: &arguments,
            reasons: &a.reasons,
            flow,
            expires_at_ms: self.now_ms() + lasts.as_millis() as i64,
        };
        let stored = self.store.request_capped(&request, Some(self.max_pending), self.now_ms()).await;
        let id = match stored.map_err(store_failed)? {
            Requested::Stored(id) => id,
            Requested::TooMany(n) => {
                tracing::warn!(subject = %principal.subject, pending = n, "refused another request for approval");
                return Err(RpcError::new(
                    error::RATE_LIMITED,
                    format!(
                        "Rate limited: {n} of your calls already wait for a human's approval (at most {}); \
                         wait until they are decided or expire",
                        self.max_pending
                    ),
                )
                .with_data(json!({ "limit": "pending_approvals", "pending": n, "max": self.max_pending })));
            }
        };
        let approval = self.store.get(&id).await.map_err(store_failed)?.ok_or_else(|| store_failed("vanished"))?;
        self.audit("approval_requested", &approval, None, &format!("{flow}: {}", a.reasons.join(", "))).await?;
        Ok(approval)
    }

    async fn audit(
        &self,
        event: &'static str,
        approval: &Approval,
        by: Option<&str>,
        note: &str,
    ) -> Result<(), RpcError> {
        self.auditor.approval(ApprovalEvent { event, approval, by, note }).await
    }

    /// What the user is shown: exactly which server, tool and arguments.
    fn question(&self, a: &Asking<'_>, arguments: &Value, id: &str) -> Value {
        // Every character a person would not see plainly (zero-width, bidi, tag characters,
        // escapes) is written out, so that what they approve is what they read.
        let shown = warden_store::pins::escaped(&serde_json::to_string_pretty(arguments).unwrap_or_default());
        let message = format!(
            "Approve this call? Warden holds it until you decide ({id}).\n\nServer: {}\nTool: {}\nWhy: {}\nArguments:\n{shown}",
            warden_store::pins::escaped(a.server),
            warden_store::pins::escaped(&a.tool.name),
            warden_store::pins::escaped(&a.reasons.join(", ")),
        );
        json!({
            "mode": "form",
            "message": message,
            "requestedSchema": {
                "type": "object",
                "properties": {
                    "approve": {
                        "type": "boolean",
                        "title": "Approve",
                        "description": format!("Let {} run on server {} with these arguments, once", a.tool.name, a.server),
                    }
                },
                "required": ["approve"],
            },
        })
    }

    fn binding(a: &Asking<'_>, hash: &str) -> String {
        binding(a.ctx, a.server, &a.tool.name, hash)
    }

    /// An approved call's server answered `input_required`: its `requestState` is sealed with
    /// the approval (bound like it, expiring with `approvals.ttl`), so the client's retry
    /// continues the approved call instead of asking again, and cannot be moved to other
    /// arguments or another caller.
    pub fn seal_continuation(
        &self,
        call: &Continuing<'_>,
        approval_id: &str,
        result: &mut Value,
    ) -> Result<(), RpcError> {
        let hash = arguments_hash(call.arguments)?;
        let binding = binding(call.ctx, call.server, call.tool, &hash);
        let inner = result.get("requestState").cloned().unwrap_or(Value::Null);
        let payload = json!({ "approval": approval_id, "state": inner }).to_string();
        let sealed = self
            .codec
            .seal_with(payload.as_bytes(), &SealOptions::new().associated_data(binding.as_bytes()).ttl(self.ttl));
        if let Some(obj) = result.as_object_mut() {
            obj.insert("requestState".into(), Value::String(format!("{CONTINUE_PREFIX}{sealed}")));
        }
        Ok(())
    }

    /// A retry continuing an approved call (see [`Approvals::seal_continuation`]): the approval
    /// id, with the server's own `requestState` put back in `params`. `None` when the request
    /// continues nothing; an error when its state is not valid for this call.
    pub async fn continuation(&self, call: &Continuing<'_>, params: &mut Value) -> Result<Option<String>, RpcError> {
        let Some(sealed) =
            params.get("requestState").and_then(Value::as_str).and_then(|s| s.strip_prefix(CONTINUE_PREFIX))
        else {
            return Ok(None);
        };
        let hash = arguments_hash(call.arguments)?;
        let opened = self.codec.open_with(sealed, binding(call.ctx, call.server, call.tool, &hash).as_bytes());
        let payload: Value =
            opened.ok().and_then(|bytes| serde_json::from_slice(&bytes).ok()).ok_or_else(invalid_state)?;
        let id = payload.get("approval").and_then(Value::as_str).ok_or_else(invalid_state)?.to_owned();
        {
            let key: [u8; 32] = Sha256::digest(sealed.as_bytes()).into();
            let mut spent = self.spent.lock().unwrap_or_else(|p| p.into_inner());
            if spent.len() >= MAX_SPENT || spent.contains_key(&key) {
                return Err(refused("this continuation of an approved call was already used", "used"));
            }
            spent.insert(key, self.clock.now() + self.ttl);
        }
        if let Some(shared) = self.shared.get() {
            let key: [u8; 32] = Sha256::digest(sealed.as_bytes()).into();
            match shared.spend("c", &key, self.ttl).await {
                Ok(true) => {}
                Ok(false) => return Err(refused("this continuation of an approved call was already used", "used")),
                Err(e) => {
                    tracing::error!("{e}: a continuation cannot be checked as unused, so it is refused");
                    return Err(refused(
                        "Warden cannot check that this continuation was not used: its shared state is unreachable",
                        "state",
                    ));
                }
            }
        }
        if let Some(obj) = params.as_object_mut() {
            match payload.get("state") {
                Some(Value::Null) | None => obj.remove("requestState"),
                Some(state) => obj.insert("requestState".into(), state.clone()),
            };
        }
        Ok(Some(id))
    }

    async fn ask_in_band(&self, a: &Asking<'_>, hash: &str) -> Result<Obtained, RpcError> {
        let approval = self.request(a, hash, "input_required", self.ttl).await?;
        let binding = Self::binding(a, hash);
        let sealed = self
            .codec
            .seal_with(approval.id.as_bytes(), &SealOptions::new().associated_data(binding.as_bytes()).ttl(self.ttl));
        let question = self.question(a, &approval.arguments, &approval.id);
        Ok(Obtained::Ask(json!({
            "resultType": "input_required",
            "inputRequests": { INPUT_KEY: { "method": "elicitation/create", "params": question } },
            "requestState": format!("{STATE_PREFIX}{sealed}"),
        })))
    }

    async fn redeem_in_band(&self, a: &Asking<'_>, sealed: &str, hash: &str) -> Result<Obtained, RpcError> {
        let binding = Self::binding(a, hash);
        let id = match self.codec.open_with(sealed, binding.as_bytes()) {
            Ok(id) => String::from_utf8(id).map_err(|_| invalid_state())?,
            Err(RequestStateError::Expired) => {
                return Err(refused("the approval request expired: call again to be asked anew", "expired"));
            }
            Err(_) => {
                tracing::warn!(subject = %a.ctx.principal.subject, tool = %a.tool.name,
                    "refused an approval state that is forged or belongs to another call or caller");
                return Err(invalid_state());
            }
        };
        let answer = a.params.get("inputResponses").and_then(|r| r.get(INPUT_KEY));
        self.settle(a, &id, hash, answer).await
    }

    async fn ask_by_elicitation(&self, a: &Asking<'_>, hash: &str) -> Result<Obtained, RpcError> {
        let approval = self.request(a, hash, "elicitation", self.ask_timeout).await?;
        let question = self.question(a, &approval.arguments, &approval.id);
        let _waiting = a.slot.waiting_on_client();
        match a.out.request("elicitation/create", Some(question), self.ask_timeout).await {
            Ok(answer) => self.settle(a, &approval.id, hash, Some(&answer)).await,
            Err(e) => {
                tracing::info!(id = %approval.id, "the client did not answer the approval question: {}", e.message);
                Err(refused("the client's user did not answer the approval question in time", "unanswered"))
            }
        }
    }

    /// Acts on the user's answer to an in-band question: an acceptance redeems the approval
    /// (once), anything else denies it.
    async fn settle(&self, a: &Asking<'_>, id: &str, hash: &str, answer: Option<&Value>) -> Result<Obtained, RpcError> {
        let key = a.ctx.principal.identity_key();
        let by = format!("{} (in the client)", a.ctx.principal.subject);
        let accepted = answer.is_some_and(|v| {
            v.get("action").and_then(Value::as_str) == Some("accept")
                && v.get("content").and_then(|c| c.get("approve")).and_then(Value::as_bool) == Some(true)
        });
        let now = self.now_ms();
        if !accepted {
            if self.store.decline(id, &key, &by).await.map_err(store_failed)?
                && let Some(approval) = self.store.get(id).await.map_err(store_failed)?
            {
                self.audit("approval_denied", &approval, Some(&by), "declined in the client").await?;
            }
            return Err(RpcError::new(error::APPROVAL_DENIED, "the call was not approved by the client's user")
                .with_data(json!({ "approvalId": id, "status": "denied" })));
        }
        let redeemed =
            self.store.redeem(id, &key, a.server, &a.tool.name, hash, &by, now).await.map_err(store_failed)?;
        if !redeemed {
            return Err(refused("this approval was already used, has expired, or is not for this call", "used"));
        }
        let approval = self.store.get(id).await.map_err(store_failed)?.ok_or_else(|| store_failed("vanished"))?;
        self.audit("approval_granted", &approval, Some(&by), "accepted in the client").await?;
        self.audit("approval_used", &approval, None, "the call proceeds").await?;
        Ok(Obtained::Approved(id.to_owned()))
    }

    async fn out_of_band(&self, a: &Asking<'_>, hash: &str) -> Result<Obtained, RpcError> {
        let key = a.ctx.principal.identity_key();
        let now = self.now_ms();
        let found = self.store.find_for(&key, a.server, &a.tool.name, hash, now).await.map_err(store_failed)?;
        let approval = match found {
            Some(approval) if approval.status == "approved" => {
                if self
                    .store
                    .use_once(&approval.id, &key, a.server, &a.tool.name, hash, now)
                    .await
                    .map_err(store_failed)?
                {
                    self.audit("approval_used", &approval, None, "the call proceeds").await?;
                    return Ok(Obtained::Approved(approval.id));
                }
                return Err(refused("this approval was just used by another call", "used"));
            }
            Some(approval) if approval.status == "denied" => {
                let by = approval.decided_by.as_deref().unwrap_or("an operator");
                return Err(RpcError::new(
                    error::APPROVAL_DENIED,
                    format!("this call was denied by {} ({})", crate::names::shown(by), approval.id),
                )
                .with_data(json!({ "approvalId": approval.id, "status": "denied" })));
            }
            Some(pending) => pending,
            None => self.request(a, hash, "out_of_band", self.ttl).await?,
        };
        let how = match (&self.approve_at, &self.console) {
            (Some(at), _) => format!("approve it at {at}"),
            (None, Some(console)) => format!(
                "an operator approves it in the console ({console}/console/#/approvals/{id}) or with `warden approvals approve {id}`",
                id = approval.id
            ),
            (None, None) => format!("an operator approves it with `warden approvals approve {}`", approval.id),
        };
        Err(RpcError::new(
            error::APPROVAL_PENDING,
            format!(
                "tools/call {} needs a human's approval: pending as {}; {how}, then retry the same call with the same arguments",
                crate::names::shown(a.exposed),
                approval.id
            ),
        )
        .with_data(json!({
            "approvalId": approval.id,
            "status": "pending",
            "expiresAt": approval.expires_at.to_rfc3339(),
            "reasons": a.reasons,
            "approve": how,
        })))
    }

    /// Expires what has passed its time, and audits each.
    pub async fn expire(&self) {
        let now = self.clock.now();
        self.spent.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, until| *until > now);
        match self.store.expire(self.now_ms()).await {
            Ok(expired) => {
                for approval in expired {
                    let _ = self.audit("approval_expired", &approval, None, "no decision or use in time").await;
                }
            }
            Err(e) => tracing::warn!("approvals could not be expired: {e}"),
        }
    }
}

fn refused(why: &str, status: &str) -> RpcError {
    RpcError::new(error::APPROVAL_REQUIRED, format!("Approval refused: {why}")).with_data(json!({ "status": status }))
}

fn invalid_state() -> RpcError {
    refused("the approval state is not valid for this call", "invalid")
}

fn store_failed(e: impl std::fmt::Display) -> RpcError {
    tracing::error!("the approval store failed: {e}");
    RpcError::new(error::APPROVAL_REQUIRED, "approvals are unavailable right now: refused")
        .with_data(json!({ "status": "unavailable" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            policies: vec!["p".into()],
            reasons: vec![],
            errors: vec![],
            constraints: Default::default(),
        }
    }

    #[test]
    fn taint_and_emergency_hold_high_impact_calls_only() {
        let mut d = allow();
        assert!(reasons(&mut d, ToolClass::Read, true, true).is_empty(), "reads are never held");
        assert_eq!(d.verdict, Verdict::Allow);
        let mut d = allow();
        assert_eq!(reasons(&mut d, ToolClass::Write, true, false), vec!["tainted"]);
        assert_eq!(d.verdict, Verdict::RequireApproval);
        let mut d = allow();
        assert_eq!(reasons(&mut d, ToolClass::Irreversible, false, true), vec!["emergency"]);
        let mut d = allow();
        assert!(reasons(&mut d, ToolClass::Write, false, false).is_empty());
        assert_eq!(d.verdict, Verdict::Allow, "a clean context writes as the policies allow");
        let mut d = Decision { verdict: Verdict::Deny, ..allow() };
        reasons(&mut d, ToolClass::Write, true, true);
        assert_eq!(d.verdict, Verdict::Deny, "a denial stays a denial");
        let mut d = Decision { verdict: Verdict::RequireApproval, ..allow() };
        assert_eq!(reasons(&mut d, ToolClass::Write, true, false), vec!["policy p", "tainted"]);
    }

    #[test]
    fn the_hash_of_arguments_binds_what_the_server_reads() {
        let a = arguments_hash(Some(&json!({ "a": 1, "b": [1, 2] }))).unwrap();
        assert_ne!(a, arguments_hash(Some(&json!({ "a": 1, "b": [2, 1] }))).unwrap());
        assert_eq!(arguments_hash(None).unwrap(), arguments_hash(Some(&json!({}))).unwrap());
        let one: Value = serde_json::from_str(r#"{"amount":1}"#).unwrap();
        let one_point_oh: Value = serde_json::from_str(r#"{"amount":1.0}"#).unwrap();
        assert_ne!(
            arguments_hash(Some(&one)).unwrap(),
            arguments_hash(Some(&one_point_oh)).unwrap(),
            "equal under RFC 8785, different bytes at the server"
        );
        let escaped: Value = serde_json::from_str(r#"{"amount":1,"to":"\u0041"}"#).unwrap();
        let plain: Value = serde_json::from_str(r#"{"amount":1,"to":"A"}"#).unwrap();
        assert_eq!(
            arguments_hash(Some(&escaped)).unwrap(),
            arguments_hash(Some(&plain)).unwrap(),
            "the same bytes reach the server: Warden writes the JSON it forwards"
        );
    }
}
