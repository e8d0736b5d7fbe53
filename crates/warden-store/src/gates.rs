//! Detection gates: counts and ratios over a recent window of the audit log, each with a
//! threshold that trips an alert.
//!
//! Each gate is SQL that runs unchanged on SQLite and Postgres: the window start (and any
//! other times) are bound as parameters `$1`, `$2`, ... in the form each database stores.
//! Judging a count against its threshold is pure ([`Gate::judge`]).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::{AuditReader, StoreError};

/// What a gate counts.
#[derive(Debug, Clone, PartialEq)]
pub enum GateKind {
    /// Writes allowed without an approval: `action_class = 'write' AND decision = 'ALLOW'
    /// AND approval_id IS NULL`.
    UnapprovedWrites,
    /// Traffic naming a server that is not registered: `event = 'unknown_server'`.
    UnknownServers,
    /// Tool definitions that changed (`event = 'drift'`) outside every declared deploy window.
    DriftOutsideWindows { windows: Vec<(DateTime<Utc>, DateTime<Utc>)> },
    /// Authentication failures for scope or audience (`decision = 'AUTH_FAILED' AND (reason
    /// LIKE 'scope%' OR reason LIKE 'audience%')`) over all `call` and `auth` events.
    ScopeMismatchRatio,
    /// Quarantined results (`event = 'quarantine'`) over allowed calls (`event = 'call' AND
    /// decision = 'ALLOW'`).
    QuarantineRatio,
    /// Operator SQL returning one number; `$1` is bound to the window start. With
    /// `total_sql`, the gate is the ratio of the two.
    Sql { count_sql: String, total_sql: Option<String> },
}

/// How the value is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trip {
    /// Trips when value > threshold.
    Above,
    /// Trips when value >= threshold.
    AtOrAbove,
}

/// One detection gate.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub name: String,
    pub kind: GateKind,
    /// How far back from `now` to look.
    pub window: Duration,
    /// A count, or for ratio gates a fraction (0.01 = 1%).
    pub threshold: f64,
    pub trip: Trip,
}

/// A gate's reading.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GateResult {
    pub name: String,
    /// The count, or the ratio (0 when nothing was counted in the denominator).
    pub value: f64,
    pub threshold: f64,
    pub tripped: bool,
    /// E.g. "2 of 150 call/auth events (1.33%) in the last 15m".
    pub detail: String,
}

impl Gate {
    /// Whether the value is a ratio (a fraction) rather than a count.
    pub fn is_ratio(&self) -> bool {
        match &self.kind {
            GateKind::ScopeMismatchRatio | GateKind::QuarantineRatio => true,
            GateKind::Sql { total_sql, .. } => total_sql.is_some(),
            _ => false,
        }
    }

    /// The count SQL, the optional denominator SQL, and the times to bind (window start first).
    fn sql(&self, since: DateTime<Utc>) -> (String, Option<String>, Vec<DateTime<Utc>>) {
        let count = |condition: &str| format!("SELECT COUNT(*) FROM mcp_audit WHERE event_time > $1 AND {condition}");
        match &self.kind {
            GateKind::UnapprovedWrites => (
                count("action_class IN ('write', 'irreversible') AND decision = 'ALLOW' AND approval_id IS NULL"),
                None,
                vec![since],
            ),
            GateKind::UnknownServers => (count("event = 'unknown_server'"), None, vec![since]),
            GateKind::DriftOutsideWindows { windows } => {
                let mut sql = count("event = 'drift'");
                let mut times = vec![since];
                for (start, end) in windows {
                    let n = times.len();
                    sql.push_str(&format!(" AND NOT (event_time >= ${} AND event_time <= ${})", n + 1, n + 2));
                    times.extend([*start, *end]);
                }
                (sql, None, times)
            }
            GateKind::ScopeMismatchRatio => (
                count("decision = 'AUTH_FAILED' AND (reason LIKE 'scope%' OR reason LIKE 'audience%')"),
                Some(count("event IN ('call', 'auth')")),
                vec![since],
            ),
            GateKind::QuarantineRatio => {
                (count("event = 'quarantine'"), Some(count("event = 'call' AND decision = 'ALLOW'")), vec![since])
            }
            GateKind::Sql { count_sql, total_sql } => (count_sql.clone(), total_sql.clone(), vec![since]),
        }
    }

    fn counted(&self) -> (&'static str, &'static str) {
        match &self.kind {
            GateKind::UnapprovedWrites => ("writes allowed without approval", ""),
            GateKind::UnknownServers => ("events naming unknown servers", ""),
            GateKind::DriftOutsideWindows { .. } => ("tool definition changes outside deploy windows", ""),
            GateKind::ScopeMismatchRatio => ("scope or audience failures", "call/auth events"),
            GateKind::QuarantineRatio => ("quarantined results", "allowed calls"),
            GateKind::Sql { .. } => ("matching rows", "rows"),
        }
    }

    /// Judges a count (and, for ratio gates, its denominator) against the threshold.
    pub fn judge(&self, count: f64, total: Option<f64>) -> GateResult {
        let (what, of) = self.counted();
        let window = human(self.window);
        let (value, detail) = match total {
            Some(total) => {
                let ratio = if total > 0.0 { count / total } else { 0.0 };
                (ratio, format!("{count} {what} of {total} {of} ({:.2}%) in the last {window}", ratio * 100.0))
            }
            None => (count, format!("{count} {what} in the last {window}")),
        };
        let tripped = match self.trip {
            Trip::Above => value > self.threshold,
            Trip::AtOrAbove => value >= self.threshold,
        };
        GateResult { name: self.name.clone(), value, threshold: self.threshold, tripped, detail }
    }
}

fn human(window: Duration) -> String {
    let secs = window.as_secs();
    match secs {
        0 => format!("{}ms", window.as_millis()),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Reads every gate as of `now`.
pub async fn evaluate(reader: &AuditReader, gates: &[Gate], now: DateTime<Utc>) -> Result<Vec<GateResult>, StoreError> {
    let mut results = Vec::with_capacity(gates.len());
    for gate in gates {
        let window = TimeDelta::from_std(gate.window)
            .map_err(|_| StoreError::Settings(format!("gate `{}`: its window is too long", gate.name)))?;
        let since = now.checked_sub_signed(window).unwrap_or(DateTime::<Utc>::MIN_UTC);
        let (count_sql, total_sql, times) = gate.sql(since);
        let count = reader.backend().scalar(&count_sql, &times).await?;
        let total = match &total_sql {
            Some(sql) => Some(reader.backend().scalar(sql, &times).await?),
            None => None,
        };
        results.push(gate.judge(count, total));
    }
    Ok(results)
}

/// The seeded gates: unapproved writes, unknown servers and drift outside deploy windows
/// (any in 10 minutes), scope mismatches (>= 1% over 15 minutes), quarantines (> 3% over
/// 15 minutes). Replace the drift gate's `windows` with the declared deploy windows.
pub fn default_gates() -> Vec<Gate> {
    let minutes = |m: u64| Duration::from_secs(m * 60);
    let gate =
        |name: &str, kind, window, threshold, trip| Gate { name: name.to_owned(), kind, window, threshold, trip };
    vec![
        gate("unapproved_writes", GateKind::UnapprovedWrites, minutes(10), 0.0, Trip::Above),
        gate("unknown_servers", GateKind::UnknownServers, minutes(10), 0.0, Trip::Above),
        gate(
            "drift_outside_deploy_windows",
            GateKind::DriftOutsideWindows { windows: Vec::new() },
            minutes(10),
            0.0,
            Trip::Above,
        ),
        gate("scope_mismatch_ratio", GateKind::ScopeMismatchRatio, minutes(15), 0.01, Trip::AtOrAbove),
        gate("quarantine_ratio", GateKind::QuarantineRatio, minutes(15), 0.03, Trip::Above),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(name: &str) -> Gate {
        default_gates().into_iter().find(|g| g.name == name).unwrap()
    }

    #[test]
    fn thresholds_compare_as_documented() {
        assert!(!gate("unapproved_writes").judge(0.0, None).tripped);
        assert!(gate("unapproved_writes").judge(1.0, None).tripped);
        let scope = gate("scope_mismatch_ratio");
        assert!(scope.judge(1.0, Some(100.0)).tripped, "1% trips at >= 1%");
        assert!(!scope.judge(1.0, Some(101.0)).tripped);
        let quarantine = gate("quarantine_ratio");
        assert!(!quarantine.judge(3.0, Some(100.0)).tripped, "3% does not trip > 3%");
        assert!(quarantine.judge(4.0, Some(100.0)).tripped);
    }

    #[test]
    fn a_zero_denominator_is_zero() {
        let result = gate("quarantine_ratio").judge(5.0, Some(0.0));
        assert_eq!(result.value, 0.0);
        assert!(!result.tripped);
    }

    #[test]
    fn drift_windows_become_parameters() {
        let now = Utc::now();
        let windows = vec![(now, now), (now, now)];
        let g = Gate { kind: GateKind::DriftOutsideWindows { windows }, ..gate("drift_outside_deploy_windows") };
        let (sql, total, times) = g.sql(now);
        assert!(sql.ends_with("AND NOT (event_time >= $4 AND event_time <= $5)"), "{sql}");
        assert_eq!((total, times.len()), (None, 5));
        assert!(g.judge(1.0, None).detail.contains("in the last 10m"));
    }
}
