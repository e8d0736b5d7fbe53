//! The report as a person reads it (a table of servers, then the findings grouped by server)
//! and as a program reads it (JSON; the shape is documented in docs/scan.md and kept stable:
//! fields are added, never renamed or removed, within `"version": 1`).

use super::formats::{Entry, Format, Transport};
use super::{Report, Server};
use serde_json::{Value, json};
use std::fmt::Write as _;
use warden_gateway::servers::{LaunchReview, Severity, printable};
use warden_inspect::secrets::SecretScanner;

/// How a server is shown: its command line with credentials redacted (as `warden check` shows
/// it), or its URL without user information, query or fragment.
pub fn shown(e: &Entry, secrets: &SecretScanner) -> String {
    if e.command.is_some()
        && let Some(r) = super::connect::section(e).ok().as_ref().and_then(LaunchReview::of)
    {
        return r.command_line;
    }
    let Some(url) = e.url.as_deref() else { return String::new() };
    let text = match reqwest::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => "(a URL that does not parse)".to_owned(),
    };
    printable(&secrets.redact_str(&text).0)
}

/// The 1-based line where `e`'s name is written in `text`, when it can be found.
pub fn line_of(text: &str, format: Format, e: &Entry) -> Option<usize> {
    let at = match format {
        Format::Codex => [format!("[mcp_servers.{}]", e.name), format!("[mcp_servers.{:?}]", e.name)]
            .iter()
            .find_map(|n| text.find(n.as_str())),
        // Continue's block directory also holds JSON files.
        Format::ContinueYaml => {
            yaml_name(text, &e.name).or_else(|| serde_json::to_string(&e.name).ok().and_then(|q| json_key(text, &q, 0)))
        }
        _ => {
            let quoted = serde_json::to_string(&e.name).ok()?;
            let from = e.project.as_ref().and_then(|p| serde_json::to_string(p).ok()).and_then(|p| text.find(&p));
            json_key(text, &quoted, from.unwrap_or(0))
        }
    }?;
    Some(text[..at].matches('\n').count() + 1)
}

/// Where `"name"` first appears as an object key at or after `from`.
fn json_key(text: &str, quoted: &str, from: usize) -> Option<usize> {
    let mut start = from;
    while let Some(i) = text.get(start..)?.find(quoted) {
        let at = start + i;
        if text[at + quoted.len()..].trim_start().starts_with(':') {
            return Some(at);
        }
        start = at + quoted.len();
    }
    None
}

/// Where a YAML list item's `name: NAME`, or a map's `NAME:` key, is.
fn yaml_name(text: &str, name: &str) -> Option<usize> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim().trim_start_matches("- ").trim();
        let unquote = |s: &str| s.trim().trim_matches('"').trim_matches('\'').to_owned();
        let hit = t.strip_prefix("name:").is_some_and(|v| unquote(v) == name)
            || t.strip_suffix(':').is_some_and(|k| unquote(k) == name);
        if hit {
            return Some(offset + line.find(|c: char| !c.is_whitespace()).unwrap_or(0));
        }
        offset += line.len();
    }
    None
}

/// Where a server is configured, as `file:line`.
pub fn location(s: &Server) -> String {
    match s.line {
        Some(l) => format!("{}:{l}", s.file.display()),
        None => s.file.display().to_string(),
    }
}

fn counts(report: &Report) -> Vec<(Severity, usize)> {
    Severity::ALL
        .iter()
        .rev()
        .map(|s| (*s, report.findings.iter().filter(|f| f.severity == *s).count()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The terminal report.
pub fn table(report: &Report, verbose: bool) -> String {
    let mut out = String::new();
    let files = report.looked.iter().filter(|l| l.found).count();
    if report.servers.is_empty() && files == 0 {
        let _ = writeln!(out, "No MCP client configuration found; looked in {} places.", report.looked.len());
        if let Some((home, project)) = &report.roots {
            let _ = writeln!(out, "  home: {}\n  project: {}", home.display(), project.display());
        }
        if !verbose {
            let _ = writeln!(out, "  (--verbose lists every place)");
        }
    } else {
        let _ = writeln!(out, "{} servers in {} files:\n", report.servers.len(), files.max(1));
        let mut rows = vec![["NAME", "CLIENT", "SCOPE", "WARDEN", "TRANSPORT", "COMMAND / URL"].map(str::to_owned)];
        for s in &report.servers {
            let scope = match &s.entry.project {
                Some(p) => format!("{} ({p})", s.scope.as_str()),
                None => s.scope.as_str().to_owned(),
            };
            rows.push([
                printable(&s.entry.name),
                s.client.label().to_owned(),
                printable(&scope),
                if s.through_warden { "yes" } else { "no" }.to_owned(),
                s.entry.transport.as_str().to_owned(),
                s.shown.clone(),
            ]);
        }
        let widths: Vec<usize> =
            (0..5).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0).min(40)).collect();
        for r in &rows {
            let mut line = String::from("  ");
            for (c, w) in widths.iter().enumerate() {
                let _ = write!(line, "{:<w$}  ", r[c], w = *w);
            }
            line.push_str(&r[5]);
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    if verbose {
        let _ = writeln!(out, "\nPlaces looked at:");
        for l in &report.looked {
            let state = if l.found { format!("{} servers", l.servers) } else { "not found".to_owned() };
            let _ = writeln!(out, "  {:<16} {:<8} {} ({state})", l.client.label(), l.scope.as_str(), l.path.display());
        }
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out, "\nFindings:");
        let mut current: Option<Option<usize>> = None;
        for f in &report.findings {
            if current != Some(f.server) {
                current = Some(f.server);
                let head = match f.server.and_then(|i| report.servers.get(i)) {
                    Some(s) => format!("{} ({}, {})", printable(&s.entry.name), s.client.label(), location(s)),
                    None => f.file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                };
                let _ = writeln!(out, "  {head}");
            }
            let item = f.item.as_ref().map(|t| format!("[{}] ", printable(t))).unwrap_or_default();
            let sev = f.severity.as_str().to_ascii_uppercase();
            let _ = writeln!(out, "    {sev:<8}  {:<22}  {item}{}", f.rule, f.message);
        }
    }
    let summary: Vec<String> = counts(report).iter().map(|(s, n)| format!("{n} {s}")).collect();
    let through = report.servers.iter().filter(|s| s.through_warden).count();
    let _ = writeln!(
        out,
        "\n{} servers, {through} through Warden; findings: {}",
        report.servers.len(),
        if summary.is_empty() { "none".to_owned() } else { summary.join(", ") }
    );
    out
}

/// The JSON report.
pub fn json(report: &Report) -> Value {
    let servers: Vec<Value> = report
        .servers
        .iter()
        .map(|s| {
            let e = &s.entry;
            let mut v = json!({
                "id": s.id,
                "name": e.name,
                "client": s.client.label(),
                "scope": s.scope.as_str(),
                "project": e.project,
                "file": s.file.display().to_string(),
                "line": s.line,
                "transport": e.transport.as_str(),
                "through_warden": s.through_warden,
                "env": e.env.keys().collect::<Vec<_>>(),
                "headers": e.headers.keys().collect::<Vec<_>>(),
            });
            if e.transport == Transport::Stdio {
                v["command"] = json!(s.shown);
            } else {
                v["url"] = json!(s.shown);
            }
            if let Some(l) = report.listings.get(&s.id) {
                v["listing"] = l.json();
            }
            v
        })
        .collect();
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let s = f.server.and_then(|i| report.servers.get(i));
            json!({
                "server": f.server,
                "server_name": s.map(|s| s.entry.name.clone()),
                "client": s.map(|s| s.client.label()),
                "file": s.map(|s| s.file.clone()).or_else(|| f.file.clone()).map(|p| p.display().to_string()),
                "line": s.and_then(|s| s.line),
                "item": f.item,
                "rule": f.rule,
                "severity": f.severity.as_str(),
                "message": f.message,
            })
        })
        .collect();
    let looked: Vec<Value> = report
        .looked
        .iter()
        .map(|l| {
            json!({ "client": l.client.label(), "scope": l.scope.as_str(), "path": l.path.display().to_string(),
                    "found": l.found, "servers": l.servers })
        })
        .collect();
    let by: serde_json::Map<String, Value> =
        counts(report).into_iter().map(|(s, n)| (s.as_str().to_owned(), json!(n))).collect();
    json!({
        "version": 1,
        "looked_at": looked,
        "servers": servers,
        "findings": findings,
        "summary": { "servers": report.servers.len(),
                     "through_warden": report.servers.iter().filter(|s| s.through_warden).count(),
                     "findings": by },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, project: Option<&str>) -> Entry {
        Entry {
            name: name.into(),
            project: project.map(str::to_owned),
            transport: Transport::Stdio,
            command: Some("x".into()),
            args: vec![],
            env: Default::default(),
            cwd: None,
            url: None,
            headers: Default::default(),
            auto_approved: None,
        }
    }

    #[test]
    fn names_are_found_on_their_lines() {
        let json = "{\n \"mcpServers\": {\n  \"a\": {\"command\": \"a\"},\n  \"b\" : {}\n },\n \"projects\": {\"/p\": {\"mcpServers\": {\n  \"a\": {}}}}}";
        assert_eq!(line_of(json, Format::McpServers, &entry("a", None)), Some(3));
        assert_eq!(line_of(json, Format::McpServers, &entry("b", None)), Some(4));
        assert_eq!(line_of(json, Format::ClaudeCodeUser, &entry("a", Some("/p"))), Some(7));
        assert_eq!(line_of(json, Format::McpServers, &entry("zz", None)), None);
        let toml = "x = 1\n\n[mcp_servers.docs]\ncommand = \"d\"\n";
        assert_eq!(line_of(toml, Format::Codex, &entry("docs", None)), Some(3));
        let yaml = "name: cfg\nmcpServers:\n  - name: one\n  - name: \"two\"\n";
        assert_eq!(line_of(yaml, Format::ContinueYaml, &entry("two", None)), Some(4));
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        let s = SecretScanner::new();
        let mut e = entry("r", None);
        e.command = None;
        // Built here so that the source holds no URL with credentials in it.
        e.url = Some(format!("https://{}:{}@h.example/mcp?key=abc#f", "user", "pw"));
        assert_eq!(shown(&e, &s), "https://h.example/mcp");
    }
}
