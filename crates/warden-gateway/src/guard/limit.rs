//! Limits on callers (R5): token buckets and daily budgets per principal and per tool, and a
//! guard on how many calls one context has in flight and how deeply they nest.
//!
//! A context is a legacy session, or for 2026-07-28 clients a principal's client. A call is one
//! level deeper than the calls of its context that are waiting on the client (a server's sampling
//! or elicitation request relayed to it, or a call parked for `input_required`): an agent that
//! answers a sampling request by calling a tool that samples again, and so on, is stopped at
//! `max_call_depth`.

use super::forward::parked::{PARKED_PREFIX, Parked};
use super::{Flow, Request, RequestGuard};
use crate::catalogue::{CallKind, Route};
use crate::client::ClientContext;
use crate::config::Config;
use crate::config::state::Unavailable;
use crate::error::GatewayError;
use crate::state::{Refusal, SharedState};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use warden_policy::clock::Clock;
use warden_policy::limits::{LimitExceeded, LimitSettings, Limits};
use warden_protocol::{RpcError, error};

#[derive(Default)]
struct ContextCalls {
    in_flight: u32,
    waiting: u32,
}

/// The limits in force.
pub struct CallLimits {
    rates: Limits,
    /// The buckets, budgets and context counts every gateway shares (`[state] redis`).
    shared: Option<Arc<SharedState>>,
    on_unavailable: Unavailable,
    max_depth: u32,
    max_in_flight: u32,
    contexts: Mutex<HashMap<String, ContextCalls>>,
}

impl CallLimits {
    /// The limits a validated configuration describes.
    pub fn from_config(config: &Config, clock: Arc<dyn Clock>) -> Result<CallLimits, GatewayError> {
        Self::build(config, clock).map_err(|e| GatewayError::Config(format!("limits: {e}")))
    }

    fn build(config: &Config, clock: Arc<dyn Clock>) -> Result<CallLimits, String> {
        let l = &config.limits;
        let mut settings = LimitSettings {
            per_principal: l.per_principal.as_ref().map(|r| r.parse()).transpose()?,
            per_tool: l.per_tool.as_ref().map(|r| r.parse()).transpose()?,
            daily_per_principal: l.daily_calls,
            ..Default::default()
        };
        for (key, t) in &config.tools {
            if let Some(r) = &t.rate {
                settings.tool_rates.insert(key.clone(), r.parse()?);
            }
            if let Some(d) = t.daily_calls {
                settings.daily_per_tool.insert(key.clone(), d);
            }
        }
        Ok(CallLimits {
            rates: Limits::new(&settings, clock)?,
            shared: None,
            on_unavailable: config.state.on_unavailable,
            max_depth: l.max_call_depth,
            max_in_flight: l.max_concurrent_calls,
            contexts: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one call from the caller's buckets and budgets (and the tool's, for `server/tool`).
    /// The same limits, kept in `shared` (`[state] redis`) when there is one.
    pub fn shared(mut self, shared: Option<Arc<crate::state::SharedState>>) -> CallLimits {
        self.shared = shared;
        self
    }

    /// With `[state] redis`, the buckets and budgets are the ones every gateway shares.
    pub async fn take(&self, ctx: &ClientContext, server: &str, tool: Option<&str>) -> Result<(), RpcError> {
        let tool = tool.map(|t| format!("{server}/{t}"));
        let key = ctx.principal.identity_key();
        let Some(shared) = &self.shared else {
            return self.rates.take(&key, tool.as_deref()).map_err(|e| limited(&e));
        };
        match shared.take(&self.rates.plan(&key, tool.as_deref())).await {
            Ok(charged) => charged.map_err(|e| limited(&e)),
            Err(e) if self.on_unavailable == Unavailable::Local => {
                tracing::warn!("{e}: limiting by this gateway's own counters");
                self.rates.take(&key, tool.as_deref()).map_err(|e| limited(&e))
            }
            Err(e) => {
                tracing::error!("{e}: calls are refused until it returns");
                Err(unreachable())
            }
        }
    }

    /// How deeply a call of this context would be nested now (1 for a direct call), with
    /// `parked` calls of its caller waiting for the client.
    pub fn depth(&self, ctx: &ClientContext, parked: u32) -> u32 {
        let contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        1 + contexts.get(&context_key(ctx)).map_or(0, |c| c.waiting) + parked
    }

    /// Admits a call into its context, or refuses it when the context has too many calls in
    /// flight or nested, counting this gateway's calls only. The returned guard holds the place
    /// until the call ends.
    pub fn enter(self: &Arc<Self>, ctx: &ClientContext, parked: u32) -> Result<CallSlot, RpcError> {
        let key = context_key(ctx);
        let mut contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        let c = contexts.entry(key.clone()).or_default();
        let depth = 1 + c.waiting + parked;
        if depth > self.max_depth {
            return Err(self.too_deep(depth));
        }
        if c.in_flight >= self.max_in_flight {
            return Err(too_many(c.in_flight));
        }
        c.in_flight += 1;
        Ok(CallSlot { limits: self.clone(), key, depth, shared: None })
    }

    /// Admits a call into its context and charges it to the caller's (and, for `server/tool`,
    /// the tool's) limits, when `charge` names them (a call resuming one already charged does
    /// not). With `[state] redis` the context's calls are counted, and the limits kept, across
    /// gateways, all in one round trip; with Redis away, as [`CallLimits::take`] says.
    pub async fn admit(
        self: &Arc<Self>,
        ctx: &ClientContext,
        parked: u32,
        charge: Option<(&str, Option<&str>)>,
    ) -> Result<CallSlot, RpcError> {
        let local = async {
            let slot = self.enter(ctx, parked)?;
            if let Some((server, tool)) = charge {
                self.take_here(ctx, server, tool)?;
            }
            Ok(slot)
        };
        let Some(shared) = &self.shared else { return local.await };
        let key = context_key(ctx);
        let identity = ctx.principal.identity_key();
        let plan = match charge {
            Some((server, tool)) => self.rates.plan(&identity, tool.map(|t| format!("{server}/{t}")).as_deref()),
            None => Default::default(),
        };
        let admission = crate::state::Admission {
            context: &key,
            max_in_flight: self.max_in_flight,
            max_depth: self.max_depth,
            parked,
        };
        match shared.admit(Some(&admission), &plan).await {
            Ok(Ok(depth)) => {
                // Also counted here, for the depth policies see (`context.depth`).
                let mut contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
                contexts.entry(key.clone()).or_default().in_flight += 1;
                Ok(CallSlot { limits: self.clone(), key, depth, shared: Some(shared.clone()) })
            }
            Ok(Err(Refusal::Limited(e))) => Err(limited(&e)),
            Ok(Err(Refusal::TooDeep(depth))) => Err(self.too_deep(depth)),
            Ok(Err(Refusal::TooMany(n))) => Err(too_many(n)),
            Err(e) if self.on_unavailable == Unavailable::Local => {
                tracing::warn!("{e}: limiting by this gateway's own counters");
                local.await
            }
            Err(e) => {
                tracing::error!("{e}: calls are refused until it returns");
                Err(unreachable())
            }
        }
    }

    fn take_here(&self, ctx: &ClientContext, server: &str, tool: Option<&str>) -> Result<(), RpcError> {
        let tool = tool.map(|t| format!("{server}/{t}"));
        self.rates.take(&ctx.principal.identity_key(), tool.as_deref()).map_err(|e| limited(&e))
    }

    fn too_deep(&self, depth: u32) -> RpcError {
        RpcError::new(
            error::CALL_LIMIT,
            format!("calls are nested {depth} deep in this context, more than the {} allowed", self.max_depth),
        )
    }

    /// Forgets idle buckets and past days.
    pub fn tidy(&self) {
        self.rates.tidy();
    }
}

fn unreachable() -> RpcError {
    RpcError::new(
        error::INTERNAL_ERROR,
        "Warden cannot check your call limits: its shared state is unreachable; retry shortly",
    )
    .with_data(json!({ "retryAfterMs": 1000 }))
}

fn too_many(in_flight: u32) -> RpcError {
    RpcError::new(error::CALL_LIMIT, format!("this context already has {in_flight} calls in flight, the most allowed"))
}

fn limited(e: &LimitExceeded) -> RpcError {
    let ms = e.retry_after.as_millis().max(1) as u64;
    let what = match e.limit {
        "principal" => "your rate limit",
        "tool" => "the rate limit for this tool",
        "daily" => "your daily budget",
        _ => "your daily budget for this tool",
    };
    let secs = ms.div_ceil(1000);
    RpcError::new(error::RATE_LIMITED, format!("Rate limited: {what} is used up; retry after {secs}s"))
        .with_data(json!({ "limit": e.limit, "retryAfterMs": ms, "retryAfter": secs }))
}

/// A call's place in its context.
pub struct CallSlot {
    limits: Arc<CallLimits>,
    key: String,
    /// How deeply the call is nested (1 for a direct call).
    pub depth: u32,
    /// Where the place is also counted for every gateway.
    shared: Option<Arc<SharedState>>,
}

impl CallSlot {
    /// Marks the call as waiting on the client until the guard is dropped: calls the client
    /// makes meanwhile are nested one level deeper (on every gateway, with shared state).
    pub fn waiting_on_client(&self) -> WaitingGuard {
        let mut contexts = self.limits.contexts.lock().unwrap_or_else(|p| p.into_inner());
        contexts.entry(self.key.clone()).or_default().waiting += 1;
        if let Some(shared) = &self.shared {
            in_background(shared, &self.key, |s, k| async move { s.wait(&k, 1).await });
        }
        WaitingGuard { limits: self.limits.clone(), key: self.key.clone(), shared: self.shared.clone() }
    }
}

/// Runs a counter change on the shared state without holding anyone up (a change that fails
/// leaves a count that expires with [`crate::state::COUNTER_TTL`]: refusing, never admitting).
fn in_background<F, Fut>(shared: &Arc<SharedState>, key: &str, change: F)
where
    F: FnOnce(Arc<SharedState>, String) -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::state::StateError>> + Send + 'static,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
    let work = change(shared.clone(), key.to_owned());
    runtime.spawn(async move {
        if let Err(e) = work.await {
            tracing::warn!("{e}: a context's count in the shared state waits for its expiry");
        }
    });
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            in_background(shared, &self.key, |s, k| async move { s.leave(&k).await });
        }
        let mut contexts = self.limits.contexts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = contexts.get_mut(&self.key) {
            c.in_flight = c.in_flight.saturating_sub(1);
            if c.in_flight == 0 && c.waiting == 0 {
                contexts.remove(&self.key);
            }
        }
    }
}

/// Held while a call waits on the client.
pub struct WaitingGuard {
    limits: Arc<CallLimits>,
    key: String,
    shared: Option<Arc<SharedState>>,
}

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            in_background(shared, &self.key, |s, k| async move { s.wait(&k, -1).await });
        }
        let mut contexts = self.limits.contexts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = contexts.get_mut(&self.key) {
            c.waiting = c.waiting.saturating_sub(1);
            if c.in_flight == 0 && c.waiting == 0 {
                contexts.remove(&self.key);
            }
        }
    }
}

/// The limit guard: admits calls into their context (depth and calls in flight) and charges the
/// caller's rate limits and budgets. A retry resuming a call Warden parked for the same caller
/// was charged when it was first made.
pub struct Limit {
    limits: Arc<CallLimits>,
    parked: Arc<Parked>,
}

impl Limit {
    /// The guard over `limits`, knowing the calls `parked` for clients.
    pub fn new(limits: Arc<CallLimits>, parked: Arc<Parked>) -> Limit {
        Limit { limits, parked }
    }
}

#[async_trait::async_trait]
impl RequestGuard for Limit {
    fn name(&self) -> &'static str {
        "limit"
    }

    async fn check(&self, request: &mut Request<'_>) -> Result<Flow, RpcError> {
        let ctx = request.ctx;
        match request.route {
            Route::Call(kind) => {
                let state = request.params.get("requestState").and_then(Value::as_str);
                request.resumes = state.is_some_and(|s| {
                    s.starts_with(PARKED_PREFIX)
                        && self.parked.holds(s, &ctx.principal, request.method, &request.resume_key())
                });
                let Some(target) = &request.target else {
                    // The gateway's own resource (a released quarantine item): charged as a call.
                    self.limits.take(ctx, "", None).await?;
                    return Ok(Flow::Next);
                };
                let tool = (kind == CallKind::Tool).then_some(target.upstream_name.as_str());
                let charge = (!request.resumes).then_some((target.server.name.as_str(), tool));
                let parked = self.parked.count_for(&ctx.principal);
                request.slot = Some(self.limits.admit(ctx, parked, charge).await?);
            }
            Route::Complete => {
                let server = request.server().map(|s| s.name.clone()).unwrap_or_default();
                self.limits.take(ctx, &server, None).await?;
            }
            _ => {}
        }
        Ok(Flow::Next)
    }
}

/// The context a request belongs to: its legacy session, or (sessionless) its principal. Nothing
/// the client chooses per request (such as the name it gives itself) makes a new context.
pub fn context_key(ctx: &ClientContext) -> String {
    match &ctx.session {
        Some(s) => format!("session:{}", s.id),
        None => format!("principal:{}", ctx.principal.identity_key()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use warden_policy::clock::SystemClock;
    use warden_policy::{Principal, PrincipalClass};

    fn limits(text: &str) -> Arc<CallLimits> {
        let c = Config::parse(text, "w.toml").unwrap();
        Arc::new(CallLimits::from_config(&c, Arc::new(SystemClock)).unwrap())
    }

    fn ctx(subject: &str, client: &str) -> ClientContext {
        ClientContext {
            principal: Arc::new(Principal::new(subject, PrincipalClass::User)),
            version: warden_protocol::ProtocolVersion::V2026_07_28,
            capabilities: Arc::new(json!({})),
            client_info: Arc::new(json!({ "name": client })),
            session: None,
            log_level: None,
            header_params: None,
        }
    }

    #[test]
    fn calls_made_while_the_client_is_asked_are_nested_deeper() {
        let l = limits("[limits]\nmax_call_depth = 2\n");
        let alice = ctx("alice", "agent");
        let outer = l.enter(&alice, 0).unwrap();
        assert_eq!(outer.depth, 1);
        let side = l.enter(&alice, 0).unwrap();
        assert_eq!(side.depth, 1, "concurrent calls are not nested");
        let waiting = outer.waiting_on_client();
        let inner = l.enter(&alice, 0).unwrap();
        assert_eq!(inner.depth, 2, "a call made while another waits on the client");
        let w2 = inner.waiting_on_client();
        let e = l.enter(&alice, 0).err().expect("three deep is too deep");
        assert_eq!(e.code, error::CALL_LIMIT);
        let e = l.enter(&ctx("alice", "other-client"), 0).err().expect("a new client name is the same context");
        assert_eq!(e.code, error::CALL_LIMIT);
        assert_eq!(l.enter(&ctx("bob", "agent"), 0).unwrap().depth, 1, "another principal is another context");
        assert_eq!(l.enter(&alice, 5).err().map(|e| e.code), Some(error::CALL_LIMIT), "parked calls count too");
        drop((waiting, w2, side));
        drop(inner);
        drop(outer);
        assert!(l.contexts.lock().unwrap().is_empty(), "nothing is kept for idle contexts");
    }

    #[test]
    fn fan_out_is_bounded_per_context() {
        let l = limits("[limits]\nmax_concurrent_calls = 3\n");
        let alice = ctx("alice", "agent");
        let held: Vec<_> = (0..3).map(|_| l.enter(&alice, 0).unwrap()).collect();
        assert_eq!(l.enter(&alice, 0).err().map(|e| e.code), Some(error::CALL_LIMIT));
        assert!(l.enter(&ctx("bob", "agent"), 0).is_ok());
        drop(held);
        assert!(l.enter(&alice, 0).is_ok());
    }

    #[tokio::test]
    async fn refusals_carry_the_retry_after() {
        let l = limits("[limits]\nper_principal = { rate = \"1/h\" }\n");
        let alice = ctx("alice", "agent");
        l.take(&alice, "demo", Some("echo")).await.unwrap();
        let e = l.take(&alice, "demo", Some("echo")).await.unwrap_err();
        assert_eq!(e.code, error::RATE_LIMITED);
        let data = e.data.unwrap();
        assert_eq!(data["limit"], "principal");
        assert!(data["retryAfterMs"].as_u64().unwrap() > 3_500_000);
    }
}
