//! `--connect`: each server is started once exactly as the gateway would start it (sandboxed,
//! with only the environment its entry names plus `PATH` and `HOME`, bounded in time), what it
//! lists is scanned with the poisoning scanner, and the tools of all servers together are
//! compared for look-alike names, shadowing and duplicates.
//!
//! A server is given read access to the code it runs from a local path (see [`probed`]), nothing
//! more: no network but through Warden's egress rules, nothing writable.
//!
//! Shadow servers are connected too: finding out what they expose is the point. A server with a
//! high or critical finding (a shell running a command string, a download piped to a shell, a
//! chain to a network tool, a credential file, a metadata address) is not started unless
//! `--accept-risk NAME` names it, as `warden import` refuses it.

use super::formats::Entry;
use super::{Finding, Report};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use warden_gateway::config::{Config, ServerSection};
use warden_gateway::servers::probe::{Listing, probe_section};
use warden_gateway::servers::{ServerPaths, Severity, printable, sandbox_problem};
use warden_inspect::poison::{DefinitionKind, Exposed, PoisonScanner, cross_server};

/// Characters of a listed name kept in a report.
const MAX_NAME_CHARS: usize = 80;

/// What a server listed, by name.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    tools: Vec<String>,
    prompts: Vec<String>,
    resources: Vec<String>,
    templates: Vec<String>,
}

impl Summary {
    /// As JSON: `{"tools": [...], "prompts": [...], "resources": [...], "templates": [...]}`.
    pub fn json(&self) -> Value {
        json!({ "tools": self.tools, "prompts": self.prompts, "resources": self.resources, "templates": self.templates })
    }
}

/// The Warden server section that starts or reaches `e` as its client would, for the probe
/// and for showing its command line. Built through the configuration's own reader, so that it
/// is what a `[servers.NAME]` table with these values would be.
pub fn section(e: &Entry) -> Result<ServerSection, String> {
    let mut t = toml::Table::new();
    let strings = |v: &[String]| toml::Value::Array(v.iter().cloned().map(toml::Value::String).collect());
    let map = |m: &BTreeMap<String, String>| {
        toml::Value::Table(m.iter().map(|(k, v)| (k.clone(), toml::Value::String(v.clone()))).collect())
    };
    if let Some(c) = &e.command {
        t.insert("command".into(), toml::Value::String(c.clone()));
        t.insert("args".into(), strings(&e.args));
        t.insert("env".into(), map(&e.env));
        // The clients start servers with the user's PATH and HOME; without them `npx` and
        // `uvx` do not start at all.
        t.insert("env_inherit".into(), strings(&["PATH".to_owned(), "HOME".to_owned()]));
        if let Some(cwd) = &e.cwd {
            t.insert("cwd".into(), toml::Value::String(cwd.clone()));
        }
    } else if let Some(u) = &e.url {
        t.insert("url".into(), toml::Value::String(u.clone()));
        t.insert("headers".into(), map(&e.headers));
    }
    toml::Value::Table(t).try_into().map_err(|e: toml::de::Error| e.message().to_owned())
}

/// The section the probe starts: [`section`], with read access to the code it runs from a local
/// path (`script_root`: the project above its `node_modules`, else the package), as `warden
/// import` grants it. Nothing else an argument names is granted: a path may be another client's
/// credentials. Nothing is writable.
fn probed(e: &Entry) -> Result<ServerSection, String> {
    let mut s = section(e)?;
    if s.command.is_some() {
        s.sandbox_read = warden_gateway::servers::entry::script_root(&e.args).into_iter().collect();
    }
    Ok(s)
}

fn name_of(v: &Value, key: &str) -> String {
    let n = v.get(key).and_then(Value::as_str).unwrap_or("(unnamed)");
    printable(&n.chars().take(MAX_NAME_CHARS).collect::<String>())
}

/// Connects every server of `report` it may, adding what they list and what is found in it.
pub async fn connect(report: &mut Report, accept: &[String], timeout: Duration) {
    // Gateway-wide settings (egress rules, protected paths) as Warden's defaults have them.
    let config = Config::parse("", "(warden scan)").unwrap_or_default();
    let paths = ServerPaths::of(&config);
    let scanner = PoisonScanner::new();
    // The same launch configured in several clients is started once.
    let mut done: Vec<(String, usize, Option<Listing>)> = vec![];
    let mut findings = vec![];
    for i in 0..report.servers.len() {
        let s = &report.servers[i];
        let key = format!("{:?}", (&s.entry.command, &s.entry.args, &s.entry.env, &s.entry.url, &s.entry.headers));
        if let Some((_, first, listing)) = done.iter().find(|(k, _, _)| *k == key) {
            if let Some(l) = listing {
                findings.extend(poison(&scanner, s.id, l));
                report.listings.insert(s.id, summary(l));
            } else if let Some(seen) = report.servers.get(*first) {
                findings.push(note(
                    s.id,
                    "not-connected",
                    Severity::Info,
                    format!("the same server as {:?}: see it", seen.entry.name),
                ));
            }
            continue;
        }
        // As `warden import` refuses them: high and critical findings are not started unasked.
        let critical = report.findings.iter().any(|f| f.server == Some(s.id) && f.severity >= Severity::High);
        let name = s.entry.name.clone();
        let listing = if critical && !accept.contains(&name) {
            findings.push(note(
                s.id,
                "not-connected",
                Severity::Info,
                format!(
                    "not started: it has a high or critical finding (pass --accept-risk {name:?} to connect it anyway)"
                ),
            ));
            None
        } else {
            match probed(&s.entry) {
                Err(e) => {
                    findings.push(note(
                        s.id,
                        "connect-failed",
                        Severity::Low,
                        format!("cannot be started as configured: {e}"),
                    ));
                    None
                }
                Ok(sec) => match sandbox_problem(&sec, &paths) {
                    Some(problem) => {
                        findings.push(note(
                            s.id,
                            "sandbox-refused",
                            Severity::Medium,
                            format!("not started: Warden's sandbox cannot be granted: {problem}"),
                        ));
                        None
                    }
                    None => match probe_section(&config, &probe_name(i), &sec, timeout).await {
                        Ok(l) => Some(l),
                        Err(e) => {
                            findings.push(note(
                                s.id,
                                "connect-failed",
                                Severity::Low,
                                format!("could not list what it offers: {e}"),
                            ));
                            None
                        }
                    },
                },
            }
        };
        if let Some(l) = &listing {
            findings.extend(poison(&scanner, s.id, l));
            report.listings.insert(s.id, summary(l));
        }
        done.push((key, i, listing));
    }
    findings.extend(cross(report, &done));
    report.findings.extend(findings);
}

/// A name the gateway accepts for the probe (client names may hold any character).
fn probe_name(i: usize) -> String {
    format!("scan{i}")
}

fn note(server: usize, rule: &'static str, severity: Severity, message: String) -> Finding {
    Finding { server: Some(server), file: None, item: None, rule, severity, message: printable(&message) }
}

fn summary(l: &Listing) -> Summary {
    let names = |v: &[Value], key: &str| v.iter().map(|d| name_of(d, key)).collect();
    Summary {
        tools: names(&l.tools, "name"),
        prompts: names(&l.prompts, "name"),
        resources: names(&l.resources, "uri"),
        templates: names(&l.templates, "uriTemplate"),
    }
}

/// The poisoning scanner over every definition and the instructions. Findings carry the
/// scanner's own explanation and the pointer to what matched, never the definition's text.
fn poison(scanner: &PoisonScanner, server: usize, l: &Listing) -> Vec<Finding> {
    let mut out = vec![];
    let kinds = [
        (DefinitionKind::Tool, &l.tools, "tool", "name"),
        (DefinitionKind::Prompt, &l.prompts, "prompt", "name"),
        (DefinitionKind::Resource, &l.resources, "resource", "uri"),
        (DefinitionKind::ResourceTemplate, &l.templates, "template", "uriTemplate"),
    ];
    for (kind, items, what, key) in kinds {
        for d in items.iter() {
            for f in scanner.scan(kind, d).into_iter().filter(|f| f.severity > Severity::Info) {
                out.push(Finding {
                    server: Some(server),
                    file: None,
                    item: Some(format!("{what} {}", name_of(d, key))),
                    rule: f.rule,
                    severity: f.severity,
                    message: printable(&format!("{} (at {})", f.explanation, f.pointer)),
                });
            }
        }
    }
    if let Some(text) = &l.instructions {
        for f in scanner.scan_text("/instructions", text).into_iter().filter(|f| f.severity > Severity::Info) {
            out.push(Finding {
                server: Some(server),
                file: None,
                item: Some("instructions".into()),
                rule: f.rule,
                severity: f.severity,
                message: printable(&f.explanation),
            });
        }
    }
    out
}

/// The cross-server checks over all servers' tools together; each finding is reported on the
/// server of the second tool of the pair (the one imitating, or naming the other's tool).
fn cross(report: &Report, done: &[(String, usize, Option<Listing>)]) -> Vec<Finding> {
    let label = |i: usize| format!("{} ({})", report.servers[i].entry.name, report.servers[i].client.label());
    let labels: Vec<(usize, String)> = done.iter().map(|(_, i, _)| (*i, label(*i))).collect();
    let mut exposed = vec![];
    for ((_, _, listing), (_, server)) in done.iter().zip(&labels) {
        for t in listing.iter().flat_map(|l| &l.tools) {
            exposed.push(Exposed {
                server,
                name: t.get("name").and_then(Value::as_str).unwrap_or(""),
                description: t.get("description").and_then(Value::as_str).unwrap_or(""),
            });
        }
    }
    cross_server(&exposed)
        .into_iter()
        .filter_map(|c| {
            let (id, _) = labels.iter().find(|(_, l)| *l == c.servers.1)?;
            Some(Finding {
                server: Some(report.servers[*id].id),
                file: None,
                item: Some(format!("tool {}", printable(&c.names.1.chars().take(MAX_NAME_CHARS).collect::<String>()))),
                rule: c.rule,
                severity: c.severity,
                message: printable(&c.explanation),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::formats::Transport;

    #[test]
    fn an_entry_becomes_the_section_warden_would_run() {
        let e = Entry {
            name: "x".into(),
            project: None,
            transport: Transport::Stdio,
            command: Some("npx".into()),
            args: vec!["-y".into(), "pkg@1.0.0".into()],
            env: [("DEBUG".to_owned(), "1".to_owned())].into(),
            cwd: Some("/tmp".into()),
            url: None,
            headers: Default::default(),
            auto_approved: None,
        };
        let s = section(&e).unwrap();
        assert_eq!((s.command.as_deref(), s.args.len(), s.env_inherit.len()), (Some("npx"), 2, 2));
        assert_eq!(s.sandbox, warden_gateway::config::SandboxMode::Strict, "strict, as Warden's default");
    }
}
