//! Why the gateway (or a part of it) could not be set up or could not do what an operator asked.
//! Refusals of clients' requests are not these: they are JSON-RPC errors ([`RpcError`]) sent to
//! the client.
//!
//! [`RpcError`]: warden_protocol::RpcError

use warden_policy::PolicyError;
use warden_store::StoreError;

/// An error of the gateway crate, with a message an operator can act on.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A setting that cannot be used; the message names the key.
    #[error("{0}")]
    Config(String),
    /// The policy files do not load or validate.
    #[error("policies:\n{0}")]
    Policies(#[from] PolicyError),
    /// A store of the audit database failed.
    #[error("{what}: {source}")]
    Store {
        /// Which store, and what it was doing.
        what: &'static str,
        /// What the store said.
        #[source]
        source: StoreError,
    },
    /// A file or the system failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or done.
        what: String,
        /// What the system said.
        #[source]
        source: std::io::Error,
    },
    /// The signing keys of the token issuer could not be loaded.
    #[error("the signing keys: {0}")]
    Keys(String),
    /// An operator's request names something that does not exist or cannot be done now.
    #[error("{0}")]
    Refused(String),
}

impl GatewayError {
    /// A store error, named by `what`, for `map_err`.
    pub fn store(what: &'static str) -> impl FnOnce(StoreError) -> GatewayError {
        move |source| GatewayError::Store { what, source }
    }

    /// An I/O error while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> GatewayError {
        GatewayError::Io { what: what.into(), source }
    }
}
