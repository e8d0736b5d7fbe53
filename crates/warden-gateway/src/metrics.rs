//! Prometheus metrics, served on the admin listener. Names and meanings are documented in
//! `docs/metrics.md`; label values are bounded (a name no server listed is never a label).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `ALLOW`, `DENY`, `REQUIRE_APPROVAL`, `RATE_LIMITED`, `LIMITED`.
    pub decision: String,
    /// The server, or empty when none was resolved.
    pub server: String,
    /// The tool, prompt or resource kind, or empty when none was resolved.
    pub tool: String,
    /// `read`, `write`, `irreversible`, or empty.
    pub class: String,
}

/// Labels naming a server.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServerLabels {
    /// The configured server.
    pub server: String,
}

/// Labels of a connection a sandboxed server asked for.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EgressLabels {
    /// The configured server.
    pub server: String,
    /// `ALLOW`, `DENY` or `FAILED`.
    pub decision: String,
}

/// Labels naming a method.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// The JSON-RPC method (only those Warden serves).
    pub method: String,
    /// The decision.
    pub decision: String,
}

/// Labels naming a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A fixed, short reason.
    pub reason: String,
}

/// Labels naming a kind of secret or content.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// A fixed kind name.
    pub kind: String,
}

/// Labels naming an event (of an approval, of containment).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// A fixed event name.
    pub event: String,
}

/// Labels of a notification.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    /// `approval`, `drift`, `quarantine`, `gate` or `containment`.
    pub event: String,
    /// `sent`, `failed` (after its retry) or `dropped` (the queue was full).
    pub outcome: String,
}

/// Every metric Warden exposes.
pub struct Metrics {
    registry: Registry,
    /// Tool calls, prompt gets and resource reads, by decision, server, tool and class.
    pub calls: Family<CallLabels, Counter>,
    /// Their latency through the gateway, by server.
    pub call_seconds: Family<ServerLabels, Histogram>,
    /// Every request, by method and decision.
    pub requests: Family<MethodLabels, Counter>,
    /// Write (or irreversible) calls allowed without a human's approval.
    pub unapproved_writes: Counter,
    /// Tool definitions that changed after they were pinned.
    pub drift_events: Counter,
    /// Attempts to reach a server that is not configured.
    pub unknown_servers: Counter,
    /// Authentication failures, by reason (`missing`, `invalid`, `expired`, `audience`, `issuer`,
    /// `scope`, `session`).
    pub auth_failures: Family<ReasonLabels, Counter>,
    /// Tokens refused for lacking a scope.
    pub scope_mismatches: Counter,
    /// Tokens refused for another audience.
    pub audience_mismatches: Counter,
    /// Results relayed to clients.
    pub results: Counter,
    /// Results quarantined.
    pub quarantined: Counter,
    /// Approval events (`approval_requested`, `approval_granted`, ...).
    pub approvals: Family<EventLabels, Counter>,
    /// Servers contained by an operator now.
    pub contained_servers: Gauge,
    /// Values redacted, by kind.
    pub redactions: Family<KindLabels, Counter>,
    /// Whether each server's connection is up (1) or not (0).
    pub upstream_up: Family<ServerLabels, Gauge>,
    /// Server requests to clients (sampling, elicitation, roots) refused by policy.
    pub server_requests_refused: Counter,
    /// Connections sandboxed servers asked their egress proxy for, by decision.
    pub egress: Family<EgressLabels, Counter>,
    /// Audit rows written.
    pub audit_rows: Counter,
    /// Audit rows that could not be written.
    pub audit_failures: Counter,
    /// Notifications to webhooks, by event and outcome (one per webhook for sent and failed).
    pub notifications: Family<NotifyLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("warden");
        let m = Metrics {
            calls: Family::default(),
            call_seconds: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0001, 2.0, 18))),
            requests: Family::default(),
            unapproved_writes: Counter::default(),
            drift_events: Counter::default(),
            unknown_servers: Counter::default(),
            auth_failures: Family::default(),
            scope_mismatches: Counter::default(),
            audience_mismatches: Counter::default(),
            results: Counter::default(),
            quarantined: Counter::default(),
            approvals: Family::default(),
            contained_servers: Gauge::default(),
            redactions: Family::default(),
            upstream_up: Family::default(),
            server_requests_refused: Counter::default(),
            egress: Family::default(),
            audit_rows: Counter::default(),
            audit_failures: Counter::default(),
            notifications: Family::default(),
            registry: Registry::default(),
        };
        registry.register("tool_calls", "Calls of tools, prompts and resources by decision", m.calls.clone());
        registry.register(
            "tool_call_duration_seconds",
            "Latency of allowed calls through the gateway",
            m.call_seconds.clone(),
        );
        registry.register("requests", "Requests by method and decision", m.requests.clone());
        registry.register(
            "unapproved_write_calls",
            "Write or irreversible calls allowed without a human's approval",
            m.unapproved_writes.clone(),
        );
        registry.register("manifest_drift_events", "Tool definitions changed after pinning", m.drift_events.clone());
        registry.register(
            "unknown_server_attempts",
            "Attempts to reach a server that is not configured",
            m.unknown_servers.clone(),
        );
        registry.register("auth_failures", "Authentication failures by reason", m.auth_failures.clone());
        registry.register("scope_mismatches", "Requests refused for a missing scope", m.scope_mismatches.clone());
        registry.register(
            "audience_mismatches",
            "Tokens refused for being issued to another audience",
            m.audience_mismatches.clone(),
        );
        registry.register("results", "Results relayed to clients", m.results.clone());
        registry.register("quarantined_results", "Results quarantined", m.quarantined.clone());
        registry.register("approvals", "Approval events by kind", m.approvals.clone());
        registry.register("contained_servers", "Servers contained by an operator", m.contained_servers.clone());
        registry.register("redactions", "Values redacted by kind", m.redactions.clone());
        registry.register("upstream_up", "Whether a server's connection is up", m.upstream_up.clone());
        registry.register(
            "server_requests_refused",
            "Server requests to clients refused by policy",
            m.server_requests_refused.clone(),
        );
        registry.register(
            "egress_connections",
            "Connections sandboxed servers asked their egress proxy for, by decision",
            m.egress.clone(),
        );
        registry.register_collector(Box::new(OwnEgress));
        registry.register("audit_rows", "Audit rows written", m.audit_rows.clone());
        registry.register("audit_write_failures", "Audit rows that could not be written", m.audit_failures.clone());
        registry.register(
            "notifications",
            "Notifications to webhooks by event and outcome (sent, failed, dropped)",
            m.notifications.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// `warden_egress_own_refused_total`: connections Warden itself would have made (HTTP servers,
/// JWKS, webhook, trace exporter) that the egress guard refused; kept by the guard, read at
/// each scrape.
#[derive(Debug)]
struct OwnEgress;

impl prometheus_client::collector::Collector for OwnEgress {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        let counter =
            prometheus_client::metrics::counter::ConstCounter::new(warden_upstream::egress::refused_connections());
        let metric = encoder.encode_descriptor(
            "egress_own_refused",
            "Connections Warden itself would have made that the egress guard refused",
            None,
            counter.metric_type(),
        )?;
        counter.encode(metric)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_with_conventional_names() {
        let m = Metrics::new();
        let labels =
            CallLabels { decision: "ALLOW".into(), server: "s".into(), tool: "t".into(), class: "read".into() };
        m.calls.get_or_create(&labels).inc();
        m.call_seconds.get_or_create(&ServerLabels { server: "s".into() }).observe(0.002);
        m.unapproved_writes.inc();
        m.upstream_up.get_or_create(&ServerLabels { server: "s".into() }).set(1);
        let text = m.render();
        assert!(text.contains("warden_egress_own_refused_total "), "{text}");
        assert!(
            text.contains("warden_tool_calls_total{decision=\"ALLOW\",server=\"s\",tool=\"t\",class=\"read\"} 1"),
            "{text}"
        );
        assert!(text.contains("warden_tool_call_duration_seconds_bucket"), "{text}");
        assert!(text.contains("warden_unapproved_write_calls_total 1"), "{text}");
        assert!(text.contains("warden_upstream_up{server=\"s\"} 1"), "{text}");
    }
}
