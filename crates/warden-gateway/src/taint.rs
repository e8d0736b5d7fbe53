//! Taint (R3): which contexts have read untrusted content. While a context is tainted, its calls
//! of `write` and `irreversible` tools need a human's approval whatever the policies allow, and
//! the policies see `context.tainted`.
//!
//! A context is a legacy session, or (2026-07-28, no session) the authenticated principal with
//! its OAuth client ([`crate::limit::context_key`]): nothing a client chooses per request, such as
//! the name it gives itself, starts a clean context.
//!
//! What taints ([`Source`]): every resource read (unless its server is `trusted_resources`), every
//! tool or prompt result of a server not marked `trusted_content` (per tool: `trusted_content`),
//! a result the injection scanner flags or could not read whole, and a released quarantined
//! result. How it clears, and nothing else clears it:
//! - a legacy session's taint ends with the session;
//! - a sessionless context's taint ends `[taint] ttl` after the last untrusted content it read;
//! - taint is held in memory: a restart of the gateway clears it.

use crate::client::ClientContext;
use crate::clock::Clock;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
}

impl Taint {
    /// Taint whose sessionless contexts clear `ttl` after their last untrusted read.
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Taint {
        Taint { contexts: Mutex::new(HashMap::new()), ttl, clock }
    }

    /// Marks the request's context tainted (again: a sessionless context's clock restarts);
    /// whether it was not tainted before.
    pub fn mark(&self, ctx: &ClientContext) -> bool {
        let now = self.clock.now();
        let key = crate::limit::context_key(ctx);
        let mut contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        if contexts.len() >= MAX_CONTEXTS && !contexts.contains_key(&key) {
            self.forget_expired(&mut contexts, now);
        }
        let session = ctx.session.is_some();
        let before = contexts.insert(key, Tainted { last: now, session });
        before.is_none_or(|t| !self.live(&t, now))
    }

    /// Whether the request's context is tainted.
    pub fn is_tainted(&self, ctx: &ClientContext) -> bool {
        let contexts = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
        contexts.get(&crate::limit::context_key(ctx)).is_some_and(|t| self.live(t, self.clock.now()))
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

    /// Forgets an ended session.
    pub fn forget_session(&self, session_id: &str) {
        self.contexts.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("session:{session_id}"));
    }
}

impl crate::gateway::Gateway {
    /// Taints the request's context because it read `what` (a tool, prompt or URI as the
    /// client named it) from `server`; the first taint of a context is an audit row (`taint`).
    pub(crate) fn taint_by(&self, ctx: &ClientContext, source: Source, server: &str, what: &str) {
        if self.taint.mark(ctx) {
            let what = crate::routing::shown(what);
            tracing::info!(%server, %what, source = source.as_str(), "the context is now tainted");
            self.auditor.tainted(ctx, source.as_str(), server, &what);
        }
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
