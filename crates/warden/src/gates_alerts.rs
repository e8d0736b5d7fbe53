//! Gate alerts while serving: the gates are evaluated every `gates.interval`, and each gate that
//! newly trips is POSTed to `gates.webhook` as JSON.

use std::collections::HashSet;
use std::time::Duration;
use warden_gateway::config::Config;
use warden_store::AuditReader;
use warden_store::gates::GateResult;

/// Starts the alert loop when a webhook is configured.
pub fn start(config: &Config) -> anyhow::Result<()> {
    let Some(webhook) = config.gates.webhook.clone() else { return Ok(()) };
    let gates = crate::audit_cli::gates_of(config)?;
    let url = warden_gateway::guard::audit::audit_url(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let every = config.gates.interval.0;
    // The webhook is reached through the egress guard: https to a public address, or anywhere
    // with `webhook_allow_private`; the address checked is the address connected to.
    let egress = if config.gates.webhook_allow_private {
        warden_upstream::egress::Policy::any_address()
    } else {
        config.egress.policy().map_err(|e| anyhow::anyhow!("egress.allow: {e}"))?
    };
    tokio::spawn(async move {
        let reader = match AuditReader::open(&url).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("gate alerts are off: the audit log cannot be read: {e}");
                return;
            }
        };
        let client = match egress
            .client(&webhook)
            .and_then(|b| b.timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("gate alerts are off: {e}");
                return;
            }
        };
        let mut tripped_before: HashSet<String> = HashSet::new();
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let results = match warden_store::gates::evaluate(&reader, &gates, chrono::Utc::now()).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("gates not evaluated: {e}");
                    continue;
                }
            };
            for r in results.iter().filter(|r| r.tripped && !tripped_before.contains(&r.name)) {
                tracing::warn!(gate = %r.name, value = r.value, threshold = r.threshold, "detection gate tripped");
                alert(&client, &webhook, r).await;
            }
            tripped_before = results.into_iter().filter(|r| r.tripped).map(|r| r.name).collect();
        }
    });
    Ok(())
}

async fn alert(client: &reqwest::Client, webhook: &str, gate: &GateResult) {
    let body = serde_json::json!({
        "source": "warden",
        "gate": gate.name,
        "value": gate.value,
        "threshold": gate.threshold,
        "detail": gate.detail,
        "time": chrono::Utc::now().to_rfc3339(),
    });
    match client.post(webhook).json(&body).send().await {
        Ok(r) if r.status().is_success() => tracing::info!(gate = %gate.name, "gate alert sent"),
        Ok(r) => tracing::error!(gate = %gate.name, status = r.status().as_u16(), "gate alert refused by the webhook"),
        // Without the URL: a webhook URL often carries its own secret.
        Err(e) => match warden_upstream::egress::refusal(&e) {
            Some(why) => tracing::error!(gate = %gate.name, "gate alert NOT sent: the webhook was {why}"),
            None => tracing::error!(gate = %gate.name, "gate alert NOT sent: {}", e.without_url()),
        },
    }
}
