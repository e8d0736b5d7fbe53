//! `[servers.NAME]`: the MCP servers behind the gateway, how they are reached and how far what
//! they send is trusted.

use super::ConfigDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A setting's value: written here, or taken when the server starts from the gateway's
/// environment (`{ env = "VAR" }`) or a file (`{ file = "path" }`, relative to the configuration
/// file, trailing line breaks removed).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum SettingValue {
    /// The value itself.
    Text(String),
    /// Where the value is read from.
    From(ValueSource),
}

/// `{ env = "VAR" }` or `{ file = "path" }`: exactly one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueSource {
    /// An environment variable of the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

impl SettingValue {
    /// A value taken from the gateway's environment variable `var`.
    pub fn from_env(var: impl Into<String>) -> SettingValue {
        SettingValue::From(ValueSource { env: Some(var.into()), file: None })
    }

    /// The value written in the configuration, if it is one.
    pub fn literal(&self) -> Option<&str> {
        match self {
            SettingValue::Text(t) => Some(t),
            SettingValue::From(_) => None,
        }
    }

    /// Why the setting is malformed, if it is (checked when the configuration loads).
    pub fn problem(&self) -> Option<String> {
        match self {
            SettingValue::Text(_) => None,
            SettingValue::From(ValueSource { env: Some(v), file: None }) => {
                (v.is_empty() || v.contains('=') || v.contains('\0'))
                    .then(|| format!("{v:?} is not a valid environment variable name"))
            }
            SettingValue::From(ValueSource { env: None, file: Some(_) }) => None,
            SettingValue::From(_) => Some("give exactly one of env or file".to_owned()),
        }
    }

    /// The value: read from the environment or the file now. The error names the variable or
    /// file, never a value.
    pub fn resolve(&self, base_dir: &std::path::Path) -> Result<String, String> {
        match self {
            SettingValue::Text(t) => Ok(t.clone()),
            SettingValue::From(ValueSource { env: Some(var), .. }) => {
                std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))
            }
            SettingValue::From(ValueSource { file: Some(f), .. }) => {
                let path = base_dir.join(f);
                std::fs::read_to_string(&path)
                    .map(|t| t.trim_end_matches(['\r', '\n']).to_owned())
                    .map_err(|e| format!("reading {}: {e}", f.display()))
            }
            SettingValue::From(_) => Err("give exactly one of env or file".to_owned()),
        }
    }

    /// The file the value is read from, if it is.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            SettingValue::From(ValueSource { file: Some(f), .. }) => Some(f),
            _ => None,
        }
    }
}

impl From<&str> for SettingValue {
    fn from(text: &str) -> Self {
        SettingValue::Text(text.to_owned())
    }
}

impl From<String> for SettingValue {
    fn from(text: String) -> Self {
        SettingValue::Text(text)
    }
}

/// Which protocol era Warden speaks to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProtocolChoice {
    /// Speak each client's own era where the server supports it, and bridge otherwise.
    #[default]
    Auto,
    /// Always `initialize` (2025-11-25 and earlier).
    Legacy,
    /// Always stateless 2026-07-28.
    Modern,
}

/// How clients share a server's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Isolation {
    /// One connection (one process) for all clients. Server-initiated messages that belong to no
    /// request are never shown to other clients.
    #[default]
    Shared,
    /// One connection per legacy session (and per principal for 2026-07-28 clients): roots,
    /// subscriptions, log levels and unsolicited messages stay with their client.
    Session,
}

/// `[servers.NAME]`: one MCP server, either a command (stdio) or a URL (Streamable HTTP).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Program to run (stdio server). `"@self"` is the running Warden executable.
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables set for the program: a value, or `{ env = "VAR" }` / `{ file =
    /// "path" }` to take it from the gateway's environment or a file when the server starts (so a
    /// secret need not be written here). Nothing else is passed unless named in `env_inherit`.
    #[serde(default)]
    pub env: BTreeMap<String, SettingValue>,
    /// Names of the gateway's environment variables the program may inherit (for example `PATH`).
    #[serde(default)]
    pub env_inherit: Vec<String>,
    /// Working directory of the program.
    pub cwd: Option<PathBuf>,
    /// MCP endpoint URL (Streamable HTTP server).
    pub url: Option<String>,
    /// Headers sent with every request to the URL: a value, or `{ env = "VAR" }` / `{ file =
    /// "path" }` (see `env`). A bearer token is better given as `credential`.
    #[serde(default)]
    pub headers: BTreeMap<String, SettingValue>,
    /// Protocol era to speak.
    #[serde(default)]
    pub protocol: ProtocolChoice,
    /// Longest the server may stay silent during a request (progress and other messages for the
    /// request restart the clock). Default 60s.
    pub timeout: Option<ConfigDuration>,
    /// Time allowed to start the server and complete the handshake.
    pub connect_timeout: Option<ConfigDuration>,
    /// How clients share the server's connection.
    #[serde(default)]
    pub isolation: Isolation,
    /// Prefix of exposed names; defaults to the server's name. `""` exposes names unprefixed.
    pub namespace: Option<String>,
    /// Roots answered to the server's `roots/list` when no single client can answer it.
    #[serde(default)]
    pub roots: Vec<String>,
    /// Believe the server's tool annotations when deciding a tool's class (`readOnlyHint`,
    /// `destructiveHint`). Only for servers you control: a hostile server would call a
    /// destructive tool read-only.
    #[serde(default)]
    pub trusted: bool,
    /// The gateway's own credential for this server (url servers). The client's token is never
    /// forwarded.
    pub credential: Option<CredentialSection>,
    /// Directories that path arguments (see `path_arguments`) must stay under, as absolute paths.
    #[serde(default)]
    pub path_roots: Vec<String>,
    /// How this server's tool, prompt and template definitions are pinned: `tofu` (first sight
    /// is pinned) or `strict` (nothing is listed until a human accepts it).
    #[serde(default)]
    pub pinning: PinMode,
    /// The widest `includeContext` this server's sampling requests may ask of a client's model;
    /// a wider one is narrowed to it. Default `none`: a server never sees the client's other
    /// conversations through sampling.
    #[serde(default)]
    pub sampling_context: SamplingContext,
    /// Most tokens this server's sampling requests may ask for; more is capped. Default 4096.
    pub sampling_max_tokens: Option<u64>,
    /// The results of this server's tools and prompts are trusted content: reading them does not
    /// taint the caller's context (a result the injection scanner flags still does). Default
    /// `false`: every tool result of the server taints. Per tool: `trusted_content` in `[tools]`.
    #[serde(default)]
    pub trusted_content: bool,
    /// Reading this server's resources does not taint the caller's context (a flagged result
    /// still does). Default `false`: every resource read taints.
    #[serde(default)]
    pub trusted_resources: bool,
    /// How the server's process is confined (stdio servers): `strict` (no network, a minimal
    /// file-system view, dangerous system calls refused, resource limits; see docs/sandbox.md) or
    /// `off` (unconfined, logged at start).
    #[serde(default)]
    pub sandbox: SandboxMode,
    /// Paths a sandboxed server may read beneath (relative to this file, or absolute).
    #[serde(default)]
    pub sandbox_read: Vec<PathBuf>,
    /// Paths a sandboxed server may read and write beneath.
    #[serde(default)]
    pub sandbox_write: Vec<PathBuf>,
    /// Resource limits of a sandboxed server.
    #[serde(default)]
    pub sandbox_limits: SandboxLimits,
    /// Where a sandboxed server may connect, through Warden's egress proxy (`HTTPS_PROXY` in its
    /// environment): host names (`"api.github.com"`, port 443 unless one is named;
    /// `"*.example.com"` for names below it) whose addresses must be public, and addresses or
    /// networks (`"10.0.0.5:8080"`, `"10.20.0.0/16"`) allowed whatever they are. Empty (the
    /// default): no network at all. Every connection asked for is an audit row.
    #[serde(default)]
    pub egress: Vec<String>,
    /// Accept a package runner (`npx`, `uvx`, `pipx run`, `docker run`) starting a package with no
    /// exact version. Unset, such a command is flagged by `warden check` (and fails
    /// `warden check --strict`).
    #[serde(default)]
    pub allow_unpinned: bool,
}

/// How a stdio server's process is confined.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// No network, a minimal file-system view, no new privileges, dangerous system calls refused.
    #[default]
    Strict,
    /// Unconfined: the server runs with the gateway's user's privileges (logged at start).
    Off,
}

/// `sandbox_limits`: resource limits of a sandboxed server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxLimits {
    /// Open files.
    pub open_files: u64,
    /// Processes and threads (for a gateway running as root, counted in a pids control group of
    /// the server's own). 0: no limit.
    pub processes: u64,
    /// CPU seconds, if limited.
    pub cpu_seconds: Option<u64>,
    /// Address space in MiB, if limited (Node reserves several GiB).
    pub memory_mib: Option<u64>,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        let d = warden_upstream::ResourceLimits::default();
        SandboxLimits { open_files: d.open_files, processes: d.processes, cpu_seconds: None, memory_mib: None }
    }
}

/// How much of a client's context a server's sampling request may include.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SamplingContext {
    /// None of it.
    #[default]
    None,
    /// What the client holds from this server.
    ThisServer,
    /// What the client holds from every server.
    AllServers,
}

impl SamplingContext {
    /// The value of `includeContext` on the wire.
    pub fn wire(self) -> &'static str {
        match self {
            SamplingContext::None => "none",
            SamplingContext::ThisServer => "thisServer",
            SamplingContext::AllServers => "allServers",
        }
    }

    /// Reads `includeContext`; a value MCP does not define counts as the widest.
    pub fn from_wire(value: &str) -> SamplingContext {
        match value {
            "none" => SamplingContext::None,
            "thisServer" => SamplingContext::ThisServer,
            _ => SamplingContext::AllServers,
        }
    }
}

/// How a server's definitions come to be trusted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PinMode {
    /// Trust on first use: a definition seen for the first time is pinned as it is (unless the
    /// poisoning scanner flags it).
    #[default]
    Tofu,
    /// A definition with no pin is held (not listed, not callable) until accepted with
    /// `warden pins accept`.
    Strict,
}

/// `credential = { env = "TICKETS_TOKEN" }` or `{ file = "/run/secrets/tickets" }`, sent as
/// `<header>: <scheme> <secret>`; or `{ token_exchange = { ... } }`, a token for each caller.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialSection {
    /// An environment variable of the gateway holding the secret.
    pub env: Option<String>,
    /// A file holding the secret (read on every connection, relative to the config file).
    pub file: Option<PathBuf>,
    /// Exchange each caller's token for one made for this server (RFC 8693): the server sees
    /// who acted, never the caller's own token. Needs `isolation = "session"`.
    pub token_exchange: Option<TokenExchangeSection>,
    /// Each caller authorizes Warden at the server's own authorization server (OAuth 2.1
    /// authorization code with PKCE) through a link Warden gives; Warden keeps each caller's
    /// tokens encrypted (`[credentials] key_*`). Needs `isolation = "session"`.
    pub oauth: Option<OAuthClientSection>,
    /// The header carrying it.
    #[serde(default = "authorization")]
    pub header: String,
    /// The scheme before the secret; `""` sends the secret alone.
    #[serde(default = "bearer")]
    pub scheme: String,
}

/// `credential = { token_exchange = { ... } }`: how Warden exchanges a caller's validated token
/// for a token whose audience is this server (RFC 8693, RFC 8707).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenExchangeSection {
    /// The authorization server's token endpoint (https, or an address listed in
    /// `[egress] allow`).
    pub token_url: String,
    /// Warden's client id at that authorization server.
    pub client_id: String,
    /// An environment variable holding Warden's client secret.
    pub client_secret_env: Option<String>,
    /// A file holding Warden's client secret (relative to the config file).
    pub client_secret_file: Option<PathBuf>,
    /// The `resource` asked for (RFC 8707); the server's `url` by default.
    pub resource: Option<String>,
    /// The `audience` asked for, when the authorization server names servers by a logical name.
    pub audience: Option<String>,
    /// The scopes asked for on requests that are not a tool call, and on calls of tools that
    /// name no `scopes` of their own (a tool's `scopes` are asked for on its calls).
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// `credential = { oauth = { ... } }`: Warden as an OAuth client of a server that requires its
/// own authorization (MCP authorization), one grant per caller.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthClientSection {
    /// Warden's client id, registered at the server's authorization server with the redirect
    /// URI `[credentials] redirect_uri`.
    pub client_id: String,
    /// An environment variable holding Warden's client secret (none: a public client, PKCE only).
    pub client_secret_env: Option<String>,
    /// A file holding Warden's client secret (relative to the config file).
    pub client_secret_file: Option<PathBuf>,
    /// The authorization server's issuer URL, pinned; without it the one the server's protected
    /// resource metadata names is used (and must be the only one).
    pub authorization_server: Option<String>,
    /// The scopes asked for.
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn authorization() -> String {
    "Authorization".into()
}

fn bearer() -> String {
    "Bearer".into()
}

/// Most tokens a server may ask a client's model for in one sampling request, by default.
pub const SAMPLING_MAX_TOKENS: u64 = 4096;

/// What one server's sampling requests may ask of a client's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingLimits {
    /// The widest `includeContext` passed on.
    pub context: SamplingContext,
    /// The most tokens passed on.
    pub max_tokens: u64,
}

impl Default for SamplingLimits {
    fn default() -> Self {
        SamplingLimits { context: SamplingContext::None, max_tokens: SAMPLING_MAX_TOKENS }
    }
}

impl SamplingLimits {
    /// The limits a server's configuration sets.
    pub fn of(server: &ServerSection) -> SamplingLimits {
        SamplingLimits {
            context: server.sampling_context,
            max_tokens: server.sampling_max_tokens.unwrap_or(SAMPLING_MAX_TOKENS),
        }
    }
}
