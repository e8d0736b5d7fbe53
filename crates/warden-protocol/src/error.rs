//! JSON-RPC error objects and the codes Warden uses.
//!
//! Standard codes come from JSON-RPC 2.0 and the MCP specification. Warden's own codes sit in the
//! implementation-defined range `-32000..=-32019`, which MCP 2026-07-28 leaves to implementations;
//! `-32000` and `-32001` keep the meaning the official SDKs already give them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Invalid JSON was received.
pub const PARSE_ERROR: i32 = -32700;
/// The JSON sent is not a valid request object.
pub const INVALID_REQUEST: i32 = -32600;
/// The method does not exist or is not available.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// Invalid method parameters (also: unknown tool, unknown prompt, resource not found since 2026-07-28).
pub const INVALID_PARAMS: i32 = -32602;
/// Internal error.
pub const INTERNAL_ERROR: i32 = -32603;
/// Resource not found, as protocol versions up to 2025-11-25 report it.
pub const RESOURCE_NOT_FOUND_LEGACY: i32 = -32002;
/// A server needs the client to complete a URL-mode elicitation first (2025-11-25 on).
pub const URL_ELICITATION_REQUIRED: i32 = -32042;
/// HTTP headers do not match the body, or a required header is missing (2026-07-28).
pub const HEADER_MISMATCH: i32 = -32020;
/// The request needs a client capability the client did not declare (2026-07-28).
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i32 = -32021;
/// The requested protocol version is not supported (2026-07-28).
pub const UNSUPPORTED_PROTOCOL_VERSION: i32 = -32022;

/// Warden: the upstream connection closed while the request was in flight.
pub const UPSTREAM_CLOSED: i32 = -32000;
/// Warden: the upstream did not answer within the server's timeout.
pub const REQUEST_TIMEOUT: i32 = -32001;
/// Warden: a policy refused the request.
pub const POLICY_DENIED: i32 = -32003;
/// Warden: the request needs a human's approval first.
pub const APPROVAL_REQUIRED: i32 = -32004;
/// Warden: a rate limit or budget refused the request; `data.retryAfterMs` says when to retry.
pub const RATE_LIMITED: i32 = -32005;
/// Warden: the caller's token lacks a scope the request needs; `data.scope` names it. Over HTTP
/// this is also a 403 with `WWW-Authenticate: Bearer error="insufficient_scope"`.
pub const INSUFFICIENT_SCOPE: i32 = -32006;
/// Warden: too many calls of one context are nested or in flight.
pub const CALL_LIMIT: i32 = -32007;
/// Warden: the request carries no valid credential (over HTTP, also a 401).
pub const UNAUTHENTICATED: i32 = -32008;
/// Warden: the upstream server could not be reached or is restarting.
pub const UPSTREAM_UNAVAILABLE: i32 = -32010;
/// Warden: the upstream answered with something that is not a valid answer to the request.
pub const UPSTREAM_INVALID_RESPONSE: i32 = -32011;
/// Warden: a frame or result exceeded a configured size limit.
pub const TOO_LARGE: i32 = -32012;
/// Warden: the request waits for a person's approval; `data.approvalId` names it. Retry the same
/// call with the same arguments once it is approved.
pub const APPROVAL_PENDING: i32 = -32013;
/// Warden: a person (or the client's user) denied the request.
pub const APPROVAL_DENIED: i32 = -32014;
/// Warden: an operator contained the server: it is not reachable until released.
pub const SERVER_CONTAINED: i32 = -32015;
/// Warden could not obtain the credential a server needs for this caller (a token exchange was
/// refused, or the caller's token cannot be exchanged).
pub const UPSTREAM_CREDENTIAL: i32 = -32016;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcError {
    /// The error code.
    pub code: i32,
    /// A short description a person can act on.
    pub message: String,
    /// Structured detail, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with a code and message.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError { code, message: message.into(), data: None }
    }

    /// Adds structured detail.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// `-32600 Invalid Request`.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(INVALID_REQUEST, message)
    }

    /// `-32602 Invalid params`.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(INVALID_PARAMS, message)
    }

    /// `-32601 Method not found`, naming the method.
    pub fn method_not_found(method: &str) -> Self {
        let shown: String = method.chars().take(80).collect();
        Self::new(METHOD_NOT_FOUND, format!("Method not found: {shown}"))
    }

    /// `-32603 Internal error`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(INTERNAL_ERROR, message)
    }

    /// The error as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads an error object leniently: a missing or odd code becomes an internal error.
    pub fn from_value(v: &Value) -> Self {
        let code = v.get("code").and_then(Value::as_i64).and_then(|c| i32::try_from(c).ok()).unwrap_or(INTERNAL_ERROR);
        let message = v.get("message").and_then(Value::as_str).unwrap_or("error").to_owned();
        RpcError { code, message, data: v.get("data").cloned() }
    }
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for RpcError {}
