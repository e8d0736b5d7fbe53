//! Who may call what: the Cedar policies in force, evaluated for every principal the report knows
//! of against every tool, exactly as the gateway decides a listing (`Authorizer::visibility`: admin
//! tools hidden from all but the admin class, then the policies), with the scope check the
//! authorizing guard makes before any policy.
//!
//! The principals are those the configuration declares (the local principal, each API key, the
//! OAuth classes with every scope the issuer may grant, the admin class, and a user holding each
//! role the policies name) and those the audit log saw call. Argument-level rules (tenant binding,
//! path confinement, SSRF) decide each call with its arguments; a listing decision shows what a
//! principal can reach at all.

use std::collections::BTreeSet;
use warden_gateway::config::Config;
use warden_gateway::guard::authorize::Authorizer;
use warden_policy::{Authority, Item, Principal, PrincipalClass, Verdict};
use warden_protocol::Era;

use super::facts::{AuditUse, ToolView};

/// One principal the policies are evaluated for.
#[derive(Debug, Clone)]
pub struct PrincipalView {
    /// A short name for tables (`local`, `api key ci-bot`, `alice (user)`).
    pub label: String,
    /// Where it comes from, in a phrase.
    pub source: String,
    /// How it authenticates (`none: local`, `API key`, `OAuth bearer token`).
    pub credential: String,
    pub principal: Principal,
    /// Its key among the audit log's callers, when it called in the window.
    pub seen_as: Option<String>,
}

/// What one principal may do with one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Listed and callable; the permitting policies.
    Allow(Vec<String>),
    /// Listed, each call needs a human's approval; the policies that require it.
    Approval(Vec<String>),
    /// Refused by policy: the forbidding policies, or none for the default deny.
    Deny(Vec<String>),
    /// An admin tool, hidden from every class but admin before any policy is asked.
    Hidden,
    /// The authorizing guard refuses the call: the credential lacks these scopes.
    MissingScopes(Vec<String>),
}

impl Access {
    /// Whether the principal can get the tool to run at all (possibly after approval).
    pub fn reaches(&self) -> bool {
        matches!(self, Access::Allow(_) | Access::Approval(_))
    }

    /// The policies behind it.
    pub fn policies(&self) -> &[String] {
        match self {
            Access::Allow(p) | Access::Approval(p) | Access::Deny(p) => p,
            Access::Hidden | Access::MissingScopes(_) => &[],
        }
    }

    /// In a few words, for a table cell.
    pub fn label(&self) -> String {
        match self {
            Access::Allow(p) => format!("allow ({})", p.join(", ")),
            Access::Approval(p) => format!("approval ({})", p.join(", ")),
            Access::Deny(p) if p.is_empty() => "deny (no policy permits)".to_owned(),
            Access::Deny(p) => format!("deny ({})", p.join(", ")),
            Access::Hidden => "hidden (admin tool)".to_owned(),
            Access::MissingScopes(s) => format!("refused (needs scope {})", s.join(" ")),
        }
    }
}

/// Every principal the report evaluates, configured ones first.
pub fn principals(config: &Config, audit: &AuditUse) -> Vec<PrincipalView> {
    let mut out = Vec::new();
    let local = config.gateway.local_principal.principal();
    let local_use = if config.auth.oauth.is_some() || !config.auth.api_keys.is_empty() {
        "local principal (stdio `warden run`)"
    } else {
        "local principal (stdio, and HTTP: no [auth] is configured)"
    };
    out.push(view(format!("local {}", local.subject), local_use, "none (local)", local));
    for (name, key) in &config.auth.api_keys {
        let mut p = Principal::new(name.clone(), key.class);
        p.tenant = key.tenant.clone();
        p.roles = key.roles.clone();
        p.scopes = key.scopes.clone();
        p.authority = Authority::ApiKey;
        out.push(view(format!("api key {name}"), "[auth.api_keys]", "API key", p));
    }
    if let Some(o) = &config.auth.oauth {
        let all: Vec<String> = o
            .required_scopes
            .iter()
            .chain(o.scopes_supported.iter())
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut token = |subject: &str, class: PrincipalClass, source: &str| {
            let mut p = Principal::new(subject, class);
            p.scopes = all.clone();
            p.authority = Authority::OAuth;
            out.push(view(subject.to_owned(), source, "OAuth bearer token", p));
        };
        token("any OAuth user", PrincipalClass::User, "[auth.oauth], every supported scope");
        if !o.service_subjects.is_empty() {
            token("OAuth service", PrincipalClass::Service, "[auth.oauth] service_subjects, every supported scope");
        }
        for admin in &o.admin_subjects {
            token(admin, PrincipalClass::Admin, "[auth.oauth] admin_subjects, every supported scope");
        }
    }
    if !out.iter().any(|p| p.principal.class == PrincipalClass::Admin) {
        let mut p = Principal::new("any admin", PrincipalClass::Admin);
        p.scopes = every_scope(config);
        out.push(view("any admin".to_owned(), "the admin class (worst case)", "any", p));
    }
    for role in policy_roles(config) {
        let mut p = Principal::new(format!("role {role}"), PrincipalClass::User);
        p.roles = vec![role.clone()];
        p.scopes = every_scope(config);
        out.push(view(format!("role {role}"), "a role the policies name", "any", p));
    }
    for (key, caller) in &audit.callers {
        let subject = key.rsplit_once(" (").map_or(key.as_str(), |(s, _)| s);
        let class = match caller.class.as_str() {
            "admin" => PrincipalClass::Admin,
            "service" => PrincipalClass::Service,
            _ => PrincipalClass::User,
        };
        if let Some(known) = out.iter_mut().find(|v| v.principal.subject == subject && v.principal.class == class) {
            known.seen_as = Some(key.clone());
            continue;
        }
        let mut p = Principal::new(subject, class);
        p.tenant = caller.tenant.clone();
        p.client_id = caller.client_id.clone();
        p.scopes = caller.scopes.iter().cloned().collect();
        p.authority = if caller.scopes_recorded { Authority::OAuth } else { Authority::Local };
        let credential = if caller.scopes_recorded { "OAuth bearer token" } else { "unknown" };
        let mut v = view(key.clone(), "seen in the audit log", credential, p);
        v.seen_as = Some(key.clone());
        out.push(v);
    }
    out
}

fn view(label: String, source: &str, credential: &str, principal: Principal) -> PrincipalView {
    PrincipalView { label, source: source.to_owned(), credential: credential.to_owned(), principal, seen_as: None }
}

/// Every scope the configuration names: what the worst-case token could carry.
fn every_scope(config: &Config) -> Vec<String> {
    let mut all = BTreeSet::new();
    if let Some(o) = &config.auth.oauth {
        all.extend(o.required_scopes.iter().cloned());
        all.extend(o.scopes_supported.iter().cloned());
    }
    for t in config.tools.values() {
        all.extend(t.scopes.iter().flatten().cloned());
    }
    all.into_iter().collect()
}

/// Roles the configuration gives and the policies test (`principal.roles.contains("x")`).
fn policy_roles(config: &Config) -> BTreeSet<String> {
    let mut roles: BTreeSet<String> = config.auth.api_keys.values().flat_map(|k| k.roles.iter().cloned()).collect();
    roles.extend(config.gateway.local_principal.roles.iter().cloned());
    for file in config.policy_files() {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        roles.extend(roles_in(&text));
    }
    roles
}

/// The string literals a policy text tests roles against.
pub(crate) fn roles_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("roles.contains(") {
        rest = &rest[at + "roles.contains(".len()..];
        let trimmed = rest.trim_start();
        if let Some(body) = trimmed.strip_prefix('"')
            && let Some(end) = body.find('"')
        {
            out.push(body[..end].to_owned());
        }
    }
    out
}

/// Fills each tool's access for every principal, in order.
pub fn evaluate(authorizer: &Authorizer, principals: &[PrincipalView], tools: &mut [ToolView]) {
    for tool in tools.iter_mut() {
        tool.access = principals.iter().map(|p| access(authorizer, &p.principal, tool)).collect();
    }
}

/// What `principal` may do with `tool`, decided as the gateway lists it.
pub fn access(authorizer: &Authorizer, principal: &Principal, tool: &ToolView) -> Access {
    let Some(decision) = authorizer.visibility(principal, Era::Legacy, &tool.server, Item::Tool(&tool.facts)) else {
        return Access::Hidden;
    };
    match decision.verdict {
        Verdict::Deny => return Access::Deny(decision.policies),
        _ => {
            let missing: Vec<String> =
                tool.facts.scopes.iter().filter(|s| !principal.scopes.contains(s)).cloned().collect();
            if !missing.is_empty() {
                return Access::MissingScopes(missing);
            }
        }
    }
    match decision.verdict {
        Verdict::Allow => Access::Allow(decision.policies),
        _ => Access::Approval(decision.policies),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, policy: &str, extra: &str) -> Config {
        std::fs::write(dir.join("p.cedar"), policy).unwrap();
        let text = format!(
            "[servers.s]\nurl = \"https://mcp.example.com/mcp\"\ntrusted = true\n\n[auth.api_keys.bot]\nhash = \"sha256:{}\"\nclass = \"service\"\nscopes = [\"mcp\"]\n\n{extra}\n[policy]\nfiles = [\"p.cedar\"]\n",
            "0".repeat(64)
        );
        let mut c = Config::parse(&text, "test.toml").unwrap();
        c.base_dir = dir.to_owned();
        c
    }

    fn tool(authorizer: &Authorizer, name: &str, annotations: serde_json::Value) -> ToolView {
        let (facts, _) = authorizer.tool("s", &serde_json::json!({ "name": name, "annotations": annotations }));
        ToolView {
            server: "s".into(),
            name: name.into(),
            pinned: true,
            held: None,
            facts,
            path_arguments: vec![],
            url_arguments: vec![],
            trusted_content: false,
            out_of_band: false,
            access: vec![],
            calls: 0,
            last_call: None,
        }
    }

    #[test]
    fn each_principal_gets_the_verdict_the_policies_give_it() {
        let dir = tempdir();
        let policy = r#"
@id("reads") permit (principal, action == Action::"call_tool", resource in Server::"s") when { resource.class == "read" };
@id("services-write") permit (principal is Service, action == Action::"call_tool", resource in Server::"s") when { resource.class == "write" };
@id("ops") @require_approval permit (principal, action == Action::"call_tool", resource in Server::"s") when { principal.roles.contains("ops") && resource.class == "irreversible" };
"#;
        let c = config(&dir, policy, "[tools.\"s/admin_only\"]\nadmin = true\n[tools.\"s/write\"]\nscopes = [\"w\"]\n");
        let a = Authorizer::from_config(&c).unwrap();
        let ps = principals(&c, &AuditUse::default());
        let labels: Vec<&str> = ps.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["local local", "api key bot", "any admin", "role ops"]);
        let read = tool(&a, "read", serde_json::json!({ "readOnlyHint": true }));
        let write = tool(&a, "write", serde_json::json!({}));
        let wipe = tool(&a, "wipe", serde_json::json!({ "destructiveHint": true }));
        let admin = tool(&a, "admin_only", serde_json::json!({ "readOnlyHint": true }));
        let at = |t: &ToolView| ps.iter().map(|p| access(&a, &p.principal, t)).collect::<Vec<_>>();
        let allow = |p: &str| Access::Allow(vec![p.to_owned()]);
        assert_eq!(at(&read), [allow("reads"), allow("reads"), allow("reads"), allow("reads")]);
        assert_eq!(
            at(&write),
            [Access::Deny(vec![]), Access::MissingScopes(vec!["w".into()]), Access::Deny(vec![]), Access::Deny(vec![])],
            "the bot's key lacks the scope the tool needs; nobody else is permitted"
        );
        assert_eq!(at(&wipe)[3], Access::Approval(vec!["ops".into()]), "the role's approval policy");
        assert_eq!(at(&wipe)[0], Access::Deny(vec![]));
        assert_eq!(at(&admin)[0], Access::Hidden, "an admin tool is hidden from a user whatever the policies say");
        assert_eq!(at(&admin)[2], allow("reads"));
    }

    #[test]
    fn roles_are_read_from_policy_text() {
        assert_eq!(
            roles_in(r#"when { principal.roles.contains( "ops") || principal.roles.contains("sre\") }"#),
            ["ops", "sre\\"]
        );
        assert!(roles_in("principal.roles.contains(context.x)").is_empty());
    }

    fn tempdir() -> std::path::PathBuf {
        let d =
            std::env::temp_dir().join(format!("warden-report-policy-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
