//! The report's content as sections of paragraphs, lists and tables, written once and rendered
//! by both [`super::html`] and [`super::markdown`], so the two always say the same.

use super::facts::changes_state;
use super::{Report, ToolView};

/// One table: its id (for the HTML), header and rows of plain text.
pub struct Table {
    pub id: &'static str,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// One section of the report.
pub struct Section {
    pub id: &'static str,
    pub title: &'static str,
    /// Paragraphs of plain text.
    pub text: Vec<String>,
    /// Items of a list (ordered when `ordered`).
    pub items: Vec<String>,
    pub ordered: bool,
    pub tables: Vec<Table>,
    /// The architecture diagram goes here.
    pub diagram: bool,
}

impl Section {
    fn new(id: &'static str, title: &'static str) -> Section {
        Section { id, title, text: vec![], items: vec![], ordered: false, tables: vec![], diagram: false }
    }
}

fn table(id: &'static str, header: &[&str], rows: Vec<Vec<String>>) -> Table {
    Table { id, header: header.iter().map(|h| (*h).to_owned()).collect(), rows }
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "-".to_owned() } else { v.join(", ") }
}

/// The summary line under the title.
pub fn summary(r: &Report) -> String {
    format!(
        "Configuration {}; audit window {} (since {} UTC); generated {} UTC. {} servers, {} tools, {} principals evaluated, {} audit rows in the window; audit chain {}.",
        r.config_path,
        r.window,
        r.since.format("%Y-%m-%d %H:%M"),
        r.generated_at.format("%Y-%m-%d %H:%M:%S"),
        r.servers.len(),
        r.tools.len(),
        r.principals.len(),
        r.audit.rows_in_window,
        r.audit.chain
    )
}

/// Every section, in order.
pub fn sections(r: &Report) -> Vec<Section> {
    vec![
        architecture(r),
        inventory(r),
        principals(r),
        scopes(r),
        local_servers(r),
        blast(r),
        plan(r),
        detection(r),
        paths(r),
    ]
}

fn architecture(r: &Report) -> Section {
    let mut s = Section::new("architecture", "Architecture and trust boundaries");
    s.diagram = true;
    s.text.push(
        "Callers reach servers only through Warden. B1: client tokens are validated for audience and never forwarded; \
         sessions are bound to the principal. B2: Warden injects each server's own credential, pins and scans tool \
         metadata, and sanitizes tool output before the client sees it. B3: what a server can reach itself — bounded by \
         its sandbox for a local server, by its operator for a remote one."
            .to_owned(),
    );
    let rows = r
        .servers
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.transport.to_owned(),
                s.endpoint.clone(),
                s.sandbox.to_owned(),
                yes(s.trusted),
                yes(s.trusted_content),
                s.credential.clone(),
                list(&s.path_roots),
                format!("{} pinned, {} held", s.pinned, s.held),
            ]
        })
        .collect();
    s.tables.push(table(
        "servers",
        &[
            "server",
            "transport",
            "command / URL",
            "sandbox",
            "trusted annotations",
            "trusted content",
            "credential to server",
            "path roots",
            "pins",
        ],
        rows,
    ));
    s
}

/// When a tool's calls need a human's approval.
fn approval(t: &ToolView) -> String {
    let mut why = Vec::new();
    let by_policy: std::collections::BTreeSet<&String> =
        t.access.iter().filter(|a| matches!(a, super::Access::Approval(_))).flat_map(|a| a.policies()).collect();
    if !by_policy.is_empty() {
        why.push(format!("always (policy {})", by_policy.into_iter().cloned().collect::<Vec<_>>().join(", ")));
    }
    if changes_state(t.facts.class) {
        why.push("when the context is tainted".to_owned());
    }
    if why.is_empty() {
        return "no".to_owned();
    }
    let flow = if t.out_of_band { "out of band" } else { "in band where the client can ask" };
    format!("{} ({flow})", why.join("; "))
}

fn inventory(r: &Report) -> Section {
    let mut s = Section::new("inventory", "Tool inventory matrix");
    s.text.push(
        "Every tool Warden has pinned or holds, and every tool the configuration names. Class is as Warden decides it \
         (configured class; else, for a trusted server, its annotations; else write). Each principal column is the \
         policies' listing decision for that principal, computed by evaluating the Cedar policies in force; argument \
         rules (tenant binding, path confinement, SSRF) further decide each call."
            .to_owned(),
    );
    let mut header: Vec<String> =
        ["server", "tool", "status", "class", "annotations", "admin", "scopes", "trusted content", "approval"]
            .iter()
            .map(|h| (*h).to_owned())
            .collect();
    header.extend(r.principals.iter().map(|p| format!("{} may", p.label)));
    header.push("calls in window".to_owned());
    header.push("last call".to_owned());
    let rows = r
        .tools
        .iter()
        .map(|t| {
            let status = match (&t.held, t.pinned) {
                (Some(reason), true) => format!("pinned; a {reason} definition held"),
                (Some(reason), false) => format!("held ({reason}): not callable"),
                (None, true) => "pinned".to_owned(),
                (None, false) => "configured, never seen".to_owned(),
            };
            let mut row = vec![
                t.server.clone(),
                t.name.clone(),
                status,
                t.facts.class.as_str().to_owned(),
                t.facts.annotations.as_ref().map(|a| a.to_string()).unwrap_or_else(|| "-".to_owned()),
                yes(t.facts.admin),
                list(&t.facts.scopes),
                yes(t.trusted_content),
                approval(t),
            ];
            row.extend(t.access.iter().map(|a| a.label()));
            row.push(t.calls.to_string());
            row.push(t.last_call.map(|l| l.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "-".to_owned()));
            row
        })
        .collect();
    s.tables.push(Table { id: "matrix", header, rows });
    s
}

fn principals(r: &Report) -> Section {
    let mut s = Section::new("principals", "Principals evaluated");
    let rows = r
        .principals
        .iter()
        .map(|p| {
            let q = &p.principal;
            vec![
                p.label.clone(),
                format!("{:?}", q.class).to_lowercase(),
                q.tenant.clone().unwrap_or_else(|| "-".to_owned()),
                list(&q.roles),
                list(&q.scopes),
                p.credential.clone(),
                p.source.clone(),
                p.seen_as
                    .as_ref()
                    .and_then(|k| r.audit.callers.get(k))
                    .map_or("no".to_owned(), |c| format!("{} calls", c.calls)),
            ]
        })
        .collect();
    s.tables.push(table(
        "principal-table",
        &["principal", "class", "tenant", "roles", "scopes", "credential", "from", "seen in window"],
        rows,
    ));
    s
}

fn scopes(r: &Report) -> Section {
    let mut s = Section::new("scopes", "Token scope review");
    let review = &r.scopes;
    if review.over_scoped.is_empty() {
        s.text.push(
            "No caller presented a write scope it never used (of those whose calls recorded their scopes).".to_owned(),
        );
    }
    for o in &review.over_scoped {
        let client = o.client_id.as_deref().map(|c| format!(", client {c}")).unwrap_or_default();
        s.items.push(format!(
            "OVER-SCOPED: {}{client} presented {} but only read: {}.",
            o.caller,
            o.unused.join(" "),
            o.used
        ));
    }
    s.tables.push(table(
        "scopes-required",
        &["tool", "scopes required"],
        review.required.iter().map(|(t, sc)| vec![t.clone(), sc.join(" ")]).collect(),
    ));
    s.tables.push(table(
        "scopes-presented",
        &["caller", "scopes presented", "scopes its calls needed"],
        review.presented.iter().map(|(c, p, n)| vec![c.clone(), list(p), list(n)]).collect(),
    ));
    s.tables.push(table(
        "upstream-credentials",
        &["server", "Warden's credential to it"],
        review.upstream.iter().map(|(n, c)| vec![n.clone(), c.clone()]).collect(),
    ));
    s
}

fn local_servers(r: &Report) -> Section {
    let mut s = Section::new("local-servers", "Local MCP server risk review");
    let rows: Vec<Vec<String>> = r
        .servers
        .iter()
        .filter_map(|srv| {
            let l = srv.launch.as_ref()?;
            let pinned = if l.flags.iter().any(|f| f.rule == "unpinned-package") {
                "NOT pinned"
            } else {
                "pinned or not a package runner"
            };
            let flags: Vec<String> =
                l.flags.iter().map(|f| format!("[{:?}] {}: {}", f.severity, f.rule, f.message)).collect();
            Some(vec![
                srv.name.clone(),
                l.command_line.clone(),
                pinned.to_owned(),
                l.sandbox.clone(),
                list(&srv.sandbox_read),
                list(&srv.sandbox_write),
                if srv.sandbox == "off" {
                    "unrestricted".to_owned()
                } else if srv.egress.is_empty() {
                    "none".to_owned()
                } else {
                    srv.egress.join(", ")
                },
                list(&l.env_names),
                list(&flags),
            ])
        })
        .collect();
    if rows.is_empty() {
        s.text.push("No stdio (local) servers are configured.".to_owned());
    }
    s.tables.push(table(
        "local-table",
        &["server", "command", "package", "sandbox", "reads", "writes", "network", "environment names", "flags"],
        rows,
    ));
    s
}

fn blast(r: &Report) -> Section {
    let mut s = Section::new("blast-radius", "Blast radius per principal class");
    s.text.push("What the worst-case credential of each class reaches, by the policies in force.".to_owned());
    let rows = r
        .blast
        .iter()
        .map(|b| {
            let by: Vec<String> = b.by_class.iter().map(|(c, t)| format!("{c}: {}", t.join(", "))).collect();
            vec![
                b.class.to_owned(),
                b.principals.join(", "),
                list(&b.servers),
                list(&by),
                list(&b.by_class.get("irreversible").cloned().unwrap_or_default()),
                list(&b.unattended_writes),
            ]
        })
        .collect();
    s.tables.push(table(
        "blast-table",
        &["class", "principals", "servers", "tools by class", "irreversible", "state changes without approval"],
        rows,
    ));
    s
}

fn plan(r: &Report) -> Section {
    let mut s = Section::new("plan", "Blast-radius reduction plan");
    s.ordered = true;
    if r.plan.is_empty() {
        s.text.push("Nothing to change was found.".to_owned());
    }
    s.items = r.plan.iter().map(|p| format!("[P{}] {} — removes: {}", p.priority, p.change, p.risk)).collect();
    s
}

fn detection(r: &Report) -> Section {
    let mut s = Section::new("detection", "Detection gates, drift and quarantine");
    let held: usize = r.servers.iter().map(|s| s.held).sum();
    s.text.push(format!(
        "Drift: {held} definition(s) held for review. Quarantine: {} result(s) waiting for review, {} quarantined in all. Audit chain: {}.",
        r.audit.quarantine_held, r.audit.quarantine_total, r.audit.chain
    ));
    let rows = r
        .gates
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                if g.tripped { "TRIPPED" } else { "ok" }.to_owned(),
                format!("{}", g.value),
                format!("{}", g.threshold),
                g.detail.clone(),
            ]
        })
        .collect();
    s.tables.push(table("gates", &["gate", "state", "value", "threshold", "detail"], rows));
    s
}

fn paths(r: &Report) -> Section {
    let mut s = Section::new("paths", "Who can call what");
    s.text.push(
        "Which client can call which server, using which token, to invoke which tool, against which data, with which \
         authorization, and with what audit trail: one row per principal and tool the policies let through."
            .to_owned(),
    );
    let rows = r
        .paths
        .iter()
        .map(|p| {
            vec![
                p.principal.clone(),
                p.server.clone(),
                p.token.clone(),
                format!("{} ({})", p.tool, p.class),
                p.data.clone(),
                p.authorization.clone(),
                p.audit.clone(),
            ]
        })
        .collect();
    s.tables.push(table(
        "paths-table",
        &["client / principal", "server", "token", "tool", "data", "authorization", "audit trail"],
        rows,
    ));
    s
}
