//! A Streamable HTTP server of either era.
//!
//! Each request is its own POST whose answer is a JSON body or an SSE stream; messages on that
//! stream belong to that request. In the legacy era Warden keeps the server's `Mcp-Session-Id`,
//! holds a GET stream open for unsolicited messages, and posts answers to server requests. In the
//! modern era requests carry the `Mcp-Method`/`Mcp-Name`/`Mcp-Param-*` headers and unsolicited
//! change notifications arrive on a `subscriptions/listen` stream.
//!
//! Bodies and events are read with the frame size limit; redirects are never followed.

use crate::core::{Core, Origin, ReplySink};
use crate::error::UpstreamError;
use crate::spec::{TransportSpec, UpstreamSpec};
use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use warden_protocol::{Id, IdKey, Kind, Limits, Message, ProtocolVersion, RpcError, header_value, sse};

/// Headers that mirror a modern request's body.
#[derive(Debug, Clone, Default)]
pub(crate) struct ModernHeaders {
    pub(crate) method: String,
    pub(crate) name: Option<String>,
    /// `(Name, encoded value)` pairs, sent as `Mcp-Param-{Name}`.
    pub(crate) params: Vec<(String, String)>,
}

pub(crate) struct Shared {
    client: reqwest::Client,
    url: reqwest::Url,
    extra: HeaderMap,
    /// Supplies the credential of each request, when it is not a fixed one in `extra`.
    provider: Option<Arc<dyn crate::spec::CredentialProvider>>,
    server: String,
    limits: Limits,
    session: Mutex<Option<String>>,
    version: Mutex<Option<ProtocolVersion>>,
    pub(crate) closed: CancellationToken,
}

/// Posts answers to the server's requests, at most this many at once: a server that floods
/// requests loses answers past it, not the gateway's memory.
const MAX_REPLIES_IN_FLIGHT: usize = 64;

struct PostSink(Arc<Shared>, Arc<tokio::sync::Semaphore>);

impl ReplySink for PostSink {
    fn send(&self, msg: Message) {
        let Ok(permit) = self.1.clone().try_acquire_owned() else {
            tracing::warn!(server = %self.0.server, "dropped a reply: too many replies in flight");
            return;
        };
        let shared = self.0.clone();
        tokio::spawn(async move {
            if let Err(e) = shared.post(&msg, None).await {
                tracing::warn!(server = %shared.server, "could not deliver a reply: {e}");
            }
            drop(permit);
        });
    }
}

/// The HTTP connection.
pub(crate) struct HttpTransport {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sink: Arc<dyn ReplySink>,
    background: Mutex<Vec<JoinHandle<()>>>,
    listen: Mutex<Option<JoinHandle<()>>>,
}

/// What a modern probe found out.
pub(crate) enum Probe {
    /// The server speaks the modern era; carries the discover result.
    Modern(Value),
    /// The server named the modern versions it supports; retry with one of them.
    Retry(Vec<String>),
    /// The server is not modern.
    Legacy,
}

impl HttpTransport {
    pub(crate) fn new(spec: &UpstreamSpec, core: Arc<Core>) -> Result<(HttpTransport, Arc<Core>), UpstreamError> {
        let TransportSpec::Http { url, headers, credential, provider, egress } = &spec.transport else {
            unreachable!("new is only called for http specs");
        };
        let unavailable =
            |reason: String| UpstreamError::Unavailable { server: spec.name.clone(), reason, retry_after: None };
        let url = reqwest::Url::parse(url).map_err(|_| unavailable("its URL is not valid".into()))?;
        let mut extra = HeaderMap::new();
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| unavailable(format!("header name {k:?} is not valid")))?;
            let value =
                HeaderValue::from_str(v).map_err(|_| unavailable(format!("the value of header {k} is not valid")))?;
            extra.insert(name, value);
        }
        if let Some(c) = credential {
            let name = HeaderName::from_bytes(c.header.as_bytes())
                .map_err(|_| unavailable(format!("credential header name {:?} is not valid", c.header)))?;
            let mut value = c
                .value()
                .and_then(|v| {
                    HeaderValue::from_str(&v).map_err(|_| "the credential is not a valid header value".into())
                })
                .map_err(|why| unavailable(format!("its credential: {why}")))?;
            value.set_sensitive(true);
            extra.insert(name, value);
        }
        let client = egress
            .client(url.as_str())
            .map_err(|why| {
                tracing::error!(server = %spec.name, "egress: its URL is refused: {why}");
                unavailable("its URL is refused by the egress guard (the gateway's log says why)".into())
            })?
            .connect_timeout(spec.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|_| unavailable("the HTTP client could not be built".into()))?;
        let shared = Arc::new(Shared {
            client,
            url,
            extra,
            provider: provider.as_ref().map(|p| p.0.clone()),
            server: spec.name.clone(),
            limits: spec.limits,
            session: Mutex::new(None),
            version: Mutex::new(None),
            closed: CancellationToken::new(),
        });
        let sink: Arc<dyn ReplySink> =
            Arc::new(PostSink(shared.clone(), Arc::new(tokio::sync::Semaphore::new(MAX_REPLIES_IN_FLIGHT))));
        Ok((HttpTransport { shared, sink, background: Mutex::new(vec![]), listen: Mutex::new(None) }, core))
    }

    pub(crate) fn set_version(&self, v: ProtocolVersion) {
        *self.shared.version.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
    }

    /// Sends a request and reads its answer (JSON or SSE), handing every message to `core`; the
    /// answer itself completes request `uid` there. Runs in the caller's task: dropping it closes
    /// the request's stream, which is how the modern era cancels.
    pub(crate) async fn exchange(
        &self,
        core: &Arc<Core>,
        uid: u64,
        msg: Message,
        modern: Option<ModernHeaders>,
        scopes: Option<&[String]>,
    ) {
        let is_initialize = msg.method() == Some("initialize");
        match self.shared.post_scoped(&msg, modern.as_ref(), scopes).await {
            Ok(resp) => {
                if is_initialize && let Some(sid) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
                    *self.shared.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(sid.to_owned());
                }
                self.shared.read_answer(core, &self.sink, uid, resp).await;
            }
            Err(e) => core.fail_one(uid, &e),
        }
    }

    /// Posts a notification without waiting (used when a request is abandoned from a destructor).
    pub(crate) fn send_detached(&self, msg: Message) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let _ = shared.post(&msg, None).await;
        });
    }

    /// Sends a notification or a reply and waits for the server to accept it.
    pub(crate) async fn send(&self, msg: &Message) -> Result<(), UpstreamError> {
        let modern = self.modern_notification_headers(msg);
        let resp = self.shared.post(msg, modern.as_ref()).await?;
        if !resp.status().is_success() {
            tracing::debug!(server = %self.shared.server, status = %resp.status(), "notification not accepted");
        }
        Ok(())
    }

    fn modern_notification_headers(&self, msg: &Message) -> Option<ModernHeaders> {
        let modern = matches!(*self.shared.version.lock().unwrap_or_else(|p| p.into_inner()), Some(v) if v.era() == warden_protocol::Era::Modern);
        modern.then(|| ModernHeaders { method: msg.method().unwrap_or_default().to_owned(), ..Default::default() })
    }

    /// Probes for the modern era with `server/discover`.
    pub(crate) async fn probe(&self, msg: &Message) -> Result<Probe, UpstreamError> {
        let headers = ModernHeaders { method: "server/discover".into(), ..Default::default() };
        let resp = self.shared.post(msg, Some(&headers)).await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(UpstreamError::Unavailable {
                server: self.shared.server.clone(),
                reason: format!("the server refused Warden's credentials (HTTP {})", status.as_u16()),
                retry_after: None,
            });
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(UpstreamError::Unavailable {
                server: self.shared.server.clone(),
                reason: format!("HTTP {}", status.as_u16()),
                retry_after: None,
            });
        }
        // Read whatever came back (JSON or a short SSE stream) and look for the answer.
        let answer = self.shared.first_message(resp).await;
        Ok(match answer {
            Some(m) if m.kind() == Kind::Response && status.is_success() => {
                let result = m.result().cloned().unwrap_or(Value::Null);
                let modern = result.get("supportedVersions").and_then(Value::as_array).is_some_and(|vs| {
                    vs.iter()
                        .filter_map(Value::as_str)
                        .any(|v| ProtocolVersion::parse(v).is_some_and(|p| p.era() == warden_protocol::Era::Modern))
                });
                if modern { Probe::Modern(result) } else { Probe::Legacy }
            }
            Some(m) if m.kind() == Kind::Error => classify_probe_error(&m),
            _ => Probe::Legacy,
        })
    }

    /// Opens the legacy GET stream for unsolicited messages. The receiver fires once the server
    /// has answered the first attempt (stream open, or refused): servers drop messages meant for
    /// a stream that is not open yet, so calls should wait for it.
    pub(crate) fn open_get_stream(&self, core: Arc<Core>) -> tokio::sync::oneshot::Receiver<()> {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let ready = Mutex::new(Some(ready_tx));
        let opener = self.shared.clone();
        let handle =
            tokio::spawn(keep_open(self.shared.clone(), self.sink.clone(), core, None, "GET stream", move || {
                let req = opener
                    .client
                    .request(Method::GET, opener.url.clone())
                    .headers(opener.extra.clone())
                    .header(ACCEPT, "text/event-stream");
                let req = opener.session_headers(req);
                let (shared, ready) = (opener.clone(), ready.lock().unwrap_or_else(|p| p.into_inner()).take());
                async move {
                    let resp = match shared.authorized(req, None).await {
                        Ok(req) => req.send().await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Some(tx) = ready {
                        let _ = tx.send(());
                    }
                    match resp {
                        Ok(r) if r.status() == StatusCode::METHOD_NOT_ALLOWED => Opened::Stop,
                        Ok(r) if r.status() == StatusCode::NOT_FOUND => {
                            tracing::warn!(server = %shared.server, "the server ended the session");
                            shared.closed.cancel();
                            Opened::Stop
                        }
                        other => Opened::from(other),
                    }
                }
            }));
        self.background.lock().unwrap_or_else(|p| p.into_inner()).push(handle);
        ready_rx
    }

    /// (Re)opens the modern `subscriptions/listen` stream with `msg` as its request.
    pub(crate) fn listen(&self, core: Arc<Core>, msg: Message) {
        let listen_id = msg.id().map(Id::key);
        let opener = self.shared.clone();
        let handle = tokio::spawn(keep_open(
            self.shared.clone(),
            self.sink.clone(),
            core,
            listen_id,
            "listen stream",
            move || {
                let (shared, msg) = (opener.clone(), msg.clone());
                async move {
                    let headers = ModernHeaders { method: "subscriptions/listen".into(), ..Default::default() };
                    Opened::from(shared.post(&msg, Some(&headers)).await)
                }
            },
        ));
        if let Some(old) = self.listen.lock().unwrap_or_else(|p| p.into_inner()).replace(handle) {
            old.abort();
        }
    }

    /// Ends the session (legacy) and stops background streams.
    pub(crate) async fn shutdown(&self) {
        self.shared.closed.cancel();
        for h in self.background.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            h.abort();
        }
        if let Some(h) = self.listen.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
        let session = self.shared.session.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(sid) = session {
            let req =
                self.shared.client.request(Method::DELETE, self.shared.url.clone()).headers(self.shared.extra.clone());
            let req = self.shared.session_headers(req).header("mcp-session-id", sid);
            let send = async {
                if let Ok(req) = self.shared.authorized(req, None).await {
                    let _ = req.send().await;
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
        }
    }
}

impl Drop for HttpTransport {
    fn drop(&mut self) {
        self.shared.closed.cancel();
        for h in self.background.get_mut().unwrap_or_else(|p| p.into_inner()).drain(..) {
            h.abort();
        }
        if let Some(h) = self.listen.get_mut().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }
}

/// The outcome of one attempt to open a long-lived stream.
enum Opened {
    /// Read this stream.
    Stream(reqwest::Response),
    /// Try again later.
    Retry(String),
    /// Stop trying.
    Stop,
}

impl<E: std::fmt::Display> From<Result<reqwest::Response, E>> for Opened {
    fn from(r: Result<reqwest::Response, E>) -> Self {
        match r {
            Ok(r) if r.status().is_success() => Opened::Stream(r),
            Ok(r) => Opened::Retry(format!("HTTP {}", r.status().as_u16())),
            Err(e) => Opened::Retry(e.to_string()),
        }
    }
}

/// Keeps a long-lived stream of unsolicited messages open until the connection closes,
/// reconnecting with backoff (500 ms doubling to 30 s, reset by every successful open).
async fn keep_open<F, Fut>(
    shared: Arc<Shared>,
    sink: Arc<dyn ReplySink>,
    core: Arc<Core>,
    skip: Option<IdKey>,
    what: &'static str,
    mut open: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Opened>,
{
    let mut delay = Duration::from_millis(500);
    while !shared.closed.is_cancelled() {
        let attempt = tokio::select! {
            a = open() => a,
            () = shared.closed.cancelled() => return,
        };
        match attempt {
            Opened::Stream(r) => {
                delay = Duration::from_millis(500);
                shared.read_stream(&core, &sink, Origin::Unsolicited, r, skip.clone()).await;
            }
            Opened::Retry(why) => tracing::debug!(server = %shared.server, "{what} not open: {why}"),
            Opened::Stop => return,
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.closed.cancelled() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

fn classify_probe_error(m: &Message) -> Probe {
    let e = m.rpc_error().unwrap_or_else(|| RpcError::internal("?"));
    if e.code == warden_protocol::error::UNSUPPORTED_PROTOCOL_VERSION {
        let supported: Vec<String> = e
            .data
            .as_ref()
            .and_then(|d| d.get("supported"))
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        if supported.iter().any(|v| ProtocolVersion::parse(v).is_some_and(|p| p.era() == warden_protocol::Era::Modern))
        {
            return Probe::Retry(supported);
        }
    }
    Probe::Legacy
}

impl Shared {
    fn session_headers(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(v) = *self.version.lock().unwrap_or_else(|p| p.into_inner())
            && v.has_version_header()
        {
            req = req.header("mcp-protocol-version", v.as_str());
        }
        if let Some(sid) = self.session.lock().unwrap_or_else(|p| p.into_inner()).as_deref() {
            req = req.header("mcp-session-id", sid);
        }
        req
    }

    /// `req` with the credential of a request that needs `scopes`, when one is provided per
    /// request; without it the request is not sent.
    async fn authorized(
        &self,
        req: reqwest::RequestBuilder,
        scopes: Option<&[String]>,
    ) -> Result<reqwest::RequestBuilder, UpstreamError> {
        let Some(provider) = &self.provider else { return Ok(req) };
        let refused = |why: String| UpstreamError::Unavailable {
            server: self.server.clone(),
            reason: format!("no credential for this request: {why}"),
            retry_after: None,
        };
        let value = provider.header(scopes).await.map_err(refused)?;
        let mut value =
            HeaderValue::from_str(&value).map_err(|_| refused("the credential is not a valid header value".into()))?;
        value.set_sensitive(true);
        Ok(req.header(reqwest::header::AUTHORIZATION, value))
    }

    async fn post(&self, msg: &Message, modern: Option<&ModernHeaders>) -> Result<reqwest::Response, UpstreamError> {
        self.post_scoped(msg, modern, None).await
    }

    async fn post_scoped(
        &self,
        msg: &Message,
        modern: Option<&ModernHeaders>,
        scopes: Option<&[String]>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let mut req = self
            .client
            .request(Method::POST, self.url.clone())
            .headers(self.extra.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream");
        match modern {
            Some(h) => {
                req = req.header("mcp-protocol-version", ProtocolVersion::LATEST_MODERN.as_str());
                if !h.method.is_empty() {
                    req = req.header("mcp-method", &h.method);
                }
                if let Some(name) = &h.name {
                    req = req.header("mcp-name", header_value::encode(name));
                }
                for (name, value) in &h.params {
                    req = req.header(format!("mcp-param-{name}"), value);
                }
            }
            None => req = self.session_headers(req),
        }
        let req = self.authorized(req, scopes).await?;
        let sent = req.body(msg.to_vec()).send().await;
        if let (Ok(r), Some(p)) = (&sent, &self.provider)
            && r.status() == StatusCode::UNAUTHORIZED
        {
            p.refused(scopes);
        }
        sent.map_err(|e| UpstreamError::Unavailable {
            server: self.server.clone(),
            // The addresses stay in the gateway's log: a client learns that, not where.
            reason: if crate::egress::refusal(&e).is_some() {
                "refused by the egress guard: its host leads only to addresses that are not allowed (the gateway's log names them)".into()
            } else if e.is_connect() {
                "connection refused or unreachable".into()
            } else {
                "the request could not be sent".into()
            },
            retry_after: None,
        })
    }

    /// Reads the answer to request `uid`: a JSON body, an SSE stream, or an HTTP error.
    async fn read_answer(&self, core: &Arc<Core>, sink: &Arc<dyn ReplySink>, uid: u64, resp: reqwest::Response) {
        let status = resp.status();
        let legacy_session = self.session.lock().unwrap_or_else(|p| p.into_inner()).is_some();
        if status == StatusCode::NOT_FOUND && legacy_session {
            self.closed.cancel();
            core.fail_one(uid, &UpstreamError::SessionExpired { server: self.server.clone() });
            return;
        }
        if is_event_stream(&resp) && status.is_success() {
            self.read_stream(core, sink, Origin::Request(uid), resp, None).await;
        } else {
            match self.read_body(resp).await {
                Ok(body) if !body.is_empty() => match Message::parse(&body, &self.limits) {
                    Ok(m) => {
                        // An HTTP error whose JSON-RPC error lacks our id still answers our request.
                        let m = if m.kind() == Kind::Error && m.id().map(Id::key) != Some(IdKey::Num(uid.into())) {
                            Message::error_response(
                                Some(Id::number(uid)),
                                &m.rpc_error().unwrap_or_else(|| RpcError::internal("error")),
                            )
                        } else {
                            m
                        };
                        core.dispatch(m, Origin::Request(uid), sink);
                    }
                    Err(e) => core.fail_one(
                        uid,
                        &UpstreamError::Protocol {
                            server: self.server.clone(),
                            reason: format!("HTTP {}: {}", status.as_u16(), e.error.message),
                        },
                    ),
                },
                Ok(_) => {}
                Err(e) => core.fail_one(uid, &e),
            }
        }
        // Whatever happened, the request is over: if nothing answered it, say so.
        let reason = if status.is_success() {
            "the response ended without an answer".to_owned()
        } else {
            format!("HTTP {}", status.as_u16())
        };
        core.fail_one(uid, &UpstreamError::Closed { server: self.server.clone(), reason });
    }

    async fn read_body(&self, resp: reqwest::Response) -> Result<Vec<u8>, UpstreamError> {
        let limit = self.limits.max_frame_bytes;
        if resp.content_length().is_some_and(|n| n as usize > limit) {
            return Err(UpstreamError::TooLarge { server: self.server.clone(), limit });
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk: Bytes = chunk.map_err(|_| UpstreamError::Closed {
                server: self.server.clone(),
                reason: "the response was cut off".into(),
            })?;
            if body.len() + chunk.len() > limit {
                return Err(UpstreamError::TooLarge { server: self.server.clone(), limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Reads an SSE stream, dispatching each message; `skip` drops the answer to a listen request.
    async fn read_stream(
        &self,
        core: &Arc<Core>,
        sink: &Arc<dyn ReplySink>,
        origin: Origin,
        resp: reqwest::Response,
        skip: Option<IdKey>,
    ) {
        let mut decoder = sse::Decoder::new(self.limits.max_frame_bytes);
        let mut stream = resp.bytes_stream();
        loop {
            let chunk = tokio::select! {
                c = stream.next() => c,
                () = self.closed.cancelled() => return,
            };
            let Some(Ok(chunk)) = chunk else { return };
            let events = match decoder.feed(&chunk) {
                Ok(evs) => evs,
                Err(_) => {
                    tracing::warn!(server = %self.server, "dropped an SSE stream carrying an event over the size limit");
                    return;
                }
            };
            for ev in events {
                if ev.data.trim().is_empty() {
                    continue;
                }
                match Message::parse(ev.data.as_bytes(), &self.limits) {
                    Ok(m) => {
                        if skip.is_some()
                            && m.id().map(Id::key) == skip
                            && matches!(m.kind(), Kind::Response | Kind::Error)
                        {
                            continue;
                        }
                        let is_answer = matches!(m.kind(), Kind::Response | Kind::Error);
                        if let Origin::Request(uid) = origin
                            && is_answer
                            && m.id().map(Id::key) != Some(IdKey::Num(uid.into()))
                        {
                            tracing::warn!(server = %self.server, "dropped a response to another request on a request's stream");
                            continue;
                        }
                        let done = matches!(origin, Origin::Request(_)) && is_answer;
                        core.dispatch(m, origin, sink);
                        if done {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(server = %self.server, "dropped an unreadable SSE event: {}", e.error.message)
                    }
                }
            }
        }
    }

    /// The first JSON-RPC message of a response, JSON or SSE, for probing.
    async fn first_message(&self, resp: reqwest::Response) -> Option<Message> {
        if is_event_stream(&resp) {
            let mut decoder = sse::Decoder::new(self.limits.max_frame_bytes);
            let mut stream = resp.bytes_stream();
            while let Some(Ok(chunk)) = stream.next().await {
                for ev in decoder.feed(&chunk).ok()? {
                    if let Ok(m) = Message::parse(ev.data.as_bytes(), &self.limits)
                        && matches!(m.kind(), Kind::Response | Kind::Error)
                    {
                        return Some(m);
                    }
                }
            }
            None
        } else {
            let body = self.read_body(resp).await.ok()?;
            Message::parse(&body, &self.limits).ok()
        }
    }
}

fn is_event_stream(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("text/event-stream"))
}
