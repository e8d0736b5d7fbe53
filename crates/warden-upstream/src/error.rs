//! Errors from talking to an upstream server.

use std::time::Duration;
use warden_protocol::RpcError;
use warden_protocol::error::{
    REQUEST_TIMEOUT, TOO_LARGE, UPSTREAM_CLOSED, UPSTREAM_INVALID_RESPONSE, UPSTREAM_UNAVAILABLE,
};

/// What went wrong between Warden and an upstream server.
///
/// Messages name the server but never its command line, URL or environment: they may reach a client.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The server could not be started or reached.
    #[error("server '{server}' is unavailable: {reason}")]
    Unavailable {
        /// Server name.
        server: String,
        /// What failed, safe to show a client.
        reason: String,
        /// When a retry may succeed.
        retry_after: Option<Duration>,
    },
    /// The connection closed while the request was in flight.
    #[error("server '{server}' closed the connection: {reason}")]
    Closed {
        /// Server name.
        server: String,
        /// Why, safe to show a client.
        reason: String,
    },
    /// The server did not answer in time.
    #[error("server '{server}' did not answer within {timeout:?}")]
    Timeout {
        /// Server name.
        server: String,
        /// The timeout that elapsed.
        timeout: Duration,
    },
    /// The request was cancelled by the client.
    #[error("request cancelled")]
    Cancelled,
    /// The server answered with something that is not a valid answer.
    #[error("server '{server}' sent an invalid response: {reason}")]
    Protocol {
        /// Server name.
        server: String,
        /// What was wrong.
        reason: String,
    },
    /// A frame from the server exceeded the size limit.
    #[error("server '{server}' sent a frame larger than {limit} bytes")]
    TooLarge {
        /// Server name.
        server: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The server does not speak the era Warden asked for.
    #[error("server '{server}' does not speak the {era} protocol era")]
    EraUnsupported {
        /// Server name.
        server: String,
        /// The era that was refused.
        era: warden_protocol::Era,
    },
    /// The legacy HTTP session was dropped by the server; the request was not processed.
    #[error("server '{server}' ended the session")]
    SessionExpired {
        /// Server name.
        server: String,
    },
}

impl UpstreamError {
    /// The JSON-RPC error a client receives for this failure.
    pub fn to_rpc(&self) -> RpcError {
        let code = match self {
            UpstreamError::Unavailable { .. }
            | UpstreamError::SessionExpired { .. }
            | UpstreamError::EraUnsupported { .. } => UPSTREAM_UNAVAILABLE,
            UpstreamError::Closed { .. } | UpstreamError::Cancelled => UPSTREAM_CLOSED,
            UpstreamError::Timeout { .. } => REQUEST_TIMEOUT,
            UpstreamError::Protocol { .. } => UPSTREAM_INVALID_RESPONSE,
            UpstreamError::TooLarge { .. } => TOO_LARGE,
        };
        let mut e = RpcError::new(code, self.to_string());
        if let UpstreamError::Unavailable { retry_after: Some(d), .. } = self {
            e = e.with_data(serde_json::json!({ "retryAfterMs": d.as_millis() as u64 }));
        }
        e
    }
}
