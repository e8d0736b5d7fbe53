//! Opening the configured audit log.

use super::Auditor;
use crate::config::Config;
use crate::error::GatewayError;
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;
use warden_store::AuditLog;

/// Where the configured audit log lives: a Postgres URL, or the SQLite file as a URL.
pub fn audit_url(config: &Config) -> Result<String, GatewayError> {
    let a = &config.audit;
    if let Some(url) = &a.postgres_url {
        return Ok(url.clone());
    }
    if let Some(var) = &a.postgres_url_env {
        return std::env::var(var)
            .map_err(|_| GatewayError::Config(format!("audit.postgres_url_env: the variable {var} is not set")));
    }
    let path = config.resolve(&a.path);
    let path = if path.is_absolute() {
        path
    } else {
        std::env::current_dir().map_err(|e| GatewayError::io("the working directory", e))?.join(path)
    };
    Ok(format!("sqlite://{}", path.display()))
}

/// Opens the configured audit log (creating it on first start) and the auditor writing to it,
/// which tells the configured webhooks ([`crate::notify`]) of what its rows announce.
pub async fn open(config: &Config, metrics: Arc<Metrics>) -> Result<Auditor, GatewayError> {
    // First: a webhook URL that cannot be read stops the start before anything is opened.
    let notifier = crate::notify::Notifier::start(config, metrics.clone())?;
    let a = &config.audit;
    let durability = match a.durability {
        crate::config::Durability::Sync => warden_store::Durability::Sync,
        crate::config::Durability::Batched => warden_store::Durability::Batched { max_delay: a.max_delay.0 },
    };
    let settings = warden_store::AuditSettings {
        durability,
        retain: a.retain_days.map(|d| Duration::from_secs(u64::from(d) * 86_400)),
        ..log_settings(config)?
    };
    let log = AuditLog::open(settings).await.map_err(GatewayError::store("the audit log"))?;
    Ok(Auditor::new(metrics, Some(Arc::new(log)), a.durability == crate::config::Durability::Sync).notifying(notifier))
}

/// Opens the configured audit log for a command a person runs (`warden quarantine release`):
/// each row is committed before the command goes on, a JSONL copy goes only to a file (standard
/// output is the person's), and retention is left to the gateway.
pub async fn open_for_operator(config: &Config) -> Result<Auditor, GatewayError> {
    let mut settings = log_settings(config)?;
    settings.jsonl = settings.jsonl.filter(|j| matches!(j, warden_store::JsonlSink::File(_)));
    let log = AuditLog::open(settings).await.map_err(GatewayError::store("the audit log"))?;
    Ok(Auditor::new(Arc::new(Metrics::new()), Some(Arc::new(log)), true))
}

/// The settings every writer of the configured log shares; durability `sync`, no retention.
fn log_settings(config: &Config) -> Result<warden_store::AuditSettings, GatewayError> {
    let a = &config.audit;
    let jsonl = a.jsonl.as_deref().map(|j| match j {
        "-" => warden_store::JsonlSink::Stdout,
        file => warden_store::JsonlSink::File(config.resolve(std::path::Path::new(file))),
    });
    Ok(warden_store::AuditSettings {
        url: audit_url(config)?,
        durability: warden_store::Durability::Sync,
        max_batch: a.max_batch.max(1),
        queue: a.queue.max(1),
        jsonl,
        signing_key: a.signing_key.as_ref().map(|k| config.resolve(k)),
        retain: None,
    })
}
