//! What Warden needs to know to reach one upstream server.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use warden_protocol::Limits;

/// How to reach a server.
#[derive(Debug, Clone)]
pub enum TransportSpec {
    /// A child process speaking MCP on stdin/stdout.
    Stdio {
        /// Program to run.
        command: String,
        /// Its arguments.
        args: Vec<String>,
        /// The complete environment of the child: nothing else is inherited.
        env: BTreeMap<String, String>,
        /// Working directory, if not the gateway's.
        cwd: Option<PathBuf>,
        /// The sandbox it runs in; `None` runs it unconfined (`sandbox = "off"`).
        sandbox: Option<crate::sandbox::SandboxSpec>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        /// The MCP endpoint URL.
        url: String,
        /// Extra headers sent with every request.
        headers: Vec<(String, String)>,
        /// The gateway's own credential for this server, injected on every request. The client's
        /// credentials never are.
        credential: Option<Credential>,
        /// Supplies the credential per request instead (a token exchanged for the caller); takes
        /// the place of `credential`.
        provider: Option<Provided>,
        /// What the connection may reach (the egress guard resolves and checks the host).
        egress: crate::egress::Policy,
    },
}

/// Where the gateway's credential for a server comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// An environment variable of the gateway.
    Env(String),
    /// A file (its content, trimmed), read on every connection so a rotated secret is picked up.
    File(PathBuf),
}

/// A credential injected into requests to an HTTP server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Where the secret is.
    pub source: CredentialSource,
    /// The header that carries it (`Authorization` by default).
    pub header: String,
    /// The scheme put before the secret (`Bearer` by default); `None` sends the secret alone.
    pub scheme: Option<String>,
}

impl Credential {
    /// The header value, read now. Errors never contain the secret.
    pub fn value(&self) -> Result<String, String> {
        let secret = match &self.source {
            CredentialSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?
            }
            CredentialSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("the credential file cannot be read ({})", e.kind()))?,
        };
        let secret = secret.trim();
        if secret.is_empty() {
            return Err("the credential is empty".into());
        }
        Ok(match &self.scheme {
            Some(scheme) => format!("{scheme} {secret}"),
            None => secret.to_owned(),
        })
    }
}

/// Supplies the `Authorization` value of each request to an HTTP server whose credential is not
/// one fixed secret: a token obtained for the caller the connection serves.
#[async_trait::async_trait]
pub trait CredentialProvider: Send + Sync {
    /// The header value for a request that needs `scopes` (`None`: the server's usual ones).
    /// Errors never contain a secret; a request without its credential is not sent.
    async fn header(&self, scopes: Option<&[String]>) -> Result<String, String>;
    /// The server refused the value given for `scopes` (HTTP 401): it is not given again.
    fn refused(&self, scopes: Option<&[String]>);
}

/// A [`CredentialProvider`] in a spec.
#[derive(Clone)]
pub struct Provided(pub std::sync::Arc<dyn CredentialProvider>);

impl std::fmt::Debug for Provided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Provided(per request)")
    }
}

/// Which protocol era to speak to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EraPreference {
    /// Probe for the modern era and fall back to `initialize`.
    #[default]
    Auto,
    /// Always `initialize` (2025-11-25 and earlier).
    Legacy,
    /// Always stateless 2026-07-28.
    Modern,
}

/// Everything needed to connect to one server.
#[derive(Debug, Clone)]
pub struct UpstreamSpec {
    /// The server's name in the gateway's configuration.
    pub name: String,
    /// How to reach it.
    pub transport: TransportSpec,
    /// Which era to speak.
    pub era: EraPreference,
    /// Time allowed to start and complete the handshake.
    pub connect_timeout: Duration,
    /// Time allowed for each request, unless the caller sets its own.
    pub request_timeout: Duration,
    /// Frame limits for what the server sends.
    pub limits: Limits,
    /// The capabilities Warden declares to the server as its client.
    pub client_capabilities: Value,
    /// The `clientInfo` Warden presents.
    pub client_info: Value,
    /// Grace period on shutdown before the child is killed.
    pub shutdown_grace: Duration,
    /// Whether, on a channel that cannot say which request a log message belongs to (stdio), a
    /// log message is given to the only request in flight. Only safe when one client owns the
    /// connection; on a shared connection such messages are treated as unsolicited.
    pub infer_log_association: bool,
    /// Told of every connection a sandboxed server asks its egress proxy for.
    pub egress_observer: Option<std::sync::Arc<dyn crate::egress::EgressObserver>>,
}

impl UpstreamSpec {
    /// A spec with Warden's defaults for everything but name and transport.
    pub fn new(name: impl Into<String>, transport: TransportSpec) -> Self {
        UpstreamSpec {
            name: name.into(),
            transport,
            era: EraPreference::Auto,
            connect_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            limits: Limits::default(),
            client_capabilities: serde_json::json!({
                "roots": { "listChanged": true },
                "sampling": {},
                "elicitation": { "form": {}, "url": {} }
            }),
            client_info: serde_json::json!({ "name": "warden", "version": env!("CARGO_PKG_VERSION") }),
            shutdown_grace: Duration::from_secs(2),
            infer_log_association: false,
            egress_observer: None,
        }
    }
}
