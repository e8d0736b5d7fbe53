//! What the configuration says of each server, as the connections need it: the command or URL,
//! the environment (only what is named), the credential the gateway injects, and the client
//! capabilities Warden declares on the server's behalf.

use super::{ListReview, ServerInfo, ServerMessages};
use crate::config::{Isolation, SamplingLimits, SandboxMode, ServerSection};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use warden_protocol::Limits;
use warden_upstream::{
    Credential, CredentialSource, EraPreference, ResourceLimits, SandboxSpec, TransportSpec, UpstreamSpec,
};

/// `@self` names the running Warden executable (the demo configuration starts `warden demo-server`
/// this way, whatever the build directory); any other command is used as written.
fn resolve_command(command: &str) -> String {
    match std::env::current_exe() {
        Ok(exe) if command == SELF_COMMAND => exe.display().to_string(),
        _ => command.to_owned(),
    }
}

/// Where a server's relative paths are read from, what no sandbox may be granted, and what the
/// gateway's connections to HTTP servers may reach.
#[derive(Debug, Clone, Default)]
pub struct ServerPaths {
    /// The configuration file's directory.
    pub base_dir: std::path::PathBuf,
    /// Paths no sandbox may see (`warden_upstream::sandbox::protected_paths`).
    pub protected: Vec<std::path::PathBuf>,
    /// The egress policy of Warden's own connections (`[egress]`).
    pub egress: warden_upstream::egress::Policy,
}

impl ServerPaths {
    /// The paths of configuration `config`: credentials and browser data under the home
    /// directory, and the gateway's own files (its configuration directory, database, keys,
    /// policies, credential files) are protected.
    pub fn of(config: &crate::config::Config) -> ServerPaths {
        let base = &config.base_dir;
        let mut own: Vec<std::path::PathBuf> = vec![];
        if !base.as_os_str().is_empty() {
            own.push(std::fs::canonicalize(base).unwrap_or_else(|_| base.clone()));
        }
        let audit = config.resolve(&config.audit.path);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = audit.clone().into_os_string();
            p.push(suffix);
            own.push(p.into());
        }
        own.extend(config.audit.signing_key.iter().map(|k| config.resolve(k)));
        own.extend(config.policy_files());
        if let Some(o) = &config.auth.oauth {
            own.extend(o.jwks_file.iter().map(|f| config.resolve(f)));
        }
        for s in config.servers.values() {
            own.extend(s.env.values().chain(s.headers.values()).filter_map(|v| v.file()).map(|f| config.resolve(f)));
            if let Some(c) = &s.credential {
                own.extend(c.file.iter().map(|f| config.resolve(f)));
                let exchange = c.token_exchange.as_ref();
                own.extend(exchange.and_then(|x| x.client_secret_file.as_ref()).map(|f| config.resolve(f)));
                own.extend(c.oauth.as_ref().and_then(|o| o.client_secret_file.as_ref()).map(|f| config.resolve(f)));
            }
        }
        own.extend(config.credentials.key_file.iter().map(|f| config.resolve(f)));
        let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
        ServerPaths {
            base_dir: base.clone(),
            protected: warden_upstream::sandbox::protected_paths(home.as_deref(), &own),
            // Validated with the configuration.
            egress: config.egress.policy().unwrap_or_default(),
        }
    }
}

/// Why server `s`'s sandbox grants cannot be given, if they cannot (see
/// `warden_upstream::sandbox::check_grants`).
pub fn sandbox_problem(s: &ServerSection, paths: &ServerPaths) -> Option<String> {
    if s.command.is_none() || s.sandbox == SandboxMode::Off {
        return None;
    }
    sandbox("", s, paths).and_then(|spec| warden_upstream::sandbox::check_grants(&spec).err())
}

/// The sandbox of server `s`, or `None` when it runs unconfined.
fn sandbox(name: &str, s: &ServerSection, paths: &ServerPaths) -> Option<SandboxSpec> {
    if s.sandbox == SandboxMode::Off {
        tracing::warn!(server = %name, "runs unconfined (sandbox = \"off\"): it has the gateway's user's files and network");
        return None;
    }
    let resolve = |p: &std::path::PathBuf| if p.is_absolute() { p.clone() } else { paths.base_dir.join(p) };
    let l = s.sandbox_limits;
    Some(SandboxSpec {
        read: s.sandbox_read.iter().map(resolve).collect(),
        write: s.sandbox_write.iter().map(resolve).collect(),
        protected: paths.protected.clone(),
        limits: ResourceLimits {
            open_files: l.open_files,
            processes: l.processes,
            cpu_seconds: l.cpu_seconds,
            memory_bytes: l.memory_mib.map(|m| m.saturating_mul(1 << 20)),
        },
        // Validated with the configuration.
        egress: warden_upstream::egress::Rules::parse(&s.egress).unwrap_or_default(),
    })
}

/// The `command` value that means "this Warden executable".
pub const SELF_COMMAND: &str = "@self";

/// The fixed credential Warden injects for an HTTP server, from its configuration; `None` for one
/// obtained per caller (`token_exchange`).
pub fn credential_of(c: &crate::config::CredentialSection, base_dir: &std::path::Path) -> Option<Credential> {
    let source = match (&c.env, &c.file) {
        (Some(var), _) => CredentialSource::Env(var.clone()),
        (None, Some(f)) => CredentialSource::File(if f.is_absolute() { f.clone() } else { base_dir.join(f) }),
        (None, None) => return None,
    };
    Some(Credential { source, header: c.header.clone(), scheme: Some(c.scheme.clone()).filter(|s| !s.is_empty()) })
}

/// The facts about server `name` its configuration `s` gives; `review` and `messages` are the
/// guards its connections hand lists and unsolicited messages to. Fails when a value the
/// configuration takes from the environment or a file cannot be read (naming it, never a value).
pub fn server_info(
    name: &str,
    s: &ServerSection,
    limits: Limits,
    answer_timeout: Duration,
    paths: &ServerPaths,
    review: Option<Arc<dyn ListReview>>,
    messages: Option<Arc<dyn ServerMessages>>,
) -> Result<ServerInfo, String> {
    let transport = match (&s.command, &s.url) {
        (Some(command), _) => {
            if let Some(review) = super::LaunchReview::of(s) {
                tracing::info!(
                    server = %name,
                    sandbox = %review.sandbox,
                    env = %review.env_names.join(","),
                    "command: {}",
                    review.command_line
                );
                for flag in &review.flags {
                    tracing::warn!(server = %name, "command: {flag}");
                }
            }
            let mut env: BTreeMap<String, String> = BTreeMap::new();
            for var in &s.env_inherit {
                if let Ok(v) = std::env::var(var) {
                    env.insert(var.clone(), v);
                }
            }
            for (k, v) in &s.env {
                env.insert(k.clone(), v.resolve(&paths.base_dir).map_err(|e| format!("server {name}: env {k}: {e}"))?);
            }
            TransportSpec::Stdio {
                command: resolve_command(command),
                args: s.args.clone(),
                env,
                cwd: s.cwd.clone(),
                sandbox: sandbox(name, s, paths),
            }
        }
        (None, Some(url)) => TransportSpec::Http {
            url: url.clone(),
            headers: s
                .headers
                .iter()
                .map(|(k, v)| {
                    Ok((k.clone(), v.resolve(&paths.base_dir).map_err(|e| format!("server {name}: header {k}: {e}"))?))
                })
                .collect::<Result<_, String>>()?,
            credential: s.credential.as_ref().and_then(|c| credential_of(c, &paths.base_dir)),
            // Given per connection, for the caller it serves (see `Slot::new`).
            provider: None,
            egress: paths.egress.clone(),
        },
        (None, None) => unreachable!("validated: every server has a command or a url"),
    };
    let mut spec = UpstreamSpec::new(name, transport);
    spec.egress_observer = messages.clone().map(|m| m as Arc<dyn warden_upstream::egress::EgressObserver>);
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
    Ok(ServerInfo {
        name: name.to_owned(),
        namespace: s.namespace.clone().unwrap_or_else(|| name.to_owned()),
        isolation: s.isolation,
        protocol: s.protocol,
        roots: s.roots.clone(),
        spec,
        client_answer_timeout: answer_timeout,
        review,
        messages,
        sampling: SamplingLimits::of(s),
        trusted_content: s.trusted_content,
        trusted_resources: s.trusted_resources,
        credentials: None,
    })
}
