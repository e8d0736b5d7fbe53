//! What the report is computed from: the configuration's servers and tool settings, the pinned
//! inventory and what is held for review, the quarantine, and how the audit log shows them used.
//!
//! The tools are the pinned definitions (what the gateway reviewed and serves), not a live listing:
//! the report starts no server. A tool configured but never pinned is shown as such.

use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use warden_gateway::config::{Config, SandboxMode, ServerSection};
use warden_gateway::guard::authorize::Authorizer;
use warden_gateway::servers::LaunchReview;
use warden_policy::{ToolClass, ToolFacts};
use warden_store::pins::{Candidate, Pin, PinStore};
use warden_store::{AuditReader, AuditRow, QuarantineStore};

use super::policy::Access;

/// Rows read per page of the audit log.
const PAGE: i64 = 5_000;
/// Distinct argument values kept per tool, to show what data a tool touched.
const MAX_VALUES: usize = 5;
/// Most quarantined items counted.
const MAX_QUARANTINE: u32 = 100_000;

/// One configured server, as the diagram and the tables show it.
pub struct ServerView {
    pub name: String,
    /// `stdio` or `http`.
    pub transport: &'static str,
    /// The URL, or the command line (secrets redacted).
    pub endpoint: String,
    /// `strict`, `off` or `n/a` (a URL server runs elsewhere).
    pub sandbox: &'static str,
    pub trusted: bool,
    pub trusted_content: bool,
    /// How Warden authenticates to it: its kind, and where the secret comes from.
    pub credential: String,
    pub path_roots: Vec<String>,
    pub egress: Vec<String>,
    pub pinned: usize,
    pub held: usize,
    /// A stdio server's launch review.
    pub launch: Option<LaunchReview>,
    pub sandbox_read: Vec<String>,
    pub sandbox_write: Vec<String>,
}

/// One tool: what Warden decides about it, who may call it, and how it was used.
pub struct ToolView {
    pub server: String,
    pub name: String,
    /// Its pinned definition exists (`false`: configured, or held, but never pinned).
    pub pinned: bool,
    /// Why a definition of it is held for review (`drift`, `poisoned`, `new`, `removed`).
    pub held: Option<String>,
    pub facts: ToolFacts,
    pub path_arguments: Vec<String>,
    pub url_arguments: Vec<String>,
    /// Its results are trusted not to carry instructions (no taint).
    pub trusted_content: bool,
    /// Its calls go to out-of-band approval when they need approval.
    pub out_of_band: bool,
    /// Per principal evaluated, in the order of the report's principals.
    pub access: Vec<Access>,
    pub calls: u64,
    pub last_call: Option<DateTime<Utc>>,
}

impl ToolView {
    /// `server/tool`, as configuration and policies name it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// Whether the gateway serves it: a definition only held for review is not callable.
    pub fn callable(&self) -> bool {
        self.pinned || self.held.is_none()
    }
}

/// One caller seen in the audit window.
#[derive(Default)]
pub struct CallerUse {
    pub class: String,
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    /// Every scope it presented on a call.
    pub scopes: BTreeSet<String>,
    /// Whether any call row carried its scopes.
    pub scopes_recorded: bool,
    /// Per `server/tool`: allowed calls and the class of the tool called.
    pub tools: BTreeMap<String, (u64, String)>,
    /// Policies that permitted its calls, per `server/tool`.
    pub policies: BTreeMap<String, BTreeSet<String>>,
    pub calls: u64,
}

/// What the audit log says about the window.
#[derive(Default)]
pub struct AuditUse {
    /// The log could be read.
    pub available: bool,
    pub rows_in_window: u64,
    /// Per caller, keyed by subject and class (`alice (user)`).
    pub callers: BTreeMap<String, CallerUse>,
    /// Per `server/tool`: calls and the last one.
    pub tool_calls: BTreeMap<String, (u64, DateTime<Utc>)>,
    /// Per `server/tool`: distinct values of its path and URL arguments, as stored (redacted).
    pub data_seen: BTreeMap<String, BTreeSet<String>>,
    /// Per server: resources read (URIs).
    pub resources_read: BTreeMap<String, BTreeSet<String>>,
    /// The chain check, in a line; `chain_ok` is `None` when it could not run.
    pub chain: String,
    pub chain_ok: Option<bool>,
    /// Rows the chain check read.
    pub verified_rows: u64,
    pub quarantine_held: usize,
    pub quarantine_total: usize,
}

/// What was read from the gateway's database.
pub struct Stored {
    pub audit: AuditUse,
    pub pins: BTreeMap<String, Vec<Pin>>,
    pub held: BTreeMap<String, Vec<Candidate>>,
    pub reader: Option<AuditReader>,
}

impl Stored {
    /// Reads pins, candidates, the quarantine and the audit window from `url`. A SQLite file
    /// that does not exist yet is an empty log (noted), not an error: the report of a gateway
    /// that never ran is still worth reading.
    pub async fn read(
        config: &Config,
        url: &str,
        since: DateTime<Utc>,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Stored> {
        let mut stored =
            Stored { audit: AuditUse::default(), pins: BTreeMap::new(), held: BTreeMap::new(), reader: None };
        if let Some(path) = url.strip_prefix("sqlite://")
            && !std::path::Path::new(path).exists()
        {
            notes.push(format!(
                "no audit database at {path}: the gateway has not run with this configuration, so no pins, \
                 calls or gates are shown"
            ));
            stored.audit.chain = "no audit log yet".to_owned();
            return Ok(stored);
        }
        // The pin store first: opening it brings the database's tables up to date, which the
        // read-only audit reader cannot do.
        let pins = PinStore::open(url).await.map_err(|e| anyhow::anyhow!("opening the pin store: {e}"))?;
        for name in config.servers.keys() {
            let p = pins.pins(name).await.map_err(|e| anyhow::anyhow!("reading the pins of {name}: {e}"))?;
            let c = pins.candidates(name).await.map_err(|e| anyhow::anyhow!("reading what is held for {name}: {e}"))?;
            stored.pins.insert(name.clone(), p);
            stored.held.insert(name.clone(), c);
        }
        let quarantine =
            QuarantineStore::open(url).await.map_err(|e| anyhow::anyhow!("opening the quarantine: {e}"))?;
        let count =
            |r: Result<Vec<_>, _>| r.map(|v: Vec<_>| v.len()).map_err(|e| anyhow::anyhow!("the quarantine: {e}"));
        stored.audit.quarantine_held = count(quarantine.list(Some("held"), MAX_QUARANTINE).await)?;
        stored.audit.quarantine_total = count(quarantine.list(None, MAX_QUARANTINE).await)?;
        let reader = AuditReader::open(url).await.map_err(|e| anyhow::anyhow!("opening the audit log: {e}"))?;
        stored.audit.available = true;
        verify(config, &reader, &mut stored.audit).await;
        let first = first_seq_since(&reader, url, since).await?;
        if let Some(first) = first {
            let mut after = first - 1;
            loop {
                let rows =
                    reader.rows_after(after, PAGE).await.map_err(|e| anyhow::anyhow!("reading the audit log: {e}"))?;
                let Some(last) = rows.last().map(|r| r.seq) else { break };
                for row in rows.iter().filter(|r| r.event.event_time >= since) {
                    stored.audit.add(config, row);
                }
                after = last;
            }
        }
        stored.reader = Some(reader);
        Ok(stored)
    }
}

/// The first row at or after `since` (times compare as text in SQLite, as instants in Postgres).
async fn first_seq_since(reader: &AuditReader, url: &str, since: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
    let at = since.format("%Y-%m-%d %H:%M:%S%.6f");
    let literal = if url.starts_with("postgres") { format!("'{at}+00'") } else { format!("'{at}'") };
    let result = reader
        .query(&format!("SELECT MIN(seq) FROM mcp_audit WHERE event_time >= {literal}"))
        .await
        .map_err(|e| anyhow::anyhow!("reading the audit log: {e}"))?;
    Ok(result.rows.first().and_then(|r| r.first()).and_then(Value::as_i64))
}

/// Checks the chain with the configuration's own checkpoint key, as `warden audit verify` does.
async fn verify(config: &Config, reader: &AuditReader, audit: &mut AuditUse) {
    let own_key = config
        .audit
        .signing_key
        .as_ref()
        .map(|k| config.resolve(k))
        .filter(|k| k.exists())
        .and_then(|k| warden_store::public_key_of(&k).ok());
    let keys: Vec<String> = own_key.into_iter().collect();
    match reader.verify(&keys).await {
        Ok(report) => {
            audit.verified_rows = report.rows;
            match &report.first_bad {
                Some(bad) => {
                    audit.chain_ok = Some(false);
                    audit.chain = format!("TAMPERED at row {}: {}", bad.seq, bad.problem);
                }
                None => {
                    audit.chain_ok = Some(true);
                    let head = report.head.as_ref().map(|(seq, _)| format!(", head row {seq}")).unwrap_or_default();
                    audit.chain =
                        format!("intact: {} rows in {} chain(s){head}", report.rows, report.chains.len().max(1));
                }
            }
        }
        Err(e) => audit.chain = format!("could not be checked: {e}"),
    }
}

impl AuditUse {
    fn add(&mut self, config: &Config, row: &AuditRow) {
        self.rows_in_window += 1;
        let e = &row.event;
        if e.event != "call" {
            return;
        }
        let server = e.server_name.clone().unwrap_or_default();
        let item = e.tool_name.clone().unwrap_or_default();
        if e.method.as_deref() == Some("resources/read") {
            let set = self.resources_read.entry(server).or_default();
            if set.len() < MAX_VALUES {
                set.insert(item);
            }
            return;
        }
        if e.method.as_deref() != Some("tools/call") {
            return;
        }
        let id = format!("{server}/{item}");
        let entry = self.tool_calls.entry(id.clone()).or_insert((0, e.event_time));
        entry.0 += 1;
        entry.1 = entry.1.max(e.event_time);
        let settings = warden_gateway::config::tool_settings(&config.tools, &server, &item);
        let names: Vec<&String> =
            settings.path_arguments.iter().chain(settings.url_arguments.iter()).flatten().collect();
        if let Some(args) = e.arguments.as_ref().and_then(Value::as_object) {
            let seen = self.data_seen.entry(id.clone()).or_default();
            for name in names {
                if let Some(v) = args.get(name.as_str()).and_then(Value::as_str)
                    && seen.len() < MAX_VALUES
                {
                    // A URL is shown without user information or query: they may carry credentials.
                    let shown = if v.contains("://") {
                        warden_gateway::servers::entry::shown_url(v)
                    } else {
                        warden_gateway::servers::printable(v)
                    };
                    seen.insert(shown);
                }
            }
        }
        let subject = e.actor_id.clone().unwrap_or_else(|| "(unknown)".to_owned());
        let class = e.actor_class.clone().unwrap_or_else(|| "user".to_owned());
        let caller = self.callers.entry(format!("{subject} ({class})")).or_default();
        caller.class = class;
        caller.tenant = caller.tenant.take().or_else(|| e.tenant.clone());
        caller.client_id = caller.client_id.take().or_else(|| e.client_id.clone());
        caller.calls += 1;
        if let Some(scopes) = &e.scopes {
            caller.scopes_recorded = true;
            caller.scopes.extend(scopes.iter().cloned());
        }
        if e.decision == "ALLOW" {
            let used = caller.tools.entry(id.clone()).or_insert((0, String::new()));
            used.0 += 1;
            used.1 = e.action_class.clone().unwrap_or_default();
            caller.policies.entry(id).or_default().extend(e.policy_ids.iter().cloned());
        }
    }
}

/// The configured servers, with their pins and what is held.
pub fn servers(config: &Config, stored: &Stored) -> Vec<ServerView> {
    config
        .servers
        .iter()
        .map(|(name, s)| ServerView {
            name: name.clone(),
            transport: if s.command.is_some() { "stdio" } else { "http" },
            endpoint: match LaunchReview::of(s) {
                Some(r) => r.command_line,
                None => warden_gateway::servers::entry::shown_url(s.url.as_deref().unwrap_or_default()),
            },
            sandbox: match (s.command.is_some(), s.sandbox) {
                (false, _) => "n/a",
                (true, SandboxMode::Strict) => "strict",
                (true, SandboxMode::Off) => "off",
            },
            trusted: s.trusted,
            trusted_content: s.trusted_content,
            credential: credential_kind(s),
            path_roots: s.path_roots.clone(),
            egress: s.egress.clone(),
            pinned: stored.pins.get(name).map_or(0, |p| p.iter().filter(|p| p.kind == "tool").count()),
            held: stored.held.get(name).map_or(0, Vec::len),
            launch: LaunchReview::of(s),
            sandbox_read: s.sandbox_read.iter().map(|p| p.display().to_string()).collect(),
            sandbox_write: s.sandbox_write.iter().map(|p| p.display().to_string()).collect(),
        })
        .collect()
}

/// How Warden authenticates to a server, in a phrase.
pub fn credential_kind(s: &ServerSection) -> String {
    match &s.credential {
        None if s.headers.is_empty() => "none".to_owned(),
        None => format!("static headers ({})", s.headers.keys().cloned().collect::<Vec<_>>().join(", ")),
        Some(c) => {
            if let Some(x) = &c.token_exchange {
                let scopes =
                    if x.scopes.is_empty() { String::new() } else { format!(", scopes {}", x.scopes.join(" ")) };
                format!("token exchange per caller (RFC 8693 at {}{scopes})", x.token_url)
            } else if let Some(o) = &c.oauth {
                let scopes =
                    if o.scopes.is_empty() { String::new() } else { format!(", scopes {}", o.scopes.join(" ")) };
                format!("per-user OAuth (client {}{scopes})", o.client_id)
            } else if let Some(var) = &c.env {
                format!("static token from env {var}")
            } else if let Some(f) = &c.file {
                format!("static token from file {}", f.display())
            } else {
                "none".to_owned()
            }
        }
    }
}

/// The tools: every pinned or held tool definition, and every tool the configuration names that
/// was never seen.
pub fn tools(config: &Config, authorizer: &Authorizer, stored: &Stored) -> Vec<ToolView> {
    let mut definitions: BTreeMap<(String, String), (Value, bool, Option<String>)> = BTreeMap::new();
    for (server, pins) in &stored.pins {
        for p in pins.iter().filter(|p| p.kind == "tool") {
            definitions.insert((server.clone(), p.name.clone()), (p.definition.clone(), true, None));
        }
    }
    for (server, held) in &stored.held {
        for c in held.iter().filter(|c| c.kind == "tool") {
            let key = (server.clone(), c.name.clone());
            match definitions.get_mut(&key) {
                Some(d) => d.2 = Some(c.reason.clone()),
                None => {
                    let def = c.definition.clone().unwrap_or_else(|| serde_json::json!({ "name": c.name }));
                    definitions.insert(key, (def, false, Some(c.reason.clone())));
                }
            }
        }
    }
    for id in config.tools.keys() {
        if let Some((server, tool)) = id.split_once('/')
            && config.servers.contains_key(server)
            && !tool.contains('*')
        {
            definitions
                .entry((server.to_owned(), tool.to_owned()))
                .or_insert_with(|| (serde_json::json!({ "name": tool }), false, None));
        }
    }
    definitions
        .into_iter()
        .map(|((server, name), (definition, pinned, held))| {
            let (facts, settings) = authorizer.tool(&server, &definition);
            let s = config.servers.get(&server);
            let id = format!("{server}/{name}");
            let (calls, last_call) = stored.audit.tool_calls.get(&id).map_or((0, None), |(n, t)| (*n, Some(*t)));
            let out_of_band = settings.approval == Some(warden_gateway::config::ApprovalFlow::OutOfBand)
                || config.approvals.out_of_band_classes.contains(&facts.class);
            ToolView {
                trusted_content: settings.trusted_content.unwrap_or(s.is_some_and(|s| s.trusted_content)),
                path_arguments: settings.path_arguments.clone().unwrap_or_default(),
                url_arguments: settings.url_arguments.clone().unwrap_or_default(),
                server,
                name,
                pinned,
                held,
                facts,
                out_of_band,
                access: Vec::new(),
                calls,
                last_call,
            }
        })
        .collect()
}

/// Whether a class changes state.
pub fn changes_state(class: ToolClass) -> bool {
    class != ToolClass::Read
}
