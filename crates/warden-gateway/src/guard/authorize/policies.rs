//! The policies: whether this principal may see, call, read or be asked this, decided by the
//! Cedar policies in force.
//!
//! The same decision serves listing and calling (one resolver): an item a principal cannot list
//! is answered as unknown when called. Tools marked `admin` are hidden from every class but
//! admin before any policy is asked. Calls are then decided again with their arguments, which
//! Warden first turns into facts a policy can trust: path arguments normalized and checked against
//! the server's roots, URL arguments resolved and checked for public addresses.
//!
//! Policies are reloaded on SIGHUP and (with `policy.watch`) when a file changes; a set that
//! fails to parse or validate is reported and the set in force stays.

use crate::client::ClientContext;
use crate::config::{Config, ToolSection, tool_settings};
use arc_swap::ArcSwap;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use warden_policy::{
    Action, CallFacts, Decision, Item, PolicyEngine, PolicyError, PolicyProblem, PolicySource, Principal,
    PrincipalClass, Query, ServerFacts, ToolClass, ToolFacts, Verdict,
};
use warden_protocol::{Era, RpcError, error};

/// Most path or URL values examined in one call; a call with more is not confined.
const MAX_CHECKED_VALUES: usize = 32;
/// Time allowed to resolve a URL argument's host.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

struct ServerPolicy {
    facts: ServerFacts,
    path_roots: Vec<String>,
    cwd: Option<String>,
}

/// The policies in force and what they are told about servers and tools.
pub struct Authorizer {
    engine: ArcSwap<PolicyEngine>,
    files: Vec<PathBuf>,
    seen: Mutex<Vec<(PathBuf, Option<std::time::SystemTime>, u64)>>,
    tools: BTreeMap<String, ToolSection>,
    servers: HashMap<String, ServerPolicy>,
    adopted: super::adopted::AdoptedClasses,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").field("policies", &self.engine.load().len()).finish()
    }
}

/// Reads and validates policy files.
pub fn load_policies(files: &[PathBuf]) -> Result<PolicyEngine, PolicyError> {
    let mut sources = Vec::new();
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| f.display().to_string());
        match std::fs::read_to_string(f) {
            // A rule file (`version: v1`) is compiled to Cedar and then validated like any policy.
            Ok(text) if warden_policy::rules_file::is_rules_file(&name) => {
                match warden_policy::rules_file::compile(&text, &name) {
                    Ok(cedar) => sources.push(PolicySource { name, text: cedar }),
                    Err(e) => {
                        return Err(PolicyError {
                            problems: vec![PolicyProblem {
                                file: f.display().to_string(),
                                line: e.line,
                                column: e.column,
                                message: e.message,
                            }],
                        });
                    }
                }
            }
            Ok(text) => sources.push(PolicySource { name, text }),
            Err(e) => {
                return Err(PolicyError {
                    problems: vec![PolicyProblem {
                        file: f.display().to_string(),
                        line: 0,
                        column: 0,
                        message: format!("cannot be read: {e}"),
                    }],
                });
            }
        }
    }
    PolicyEngine::load(&sources)
}

impl Authorizer {
    /// The authorizer a configuration describes, with its policies loaded and validated.
    pub fn from_config(config: &Config) -> Result<Authorizer, PolicyError> {
        let files = config.policy_files();
        let engine = load_policies(&files)?;
        for w in &engine.warnings {
            tracing::warn!("policy warning: {w}");
        }
        let servers = config
            .servers
            .iter()
            .map(|(name, s)| {
                let roots = s.path_roots.iter().filter_map(|r| warden_policy::paths::normalize(r, None)).collect();
                let cwd = s.cwd.as_ref().map(|c| config.resolve(c).display().to_string());
                (
                    name.clone(),
                    ServerPolicy {
                        facts: ServerFacts { name: name.clone(), trusted: s.trusted },
                        path_roots: roots,
                        cwd,
                    },
                )
            })
            .collect();
        let a = Authorizer {
            engine: ArcSwap::from_pointee(engine),
            seen: Mutex::new(Vec::new()),
            files,
            tools: config.tools.clone(),
            servers,
            adopted: Default::default(),
        };
        a.remember_files();
        Ok(a)
    }

    /// The policies in force.
    pub fn engine(&self) -> Arc<PolicyEngine> {
        self.engine.load_full()
    }

    fn fingerprint(path: &PathBuf) -> (Option<std::time::SystemTime>, u64) {
        use std::hash::{Hash, Hasher};
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        std::fs::read(path).unwrap_or_default().hash(&mut h);
        (modified, h.finish())
    }

    fn remember_files(&self) {
        let now = self.files.iter().map(|f| {
            let (m, h) = Self::fingerprint(f);
            (f.clone(), m, h)
        });
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = now.collect();
    }

    /// Whether a policy file changed since the last load.
    pub fn files_changed(&self) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter().any(|(f, m, h)| {
            let modified = std::fs::metadata(f).and_then(|md| md.modified()).ok();
            modified != *m && Self::fingerprint(f).1 != *h
        })
    }

    /// Loads the policy files again. On any problem the policies in force stay, and the problems
    /// are returned.
    pub fn reload(&self) -> Result<usize, PolicyError> {
        let engine = load_policies(&self.files);
        self.remember_files();
        let engine = engine?;
        for w in &engine.warnings {
            tracing::warn!("policy warning: {w}");
        }
        let n = engine.len();
        self.engine.store(Arc::new(engine));
        Ok(n)
    }

    /// What policies know of a server.
    pub fn server(&self, name: &str) -> ServerFacts {
        self.servers.get(name).map(|s| s.facts.clone()).unwrap_or(ServerFacts { name: name.to_owned(), trusted: false })
    }

    /// A tool's settings and facts: class from configuration, else (trusted servers only) from
    /// its annotations, else `write`.
    pub fn tool(&self, server: &str, definition: &Value) -> (ToolFacts, ToolSection) {
        let name = definition.get("name").and_then(Value::as_str).unwrap_or_default();
        let settings = tool_settings(&self.tools, server, name);
        let annotations = definition.get("annotations").filter(|a| a.is_object());
        let trusted = self.servers.get(server).is_some_and(|s| s.facts.trusted);
        let server_default = self.tools.get(&format!("{server}/*")).and_then(|d| d.class);
        let class =
            ToolClass::decide(self.adopted.class(server, &settings, server_default, definition), trusted, annotations);
        let facts = ToolFacts {
            name: name.to_owned(),
            class,
            admin: settings.admin.unwrap_or(false),
            annotations: annotations.cloned(),
            scopes: settings.scopes.clone().unwrap_or_default(),
        };
        (facts, settings)
    }

    /// Whether `principal` may see an item in a list (and so call it at all).
    pub fn visible(&self, principal: &Principal, era: Era, server: &str, item: Item<'_>) -> bool {
        self.visibility(principal, era, server, item).is_some_and(|d| d.verdict.permits())
    }

    /// The decision that makes an item visible or not (`None`: an admin tool for someone else,
    /// or a server, which no listing decision covers), naming the policies that made it.
    pub fn visibility(&self, principal: &Principal, era: Era, server: &str, item: Item<'_>) -> Option<Decision> {
        if let Item::Tool(t) = item
            && t.admin
            && principal.class != PrincipalClass::Admin
        {
            return None;
        }
        let action = match item {
            Item::Tool(_) => Action::CallTool,
            Item::Prompt(_) => Action::GetPrompt,
            Item::Resource { .. } => Action::ReadResource,
            Item::Server => return None,
        };
        let facts = self.server(server);
        let call = CallFacts::listing(unix_now(), era_name(era));
        Some(self.engine.load().decide(&Query { principal, action, server: &facts, item, call: &call }))
    }

    /// Decides a call (of a tool, a prompt or a resource read, by `item`) with its arguments, in
    /// the state of its context.
    /// Path and URL arguments named in `settings` become facts first (URLs are resolved here).
    pub async fn decide_call(
        &self,
        ctx: &ClientContext,
        server: &str,
        item: Item<'_>,
        args: Option<&Map<String, Value>>,
        settings: &ToolSection,
        state: CallState,
    ) -> Decision {
        let action = match item {
            Item::Tool(_) => Action::CallTool,
            Item::Prompt(_) => Action::GetPrompt,
            Item::Resource { .. } => Action::ReadResource,
            Item::Server => return Decision::default_deny(),
        };
        let policy = self.servers.get(server);
        let (paths, paths_confined) = match (&settings.path_arguments, args) {
            (Some(names), Some(args)) => {
                let roots = policy.map(|p| p.path_roots.as_slice()).unwrap_or_default();
                let cwd = policy.and_then(|p| p.cwd.as_deref());
                path_facts(args, names, roots, cwd)
            }
            _ => (vec![], true),
        };
        let (urls, urls_public) = match (&settings.url_arguments, args) {
            (Some(names), Some(args)) => url_facts(args, names).await,
            _ => (vec![], true),
        };
        let facts = self.server(server);
        let call = CallFacts {
            args,
            listing: false,
            tainted: state.tainted,
            call_depth: state.depth,
            now_unix: unix_now(),
            era: era_name(ctx.era()),
            paths,
            paths_confined,
            urls,
            urls_public,
        };
        let decision =
            self.engine.load().decide(&Query { principal: &ctx.principal, action, server: &facts, item, call: &call });
        log_decision(&ctx.principal, action, server, item, &decision);
        decision
    }

    /// Decides a server's request to the client (sampling, elicitation, roots).
    pub fn decide_server_request(
        &self,
        principal: &Principal,
        era: Era,
        server: &str,
        method: &str,
        params: Option<&Value>,
    ) -> Decision {
        let Some(action) = Action::for_server_request(method) else {
            return Decision::default_deny();
        };
        let facts = self.server(server);
        let call = CallFacts {
            args: params.and_then(Value::as_object),
            call_depth: 1,
            now_unix: unix_now(),
            era: era_name(era),
            paths_confined: true,
            urls_public: true,
            ..Default::default()
        };
        let decision =
            self.engine.load().decide(&Query { principal, action, server: &facts, item: Item::Server, call: &call });
        log_decision(principal, action, server, Item::Server, &decision);
        decision
    }
}

impl Authorizer {
    /// Whether a server may send `method` to this principal's client; the error for the server
    /// when not.
    pub fn permit_server_request(
        &self,
        principal: &Principal,
        era: Era,
        server: &str,
        method: &str,
        params: Option<&Value>,
    ) -> Result<(), RpcError> {
        let d = self.decide_server_request(principal, era, server, method, params);
        match d.verdict {
            Verdict::Allow => Ok(()),
            _ => Err(refusal(&format!("{method} from server '{server}'"), &d)),
        }
    }
}

/// What a call's context has been through, for the policies.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallState {
    /// How deeply the call is nested (1 for a direct call).
    pub depth: u32,
    /// Whether the context has read content that tried to instruct the model.
    pub tainted: bool,
}

/// The error a client gets for a decision that does not allow: a denial, or a refusal of what
/// needs approval where no approval flow applies (prompts and resources: approvals are given for
/// tool calls).
pub fn refusal(what: &str, decision: &Decision) -> RpcError {
    match decision.verdict {
        Verdict::Allow => RpcError::internal("an allowed request was refused"),
        Verdict::RequireApproval => RpcError::new(
            error::APPROVAL_REQUIRED,
            format!("{what} needs a human's approval, and approvals are given for tool calls only: refused"),
        )
        .with_data(json!({ "verdict": "require_approval", "policies": decision.policies })),
        Verdict::Deny => {
            let why = if decision.reasons.is_empty() {
                if decision.is_default_deny() {
                    "no policy permits it".to_owned()
                } else {
                    "a policy forbids it".to_owned()
                }
            } else {
                decision.reasons.join("; ")
            };
            RpcError::new(error::POLICY_DENIED, format!("{what} refused by policy: {why}"))
                .with_data(json!({ "verdict": "deny", "policies": decision.policies }))
        }
    }
}

fn log_decision(principal: &Principal, action: Action, server: &str, item: Item<'_>, d: &Decision) {
    let target = match item {
        Item::Tool(t) => format!("{server}/{}", t.name),
        Item::Prompt(p) => format!("{server}/{p}"),
        Item::Resource { uri, .. } => format!("{server} {}", crate::names::shown(uri)),
        Item::Server => server.to_owned(),
    };
    if !d.errors.is_empty() {
        tracing::warn!(errors = ?d.errors, "policies failed to evaluate");
    }
    // Refusals are worth an operator's eye; allows are the normal course (the audit log keeps both).
    if d.verdict == Verdict::Allow {
        tracing::debug!(subject = ?principal.subject, action = action.as_str(), ?target, policies = ?d.policies, "decision: allow");
    } else {
        tracing::info!(
            subject = ?principal.subject,
            action = action.as_str(),
            ?target,
            verdict = d.verdict.as_str(),
            policies = ?d.policies,
            "decision"
        );
    }
}

fn era_name(era: Era) -> &'static str {
    match era {
        Era::Legacy => "legacy",
        Era::Modern => "modern",
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The string values of the named arguments (each a string or an array of strings); `None` when
/// an argument holds anything else, or there are too many values.
fn named_values<'a>(args: &'a Map<String, Value>, names: &[String]) -> Option<Vec<&'a str>> {
    let mut out = Vec::new();
    for name in names {
        match args.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => out.push(s.as_str()),
            Some(Value::Array(items)) => {
                for item in items {
                    out.push(item.as_str()?);
                }
            }
            Some(_) => return None,
        }
        if out.len() > MAX_CHECKED_VALUES {
            return None;
        }
    }
    Some(out)
}

fn path_facts(args: &Map<String, Value>, names: &[String], roots: &[String], cwd: Option<&str>) -> (Vec<String>, bool) {
    let Some(values) = named_values(args, names) else { return (vec![], false) };
    let mut paths = Vec::new();
    let mut confined = true;
    for raw in values {
        match warden_policy::paths::normalize(raw, cwd) {
            Some(p) => {
                confined &= warden_policy::paths::within(&p, roots);
                paths.push(p);
            }
            None => confined = false,
        }
    }
    (paths, confined)
}

async fn url_facts(args: &Map<String, Value>, names: &[String]) -> (Vec<String>, bool) {
    let Some(values) = named_values(args, names) else { return (vec![], false) };
    let checks =
        futures::future::join_all(values.iter().map(|u| warden_upstream::egress::check_url(u, false, RESOLVE_TIMEOUT)))
            .await;
    let public = checks.iter().all(|c| c.passed());
    for c in checks.iter().filter(|c| !c.passed()) {
        tracing::info!(url = %crate::names::shown(&c.normalized), why = ?c.refused, "a URL argument is not public");
    }
    (checks.into_iter().map(|c| c.normalized).collect(), public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_facts_cover_strings_and_arrays() {
        let roots = vec!["/srv/data".to_owned()];
        let names = vec!["path".to_owned(), "paths".to_owned()];
        let args = json!({ "path": "/srv/data/a", "paths": ["/srv/data/b", "/srv/data/../c"] });
        let (paths, confined) = path_facts(args.as_object().unwrap(), &names, &roots, None);
        assert_eq!(paths, vec!["/srv/data/a", "/srv/data/b", "/srv/c"]);
        assert!(!confined);
        let args = json!({ "path": 7 });
        assert_eq!(
            path_facts(args.as_object().unwrap(), &names, &roots, None),
            (vec![], false),
            "a number is not a path"
        );
        let args = json!({ "other": "/etc" });
        assert_eq!(path_facts(args.as_object().unwrap(), &names, &roots, None), (vec![], true));
        let args = json!({ "path": "notes.txt" });
        let (p, c) = path_facts(args.as_object().unwrap(), &names, &roots, Some("/srv/data"));
        assert_eq!((p, c), (vec!["/srv/data/notes.txt".to_owned()], true), "relative to the server's directory");
        let many: Vec<String> = (0..40).map(|i| format!("/srv/data/{i}")).collect();
        let args = json!({ "paths": many });
        assert!(!path_facts(args.as_object().unwrap(), &names, &roots, None).1, "too many to check is not confined");
    }
}
