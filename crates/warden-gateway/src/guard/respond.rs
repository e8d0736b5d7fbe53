//! The first response guard: what a server answered is read as what its request expects, and a
//! server's error becomes an error Warden is willing to say.
//!
//! - A result that does not parse as its method's result type is refused (what the parser said
//!   goes only to the log: it may quote the server).
//! - A server's error is translated, on every method: codes Warden gives meaning to (-32003 to
//!   -32020, and -32022) are Warden's alone, so a server cannot make a client believe the gateway
//!   refused it or ask it for more scopes (they become -32603 with `data.serverCode`); a demand
//!   for a URL elicitation (-32042) is an elicitation the policies must allow; the message is
//!   scrubbed (secrets, paths, internal hosts, stack traces, escapes) and bounded. The original
//!   is kept apart when `[output] server_errors = "keep"`.

use super::sanitize::{OutputGuard, redacted_for_log};
use super::{Reply, Request, ResponseGuard};
use crate::catalogue::{CallKind, Route};
use crate::servers::ServerMessages;
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use warden_protocol::{Era, RpcError, error};

/// Longest server error message passed on, in bytes.
const MAX_UPSTREAM_MESSAGE: usize = 1024;

/// Whether a code is one Warden gives meaning to: never relayed from a server as it is.
pub fn is_wardens(code: i32) -> bool {
    (error::HEADER_MISMATCH..=error::POLICY_DENIED).contains(&code) || code == error::UNSUPPORTED_PROTOCOL_VERSION
}

/// The translating guard.
pub struct Respond {
    output: Arc<OutputGuard>,
    messages: Arc<dyn ServerMessages>,
    kept: Arc<OnceLock<warden_store::ServerErrorStore>>,
}

impl Respond {
    /// The guard: `output` scrubs, `messages` decides URL elicitations, `kept` (when set) keeps
    /// originals.
    pub fn new(
        output: Arc<OutputGuard>,
        messages: Arc<dyn ServerMessages>,
        kept: Arc<OnceLock<warden_store::ServerErrorStore>>,
    ) -> Respond {
        Respond { output, messages, kept }
    }

    /// A server's error as the client gets it.
    fn translate(&self, request: &mut Request<'_>, mut e: RpcError) -> RpcError {
        let server = request.server().cloned();
        let server_name = server.as_ref().map(|s| s.name.clone()).unwrap_or_default();
        self.keep_original(request, &server_name, &e);
        // R9: a server's error reaches the client without the secrets it may carry.
        let cleaning = self.output.scrub_error(&mut e);
        if cleaning.redactions > 0 {
            tracing::info!(server = %server_name, "redacted secrets from a server's error");
        }
        request.note.cleaned(cleaning);
        if is_wardens(e.code) {
            let data = json!({ "serverCode": e.code, "serverData": e.data.take() });
            e.code = error::INTERNAL_ERROR;
            e.data = Some(data);
        }
        if e.code == error::URL_ELICITATION_REQUIRED {
            let asked: Vec<Value> = e
                .data
                .as_ref()
                .and_then(|d| d.get("elicitations"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let asked = if asked.is_empty() { vec![Value::Null] } else { asked };
            for params in asked {
                let mut params = Some(params).filter(|p| !p.is_null());
                let refused = match &server {
                    Some(info) => self
                        .messages
                        .request(
                            info,
                            Some(request.ctx),
                            Some(&request.note.request_id),
                            "elicitation/create",
                            &mut params,
                        )
                        .err(),
                    None => Some(RpcError::new(error::POLICY_DENIED, "an elicitation from no known server")),
                };
                if let Some(refusal) = refused {
                    return refusal;
                }
            }
        }
        // A server's error message is passed on, but not without bound.
        if e.message.len() > MAX_UPSTREAM_MESSAGE {
            let cut = (0..=MAX_UPSTREAM_MESSAGE).rev().find(|i| e.message.is_char_boundary(*i)).unwrap_or(0);
            e.message.truncate(cut);
            e.message.push('…');
        }
        if request.route == Route::Call(CallKind::Resource)
            && request.ctx.era() == Era::Modern
            && e.code == error::RESOURCE_NOT_FOUND_LEGACY
        {
            e.code = error::INVALID_PARAMS;
            if e.data.is_none() {
                e.data = Some(json!({ "uri": request.addressed() }));
            }
        }
        e
    }

    /// Keeps a server's error as it sent it, where `[output] server_errors = "keep"`, before it
    /// is scrubbed for the client. Written in the background: the answer does not wait for it.
    fn keep_original(&self, request: &Request<'_>, server: &str, e: &RpcError) {
        let Some(store) = self.kept.get().cloned() else { return };
        let (server, method) = (server.to_owned(), request.method.to_owned());
        let item = Some(request.addressed().to_owned()).filter(|i| !i.is_empty());
        let request_id = request.note.request_id.clone();
        let session_id = request.ctx.session.as_ref().map(|s| s.id.clone());
        let actor_id = request.ctx.principal.subject.clone();
        let (code, message, data) = (i64::from(e.code), e.message.clone(), e.data.clone());
        tokio::spawn(async move {
            let original = warden_store::server_errors::OriginalError {
                server: &server,
                method: &method,
                item: item.as_deref(),
                request_id: Some(&request_id),
                session_id: session_id.as_deref(),
                actor_id: Some(&actor_id),
                code,
                message: &message,
                data: data.as_ref(),
            };
            if let Err(err) = store.keep(&original).await {
                tracing::error!("a server's original error could not be kept: {err}");
            }
        });
    }
}

#[async_trait::async_trait]
impl ResponseGuard for Respond {
    fn name(&self) -> &'static str {
        "respond"
    }

    async fn check(&self, request: &mut Request<'_>, reply: &mut Reply) -> Result<(), RpcError> {
        match std::mem::replace(reply, Reply::Result(Value::Null)) {
            Reply::ServerError(e) => {
                *reply = Reply::Error(self.translate(request, e.untranslated()));
                Ok(())
            }
            Reply::Result(mut result) => {
                if !request.sources.is_empty() {
                    check_result_type(request, &mut result)?;
                    if !matches!(request.route, Route::List(_)) {
                        // A merged list is the gateway's own; its items were checked one by one
                        // when each server's list was fetched.
                        check_shape(request, &result)?;
                    }
                }
                *reply = Reply::Result(result);
                Ok(())
            }
            other => {
                *reply = other;
                Ok(())
            }
        }
    }
}

/// A server's `resultType` (2026-07-28) must be one the method can have: `complete`, or for a
/// call, `input_required` — which then carries nothing but what the protocol gives it (an extra
/// member would reach the client beside the requests, unquarantined).
fn check_result_type(request: &Request<'_>, result: &mut Value) -> Result<(), RpcError> {
    let Some(kind) = result.get("resultType") else { return Ok(()) };
    match (kind.as_str(), request.route) {
        (Some("complete"), _) => Ok(()),
        (Some("input_required"), Route::Call(_)) => {
            if let Some(obj) = result.as_object_mut() {
                obj.retain(|k, _| matches!(k.as_str(), "resultType" | "inputRequests" | "requestState" | "_meta"));
            }
            Ok(())
        }
        _ => {
            let server = request.server().map(|s| s.name.clone()).unwrap_or_default();
            tracing::warn!(%server, method = request.method, "refused a result of an unknown or misplaced resultType");
            Err(RpcError::new(
                error::UPSTREAM_INVALID_RESPONSE,
                format!(
                    "server '{server}' sent an invalid response: a {} result cannot be of that resultType",
                    request.method
                ),
            ))
        }
    }
}

/// Refuses a server's result that does not parse as its method's result type; what the parser
/// said is logged (it may quote the server), not relayed.
fn check_shape(request: &Request<'_>, result: &Value) -> Result<(), RpcError> {
    let method = request.method;
    warden_protocol::typed::check_result(method, result).map_err(|m| {
        let server = request.server().map(|s| s.name.clone()).unwrap_or_default();
        let detail = redacted_for_log(&m.detail);
        tracing::warn!(%server, method, %detail, "refused a malformed result");
        RpcError::new(
            error::UPSTREAM_INVALID_RESPONSE,
            format!("server '{server}' sent an invalid response: its answer is not a valid {method} result"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_warden_gives_meaning_to_are_its_own() {
        for code in [error::POLICY_DENIED, error::INSUFFICIENT_SCOPE, error::APPROVAL_PENDING, error::SERVER_CONTAINED]
        {
            assert!(is_wardens(code), "{code}");
        }
        assert!(is_wardens(error::HEADER_MISMATCH) && is_wardens(error::UNSUPPORTED_PROTOCOL_VERSION));
        for code in [error::INVALID_PARAMS, error::INTERNAL_ERROR, error::RESOURCE_NOT_FOUND_LEGACY, -32000, -1, 42] {
            assert!(!is_wardens(code), "{code}");
        }
        assert!(!is_wardens(error::MISSING_REQUIRED_CLIENT_CAPABILITY), "a server may need a client capability");
    }
}
