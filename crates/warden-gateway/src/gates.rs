//! Detection gates while serving: the gates of the configuration ([`gates_of`]) are evaluated
//! every `[gates] interval`, and each gate that newly trips is POSTed to `[gates] webhook` (its
//! own JSON) and told to the notification webhooks subscribed to `gate` ([`crate::notify`]).
//!
//! `warden gates`, the report and the console evaluate the same gates with [`gates_of`].

use crate::config::Config;
use crate::error::GatewayError;
use crate::notify::{Notice, Notifier, NotifyEvent};
use std::collections::HashSet;
use std::time::Duration;
use warden_store::AuditReader;
use warden_store::gates::{Gate, GateKind, GateResult, Trip};

/// The gates of a configuration, as the store evaluates them: the defaults (with the deploy
/// windows) unless `[gates] defaults = false`, then each custom gate.
pub fn gates_of(config: &Config) -> Result<Vec<Gate>, GatewayError> {
    let g = &config.gates;
    let mut gates = Vec::new();
    if g.defaults {
        let windows = g
            .deploy_windows
            .iter()
            .map(|w| {
                let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).map(|t| t.to_utc());
                Ok((t(&w.start)?, t(&w.end)?))
            })
            .collect::<Result<Vec<_>, chrono::ParseError>>()
            .map_err(|e| GatewayError::Config(format!("gates.deploy_windows: not an RFC 3339 time ({e})")))?;
        for mut gate in warden_store::gates::default_gates() {
            if let GateKind::DriftOutsideWindows { windows: w } = &mut gate.kind {
                *w = windows.clone();
            }
            gates.push(gate);
        }
    }
    let count = |condition: &str| format!("SELECT COUNT(*) FROM mcp_audit WHERE event_time >= $1 AND ({condition})");
    for c in &g.custom {
        gates.push(Gate {
            name: c.name.clone(),
            kind: GateKind::Sql { count_sql: count(&c.count_where), total_sql: c.total_where.as_deref().map(count) },
            window: c.window.0,
            threshold: c.threshold,
            trip: Trip::Above,
        });
    }
    Ok(gates)
}

/// Starts the gate loop when something listens: `[gates] webhook`, or a notification webhook
/// subscribed to `gate`. Must run inside the runtime.
pub fn start(config: &Config, notifier: Option<Notifier>) -> Result<(), GatewayError> {
    let notifier = notifier.filter(|n| n.wants(NotifyEvent::Gate));
    let webhook = match &config.gates.webhook {
        Some(url) => GateWebhook::new(config, url)?,
        None => None,
    };
    if webhook.is_none() && notifier.is_none() {
        return Ok(());
    }
    let gates = gates_of(config)?;
    let url = crate::guard::audit::audit_url(config)?;
    let every = config.gates.interval.0;
    tokio::spawn(async move {
        let reader = match AuditReader::open(&url).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("gate alerts are off: the audit log cannot be read: {e}");
                return;
            }
        };
        let mut tripped_before: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now();
            let results = match warden_store::gates::evaluate(&reader, &gates, now).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("gates not evaluated: {e}");
                    continue;
                }
            };
            for r in results.iter().filter(|r| r.tripped && !tripped_before.contains(&r.name)) {
                tracing::warn!(gate = %r.name, value = r.value, threshold = r.threshold, "detection gate tripped");
                if let Some(n) = &notifier {
                    n.send(Notice::gate(r, now));
                }
                if let Some(w) = &webhook {
                    w.alert(r).await;
                }
            }
            tripped_before = results.into_iter().filter(|r| r.tripped).map(|r| r.name).collect();
        }
    });
    Ok(())
}

/// `[gates] webhook`: each newly tripped gate as `{"source": "warden", "gate", "value",
/// "threshold", "detail", "time"}`.
struct GateWebhook {
    url: String,
    client: reqwest::Client,
}

impl GateWebhook {
    /// `None` (said in the log) when no client can be built for it.
    fn new(config: &Config, url: &str) -> Result<Option<GateWebhook>, GatewayError> {
        // Reached through the egress guard: https to a public address, or anywhere with
        // `webhook_allow_private`; the address checked is the address connected to.
        let egress = if config.gates.webhook_allow_private {
            warden_upstream::egress::Policy::any_address()
        } else {
            config.egress.policy().map_err(|e| GatewayError::Config(format!("egress.allow: {e}")))?
        };
        match egress
            .client(url)
            .and_then(|b| b.timeout(Duration::from_secs(10)).build().map_err(|e| e.without_url().to_string()))
        {
            Ok(client) => Ok(Some(GateWebhook { url: url.to_owned(), client })),
            Err(e) => {
                tracing::error!("gate alerts to [gates] webhook are off: {e}");
                Ok(None)
            }
        }
    }

    async fn alert(&self, gate: &GateResult) {
        let client = &self.client;
        let body = serde_json::json!({
            "source": "warden",
            "gate": gate.name,
            "value": gate.value,
            "threshold": gate.threshold,
            "detail": gate.detail,
            "time": chrono::Utc::now().to_rfc3339(),
        });
        match client.post(&self.url).json(&body).send().await {
            Ok(r) if r.status().is_success() => tracing::info!(gate = %gate.name, "gate alert sent"),
            Ok(r) => {
                tracing::error!(gate = %gate.name, status = r.status().as_u16(), "gate alert refused by the webhook")
            }
            // Without the URL: a webhook URL often carries its own secret.
            Err(e) => match warden_upstream::egress::refusal(&e) {
                Some(why) => tracing::error!(gate = %gate.name, "gate alert NOT sent: the webhook was {why}"),
                None => tracing::error!(gate = %gate.name, "gate alert NOT sent: {}", e.without_url()),
            },
        }
    }
}
