//! `warden audit …` and `warden gates`: reading the audit log, checking its chain, and the
//! detection gates over it.

use clap::Subcommand;
use std::io::Write;
use std::time::Duration;
use warden_gateway::config::Config;
use warden_store::{AuditReader, AuditRow};

/// `warden audit` subcommands.
#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; names the first row that was edited, deleted, inserted or moved.
    Verify {
        /// Public keys (hex) trusted to sign retention checkpoints.
        #[arg(long = "trusted-key")]
        trusted_keys: Vec<String>,
    },
    /// Print the public key of the configured checkpoint signing key (give it to `verify
    /// --trusted-key`).
    PublicKey,
    /// Run a read-only SQL query (the table is `mcp_audit`).
    Query {
        /// The query.
        sql: String,
        /// One JSON object per row instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Follow new rows, one JSON object per line.
    Tail {
        /// Start after this row (default: the newest).
        #[arg(long)]
        after: Option<i64>,
    },
    /// Print rows for a SIEM.
    Export {
        /// Output format.
        #[arg(long, default_value = "jsonl")]
        format: ExportFormat,
        /// Start after this row.
        #[arg(long, default_value_t = 0)]
        after: i64,
    },
    /// Servers' original error messages, as they sent them (kept only with
    /// `[output] server_errors = "keep"`), newest first, one JSON object per line.
    ServerErrors {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// Export formats.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
}

/// Where the audit log is (`--database`, else the configuration's), and the public key of the
/// configuration's checkpoint signing key, if it has one.
pub fn database(config: &std::path::Path, database: Option<String>) -> anyhow::Result<(String, Option<String>)> {
    let c = match (Config::load(config), &database) {
        (Ok(c), _) => Some(c),
        (Err(_), Some(_)) => None,
        (Err(e), None) => anyhow::bail!("{e}"),
    };
    let own_key = c
        .as_ref()
        .and_then(|c| c.audit.signing_key.as_ref().map(|k| c.resolve(k)))
        .filter(|k| k.exists())
        .map(|k| warden_store::public_key_of(&k).map_err(|e| anyhow::anyhow!("{e}")))
        .transpose()?;
    let url = match (database, &c) {
        (Some(d), _) => d,
        (None, Some(c)) => warden_gateway::guard::audit::audit_url(c).map_err(|e| anyhow::anyhow!("{e}"))?,
        (None, None) => unreachable!("a configuration that did not load was refused above"),
    };
    Ok((url, own_key))
}

/// Runs a subcommand; the exit status to use. `own_key` is the public key of the configured
/// checkpoint signing key, trusted when no `--trusted-key` is given.
pub async fn run(url: &str, command: AuditCommand, own_key: Option<String>) -> anyhow::Result<i32> {
    let mut out = std::io::stdout().lock();
    if let AuditCommand::ServerErrors { limit } = command {
        let store =
            warden_store::ServerErrorStore::open(url).await.map_err(|e| anyhow::anyhow!("opening the store: {e}"))?;
        for kept in store.recent(limit).await.map_err(|e| anyhow::anyhow!("{e}"))? {
            writeln!(out, "{}", serde_json::to_string(&kept)?)?;
        }
        return Ok(0);
    }
    let reader = AuditReader::open(url).await.map_err(|e| anyhow::anyhow!("opening the audit log: {e}"))?;
    match command {
        AuditCommand::PublicKey => anyhow::bail!("public-key reads the configuration, not the log"),
        AuditCommand::ServerErrors { .. } => unreachable!("answered above"),
        AuditCommand::Verify { mut trusted_keys } => {
            if trusted_keys.is_empty() {
                trusted_keys.extend(own_key);
            }
            let report = reader.verify(&trusted_keys).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(cp) = report.checkpoint {
                writeln!(out, "chain starts after signed checkpoint at row {cp}")?;
            }
            for note in &report.notes {
                writeln!(out, "warning: {note}")?;
            }
            // A checkpoint vouched for only by the key stored beside it proves nothing: anyone who
            // can delete the first rows can write one.
            if report.first_bad.is_none() && !report.notes.is_empty() && trusted_keys.is_empty() {
                writeln!(
                    out,
                    "UNVERIFIED: pass --trusted-key (see `warden audit public-key`) to check the checkpoint"
                )?;
                return Ok(1);
            }
            match report.first_bad {
                Some(bad) if bad.seq == 0 => {
                    writeln!(out, "TAMPERED: {}", bad.problem)?;
                    Ok(1)
                }
                Some(bad) => {
                    writeln!(out, "TAMPERED: row {}: {}", bad.seq, bad.problem)?;
                    Ok(1)
                }
                None if report.chains.len() > 1 => {
                    writeln!(out, "ok: {} rows in {} chains, every chain intact", report.rows, report.chains.len())?;
                    for c in &report.chains {
                        let name = if c.chain.is_empty() { "(single-gateway chain)" } else { c.chain.as_str() };
                        let head = c.head.as_ref().map(|(link, hash)| format!("head link {link}, hash {hash}"));
                        writeln!(out, "  {name}: {} rows; {}", c.rows, head.unwrap_or_else(|| "empty".into()))?;
                    }
                    match &report.heads_stated_at {
                        Some(at) => {
                            writeln!(out, "every head named by the signed statements is there (latest: {at} UTC)")?
                        }
                        None => writeln!(
                            out,
                            "note: no signed statement of heads (set [audit] signing_key on every gateway): a chain deleted whole or cut short would not show"
                        )?,
                    }
                    Ok(0)
                }
                None => {
                    let head =
                        report.head.map(|(seq, hash)| format!("; head row {seq}, hash {hash}")).unwrap_or_default();
                    writeln!(out, "ok: {} rows, chain intact{head}", report.rows)?;
                    Ok(0)
                }
            }
        }
        AuditCommand::Query { sql, json } => {
            let result = reader.query(&sql).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                for row in &result.rows {
                    let object: serde_json::Map<String, serde_json::Value> =
                        result.columns.iter().cloned().zip(row.iter().cloned()).collect();
                    writeln!(out, "{}", serde_json::Value::Object(object))?;
                }
            } else {
                writeln!(out, "{}", result.columns.join("\t"))?;
                for row in &result.rows {
                    let cells: Vec<String> = row.iter().map(cell).collect();
                    writeln!(out, "{}", cells.join("\t"))?;
                }
            }
            if result.truncated {
                eprintln!("(more rows were left out)");
            }
            Ok(0)
        }
        AuditCommand::Export { format: ExportFormat::Jsonl, after } => {
            let mut last = after;
            loop {
                let rows = reader.rows_after(last, 1000).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let Some(end) = rows.last().map(|r| r.seq) else { break };
                write_rows(&mut out, &rows)?;
                last = end;
            }
            Ok(0)
        }
        AuditCommand::Tail { after } => {
            // Followed chain by chain: rows of several gateways commit out of `seq` order, and a
            // cursor on `seq` alone would step over one still being written.
            let mut cursors: std::collections::HashMap<String, i64> = reader
                .chain_positions(after.unwrap_or(i64::MAX))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .into_iter()
                .collect();
            loop {
                let chains = reader.chain_positions(i64::MAX).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut rows = Vec::new();
                for (chain, _) in chains {
                    let from = *cursors.entry(chain.clone()).or_insert(0);
                    let new = reader.chain_rows_after(&chain, from, 1000).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                    if let Some(last) = new.last() {
                        cursors.insert(chain, last.link);
                    }
                    rows.extend(new);
                }
                if rows.is_empty() {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    continue;
                }
                rows.sort_by_key(|r| r.seq);
                write_rows(&mut out, &rows)?;
                out.flush()?;
            }
        }
    }
}

fn write_rows(out: &mut impl Write, rows: &[AuditRow]) -> anyhow::Result<()> {
    for row in rows {
        writeln!(out, "{}", serde_json::to_string(row)?)?;
    }
    Ok(())
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.replace(['\t', '\n', '\r'], " "),
        other => other.to_string(),
    }
}

/// `warden gates`: prints every gate; the exit status is 1 if any tripped.
pub async fn gates(config: &Config, url: &str) -> anyhow::Result<i32> {
    let reader = AuditReader::open(url).await.map_err(|e| anyhow::anyhow!("opening the audit log: {e}"))?;
    let results = warden_store::gates::evaluate(&reader, &warden_gateway::gates::gates_of(config)?, chrono::Utc::now())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tripped = 0;
    for r in &results {
        let mark = if r.tripped {
            tripped += 1;
            "TRIPPED"
        } else {
            "ok"
        };
        println!("{mark:8} {:32} value {:<10} threshold {:<10} {}", r.name, fmt(r.value), fmt(r.threshold), r.detail);
    }
    Ok(if tripped > 0 { 1 } else { 0 })
}

fn fmt(x: f64) -> String {
    if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x:.4}") }
}
