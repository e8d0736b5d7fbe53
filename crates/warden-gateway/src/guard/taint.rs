//! Taint (R3): which contexts have read untrusted content. While a context is tainted, its calls
//! of `write` and `irreversible` tools need a human's approval whatever the policies allow, and
//! the policies see `context.tainted`.
//!
//! A context is a legacy session, or (2026-07-28, no session) the authenticated principal with
//! its OAuth client ([`super::limit::context_key`]): nothing a client chooses per request, such as
//! the name it gives itself, starts a clean context.
//!
//! What taints ([`Source`]), on every path content reaches a client:
//! - every resource read, and every resource list, unless the server is `trusted_resources`;
//! - anything a server not marked `trusted_content` says to the client's model: tool and prompt
//!   results (per tool: `trusted_content`), its errors, completion values, progress and log
//!   messages, sampling requests;
//! - anything the injection scanner flags (medium or above) or could not read whole, from any
//!   server, trusted or not, on any of those paths, list entries included;
//! - a released quarantined result.
//!
//! Tool, prompt and template definitions taint only when the scanner flags them: they are pinned
//! and reviewed (the integrity guard), not data a third party wrote. How it clears, and nothing
//! else clears it:
//! - a legacy session's taint ends with the session;
//! - a sessionless context's taint ends `[taint] ttl` after the last untrusted content it read;
//! - taint is held in memory: a restart of the gateway clears it.

use super::audit::Auditor;
use super::sanitize::{MAX_FINDINGS, OutputGuard};
use super::{MessageGuard, Reply, Request, ResponseGuard, ServerMessage};
use crate::catalogue::{CallKind, ListKind, Route, ServerKind};
use crate::client::ClientContext;
use crate::clock::Clock;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_protocol::RpcError;

/// Most contexts tracked; past this, the oldest sessionless taint is dropped first.
const MAX_CONTEXTS: usize = 100_000;

/// What made a context tainted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A resource was read.
    Resource,
    /// A tool or prompt result of a server (or tool) not trusted for its content.
    UntrustedResult,
    /// The injection scanner flagged the result.
    Injection,
    /// The result was too large or deep to scan whole.
    Unscanned,
    /// A quarantined result a person released was read.
    Released,
    /// A server's notification or request (progress, log, sampling) reached the client.
    ServerMessage,
}

impl Source {
    /// The source's name, as the audit log shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Resource => "resource_read",
            Source::UntrustedResult => "untrusted_result",
            Source::Injection => "injection",
            Source::Unscanned => "unscanned",
            Source::Released => "released_quarantine",
            Source::ServerMessage => "server_message",
        }
    }
}

struct Tainted {
    last: Instant,
    session: bool,
}

/// The tainted contexts.
pub struct Taint {
    contexts: Mutex<HashMap<String, Tainted>>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    /// Shared with the other gateways (`[state] redis`), and how long a session's taint is kept
    /// there (a session idle that long is gone).
    shared: Option<(Arc<crate::state::SharedState>, Duration)>,
    /// Contexts marked here whose mark may not have reached the shared state yet.
    unsynced: Mutex<std::collections::HashSet<String>>,
}

impl Taint {
    /// Taint whose sessionless contexts clear `ttl` after their last untrusted read.
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Taint {
        Taint { contexts: Mutex::new(HashMap::new()), ttl, clock, shared: None, unsynced: Mutex::default() }
    }

    /// The same, shared through `state` with the other gateways; a session's taint is kept there
    /// for `session_ttl` after its last mark.
    pub fn shared(mut self, state: Option<Arc<crate::state::SharedState>>, session_ttl: Duration) -> Taint {
        self.shared = state.map(|s| (s, session_ttl));
        self
    }

    fn shared_ttl(&self, ctx: &ClientContext, shared: &(Arc<crate::state::SharedState>, Duration)) -> Duration {
        if ctx.session.is_some() { shared.1 } else { self.ttl }
    }

    /// Makes sure the mark of `ctx` reached the shared state before the answer that follows it
    /// goes out (so the caller's next request, on any gateway, finds it).
    pub async fn flush(&self, ctx: &ClientContext) {
        let Some(shared) = &self.shared else { return };
        let key = super::limit::context_key(ctx);
        if !self.unsynced.lock().unwrap_or_else(|p| p.into_inner()).contains(&key) {
            return;
        }
        match shared.0.mark_tainted(&key, self.shared_ttl(ctx, shared)).await {
            Ok(()) => {
                self.unsynced.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            }
            Err(e) => tracing::error!("{e}: a taint could not be shared; other gateways treat the context as tainted"),
        }
    }

    /// Whether the request's context is tainted, here or on another gateway. When the shared
    /// state cannot say, it is.
    pub async fn is_tainted_anywhere(&self, ctx: &ClientContext) -> bool {
        if self.is_tainted(ctx) {
            return true;
        }
        let Some((shared, _)) = &self.shared else { return false };
        shared.is_tainted(&super::limit::context_key(ctx)).await.unwrap_or_else(|e| {
            tracing::warn!("{e}: the context counts as tainted");
            true
        })
    }

    /// Marks the request's context tainted (again: a sessionless context's clock restarts);
    /// whether it was not tainted before.
    pub fn mark(&self, ctx: &ClientContext) -> bool {
        let now = self.clock.now();
        let key = super::limit::context_key(ctx);
        let mut contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        if contexts.len() >= MAX_CONTEXTS && !contexts.contains_key(&key) {
            self.forget_expired(&mut contexts, now);
        }
        let session = ctx.session.is_some();
        let before = contexts.insert(key.clone(), Tainted { last: now, session });
        if let Some(shared) = &self.shared {
            // Written now, in the background; `flush` waits for it before the answer goes out.
            self.unsynced.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone());
            let (state, ttl) = (shared.0.clone(), self.shared_ttl(ctx, shared));
            tokio::spawn(async move {
                if let Err(e) = state.mark_tainted(&key, ttl).await {
                    tracing::error!("{e}: a taint could not be shared yet");
                }
            });
        }
        before.is_none_or(|t| !self.live(&t, now))
    }

    /// Whether the request's context is tainted.
    pub fn is_tainted(&self, ctx: &ClientContext) -> bool {
        let contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        contexts.get(&super::limit::context_key(ctx)).is_some_and(|t| self.live(t, self.clock.now()))
    }

    fn live(&self, t: &Tainted, now: Instant) -> bool {
        t.session || now.saturating_duration_since(t.last) < self.ttl
    }

    fn forget_expired(&self, contexts: &mut HashMap<String, Tainted>, now: Instant) {
        contexts.retain(|_, t| self.live(t, now));
    }

    /// Drops sessionless taint past its time.
    pub fn tidy(&self) {
        let mut contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        self.forget_expired(&mut contexts, self.clock.now());
    }

    /// Forgets a session that ended here, and in the shared state where it ended `everywhere`.
    /// A session that only left this gateway takes its taint along: a mark not yet shared is
    /// written first.
    pub fn forget_session(&self, session_id: &str, everywhere: bool) {
        let key = format!("session:{session_id}");
        self.contexts.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        let unsynced = self.unsynced.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        let Some((state, ttl)) = &self.shared else { return };
        let (state, ttl) = (state.clone(), *ttl);
        if everywhere {
            tokio::spawn(async move {
                let _ = state.clear_taint(&key).await;
            });
        } else if unsynced {
            tokio::spawn(async move {
                if let Err(e) = state.mark_tainted(&key, ttl).await {
                    tracing::error!("{e}: the taint of a session that left this gateway was not shared");
                }
            });
        }
    }
}

/// The taint guard: screens what reaches a client for instructions aimed at the model, and
/// taints the context it reaches when that content is untrusted or flagged.
pub struct TaintGuard {
    taint: Arc<Taint>,
    output: Arc<OutputGuard>,
    auditor: Arc<Auditor>,
}

impl TaintGuard {
    /// The guard over `taint`, scanning with `output`'s injection scanner.
    pub fn new(taint: Arc<Taint>, output: Arc<OutputGuard>, auditor: Arc<Auditor>) -> TaintGuard {
        TaintGuard { taint, output, auditor }
    }

    /// Taints `ctx` because it read `what` from `server`; the first taint of a context is an
    /// audit row (`taint`).
    pub fn taint(&self, ctx: &ClientContext, source: Source, server: &str, what: &str) {
        if self.taint.mark(ctx) {
            let what = crate::names::shown(what);
            tracing::info!(%server, %what, source = source.as_str(), "the context is now tainted");
            self.auditor.tainted(ctx, source.as_str(), server, &what);
        }
    }

    /// Scans `content` (a list of definitions when `definitions`) and taints on what is found;
    /// the findings are recorded in `findings`.
    fn screen(
        &self,
        ctx: &ClientContext,
        server: &str,
        what: &str,
        (content, definitions): (&Value, bool),
        findings: &mut Vec<Value>,
    ) -> warden_inspect::Injection {
        let found =
            if definitions { self.output.definition_injections(content) } else { self.output.injections(content) };
        let room = MAX_FINDINGS.saturating_sub(findings.len());
        findings.extend(found.findings.iter().map(|f| json!({ "rule": f.rule, "at": f.pointer })).take(room));
        if found.at_least(warden_inspect::poison::Severity::Medium) {
            let rules: Vec<&str> = found.findings.iter().map(|f| f.rule).collect();
            tracing::warn!(what = %crate::names::shown(what), ?rules,
                "content tried to instruct the model: its context is tainted");
            self.taint(ctx, Source::Injection, server, what);
        }
        if found.incomplete {
            // What was not read may instruct the model: the context is tainted as if it did.
            findings.push(json!({ "rule": "scan.incomplete" }));
            self.taint(ctx, Source::Unscanned, server, what);
        }
        found
    }
}

/// Why a reply from these servers taints its context whatever it says, if it does.
fn untrusted(request: &Request<'_>) -> Option<Source> {
    let any = |trusted: &dyn Fn(&crate::servers::ServerInfo) -> bool| request.sources.iter().any(|s| !trusted(s));
    match request.route {
        Route::Call(CallKind::Resource) | Route::List(ListKind::Resources) => {
            any(&|s| s.trusted_resources).then_some(Source::Resource)
        }
        Route::Call(CallKind::Tool) => {
            let own = request.tool.as_ref().and_then(|t| t.settings.trusted_content);
            any(&|s| own.unwrap_or(s.trusted_content)).then_some(Source::UntrustedResult)
        }
        Route::Call(CallKind::Prompt) | Route::Complete => {
            any(&|s| s.trusted_content).then_some(Source::UntrustedResult)
        }
        _ => None,
    }
}

#[async_trait::async_trait]
impl ResponseGuard for TaintGuard {
    fn name(&self) -> &'static str {
        "taint"
    }

    async fn check(&self, request: &mut Request<'_>, reply: &mut Reply) -> Result<(), RpcError> {
        if request.route == Route::Call(CallKind::Resource)
            && request.addressed().starts_with(super::quarantine::URI_PREFIX)
            && matches!(reply, Reply::Result(_))
        {
            self.taint(request.ctx, Source::Released, "", request.addressed());
            return Ok(());
        }
        if request.sources.is_empty() {
            return Ok(());
        }
        // A list's entries are definitions, judged as such.
        let definitions = matches!(request.route, Route::List(_)) && matches!(reply, Reply::Result(_));
        let error;
        let content = match reply {
            Reply::Result(v) => &*v,
            Reply::Error(e) => {
                error = json!({ "message": e.message, "data": e.data });
                &error
            }
            Reply::ServerError(_) => return Ok(()),
        };
        let server = request.sources.first().map(|s| s.name.clone()).unwrap_or_default();
        let what = request.addressed().to_owned();
        let found = self.screen(request.ctx, &server, &what, (content, definitions), &mut request.note.findings);
        if found.at_least(warden_inspect::poison::Severity::Medium) {
            request.note.injections = found.findings.iter().map(|f| f.rule).collect();
        }
        // Not the answer yet: what the client must send back is screened, and the answer taints.
        if !reply.is_input_required()
            && let Some(source) = untrusted(request)
        {
            self.taint(request.ctx, source, &server, &what);
        }
        self.taint.flush(request.ctx).await;
        request.screened = Some(found);
        Ok(())
    }
}

impl MessageGuard for TaintGuard {
    fn name(&self) -> &'static str {
        "taint"
    }

    fn check(&self, message: &mut ServerMessage<'_>) -> Result<(), RpcError> {
        let Some(ctx) = message.to else { return Ok(()) };
        // What reaches the model: progress and log text, sampling prompts. An elicitation is the
        // user's, roots and pings carry nothing, list changes and updates no text.
        let reaches_model = matches!(
            message.kind,
            Some(ServerKind::Progress | ServerKind::Log | ServerKind::Sampling | ServerKind::Elicitation)
        );
        if !reaches_model {
            return Ok(());
        }
        let content = message.params.clone().unwrap_or(Value::Null);
        let server = message.server.name.clone();
        self.screen(ctx, &server, message.method, (&content, false), &mut message.findings);
        // Within a call, the call's own answer taints as its server is trusted or not; tainting
        // here would hold the call's own continuation for the content the call itself brought.
        if message.within.is_none() && !message.server.trusted_content && message.kind != Some(ServerKind::Elicitation)
        {
            self.taint(ctx, Source::ServerMessage, &server, message.method);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use serde_json::json;
    use warden_policy::{Principal, PrincipalClass};

    fn ctx(subject: &str, client_name: &str) -> ClientContext {
        ClientContext {
            principal: Arc::new(Principal::new(subject, PrincipalClass::User)),
            version: warden_protocol::ProtocolVersion::V2026_07_28,
            capabilities: Arc::new(json!({})),
            client_info: Arc::new(json!({ "name": client_name })),
            session: None,
            log_level: None,
            header_params: None,
        }
    }

    #[test]
    fn sessionless_taint_clears_a_ttl_after_the_last_untrusted_read() {
        let clock = Arc::new(ManualClock::default());
        let taint = Taint::new(Duration::from_secs(60), clock.clone());
        let alice = ctx("alice", "agent");
        assert!(taint.mark(&alice));
        assert!(!taint.mark(&alice), "already tainted");
        assert!(taint.is_tainted(&ctx("alice", "another-name")), "a new client name is the same context");
        assert!(!taint.is_tainted(&ctx("bob", "agent")));
        clock.advance(Duration::from_secs(50));
        taint.mark(&alice);
        clock.advance(Duration::from_secs(50));
        assert!(taint.is_tainted(&alice), "each untrusted read restarts the clock");
        clock.advance(Duration::from_secs(11));
        assert!(!taint.is_tainted(&alice));
        assert!(taint.mark(&alice), "tainted anew");
        clock.advance(Duration::from_secs(61));
        taint.tidy();
        assert!(taint.contexts.lock().unwrap().is_empty());
    }
}
