//! The integrity guard: every tool, prompt, resource and resource-template definition a server
//! lists, and its instructions, is hashed (SHA-256 over RFC 8785 canonical JSON of the whole
//! definition; for a resource, without its `size` and `annotations.lastModified`, which change with
//! its content) and compared with its pin before anything sees it.
//!
//! ```text
//! listed definition ─▶ hash ─▶ pinned?  same hash ─────────────────────────▶ shown, callable
//!                                       other hash (drift) ───────────────▶ held
//!                               no pin ─▶ scanner flags it ────────────────▶ held
//!                                         tofu: pin it ────────────────────▶ shown, callable
//!                                         strict ──────────────────────────▶ held
//! tools of two servers ─▶ confusable names, descriptions about another server's tool ─▶ held
//! ```
//!
//! A held definition is neither listed nor callable (it is unknown, as anything not listed is)
//! until a human reviews it with `warden pins diff SERVER` and accepts it with
//! `warden pins accept SERVER [NAME]`. Each new hold is an audit row (`drift`, or
//! `definition_held` with its reason), a metric and a warning in the log. Pins and held
//! candidates live in the audit database, so several gateways share them.
//!
//! A secret in a definition does not hold it: what clients are shown of every list passes the
//! sanitizing guard, which redacts it (the pin is of the definition as the server sent it, except
//! that a credential Warden sends the server, quoted back in it, is replaced before it gets here:
//! see `sanitize::injected::BeforeReview`).

use super::audit::Auditor;
use crate::catalogue::ListKind;
use crate::config::{Config, PinMode};
use crate::error::GatewayError;
use crate::servers::ListReview;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use warden_inspect::canonical::definition_hash;
use warden_inspect::poison::{
    CrossFinding, DefinitionKind, Exposed, Family, Finding, PoisonScanner, Severity, cross_server,
};
use warden_store::PinStorage;

/// The pin kind of a list's items.
fn pin_kind(kind: ListKind) -> (&'static str, DefinitionKind) {
    match kind {
        ListKind::Tools => ("tool", DefinitionKind::Tool),
        ListKind::Prompts => ("prompt", DefinitionKind::Prompt),
        ListKind::Templates => ("resource_template", DefinitionKind::ResourceTemplate),
        ListKind::Resources => ("resource", DefinitionKind::Resource),
    }
}

/// What of a definition is pinned: all of it, but for a resource's members that change with its
/// content (`size`, `annotations.lastModified`).
fn pinned_part<'a>(pin_kind: &str, item: &'a Value) -> std::borrow::Cow<'a, Value> {
    if pin_kind != "resource" {
        return std::borrow::Cow::Borrowed(item);
    }
    let mut stable = item.clone();
    if let Some(obj) = stable.as_object_mut() {
        obj.remove("size");
        if let Some(annotations) = obj.get_mut("annotations").and_then(Value::as_object_mut) {
            annotations.remove("lastModified");
        }
    }
    std::borrow::Cow::Owned(stable)
}

/// Why a definition is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Pinned with another hash.
    Drift,
    /// Not pinned, and the scanner flags it.
    Poisoned,
    /// Not pinned, on a `strict` server.
    New,
    /// Its name is confusable with another server's tool, or its description speaks of one.
    CrossServer,
    /// It cannot be hashed unambiguously (for example an integer beyond 2^53).
    Unhashable,
}

impl Hold {
    fn as_str(self) -> &'static str {
        match self {
            Hold::Drift => "drift",
            Hold::Poisoned => "poisoned",
            Hold::New => "new",
            Hold::CrossServer => "cross_server",
            Hold::Unhashable => "unhashable",
        }
    }
}

/// Pins, scans and holds definitions.
pub struct Integrity {
    store: Arc<dyn PinStorage>,
    scanner: PoisonScanner,
    block_at: Severity,
    modes: HashMap<String, PinMode>,
    auditor: Arc<Auditor>,
    /// Each server's tools as last shown, for the cross-server checks.
    shown_tools: Mutex<HashMap<String, Vec<(String, String)>>>,
}

impl std::fmt::Debug for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrity")
            .field("block_at", &self.block_at)
            .field("modes", &self.modes)
            .finish_non_exhaustive()
    }
}

impl Integrity {
    /// The guard for a configuration, keeping pins in `store`.
    pub fn new(config: &Config, store: Arc<dyn PinStorage>, auditor: Arc<Auditor>) -> Result<Integrity, GatewayError> {
        let block_at = config.integrity.block_at.parse::<Severity>().map_err(|_| {
            GatewayError::Config(format!("integrity.block_at: {:?} is not a severity", config.integrity.block_at))
        })?;
        Ok(Integrity {
            store,
            scanner: PoisonScanner::new(),
            block_at,
            modes: config.servers.iter().map(|(name, s)| (name.clone(), s.pinning)).collect(),
            auditor,
            shown_tools: Mutex::new(HashMap::new()),
        })
    }

    /// Closes the pin store's connections.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// Reviews a list as fetched from `server`: what may be shown and called, in order.
    pub async fn review(&self, server: &str, kind: ListKind, items: Vec<Value>) -> Vec<Value> {
        let (pin_kind, def_kind) = pin_kind(kind);
        let pins: HashMap<String, String> = match self.store.pins(server).await {
            Ok(p) => p.into_iter().filter(|p| p.kind == pin_kind).map(|p| (p.name, p.hash)).collect(),
            Err(e) => {
                // Without the pins nothing can be checked: show nothing.
                tracing::error!(%server, "definitions held: the pins cannot be read: {e}");
                return vec![];
            }
        };
        let mut kept = Vec::with_capacity(items.len());
        let mut seen = HashSet::new();
        for item in items {
            let Some(name) = item.get(kind.key()).and_then(Value::as_str).map(str::to_owned) else { continue };
            if !seen.insert(name.clone()) {
                continue;
            }
            if self.judge(server, pin_kind, def_kind, &name, &item, pins.get(&name)).await {
                kept.push(item);
            }
        }
        for name in pins.keys().filter(|n| !seen.contains(*n)) {
            self.removed(server, pin_kind, name).await;
        }
        if kind == ListKind::Tools {
            kept = self.check_across_servers(server, kept).await;
        }
        kept
    }

    /// Whether one definition may be shown, pinning it on first sight in `tofu` mode.
    async fn judge(
        &self,
        server: &str,
        pin_kind: &str,
        def_kind: DefinitionKind,
        name: &str,
        item: &Value,
        pinned: Option<&String>,
    ) -> bool {
        let Ok(hash) = definition_hash(&pinned_part(pin_kind, item)) else {
            self.hold(server, pin_kind, name, "", item, Hold::Unhashable, &[]).await;
            return false;
        };
        if pinned == Some(&hash) {
            return true;
        }
        let findings = self.scanner.scan(def_kind, item);
        if pinned.is_some() {
            self.hold(server, pin_kind, name, &hash, item, Hold::Drift, &findings).await;
            return false;
        }
        if findings.iter().any(|f| f.severity >= self.block_at) {
            self.hold(server, pin_kind, name, &hash, item, Hold::Poisoned, &findings).await;
            return false;
        }
        if self.modes.get(server).copied().unwrap_or_default() == PinMode::Strict {
            self.hold(server, pin_kind, name, &hash, item, Hold::New, &findings).await;
            return false;
        }
        match self.store.pin_if_absent(server, pin_kind, name, &hash, item, "tofu").await {
            Ok(true) => {
                tracing::info!(%server, kind = pin_kind, name = %crate::names::shown(name), "pinned on first sight");
                self.auditor
                    .integrity_event("definition_pinned", server, pin_kind, name, &format!("tofu: {hash}"), None)
                    .await;
                true
            }
            // Another gateway pinned it first: it stands only if it pinned the same definition.
            Ok(false) => match self.store.pins(server).await {
                Ok(p) => p.iter().any(|p| p.kind == pin_kind && p.name == name && p.hash == hash),
                Err(_) => false,
            },
            Err(e) => {
                tracing::error!(%server, "definition held: it could not be pinned: {e}");
                false
            }
        }
    }

    /// Records a held definition; the first time it is seen, audits and counts it.
    #[allow(clippy::too_many_arguments)]
    async fn hold(
        &self,
        server: &str,
        pin_kind: &str,
        name: &str,
        hash: &str,
        item: &Value,
        why: Hold,
        findings: &[Finding],
    ) {
        let findings_json = findings_json(findings);
        let first = self
            .store
            .record_candidate(server, pin_kind, name, hash, Some(item), why.as_str(), &findings_json)
            .await
            .unwrap_or_else(|e| {
                tracing::error!(%server, "a held definition could not be recorded: {e}");
                false
            });
        if !first {
            return;
        }
        let shown = crate::names::shown(name);
        let evidence = evidence(findings.iter().filter(|f| f.severity >= self.block_at));
        let reason = match why {
            Hold::Drift => "its definition changed since it was pinned".to_owned(),
            Hold::Poisoned => format!("the poisoning scanner flags it ({evidence})"),
            Hold::New => "it is new and this server's pins are strict".to_owned(),
            Hold::CrossServer => format!("its name or description collides with another server's tool ({evidence})"),
            Hold::Unhashable => "it cannot be hashed unambiguously".to_owned(),
        };
        tracing::warn!(%server, kind = pin_kind, name = %shown, "definition held until reviewed: {reason}; see `warden pins diff {server}`");
        if why == Hold::Drift {
            self.auditor.metrics.drift_events.inc();
        }
        let event = if why == Hold::Drift { "drift" } else { "definition_held" };
        self.auditor
            .integrity_event(event, server, pin_kind, name, &format!("{}: {reason}", why.as_str()), Some(findings_json))
            .await;
    }

    /// A pinned definition the server no longer lists: reported once, and nothing else changes.
    async fn removed(&self, server: &str, pin_kind: &str, name: &str) {
        let first =
            self.store.record_candidate(server, pin_kind, name, "", None, "removed", &json!([])).await.unwrap_or(false);
        if first {
            tracing::warn!(%server, kind = pin_kind, name = %crate::names::shown(name), "a pinned definition is no longer listed");
            self.auditor.integrity_event("definition_removed", server, pin_kind, name, "removed", None).await;
        }
    }

    /// Holds this server's tools whose names are confusable with another server's shown tools,
    /// or whose descriptions speak of another server's tools. What was shown first stands.
    async fn check_across_servers(&self, server: &str, kept: Vec<Value>) -> Vec<Value> {
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let mine: Vec<(String, String)> = kept.iter().map(|t| (text(t, "name"), text(t, "description"))).collect();
        let mut offenders: HashMap<String, Vec<Finding>> = HashMap::new();
        {
            let shown = self.shown_tools.lock().unwrap_or_else(|p| p.into_inner());
            let mut exposed: Vec<Exposed<'_>> =
                mine.iter().map(|(n, d)| Exposed { server, name: n, description: d }).collect();
            for (other, tools) in shown.iter().filter(|(s, _)| s.as_str() != server) {
                exposed.extend(tools.iter().map(|(n, d)| Exposed { server: other, name: n, description: d }));
            }
            for f in cross_server(&exposed).into_iter().filter(|f| f.severity >= self.block_at) {
                if let Some(name) = offender(&f, server) {
                    offenders.entry(name).or_default().push(cross_finding(&f, server));
                }
            }
        }
        let mut shown_now = Vec::new();
        let mut result = Vec::with_capacity(kept.len());
        for (item, (name, description)) in kept.into_iter().zip(mine) {
            if let Some(findings) = offenders.get(&name) {
                let hash = definition_hash(&item).unwrap_or_default();
                self.hold(server, "tool", &name, &hash, &item, Hold::CrossServer, findings).await;
                continue;
            }
            shown_now.push((name, description));
            result.push(item);
        }
        self.shown_tools.lock().unwrap_or_else(|p| p.into_inner()).insert(server.to_owned(), shown_now);
        result
    }

    /// Whether a server's instructions may be passed to clients (pinned like a definition).
    pub async fn review_instructions(&self, server: &str, text: &str) -> bool {
        let item = json!({ "instructions": text });
        let pinned = match self.store.pins(server).await {
            Ok(p) => p.into_iter().find(|p| p.kind == "instructions").map(|p| p.hash),
            Err(e) => {
                tracing::error!(%server, "instructions held: the pins cannot be read: {e}");
                return false;
            }
        };
        self.judge(server, "instructions", DefinitionKind::Instructions, "", &item, pinned.as_ref()).await
    }
}

#[async_trait::async_trait]
impl ListReview for Integrity {
    async fn review(&self, server: &str, kind: ListKind, items: Vec<Value>) -> Vec<Value> {
        Integrity::review(self, server, kind, items).await
    }
}

/// The audit row's account of a hold: each finding's rule, family, pointer and span, and
/// the first finding's explanation and excerpt (the rest are in `warden pins diff`).
fn evidence<'f>(findings: impl Iterator<Item = &'f Finding>) -> String {
    let findings: Vec<&Finding> = findings.collect();
    let mut parts: Vec<String> = findings
        .iter()
        .take(8)
        // The pointer is built from the server's keys: quoted and escaped like any server text.
        .map(|f| format!("{} [{}] at {:?} bytes {}..{}", f.rule, f.family, f.pointer, f.span.start, f.span.end))
        .collect();
    if findings.len() > 8 {
        parts.push(format!("{} more", findings.len() - 8));
    }
    let mut out = parts.join("; ");
    if let Some(first) = findings.first() {
        out.push_str(&format!(". {} Text: {:?}. Check: {}", first.explanation, first.excerpt, first.check()));
    }
    out
}

/// Which tool of `server` a cross-server finding holds, if any: for a description naming another
/// server's tool, the describing tool; for look-alike names, the tool of the server reviewed now
/// (the other was shown first).
fn offender(f: &CrossFinding, server: &str) -> Option<String> {
    let ((named_server, describing_server), (named, describing)) = (&f.servers, &f.names);
    if f.rule == "shadowing.mentions_foreign_tool" {
        return (describing_server == server).then(|| describing.clone());
    }
    if named_server == server && describing_server != server {
        Some(named.clone())
    } else if describing_server == server && named_server != server {
        Some(describing.clone())
    } else {
        None
    }
}

/// A cross-server finding as a finding on the held tool of `server`, naming the other tool.
fn cross_finding(f: &CrossFinding, server: &str) -> Finding {
    let (other_server, other_name) =
        if f.servers.0 == server { (&f.servers.1, &f.names.1) } else { (&f.servers.0, &f.names.0) };
    let pointer = if f.rule == "shadowing.mentions_foreign_tool" || f.family == Family::Overlap {
        "/description"
    } else {
        "/name"
    };
    Finding {
        rule: f.rule,
        family: f.family,
        severity: f.severity,
        pointer: pointer.to_owned(),
        span: 0..0,
        excerpt: format!("the other tool: {other_name:?} of server {other_server:?}"),
        decoded: None,
        explanation: f.explanation.clone(),
    }
}

/// Findings as stored with a held definition and shown by `warden pins diff`.
fn findings_json(findings: &[Finding]) -> Value {
    Value::Array(
        findings
            .iter()
            .map(|f| {
                json!({
                    "rule": f.rule,
                    "family": f.family.as_str(),
                    "check": f.check(),
                    "severity": f.severity.as_str(),
                    "pointer": f.pointer,
                    "span": [f.span.start, f.span.end],
                    "excerpt": f.excerpt,
                    "decoded": f.decoded,
                    "explanation": f.explanation,
                })
            })
            .collect(),
    )
}
