//! Read-only queries, the seed query as operators write it, and the detection gates.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::{Kind, Target, event};
use serde_json::{Value, json};
use warden_store::gates::{self, Gate, GateKind, GateResult, Trip};
use warden_store::{AuditEvent, AuditLog, AuditReader, QueryLimits, StoreError};

async fn store_with(kind: Kind, events: Vec<AuditEvent>) -> (Target, AuditReader) {
    let target = Target::new(kind).await;
    let log = AuditLog::open(target.settings()).await.expect("open");
    for event in events {
        log.record(event).await.expect("record");
    }
    log.shutdown().await.unwrap();
    let reader = AuditReader::open(&target.url).await.expect("reader");
    (target, reader)
}

async fn selects_run_and_writes_are_refused(kind: Kind) {
    let events = (0..5).map(|i| event(i, Utc::now())).collect();
    let (target, reader) = store_with(kind, events).await;
    let result = reader
        .query("SELECT seq, event_time, decision, latency_ms, redactions, arguments FROM mcp_audit ORDER BY seq")
        .await
        .expect("select");
    assert_eq!(result.columns, ["seq", "event_time", "decision", "latency_ms", "redactions", "arguments"]);
    assert_eq!(result.rows.len(), 5);
    assert_eq!(result.rows[0][0], json!(1));
    assert_eq!(result.rows[0][2], json!("DENY"));
    assert_eq!(result.rows[1][3], json!(1.35));
    assert!(!result.truncated);
    let counts = reader
        .query("SELECT decision, COUNT(*) AS n FROM mcp_audit GROUP BY decision ORDER BY decision")
        .await
        .unwrap();
    assert_eq!(counts.rows, vec![vec![json!("ALLOW"), json!(3)], vec![json!("DENY"), json!(2)]]);

    let attach = format!("ATTACH DATABASE '{}' AS other", target.path("other.db").display());
    for sql in [
        "DELETE FROM mcp_audit",
        "UPDATE mcp_audit SET decision = 'ALLOW'",
        "DROP TABLE mcp_audit",
        "INSERT INTO mcp_audit (seq, event_time, event, decision, prev_hash, row_hash) VALUES (99, '2026-01-01 00:00:00', 'x', 'ALLOW', 'a', 'b')",
        attach.as_str(),
        "SELECT 1; DELETE FROM mcp_audit",
    ] {
        reader.query(sql).await.expect_err(sql);
    }
    // These get past the statement check; the database itself refuses them.
    for sql in [
        "WITH doomed AS (SELECT seq FROM mcp_audit) DELETE FROM mcp_audit WHERE seq IN (SELECT seq FROM doomed)",
        "WITH x AS (SELECT 1) UPDATE mcp_audit SET decision = 'ALLOW'",
        "WITH x AS (SELECT 1) INSERT INTO mcp_audit SELECT * FROM mcp_audit",
    ] {
        let err = reader.query(sql).await.expect_err(sql);
        assert!(matches!(err, StoreError::Database { .. }), "{sql}: {err}");
        assert!(err.to_string().contains("read"), "{sql}: {err}");
    }
    assert_eq!(reader.count().await.unwrap(), 5);
    assert!(reader.verify::<&str>(&[]).await.unwrap().is_clean());
    assert!(!target.path("other.db").exists());
}

async fn queries_are_bounded(kind: Kind) {
    let (_target, reader) = store_with(kind, vec![event(1, Utc::now())]).await;
    let reader = reader.with_query_limits(QueryLimits { timeout: Duration::from_millis(300), max_rows: 10 });
    let many = reader
        .query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50) SELECT x FROM c")
        .await
        .unwrap();
    assert_eq!((many.rows.len(), many.truncated), (10, true));
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c";
    let started = std::time::Instant::now();
    let err = reader.query(endless).await.expect_err("must be stopped");
    assert!(matches!(err, StoreError::QueryTimeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // The connection is usable afterwards.
    assert_eq!(reader.query("SELECT COUNT(*) FROM mcp_audit").await.unwrap().rows, vec![vec![json!(1)]]);
}

fn unapproved_write_mix(now: DateTime<Utc>) -> Vec<AuditEvent> {
    let make = |id: &str, class: &str, decision: &str, approval: Option<&str>, age_minutes: i64| {
        let mut e = AuditEvent::new(now - TimeDelta::minutes(age_minutes), "call", decision);
        e.request_id = Some(id.into());
        e.action_class = Some(class.into());
        e.approval_id = approval.map(Into::into);
        e
    };
    vec![
        make("hit-now", "write", "ALLOW", None, 0),
        make("approved", "write", "ALLOW", Some("apr-1"), 1),
        make("denied", "write", "DENY", None, 1),
        make("read", "read", "ALLOW", None, 1),
        make("too-old", "write", "ALLOW", None, 20),
        make("hit-9m", "write", "ALLOW", None, 9),
        make("irreversible", "irreversible", "ALLOW", None, 1),
    ]
}

async fn the_seed_query_finds_exactly_the_unapproved_writes(kind: Kind) {
    let (_target, reader) = store_with(kind, unapproved_write_mix(Utc::now())).await;
    let base = "SELECT * FROM mcp_audit WHERE action_class = 'write' AND decision = 'ALLOW' AND approval_id IS NULL";
    let windows: &[&str] = match kind {
        Kind::Postgres => &["event_time > now() - interval '10 minutes'"],
        Kind::Sqlite => &[
            "event_time > strftime('%Y-%m-%d %H:%M:%f','now','-10 minutes')",
            "event_time > datetime('now', '-10 minutes')",
        ],
    };
    for window in windows {
        let result = reader.query(&format!("{base} AND {window}")).await.expect(window);
        let id = result.columns.iter().position(|c| c == "request_id").expect("SELECT * has request_id");
        let mut ids: Vec<&Value> = result.rows.iter().map(|row| &row[id]).collect();
        ids.sort_by_key(|v| v.to_string());
        assert_eq!(ids, [&json!("hit-9m"), &json!("hit-now")], "{window}");
        assert_eq!(result.columns.len(), 30, "every column, with each row's chain, link and scopes");
    }
}

fn at(now: DateTime<Utc>, minutes_ago: i64, kind: &str, decision: &str) -> AuditEvent {
    AuditEvent::new(now - TimeDelta::minutes(minutes_ago), kind, decision)
}

fn with(mut e: AuditEvent, f: impl FnOnce(&mut AuditEvent)) -> AuditEvent {
    f(&mut e);
    e
}

/// Rows that trip no default gate, some of them exactly at a threshold.
fn quiet(now: DateTime<Utc>) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    // 98 reads, 1 approved write, and (below) a write 12 minutes old: 100 allowed calls in 15 minutes.
    for _ in 0..98 {
        events.push(with(at(now, 1, "call", "ALLOW"), |e| e.action_class = Some("read".into())));
    }
    events.push(with(at(now, 1, "call", "ALLOW"), |e| {
        e.action_class = Some("write".into());
        e.approval_id = Some("apr-1".into());
    }));
    events.push(with(at(now, 1, "call", "DENY"), |e| e.action_class = Some("write".into())));
    // Outside the 10-minute windows (inside the 15-minute ones).
    events.push(with(at(now, 12, "call", "ALLOW"), |e| e.action_class = Some("write".into())));
    events.push(at(now, 20, "unknown_server", "DENY"));
    // Inside the declared deploy window.
    events.push(at(now, 2, "drift", "DENY"));
    // 3 of 100 allowed calls: exactly 3%, which does not trip "> 3%".
    for _ in 0..3 {
        events.push(at(now, 1, "quarantine", "ALLOW"));
    }
    // 1 of 101 calls + 1 auth < 1%.
    events.push(with(at(now, 1, "auth", "AUTH_FAILED"), |e| e.reason = Some("scope: tools:write missing".into())));
    events
}

/// Rows that trip every default gate.
fn loud(now: DateTime<Utc>) -> Vec<AuditEvent> {
    vec![
        with(at(now, 0, "call", "ALLOW"), |e| e.action_class = Some("write".into())),
        at(now, 0, "unknown_server", "DENY"),
        at(now, 7, "drift", "DENY"),
        at(now, 1, "quarantine", "ALLOW"),
        with(at(now, 1, "auth", "AUTH_FAILED"), |e| e.reason = Some("audience mismatch".into())),
    ]
}

fn gate_set(now: DateTime<Utc>) -> Vec<Gate> {
    let mut gates = gates::default_gates();
    for gate in &mut gates {
        if let GateKind::DriftOutsideWindows { windows } = &mut gate.kind {
            windows.push((now - TimeDelta::minutes(5), now));
        }
    }
    gates.push(Gate {
        name: "denials".into(),
        kind: GateKind::Sql {
            count_sql: "SELECT COUNT(*) FROM mcp_audit WHERE event_time > $1 AND decision = 'DENY' AND event = 'call'"
                .into(),
            total_sql: None,
        },
        window: Duration::from_secs(600),
        threshold: 1.0,
        trip: Trip::AtOrAbove,
    });
    gates
}

fn by_name<'a>(results: &'a [GateResult], name: &str) -> &'a GateResult {
    results.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("no gate {name}"))
}

async fn gates_trip_on_crafted_rows(kind: Kind) {
    let now = Utc::now();
    let (target, reader) = store_with(kind, quiet(now)).await;
    let results = gates::evaluate(&reader, &gate_set(now), now).await.expect("evaluate");
    for name in [
        "unapproved_writes",
        "unknown_servers",
        "drift_outside_deploy_windows",
        "scope_mismatch_ratio",
        "quarantine_ratio",
    ] {
        let result = by_name(&results, name);
        assert!(!result.tripped, "{result:?}");
    }
    assert_eq!(by_name(&results, "quarantine_ratio").value, 0.03);
    assert_eq!(by_name(&results, "scope_mismatch_ratio").value, 1.0 / 102.0);
    assert!(by_name(&results, "denials").tripped, "custom SQL gate with a bound window");

    let log = AuditLog::open(target.settings()).await.unwrap();
    for event in loud(now) {
        log.record(event).await.unwrap();
    }
    log.shutdown().await.unwrap();
    let results = gates::evaluate(&reader, &gate_set(now), now).await.expect("evaluate");
    let values: Vec<(&str, f64, bool)> = results.iter().map(|r| (r.name.as_str(), r.value, r.tripped)).collect();
    assert_eq!(
        values,
        vec![
            ("unapproved_writes", 1.0, true),
            ("unknown_servers", 1.0, true),
            ("drift_outside_deploy_windows", 1.0, true),
            ("scope_mismatch_ratio", 2.0 / 104.0, true),
            ("quarantine_ratio", 4.0 / 101.0, true),
            ("denials", 1.0, true),
        ]
    );
    assert!(by_name(&results, "quarantine_ratio").detail.contains("4 quarantined results of 101 allowed calls"));
}

async fn ratio_gates_with_nothing_to_divide_are_zero(kind: Kind) {
    let now = Utc::now();
    let (_target, reader) = store_with(kind, vec![at(now, 1, "quarantine", "ALLOW")]).await;
    let results = gates::evaluate(&reader, &gates::default_gates(), now).await.unwrap();
    let quarantine = by_name(&results, "quarantine_ratio");
    assert_eq!((quarantine.value, quarantine.tripped), (0.0, false));
}

on_both!(
    selects_run_and_writes_are_refused,
    queries_are_bounded,
    the_seed_query_finds_exactly_the_unapproved_writes,
    gates_trip_on_crafted_rows,
    ratio_gates_with_nothing_to_divide_are_zero,
);
