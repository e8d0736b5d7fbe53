//! The guards: each one small type, named for what it guards, doing one thing to every message
//! it is given. The stack (`stack.rs`) puts them in order; nothing else calls them on the request path.
//!
//! Three kinds, one trait each:
//!
//! - a [`RequestGuard`] checks a client's request on its way to a server, and may refuse it or
//!   answer it itself;
//! - a [`ResponseGuard`] checks what comes back for it (a result, a server's error, the gateway's
//!   own answer), and may edit or refuse it;
//! - a [`MessageGuard`] checks what a server sends toward a client beside the answer:
//!   notifications and requests, within a call or outside any.
//!
//! A guard that cannot inspect something refuses it or says so in the audit row; it never lets
//! it pass unread.

pub mod approve;
pub mod audit;
pub mod authorize;
pub mod contain;
pub mod forward;
pub mod inspect_args;
pub mod integrity;
pub mod limit;
pub mod normalize;
pub mod place;
pub mod quarantine;
pub mod resolve;
pub mod respond;
pub mod sanitize;
pub mod taint;
pub mod validate_args;

mod exchange;

pub use exchange::{Flow, Reply, Request, ServerMessage, Tool};

use warden_protocol::RpcError;

/// A guard on a client's request.
#[async_trait::async_trait]
pub trait RequestGuard: Send + Sync {
    /// The guard's name, as tests and logs know it.
    fn name(&self) -> &'static str;

    /// Checks the request (and may edit it): [`Flow::Next`] passes it on, [`Flow::Answer`]
    /// answers it here, an error refuses it.
    async fn check(&self, request: &mut Request<'_>) -> Result<Flow, RpcError>;
}

/// A guard on what answers a client's request.
#[async_trait::async_trait]
pub trait ResponseGuard: Send + Sync {
    /// The guard's name, as tests and logs know it.
    fn name(&self) -> &'static str;

    /// Checks the reply (and may edit it); an error refuses it, and the client gets the error.
    async fn check(&self, request: &mut Request<'_>, reply: &mut Reply) -> Result<(), RpcError>;
}

/// A guard on what a server sends toward a client beside its answers.
pub trait MessageGuard: Send + Sync {
    /// The guard's name, as tests and logs know it.
    fn name(&self) -> &'static str;

    /// Checks the message (and may edit it); an error refuses a request (the server gets the
    /// error) or drops a notification.
    fn check(&self, message: &mut ServerMessage<'_>) -> Result<(), RpcError>;
}

/// Sends a request that passed every request guard to where it goes, and brings back the reply.
#[async_trait::async_trait]
pub trait Forwarder: Send + Sync {
    /// The reply: a result, a server's error, or the gateway's own error (`Err`) when the request
    /// could not be served.
    async fn forward(&self, request: &mut Request<'_>) -> Result<Reply, RpcError>;
}
