//! The findings drawn from the facts and the policy evaluation: the token scope review, the blast
//! radius of each principal class, the answer to "who can call what with which token against
//! which data, by which policy, with what audit trail", and a plan of concrete changes, most
//! important first, each with the risk it removes.

use std::collections::{BTreeMap, BTreeSet};
use warden_gateway::config::Config;
use warden_policy::{PrincipalClass, ToolClass};

use super::facts::{AuditUse, ServerView, Stored, ToolView, changes_state};
use super::policy::{Access, PrincipalView};

/// Words in a tool's name that suggest an operator's tool.
const ADMIN_WORDS: &[&str] = &["admin", "deploy", "config", "secret", "credential", "sudo", "shell", "exec"];

/// A caller that presented write scopes and only ever read.
pub struct OverScoped {
    pub caller: String,
    pub client_id: Option<String>,
    /// The write scopes it never needed.
    pub unused: Vec<String>,
    /// What it did call, in a phrase.
    pub used: String,
}

/// Scopes needed against scopes presented.
#[derive(Default)]
pub struct ScopeReview {
    /// Per tool that needs scopes: the tool and its scopes.
    pub required: Vec<(String, Vec<String>)>,
    /// Per caller seen with a credential: what it presented, and the scopes its calls needed.
    pub presented: Vec<(String, Vec<String>, Vec<String>)>,
    pub over_scoped: Vec<OverScoped>,
    /// Per server: how Warden authenticates to it.
    pub upstream: Vec<(String, String)>,
}

/// What the worst-case credential of a principal class reaches.
pub struct BlastRadius {
    pub class: &'static str,
    /// The principals of the class considered.
    pub principals: Vec<String>,
    pub servers: Vec<String>,
    /// Reachable tools, by tool class.
    pub by_class: BTreeMap<&'static str, Vec<String>>,
    /// State-changing tools it can run with no human's approval.
    pub unattended_writes: Vec<String>,
}

/// One reachable (principal, server, tool), with the answer to the closing question.
pub struct PathRow {
    pub principal: String,
    pub server: String,
    /// The caller's credential and its scopes, and Warden's credential to the server.
    pub token: String,
    pub tool: String,
    pub class: &'static str,
    /// Path roots, URL arguments, values seen, resources read.
    pub data: String,
    pub authorization: String,
    pub audit: String,
}

/// One change to make.
pub struct PlanItem {
    /// 1 (do first) to 3.
    pub priority: u8,
    pub change: String,
    pub risk: String,
}

/// The token scope review.
pub fn scopes(config: &Config, tools: &[ToolView], audit: &AuditUse) -> ScopeReview {
    let mut review = ScopeReview {
        required: tools
            .iter()
            .filter(|t| !t.facts.scopes.is_empty())
            .map(|t| (t.id(), t.facts.scopes.clone()))
            .collect(),
        upstream: config.servers.iter().map(|(n, s)| (n.clone(), super::facts::credential_kind(s))).collect(),
        ..Default::default()
    };
    let class_of: BTreeMap<String, ToolClass> = tools.iter().map(|t| (t.id(), t.facts.class)).collect();
    // A write scope: one a state-changing tool needs, or one named for writing.
    let mut write_scopes: BTreeSet<String> =
        tools.iter().filter(|t| changes_state(t.facts.class)).flat_map(|t| t.facts.scopes.iter().cloned()).collect();
    let named_for_writing = |s: &str| {
        let s = s.to_ascii_lowercase();
        ["write", "delete", "admin", "manage"].iter().any(|w| s.contains(w))
    };
    for (key, caller) in audit.callers.iter().filter(|(_, c)| c.scopes_recorded) {
        write_scopes.extend(caller.scopes.iter().filter(|s| named_for_writing(s)).cloned());
        let needed: BTreeSet<String> = caller
            .tools
            .keys()
            .filter_map(|id| tools.iter().find(|t| &t.id() == id))
            .flat_map(|t| t.facts.scopes.iter().cloned())
            .collect();
        review.presented.push((key.clone(), caller.scopes.iter().cloned().collect(), needed.into_iter().collect()));
        let wrote = caller.tools.keys().any(|id| class_of.get(id).is_none_or(|c| changes_state(*c)));
        let unused: Vec<String> = caller.scopes.iter().filter(|s| write_scopes.contains(*s)).cloned().collect();
        if !wrote && !unused.is_empty() && !caller.tools.is_empty() {
            let reads: u64 = caller.tools.values().map(|(n, _)| n).sum();
            review.over_scoped.push(OverScoped {
                caller: key.clone(),
                client_id: caller.client_id.clone(),
                unused,
                used: format!(
                    "{reads} read call(s) of {}",
                    caller.tools.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
    }
    review
}

/// The blast radius of each principal class: the union of what its principals reach.
pub fn blast_radius(principals: &[PrincipalView], tools: &[ToolView]) -> Vec<BlastRadius> {
    [(PrincipalClass::User, "user"), (PrincipalClass::Service, "service"), (PrincipalClass::Admin, "admin")]
        .into_iter()
        .filter_map(|(class, name)| {
            let members: Vec<usize> =
                principals.iter().enumerate().filter(|(_, p)| p.principal.class == class).map(|(i, _)| i).collect();
            if members.is_empty() {
                return None;
            }
            let mut radius = BlastRadius {
                class: name,
                principals: members.iter().map(|&i| principals[i].label.clone()).collect(),
                servers: Vec::new(),
                by_class: BTreeMap::new(),
                unattended_writes: Vec::new(),
            };
            let mut servers = BTreeSet::new();
            for t in tools.iter().filter(|t| t.callable()) {
                let reach: Vec<&Access> =
                    members.iter().filter_map(|&i| t.access.get(i)).filter(|a| a.reaches()).collect();
                if reach.is_empty() {
                    continue;
                }
                servers.insert(t.server.clone());
                radius.by_class.entry(t.facts.class.as_str()).or_default().push(t.id());
                if changes_state(t.facts.class) && reach.iter().any(|a| matches!(a, Access::Allow(_))) {
                    radius.unattended_writes.push(t.id());
                }
            }
            radius.servers = servers.into_iter().collect();
            Some(radius)
        })
        .collect()
}

/// Every (principal, server, tool) the policies let through, with its token, data, authorization
/// and audit trail.
pub fn paths(config: &Config, principals: &[PrincipalView], tools: &[ToolView], audit: &AuditUse) -> Vec<PathRow> {
    let mut rows = Vec::new();
    for (i, p) in principals.iter().enumerate() {
        let caller = p.seen_as.as_ref().and_then(|k| audit.callers.get(k));
        for t in tools.iter().filter(|t| t.callable()) {
            let Some(access) = t.access.get(i).filter(|a| a.reaches()) else { continue };
            let scopes =
                if p.principal.scopes.is_empty() { "no scopes".to_owned() } else { p.principal.scopes.join(" ") };
            let upstream =
                config.servers.get(&t.server).map(super::facts::credential_kind).unwrap_or_else(|| "?".into());
            let mut data = Vec::new();
            if !t.path_arguments.is_empty() {
                let roots = config.servers.get(&t.server).map(|s| s.path_roots.join(", ")).unwrap_or_default();
                let roots = if roots.is_empty() { "no path_roots: unconfined".to_owned() } else { roots };
                data.push(format!("paths {} under {roots}", t.path_arguments.join(", ")));
            }
            if !t.url_arguments.is_empty() {
                data.push(format!("URLs {} (public https only)", t.url_arguments.join(", ")));
            }
            if let Some(seen) = audit.data_seen.get(&t.id()).filter(|s| !s.is_empty()) {
                data.push(format!("seen: {}", seen.iter().cloned().collect::<Vec<_>>().join(", ")));
            }
            if data.is_empty() {
                data.push("arguments as given (no path or URL arguments configured)".to_owned());
            }
            let calls = caller.and_then(|c| c.tools.get(&t.id())).map_or(0, |(n, _)| *n);
            let client =
                caller.and_then(|c| c.client_id.as_deref()).map(|c| format!(" via client {c}")).unwrap_or_default();
            rows.push(PathRow {
                principal: format!("{}{client}", p.label),
                server: t.server.clone(),
                token: format!("{} ({scopes}); to the server: {upstream}", p.credential),
                tool: t.name.clone(),
                class: t.facts.class.as_str(),
                data: data.join("; "),
                authorization: access.label(),
                audit: format!("{calls} call(s) in window; chain {}", audit.chain),
            });
        }
    }
    rows
}

/// The reduction plan.
pub fn plan(
    config: &Config,
    servers: &[ServerView],
    tools: &[ToolView],
    scopes: &ScopeReview,
    stored: &Stored,
) -> Vec<PlanItem> {
    let mut plan = Vec::new();
    let mut add =
        |priority: u8, change: String, risk: &str| plan.push(PlanItem { priority, change, risk: risk.to_owned() });
    let audit = &stored.audit;
    if audit.chain_ok == Some(false) {
        add(1, format!("investigate the audit log: {}", audit.chain), "a record edited or deleted to hide a call");
    }
    for s in servers {
        if s.sandbox == "off" {
            add(
                1,
                format!(
                    "set sandbox = \"strict\" for server {} (with sandbox_write limited to what it must change)",
                    s.name
                ),
                "a compromised local server reading and writing the user's files and reaching the network",
            );
        }
        if s.sandbox == "strict"
            && s.sandbox_write
                .iter()
                .any(|p| p == "/" || p == "~" || p.starts_with("/home") && p.matches('/').count() <= 2)
        {
            add(
                2,
                format!("narrow sandbox_write for server {} to the directories it serves", s.name),
                "a local server able to rewrite the user's home",
            );
        }
        for f in s.launch.iter().flat_map(|l| &l.flags) {
            let change = if f.rule == "unpinned-package" {
                format!("pin the package of server {} to an exact version ({})", s.name, f.message)
            } else {
                format!("review the command of server {}: {}", s.name, f.message)
            };
            add(
                if f.rule == "unpinned-package" { 2 } else { 1 },
                change,
                "code that changes or runs unreviewed at the next start",
            );
        }
        if audit.available && s.pinned == 0 {
            add(
                2,
                format!("server {} has no pins: run it once and review with `warden pins list {}`", s.name, s.name),
                "tool definitions served without a reviewed baseline (a later rug pull would not be noticed)",
            );
        }
        if s.held > 0 {
            add(
                1,
                format!(
                    "review the {} definition(s) held for server {}: `warden pins diff {}`",
                    s.held, s.name, s.name
                ),
                "drifted or poisoned tool definitions",
            );
        }
        if s.transport == "http" && s.credential.starts_with("static") {
            add(
                3,
                format!(
                    "give server {} a per-caller credential (token exchange or per-user OAuth) instead of a shared static token",
                    s.name
                ),
                "one shared secret acting for every caller (a confused deputy), with no per-user revocation",
            );
        }
    }
    let irreversible_unattended: Vec<String> = tools
        .iter()
        .filter(|t| t.facts.class == ToolClass::Irreversible && t.access.iter().any(|a| matches!(a, Access::Allow(_))))
        .map(ToolView::id)
        .collect();
    if !irreversible_unattended.is_empty() {
        add(
            1,
            format!(
                "enable approvals for irreversible tools ({}): @require_approval on the permitting policy",
                irreversible_unattended.join(", ")
            ),
            "an agent (or an injected instruction) running an action that cannot be undone with no human in the loop",
        );
    }
    for t in tools {
        let setting_class = config.tools.contains_key(&t.id());
        let trusted = config.servers.get(&t.server).is_some_and(|s| s.trusted);
        if trusted && !setting_class && t.facts.annotations.is_some() && t.facts.class == ToolClass::Read {
            add(
                3,
                format!("set class = \"read\" for tool {} in [tools] rather than trusting its readOnlyHint", t.id()),
                "a server that changes a tool's annotations moving it out of approvals and write policies",
            );
        }
        let name = t.name.to_ascii_lowercase();
        if !t.facts.admin && ADMIN_WORDS.iter().any(|w| name.contains(w)) && t.access.iter().any(Access::reaches) {
            add(
                2,
                format!("mark tool {} admin (admin = true) if only operators need it", t.id()),
                "an operator's tool listed to and callable by ordinary users",
            );
        }
        let open_world =
            t.facts.annotations.as_ref().and_then(|a| a.get("openWorldHint")).and_then(|v| v.as_bool()) == Some(true);
        if open_world && t.url_arguments.is_empty() {
            add(
                2,
                format!("set url_arguments for tool {} so the SSRF policy sees its URLs", t.id()),
                "requests to internal or metadata addresses",
            );
        }
        if config.auth.oauth.is_some()
            && changes_state(t.facts.class)
            && t.facts.scopes.is_empty()
            && t.access.iter().any(Access::reaches)
        {
            add(
                3,
                format!("require a scope for tool {} ([tools.\"{}\"] scopes)", t.id(), t.id()),
                "any token with the gateway's base scope changing state",
            );
        }
    }
    for o in &scopes.over_scoped {
        let client = o.client_id.as_deref().map(|c| format!(" (client {c})")).unwrap_or_default();
        add(
            2,
            format!("drop scope {} from {}{client}: it only read ({})", o.unused.join(" "), o.caller, o.used),
            "a stolen or misused token able to write where its owner only reads",
        );
    }
    if audit.quarantine_held > 0 {
        add(
            2,
            format!("review the {} quarantined result(s): `warden quarantine list`", audit.quarantine_held),
            "results carrying instructions aimed at the model, waiting on a decision",
        );
    }
    if config.audit.signing_key.is_none() {
        add(
            3,
            "set [audit] signing_key so that retention checkpoints and chain heads are signed".to_owned(),
            "rows cut from the end of the log, or pruned, without trace",
        );
    }
    plan.sort_by_key(|p| p.priority);
    plan
}
