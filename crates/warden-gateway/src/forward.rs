//! Forwarding a call (`tools/call`, `prompts/get`, `resources/read`) to its server, and everything
//! the server says while serving it.
//!
//! Progress and log messages go back to the client on the call's own stream. Requests the server
//! makes of the client are where the eras meet:
//!
//! | client | server | what Warden does |
//! |---|---|---|
//! | legacy | legacy | sends the server's request to the client and relays the answer |
//! | modern | modern | passes `input_required` and the client's retry through |
//! | modern | legacy | answers the client with `input_required` and parks the server's request until the retry |
//! | legacy | modern | asks the client each input request itself and retries the call with the answers |

use crate::client::{ClientContext, Outbound, capability_for};
use crate::gateway::Gateway;
use crate::levels;
use crate::limit::CallSlot;
use crate::parked::{PARKED_PREFIX, ParkedCall};
use crate::routing::Target;
use crate::sanitize::SamplingLimits;
use serde_json::{Map, Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_protocol::{Era, Kind, Message, RpcError, error};
use warden_upstream::{Call, Connection, EXCHANGE_CAPACITY, Exchange, ServerRequest, UpstreamError};

/// Most `input_required` rounds Warden drives for one legacy client's call.
const MAX_ROUNDS: usize = 10;
/// Longest server error message passed on, in bytes.
const MAX_UPSTREAM_MESSAGE: usize = 1024;
/// Most server requests relayed to a client at once for one call; past this they are refused,
/// so a server cannot make the gateway hold unbounded work.
const MAX_RELAYS_PER_CALL: usize = 16;

/// An upstream call in progress: its answer (a future polled only while someone waits for it,
/// so a parked call costs no task) and the messages the server sends while serving it. Dropping
/// it abandons the call, and the server is told.
pub struct InFlight {
    answer: Pin<Box<dyn Future<Output = Result<Message, UpstreamError>> + Send>>,
    exchange: mpsc::Receiver<Exchange>,
    exchange_open: bool,
    timeout: Duration,
    server: String,
    modern_server: bool,
}

impl InFlight {
    /// The server the call went to.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A call that never answers, for tests of what holds calls.
    #[cfg(test)]
    pub(crate) fn never() -> InFlight {
        let (_tx, rx) = mpsc::channel(1);
        InFlight {
            answer: Box::pin(std::future::pending()),
            exchange: rx,
            exchange_open: false,
            timeout: Duration::from_secs(1),
            server: "s".into(),
            modern_server: false,
        }
    }
}

enum Driven {
    /// The call finished with this result.
    Done(Value),
    /// The call is parked; this `input_required` result goes to the client.
    Parked(Value),
}

/// What a request to forward looks like once resolved.
pub struct Forwarding<'a> {
    /// The client.
    pub ctx: &'a ClientContext,
    /// The way back to it.
    pub out: &'a Outbound,
    /// Fired when the client gives up.
    pub cancel: &'a CancellationToken,
    /// The method.
    pub method: &'a str,
    /// The exposed name or URI the client used.
    pub exposed: &'a str,
    /// The call's place in its context, to mark it waiting while the client is asked something.
    pub slot: Option<&'a CallSlot>,
    /// The client's JSON-RPC id, as text.
    pub request_id: &'a str,
}

impl Gateway {
    /// Forwards a call and returns its result (or the `input_required` result for the client).
    pub async fn forward(&self, f: &Forwarding<'_>, target: Target, mut params: Value) -> Result<Value, RpcError> {
        if let Some(state) = params.get("requestState").and_then(Value::as_str).filter(|s| s.starts_with(PARKED_PREFIX))
        {
            let parked = self.parked.take(state, &f.ctx.principal, f.method, f.exposed)?;
            let responses = params.get("inputResponses").cloned().unwrap_or(Value::Null);
            return self.resume(f, parked, &responses).await;
        }
        if let Some(obj) = params.as_object_mut()
            && obj.contains_key("name")
            && f.method != "resources/read"
        {
            obj.insert("name".into(), Value::String(target.upstream_name.clone()));
        }
        if crate::telemetry::enabled() {
            crate::telemetry::inject(&mut params);
        }
        let header_params = match (&target.definition, f.method) {
            (Some(def), "tools/call") if target.conn.hello().era() == Era::Modern => {
                crate::inventory::param_headers(def.value(), params.get("arguments").unwrap_or(&Value::Null))
            }
            _ => vec![],
        };
        // Only a legacy client in front of a modern server may need the call again (with answers).
        let may_retry = f.ctx.era() == Era::Legacy && target.conn.hello().era() == Era::Modern;
        let mut next = Some(params);
        for _round in 0..MAX_ROUNDS {
            let Some(params) = next.take() else { break };
            let kept = may_retry.then(|| params.clone());
            let inflight = self.start_call(f.ctx, &target.conn, f.method, params, header_params.clone());
            match self.drive(f, inflight).await? {
                Driven::Parked(result) => return Ok(result),
                Driven::Done(mut result) => {
                    if is_input_required(&result) {
                        self.screen_input_requests(f, &target.server.info.name, &result)?;
                        guard_input_requests(&mut result, &target.server.info.sampling);
                    }
                    let Some(mut params) = kept.filter(|_| is_input_required(&result)) else {
                        return Ok(result);
                    };
                    // A legacy client cannot read input_required: ask it ourselves and retry.
                    let responses = self.fulfil(f, &result, &target.server.info.sampling).await?;
                    if let Some(obj) = params.as_object_mut() {
                        obj.insert("inputResponses".into(), responses);
                        match result.get("requestState") {
                            Some(state) => obj.insert("requestState".into(), state.clone()),
                            None => obj.remove("requestState"),
                        };
                    }
                    next = Some(params);
                }
            }
        }
        Err(RpcError::internal(format!(
            "server '{}' asked for input more than {MAX_ROUNDS} times",
            target.server.info.name
        )))
    }

    fn start_call(
        &self,
        ctx: &ClientContext,
        conn: &Arc<Connection>,
        method: &str,
        params: Value,
        header_params: Vec<(String, String)>,
    ) -> InFlight {
        let (tx, rx) = mpsc::channel(EXCHANGE_CAPACITY);
        let call = Call {
            method: method.to_owned(),
            params: Some(params),
            exchange: Some(tx),
            // Only a modern server reads the client's capabilities (from the request envelope).
            client_capabilities: (conn.hello().era() == Era::Modern).then(|| (*ctx.capabilities).clone()),
            header_params,
            // The forwarder times the call while it waits for it, not while it is parked.
            caller_times_out: true,
            ..Default::default()
        };
        let (timeout, server) = (conn.request_timeout(), conn.server().to_owned());
        let modern_server = conn.hello().era() == Era::Modern;
        let conn = conn.clone();
        InFlight {
            answer: Box::pin(async move { conn.call(call).await }),
            exchange: rx,
            exchange_open: true,
            timeout,
            server,
            modern_server,
        }
    }

    async fn drive(&self, f: &Forwarding<'_>, mut inflight: InFlight) -> Result<Driven, RpcError> {
        let deadline = tokio::time::sleep(inflight.timeout);
        tokio::pin!(deadline);
        let relays = Arc::new(tokio::sync::Semaphore::new(MAX_RELAYS_PER_CALL));
        loop {
            tokio::select! {
                biased;
                () = f.cancel.cancelled() => {
                    return Err(RpcError::new(error::UPSTREAM_CLOSED, "request cancelled"));
                }
                () = &mut deadline => {
                    // A server waiting for the client's answer is not silent; the relay has its own limit.
                    if relays.available_permits() < MAX_RELAYS_PER_CALL {
                        deadline.as_mut().reset(tokio::time::Instant::now() + inflight.timeout);
                        continue;
                    }
                    let e = UpstreamError::Timeout { server: inflight.server.clone(), timeout: inflight.timeout };
                    return Err(e.to_rpc());
                }
                event = inflight.exchange.recv(), if inflight.exchange_open => {
                    // The timeout is the longest the server may stay silent during a call.
                    if event.is_some() {
                        deadline.as_mut().reset(tokio::time::Instant::now() + inflight.timeout);
                    }
                    match event {
                    Some(Exchange::Notification(n)) => relay_notification(f.ctx, f.out, n),
                    Some(Exchange::Request(request)) => {
                        let Some(request) = self.screen(f.ctx, &inflight.server, request) else { continue };
                        if f.ctx.era() == Era::Legacy {
                            match relays.clone().try_acquire_owned() {
                                Ok(permit) => {
                                    let out = f.out.clone();
                                    let timeout = self.settings.input_required_ttl;
                                    let waiting = f.slot.map(CallSlot::waiting_on_client);
                                    let limits = self.sampling_limits(&inflight.server);
                                    tokio::spawn(async move {
                                        relay_request(request, out, timeout, limits).await;
                                        drop((permit, waiting));
                                    });
                                }
                                Err(_) => request.respond(Err(RpcError::new(error::UPSTREAM_UNAVAILABLE, "too many requests to the client are outstanding"))),
                            }
                        } else {
                            return self.park(f, inflight, vec![request]);
                        }
                    }
                    None => inflight.exchange_open = false,
                }},
                answer = &mut inflight.answer => {
                    // What the server said before it answered goes out before the answer.
                    while let Ok(event) = inflight.exchange.try_recv() {
                        match event {
                            Exchange::Notification(n) => relay_notification(f.ctx, f.out, n),
                            // Answered with an error when dropped: the call is over.
                            Exchange::Request(request) => drop(request),
                        }
                    }
                    return match answer {
                        Err(e) => Err(e.to_rpc()),
                        Ok(mut m) if m.kind() == Kind::Response => {
                            let result = m.take_result().unwrap_or_else(|| json!({}));
                            check_result(&inflight, f.method, &result)?;
                            Ok(Driven::Done(result))
                        }
                        Ok(m) => Err(self.translate_error(f, &inflight.server, m.rpc_error().unwrap_or_else(|| RpcError::internal("error")))),
                    };
                }
            }
        }
    }

    fn park(
        &self,
        f: &Forwarding<'_>,
        mut inflight: InFlight,
        mut first: Vec<ServerRequest>,
    ) -> Result<Driven, RpcError> {
        // Bundle any further requests the server has already made.
        while let Ok(Exchange::Request(r)) = inflight.exchange.try_recv() {
            if let Some(r) = self.screen(f.ctx, &inflight.server, r) {
                first.push(r);
            }
        }
        let mut call = ParkedCall::new(f.ctx.principal.clone(), f.method.to_owned(), f.exposed.to_owned(), inflight);
        for r in first {
            call.issued += 1;
            let key = format!(
                "{}-{}",
                r.method().rsplit('/').next().unwrap_or("input").replace(|c: char| !c.is_ascii_alphanumeric(), ""),
                call.issued
            );
            call.waiting.push((key, r));
        }
        self.park_and_ask(call)
    }

    fn park_and_ask(&self, call: ParkedCall) -> Result<Driven, RpcError> {
        let limits = self.sampling_limits(&call.inflight.server);
        let mut requests = Map::new();
        for (key, r) in &call.waiting {
            let mut entry = json!({ "method": r.method() });
            if let Some(p) = r.message().params() {
                let mut params = p.clone();
                crate::sanitize::guard_client_request(r.method(), Some(&mut params), &limits);
                entry["params"] = params;
            }
            requests.insert(key.clone(), entry);
        }
        let state = self.parked.park(call)?;
        Ok(Driven::Parked(json!({
            "resultType": "input_required",
            "inputRequests": requests,
            "requestState": state,
        })))
    }

    async fn resume(&self, f: &Forwarding<'_>, mut call: ParkedCall, responses: &Value) -> Result<Value, RpcError> {
        let mut still_waiting = Vec::new();
        for (key, request) in call.waiting.drain(..) {
            match responses.get(&key) {
                Some(answer) if !answer.is_null() => request.respond(Ok(answer.clone())),
                _ => still_waiting.push((key, request)),
            }
        }
        if !still_waiting.is_empty() {
            call.waiting = still_waiting;
            return match self.park_and_ask(call)? {
                Driven::Parked(v) | Driven::Done(v) => Ok(v),
            };
        }
        let ParkedCall { inflight, .. } = call;
        match self.drive(f, inflight).await? {
            Driven::Done(v) | Driven::Parked(v) => Ok(v),
        }
    }

    /// Asks a legacy client each input request of a modern server's `input_required` result.
    async fn fulfil(&self, f: &Forwarding<'_>, result: &Value, limits: &SamplingLimits) -> Result<Value, RpcError> {
        let _waiting = f.slot.map(CallSlot::waiting_on_client);
        let requests = result.get("inputRequests").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut asks = Vec::new();
        for (key, request) in requests {
            let method = request.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
            if let Some(cap) = capability_for(&method) {
                if !f.ctx.has_capability(cap) {
                    return Err(RpcError::new(
                        error::MISSING_REQUIRED_CLIENT_CAPABILITY,
                        format!(
                            "the server needs {method}, which needs the {cap} capability this client did not declare"
                        ),
                    )
                    .with_data(json!({ "requiredCapabilities": { cap: {} } })));
                }
            } else {
                return Err(RpcError::new(
                    error::UPSTREAM_INVALID_RESPONSE,
                    "the server asked for an input the protocol does not define",
                ));
            }
            let mut params = request.get("params").cloned();
            crate::sanitize::guard_client_request(&method, params.as_mut(), limits);
            let out = f.out.clone();
            let timeout = self.settings.input_required_ttl;
            asks.push(async move { out.request(&method, params, timeout).await.map(|v| (key, v)) });
        }
        let answers = futures::future::try_join_all(asks).await?;
        Ok(Value::Object(answers.into_iter().collect()))
    }

    /// Lets a server's request to the client through only if the client declared the capability
    /// it needs and the policies allow the server to ask this principal; otherwise the server is
    /// answered with the refusal and `None` is returned.
    fn screen(&self, ctx: &ClientContext, server: &str, request: ServerRequest) -> Option<ServerRequest> {
        let verdict = self.server_request_allowed(ctx, server, request.method(), request.message().params());
        match verdict {
            Ok(()) => Some(request),
            Err(e) => {
                request.respond(Err(e));
                None
            }
        }
    }

    /// Decides a server's request to the client, and records the decision.
    fn server_request_allowed(
        &self,
        ctx: &ClientContext,
        server: &str,
        method: &str,
        params: Option<&Value>,
    ) -> Result<(), RpcError> {
        let verdict = self.decide_server_request(ctx, server, method, params);
        self.auditor.server_request(ctx, server, method, verdict.as_ref().err());
        verdict
    }

    fn decide_server_request(
        &self,
        ctx: &ClientContext,
        server: &str,
        method: &str,
        params: Option<&Value>,
    ) -> Result<(), RpcError> {
        match capability_for(method) {
            Some(cap) if ctx.has_capability(cap) => {}
            Some(cap) => {
                return Err(RpcError::new(
                    error::METHOD_NOT_FOUND,
                    format!("the client did not declare the {cap} capability"),
                ));
            }
            None => {
                return Err(RpcError::new(
                    error::METHOD_NOT_FOUND,
                    format!("{method} cannot be relayed to this client"),
                ));
            }
        }
        self.authorizer.permit_server_request(&ctx.principal, ctx.era(), server, method, params)
    }

    /// Refuses the call when a 2026-07-28 server's `input_required` asks this client something
    /// the policies do not allow that server to ask, or something Warden does not know.
    fn screen_input_requests(&self, f: &Forwarding<'_>, server: &str, result: &Value) -> Result<(), RpcError> {
        let requests = result.get("inputRequests").and_then(Value::as_object);
        for request in requests.into_iter().flat_map(|r| r.values()) {
            let method = request.get("method").and_then(Value::as_str).unwrap_or_default();
            self.server_request_allowed(f.ctx, server, method, request.get("params"))?;
        }
        Ok(())
    }

    /// A server's error as the client gets it. Codes Warden gives meaning to are Warden's alone: a
    /// server cannot make a client believe the gateway refused it (or ask for more scopes), and
    /// a server's demand for a URL elicitation is an elicitation the policies must allow.
    fn translate_error(&self, f: &Forwarding<'_>, server: &str, mut e: RpcError) -> RpcError {
        let original = OriginalCall { server, method: f.method, item: Some(f.exposed), request_id: f.request_id };
        self.keep_original_error(f.ctx, &original, &e);
        // R9: a server's error reaches the client without the secrets it may carry.
        if self.output.scrub_error(&mut e) > 0 {
            tracing::info!(%server, "redacted secrets from a server's error");
        }
        if WARDEN_CODES.contains(&e.code) {
            let data = json!({ "serverCode": e.code, "serverData": e.data.take() });
            e.code = error::INTERNAL_ERROR;
            e.data = Some(data);
        }
        if e.code == error::URL_ELICITATION_REQUIRED {
            let elicitations = e.data.as_ref().and_then(|d| d.get("elicitations")).and_then(Value::as_array);
            let asked = elicitations.map(Vec::as_slice).unwrap_or_default();
            let refused = asked.iter().chain(asked.is_empty().then_some(&Value::Null)).find_map(|params| {
                self.server_request_allowed(f.ctx, server, "elicitation/create", Some(params)).err()
            });
            if let Some(refusal) = refused {
                return refusal;
            }
        }
        // A server's error message is passed on, but not without bound.
        if e.message.len() > MAX_UPSTREAM_MESSAGE {
            let cut = (0..=MAX_UPSTREAM_MESSAGE).rev().find(|i| e.message.is_char_boundary(*i)).unwrap_or(0);
            e.message.truncate(cut);
            e.message.push('…');
        }
        if f.method == "resources/read" && f.ctx.era() == Era::Modern && e.code == error::RESOURCE_NOT_FOUND_LEGACY {
            e.code = error::INVALID_PARAMS;
            if e.data.is_none() {
                e.data = Some(json!({ "uri": f.exposed }));
            }
        }
        e
    }
}

/// Whose request a server's error answered.
pub(crate) struct OriginalCall<'a> {
    pub server: &'a str,
    pub method: &'a str,
    pub item: Option<&'a str>,
    pub request_id: &'a str,
}

impl Gateway {
    /// Keeps a server's error as it sent it, where `[output] server_errors = "keep"`, before it
    /// is scrubbed for the client. Written in the background: the answer does not wait for it.
    pub(crate) fn keep_original_error(&self, ctx: &ClientContext, call: &OriginalCall<'_>, e: &RpcError) {
        let Some(store) = self.kept_errors.get().cloned() else { return };
        let (server, method) = (call.server.to_owned(), call.method.to_owned());
        let item = call.item.map(str::to_owned);
        let request_id = call.request_id.to_owned();
        let session_id = ctx.session.as_ref().map(|s| s.id.clone());
        let actor_id = ctx.principal.subject.clone();
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

/// The codes of Warden's own errors (-32003 to -32019): never relayed from a server as they are.
const WARDEN_CODES: std::ops::RangeInclusive<i32> = -32019..=error::POLICY_DENIED;

/// Refuses results no server may send: one that does not parse as `method`'s result type, and
/// `input_required` from a 2025-era server (it would bypass the bridging that checks what the
/// client may be asked). The client gets an error, never the frame.
fn check_result(inflight: &InFlight, method: &str, result: &Value) -> Result<(), RpcError> {
    if !inflight.modern_server && is_input_required(result) {
        let reason = "a 2025-era server cannot answer input_required".to_owned();
        return Err(UpstreamError::Protocol { server: inflight.server.clone(), reason }.to_rpc());
    }
    check_shape(&inflight.server, method, result)
}

/// Refuses a result that does not parse as `method`'s result type; what the parser said is
/// logged (it may quote the server), not relayed.
pub(crate) fn check_shape(server: &str, method: &str, result: &Value) -> Result<(), RpcError> {
    warden_protocol::typed::check_result(method, result).map_err(|m| {
        let detail = crate::sanitize::redacted_for_log(&m.detail);
        tracing::warn!(server, method, %detail, "refused a malformed result");
        let reason = format!("its answer is not a valid {method} result");
        UpstreamError::Protocol { server: server.to_owned(), reason }.to_rpc()
    })
}

/// Applies the sampling guard to the requests an `input_required` result carries.
fn guard_input_requests(result: &mut Value, limits: &SamplingLimits) {
    let Some(requests) = result.get_mut("inputRequests").and_then(Value::as_object_mut) else { return };
    for request in requests.values_mut() {
        let method = request.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
        crate::sanitize::guard_client_request(&method, request.get_mut("params"), limits);
    }
}

fn is_input_required(result: &Value) -> bool {
    result.get("resultType").and_then(Value::as_str) == Some("input_required")
}

fn relay_notification(ctx: &ClientContext, out: &Outbound, mut n: Message) {
    crate::sanitize::clean_notification(&mut n);
    match n.method() {
        Some("notifications/progress") => out.notify(n),
        Some("notifications/message") => {
            let level = ctx.effective_log_level();
            // A modern client that named no level gets no log messages.
            let wanted = ctx.era() == Era::Legacy || level.is_some();
            if wanted && levels::permits(level.as_deref(), n.params()) {
                out.notify(n);
            } else {
                tracing::debug!(?level, "a log message below the client's level was not relayed");
            }
        }
        _ => tracing::debug!(method = ?n.method(), "dropped a request-scoped notification"),
    }
}

async fn relay_request(request: ServerRequest, out: Outbound, timeout: Duration, limits: SamplingLimits) {
    let method = request.method().to_owned();
    let mut params = request.message().params().cloned();
    crate::sanitize::guard_client_request(&method, params.as_mut(), &limits);
    let answer = out.request(&method, params, timeout).await;
    request.respond(answer);
}
