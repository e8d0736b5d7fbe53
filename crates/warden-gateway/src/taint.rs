//! Taint: which contexts have read content that tried to instruct the model. A tainted context's
//! calls carry `context.tainted` to the policies, so high-impact tools can require a human.
//!
//! A context is a legacy session, or (sessionless) a principal; see [`crate::limit::context_key`].
//! Taint is never cleared while the context lives: what the model read stays in its context.

use crate::client::ClientContext;
use std::collections::HashSet;
use std::sync::Mutex;

/// The tainted contexts.
#[derive(Default)]
pub struct Taint {
    contexts: Mutex<HashSet<String>>,
}

impl Taint {
    /// Marks the request's context tainted; whether it was not before.
    pub fn mark(&self, ctx: &ClientContext) -> bool {
        self.contexts.lock().unwrap_or_else(|p| p.into_inner()).insert(crate::limit::context_key(ctx))
    }

    /// Whether the request's context is tainted.
    pub fn is_tainted(&self, ctx: &ClientContext) -> bool {
        self.contexts.lock().unwrap_or_else(|p| p.into_inner()).contains(&crate::limit::context_key(ctx))
    }

    /// Forgets an ended session.
    pub fn forget_session(&self, session_id: &str) {
        self.contexts.lock().unwrap_or_else(|p| p.into_inner()).remove(&format!("session:{session_id}"));
    }
}
