//! `warden report`: the deliverables of an MCP security review, computed from what Warden
//! enforces rather than written by hand — the architecture and its trust boundaries, the tool
//! inventory with who may call what (by evaluating the Cedar policies in force), the token scope
//! review, the local servers' launch review, the blast radius per principal class with a plan to
//! shrink it, the detection gates, and for every (caller, server, tool) the answer to "with which
//! token, against which data, by which policy, with what audit trail".
//!
//! It needs no running gateway: it reads the configuration and its policies, and the database the
//! gateway writes (pins, held definitions, the quarantine and the audit log). It writes one
//! self-contained HTML file (inline CSS and SVG, no script, nothing fetched) and, on request, the
//! same content as Markdown.
//!
//! - [`facts`] gathers: the configuration's servers, the pinned inventory, the audit log's use.
//! - [`policy`] evaluates the policies for every principal against every tool.
//! - [`review`] turns both into findings: scopes, blast radius, the reduction plan, the paths.
//! - [`sections`] lays the content out once; [`svg`], [`html`] and [`markdown`] render it.

mod facts;
mod html;
mod markdown;
mod policy;
mod review;
mod sections;
mod svg;

use anyhow::Context;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use warden_gateway::config::Config;

pub use facts::{AuditUse, ServerView, ToolView};
pub use policy::{Access, PrincipalView};
pub use review::{BlastRadius, PathRow, PlanItem, ScopeReview};

/// `warden report` options.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// Where to write the HTML report.
    #[arg(long, value_name = "FILE", default_value = "warden-report.html")]
    html: PathBuf,
    /// Also write the report as Markdown here.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
    /// How far back the audit log is read (`30d`, `12h`, `90m`).
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    since: String,
    /// The audit log's URL instead of the configuration's (`sqlite:///path/audit.db`, `postgres://…`).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
}

/// Everything the report shows, computed once and rendered twice.
pub struct Report {
    /// When it was made.
    pub generated_at: DateTime<Utc>,
    /// The configuration file it describes.
    pub config_path: String,
    /// The audit window as given (`30d`) and where it starts.
    pub window: String,
    pub since: DateTime<Utc>,
    pub servers: Vec<ServerView>,
    pub principals: Vec<PrincipalView>,
    pub tools: Vec<ToolView>,
    pub audit: AuditUse,
    pub scopes: ScopeReview,
    pub blast: Vec<BlastRadius>,
    pub plan: Vec<PlanItem>,
    pub paths: Vec<PathRow>,
    /// The detection gates as `warden gates` evaluates them now.
    pub gates: Vec<warden_store::gates::GateResult>,
    /// What could not be read or evaluated, said plainly rather than left out.
    pub notes: Vec<String>,
}

/// Runs `warden report` on the configuration at `config_path`.
pub async fn run(config_path: &Path, config: &Config, args: ReportArgs) -> anyhow::Result<()> {
    let window = parse_window(&args.since)?;
    let now = Utc::now();
    let since = now.checked_sub_signed(window).context("--since is too long a window")?;
    let url = match args.database {
        Some(d) => d,
        None => warden_gateway::guard::audit::audit_url(config).map_err(|e| anyhow::anyhow!("{e}"))?,
    };
    let authorizer = warden_gateway::guard::authorize::Authorizer::from_config(config)
        .map_err(|e| anyhow::anyhow!("the policies do not load, so nothing can be said of who may call what:\n{e}"))?;
    let mut notes = Vec::new();
    let stored = facts::Stored::read(config, &url, since, &mut notes).await?;
    let servers = facts::servers(config, &stored);
    let tools = facts::tools(config, &authorizer, &stored);
    let principals = policy::principals(config, &stored.audit);
    let mut tools = tools;
    policy::evaluate(&authorizer, &principals, &mut tools);
    let scopes = review::scopes(config, &tools, &stored.audit);
    let blast = review::blast_radius(&principals, &tools);
    let paths = review::paths(config, &principals, &tools, &stored.audit);
    let mut plan = review::plan(config, &servers, &tools, &scopes, &stored);
    let gates = match &stored.reader {
        Some(reader) => {
            let gates = warden_gateway::gates::gates_of(config)?;
            match warden_store::gates::evaluate(reader, &gates, now).await {
                Ok(g) => g,
                Err(e) => {
                    notes.push(format!("the detection gates could not be evaluated: {e}"));
                    Vec::new()
                }
            }
        }
        None => Vec::new(),
    };
    for g in gates.iter().filter(|g| g.tripped) {
        plan.insert(
            0,
            PlanItem {
                priority: 1,
                change: format!("investigate the tripped gate {}: {}", g.name, g.detail),
                risk: "an attack or misuse in progress going unanswered".to_owned(),
            },
        );
    }
    if authorizer.engine().is_empty() {
        notes.push("no policies are configured ([policy] files): every call is denied".to_owned());
    }
    for w in &authorizer.engine().warnings {
        notes.push(format!("policy warning: {w}"));
    }
    let report = Report {
        generated_at: now,
        config_path: config_path.display().to_string(),
        window: args.since.clone(),
        since,
        servers,
        principals,
        tools,
        audit: stored.audit,
        scopes,
        blast,
        plan,
        paths,
        gates,
        notes,
    };
    write(&args.html, &html::render(&report))?;
    println!("wrote {}", args.html.display());
    if let Some(md) = &args.markdown {
        write(md, &markdown::render(&report))?;
        println!("wrote {}", md.display());
    }
    Ok(())
}

/// `--since`: a whole number and a unit, `s`, `m`, `h`, `d` or `w` (`30d`).
fn parse_window(text: &str) -> anyhow::Result<chrono::TimeDelta> {
    let bad = || anyhow::anyhow!("--since {text:?}: write a number and a unit: 90m, 12h, 30d or 2w");
    let unit = text.chars().last().ok_or_else(bad)?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().map_err(|_| bad())?;
    let window = match unit {
        's' => chrono::TimeDelta::try_seconds(n),
        'm' => chrono::TimeDelta::try_minutes(n),
        'h' => chrono::TimeDelta::try_hours(n),
        'd' => chrono::TimeDelta::try_days(n),
        'w' => chrono::TimeDelta::try_weeks(n),
        _ => None,
    };
    window.filter(|w| *w > chrono::TimeDelta::zero()).ok_or_else(bad)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_take_days_and_refuse_nonsense() {
        assert_eq!(parse_window("30d").unwrap(), chrono::TimeDelta::days(30));
        assert_eq!(parse_window("90m").unwrap(), chrono::TimeDelta::minutes(90));
        for bad in ["", "d", "30", "-1d", "0h", "1y", "1.5d", "99999999999999w", "3дн"] {
            assert!(parse_window(bad).is_err(), "{bad}");
        }
    }
}
