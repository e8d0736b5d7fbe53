//! Connections from Warden to MCP servers.
//!
//! A server is either a child process speaking stdio or a Streamable HTTP endpoint, and either
//! legacy (2025-era `initialize`) or modern (stateless 2026-07-28); [`Connection`] hides those
//! differences behind one [`Connection::call`]. [`Upstream`] supervises a connection: it connects on
//! first use and restarts a crashed server on the next use, with backoff.
//!
//! This crate moves messages; it does not decide what is allowed. It owns what must be true of any
//! connection Warden makes: upstream request ids are Warden's own, progress tokens are rewritten
//! so clients sharing a connection cannot see each other's progress, children get only the
//! environment their spec names, and every frame read is size-bounded.

pub mod egress;

mod connection;
mod core;
mod error;
mod http;
mod lines;
mod pids;
pub mod sandbox;
mod spec;
mod stdio;
mod supervisor;

pub use crate::connection::{Call, Connection, Hello};
pub use crate::core::{EXCHANGE_CAPACITY, Exchange, ServerEvent, ServerRequest};
pub use crate::error::UpstreamError;
pub use crate::lines::{Line, LineReader};
pub use crate::sandbox::{ResourceLimits, SandboxSpec};
pub use crate::spec::{
    Credential, CredentialProvider, CredentialSource, EraPreference, Provided, TransportSpec, UpstreamSpec,
};
pub use crate::supervisor::Upstream;
