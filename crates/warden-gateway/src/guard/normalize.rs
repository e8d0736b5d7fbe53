//! URI normalization: a resource URI is put in one form before anything decides on it, and that
//! form is what the server is sent, so the policies decide on what the server will read.
//!
//! RFC 3986 section 6.2.2: the scheme and host are lower-cased, percent-encodings of unreserved
//! characters decoded (`%73ecret` is `secret`), other percent-encodings upper-cased, repeated
//! `/` in the path collapsed, and `.` and `..` segments removed. What has no single meaning is
//! refused: an encoded `/`, `\` or NUL (a server may decode it into a separator after the
//! policies decided), a `..` that climbs above the root, a backslash, white space or a control
//! character, a malformed percent-encoding, and a URI without a scheme.

use super::{Flow, Request, RequestGuard};
use crate::uri::normalize_uri;
use serde_json::Value;
use warden_protocol::RpcError;

/// The URI-normalizing guard.
pub struct Normalize;

#[async_trait::async_trait]
impl RequestGuard for Normalize {
    fn name(&self) -> &'static str {
        "normalize"
    }

    async fn check(&self, request: &mut Request<'_>) -> Result<Flow, RpcError> {
        if !request.route.addresses_uri() {
            return Ok(Flow::Next);
        }
        let Some(uri) = request.params.get("uri").and_then(Value::as_str) else {
            return Err(RpcError::invalid_params("params.uri must be a string"));
        };
        let normal = normalize_uri(uri).map_err(|why| {
            RpcError::invalid_params(format!("resource URI {} refused: {why}", crate::names::shown(uri)))
        })?;
        if normal != uri {
            tracing::debug!(from = %crate::names::shown(uri), to = %crate::names::shown(&normal), "normalized a resource URI");
            request.params["uri"] = Value::String(normal);
        }
        Ok(Flow::Next)
    }
}
