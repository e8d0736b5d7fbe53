//! Calls waiting for a modern client's `input_required` retry.
//!
//! When a legacy server asks the client something in the middle of a call (sampling, elicitation,
//! roots) and the client speaks 2026-07-28, Warden answers the client with `input_required` and
//! keeps the upstream call waiting here. The `requestState` it hands out names the waiting call by
//! a 128-bit random handle; the retry must come from the same principal, for the same method and
//! name, before the call expires, and a handle works once.

use super::call::InFlight;
use crate::clock::Clock;
use rand::TryRngCore;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_policy::Principal;
use warden_protocol::RpcError;
use warden_upstream::ServerRequest;

/// Prefix of the `requestState` values Warden mints for parked calls.
pub const PARKED_PREFIX: &str = "warden-parked:";

/// A call waiting for the client.
pub struct ParkedCall {
    /// Who made the call.
    pub principal: Arc<Principal>,
    /// The method (`tools/call`, `prompts/get`, `resources/read`).
    pub method: String,
    /// What the call addressed: the exposed name or URI with the hash of its exact arguments.
    pub name: String,
    /// The upstream call, still running.
    pub inflight: InFlight,
    /// Server requests awaiting the client's answers, by input key, with their params as the
    /// server-message guards passed them.
    pub waiting: Vec<(String, ServerRequest, Option<Value>)>,
    /// Input keys handed out so far, for numbering.
    pub issued: usize,
    expires: Instant,
}

impl std::fmt::Debug for ParkedCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParkedCall")
            .field("principal", &self.principal.subject)
            .field("method", &self.method)
            .field("name", &self.name)
            .finish()
    }
}

impl ParkedCall {
    /// A parked call; its expiry is set when parked.
    pub fn new(principal: Arc<Principal>, method: String, name: String, inflight: InFlight) -> Self {
        ParkedCall { principal, method, name, inflight, waiting: Vec::new(), issued: 0, expires: Instant::now() }
    }
}

/// The calls waiting for clients.
pub struct Parked {
    calls: Mutex<HashMap<String, ParkedCall>>,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    max: usize,
}

impl Parked {
    /// A store whose calls wait at most `ttl`.
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Parked { calls: Mutex::new(HashMap::new()), ttl, clock, max: 10_000 }
    }

    /// Parks a call, returning the `requestState` that resumes it.
    pub fn park(&self, mut call: ParkedCall) -> Result<String, RpcError> {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.try_fill_bytes(&mut bytes).map_err(|_| RpcError::internal("no randomness available"))?;
        let handle: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        call.expires = self.clock.now() + self.ttl;
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        if calls.len() >= self.max {
            return Err(RpcError::new(
                warden_protocol::error::UPSTREAM_UNAVAILABLE,
                "too many calls are waiting for client input",
            ));
        }
        calls.insert(handle.clone(), call);
        Ok(format!("{PARKED_PREFIX}{handle}"))
    }

    /// Takes the call a `requestState` names, if the retry may resume it.
    pub fn take(&self, state: &str, principal: &Principal, method: &str, name: &str) -> Result<ParkedCall, RpcError> {
        let invalid = || {
            RpcError::invalid_params("invalid or expired requestState")
                .with_data(serde_json::json!({ "reason": "invalid_request_state" }))
        };
        let handle = state.strip_prefix(PARKED_PREFIX).ok_or_else(invalid)?;
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let call = calls.get(handle).ok_or_else(invalid)?;
        let matches = call.principal.same_caller(principal) && call.method == method && call.name == name;
        if !matches {
            tracing::warn!(presented_by = %principal.subject, "a requestState was presented for another caller or call");
            return Err(invalid());
        }
        if call.expires <= self.clock.now() {
            calls.remove(handle);
            return Err(invalid());
        }
        calls.remove(handle).ok_or_else(invalid)
    }

    /// Whether `state` names a live call this retry may resume (without taking it).
    pub fn holds(&self, state: &str, principal: &Principal, method: &str, name: &str) -> bool {
        let Some(handle) = state.strip_prefix(PARKED_PREFIX) else { return false };
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.get(handle).is_some_and(|c| {
            c.principal.same_caller(principal) && c.method == method && c.name == name && c.expires > self.clock.now()
        })
    }

    /// How many calls of this caller are waiting (for the call-depth guard).
    pub fn count_for(&self, principal: &Principal) -> u32 {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        if calls.is_empty() {
            return 0;
        }
        let now = self.clock.now();
        calls.values().filter(|c| c.expires > now && c.principal.same_caller(principal)).count() as u32
    }

    /// Drops the calls waiting on `server` (it was contained); how many.
    pub fn drop_server(&self, server: &str) -> usize {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let before = calls.len();
        calls.retain(|_, c| c.inflight.server() != server);
        before - calls.len()
    }

    /// Drops expired calls, which cancels them upstream and answers their server requests with errors.
    pub fn reap(&self) -> usize {
        let now = self.clock.now();
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let before = calls.len();
        calls.retain(|_, c| c.expires > now);
        before - calls.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use warden_policy::PrincipalClass;

    fn alice() -> Arc<Principal> {
        Arc::new(Principal::new("alice", PrincipalClass::User))
    }

    fn server() -> Arc<crate::servers::ServerInfo> {
        Arc::new(crate::servers::ServerInfo::unstarted("s"))
    }

    fn parked(clock: Arc<ManualClock>) -> (Parked, String) {
        let p = Parked::new(Duration::from_secs(60), clock);
        let call = ParkedCall::new(alice(), "tools/call".into(), "s__t".into(), InFlight::never(server()));
        let state = p.park(call).unwrap();
        (p, state)
    }

    #[test]
    fn a_parked_call_resumes_once_for_its_caller_and_call() {
        let (p, state) = parked(Arc::new(ManualClock::default()));
        assert!(state.starts_with(PARKED_PREFIX) && state.len() == PARKED_PREFIX.len() + 32, "128-bit handle: {state}");
        let mallory = Principal::new("mallory", PrincipalClass::User);
        assert!(p.take(&state, &mallory, "tools/call", "s__t").is_err(), "another principal cannot resume it");
        assert!(p.take(&state, &alice(), "prompts/get", "s__t").is_err(), "nor a different method");
        assert!(p.take(&state, &alice(), "tools/call", "s__other").is_err(), "nor another tool");
        assert!(p.take(&format!("{state}0"), &alice(), "tools/call", "s__t").is_err(), "nor a forged handle");
        assert!(p.take(&state, &alice(), "tools/call", "s__t").is_ok(), "refusals did not consume it");
        assert!(p.take(&state, &alice(), "tools/call", "s__t").is_err(), "it works once");
    }

    #[test]
    fn a_parked_call_expires() {
        let clock = Arc::new(ManualClock::default());
        let (p, state) = parked(clock.clone());
        clock.advance(Duration::from_secs(61));
        let e = p.take(&state, &alice(), "tools/call", "s__t").unwrap_err();
        assert_eq!(e.code, warden_protocol::error::INVALID_PARAMS);
        let (p, _) = parked(clock.clone());
        clock.advance(Duration::from_secs(61));
        assert_eq!(p.reap(), 1, "expired calls are dropped (and so cancelled upstream)");
    }
}
