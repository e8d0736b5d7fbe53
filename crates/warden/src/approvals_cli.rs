//! `warden approvals …`, `warden contain` and `warden release`: what operators do by hand.
//! Every decision, containment and release is an audit row naming who did it, and one the audit
//! log cannot record is undone.

use clap::Subcommand;
use std::io::Write;
use std::time::Duration;
use warden_gateway::config::Config;
use warden_gateway::guard::approve::{Answer, Ruling};
use warden_store::approvals::Approval;
use warden_store::pins::escaped;
use warden_store::{ApprovalStore, ContainmentStore};

/// `warden approvals` subcommands.
#[derive(Subcommand)]
pub enum ApprovalsCommand {
    /// Approvals, newest first (by default only those waiting for a decision).
    List {
        /// Every approval, whatever its status.
        #[arg(long)]
        all: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One approval: who asked to call what, with which arguments, and why it needs approval.
    Show {
        /// The approval id (`apr-…`).
        id: String,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Approve a pending call: the caller's retry with the same arguments proceeds, once, within
    /// `approvals.use_within`.
    Approve {
        id: String,
        /// Who approved it, for the record (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Deny a pending call: the caller's retries are refused until the request expires.
    Deny {
        id: String,
        /// Who denied it, for the record (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

fn operator(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "operator".to_owned())
}

async fn url(config: &Config) -> anyhow::Result<String> {
    warden_gateway::guard::audit::audit_url(config).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs a subcommand against the approvals in the configured database.
pub async fn run(config: &Config, command: ApprovalsCommand) -> anyhow::Result<i32> {
    let store = ApprovalStore::open(&url(config).await?).await.map_err(|e| anyhow::anyhow!("the approvals: {e}"))?;
    let mut out = std::io::stdout().lock();
    match command {
        ApprovalsCommand::List { all, limit, json } => {
            let items = store.list((!all).then_some("pending"), limit).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            for a in &items {
                if json {
                    writeln!(out, "{}", serde_json::to_string(a)?)?;
                } else {
                    writeln!(
                        out,
                        "{}  {}  {:8}  {}/{}  caller {}  ({})",
                        a.id,
                        a.created_at.format("%Y-%m-%d %H:%M:%S"),
                        a.status,
                        escaped(&a.server),
                        escaped(&a.tool),
                        escaped(&a.actor_id),
                        a.reasons.join(", ")
                    )?;
                }
            }
            if items.is_empty() && !json {
                writeln!(out, "nothing {}", if all { "was asked" } else { "is waiting for approval" })?;
            }
            Ok(0)
        }
        ApprovalsCommand::Show { id, json } => {
            let Some(a) = store.get(&id).await.map_err(|e| anyhow::anyhow!("{e}"))? else {
                eprintln!("no approval has the id {}", escaped(&id));
                return Ok(1);
            };
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&a)?)?;
            } else {
                write_approval(&mut out, &a)?;
            }
            Ok(0)
        }
        ApprovalsCommand::Approve { id, by } => decide(config, &store, &id, Answer::Approve, by).await,
        ApprovalsCommand::Deny { id, by } => decide(config, &store, &id, Answer::Deny, by).await,
    }
}

async fn decide(
    config: &Config,
    store: &ApprovalStore,
    id: &str,
    answer: Answer,
    by: Option<String>,
) -> anyhow::Result<i32> {
    let by = operator(by);
    let auditor = warden_gateway::guard::audit::open_for_operator(config).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let use_within = config.approvals.use_within.0;
    let ruled = warden_gateway::guard::approve::decide(
        store,
        &auditor,
        id,
        answer,
        warden_gateway::guard::approve::Decider { by: &by, by_key: None, reason: None },
        use_within,
    )
    .await;
    if let Some(log) = auditor.log() {
        let _ = log.shutdown().await;
    }
    match ruled.map_err(|e| anyhow::anyhow!("{e}"))? {
        Ruling::Done(a) => {
            match answer {
                Answer::Approve => println!(
                    "approved {}: {}'s retry of {}/{} with the same arguments proceeds once, until {}",
                    a.id,
                    escaped(&a.actor_id),
                    escaped(&a.server),
                    escaped(&a.tool),
                    a.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                Answer::Deny => println!("denied {}: its retries are refused", a.id),
            }
            Ok(0)
        }
        Ruling::Refused(why) | Ruling::Unknown(why) => {
            eprintln!("{why}; nothing changed");
            Ok(1)
        }
        Ruling::OwnCall => {
            eprintln!("nobody may decide on their own call; nothing changed");
            Ok(1)
        }
    }
}

fn write_approval(out: &mut impl Write, a: &Approval) -> anyhow::Result<()> {
    writeln!(out, "{}  {}", a.id, a.status)?;
    writeln!(out, "  asked     {}", a.created_at.format("%Y-%m-%d %H:%M:%S UTC"))?;
    writeln!(out, "  expires   {}", a.expires_at.format("%Y-%m-%d %H:%M:%S UTC"))?;
    writeln!(
        out,
        "  caller    {}{}",
        escaped(&a.actor_id),
        a.tenant.as_deref().map(|t| format!(" (tenant {})", escaped(t))).unwrap_or_default()
    )?;
    writeln!(out, "  call      {}/{} (called as {})", escaped(&a.server), escaped(&a.tool), escaped(&a.exposed))?;
    writeln!(out, "  why       {}", a.reasons.join(", "))?;
    writeln!(out, "  flow      {}", a.flow)?;
    if let Some(by) = &a.decided_by {
        writeln!(out, "  decided   by {}", escaped(by))?;
    }
    writeln!(out, "  arguments (secrets redacted)")?;
    let pretty = serde_json::to_string_pretty(&a.arguments)?;
    for line in pretty.lines() {
        writeln!(out, "    {}", escaped(line))?;
    }
    Ok(())
}

/// `warden contain SERVER`: records the containment (and revokes the server's approvals), then
/// asks the running gateway to apply it at once through its admin listener, if one is configured.
pub async fn contain(config: &Config, server: &str, reason: &str, by: Option<String>) -> anyhow::Result<i32> {
    if !config.servers.contains_key(server) {
        eprintln!("no server is configured as {}", escaped(server));
        return Ok(1);
    }
    let by = operator(by);
    let url = url(config).await?;
    let store = ContainmentStore::open(&url).await.map_err(|e| anyhow::anyhow!("the containment store: {e}"))?;
    let approvals = ApprovalStore::open(&url).await.map_err(|e| anyhow::anyhow!("the approvals: {e}"))?;
    let grants = grants(&url).await?;
    let auditor = operator_auditor(config).await?;
    let done =
        warden_gateway::guard::contain::contain(&store, &approvals, Some(&grants), &auditor, server, &by, reason).await;
    finish(&auditor).await;
    // Applied whatever happened after the containment was recorded.
    let applied = poke(config).await;
    let done = done.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{} {}: unlisted and uncallable, {} approval(s) and its upstream credentials revoked; emergency mode is on{}",
        if done.newly { "contained" } else { "already contained:" },
        escaped(server),
        done.revoked,
        applied
    );
    Ok(0)
}

/// `warden credentials ...`
#[derive(clap::Subcommand, Debug)]
pub enum CredentialsCommand {
    /// Revoke the credentials obtained for SERVER (every caller's, or one's): none issued before
    /// now is used again; the next request needs a new exchange.
    Revoke {
        /// The server's configured name.
        server: String,
        /// Only this caller's (the token subject).
        #[arg(long)]
        user: Option<String>,
        /// Why, for the record.
        #[arg(long, default_value = "revoked by an operator")]
        reason: String,
        /// Who revokes them, for the record (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
}

/// `warden credentials revoke SERVER [--user U]`.
pub async fn credentials(config: &Config, command: CredentialsCommand) -> anyhow::Result<i32> {
    let CredentialsCommand::Revoke { server, user, reason, by } = command;
    if !config.servers.contains_key(&server) {
        eprintln!("no server is configured as {}", escaped(&server));
        return Ok(1);
    }
    let by = operator(by);
    let url = url(config).await?;
    let store = ContainmentStore::open(&url).await.map_err(|e| anyhow::anyhow!("the containment store: {e}"))?;
    let grants = grants(&url).await?;
    let auditor = warden_gateway::guard::audit::open_for_operator(config).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let (who, store_ref) = (user.as_deref(), &store);
    let done = warden_gateway::guard::contain::revoke_credentials(
        store_ref,
        Some(&grants),
        &auditor,
        &server,
        who,
        &by,
        &reason,
    )
    .await;
    if let Some(log) = auditor.log() {
        let _ = log.shutdown().await;
    }
    let applied = poke(config).await;
    let dropped = done.map_err(|e| anyhow::anyhow!("{e}"))?;
    let whose = match &user {
        Some(u) => format!("{}'s", escaped(u)),
        None => "every caller's".to_owned(),
    };
    println!("revoked {whose} credentials for {} ({dropped} stored grant(s) deleted){applied}", escaped(&server));
    Ok(0)
}

/// The grants callers gave Warden for servers.
async fn grants(url: &str) -> anyhow::Result<warden_store::UpstreamTokenStore> {
    warden_store::UpstreamTokenStore::open(url).await.map_err(|e| anyhow::anyhow!("the grants: {e}"))
}

/// `warden release SERVER`.
pub async fn release(config: &Config, server: &str, by: Option<String>) -> anyhow::Result<i32> {
    let by = operator(by);
    let url = url(config).await?;
    let store = ContainmentStore::open(&url).await.map_err(|e| anyhow::anyhow!("the containment store: {e}"))?;
    let auditor = operator_auditor(config).await?;
    let done = warden_gateway::guard::contain::release(&store, &auditor, server, &by).await;
    finish(&auditor).await;
    if !done.map_err(|e| anyhow::anyhow!("{e}"))? {
        eprintln!("{} is not contained; nothing changed", escaped(server));
        return Ok(1);
    }
    let left = store.list().await.map(|l| l.len()).unwrap_or(0);
    let applied = poke(config).await;
    let mode =
        if left == 0 { "emergency mode is off" } else { "emergency mode stays on (other servers are contained)" };
    println!("released {}; {mode}{applied}", escaped(server));
    Ok(0)
}

/// The auditor of a command that contains or releases a server: it tells the notification
/// webhooks, as the gateway would. A webhook whose URL this shell cannot read (a variable only
/// the gateway's service has) does not stop a containment: it is said, and left out.
async fn operator_auditor(config: &Config) -> anyhow::Result<warden_gateway::guard::audit::Auditor> {
    let auditor = warden_gateway::guard::audit::open_for_operator(config).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let (notifier, skipped) = warden_gateway::notify::Notifier::start_available(config, auditor.metrics.clone());
    for e in skipped {
        eprintln!("not notified from this command: {e}");
    }
    Ok(auditor.notifying(notifier))
}

/// Flushes the command's audit rows, and gives its notifications a moment to be delivered.
async fn finish(auditor: &warden_gateway::guard::audit::Auditor) {
    if let Some(log) = auditor.log() {
        let _ = log.shutdown().await;
    }
    if let Some(n) = auditor.notifier()
        && !n.drain(Duration::from_secs(25)).await
    {
        eprintln!("a notification could not be delivered in time");
    }
}

/// Asks the gateway to read the containment list now; says what happened.
async fn poke(config: &Config) -> String {
    // Gateways sharing state hear of it at once, wherever they run.
    if let Ok(Some(shared)) = warden_gateway::state::SharedState::from_config(&config.state) {
        match shared.publish("containment").await {
            Ok(()) => return " (told every gateway through the shared state)".to_owned(),
            Err(e) => eprintln!("{e}: gateways apply it when they next poll"),
        }
    }
    let Some(addr) = &config.admin.listen else {
        return format!(
            " (the gateway applies it within {}s: no admin listener is configured to tell it sooner)",
            config.approvals.containment_poll.0.as_secs_f64()
        );
    };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).no_proxy().build();
    let sent = match client {
        Ok(c) => c.post(format!("http://{addr}/v1/containment/sync")).send().await,
        Err(e) => return format!(" (the gateway could not be told: {e})"),
    };
    match sent {
        Ok(r) if r.status().is_success() => " (applied by the gateway)".to_owned(),
        _ => format!(
            " (the gateway at {addr} did not answer; a running gateway applies it within {}s)",
            config.approvals.containment_poll.0.as_secs_f64()
        ),
    }
}
