//! A call (`tools/call`, `prompts/get`, `resources/read`) on its server, and everything the server
//! says while serving it.
//!
//! Progress and log messages go back to the client on the call's own stream, and requests the
//! server makes of the client are where the eras meet; every one of them passes the
//! server-message guards first:
//!
//! | client | server | what Warden does |
//! |---|---|---|
//! | legacy | legacy | sends the server's request to the client and relays the answer |
//! | modern | modern | passes `input_required` and the client's retry through |
//! | modern | legacy | answers the client with `input_required` and parks the server's request until the retry |
//! | legacy | modern | asks the client each input request itself and retries the call with the answers |

use super::Forward;
use super::parked::{PARKED_PREFIX, ParkedCall};
use crate::catalogue::{ServerKind, server_kind};
use crate::client::capability_for;
use crate::guard::exchange::is_input_required;
use crate::guard::limit::CallSlot;
use crate::guard::{Reply, Request};
use crate::levels;
use crate::resolver::Target;
use crate::servers::{ServerError, ServerInfo};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use warden_protocol::{Era, Kind, Message, RpcError, error};
use warden_upstream::{Call, Connection, EXCHANGE_CAPACITY, Exchange, ServerRequest, UpstreamError};

/// Most `input_required` rounds Warden drives for one legacy client's call.
const MAX_ROUNDS: usize = 10;
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
    server: Arc<ServerInfo>,
    modern_server: bool,
}

impl InFlight {
    /// The server the call went to.
    pub fn server(&self) -> &str {
        &self.server.name
    }

    /// What the gateway knows of that server.
    pub fn server_info(&self) -> &Arc<ServerInfo> {
        &self.server
    }

    /// A call that never answers, for tests of what holds calls.
    #[cfg(test)]
    pub(crate) fn never(server: Arc<ServerInfo>) -> InFlight {
        let (_tx, rx) = mpsc::channel(1);
        InFlight {
            answer: Box::pin(std::future::pending()),
            exchange: rx,
            exchange_open: false,
            timeout: Duration::from_secs(1),
            server,
            modern_server: false,
        }
    }
}

/// The scopes the tool called names, which a credential obtained for the caller asks for.
fn tool_scopes<'a>(request: &'a Request<'_>) -> Option<&'a [String]> {
    request.tool.as_ref().and_then(|t| t.settings.scopes.as_deref())
}

/// How a call on its server went.
enum Driven {
    /// The server answered.
    Done(Reply),
    /// The call is parked; this `input_required` result goes to the client.
    Parked(Value),
}

impl Forward {
    /// Forwards a call and returns its reply (or the `input_required` result for the client).
    /// Forwards a call under the constraints of the policies that allowed it: cancelled after
    /// `max_runtime`, and refused once it has failed more than `max_retries` times lately.
    pub(super) async fn call(&self, request: &mut Request<'_>, target: &Target) -> Result<Reply, RpcError> {
        let constraints = request.note.decision.as_ref().map(|d| d.constraints).unwrap_or_default();
        let retry_key = constraints.max_retries.map(|_| {
            super::constraints::Retries::key(
                &request.ctx.principal.identity_key(),
                &target.server.name,
                &target.upstream_name,
                request.params.get("arguments"),
            )
        });
        if let (Some(allowed), Some(key)) = (constraints.max_retries, &retry_key) {
            let failures = self.retries.failures(key, std::time::Instant::now());
            if failures > allowed {
                return Err(RpcError::new(
                    error::CALL_LIMIT,
                    format!(
                        "this call has failed {failures} times; the policy that allows it permits {allowed} {}",
                        if allowed == 1 { "retry" } else { "retries" }
                    ),
                )
                .with_data(json!({ "max_retries": allowed })));
            }
        }
        let outcome = match constraints.max_runtime {
            Some(limit) => match tokio::time::timeout(limit, self.call_once(request, target)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(RpcError::new(
                    error::REQUEST_TIMEOUT,
                    format!(
                        "the call ran past the {} s the policy that allows it permits, and was cancelled",
                        limit.as_secs()
                    ),
                )
                .with_data(json!({ "max_runtime_sec": limit.as_secs() }))),
            },
            None => self.call_once(request, target).await,
        };
        if let Some(key) = retry_key {
            let failed = match &outcome {
                Ok(Reply::Result(r)) => r.get("isError").and_then(Value::as_bool) == Some(true),
                Ok(Reply::ServerError(_) | Reply::Error(_)) | Err(_) => true,
            };
            self.retries.record(key, failed, std::time::Instant::now());
        }
        outcome
    }

    async fn call_once(&self, request: &mut Request<'_>, target: &Target) -> Result<Reply, RpcError> {
        let conn = target.via.as_ref().map(|v| v.conn.clone()).ok_or_else(|| RpcError::internal("no connection"))?;
        let mut params = request.params.clone();
        if let Some(state) = params.get("requestState").and_then(Value::as_str).filter(|s| s.starts_with(PARKED_PREFIX))
        {
            let parked = self.parked.take(state, &request.ctx.principal, request.method, &request.resume_key())?;
            let responses = params.get("inputResponses").cloned().unwrap_or(Value::Null);
            return self.resume(request, parked, &responses).await;
        }
        if let Some(obj) = params.as_object_mut()
            && obj.contains_key("name")
            && request.method != "resources/read"
        {
            obj.insert("name".into(), Value::String(target.upstream_name.clone()));
        }
        if crate::telemetry::enabled() {
            crate::telemetry::inject(&mut params);
        }
        // A credential obtained for this caller is obtained before anything is sent (a refusal
        // fails the call closed, with its reason), and named in the call's audit row.
        if let Some(credentials) = &target.server.credentials {
            let issued = credentials.token(&request.ctx.principal, &target.server.name, tool_scopes(request)).await?;
            request.note.findings.push(json!({ "rule": "upstream_credential", "token": issued.id }));
        }
        let header_params = match (&target.definition, request.method) {
            (Some(def), "tools/call") if conn.hello().era() == Era::Modern => {
                crate::headers::param_headers(def.value(), params.get("arguments").unwrap_or(&Value::Null))
            }
            _ => vec![],
        };
        // Only a legacy client in front of a modern server may need the call again (with answers).
        let may_retry = request.ctx.era() == Era::Legacy && conn.hello().era() == Era::Modern;
        let mut next = Some(params);
        for _round in 0..MAX_ROUNDS {
            let Some(params) = next.take() else { break };
            let kept = may_retry.then(|| params.clone());
            let inflight = self.start(request, &target.server, &conn, params, header_params.clone());
            let result = match self.drive(request, inflight).await? {
                Driven::Parked(result) => return Ok(Reply::Result(result)),
                Driven::Done(Reply::Result(result)) => result,
                Driven::Done(other) => return Ok(other),
            };
            let Some(mut params) = kept.filter(|_| is_input_required(&result)) else {
                return Ok(Reply::Result(result));
            };
            // A legacy client cannot read input_required: ask it ourselves and retry.
            let responses = self.fulfil(request, &target.server, &result).await?;
            if let Some(obj) = params.as_object_mut() {
                obj.insert("inputResponses".into(), responses);
                match result.get("requestState") {
                    Some(state) => obj.insert("requestState".into(), state.clone()),
                    None => obj.remove("requestState"),
                };
            }
            next = Some(params);
        }
        Err(RpcError::internal(format!("server '{}' asked for input more than {MAX_ROUNDS} times", target.server.name)))
    }

    fn start(
        &self,
        request: &Request<'_>,
        server: &Arc<ServerInfo>,
        conn: &Arc<Connection>,
        params: Value,
        header_params: Vec<(String, String)>,
    ) -> InFlight {
        let (tx, rx) = mpsc::channel(EXCHANGE_CAPACITY);
        let modern_server = conn.hello().era() == Era::Modern;
        let call = Call {
            method: request.method.to_owned(),
            params: Some(params),
            exchange: Some(tx),
            // Only a modern server reads the client's capabilities (from the request envelope).
            client_capabilities: modern_server.then(|| (*request.ctx.capabilities).clone()),
            header_params,
            scopes: crate::credentials::Credentials::scopes_for(tool_scopes(request)),
            // The forwarder times the call while it waits for it, not while it is parked.
            caller_times_out: true,
            ..Default::default()
        };
        let timeout = conn.request_timeout();
        let conn = conn.clone();
        InFlight {
            answer: Box::pin(async move { conn.call(call).await }),
            exchange: rx,
            exchange_open: true,
            timeout,
            server: server.clone(),
            modern_server,
        }
    }

    async fn drive(&self, request: &Request<'_>, mut inflight: InFlight) -> Result<Driven, RpcError> {
        let deadline = tokio::time::sleep(inflight.timeout);
        tokio::pin!(deadline);
        let relays = Arc::new(tokio::sync::Semaphore::new(MAX_RELAYS_PER_CALL));
        loop {
            tokio::select! {
                biased;
                () = request.cancel.cancelled() => {
                    return Err(RpcError::new(error::UPSTREAM_CLOSED, "request cancelled"));
                }
                () = &mut deadline => {
                    // A server waiting for the client's answer is not silent; the relay has its own limit.
                    if relays.available_permits() < MAX_RELAYS_PER_CALL {
                        deadline.as_mut().reset(tokio::time::Instant::now() + inflight.timeout);
                        continue;
                    }
                    let e = UpstreamError::Timeout { server: inflight.server.name.clone(), timeout: inflight.timeout };
                    return Err(e.to_rpc());
                }
                event = inflight.exchange.recv(), if inflight.exchange_open => {
                    // The timeout is the longest the server may stay silent during a call.
                    if event.is_some() {
                        deadline.as_mut().reset(tokio::time::Instant::now() + inflight.timeout);
                    }
                    match event {
                        Some(Exchange::Notification(n)) => self.relay_notification(request, &inflight.server, n),
                        Some(Exchange::Request(server_request)) => {
                            let Some((server_request, params)) = self.pass_request(request, &inflight.server, server_request) else {
                                continue;
                            };
                            if request.ctx.era() != Era::Legacy {
                                return self.park(request, inflight, vec![(server_request, params)]);
                            }
                            match relays.clone().try_acquire_owned() {
                                Ok(permit) => {
                                    let out = request.out.clone();
                                    let timeout = self.input_required_ttl;
                                    let waiting = request.slot.as_ref().map(CallSlot::waiting_on_client);
                                    let (messages, server) = (self.messages.clone(), inflight.server.clone());
                                    tokio::spawn(async move {
                                        let method = server_request.method().to_owned();
                                        let mut answer = out.request(&method, params, timeout).await;
                                        messages.answer(&server, &method, &mut answer);
                                        server_request.respond(answer);
                                        drop((permit, waiting));
                                    });
                                }
                                Err(_) => server_request.respond(Err(RpcError::new(error::UPSTREAM_UNAVAILABLE, "too many requests to the client are outstanding"))),
                            }
                        }
                        None => inflight.exchange_open = false,
                    }
                }
                answer = &mut inflight.answer => {
                    // What the server said before it answered goes out before the answer.
                    while let Ok(event) = inflight.exchange.try_recv() {
                        match event {
                            Exchange::Notification(n) => self.relay_notification(request, &inflight.server, n),
                            // Answered with an error when dropped: the call is over.
                            Exchange::Request(server_request) => drop(server_request),
                        }
                    }
                    return match answer {
                        Err(e) => Err(e.to_rpc()),
                        Ok(mut m) if m.kind() == Kind::Response => {
                            let mut result = m.take_result().unwrap_or_else(|| json!({}));
                            if is_input_required(&result) {
                                if !inflight.modern_server {
                                    // It would bypass the bridging that checks what the client may be asked.
                                    let reason = "a 2025-era server cannot answer input_required".to_owned();
                                    return Err(UpstreamError::Protocol { server: inflight.server.name.clone(), reason }.to_rpc());
                                }
                                // Whatever path the call took (first answer, or resumed), what it
                                // asks the client passes the server-message guards.
                                self.pass_input_requests(request, &inflight.server, &mut result)?;
                            }
                            Ok(Driven::Done(Reply::Result(result)))
                        }
                        Ok(m) => {
                            let e = m.rpc_error().unwrap_or_else(|| RpcError::internal("error"));
                            Ok(Driven::Done(Reply::ServerError(ServerError::from_server(e))))
                        }
                    };
                }
            }
        }
    }

    /// A server's request during a call, through the server-message guards: the request with its
    /// params as they may be relayed, or `None` when it was answered (refused, or by the gateway).
    fn pass_request(
        &self,
        request: &Request<'_>,
        server: &ServerInfo,
        server_request: ServerRequest,
    ) -> Option<(ServerRequest, Option<Value>)> {
        let method = server_request.method().to_owned();
        let mut params = server_request.message().params().cloned();
        match self.messages.request(server, Some(request.ctx), Some(&request.note.request_id), &method, &mut params) {
            Ok(None) => Some((server_request, params)),
            Ok(Some(answer)) => {
                server_request.respond(Ok(answer));
                None
            }
            Err(e) => {
                server_request.respond(Err(e));
                None
            }
        }
    }

    /// A server's notification during a call: to the calling client, if it wants it, once the
    /// server-message guards passed it.
    fn relay_notification(&self, request: &Request<'_>, server: &ServerInfo, mut n: Message) {
        let method = n.method().unwrap_or_default().to_owned();
        match server_kind(&method) {
            Some(ServerKind::Progress) => {}
            Some(ServerKind::Log) => {
                let level = request.ctx.effective_log_level();
                // A modern client that named no level gets no log messages.
                let wanted = request.ctx.era() == Era::Legacy || level.is_some();
                if !(wanted && levels::permits(level.as_deref(), n.params())) {
                    tracing::debug!(?level, "a log message below the client's level was not relayed");
                    return;
                }
            }
            _ => {
                tracing::debug!(method = %crate::names::shown(&method), "dropped a request-scoped notification");
                return;
            }
        }
        if self.messages.notification(server, Some(request.ctx), Some(&request.note.request_id), &mut n) {
            request.out.notify(n);
        }
    }

    fn park(
        &self,
        request: &Request<'_>,
        mut inflight: InFlight,
        mut first: Vec<(ServerRequest, Option<Value>)>,
    ) -> Result<Driven, RpcError> {
        // Bundle any further requests the server has already made; what it said meanwhile goes out.
        while let Ok(event) = inflight.exchange.try_recv() {
            match event {
                Exchange::Request(r) => {
                    if let Some(passed) = self.pass_request(request, &inflight.server, r) {
                        first.push(passed);
                    }
                }
                Exchange::Notification(n) => self.relay_notification(request, &inflight.server, n),
            }
        }
        let mut call =
            ParkedCall::new(request.ctx.principal.clone(), request.method.to_owned(), request.resume_key(), inflight);
        for (r, params) in first {
            call.issued += 1;
            let key = format!(
                "{}-{}",
                r.method().rsplit('/').next().unwrap_or("input").replace(|c: char| !c.is_ascii_alphanumeric(), ""),
                call.issued
            );
            call.waiting.push((key, r, params));
        }
        self.park_and_ask(call)
    }

    fn park_and_ask(&self, call: ParkedCall) -> Result<Driven, RpcError> {
        let mut requests = Map::new();
        for (key, r, params) in &call.waiting {
            let mut entry = json!({ "method": r.method() });
            if let Some(p) = params {
                entry["params"] = p.clone();
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

    async fn resume(&self, request: &Request<'_>, mut call: ParkedCall, responses: &Value) -> Result<Reply, RpcError> {
        let mut still_waiting = Vec::new();
        let server = call.inflight.server_info().clone();
        for (key, server_request, params) in call.waiting.drain(..) {
            match responses.get(&key) {
                Some(answer) if !answer.is_null() => {
                    let mut answer = Ok(answer.clone());
                    self.messages.answer(&server, server_request.method(), &mut answer);
                    server_request.respond(answer);
                }
                _ => still_waiting.push((key, server_request, params)),
            }
        }
        if !still_waiting.is_empty() {
            call.waiting = still_waiting;
            return match self.park_and_ask(call)? {
                Driven::Parked(v) => Ok(Reply::Result(v)),
                Driven::Done(reply) => Ok(reply),
            };
        }
        let ParkedCall { inflight, .. } = call;
        match self.drive(request, inflight).await? {
            Driven::Done(reply) => Ok(reply),
            Driven::Parked(v) => Ok(Reply::Result(v)),
        }
    }

    /// A 2026-07-28 server's `input_required` asks the client things: each request it carries
    /// passes the server-message guards (refusing the call if one is refused), and is replaced by
    /// its params as they passed.
    fn pass_input_requests(
        &self,
        request: &Request<'_>,
        server: &ServerInfo,
        result: &mut Value,
    ) -> Result<(), RpcError> {
        let Some(requests) = result.get_mut("inputRequests").and_then(Value::as_object_mut) else { return Ok(()) };
        for asked in requests.values_mut() {
            let method = asked.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
            let mut params = asked.get("params").cloned();
            let within = Some(request.note.request_id.as_str());
            if self.messages.request(server, Some(request.ctx), within, &method, &mut params)?.is_some() {
                // Only what a client answers belongs here (a ping does not).
                return Err(RpcError::new(
                    error::UPSTREAM_INVALID_RESPONSE,
                    "the server asked for an input the protocol does not define",
                ));
            }
            match params {
                Some(p) => asked["params"] = p,
                None => {
                    if let Some(o) = asked.as_object_mut() {
                        o.remove("params");
                    }
                }
            }
        }
        Ok(())
    }

    /// Asks a legacy client each input request of a modern server's `input_required` result (they
    /// passed the server-message guards already).
    async fn fulfil(&self, request: &Request<'_>, server: &Arc<ServerInfo>, result: &Value) -> Result<Value, RpcError> {
        let _waiting = request.slot.as_ref().map(CallSlot::waiting_on_client);
        let requests = result.get("inputRequests").and_then(Value::as_object).cloned().unwrap_or_default();
        let mut asks = Vec::new();
        for (key, asked) in requests {
            let method = asked.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
            let Some(cap) = capability_for(&method) else {
                return Err(RpcError::new(
                    error::UPSTREAM_INVALID_RESPONSE,
                    "the server asked for an input the protocol does not define",
                ));
            };
            if !request.ctx.has_capability(cap) {
                return Err(RpcError::new(
                    error::MISSING_REQUIRED_CLIENT_CAPABILITY,
                    format!("the server needs {method}, which needs the {cap} capability this client did not declare"),
                )
                .with_data(json!({ "requiredCapabilities": { cap: {} } })));
            }
            let params = asked.get("params").cloned();
            let out = request.out.clone();
            let timeout = self.input_required_ttl;
            let (messages, server) = (self.messages.clone(), server.clone());
            asks.push(async move {
                let mut answer = out.request(&method, params, timeout).await;
                messages.answer(&server, &method, &mut answer);
                answer.map(|v| (key, v))
            });
        }
        let answers = futures::future::try_join_all(asks).await?;
        Ok(Value::Object(answers.into_iter().collect()))
    }
}
