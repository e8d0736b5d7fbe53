//! The report as SARIF 2.1.0, for code scanning: one run by the tool `warden`, one rule per
//! rule id found, one result per finding located at the configuration file (and the line of the
//! server's name when it was found).

use super::Report;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use warden_gateway::servers::Severity;

/// What each rule of the configuration checks means, for the SARIF rule descriptions and
/// docs/scan.md.
pub const CONFIG_RULES: &[(&str, &str)] = &[
    ("shadow-server", "A configured MCP server does not go through Warden (R10, shadow server)."),
    ("bypasses-warden", "A client runs a server that Warden serves, directly, bypassing Warden."),
    ("shell-command-string", "A shell runs a command string."),
    ("chain-to-network-tool", "A pipe or command chain reaches a network tool."),
    ("download-and-run", "A script is downloaded and run (curl | sh)."),
    ("credential-file", "The command refers to a credential file."),
    ("unpinned-package", "A package runner starts a package with no exact version."),
    ("plaintext-secret", "A credential is written in plain text in the configuration."),
    ("plain-http", "A server URL is plain http to another machine."),
    ("private-address", "A server URL leads to a private or loopback-only address."),
    ("metadata-address", "A server URL leads to a cloud metadata address."),
    ("bad-url", "A server URL does not parse or has an unexpected scheme."),
    ("deprecated-sse", "A server uses the deprecated HTTP+SSE transport."),
    ("duplicate-name", "One server name names different servers in different places."),
    ("lookalike-name", "Two server names look alike."),
    ("unreadable-config", "A client configuration file could not be read or parsed."),
    ("not-connected", "A server was not started with --connect."),
    ("connect-failed", "A server could not be started or did not list what it offers."),
    ("sandbox-refused", "Warden's sandbox could not be granted to a server."),
];

/// The description of rule `id`.
pub fn describe(id: &str) -> String {
    if let Some((_, d)) = CONFIG_RULES.iter().find(|(r, _)| *r == id) {
        return (*d).to_owned();
    }
    if let Some(r) = warden_inspect::poison::rules().iter().find(|r| r.id == id) {
        return r.explanation.to_owned();
    }
    match id.split('.').next() {
        Some("shadowing") => "A tool's name or description imitates or names another server's tool.".to_owned(),
        Some("overlap") => "A tool duplicates another server's tool under another name.".to_owned(),
        _ => "A finding of Warden's poisoning scanner in a server's definitions.".to_owned(),
    }
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

fn uri(path: &std::path::Path) -> String {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    reqwest::Url::from_file_path(&absolute).map(|u| u.to_string()).unwrap_or_else(|_| path.display().to_string())
}

/// The SARIF log.
pub fn sarif(report: &Report) -> Value {
    let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &report.findings {
        let next = rules.len();
        rules.entry(f.rule).or_insert(next);
    }
    let mut ordered: Vec<(&str, usize)> = rules.iter().map(|(r, i)| (*r, *i)).collect();
    ordered.sort_by_key(|(_, i)| *i);
    let rule_list: Vec<Value> = ordered
        .iter()
        .map(|(id, _)| json!({ "id": id, "name": id, "shortDescription": { "text": describe(id) } }))
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let s = f.server.and_then(|i| report.servers.get(i));
            let file = s.map(|s| s.file.clone()).or_else(|| f.file.clone()).unwrap_or_default();
            let mut location = json!({ "physicalLocation": { "artifactLocation": { "uri": uri(&file) } } });
            if let Some(line) = s.and_then(|s| s.line) {
                location["physicalLocation"]["region"] = json!({ "startLine": line });
            }
            let mut text = f.message.clone();
            if let Some(s) = s {
                let item = f.item.as_ref().map(|i| format!(", {i}")).unwrap_or_default();
                text = format!("server {:?} ({}{item}): {text}", s.entry.name, s.client.label());
            }
            let mut props = json!({ "severity": f.severity.as_str() });
            if let Some(s) = s {
                props["server"] = json!(s.entry.name);
                props["client"] = json!(s.client.label());
            }
            json!({
                "ruleId": f.rule,
                "ruleIndex": rules[f.rule],
                "level": level(f.severity),
                "message": { "text": text },
                "locations": [location],
                "properties": props,
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "warden",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/warden-mcp/warden/blob/main/docs/scan.md",
                "rules": rule_list,
            } },
            "results": results,
        }],
    })
}
