//! `warden.toml`: the gateway's one configuration file.
//!
//! Every section refuses unknown keys, and every error names the file, the line and the key, so a
//! typo fails at start-up instead of silently disabling a control. The JSON Schema shipped in
//! `docs/warden.schema.json` is generated from these types (`warden config schema`).

mod approvals;
mod auth;
mod console;
mod credentials;
mod duration;
mod egress;
mod limits;
mod locate;
mod observe;
mod output;
mod pinning;
mod servers;
pub mod state;
mod tools;

pub use approvals::{ApprovalFlow, ApprovalsSection, StateKeySection, TaintSection};
pub use auth::{ApiKeySection, AuthSection, JwtAlgorithm, OAuthSection, is_scope_token};
pub use console::{CONSOLE_PATH, ConsoleSection, NotificationsSection, NotifyEvent, WebhookFormat, WebhookSection};
pub use credentials::{CALLBACK_PATH, CredentialsSection, SIGNED_IN_PATH, START_PATH, SignInSection, browser_url};
pub use duration::ConfigDuration;
pub use egress::EgressSection;
pub use limits::{LimitsSection, RateSection};
pub use observe::{
    AdminSection, AuditSection, CustomGate, DeployWindow, Durability, GatesSection, OperatorKeySection,
    TelemetrySection,
};
pub use output::{BinaryPayloads, OutputSection, QUARANTINE_LEVELS, ServerErrors, is_quarantine_level};
pub use pinning::{Caches, Pinned, is_exact_version, pin};
pub use servers::{
    CredentialSection, Isolation, OAuthClientSection, PinMode, ProtocolChoice, SAMPLING_MAX_TOKENS, SamplingContext,
    SamplingLimits, SandboxLimits, SandboxMode, ServerSection, SettingValue, TokenExchangeSection, ValueSource,
};
pub use state::StateSection;
pub use tools::{ArgumentSecrets, ExtraFields, PiiAction, ToolClass, ToolSection, tool_settings};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use warden_policy::PrincipalClass;

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Settings of the gateway itself.
    #[serde(default)]
    pub gateway: GatewaySection,
    /// The MCP servers behind the gateway, by name. Only these are reachable.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerSection>,
    /// Per-tool settings, keyed `"server/tool"`; `"server/*"` sets defaults for a server's tools.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolSection>,
    /// Who may call the HTTP endpoint.
    #[serde(default)]
    pub auth: AuthSection,
    /// The Cedar policies that decide every call.
    #[serde(default)]
    pub policy: PolicySection,
    /// Rate limits and budgets per caller.
    #[serde(default)]
    pub limits: LimitsSection,
    /// Pinning of tool definitions and the poisoning scanner.
    #[serde(default)]
    pub integrity: IntegritySection,
    /// The response guards: quarantine of results that instruct the model.
    #[serde(default)]
    pub output: OutputSection,
    /// Human approval of calls: the flows, their time limits and the key sealing in-band state.
    #[serde(default)]
    pub approvals: ApprovalsSection,
    /// How long a context stays tainted after it read untrusted content.
    #[serde(default)]
    pub taint: TaintSection,
    /// The audit log.
    #[serde(default)]
    pub audit: AuditSection,
    /// The admin listener (metrics).
    #[serde(default)]
    pub admin: AdminSection,
    /// Traces.
    #[serde(default)]
    pub telemetry: TelemetrySection,
    /// Detection gates.
    #[serde(default)]
    pub gates: GatesSection,
    /// What Warden's own outbound connections may reach beyond public https.
    #[serde(default)]
    pub egress: EgressSection,
    /// Where callers' upstream authorizations come back, and the key they are kept under.
    #[serde(default)]
    pub credentials: CredentialsSection,
    /// State several gateways share (Redis).
    #[serde(default)]
    pub state: StateSection,
    /// The operator console on the admin listener.
    #[serde(default)]
    pub console: ConsoleSection,
    /// Webhooks told of approvals waiting, held definitions, quarantined results, tripped gates
    /// and containment.
    #[serde(default)]
    pub notifications: NotificationsSection,
    /// The directory relative paths in the file are read from (the file's own directory).
    #[serde(skip)]
    #[schemars(skip)]
    pub base_dir: PathBuf,
}

/// `[policy]`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySection {
    /// Cedar policy files, relative to this file. With none, every call is denied.
    pub files: Vec<PathBuf>,
    /// Reload the policies when a file changes (they are also reloaded on SIGHUP). A set that
    /// fails to parse or validate never replaces the one in force.
    pub watch: bool,
}

impl Default for PolicySection {
    fn default() -> Self {
        PolicySection { files: vec![], watch: true }
    }
}

/// `[gateway]`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySection {
    /// Address of the MCP listener. Loopback by default; binding other interfaces is a deliberate choice.
    pub listen: String,
    /// Path of the MCP endpoint.
    pub path: String,
    /// This gateway's canonical URI: the audience tokens must be issued for.
    pub resource: Option<String>,
    /// Separator between server and item names in exposed names (`files__read_file`).
    pub separator: String,
    /// Origins allowed to call the endpoint from a browser. Requests from other origins get 403.
    /// When empty, only loopback origins on the listen port are allowed.
    pub allowed_origins: Vec<String>,
    /// `Host` header values accepted (DNS-rebinding protection). When empty and listening on a
    /// loopback address, only loopback host names on the listen port are accepted.
    pub allowed_hosts: Vec<String>,
    /// Largest JSON-RPC frame accepted from clients and servers, in bytes.
    pub max_frame_bytes: u64,
    /// Deepest JSON nesting accepted.
    pub max_json_depth: u32,
    /// A legacy session unused this long is ended.
    pub session_idle_timeout: ConfigDuration,
    /// Most legacy sessions held at once; new sessions are refused past this.
    pub max_sessions: u32,
    /// Items per page in merged lists; 0 sends each list whole.
    pub list_page_size: u32,
    /// Freshness hint (`ttlMs`) on list results sent to 2026-07-28 clients.
    pub list_ttl: ConfigDuration,
    /// How long a call bridged to a 2026-07-28 client waits for the client's `input_required` retry.
    pub input_required_ttl: ConfigDuration,
    /// Instructions the gateway gives clients, before the servers' own.
    pub instructions: Option<String>,
    /// The principal of local use: `warden run` (stdio), and the HTTP endpoint when `[auth]` is
    /// not configured (then only on a loopback address).
    pub local_principal: LocalPrincipal,
    /// How long a client may take to send a request's headers, and how long a connection may
    /// idle between requests, before it is closed.
    pub header_read_timeout: ConfigDuration,
    /// How long a client may take to send a request's body before it is refused (408).
    pub body_read_timeout: ConfigDuration,
    /// Largest request head (request line and headers) accepted, in bytes; at least 8192.
    pub max_header_bytes: u32,
    /// Most client connections held open at once; past this, new ones are closed at once.
    pub max_connections: u32,
    /// Most connections held open at once from one client address.
    pub max_connections_per_client: u32,
}

impl Default for GatewaySection {
    fn default() -> Self {
        GatewaySection {
            listen: "127.0.0.1:8787".into(),
            path: "/mcp".into(),
            resource: None,
            separator: "__".into(),
            allowed_origins: vec![],
            allowed_hosts: vec![],
            max_frame_bytes: 4 * 1024 * 1024,
            max_json_depth: 64,
            session_idle_timeout: ConfigDuration(Duration::from_secs(30 * 60)),
            max_sessions: 10_000,
            list_page_size: 0,
            list_ttl: ConfigDuration(Duration::from_secs(30)),
            input_required_ttl: ConfigDuration(Duration::from_secs(300)),
            instructions: None,
            local_principal: LocalPrincipal::default(),
            header_read_timeout: ConfigDuration(Duration::from_secs(10)),
            body_read_timeout: ConfigDuration(Duration::from_secs(30)),
            max_header_bytes: 16 * 1024,
            max_connections: 1024,
            max_connections_per_client: 128,
        }
    }
}

/// `[gateway.local_principal]`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LocalPrincipal {
    /// Subject of the local principal.
    pub subject: String,
    /// Tenant of the local principal.
    pub tenant: Option<String>,
    /// Class of the local principal.
    pub class: PrincipalClass,
    /// Roles of the local principal.
    pub roles: Vec<String>,
    /// Scopes of the local principal.
    pub scopes: Vec<String>,
}

impl Default for LocalPrincipal {
    fn default() -> Self {
        LocalPrincipal {
            subject: "local".into(),
            tenant: None,
            class: PrincipalClass::User,
            roles: vec![],
            scopes: vec![],
        }
    }
}

impl LocalPrincipal {
    /// The principal it describes.
    pub fn principal(&self) -> warden_policy::Principal {
        let mut p = warden_policy::Principal::new(self.subject.clone(), self.class);
        p.tenant = self.tenant.clone();
        p.roles = self.roles.clone();
        p.scopes = self.scopes.clone();
        p
    }
}

/// `[integrity]`: tool definitions, their pins and the poisoning scanner.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IntegritySection {
    /// Findings of the poisoning scanner at or above this severity hold a definition until a
    /// human accepts it: `info`, `low`, `medium`, `high` or `critical`.
    pub block_at: String,
}

impl Default for IntegritySection {
    fn default() -> Self {
        IntegritySection { block_at: "medium".to_owned() }
    }
}

/// A configuration error, located in its file.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}:{line}:{column}: {key}: {message}")]
pub struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Dotted key path, or `(file)` for the whole file.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: 0,
            column: 0,
            key: "(file)".into(),
            message: format!("cannot be read: {e}"),
        })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        config.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(config)
    }

    /// A path from the file, resolved against the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() { p.to_path_buf() } else { self.base_dir.join(p) }
    }

    /// The policy files, resolved.
    pub fn policy_files(&self) -> Vec<PathBuf> {
        self.policy.files.iter().map(|f| self.resolve(f)).collect()
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = locate::deserialize(text, file)?;
        config.validate().map_err(|(path, message)| locate::error_at(text, file, &path, message))?;
        Ok(config)
    }

    /// The JSON Schema of the configuration file.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default()
    }

    /// The listen address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.gateway.listen.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8787)))
    }

    fn validate(&self) -> Result<(), (Vec<String>, String)> {
        let g = &self.gateway;
        let at = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        if g.listen.parse::<SocketAddr>().is_err() {
            return Err((
                at(&["gateway", "listen"]),
                format!("{:?} is not an address such as \"127.0.0.1:8787\"", g.listen),
            ));
        }
        if !g.path.starts_with('/') {
            return Err((at(&["gateway", "path"]), "must start with '/'".into()));
        }
        if !self.auth.is_configured() && !self.listen_addr().ip().is_loopback() {
            return Err((
                at(&["gateway", "listen"]),
                "serving a non-loopback address needs [auth]: without it every caller would be the local principal"
                    .into(),
            ));
        }
        self.auth.validate(g.resource.as_deref())?;
        for (keys, rate) in
            [(["limits", "per_principal"], &self.limits.per_principal), (["limits", "per_tool"], &self.limits.per_tool)]
        {
            if let Some(r) = rate {
                r.parse().map_err(|e| (at(&keys), e))?;
            }
        }
        if self.limits.max_call_depth == 0 || self.limits.max_concurrent_calls == 0 {
            return Err((at(&["limits"]), "max_call_depth and max_concurrent_calls must be at least 1".into()));
        }
        if g.separator.is_empty() || g.separator.len() > 8 || g.separator.chars().any(|c| c.is_whitespace() || c == '/')
        {
            return Err((
                at(&["gateway", "separator"]),
                "must be 1 to 8 characters, without white space or '/'".into(),
            ));
        }
        if !(1024..=256 * 1024 * 1024).contains(&g.max_frame_bytes) {
            return Err((at(&["gateway", "max_frame_bytes"]), "must be between 1024 and 268435456".into()));
        }
        if !(4..=128).contains(&g.max_json_depth) {
            return Err((at(&["gateway", "max_json_depth"]), "must be between 4 and 128".into()));
        }
        if !(8192..=1024 * 1024).contains(&g.max_header_bytes) {
            return Err((at(&["gateway", "max_header_bytes"]), "must be between 8192 and 1048576".into()));
        }
        if g.max_connections == 0 || g.max_connections_per_client == 0 {
            let key = if g.max_connections == 0 { "max_connections" } else { "max_connections_per_client" };
            return Err((at(&["gateway", key]), "must be at least 1".into()));
        }
        for (key, d) in [("header_read_timeout", g.header_read_timeout), ("body_read_timeout", g.body_read_timeout)] {
            if d.0.is_zero() {
                return Err((at(&["gateway", key]), "must be longer than 0s".into()));
            }
        }
        for origin in &g.allowed_origins {
            let ok = origin.split_once("://").is_some_and(|(scheme, rest)| {
                matches!(scheme, "http" | "https") && !rest.is_empty() && !rest.contains('/')
            });
            if !ok {
                return Err((
                    at(&["gateway", "allowed_origins"]),
                    format!("{origin:?} is not an origin such as \"https://app.example.com\""),
                ));
            }
        }
        if let Some(r) = &g.resource
            && (!(r.starts_with("https://") || r.starts_with("http://")) || r.contains('#'))
        {
            return Err((at(&["gateway", "resource"]), "must be an absolute http(s) URI without a fragment".into()));
        }
        let mut namespaces: BTreeMap<String, &str> = BTreeMap::new();
        for (name, s) in &self.servers {
            let key = |k: &str| vec!["servers".to_owned(), name.clone(), k.to_owned()];
            let here = vec!["servers".to_owned(), name.clone()];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err((here, "server names may use only letters, digits, '-' and '_'".into()));
            }
            if name.contains(g.separator.as_str()) {
                return Err((here, format!("server names must not contain the separator {:?}", g.separator)));
            }
            match (&s.command, &s.url) {
                (Some(_), Some(_)) => return Err((here, "set either command (stdio) or url (HTTP), not both".into())),
                (None, None) => return Err((here, "set command (stdio) or url (HTTP)".into())),
                (Some(c), None) => {
                    if c.trim().is_empty() {
                        return Err((key("command"), "must not be empty".into()));
                    }
                    if s.credential.is_some() {
                        return Err((
                            key("credential"),
                            "credential applies only to url servers; give a command server its secret in env".into(),
                        ));
                    }
                    if !s.headers.is_empty() {
                        return Err((key("headers"), "headers apply only to url servers".into()));
                    }
                }
                (None, Some(u)) => {
                    let ok = (u.starts_with("http://") || u.starts_with("https://")) && u.len() > "https://".len();
                    if !ok {
                        return Err((key("url"), format!("{u:?} is not an http(s) URL")));
                    }
                    for (k, what) in [
                        ("args", s.args.is_empty()),
                        ("env", s.env.is_empty()),
                        ("env_inherit", s.env_inherit.is_empty()),
                    ] {
                        if !what {
                            return Err((key(k), format!("{k} applies only to command servers")));
                        }
                    }
                    if s.cwd.is_some() {
                        return Err((key("cwd"), "cwd applies only to command servers".into()));
                    }
                    if let Some(c) = &s.credential {
                        credentials::check_credential(self, c, s, here.clone())?;
                    }
                }
            }
            let sandbox_keys = [
                ("sandbox_read", s.sandbox_read.is_empty()),
                ("sandbox_write", s.sandbox_write.is_empty()),
                ("egress", s.egress.is_empty()),
            ];
            for (k, empty) in sandbox_keys {
                if empty {
                    continue;
                }
                if s.command.is_none() {
                    return Err((key(k), format!("{k} applies only to command servers")));
                }
                if s.sandbox == SandboxMode::Off {
                    return Err((
                        key(k),
                        format!(
                            "{k} has no effect with sandbox = \"off\": the server has the gateway's files and network"
                        ),
                    ));
                }
            }
            warden_upstream::egress::Rules::parse(&s.egress).map_err(|e| (key("egress"), e))?;
            for var in s.env.keys().chain(&s.env_inherit) {
                if var.is_empty() || var.contains('=') || var.contains('\0') {
                    return Err((key("env"), format!("{var:?} is not a valid environment variable name")));
                }
            }
            for (what, values) in [("env", &s.env), ("headers", &s.headers)] {
                if let Some((k, why)) = values.iter().find_map(|(k, v)| Some((k, v.problem()?))) {
                    return Err((vec!["servers".to_owned(), name.clone(), what.to_owned(), k.clone()], why));
                }
            }
            if let Some(root) =
                s.path_roots.iter().find(|r| warden_policy::paths::normalize(r, None).is_none() || !r.starts_with('/'))
            {
                return Err((key("path_roots"), format!("{root:?} is not an absolute path")));
            }
            let ns = s.namespace.clone().unwrap_or_else(|| name.clone());
            if !ns.is_empty() {
                if !ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    || ns.contains(g.separator.as_str())
                {
                    return Err((
                        key("namespace"),
                        "may use only letters, digits, '-' and '_', and not the separator".into(),
                    ));
                }
                if let Some(other) = namespaces.insert(ns.clone(), name) {
                    return Err((key("namespace"), format!("namespace {ns:?} is already used by server {other:?}")));
                }
            }
        }
        tools::validate(&self.tools, &self.servers)?;
        auth::check_scopes(&g.local_principal.scopes, at(&["gateway", "local_principal", "scopes"]))?;
        self.validate_observability()
    }

    fn validate_observability(&self) -> Result<(), (Vec<String>, String)> {
        let at = |keys: &[&str]| keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>();
        if !matches!(self.integrity.block_at.as_str(), "info" | "low" | "medium" | "high" | "critical") {
            return Err((at(&["integrity", "block_at"]), "must be info, low, medium, high or critical".into()));
        }
        if !is_quarantine_level(&self.output.quarantine_at) {
            return Err((at(&["output", "quarantine_at"]), format!("must be {QUARANTINE_LEVELS}")));
        }
        let a = &self.audit;
        if a.postgres_url.is_some() && a.postgres_url_env.is_some() {
            return Err((at(&["audit"]), "set postgres_url or postgres_url_env, not both".into()));
        }
        if let Some(u) = &a.postgres_url
            && !(u.starts_with("postgres://") || u.starts_with("postgresql://"))
        {
            return Err((at(&["audit", "postgres_url"]), "must be a postgres:// URL".into()));
        }
        if a.retain_days.is_some() && a.signing_key.is_none() {
            return Err((
                at(&["audit", "retain_days"]),
                "needs signing_key: deleted rows are vouched for by a signed checkpoint".into(),
            ));
        }
        if a.retain_days == Some(0) {
            return Err((at(&["audit", "retain_days"]), "must be at least 1".into()));
        }
        if let Some(l) = &self.admin.listen
            && l.parse::<SocketAddr>().is_err()
        {
            return Err((at(&["admin", "listen"]), format!("{l:?} is not an address such as \"127.0.0.1:9464\"")));
        }
        self.admin.validate_keys(&self.auth)?;
        if let Some(e) = &self.telemetry.otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err((at(&["telemetry", "otlp_endpoint"]), "must be an http(s) URL".into()));
        }
        if let Some(w) = &self.gates.webhook
            && !(w.starts_with("https://") || (self.gates.webhook_allow_private && w.starts_with("http://")))
        {
            return Err((at(&["gates", "webhook"]), "must be an https URL".into()));
        }
        for w in &self.gates.deploy_windows {
            for t in [&w.start, &w.end] {
                if chrono::DateTime::parse_from_rfc3339(t).is_err() {
                    return Err((at(&["gates", "deploy_windows"]), format!("{t:?} is not an RFC 3339 time")));
                }
            }
        }
        for g in &self.gates.custom {
            if g.name.trim().is_empty() || g.count_where.trim().is_empty() {
                return Err((at(&["gates", "custom"]), "a gate needs a name and count_where".into()));
            }
        }
        self.credentials.validate()?;
        self.console.validate(self.auth.oauth.is_some())?;
        self.notifications.validate()?;
        self.state.validate(self.approvals.state_key.is_some())?;
        self.validate_egress()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_from_the_design_parses() {
        let text = r#"
[gateway]
listen = "127.0.0.1:8787"
resource = "https://mcp.example.com/mcp"

[servers.files]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv/data"]
env = { }

[servers.tickets]
url = "https://tickets.internal.example/mcp"

[tools."files/write_file"]
class = "write"
"#;
        let c = Config::parse(text, "warden.toml").unwrap();
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.tools["files/write_file"].class, Some(ToolClass::Write));
    }

    #[test]
    fn unknown_keys_name_file_line_and_key() {
        let text = "[gateway]\nlisten = \"127.0.0.1:1\"\n\n[servers.files]\ncomand = \"npx\"\n";
        let e = Config::parse(text, "w.toml").unwrap_err();
        assert_eq!(e.file, "w.toml");
        assert_eq!(e.line, 5, "{e}");
        assert!(e.key.contains("servers.files"), "{e}");
        assert!(e.message.contains("comand"), "{e}");
    }

    #[test]
    fn semantic_errors_are_located() {
        let text = "[servers.a]\ncommand = \"x\"\n\n[servers.b]\ncommand = \"y\"\nurl = \"http://h/mcp\"\n";
        let e = Config::parse(text, "w.toml").unwrap_err();
        assert_eq!(e.key, "servers.b");
        assert_eq!(e.line, 4, "{e}");
        let e = Config::parse("[tools.\"nope/x\"]\nclass = \"read\"\n", "w.toml").unwrap_err();
        assert_eq!(e.line, 1);
        let e = Config::parse("[gateway]\nseparator = \"\"\n", "w.toml").unwrap_err();
        assert_eq!((e.key.as_str(), e.line), ("gateway.separator", 2));
        let e = Config::parse("[servers.a__b]\ncommand = \"x\"\n", "w.toml").unwrap_err();
        assert!(e.message.contains("separator"));
    }

    #[test]
    fn type_errors_are_located() {
        let e = Config::parse("[gateway]\n\nmax_frame_bytes = \"big\"\n", "w.toml").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert_eq!(e.key, "gateway.max_frame_bytes");
        let e = Config::parse("[gateway]\nsession_idle_timeout = \"30\"\n", "w.toml").unwrap_err();
        assert!(e.message.contains("unit"), "{e}");
        let e = Config::parse("[gateway\n", "w.toml").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn duplicate_namespaces_are_refused() {
        let text = "[servers.a]\ncommand = \"x\"\nnamespace = \"n\"\n[servers.b]\ncommand = \"y\"\nnamespace = \"n\"\n";
        assert!(Config::parse(text, "w").unwrap_err().message.contains("already used"));
        let text = "[servers.a]\ncommand = \"x\"\nnamespace = \"\"\n[servers.b]\ncommand = \"y\"\nnamespace = \"\"\n";
        assert!(
            Config::parse(text, "w").is_ok(),
            "several unprefixed servers are allowed; clashes are refused at call time"
        );
    }

    #[test]
    fn schema_is_generated() {
        let s = Config::json_schema();
        assert!(s.to_string().contains("allowed_origins"));
    }
}
