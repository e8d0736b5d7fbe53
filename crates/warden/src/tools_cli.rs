//! `warden tools review SERVER`: each tool's annotations, the class Warden gives it now and the
//! class its annotations propose, and adopting the proposals in one step.
//!
//! A server that is not `trusted` is not believed about its own tools: every tool is `write`,
//! so once a context has read untrusted content even its reads wait for approval. The operator
//! can read what the server claims and adopt it here; an adopted class is written to the
//! configuration with the hash of the definition it was adopted for, so a later change of that
//! definition (its annotations, say) is drift the integrity guard holds, and once accepted the
//! class no longer applies until it is reviewed again.

use clap::Subcommand;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;
use warden_gateway::config::{Config, ToolClass, tool_settings};
use warden_gateway::servers::probe::probe;
use warden_inspect::poison::{DefinitionKind, PoisonScanner, is_flagged};

/// `warden tools` subcommands.
#[derive(Subcommand)]
pub enum ToolsCommand {
    /// Each tool of SERVER: its annotations, its class now, and the class they propose.
    Review {
        /// The server's configured name.
        server: String,
        /// Write the proposed classes into the configuration file, each bound to the definition
        /// it was proposed for. Classes the configuration sets by hand are kept.
        #[arg(long)]
        adopt: bool,
        /// Start the server (sandboxed, as Warden would) and list its tools now, instead of
        /// reading the definitions Warden has pinned.
        #[arg(long)]
        connect: bool,
        /// How long the server may take to start and list, in seconds (with --connect).
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

/// One tool's review.
#[derive(Debug, Clone)]
pub struct Proposal {
    /// The tool's name.
    pub tool: String,
    /// Its annotations, in a line (`readOnly`, `destructive`, …; `-` for none).
    pub annotations: String,
    /// The class Warden gives it now.
    pub now: ToolClass,
    /// Why it has that class.
    pub source: ClassSource,
    /// The class its annotations propose.
    pub proposed: ToolClass,
    /// Why the proposal is what it is, when it is not simply the annotations.
    pub note: Option<String>,
    /// `sha256:` of the definition.
    pub hash: String,
}

/// Where a tool's class comes from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassSource {
    /// Set in the configuration by hand (no `definition`).
    Configured,
    /// Adopted for this very definition (possibly edited by hand since: it is kept).
    Adopted,
    /// Adopted for another definition: it does not apply.
    Stale,
    /// The annotations of a trusted server.
    Annotations,
    /// Nothing says otherwise: `write`.
    Default,
}

impl Proposal {
    /// Whether adopting changes anything: the proposal differs from the class now, and that
    /// class is not one a person set or adopted for this definition (never overwritten).
    pub fn adoptable(&self) -> bool {
        self.proposed != self.now
            && matches!(self.source, ClassSource::Stale | ClassSource::Default | ClassSource::Annotations)
    }
}

/// Reviews the tool definitions `tools` of server `server` under `config`.
pub fn review(config: &Config, server: &str, tools: &[Value]) -> Vec<Proposal> {
    let scanner = PoisonScanner::new();
    let trusted = config.servers.get(server).is_some_and(|s| s.trusted);
    let mut out: Vec<Proposal> = tools
        .iter()
        .filter_map(|t| {
            let name = t.get("name").and_then(Value::as_str)?.to_owned();
            let hash = warden_inspect::canonical::definition_hash(t).ok()?;
            let annotations = t.get("annotations").filter(|a| a.is_object());
            let settings = tool_settings(&config.tools, server, &name);
            let bound = settings.definition.as_deref().is_none_or(|d| d == hash);
            // As the gateway decides: a class adopted for another definition gives way to the
            // server's `*` class, if any.
            let server_default = config.tools.get(&format!("{server}/*")).and_then(|d| d.class);
            let configured = if bound { settings.class } else { server_default };
            let now = ToolClass::decide(configured, trusted, annotations);
            let source = match (configured, &settings.definition) {
                _ if !bound => ClassSource::Stale,
                (Some(_), Some(_)) => ClassSource::Adopted,
                (Some(_), None) => ClassSource::Configured,
                (None, _) if trusted && annotations.is_some() => ClassSource::Annotations,
                _ => ClassSource::Default,
            };
            let (mut proposed, mut note) = propose(annotations);
            if !bound {
                note = Some("the class adopted earlier was for another definition".to_owned());
            }
            let findings = scanner.scan(DefinitionKind::Tool, t);
            if is_flagged(&findings) && proposed == ToolClass::Read {
                proposed = ToolClass::Write;
                let rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
                note = Some(format!("not read: its definition is flagged ({})", rules.join(", ")));
            }
            Some(Proposal { tool: name, annotations: describe(annotations), now, source, proposed, note, hash })
        })
        .collect();
    out.sort_by(|a, b| a.tool.cmp(&b.tool));
    out
}

/// The class a tool's annotations propose, and why when it is not simply what they say. `read`
/// only for a tool that says it is read-only, not destructive, and closed to the open world
/// (`openWorldHint: false`; the protocol's default is open): a read-only tool that reaches the
/// open world (fetching a URL, searching the web) can carry what a tainted context read out of
/// it, so it stays `write` and keeps needing approval there.
fn propose(annotations: Option<&Value>) -> (ToolClass, Option<String>) {
    let hint = |k: &str| annotations.and_then(|a| a.get(k)).and_then(Value::as_bool);
    if hint("destructiveHint") == Some(true) && hint("readOnlyHint") != Some(true) {
        return (ToolClass::Irreversible, None);
    }
    if hint("readOnlyHint") != Some(true) {
        return (ToolClass::Write, None);
    }
    if hint("destructiveHint") == Some(true) {
        return (ToolClass::Write, Some("not read: it says it is both read-only and destructive".to_owned()));
    }
    if hint("openWorldHint") != Some(false) {
        return (ToolClass::Write, Some("not read: it reaches the open world (openWorldHint is not false)".to_owned()));
    }
    (ToolClass::Read, None)
}

/// Annotations in a line: the hints that are set, then the title.
fn describe(annotations: Option<&Value>) -> String {
    let Some(a) = annotations else { return "-".to_owned() };
    let mut parts = vec![];
    for (key, word) in [
        ("readOnlyHint", "readOnly"),
        ("destructiveHint", "destructive"),
        ("idempotentHint", "idempotent"),
        ("openWorldHint", "openWorld"),
    ] {
        match a.get(key).and_then(Value::as_bool) {
            Some(true) => parts.push(word.to_owned()),
            Some(false) => parts.push(format!("!{word}")),
            None => {}
        }
    }
    if parts.is_empty() { "-".to_owned() } else { parts.join(" ") }
}

/// The review as a table.
pub fn render(server: &str, source: &str, proposals: &[Proposal]) -> String {
    let mut out = format!("server {server}: {} tools ({source})\n", proposals.len());
    let width = proposals.iter().map(|p| p.tool.chars().count()).max().unwrap_or(4).clamp(4, 40);
    let _ = writeln!(out, "  {:width$}  {:44}  {:13}  PROPOSED", "TOOL", "ANNOTATIONS", "NOW");
    for p in proposals {
        let name = warden_gateway::servers::printable(&p.tool);
        let now = format!("{}{}", p.now, if p.source == ClassSource::Default { "" } else { "*" });
        let mark = if p.adoptable() { "  <- adopt" } else { "" };
        let _ = writeln!(out, "  {name:width$}  {:44}  {now:13}  {}{mark}", p.annotations, p.proposed);
        if let Some(n) = &p.note {
            let _ = writeln!(out, "  {:width$}  ({n})", "");
        }
    }
    out.push_str("  (* set by the configuration or the server's own annotations)\n");
    out
}

/// Writes the adoptable proposals into the configuration file at `path`, keeping its comments
/// and layout; returns how many were written. The file is checked before it is replaced.
pub fn adopt(path: &Path, server: &str, proposals: &[Proposal]) -> anyhow::Result<usize> {
    let text = std::fs::read_to_string(path)?;
    let mut doc: toml_edit::DocumentMut = text.parse()?;
    let adopted = write_classes(&mut doc, server, proposals);
    if adopted == 0 {
        return Ok(0);
    }
    let new = doc.to_string();
    Config::parse(&new, &path.display().to_string())
        .map_err(|e| anyhow::anyhow!("the configuration would not load after adopting ({e}); it was left as it was"))?;
    replace_file(path, &new)?;
    Ok(adopted)
}

/// Replaces the file at `path` (the file a symbolic link names, if it is one) with `text`
/// atomically: written beside it under a new name with the original's permissions (a
/// configuration readable only by its owner stays so), synced, then renamed over it.
fn replace_file(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let real = std::fs::canonicalize(path)?;
    let permissions = std::fs::metadata(&real)?.permissions();
    let dir = real.parent().ok_or_else(|| anyhow::anyhow!("{} has no directory", real.display()))?;
    let name = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.{:x}", std::process::id(), rand::random::<u64>()));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
    let written = (|| -> std::io::Result<()> {
        file.set_permissions(permissions)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, &real)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(written?)
}

/// Sets `[tools."server/tool"] class` and `definition` in `doc` for each adoptable proposal.
pub fn write_classes(doc: &mut toml_edit::DocumentMut, server: &str, proposals: &[Proposal]) -> usize {
    let tools = doc.entry("tools").or_insert_with(|| {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        toml_edit::Item::Table(t)
    });
    let Some(tools) = tools.as_table_like_mut() else { return 0 };
    let mut n = 0;
    for p in proposals.iter().filter(|p| p.adoptable()) {
        let key = format!("{server}/{}", p.tool);
        let entry = tools.entry(&key).or_insert(toml_edit::Item::Table(toml_edit::Table::new()));
        let Some(table) = entry.as_table_like_mut() else { continue };
        table.insert("class", toml_edit::value(p.proposed.as_str()));
        table.insert("definition", toml_edit::value(p.hash.as_str()));
        n += 1;
    }
    n
}

/// Runs `warden tools …` against the configuration at `path`.
pub async fn run(path: &Path, config: &Config, command: ToolsCommand) -> anyhow::Result<i32> {
    let ToolsCommand::Review { server, adopt: write, connect, timeout } = command;
    if !config.servers.contains_key(&server) {
        anyhow::bail!("no server named {server:?} is configured");
    }
    let mut source = "pinned definitions".to_owned();
    let mut tools = vec![];
    if !connect {
        let url = warden_gateway::guard::audit::audit_url(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let store =
            warden_store::pins::PinStore::open(&url).await.map_err(|e| anyhow::anyhow!("the pin store: {e}"))?;
        let pins = store.pins(&server).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let held = store.candidates(&server).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        tools = pins.into_iter().filter(|p| p.kind == "tool").map(|p| p.definition).collect();
        if !held.is_empty() {
            source =
                format!("pinned definitions; {} held for review: see `warden pins diff {server}` first", held.len());
        }
    }
    if tools.is_empty() {
        if !connect {
            eprintln!("no definitions of {server} are pinned yet: starting it to list its tools");
        }
        let listing = probe(config, &server, Duration::from_secs(timeout)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        tools = listing.tools;
        source = "listed just now".to_owned();
    }
    let proposals = review(config, &server, &tools);
    print!("{}", render(&server, &source, &proposals));
    let adoptable = proposals.iter().filter(|p| p.adoptable()).count();
    if write {
        let n = adopt(path, &server, &proposals)?;
        println!("adopted {n} classes into {}, each bound to its definition", path.display());
    } else if adoptable > 0 {
        println!("adopt these {adoptable} with: warden tools review {server} --adopt");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn read_is_proposed_only_for_closed_read_only_tools() {
        let p = |a: Value| propose(Some(&a)).0;
        assert_eq!(p(json!({ "readOnlyHint": true, "openWorldHint": false })), ToolClass::Read);
        assert_eq!(p(json!({ "readOnlyHint": true })), ToolClass::Write, "open world by default");
        assert_eq!(p(json!({ "readOnlyHint": true, "openWorldHint": true })), ToolClass::Write);
        assert_eq!(
            p(json!({ "readOnlyHint": true, "destructiveHint": true, "openWorldHint": false })),
            ToolClass::Write
        );
        assert_eq!(p(json!({ "destructiveHint": true })), ToolClass::Irreversible);
        assert_eq!(p(json!({})), ToolClass::Write);
        assert_eq!(propose(None).0, ToolClass::Write);
    }

    #[test]
    fn a_class_set_or_adopted_by_a_person_is_never_overwritten() {
        let hash = warden_inspect::canonical::definition_hash(&json!({"name": "t"})).unwrap();
        let tool = json!({ "name": "t", "inputSchema": { "type": "object" },
                           "annotations": { "readOnlyHint": true, "openWorldHint": false } });
        let tool_hash = warden_inspect::canonical::definition_hash(&tool).unwrap();
        let config =
            |extra: &str| Config::parse(&format!("[servers.s]\ncommand = \"x\"\n\n{extra}"), "w.toml").unwrap();
        let one = |c: &Config| review(c, "s", std::slice::from_ref(&tool)).remove(0);
        assert!(one(&config("")).adoptable());
        let by_hand = config("[tools.\"s/t\"]\nclass = \"irreversible\"\n");
        assert!(!one(&by_hand).adoptable());
        let tightened = config(&format!("[tools.\"s/t\"]\nclass = \"irreversible\"\ndefinition = \"{tool_hash}\"\n"));
        assert!(!one(&tightened).adoptable(), "adopted for this definition, then tightened by hand");
        let stale = config(&format!(
            "[tools.\"s/*\"]\nclass = \"irreversible\"\n\n[tools.\"s/t\"]\nclass = \"read\"\ndefinition = \"{hash}\"\n"
        ));
        let p = one(&stale);
        assert_eq!(p.source, ClassSource::Stale);
        assert_eq!(p.now, ToolClass::Irreversible, "a stale adoption gives way to the server's * class");
        assert!(p.adoptable());
    }

    #[cfg(unix)]
    #[test]
    fn adopting_keeps_the_files_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("warden-adopt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("warden.toml");
        std::fs::write(&path, "# mine\n[servers.s]\ncommand = \"x\"\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = Config::load(&path).unwrap();
        let tool = serde_json::json!({ "name": "t", "inputSchema": { "type": "object" },
                                        "annotations": { "readOnlyHint": true, "openWorldHint": false } });
        let proposals = review(&config, "s", &[tool]);
        assert_eq!(adopt(&path, "s", &proposals).unwrap(), 1);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# mine\n") && text.contains("class = \"read\""), "{text}");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
