//! `warden policy test FILE`: decides written cases against a configuration's policies, exactly
//! as the gateway would (same visibility rule, same tool classes, same path and URL facts).

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use warden_gateway::client::ClientContext;
use warden_gateway::config::Config;
use warden_gateway::guard::authorize::Authorizer;
use warden_policy::{Action, Item, Principal, PrincipalClass, Verdict};
use warden_protocol::ProtocolVersion;

/// A file of cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    /// The configuration whose policies and settings are tested, relative to the cases file.
    config: Option<PathBuf>,
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

/// One case: who, doing what, with which arguments, and the verdict expected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    principal: CasePrincipal,
    #[serde(default = "call_tool")]
    action: String,
    /// `server/tool` (call_tool).
    tool: Option<String>,
    /// `server/prompt` (get_prompt).
    prompt: Option<String>,
    /// A resource URI (read_resource); needs `server`.
    resource: Option<String>,
    /// The server (read_resource, sample, elicit, list_roots).
    server: Option<String>,
    /// The tool's annotations as its server would list them.
    annotations: Option<Value>,
    #[serde(default)]
    arguments: Map<String, Value>,
    #[serde(default = "one")]
    call_depth: u32,
    /// Whether the caller's context has read content that tried to instruct the model.
    #[serde(default)]
    tainted: bool,
    /// `2026-07-28` for a modern client; a 2025 version otherwise.
    #[serde(default = "legacy")]
    protocol: String,
    expect: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CasePrincipal {
    subject: String,
    #[serde(default)]
    class: PrincipalClass,
    tenant: Option<String>,
    client_id: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

fn call_tool() -> String {
    "call_tool".into()
}
fn one() -> u32 {
    1
}
fn legacy() -> String {
    "2025-11-25".into()
}

/// Runs the cases; returns how many failed.
pub async fn run(file: &Path, config_override: Option<&Path>) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let cases: Cases = toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let config_path = match (config_override, &cases.config) {
        (Some(c), _) => c.to_path_buf(),
        (None, Some(c)) => file.parent().unwrap_or(Path::new(".")).join(c),
        (None, None) => bail!("{}: name the configuration with `config = \"...\"` or --config", file.display()),
    };
    let config = Config::load(&config_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let authorizer = Authorizer::from_config(&config).map_err(|e| anyhow::anyhow!("policies:\n{e}"))?;
    let mut failed = 0;
    for case in &cases.cases {
        match decide(&authorizer, &config, case).await {
            Ok((verdict, policies)) => {
                let got = verdict.as_str();
                if got == case.expect {
                    println!("ok    {}: {got} {policies}", case.name);
                } else {
                    failed += 1;
                    println!("FAIL  {}: expected {}, got {got} {policies}", case.name, case.expect);
                }
            }
            Err(e) => {
                failed += 1;
                println!("FAIL  {}: {e}", case.name);
            }
        }
    }
    println!("{} cases, {} failed", cases.cases.len(), failed);
    Ok(failed)
}

async fn decide(a: &Authorizer, config: &Config, case: &Case) -> anyhow::Result<(Verdict, String)> {
    if !["allow", "deny", "require_approval"].contains(&case.expect.as_str()) {
        bail!("expect must be allow, deny or require_approval");
    }
    let action = Action::parse(&case.action).with_context(|| format!("unknown action {:?}", case.action))?;
    let p = &case.principal;
    let mut principal = Principal::new(p.subject.clone(), p.class);
    principal.tenant = p.tenant.clone();
    principal.client_id = p.client_id.clone();
    principal.roles = p.roles.clone();
    principal.scopes = p.scopes.clone();
    let version =
        ProtocolVersion::parse(&case.protocol).with_context(|| format!("unknown protocol {:?}", case.protocol))?;
    let ctx = ClientContext {
        principal: Arc::new(principal),
        version,
        capabilities: Arc::new(Value::Object(Map::new())),
        client_info: Arc::new(Value::Object(Map::new())),
        session: None,
        log_level: None,
        header_params: None,
    };
    let known = |server: &str| -> anyhow::Result<()> {
        if config.servers.contains_key(server) { Ok(()) } else { bail!("no server {server:?} in the configuration") }
    };
    let split = |s: &str| -> anyhow::Result<(String, String)> {
        let (server, name) = s.split_once('/').with_context(|| format!("{s:?} is not \"server/name\""))?;
        known(server)?;
        Ok((server.to_owned(), name.to_owned()))
    };
    // Not visible: the listing decision's policies say why (none: an admin tool, or default deny).
    let hidden = |d: Option<warden_policy::Decision>| {
        let why = d.map(|d| d.policies.join(", ")).filter(|p| !p.is_empty());
        let why = why.map(|p| format!(": {p}")).unwrap_or_default();
        (Verdict::Deny, format!("(not visible to this principal{why})"))
    };
    let shown = |d: warden_policy::Decision| {
        let policies =
            if d.policies.is_empty() { "(default deny)".to_owned() } else { format!("({})", d.policies.join(", ")) };
        (d.verdict, policies)
    };
    match action {
        Action::CallTool => {
            let (server, name) = split(case.tool.as_deref().context("call_tool needs tool = \"server/tool\"")?)?;
            let mut definition = serde_json::json!({ "name": name });
            if let Some(an) = &case.annotations {
                definition["annotations"] = an.clone();
            }
            let (tool, settings) = a.tool(&server, &definition);
            let seen = a.visibility(&ctx.principal, ctx.era(), &server, Item::Tool(&tool));
            if !seen.as_ref().is_some_and(|d| d.verdict.permits()) {
                return Ok(hidden(seen));
            }
            let d =
                a.decide_call(&ctx, &server, Item::Tool(&tool), Some(&case.arguments), &settings, state(case)).await;
            Ok(shown(d))
        }
        Action::GetPrompt => {
            let (server, name) = split(case.prompt.as_deref().context("get_prompt needs prompt = \"server/prompt\"")?)?;
            let seen = a.visibility(&ctx.principal, ctx.era(), &server, Item::Prompt(&name));
            if !seen.as_ref().is_some_and(|d| d.verdict.permits()) {
                return Ok(hidden(seen));
            }
            let d = a
                .decide_call(
                    &ctx,
                    &server,
                    Item::Prompt(&name),
                    Some(&case.arguments),
                    &Default::default(),
                    state(case),
                )
                .await;
            Ok(shown(d))
        }
        Action::ReadResource => {
            let server = case.server.as_deref().context("read_resource needs server")?;
            known(server)?;
            let uri = case.resource.as_deref().context("read_resource needs resource = \"<uri>\"")?;
            let item = Item::Resource { uri, template: false };
            let seen = a.visibility(&ctx.principal, ctx.era(), server, item);
            if !seen.as_ref().is_some_and(|d| d.verdict.permits()) {
                return Ok(hidden(seen));
            }
            Ok(shown(a.decide_call(&ctx, server, item, None, &Default::default(), state(case)).await))
        }
        Action::Sample | Action::Elicit | Action::ListRoots => {
            let server = case.server.as_deref().context("server requests need server")?;
            known(server)?;
            let method = match action {
                Action::Sample => "sampling/createMessage",
                Action::Elicit => "elicitation/create",
                _ => "roots/list",
            };
            let params = Value::Object(case.arguments.clone());
            Ok(shown(a.decide_server_request(&ctx.principal, ctx.era(), server, method, Some(&params))))
        }
    }
}

fn state(case: &Case) -> warden_gateway::guard::authorize::CallState {
    warden_gateway::guard::authorize::CallState { depth: case.call_depth, tainted: case.tainted }
}
