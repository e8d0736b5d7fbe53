//! One live connection to an MCP server, after the handshake, in one era.
//!
//! Opening a connection negotiates the era: Warden probes with `server/discover` and speaks the
//! stateless 2026-07-28 protocol to servers that answer it, and falls back to `initialize` for the
//! rest (or uses whichever era the spec pins). Callers then use [`Connection::call`] alike for both:
//! the connection adds the per-request envelope for modern servers and strips it for legacy ones.

use crate::core::{Core, Exchange, ServerEvent};
use crate::error::UpstreamError;
use crate::http::{HttpTransport, ModernHeaders, Probe};
use crate::spec::{EraPreference, TransportSpec, UpstreamSpec};
use crate::stdio::StdioTransport;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_protocol::{Era, Id, Kind, Message, ProtocolVersion, RpcError, meta, methods};

/// What the server said about itself in the handshake.
#[derive(Debug, Clone)]
pub struct Hello {
    /// The negotiated protocol version.
    pub version: ProtocolVersion,
    /// The server's capabilities.
    pub capabilities: Value,
    /// The server's self-reported identity.
    pub server_info: Value,
    /// The server's instructions for the model, if any.
    pub instructions: Option<String>,
}

impl Hello {
    /// The era of the negotiated version.
    pub fn era(&self) -> Era {
        self.version.era()
    }

    /// Whether the server advertised a capability (for example `"tools"`).
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.get(name).is_some_and(|v| !v.is_null())
    }
}

/// One request to send upstream.
#[derive(Debug, Default)]
pub struct Call {
    /// The method.
    pub method: String,
    /// The params, with the server-facing name already in place.
    pub params: Option<Value>,
    /// Where request-scoped messages from the server go; `None` drops them.
    pub exchange: Option<mpsc::Sender<Exchange>>,
    /// Cancels the request (for example when the client goes away).
    pub cancel: Option<CancellationToken>,
    /// Overrides the server's request timeout.
    pub timeout: Option<Duration>,
    /// The client capabilities to declare on a modern request; the spec's defaults otherwise.
    pub client_capabilities: Option<Value>,
    /// The scopes the request's credential needs, for a server whose credential is provided per
    /// request (`None`: the server's usual ones).
    pub scopes: Option<Vec<String>>,
    /// `Mcp-Param-*` headers for a modern HTTP `tools/call`: `(Name, encoded value)`.
    pub header_params: Vec<(String, String)>,
    /// The caller enforces its own deadline (for example across an `input_required` pause), so
    /// the connection applies none.
    pub caller_times_out: bool,
}

impl Call {
    /// A call with just a method and params.
    pub fn new(method: impl Into<String>, params: Option<Value>) -> Self {
        Call { method: method.into(), params, ..Default::default() }
    }
}

enum Transport {
    Stdio(StdioTransport),
    Http(HttpTransport),
}

/// A connection to one server.
pub struct Connection {
    spec: Arc<UpstreamSpec>,
    core: Arc<Core>,
    transport: Transport,
    hello: Hello,
    listen_seq: AtomicU64,
}

const PROBE_TIMEOUT_STDIO: Duration = Duration::from_secs(5);

impl Connection {
    /// Starts or reaches the server and completes the handshake. Unsolicited messages from the
    /// server go to `events`.
    pub async fn open(
        spec: Arc<UpstreamSpec>,
        events: mpsc::Sender<ServerEvent>,
    ) -> Result<Arc<Connection>, UpstreamError> {
        let timeout = spec.connect_timeout;
        let name = spec.name.clone();
        match tokio::time::timeout(timeout, Self::open_inner(spec, events)).await {
            Ok(r) => r,
            Err(_) => Err(UpstreamError::Unavailable {
                server: name,
                reason: format!("the handshake did not complete within {timeout:?}"),
                retry_after: None,
            }),
        }
    }

    async fn open_inner(
        spec: Arc<UpstreamSpec>,
        events: mpsc::Sender<ServerEvent>,
    ) -> Result<Arc<Connection>, UpstreamError> {
        let core = Arc::new(Core::new(spec.name.clone(), events.clone(), spec.infer_log_association));
        let placeholder = Hello {
            version: ProtocolVersion::LATEST_LEGACY,
            capabilities: json!({}),
            server_info: json!({}),
            instructions: None,
        };
        let transport = match &spec.transport {
            TransportSpec::Stdio { .. } => Transport::Stdio(StdioTransport::spawn(&spec, core.clone())?),
            TransportSpec::Http { .. } => Transport::Http(HttpTransport::new(&spec, core.clone())?.0),
        };
        let mut conn =
            Connection { spec: spec.clone(), core, transport, hello: placeholder, listen_seq: AtomicU64::new(0) };
        let hello = match spec.era {
            EraPreference::Legacy => conn.initialize().await?,
            EraPreference::Modern => match conn.discover().await? {
                Some(h) => h,
                None => return Err(UpstreamError::EraUnsupported { server: spec.name.clone(), era: Era::Modern }),
            },
            EraPreference::Auto => match conn.discover().await? {
                Some(h) => h,
                None => {
                    if conn.is_closed() {
                        // Some legacy servers exit on an unknown first request: start afresh.
                        let mut legacy = (*spec).clone();
                        legacy.era = EraPreference::Legacy;
                        return Box::pin(Self::open_inner(Arc::new(legacy), events)).await;
                    }
                    conn.initialize().await?
                }
            },
        };
        tracing::info!(server = %spec.name, version = %hello.version, era = %hello.era(), "connected to server");
        if let Transport::Http(h) = &conn.transport {
            h.set_version(hello.version);
        }
        conn.hello = hello;
        let conn = Arc::new(conn);
        if conn.hello.era() == Era::Legacy
            && let Transport::Http(h) = &conn.transport
        {
            let ready = h.open_get_stream(conn.core.clone());
            let _ = tokio::time::timeout(Duration::from_secs(5), ready).await;
        }
        Ok(conn)
    }

    fn envelope(&self, version: &str, capabilities: Option<&Value>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(meta::PROTOCOL_VERSION.into(), json!(version));
        m.insert(meta::CLIENT_INFO.into(), self.spec.client_info.clone());
        m.insert(
            meta::CLIENT_CAPABILITIES.into(),
            capabilities.cloned().unwrap_or_else(|| self.spec.client_capabilities.clone()),
        );
        m
    }

    /// Probes with `server/discover`; `None` when the server is not modern.
    async fn discover(&self) -> Result<Option<Hello>, UpstreamError> {
        let mut version = ProtocolVersion::LATEST_MODERN.as_str().to_owned();
        for _attempt in 0..2 {
            let params = json!({ "_meta": self.envelope(&version, None) });
            let probe_id = Id::string("warden-discover");
            let msg = Message::request(probe_id, "server/discover", Some(params.clone()));
            let outcome = match &self.transport {
                Transport::Http(h) => h.probe(&msg).await?,
                Transport::Stdio(_) => {
                    let call =
                        Call { timeout: Some(PROBE_TIMEOUT_STDIO), ..Call::new("server/discover", Some(params)) };
                    match self.send_raw(call).await {
                        Ok(m) if m.kind() == Kind::Response => {
                            Probe::Modern(m.result().cloned().unwrap_or(Value::Null))
                        }
                        Ok(m) => {
                            let e = m.rpc_error().unwrap_or_else(|| RpcError::internal("?"));
                            let supported =
                                e.data.as_ref().and_then(|d| d.get("supported")).and_then(Value::as_array).cloned();
                            match supported {
                                Some(s) if e.code == warden_protocol::error::UNSUPPORTED_PROTOCOL_VERSION => {
                                    Probe::Retry(s.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                                }
                                _ => Probe::Legacy,
                            }
                        }
                        Err(UpstreamError::Timeout { .. } | UpstreamError::Closed { .. }) => Probe::Legacy,
                        Err(e) => return Err(e),
                    }
                }
            };
            match outcome {
                Probe::Modern(result) => {
                    let supported: Vec<ProtocolVersion> = result
                        .get("supportedVersions")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(Value::as_str).filter_map(ProtocolVersion::parse).collect())
                        .unwrap_or_default();
                    let Some(v) = supported.into_iter().filter(|v| v.era() == Era::Modern).max() else {
                        return Ok(None);
                    };
                    let server_info = result
                        .get("_meta")
                        .and_then(|m| m.get(meta::SERVER_INFO))
                        .cloned()
                        .unwrap_or_else(|| json!({}));
                    return Ok(Some(Hello {
                        version: v,
                        capabilities: result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
                        server_info,
                        instructions: result.get("instructions").and_then(Value::as_str).map(str::to_owned),
                    }));
                }
                Probe::Retry(supported) => {
                    match supported
                        .iter()
                        .filter_map(|s| ProtocolVersion::parse(s))
                        .filter(|v| v.era() == Era::Modern)
                        .max()
                    {
                        Some(v) if v.as_str() != version => version = v.as_str().to_owned(),
                        _ => return Ok(None),
                    }
                }
                Probe::Legacy => return Ok(None),
            }
        }
        Ok(None)
    }

    async fn initialize(&self) -> Result<Hello, UpstreamError> {
        let params = json!({
            "protocolVersion": ProtocolVersion::LATEST_LEGACY.as_str(),
            "capabilities": self.spec.client_capabilities,
            "clientInfo": self.spec.client_info,
        });
        let reply = self.send_raw(Call::new("initialize", Some(params))).await?;
        let protocol = |reason: String| UpstreamError::Protocol { server: self.spec.name.clone(), reason };
        if let Some(e) = reply.rpc_error() {
            tracing::info!(server = %self.spec.name, "initialize was refused: {}", e.message.chars().take(200).collect::<String>());
            return Err(UpstreamError::EraUnsupported { server: self.spec.name.clone(), era: Era::Legacy });
        }
        let result = reply.result().cloned().unwrap_or(Value::Null);
        let version_str = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| protocol("initialize result has no protocolVersion".into()))?;
        let version = ProtocolVersion::parse(version_str).filter(|v| v.era() == Era::Legacy).ok_or_else(|| {
            protocol(format!("unsupported protocol version {:?}", version_str.chars().take(40).collect::<String>()))
        })?;
        if let Transport::Http(h) = &self.transport {
            h.set_version(version);
        }
        self.notify("notifications/initialized", None).await?;
        Ok(Hello {
            version,
            capabilities: result.get("capabilities").cloned().unwrap_or_else(|| json!({})),
            server_info: result.get("serverInfo").cloned().unwrap_or_else(|| json!({})),
            instructions: result.get("instructions").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// The handshake's outcome.
    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    /// The server's name.
    pub fn server(&self) -> &str {
        &self.spec.name
    }

    /// Whether the connection has ended (child exited, session dropped).
    pub fn is_closed(&self) -> bool {
        match &self.transport {
            Transport::Stdio(s) => s.exited.is_cancelled(),
            Transport::Http(h) => h.shared.closed.is_cancelled(),
        }
    }

    /// How a stdio child exited, if it has.
    pub fn exit_status(&self) -> Option<String> {
        match &self.transport {
            Transport::Stdio(s) => s.exit_status(),
            Transport::Http(_) => None,
        }
    }

    /// The time the server is allowed per request.
    pub fn request_timeout(&self) -> Duration {
        self.spec.request_timeout
    }

    /// Number of requests in flight.
    pub fn in_flight(&self) -> usize {
        self.core.in_flight()
    }

    /// Sends a request and waits for its answer: a response or an error response from the server,
    /// or an [`UpstreamError`] when the server could not answer.
    pub async fn call(&self, mut call: Call) -> Result<Message, UpstreamError> {
        if self.is_closed() {
            return Err(UpstreamError::Closed {
                server: self.spec.name.clone(),
                reason: "the connection has ended".into(),
            });
        }
        self.shape_params(&mut call);
        self.send_raw(call).await
    }

    /// Adds the modern envelope or strips it for a legacy server.
    fn shape_params(&self, call: &mut Call) {
        let modern = self.hello.era() == Era::Modern;
        let params = call.params.get_or_insert_with(|| json!({}));
        let Some(obj) = params.as_object_mut() else { return };
        let meta = obj.entry("_meta").or_insert_with(|| json!({}));
        let Some(meta) = meta.as_object_mut() else { return };
        if modern {
            for (k, v) in self.envelope(self.hello.version.as_str(), call.client_capabilities.as_ref()) {
                meta.insert(k, v);
            }
        } else {
            for k in [meta::PROTOCOL_VERSION, meta::CLIENT_INFO, meta::CLIENT_CAPABILITIES, meta::LOG_LEVEL] {
                meta.remove(k);
            }
            if meta.is_empty() {
                obj.remove("_meta");
            }
            if obj.is_empty() && matches!(call.method.as_str(), "ping" | "notifications/initialized") {
                call.params = None;
            }
        }
    }

    async fn send_raw(&self, call: Call) -> Result<Message, UpstreamError> {
        let Call { method, mut params, exchange, cancel, timeout, header_params, caller_times_out, scopes, .. } = call;
        let (uid, reply) = self.core.register(&mut params, exchange);
        // From here on, however this future ends (answer, timeout, cancellation, or being dropped
        // by a caller that went away), an unanswered request is forgotten and the server told.
        let mut guard = Abandon { conn: self, uid, reason: "cancelled by the client", armed: true };
        let msg = Message::request(Id::number(uid), method.clone(), params);
        let server = &self.spec.name;
        let modern_http = matches!(self.transport, Transport::Http(_))
            && (self.hello.era() == Era::Modern || method == "server/discover");
        let modern = modern_http.then(|| {
            let name_param = methods::lookup(&method).and_then(|m| m.name_param);
            ModernHeaders {
                method: method.clone(),
                name: name_param.and_then(|p| msg.param_str(p)).map(str::to_owned),
                params: header_params,
            }
        });
        let answer = async move {
            match &self.transport {
                Transport::Stdio(s) => s.send(server, &msg).await?,
                Transport::Http(h) => h.exchange(&self.core, uid, msg, modern, scopes.as_deref()).await,
            }
            reply.await.unwrap_or_else(|_| {
                Err(UpstreamError::Closed { server: server.clone(), reason: "the connection has ended".into() })
            })
        };
        let timeout = (!caller_times_out).then(|| timeout.unwrap_or(self.spec.request_timeout));
        let cancel = cancel.unwrap_or_default();
        let outcome = tokio::select! {
            biased;
            r = answer => r,
            () = cancel.cancelled() => Err(UpstreamError::Cancelled),
            () = sleep_opt(timeout) => Err(UpstreamError::Timeout { server: server.clone(), timeout: timeout.unwrap_or_default() }),
        };
        match &outcome {
            Ok(_) => guard.armed = false,
            Err(UpstreamError::Timeout { .. }) => guard.reason = "timed out",
            Err(_) => {}
        }
        outcome
    }

    /// Tells the server a request is abandoned. For stdio and legacy HTTP servers that is
    /// `notifications/cancelled`; a modern HTTP request is cancelled by closing its stream, which
    /// dropping it already did.
    fn abandoned(&self, uid: u64, reason: &str) {
        if !self.core.forget(uid) {
            return;
        }
        let modern_http = matches!(self.transport, Transport::Http(_)) && self.hello.era() == Era::Modern;
        if modern_http {
            return;
        }
        let mut call = Call::new("notifications/cancelled", Some(json!({ "requestId": uid, "reason": reason })));
        self.shape_params(&mut call);
        let msg = Message::notification("notifications/cancelled", call.params);
        match &self.transport {
            Transport::Stdio(s) => s.send_detached(&msg),
            Transport::Http(h) => h.send_detached(msg),
        }
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Option<Value>) -> Result<(), UpstreamError> {
        let mut call = Call::new(method, params);
        if self.hello.era() == Era::Modern || method != "notifications/initialized" {
            self.shape_params(&mut call);
        }
        let msg = Message::notification(method, call.params);
        match &self.transport {
            Transport::Stdio(s) => s.send(&self.spec.name, &msg).await,
            Transport::Http(h) => h.send(&msg).await,
        }
    }

    /// (Re)opens the modern change-notification stream with the given filter. Legacy servers send
    /// change notifications unsolicited, so this does nothing for them.
    pub async fn listen(&self, filter: Value) {
        if self.hello.era() != Era::Modern {
            return;
        }
        let n = self.listen_seq.fetch_add(1, Ordering::Relaxed);
        let mut params = json!({ "notifications": filter });
        if let Some(obj) = params.as_object_mut() {
            obj.insert("_meta".into(), Value::Object(self.envelope(self.hello.version.as_str(), None)));
        }
        let msg = Message::request(Id::string(&format!("warden-listen-{n}")), "subscriptions/listen", Some(params));
        match &self.transport {
            Transport::Http(h) => h.listen(self.core.clone(), msg),
            Transport::Stdio(s) => {
                if n > 0 {
                    let old = json!({ "requestId": format!("warden-listen-{}", n - 1) });
                    let _ = self.notify("notifications/cancelled", Some(old)).await;
                }
                let _ = s.send(&self.spec.name, &msg).await;
            }
        }
    }

    /// Ends the connection: stops the child or ends the HTTP session.
    pub async fn shutdown(&self) {
        match &self.transport {
            Transport::Stdio(s) => s.shutdown().await,
            Transport::Http(h) => h.shutdown().await,
        }
        self.core.fail_all("the connection was closed by the gateway");
    }
}

/// Abandons a request when its future ends without an answer.
struct Abandon<'a> {
    conn: &'a Connection,
    uid: u64,
    reason: &'static str,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.conn.abandoned(self.uid, self.reason);
        }
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
