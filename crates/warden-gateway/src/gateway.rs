//! The gateway itself: its servers, its clients, and what it says about itself.

use crate::audit::Auditor;
use crate::authenticate::Authenticator;
use crate::authorize::Authorizer;
use crate::client::ClientContext;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Isolation, ServerSection};
use crate::hub::{Hub, Subscriber};
use crate::integrity::Integrity;
use crate::limit::CallLimits;
use crate::parked::Parked;
use crate::quarantine::Quarantine;
use crate::session::{Session, SessionStore};
use crate::upstreams::{Server, ServerInfo};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use warden_policy::Principal;
use warden_protocol::{Era, Limits, Message, ProtocolVersion, RpcError, error, meta};
use warden_upstream::{Credential, CredentialSource, EraPreference, TransportSpec, UpstreamSpec};

/// Settings the request path reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Separator in exposed names.
    pub separator: String,
    /// Frame limits for client frames.
    pub limits: Limits,
    /// Items per page in merged lists (0: whole lists).
    pub list_page_size: usize,
    /// `ttlMs` on lists sent to modern clients.
    pub list_ttl: Duration,
    /// How long a call waits for a client's answer or retry.
    pub input_required_ttl: Duration,
    /// Instructions the gateway gives clients.
    pub instructions: Option<String>,
    /// Whether policy files are watched for changes.
    pub watch_policies: bool,
}

/// The gateway.
pub struct Gateway {
    /// Settings.
    pub settings: Settings,
    /// The configured servers, in name order.
    pub servers: Vec<Arc<Server>>,
    /// Sessions and listeners.
    pub hub: Arc<Hub>,
    /// Calls waiting for modern clients.
    pub parked: Parked,
    /// The principal of local use (`warden run`).
    pub local_principal: Arc<Principal>,
    /// Who is calling, on the HTTP front.
    pub authenticator: Arc<Authenticator>,
    /// The policies, and what they are told.
    pub authorizer: Arc<Authorizer>,
    /// Rate limits, budgets and the call-depth guard.
    pub limits: Arc<CallLimits>,
    /// The audit log and the metrics.
    pub auditor: Arc<Auditor>,
    /// Pins and the poisoning scanner.
    pub integrity: Arc<Integrity>,
    /// Results withheld for instructing the model.
    pub quarantine: Arc<Quarantine>,
    /// Where servers' original errors are kept, when configured (`[output] server_errors`).
    pub kept_errors: std::sync::OnceLock<warden_store::ServerErrorStore>,
    /// The response guards.
    pub output: crate::sanitize::OutputGuard,
    /// Contexts that have read untrusted content.
    pub taint: crate::taint::Taint,
    /// Human approvals of calls.
    pub approvals: Arc<crate::approve::Approvals>,
    /// Servers an operator contained.
    pub containment: crate::contain::Containment,
    /// How often the containment list is read again.
    pub containment_poll: Duration,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Capabilities the gateway offers every client: it aggregates servers that may offer any of these.
fn capabilities() -> Value {
    json!({
        "tools": { "listChanged": true },
        "prompts": { "listChanged": true },
        "resources": { "subscribe": true, "listChanged": true },
        "completions": {},
        "logging": {},
    })
}

impl Gateway {
    /// Builds the gateway from a validated configuration, loading its policies. Nothing is
    /// started yet.
    pub fn from_config(
        config: &Config,
        auditor: Arc<Auditor>,
        integrity: Arc<Integrity>,
        quarantine: Arc<Quarantine>,
        approvals: Arc<crate::approve::Approvals>,
        containment: crate::contain::Containment,
    ) -> Result<Arc<Gateway>, String> {
        Self::with_clock(config, Arc::new(SystemClock), auditor, integrity, quarantine, approvals, containment)
    }

    /// Builds the gateway with an injected clock.
    pub fn with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
        auditor: Arc<Auditor>,
        integrity: Arc<Integrity>,
        quarantine: Arc<Quarantine>,
        approvals: Arc<crate::approve::Approvals>,
        containment: crate::contain::Containment,
    ) -> Result<Arc<Gateway>, String> {
        let authorizer = Arc::new(Authorizer::from_config(config).map_err(|e| format!("policies:\n{e}"))?);
        let authenticator = Arc::new(Authenticator::from_config(config)?);
        let limits = Arc::new(CallLimits::from_config(config, clock.clone())?);
        let g = &config.gateway;
        let frame_limits = Limits { max_frame_bytes: g.max_frame_bytes as usize, max_depth: g.max_json_depth as usize };
        let sessions = SessionStore::new(g.max_sessions as usize, g.session_idle_timeout.0, clock.clone());
        let hub = Arc::new(Hub::new(sessions));
        let servers = config
            .servers
            .iter()
            .map(|(name, s)| {
                let mut info = server_info(name, s, frame_limits, g.input_required_ttl.0, &config.base_dir);
                info.authorizer = Some(authorizer.clone());
                info.integrity = Some(integrity.clone());
                Server::new(info, hub.clone())
            })
            .collect();
        Ok(Arc::new(Gateway {
            settings: Settings {
                separator: g.separator.clone(),
                limits: frame_limits,
                list_page_size: g.list_page_size as usize,
                list_ttl: g.list_ttl.0,
                input_required_ttl: g.input_required_ttl.0,
                instructions: g.instructions.clone(),
                watch_policies: config.policy.watch,
            },
            servers,
            hub,
            parked: Parked::new(g.input_required_ttl.0, clock.clone()),
            local_principal: Arc::new(g.local_principal.principal()),
            authenticator,
            authorizer,
            limits,
            auditor,
            integrity,
            quarantine,
            kept_errors: std::sync::OnceLock::new(),
            output: crate::sanitize::OutputGuard::new(),
            taint: crate::taint::Taint::new(config.taint.ttl.0, clock.clone()),
            approvals,
            containment,
            containment_poll: config.approvals.containment_poll.0,
            clock,
        }))
    }

    /// Loads the policy files again (SIGHUP, or a watched file changed). A set with any problem is
    /// reported and the set in force stays.
    pub async fn reload(&self) {
        match self.authorizer.reload() {
            Ok(n) => tracing::info!(policies = n, "policies reloaded"),
            Err(e) => tracing::error!("policies NOT reloaded; the previous set stays in force:\n{e}"),
        }
        self.authenticator.load_keys().await;
    }

    /// Starts background work: connecting shared servers early, loading signing keys, reloading
    /// policies on SIGHUP and file changes, and expiring idle sessions, per-principal connections,
    /// parked calls and idle rate-limit state.
    pub fn start(self: &Arc<Self>) {
        let gw = self.clone();
        tokio::spawn(async move { gw.authenticator.load_keys().await });
        self.watch_reloads();
        self.watch_containment();
        for server in &self.servers {
            if server.info.isolation == Isolation::Shared {
                let Some(slot) = server.slot_for(crate::hub::Audience::All) else { continue };
                let name = server.info.name.clone();
                tokio::spawn(async move {
                    if let Err(e) = slot.lane(Era::Modern).await {
                        tracing::warn!(server = %name, "not reachable yet: {}", e.message);
                    }
                });
            }
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let Some(gw) = weak.upgrade() else { break };
                for s in gw.hub.sessions.reap() {
                    tracing::info!(session = %&s.id[..8], "session expired");
                    gw.end_session(&s).await;
                }
                gw.parked.reap();
                gw.limits.tidy();
                gw.taint.tidy();
                gw.approvals.expire().await;
                for server in &gw.servers {
                    server.reap(Duration::from_secs(30 * 60)).await;
                }
            }
        });
    }

    /// Reads the containment list every `containment_poll`, for changes another process made.
    fn watch_containment(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let every = self.containment_poll.max(Duration::from_millis(100));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(gw) = weak.upgrade() else { break };
                if let Err(e) = gw.sync_containment().await {
                    tracing::warn!("containment not synced: {e}");
                }
            }
        });
    }

    fn watch_reloads(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
                tracing::warn!("SIGHUP cannot be handled here; policies reload only when their files change");
                return;
            };
            while hup.recv().await.is_some() {
                let Some(gw) = weak.upgrade() else { break };
                tracing::info!("SIGHUP: reloading policies");
                gw.reload().await;
            }
        });
        if !self.settings.watch_policies {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                let Some(gw) = weak.upgrade() else { break };
                if gw.authorizer.files_changed() {
                    tracing::info!("a policy file changed: reloading policies");
                    gw.reload().await;
                }
            }
        });
    }

    /// Stops every server.
    pub async fn shutdown(&self) {
        for s in self.hub.sessions.all() {
            self.hub.sessions.remove(&s.id);
        }
        futures::future::join_all(self.servers.iter().map(|s| s.shutdown())).await;
        // The audit log's writer closes last, so that on SQLite it checkpoints the shared file.
        self.approvals.store().close().await;
        self.containment.store().close().await;
        if let Some(log) = self.auditor.log() {
            // Rows are never dropped, so a database that stays down would hold the exit forever.
            match tokio::time::timeout(std::time::Duration::from_secs(30), log.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("the audit log could not be flushed: {e}"),
                Err(_) => tracing::error!("the audit log could not be flushed within 30s; queued rows are lost"),
            }
        }
    }

    /// The metrics as Prometheus text, with each server's health read now.
    pub fn render_metrics(&self) -> String {
        let m = &self.auditor.metrics;
        for server in &self.servers {
            let up = server.slots().iter().any(|slot| slot.lanes().iter().any(|lane| lane.current().is_some()));
            let labels = crate::metrics::ServerLabels { server: server.info.name.clone() };
            m.upstream_up.get_or_create(&labels).set(i64::from(up));
        }
        m.render()
    }

    /// Releases what a legacy session held: its connections (with session isolation) and its
    /// resource subscriptions.
    pub async fn end_session(&self, session: &Session) {
        self.taint.forget_session(&session.id);
        let who = Subscriber::Session(session.id.clone());
        for server in &self.servers {
            if server.info.isolation == Isolation::Session {
                server.close_slot(&crate::hub::Audience::Session(session.id.clone())).await;
            }
            for slot in server.slots() {
                for lane in slot.lanes() {
                    lane.drop_subscriber(&who).await;
                }
            }
        }
    }

    /// What the gateway calls itself.
    pub fn server_info() -> Value {
        json!({ "name": "warden", "title": "Warden MCP gateway", "version": env!("CARGO_PKG_VERSION") })
    }

    /// What the server named `server` may ask of a client's model in a sampling request.
    pub fn sampling_limits(&self, server: &str) -> crate::sanitize::SamplingLimits {
        self.servers.iter().find(|s| s.info.name == server).map(|s| s.info.sampling).unwrap_or_default()
    }

    /// The gateway's instructions and each connected server's, where they match their pins.
    async fn instructions(&self, era: Era) -> Option<String> {
        let mut parts: Vec<String> = self.settings.instructions.iter().cloned().collect();
        for server in &self.servers {
            let Some(slot) = server.slots().into_iter().find(|s| s.audience == crate::hub::Audience::All) else {
                continue;
            };
            let Some(text) = slot.connected_lane(era).and_then(|(_, conn)| conn.hello().instructions.clone()) else {
                continue;
            };
            if self.integrity.review_instructions(&server.info.name, &text).await {
                parts.push(format!("Server \"{}\":\n{}", server.info.name, text));
            }
        }
        (!parts.is_empty()).then(|| parts.join("\n\n"))
    }

    /// Reads an `initialize` request: the version to speak, and the client's capabilities and info.
    pub fn negotiate(params: Option<&Value>) -> Result<(ProtocolVersion, Value, Value), RpcError> {
        let params =
            params.and_then(Value::as_object).ok_or_else(|| RpcError::invalid_params("initialize needs params"))?;
        let requested = params
            .get("protocolVersion")
            .and_then(Value::as_str)
            .ok_or_else(|| RpcError::invalid_params("initialize needs a protocolVersion"))?;
        let version = ProtocolVersion::parse(requested)
            .filter(|v| v.era() == Era::Legacy)
            .unwrap_or(ProtocolVersion::LATEST_LEGACY);
        let capabilities = params.get("capabilities").filter(|c| c.is_object()).cloned().unwrap_or_else(|| json!({}));
        let client_info = params.get("clientInfo").cloned().unwrap_or_else(|| json!({}));
        Ok((version, capabilities, client_info))
    }

    /// The `initialize` result for a legacy client.
    pub async fn initialize_result(&self, version: ProtocolVersion) -> Value {
        let mut r = json!({
            "protocolVersion": version.as_str(),
            "capabilities": capabilities(),
            "serverInfo": Self::server_info(),
        });
        if let Some(i) = self.instructions(Era::Legacy).await {
            r["instructions"] = Value::String(i);
        }
        r
    }

    /// The `server/discover` result.
    pub async fn discover_result(&self) -> Value {
        let mut r = json!({
            "supportedVersions": ProtocolVersion::ALL.iter().filter(|v| **v != ProtocolVersion::V2024_11_05).map(|v| v.as_str()).collect::<Vec<_>>(),
            "capabilities": capabilities(),
        });
        if let Some(i) = self.instructions(Era::Modern).await {
            r["instructions"] = Value::String(i);
        }
        r
    }

    /// The versions listed in an unsupported-version error.
    pub fn supported_versions() -> Vec<&'static str> {
        ProtocolVersion::ALL.iter().filter(|v| **v != ProtocolVersion::V2024_11_05).map(|v| v.as_str()).collect()
    }

    /// Reads the per-request envelope of a modern request into a client context.
    pub fn modern_context(&self, principal: Arc<Principal>, msg: &Message) -> Result<ClientContext, RpcError> {
        let envelope_error = |problem: Value| {
            RpcError::invalid_params("the request is missing the required _meta envelope")
                .with_data(json!({ "envelope": problem }))
        };
        let Some(m) = msg.meta() else {
            return Err(envelope_error(json!({ "missing": ["_meta"] })));
        };
        let Some(requested) = m.get(meta::PROTOCOL_VERSION).and_then(Value::as_str) else {
            return Err(envelope_error(json!({ "key": meta::PROTOCOL_VERSION, "problem": "missing" })));
        };
        let capabilities = match m.get(meta::CLIENT_CAPABILITIES) {
            Some(c) if c.is_object() => c.clone(),
            Some(_) => {
                return Err(envelope_error(json!({ "key": meta::CLIENT_CAPABILITIES, "problem": "not an object" })));
            }
            None => return Err(envelope_error(json!({ "key": meta::CLIENT_CAPABILITIES, "problem": "missing" }))),
        };
        let version = ProtocolVersion::parse(requested)
            .filter(|v| v.era() == Era::Modern)
            .ok_or_else(|| unsupported_version(requested))?;
        Ok(ClientContext {
            principal,
            version,
            capabilities: Arc::new(capabilities),
            client_info: Arc::new(m.get(meta::CLIENT_INFO).cloned().unwrap_or_else(|| json!({}))),
            session: None,
            log_level: m.get(meta::LOG_LEVEL).and_then(Value::as_str).map(str::to_owned),
            header_params: None,
        })
    }

    /// A context for a legacy session's request.
    pub fn session_context(session: &Arc<Session>) -> ClientContext {
        ClientContext {
            principal: session.principal.clone(),
            version: session.version,
            capabilities: session.capabilities.clone(),
            client_info: session.client_info.clone(),
            session: Some(session.clone()),
            log_level: None,
            header_params: None,
        }
    }

    /// Shapes a result for the client's era: modern clients get `resultType`, cache hints on
    /// cacheable results, and the gateway's identity in `_meta`.
    pub fn shape_result(&self, ctx: &ClientContext, method: &str, result: Value) -> Value {
        if ctx.era() != Era::Modern {
            return result;
        }
        // A resource's content is as fresh as the server makes it; lists are the gateway's own.
        let ttl = if method == "resources/read" { 0 } else { self.settings.list_ttl.as_millis() as u64 };
        warden_protocol::results::complete_modern(method, result, ttl, &Self::server_info())
    }
}

/// `-32022`: the version is not one Warden serves.
pub fn unsupported_version(requested: &str) -> RpcError {
    let shown: String = requested.chars().take(40).collect();
    RpcError::new(error::UNSUPPORTED_PROTOCOL_VERSION, format!("Unsupported protocol version: {shown}"))
        .with_data(json!({ "supported": Gateway::supported_versions(), "requested": requested }))
}

/// `@self` names the running Warden executable (the demo configuration starts `warden demo-server`
/// this way, whatever the build directory); any other command is used as written.
fn resolve_command(command: &str) -> String {
    match std::env::current_exe() {
        Ok(exe) if command == SELF_COMMAND => exe.display().to_string(),
        _ => command.to_owned(),
    }
}

/// The `command` value that means "this Warden executable".
pub const SELF_COMMAND: &str = "@self";

fn credential(c: &crate::config::CredentialSection, base_dir: &std::path::Path) -> Credential {
    let source = match (&c.env, &c.file) {
        (Some(var), _) => CredentialSource::Env(var.clone()),
        (None, Some(f)) => CredentialSource::File(if f.is_absolute() { f.clone() } else { base_dir.join(f) }),
        (None, None) => unreachable!("validated: a credential has env or file"),
    };
    Credential { source, header: c.header.clone(), scheme: Some(c.scheme.clone()).filter(|s| !s.is_empty()) }
}

fn server_info(
    name: &str,
    s: &ServerSection,
    limits: Limits,
    answer_timeout: Duration,
    base_dir: &std::path::Path,
) -> ServerInfo {
    let transport = match (&s.command, &s.url) {
        (Some(command), _) => {
            let mut env: BTreeMap<String, String> = BTreeMap::new();
            for var in &s.env_inherit {
                if let Ok(v) = std::env::var(var) {
                    env.insert(var.clone(), v);
                }
            }
            env.extend(s.env.clone());
            TransportSpec::Stdio { command: resolve_command(command), args: s.args.clone(), env, cwd: s.cwd.clone() }
        }
        (None, Some(url)) => TransportSpec::Http {
            url: url.clone(),
            headers: s.headers.clone().into_iter().collect(),
            credential: s.credential.as_ref().map(|c| credential(c, base_dir)),
        },
        (None, None) => unreachable!("validated: every server has a command or a url"),
    };
    let mut spec = UpstreamSpec::new(name, transport);
    spec.era = EraPreference::Auto;
    spec.limits = limits;
    if let Some(t) = s.timeout {
        spec.request_timeout = t.0;
    }
    if let Some(t) = s.connect_timeout {
        spec.connect_timeout = t.0;
    }
    // Roots are declared only where the gateway can answer them: a connection owned by one
    // session (whose client answers), or configured roots.
    let mut caps = json!({ "sampling": {}, "elicitation": { "form": {}, "url": {} } });
    if s.isolation == Isolation::Session || !s.roots.is_empty() {
        caps["roots"] = json!({ "listChanged": true });
    }
    spec.client_capabilities = caps;
    ServerInfo {
        name: name.to_owned(),
        namespace: s.namespace.clone().unwrap_or_else(|| name.to_owned()),
        isolation: s.isolation,
        protocol: s.protocol,
        roots: s.roots.clone(),
        spec,
        client_answer_timeout: answer_timeout,
        authorizer: None,
        integrity: None,
        sampling: crate::sanitize::SamplingLimits::of(s),
        trusted_content: s.trusted_content,
        trusted_resources: s.trusted_resources,
    }
}
