//! What the configuration says of each server, as the connections need it: the command or URL,
//! the environment (only what is named), the credential the gateway injects, and the client
//! capabilities Warden declares on the server's behalf.

use super::{ListReview, ServerInfo, ServerMessages};
use crate::config::{Isolation, SamplingLimits, ServerSection};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use warden_protocol::Limits;
use warden_upstream::{Credential, CredentialSource, EraPreference, TransportSpec, UpstreamSpec};

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

/// The facts about server `name` its configuration `s` gives; `review` and `messages` are the
/// guards its connections hand lists and unsolicited messages to.
pub fn server_info(
    name: &str,
    s: &ServerSection,
    limits: Limits,
    answer_timeout: Duration,
    base_dir: &std::path::Path,
    review: Option<Arc<dyn ListReview>>,
    messages: Option<Arc<dyn ServerMessages>>,
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
        review,
        messages,
        sampling: SamplingLimits::of(s),
        trusted_content: s.trusted_content,
        trusted_resources: s.trusted_resources,
    }
}
