//! `warden import FILE`: an `mcpServers` document as Warden `[servers]` TOML on stdout, with a
//! comment saying what was changed, what to export and what is flagged; with `--connect`, each
//! server's tools reviewed (and with `--adopt`, their proposed classes written).

use crate::tools_cli;
use anyhow::Context as _;
use std::path::Path;
use std::time::Duration;
use warden_gateway::config::Config;
use warden_gateway::import::{ImportOptions, Imported, import_mcp_servers};

/// Imports `file`; `connect` is `Some((adopt, timeout_secs))` to start each server and review
/// its tools.
pub async fn run(file: &Path, options: &ImportOptions, connect: Option<(bool, u64)>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut imported = import_mcp_servers(&text, options).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let tools = match connect {
        Some((adopt, timeout)) => import_tools(&mut imported.toml, adopt, timeout).await?,
        None => String::new(),
    };
    for e in &imported.exports {
        eprintln!("export {} before starting Warden (server {}: {})", e.var, e.server, e.replaces);
    }
    print!("{}{tools}{}", import_review(&imported), imported.toml);
    Ok(())
}

/// The comment `warden import` puts before what it imported: what it changed, what to export,
/// and each server's flags (`warden check` shows them again against the file in use).
fn import_review(imported: &Imported) -> String {
    let mut out =
        String::from("# Imported by `warden import`. Review before use; `warden check` shows each server's command.\n");
    let mut lines = imported.notes.clone();
    lines.extend(imported.flags.iter().map(|(name, f)| format!("server {name}: FLAGGED ({}): {f}", f.severity)));
    if !imported.exports.is_empty() {
        lines.push("Warden reads these from its environment: export them before it starts:".to_owned());
        lines.extend(imported.exports.iter().map(|e| format!("  {}  (server {}: {})", e.var, e.server, e.replaces)));
    }
    for l in lines {
        out.push_str(&format!("# {}\n", warden_gateway::servers::printable(&l)));
    }
    out.push('\n');
    out
}

/// `warden import --connect`: each imported server started and its tools reviewed; with
/// `adopt`, the proposed classes are written into `toml`. Returns the review as comment lines.
async fn import_tools(toml: &mut String, adopt: bool, timeout: u64) -> anyhow::Result<String> {
    let mut config = Config::parse(toml, "(imported)").map_err(|e| anyhow::anyhow!("{e}"))?;
    config.base_dir = std::env::current_dir()?;
    let mut doc: toml_edit::DocumentMut = toml.parse()?;
    let mut comments = String::new();
    let names: Vec<String> = config.servers.keys().cloned().collect();
    for name in names {
        let listed = warden_gateway::servers::probe::probe(&config, &name, Duration::from_secs(timeout)).await;
        let text = match listed {
            Ok(listing) => {
                let proposals = tools_cli::review(&config, &name, &listing.tools);
                if adopt {
                    tools_cli::write_classes(&mut doc, &name, &proposals);
                }
                tools_cli::render(&name, "listed just now", &proposals)
            }
            Err(e) => format!("server {name}: not reviewed: {e}\n"),
        };
        for line in text.lines() {
            comments.push_str(&format!("# {}\n", warden_gateway::servers::printable(line)));
        }
    }
    if adopt {
        *toml = doc.to_string();
        Config::parse(toml, "(imported)").map_err(|e| anyhow::anyhow!("{e}"))?;
    } else {
        comments.push_str("# Adopt them with --adopt, or later with `warden tools review SERVER --adopt`.\n");
    }
    comments.push('\n');
    Ok(comments)
}
