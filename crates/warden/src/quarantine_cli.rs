//! `warden quarantine …`: results withheld from clients for instructing the model; reviewing,
//! releasing and discarding them. Every release and discard is an audit row naming who did it.

use clap::Subcommand;
use serde_json::Value;
use std::io::Write;
use warden_gateway::config::Config;
use warden_store::pins::escaped;
use warden_store::quarantine::{Held, QuarantineStore, Review, Reviewed};

/// `warden quarantine` subcommands.
#[derive(Subcommand)]
pub enum QuarantineCommand {
    /// Withheld results, newest first (by default only those waiting for review).
    List {
        /// Every item, reviewed or not.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One withheld result: who called what, what the scanner found, and the content.
    Show {
        /// The quarantine id (`q-…`).
        id: String,
        /// The item as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Judge a withheld result safe for the model: its caller may read it as the resource
    /// `warden://quarantine/<id>` (and its context is then tainted).
    Release {
        id: String,
        /// Who released it, for the record (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Judge a withheld result unfit for the model: kept for the record, never served.
    Discard {
        id: String,
        /// Who discarded it, for the record (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

/// Runs a subcommand against the quarantine in the configured audit database.
pub async fn run(config: &Config, command: QuarantineCommand) -> anyhow::Result<i32> {
    let url = warden_gateway::guard::audit::audit_url(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let store = QuarantineStore::open(&url).await.map_err(|e| anyhow::anyhow!("opening the quarantine: {e}"))?;
    let mut out = std::io::stdout().lock();
    match command {
        QuarantineCommand::List { all, limit, json } => {
            let items = store.list((!all).then_some("held"), limit).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            for item in &items {
                if json {
                    writeln!(out, "{}", serde_json::to_string(item)?)?;
                } else {
                    writeln!(
                        out,
                        "{}  {}  {:9}  {:8}  {} {}/{}  caller {}",
                        item.id,
                        item.created_at.format("%Y-%m-%d %H:%M:%S"),
                        item.status,
                        item.severity,
                        item.method,
                        escaped(&item.server),
                        escaped(&item.item),
                        escaped(&item.actor_id)
                    )?;
                }
            }
            if items.is_empty() && !json {
                writeln!(out, "nothing {}", if all { "was quarantined" } else { "is waiting for review" })?;
            }
            Ok(0)
        }
        QuarantineCommand::Show { id, json } => {
            let Some(item) = store.get(&id).await.map_err(|e| anyhow::anyhow!("{e}"))? else {
                eprintln!("no quarantined result has the id {}", escaped(&id));
                return Ok(1);
            };
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&item)?)?;
            } else {
                write_item(&mut out, &item)?;
            }
            Ok(0)
        }
        QuarantineCommand::Release { id, by } => review(config, &store, &id, Review::Release, by).await,
        QuarantineCommand::Discard { id, by } => review(config, &store, &id, Review::Discard, by).await,
    }
}

async fn review(
    config: &Config,
    store: &QuarantineStore,
    id: &str,
    decision: Review,
    by: Option<String>,
) -> anyhow::Result<i32> {
    let by = by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".to_owned());
    // A decision that cannot be recorded does not stand: the log is opened first, and a review
    // whose row cannot be written is undone.
    let auditor = warden_gateway::guard::audit::open_for_operator(config).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let reviewed = warden_gateway::guard::quarantine::review(store, &auditor, id, decision, &by).await;
    if let Some(log) = auditor.log() {
        let _ = log.shutdown().await;
    }
    let item = match reviewed.map_err(|e| anyhow::anyhow!(e))? {
        Reviewed::Done(item) => item,
        Reviewed::NotFound => {
            eprintln!("no quarantined result has the id {}", escaped(id));
            return Ok(1);
        }
        Reviewed::AlreadyReviewed(status) => {
            eprintln!("{} was already {status}; nothing changed", escaped(id));
            return Ok(1);
        }
    };
    match decision {
        Review::Release => println!(
            "released {}: {} can now read it as the resource warden://quarantine/{}",
            item.id,
            escaped(&item.actor_id),
            item.id
        ),
        Review::Discard => println!("discarded {}: it stays on record and is never served", item.id),
    }
    Ok(0)
}

fn write_item(out: &mut impl Write, item: &Held) -> anyhow::Result<()> {
    writeln!(out, "{}  {}", item.id, item.status)?;
    writeln!(out, "  withheld  {}", item.created_at.format("%Y-%m-%d %H:%M:%S UTC"))?;
    writeln!(out, "  call      {} {}/{}", item.method, escaped(&item.server), escaped(&item.item))?;
    let tenant = item.tenant.as_deref().map(|t| format!(" (tenant {})", escaped(t))).unwrap_or_default();
    writeln!(out, "  caller    {}{tenant}", escaped(&item.actor_id))?;
    if let Some(r) = &item.request_id {
        writeln!(out, "  request   {}", escaped(r))?;
    }
    if let (Some(by), Some(at)) = (&item.reviewed_by, item.reviewed_at) {
        writeln!(out, "  reviewed  {} by {}", at.format("%Y-%m-%d %H:%M:%S UTC"), escaped(by))?;
    }
    writeln!(out, "  severity  {}", item.severity)?;
    for f in item.findings.as_array().into_iter().flatten() {
        let text = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        writeln!(out, "  finding   {} [{}] at {}", text("rule"), text("severity"), escaped(&text("pointer")))?;
    }
    writeln!(out, "  content (as the client would have received it):")?;
    let pretty = serde_json::to_string_pretty(item.content.as_ref().unwrap_or(&Value::Null))?;
    for line in pretty.lines() {
        writeln!(out, "    {}", escaped(line))?;
    }
    Ok(())
}
