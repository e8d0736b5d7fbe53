//! The gateway: its parts built from the configuration, its stack, and what runs beside the
//! request path (reloading policies, expiring sessions, applying containment).

use crate::authenticate::Authenticator;
use crate::client::ClientContext;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Isolation};
use crate::credentials::Credentials;
use crate::error::GatewayError;
use crate::guard::approve::{Approvals, Approve, SealContinuation};
use crate::guard::audit::Auditor;
use crate::guard::authorize::{Authorize, Authorizer};
use crate::guard::contain::{Contained, Containment};
use crate::guard::forward::parked::Parked;
use crate::guard::forward::{Announce, Forward, ForwardParts};
use crate::guard::inspect_args::InspectArgs;
use crate::guard::integrity::Integrity;
use crate::guard::limit::{CallLimits, Limit};
use crate::guard::normalize::Normalize;
use crate::guard::quarantine::{Quarantine, QuarantineGuard};
use crate::guard::resolve::Resolve;
use crate::guard::respond::Respond;
use crate::guard::sanitize::{OutputGuard, Sanitize};
use crate::guard::taint::{Taint, TaintGuard};
use crate::guard::validate_args::ValidateArgs;
use crate::hub::{Audience, Hub, Listener, Subscriber};
use crate::resolver::Resolver;
use crate::schemas::Schemas;
use crate::servers::{ListReview, Registry, Server, ServerMessages, ServerPaths, server_info};
use crate::session::{Session, SessionStore};
use crate::stack::{Guards, ListenGuards, MessageChain, Stack};
use serde_json::{Value, json};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_policy::Principal;
use warden_protocol::{Era, Limits, Message, ProtocolVersion, RpcError, error, meta};

/// Settings the fronts read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Frame limits for client frames.
    pub limits: Limits,
    /// Whether policy files are watched for changes.
    pub watch_policies: bool,
    /// How long a client may take to send a request's body.
    pub body_read_timeout: Duration,
}

/// The stores and guards built outside the gateway (they need the audit database).
pub struct Parts {
    /// The audit log and the metrics.
    pub auditor: Arc<Auditor>,
    /// Pins and the poisoning scanner.
    pub integrity: Arc<Integrity>,
    /// Results withheld for instructing the model.
    pub quarantine: Arc<Quarantine>,
    /// Human approvals of calls.
    pub approvals: Arc<Approvals>,
    /// Servers an operator contained.
    pub containment: Containment,
}

/// The gateway.
pub struct Gateway {
    /// Settings.
    pub settings: Settings,
    /// The configured servers.
    pub registry: Arc<Registry>,
    /// Sessions and listeners.
    pub hub: Arc<Hub>,
    /// The request path.
    pub stack: Stack,
    /// What the gateway says about itself.
    pub announce: Arc<Announce>,
    /// Calls waiting for modern clients.
    pub parked: Arc<Parked>,
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
    /// Results withheld for instructing the model.
    pub quarantine: Arc<Quarantine>,
    /// Pinned definitions and their review.
    pub integrity: Arc<Integrity>,
    /// Where servers' original errors are kept, when configured (`[output] server_errors`).
    pub kept_errors: Arc<OnceLock<warden_store::ServerErrorStore>>,
    /// Contexts that have read untrusted content.
    pub taint: Arc<Taint>,
    /// Human approvals of calls.
    pub approvals: Arc<Approvals>,
    /// Servers an operator contained.
    pub containment: Arc<Containment>,
    /// How often the containment list is read again.
    pub containment_poll: Duration,
    /// Credentials obtained per caller for servers (token exchange).
    pub credentials: Arc<Credentials>,
    /// State shared with the other gateways (`[state] redis`).
    pub shared: Option<Arc<crate::state::SharedState>>,
}

impl Gateway {
    /// Builds the gateway from a validated configuration, loading its policies. Nothing is
    /// started yet.
    pub fn from_config(config: &Config, parts: Parts) -> Result<Arc<Gateway>, GatewayError> {
        Self::with_clock(config, Arc::new(SystemClock), parts)
    }

    /// Builds the gateway with an injected clock.
    pub fn with_clock(config: &Config, clock: Arc<dyn Clock>, parts: Parts) -> Result<Arc<Gateway>, GatewayError> {
        Self::adapted(config, clock, parts, |stack| stack)
    }

    /// Builds the gateway with its stack as `adapt` leaves it: for tests of the stack, which
    /// replace a guard (a forwarder without servers, a guard that fails) and keep the rest.
    pub fn adapted(
        config: &Config,
        clock: Arc<dyn Clock>,
        parts: Parts,
        adapt: impl FnOnce(Stack) -> Stack,
    ) -> Result<Arc<Gateway>, GatewayError> {
        let Parts { auditor, integrity, quarantine, approvals, containment } = parts;
        let containment = Arc::new(containment);
        let g = &config.gateway;
        let frame_limits = Limits { max_frame_bytes: g.max_frame_bytes as usize, max_depth: g.max_json_depth as usize };
        let authorizer = Arc::new(Authorizer::from_config(config)?);
        let authenticator = Arc::new(Authenticator::from_config(config)?);
        let shared = crate::state::SharedState::from_config(&config.state)
            .map_err(|e| GatewayError::Config(format!("state: {e}")))?
            .map(Arc::new);
        approvals.share(shared.clone());
        let limits = Arc::new(CallLimits::from_config(config, clock.clone())?.shared(shared.clone()));
        let parked = Arc::new(Parked::new(g.input_required_ttl.0, clock.clone()));
        let taint =
            Arc::new(Taint::new(config.taint.ttl.0, clock.clone()).shared(shared.clone(), g.session_idle_timeout.0));
        let schemas = Arc::new(Schemas::new());
        let output = Arc::new(OutputGuard::new(schemas.clone(), config.output.binary));
        let sessions =
            SessionStore::new(g.max_sessions as usize, g.session_idle_timeout.0, clock).shared(shared.clone());
        let hub = Arc::new(Hub::new(sessions));
        let kept_errors = Arc::new(OnceLock::new());

        let credentials = Arc::new(Credentials::from_config(config, auditor.clone()).map_err(GatewayError::Config)?);
        let authorize = Arc::new(Authorize::new(authorizer.clone(), taint.clone(), limits.clone(), parked.clone()));
        let injected = Arc::new(
            crate::guard::sanitize::injected::Injected::new(
                crate::guard::sanitize::injected::of_config(config),
                credentials.clone(),
            )
            .with_referenced(crate::guard::sanitize::injected::referenced_of_config(config)),
        );
        let sanitize = Arc::new(Sanitize::new(output.clone(), injected.clone()));
        let taint_guard = Arc::new(TaintGuard::new(taint.clone(), output.clone(), auditor.clone()));
        let messages: Arc<dyn ServerMessages> = Arc::new(MessageChain::assemble(
            authorize.clone(),
            sanitize.clone(),
            taint_guard.clone(),
            auditor.clone(),
            output.clone(),
        ));

        let review: Arc<dyn ListReview> = Arc::new(crate::guard::sanitize::injected::BeforeReview {
            injected,
            next: integrity.clone(),
            auditor: auditor.clone(),
        });
        let paths = ServerPaths::of(config);
        let servers = config
            .servers
            .iter()
            .map(|(name, s)| {
                let mut info = server_info(
                    name,
                    s,
                    frame_limits,
                    g.input_required_ttl.0,
                    &paths,
                    Some(review.clone()),
                    Some(messages.clone()),
                )
                .map_err(GatewayError::Config)?;
                info.credentials = credentials.per_caller(name).then(|| credentials.clone());
                Ok(Server::new(info, hub.clone()))
            })
            .collect::<Result<_, GatewayError>>()?;
        let registry = Arc::new(Registry::new(servers));
        let resolver = Arc::new(Resolver::new(registry.clone(), &g.separator, g.list_page_size as usize));
        let announce =
            Arc::new(Announce::new(g.instructions.clone(), registry.clone(), integrity.clone(), output.clone()));
        let resolve = Arc::new(Resolve::new(resolver.clone(), authorizer.clone()));
        let forward = Arc::new(Forward::new(ForwardParts {
            resolver,
            policies: authorizer.clone(),
            parked: parked.clone(),
            messages: messages.clone(),
            quarantine: quarantine.clone(),
            announce: announce.clone(),
            input_required_ttl: g.input_required_ttl.0,
        }));
        let stack = Stack::assemble(
            Guards {
                normalize: Arc::new(Normalize),
                resolve: resolve.clone(),
                validate_args: Arc::new(ValidateArgs::new(schemas)),
                authorize: authorize.clone(),
                inspect_args: Arc::new(InspectArgs::new(output.clone(), config.tools.clone())),
                limit: Arc::new(Limit::new(limits.clone(), parked.clone())),
                approve: Arc::new(Approve::new(approvals.clone(), containment.clone())),
                forward,
                respond: Arc::new(Respond::new(output, messages, kept_errors.clone())),
                sanitize,
                taint: taint_guard,
                quarantine: Arc::new(QuarantineGuard::new(quarantine.clone())),
                seal: Arc::new(SealContinuation::new(approvals.clone())),
                audit: auditor.clone(),
            },
            Some(ListenGuards { resolve, authorize, hub: hub.clone() }),
            g.list_ttl.0,
        );
        let stack = adapt(stack);
        Ok(Arc::new(Gateway {
            settings: Settings {
                limits: frame_limits,
                watch_policies: config.policy.watch,
                body_read_timeout: g.body_read_timeout.0,
            },
            registry,
            hub,
            stack,
            announce,
            parked,
            local_principal: Arc::new(g.local_principal.principal()),
            authenticator,
            authorizer,
            limits,
            auditor,
            quarantine,
            integrity,
            kept_errors,
            taint,
            approvals,
            containment,
            containment_poll: config.approvals.containment_poll.0,
            credentials,
            shared,
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
        self.listen_for_news();
        for server in self.registry.all() {
            if let warden_upstream::TransportSpec::Stdio { sandbox: None, .. } = &server.info.spec.transport {
                let (auditor, name) = (self.auditor.clone(), server.info.name.clone());
                tokio::spawn(async move { auditor.unconfined(&name).await });
            }
            if server.info.isolation == Isolation::Shared {
                let Some(slot) = server.slot_for(Audience::All) else { continue };
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
                // A shared session idle here may be in use on another gateway: it ends everywhere
                // when its record expires.
                let everywhere = !gw.hub.sessions.are_shared();
                for s in gw.hub.sessions.reap() {
                    tracing::info!(session = %&s.id[..8], "session expired here");
                    gw.end_session(&s, everywhere).await;
                }
                for s in gw.hub.sessions.keep_busy().await {
                    gw.end_session(&s, false).await;
                }
                gw.parked.reap();
                gw.limits.tidy();
                gw.taint.tidy();
                gw.approvals.expire().await;
                gw.credentials.tidy();
                for server in gw.registry.all() {
                    server.reap(Duration::from_secs(30 * 60)).await;
                }
            }
        });
    }

    /// Applies news at once when another gateway or an operator publishes it (`[state] redis`):
    /// containment (the poll of `containment_poll` stays as the backstop), ended sessions and
    /// accepted pins.
    fn listen_for_news(self: &Arc<Self>) {
        let Some(shared) = self.shared.clone() else { return };
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let w = weak.clone();
                let ended = shared
                    .listen(move |news| {
                        let w = w.clone();
                        async move {
                            if let Some(gw) = w.upgrade() {
                                gw.on_news(&news).await;
                            }
                        }
                    })
                    .await;
                if weak.upgrade().is_none() {
                    break;
                }
                if let Err(e) = ended {
                    tracing::warn!("{e}: news from other gateways arrive by polling until it returns");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }

    /// Applies what another gateway or an operator published.
    async fn on_news(&self, news: &str) {
        if let Some(hash) = news.strip_prefix("session-ended:") {
            if let Some(s) = self.hub.sessions.by_hash(hash) {
                tracing::info!(session = %&s.id[..8], "session ended on another gateway");
                self.hub.sessions.remove(&s.id);
                self.end_session(&s, false).await;
            }
            return;
        }
        if let Some(server) = news.strip_prefix("pins:") {
            self.relist(server);
            return;
        }
        tracing::info!(%news, "news from another gateway: syncing containment");
        if let Err(e) = self.sync_containment().await {
            tracing::warn!("containment not synced: {e}");
        }
    }

    /// Definitions of `server` were accepted (or unpinned): the next listing fetches and reviews
    /// them again.
    fn relist(&self, server: &str) {
        if let Some(server) = self.registry.get(server) {
            tracing::info!(server = %server.info.name, "pins changed: lists are fetched and reviewed again");
            for slot in server.slots() {
                slot.lanes().iter().for_each(|l| l.inventory.invalidate_all());
            }
        }
    }

    /// An operator accepted definitions of `server` here: this gateway lists them again, and so
    /// does every gateway sharing state.
    pub async fn pins_changed(&self, server: &str) {
        self.relist(server);
        if let Some(state) = &self.shared
            && let Err(e) = state.publish(&format!("pins:{server}")).await
        {
            tracing::warn!("{e}: other gateways pick the accepted definitions up at their next listing");
        }
    }

    /// Tells every gateway sharing state that containment changed.
    pub async fn publish_containment(&self) {
        if let Some(shared) = &self.shared
            && let Err(e) = shared.publish("containment").await
        {
            tracing::warn!("{e}: other gateways apply the change when they next poll");
        }
    }

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
        self.registry.shutdown().await;
        // The audit log's writer closes last, so that on SQLite it checkpoints the shared file.
        self.approvals.store().close().await;
        self.containment.store().close().await;
        self.integrity.close().await;
        self.quarantine.close().await;
        if let Some(kept) = self.kept_errors.get() {
            kept.close().await;
        }
        // What was announced before the end is delivered if it can be, soon.
        if let Some(n) = self.auditor.notifier()
            && !n.drain(Duration::from_secs(5)).await
        {
            tracing::warn!("notifications still queued at shutdown were not delivered");
        }
        if let Some(log) = self.auditor.log() {
            // Rows are never dropped, so a database that stays down would hold the exit forever.
            match tokio::time::timeout(Duration::from_secs(30), log.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!("the audit log could not be flushed: {e}"),
                Err(_) => tracing::error!("the audit log could not be flushed within 30s; queued rows are lost"),
            }
        }
    }

    /// The metrics as Prometheus text, with each server's health read now.
    pub fn render_metrics(&self) -> String {
        let m = &self.auditor.metrics;
        for server in self.registry.all() {
            let labels = crate::metrics::ServerLabels { server: server.info.name.clone() };
            m.upstream_up.get_or_create(&labels).set(i64::from(server.is_up()));
        }
        m.render()
    }

    /// Releases what a legacy session held here: its connections (with session isolation) and
    /// its resource subscriptions, and its taint where the session ended `everywhere` (a shared
    /// session only left this gateway is still tainted for the next).
    pub async fn end_session(&self, session: &Session, everywhere: bool) {
        self.taint.forget_session(&session.id, everywhere);
        self.registry.end_session(&session.id).await;
    }

    /// Serves one request of a client through the stack and returns the response to send.
    pub async fn handle(
        &self,
        ctx: &ClientContext,
        request: Message,
        out: &crate::client::Outbound,
        cancel: &CancellationToken,
    ) -> Message {
        self.stack.serve(ctx, request, out, cancel).await
    }

    /// Handles a notification from a client.
    pub async fn client_notification(&self, ctx: &ClientContext, msg: &Message) {
        crate::stack::client_notification(&self.registry, ctx, msg).await;
    }

    /// Opens a `subscriptions/listen` stream (see [`Stack::listen`]).
    pub async fn open_listener(
        &self,
        ctx: &ClientContext,
        request: &Message,
        tx: mpsc::Sender<Message>,
        listener_id: u64,
    ) -> Result<(Arc<Listener>, Message), RpcError> {
        self.stack.listen(ctx, request, tx, listener_id).await
    }

    /// Closes a listen stream by id and drops its subscriptions.
    pub async fn drop_listener(&self, id: u64) {
        self.hub.unlisten(id);
        self.registry.drop_subscriber(&Subscriber::Listener(id)).await;
    }

    /// Closes a listen stream and drops its subscriptions.
    pub async fn close_listener(&self, listener: &Listener) {
        self.drop_listener(listener.id).await;
    }

    /// Applies the containment list in the store (see [`Containment::sync`]).
    pub async fn sync_containment(&self) -> Result<(), GatewayError> {
        self.containment.sync(&self.registry, &self.parked, &self.hub, &self.auditor.metrics, &self.credentials).await
    }

    /// Contains `server` for the admin API, and applies it at once.
    pub async fn contain_server(&self, server: &str, by: &str, reason: &str) -> Result<Contained, GatewayError> {
        if self.registry.get(server).is_none() {
            return Err(GatewayError::Refused(format!("no server is configured as '{server}'")));
        }
        let store = self.containment.store();
        let grants = self.credentials.grants();
        let done =
            crate::guard::contain::contain(store, self.approvals.store(), grants, &self.auditor, server, by, reason)
                .await?;
        self.sync_containment().await?;
        self.publish_containment().await;
        Ok(done)
    }

    /// Revokes the credentials obtained for `server` (of `user`, or every caller's) for the admin
    /// API, and applies it at once; how many stored grants were deleted.
    pub async fn revoke_credentials(
        &self,
        server: &str,
        user: Option<&str>,
        by: &str,
        reason: &str,
    ) -> Result<u64, GatewayError> {
        if self.registry.get(server).is_none() {
            return Err(GatewayError::Refused(format!("no server is configured as '{server}'")));
        }
        let (store, grants) = (self.containment.store(), self.credentials.grants());
        let deleted =
            crate::guard::contain::revoke_credentials(store, grants, &self.auditor, server, user, by, reason).await?;
        self.sync_containment().await?;
        self.publish_containment().await;
        Ok(deleted)
    }

    /// Releases `server` for the admin API, and applies it at once; whether it was contained.
    pub async fn release_server(&self, server: &str, by: &str) -> Result<bool, GatewayError> {
        let done = crate::guard::contain::release(self.containment.store(), &self.auditor, server, by).await?;
        self.sync_containment().await?;
        self.publish_containment().await;
        Ok(done)
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
        self.announce.initialize_result(version).await
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
        ClientContext::of_session(session)
    }
}

/// `-32022`: the version is not one Warden serves.
pub fn unsupported_version(requested: &str) -> RpcError {
    let shown: String = requested.chars().take(40).collect();
    RpcError::new(error::UNSUPPORTED_PROTOCOL_VERSION, format!("Unsupported protocol version: {shown}"))
        .with_data(json!({ "supported": Announce::supported_versions(), "requested": requested }))
}
