//! `warden scan`: an inventory of the MCP servers the clients on this machine are configured
//! with, and what is wrong with them — servers that do not go through Warden (R10), dangerous
//! commands, credentials in plain text, URLs in the clear or to private and metadata addresses,
//! names that collide or imitate one another, and with `--connect`, poisoned tool definitions.
//!
//! No gateway needs to run. Files are only read; with `--connect` each server is started once,
//! sandboxed, exactly as the gateway would start it ([`warden_gateway::servers::probe`]).
//! Credentials are reported by kind, never by value, in every output.

mod checks;
mod connect;
mod discover;
mod formats;
mod jsonc;
mod output;
mod sarif;

use anyhow::Context as _;
use discover::{Client, Scope};
use formats::{Entry, Format};
use std::path::{Path, PathBuf};
use warden_gateway::config::Config;
use warden_gateway::servers::{Flag, Severity};
use warden_inspect::secrets::SecretScanner;

/// Largest configuration file read (`~/.claude.json` keeps history and grows).
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Files under a directory of block files read at most.
const MAX_DIR_FILES: usize = 256;

/// Server entries checked in all: more is not a configuration people write, and the name checks
/// compare every pair.
const MAX_SERVERS: usize = 2000;

/// Arguments of `warden scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Read these files instead of looking in the clients' usual places (the format is told
    /// from the file's name and content).
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The project whose configuration files are read (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// A Warden gateway's URL: entries pointing at it go through Warden (repeatable; the
    /// configuration's `gateway.listen` counts too).
    #[arg(long = "gateway", value_name = "URL")]
    pub gateways: Vec<String>,
    /// Do not look up URL host names (no DNS queries).
    #[arg(long)]
    pub no_resolve: bool,
    /// Start each server (sandboxed, as the gateway would), list what it offers and scan its
    /// definitions for poisoning.
    #[arg(long)]
    pub connect: bool,
    /// Seconds each server has to start and list what it offers (with --connect).
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub timeout: u64,
    /// Start this server with --connect although a critical finding was made about it
    /// (repeatable).
    #[arg(long = "accept-risk", value_name = "NAME")]
    pub accept_risk: Vec<String>,
    /// Print JSON (see docs/scan.md) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also write SARIF 2.1.0 to FILE (`-`: to standard output instead of the table).
    #[arg(long, value_name = "FILE")]
    pub sarif: Option<String>,
    /// Exit 1 when a finding is at least this severe: info, low, medium, high, critical.
    #[arg(long, default_value = "high", value_parser = parse_severity, value_name = "SEVERITY")]
    pub fail_on: Severity,
    /// List every place looked at.
    #[arg(long, short)]
    pub verbose: bool,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.to_ascii_lowercase().parse::<Severity>().map_err(|e| e.to_string())
}

/// A configuration file that was looked for.
#[derive(Debug, Clone)]
pub struct Looked {
    /// Its client.
    pub client: Client,
    /// Its scope.
    pub scope: Scope,
    /// Where.
    pub path: PathBuf,
    /// Whether it exists and was read.
    pub found: bool,
    /// Servers found in it.
    pub servers: usize,
}

/// One configured server, where it is configured.
#[derive(Debug, Clone)]
pub struct Server {
    /// Its index in the report.
    pub id: usize,
    /// The client.
    pub client: Client,
    /// User, project or given.
    pub scope: Scope,
    /// The file.
    pub file: PathBuf,
    /// The 1-based line of its name in the file, when found.
    pub line: Option<usize>,
    /// The entry.
    pub entry: Entry,
    /// It runs `warden run` or points at a Warden gateway.
    pub through_warden: bool,
    /// Its command line, secrets redacted, or its URL without user information or query.
    pub shown: String,
}

/// Something found, about a server (and maybe one of its tools) or about a file.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The server it is about ([`Server::id`]).
    pub server: Option<usize>,
    /// The file it is about when it is about no server.
    pub file: Option<PathBuf>,
    /// The tool, prompt or resource it is about (with --connect).
    pub item: Option<String>,
    /// The rule's id.
    pub rule: &'static str,
    /// How serious it is.
    pub severity: Severity,
    /// What was found, with credentials redacted.
    pub message: String,
}

impl Finding {
    /// A finding about server `s`.
    pub fn server(s: &Server, flag: Flag) -> Finding {
        Finding {
            server: Some(s.id),
            file: None,
            item: None,
            rule: flag.rule,
            severity: flag.severity,
            message: flag.message,
        }
    }
}

/// The whole report.
#[derive(Debug, Default)]
pub struct Report {
    /// Every place looked at.
    pub looked: Vec<Looked>,
    /// Every server found.
    pub servers: Vec<Server>,
    /// Every finding.
    pub findings: Vec<Finding>,
    /// What each server listed (with --connect), by server id.
    pub listings: std::collections::BTreeMap<usize, connect::Summary>,
    /// The home directory and project looked in (empty when files were given).
    pub roots: Option<(PathBuf, PathBuf)>,
}

/// A usage error: exit 2 with this message.
struct Usage(String);

/// Runs `warden scan`; the exit code.
pub async fn run(args: ScanArgs, config: Option<&Path>) -> anyhow::Result<i32> {
    match scan(&args, config).await {
        Ok(report) => emit(&args, &report),
        Err(Usage(m)) => {
            eprintln!("warden scan: {m}");
            Ok(2)
        }
    }
}

async fn scan(args: &ScanArgs, config_path: Option<&Path>) -> Result<Report, Usage> {
    if args.json && args.sarif.as_deref() == Some("-") {
        return Err(Usage("--json and --sarif - both write to standard output: give --sarif a file".into()));
    }
    let config = match config_path {
        Some(p) => Some(Config::load(p).map_err(|e| Usage(format!("the Warden configuration: {e}")))?),
        // The usual file, when there is one; a scan needs none.
        None => Some(Path::new("warden.toml")).filter(|p| p.exists()).and_then(|p| Config::load(p).ok()),
    };
    let mut gateways = vec![];
    for g in &args.gateways {
        gateways.push(checks::Gateway::parse(g).ok_or_else(|| Usage(format!("--gateway {g:?} is not a URL")))?);
    }
    gateways.extend(config.as_ref().and_then(|c| checks::Gateway::parse(&c.gateway.listen)));
    let mut report = Report::default();
    let mut read: Vec<(Client, Scope, PathBuf, Format, String)> = vec![];
    if args.files.is_empty() {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .ok_or_else(|| Usage("$HOME is not set: give the files to read instead".into()))?;
        let project = match &args.project {
            Some(p) if !p.is_dir() => return Err(Usage(format!("--project {}: not a directory", p.display()))),
            Some(p) => p.clone(),
            None => std::env::current_dir().map_err(|e| Usage(format!("the current directory: {e}")))?,
        };
        let env_path = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty()).map(PathBuf::from);
        let (xdg, codex) = (env_path("XDG_CONFIG_HOME"), env_path("CODEX_HOME"));
        for c in discover::candidates(discover::Os::current(), &home, xdg.as_deref(), codex.as_deref(), &project) {
            // A project in the home directory names some files twice.
            if report.looked.iter().any(|l| l.path == c.path) {
                continue;
            }
            let files = if c.dir { dir_files(&c.path) } else { vec![c.path.clone()] };
            report.looked.push(Looked {
                client: c.client,
                scope: c.scope,
                path: c.path.clone(),
                found: false,
                servers: 0,
            });
            for f in files {
                match read_file(&f) {
                    Ok(Some(text)) => read.push((c.client, c.scope, f, c.format, text)),
                    Ok(None) => {}
                    Err(e) => report.findings.push(file_finding(&f, e)),
                }
            }
        }
        report.roots = Some((home, project));
    } else {
        for f in &args.files {
            let text = read_file(f).map_err(Usage)?.ok_or_else(|| Usage(format!("{}: no such file", f.display())))?;
            let (client, format) = discover::given(f, &text);
            report.looked.push(Looked { client, scope: Scope::Given, path: f.clone(), found: false, servers: 0 });
            read.push((client, Scope::Given, f.clone(), format, text));
        }
    }
    let secrets = SecretScanner::new();
    let ctx = checks::Context { config: config.as_ref(), resolve: !args.no_resolve, secrets: &secrets };
    for (client, scope, path, format, text) in read {
        let entries = match formats::parse(format, &text) {
            Ok(e) => e,
            Err(e) => {
                report.findings.push(file_finding(&path, e));
                continue;
            }
        };
        if let Some(l) = report.looked.iter_mut().find(|l| path.starts_with(&l.path) && l.client == client) {
            l.found = true;
            l.servers += entries.len();
        }
        let room = MAX_SERVERS.saturating_sub(report.servers.len());
        if entries.len() > room {
            report.findings.push(file_finding(
                &path,
                format!(
                    "holds more server entries than a scan checks ({MAX_SERVERS} in all): the rest were not checked"
                ),
            ));
        }
        for entry in entries.into_iter().take(room) {
            let id = report.servers.len();
            let through = checks::through_warden(&entry, &gateways);
            let server = Server {
                id,
                client,
                scope,
                line: output::line_of(&text, format, &entry),
                file: path.clone(),
                shown: output::shown(&entry, &secrets),
                through_warden: through,
                entry,
            };
            let flags = checks::entry_flags(&server.entry, through, &ctx);
            report.findings.extend(flags.into_iter().map(|f| Finding::server(&server, f)));
            report.servers.push(server);
        }
    }
    report.findings.extend(checks::name_findings(&report.servers));
    if args.connect {
        let timeout = std::time::Duration::from_secs(args.timeout.max(1));
        connect::connect(&mut report, &args.accept_risk, timeout).await;
    }
    // A last pass: no credential leaves in any message, whatever check wrote it.
    for f in &mut report.findings {
        f.message = secrets.redact_str(&f.message).0.into_owned();
    }
    report.findings.sort_by(|a, b| (a.server, b.severity).cmp(&(b.server, a.severity)));
    Ok(report)
}

/// The finding for a configuration file that could not be read or parsed.
fn file_finding(path: &Path, why: String) -> Finding {
    Finding {
        server: None,
        file: Some(path.to_owned()),
        item: None,
        rule: "unreadable-config",
        severity: Severity::Low,
        message: format!("could not be read: {why}"),
    }
}

/// The text of `path`; `None` when it does not exist.
fn read_file(path: &Path) -> Result<Option<String>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if !meta.is_file() {
        return Err(format!("{}: not a file", path.display()));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!("{}: larger than {} MiB", path.display(), MAX_FILE_BYTES >> 20));
    }
    // Bounded even if the file grows after its size was read.
    let mut text = String::new();
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_FILE_BYTES + 1), &mut text)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(format!("{}: larger than {} MiB", path.display(), MAX_FILE_BYTES >> 20));
    }
    Ok(Some(text))
}

/// The YAML and JSON files of a block directory, in name order.
fn dir_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(list) = std::fs::read_dir(dir) else { return vec![] };
    let mut out: Vec<PathBuf> = list
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml" || x == "json"))
        .take(MAX_DIR_FILES)
        .collect();
    out.sort();
    out
}

fn emit(args: &ScanArgs, report: &Report) -> anyhow::Result<i32> {
    if let Some(target) = &args.sarif {
        let text = serde_json::to_string_pretty(&sarif::sarif(report))?;
        if target == "-" {
            println!("{text}");
        } else {
            std::fs::write(target, text + "\n").with_context(|| format!("writing {target}"))?;
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output::json(report))?);
    } else if args.sarif.as_deref() != Some("-") {
        print!("{}", output::table(report, args.verbose));
    }
    let failing = report.findings.iter().any(|f| f.severity >= args.fail_on);
    Ok(if failing { 1 } else { 0 })
}
