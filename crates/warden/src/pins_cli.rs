//! `warden pins …`: the pinned tool definitions, the ones held for review, and accepting them.

use clap::Subcommand;
use serde_json::Value;
use std::io::Write;
use warden_store::pins::{self, Candidate, PinStore};

/// `warden pins` subcommands.
#[derive(Subcommand)]
pub enum PinsCommand {
    /// Pinned definitions and those held for review, per server.
    List {
        /// Only this server.
        server: Option<String>,
    },
    /// What is held for SERVER and why: findings, and a diff against the pinned definition.
    Diff {
        /// The server.
        server: String,
    },
    /// Accept what is held for SERVER (or only NAME): pin it as it is now.
    Accept {
        /// The server.
        server: String,
        /// Only this definition (a tool, prompt or template name).
        name: Option<String>,
        /// Who accepted it, for the record (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

/// Runs a subcommand against the pins in `url`; `servers` are the configured servers' names;
/// gateways sharing `shared` are told of what was accepted.
pub async fn run(
    url: &str,
    servers: &[String],
    command: PinsCommand,
    shared: Option<warden_gateway::state::SharedState>,
) -> anyhow::Result<i32> {
    let store = PinStore::open(url).await.map_err(|e| anyhow::anyhow!("opening the pin store: {e}"))?;
    let mut out = std::io::stdout().lock();
    match command {
        PinsCommand::List { server } => {
            let names: Vec<String> = match server {
                Some(s) => vec![s],
                None => servers.to_vec(),
            };
            for server in names {
                let pinned = store.pins(&server).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let held = store.candidates(&server).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                writeln!(out, "{server}: {} pinned, {} held", pinned.len(), held.len())?;
                for p in &pinned {
                    writeln!(
                        out,
                        "  pinned  {:18} {:32} {}  {} by {}",
                        p.kind,
                        pins::escaped(&p.name),
                        short_hash(&p.hash),
                        p.pinned_at.format("%Y-%m-%d %H:%M"),
                        p.pinned_by
                    )?;
                }
                for c in &held {
                    writeln!(
                        out,
                        "  HELD    {:18} {:32} {}  ({})",
                        c.kind,
                        pins::escaped(&c.name),
                        short_hash(&c.hash),
                        c.reason
                    )?;
                }
            }
            Ok(0)
        }
        PinsCommand::Diff { server } => {
            let held = store.candidates(&server).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if held.is_empty() {
                writeln!(out, "{server}: nothing is held")?;
                return Ok(0);
            }
            let pinned = store.pins(&server).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            for c in &held {
                let old = pinned.iter().find(|p| p.kind == c.kind && p.name == c.name).map(|p| &p.definition);
                write_candidate(&mut out, c, old)?;
            }
            writeln!(out, "accept with: warden pins accept {server} [NAME]")?;
            Ok(0)
        }
        PinsCommand::Accept { server, name, by } => {
            let by = by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".to_owned());
            let accepted = store.accept(&server, name.as_deref(), &by).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if accepted.is_empty() {
                writeln!(out, "{server}: nothing held{}", name.map(|n| format!(" named {n}")).unwrap_or_default())?;
                return Ok(1);
            }
            for c in &accepted {
                let what = if c.reason == "removed" { "unpinned (removed)" } else { "pinned" };
                writeln!(out, "{what}: {} {} {}", c.kind, pins::escaped(&c.name), short_hash(&c.hash))?;
            }
            let told = match &shared {
                Some(state) => match state.publish(&format!("pins:{server}")).await {
                    Ok(()) => "every gateway sharing state lists it again now",
                    Err(e) => {
                        eprintln!("{e}: gateways pick this up at their next listing");
                        "running gateways pick this up at their next listing"
                    }
                },
                None => "running gateways pick this up at their next listing",
            };
            writeln!(out, "{told}")?;
            Ok(0)
        }
    }
}

fn write_candidate(out: &mut impl Write, c: &Candidate, old: Option<&Value>) -> anyhow::Result<()> {
    writeln!(
        out,
        "== {} {} — {} (first seen {})",
        c.kind,
        pins::escaped(&c.name),
        c.reason,
        c.first_seen.format("%Y-%m-%d %H:%M:%S")
    )?;
    for f in c.findings.as_array().into_iter().flatten() {
        let text = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let span = f.get("span").and_then(Value::as_array).map(|s| {
            let at = |i: usize| s.get(i).and_then(Value::as_u64).unwrap_or(0);
            format!(" bytes {}..{}", at(0), at(1))
        });
        let family = text("family");
        writeln!(
            out,
            "  finding {} [{}{}] at {}{}: {}",
            text("rule"),
            text("severity"),
            if family.is_empty() { String::new() } else { format!(", {family}") },
            text("pointer"),
            span.filter(|s| s != " bytes 0..0").unwrap_or_default(),
            text("explanation")
        )?;
        writeln!(out, "    text: {}", text("excerpt"))?;
        let check = text("check");
        if !check.is_empty() {
            writeln!(out, "    check: {check}")?;
        }
        if let Some(d) = f.get("decoded").and_then(Value::as_str) {
            writeln!(out, "    hidden text, decoded: {}", pins::escaped(d))?;
        }
    }
    match (&c.definition, old) {
        (Some(new), Some(old)) => write!(out, "{}", pins::render_diff(&pins::diff(old, new)))?,
        (Some(new), None) => {
            writeln!(out, "  new definition:")?;
            let pretty = serde_json::to_string_pretty(new)?;
            for line in pretty.lines() {
                writeln!(out, "  + {}", pins::escaped(line))?;
            }
        }
        (None, _) => writeln!(out, "  the server no longer lists it")?,
    }
    Ok(())
}

fn short_hash(h: &str) -> String {
    h.trim_start_matches("sha256:").chars().take(12).collect()
}
