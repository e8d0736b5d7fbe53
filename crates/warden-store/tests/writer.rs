//! The writer: concurrency, durability modes, draining, multiple writers, the JSONL sink.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use common::{Kind, Target, event};
use warden_store::{AuditLog, AuditReader, AuditRow, Durability, JsonlSink, StoreError};

const BATCHED: Durability = Durability::Batched { max_delay: Duration::from_millis(5) };

async fn record_concurrently(log: &AuditLog, total: usize, tasks: usize) {
    let log = Arc::new(log.clone());
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let log = log.clone();
            tokio::spawn(async move {
                for i in (t..total).step_by(tasks) {
                    log.record(event(i, Utc::now())).await.expect("record");
                }
            })
        })
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
}

async fn concurrent_records_chain(kind: Kind, durability: Durability) {
    let target = Target::new(kind).await;
    let mut settings = target.settings();
    settings.durability = durability;
    settings.max_batch = 64;
    let log = AuditLog::open(settings).await.expect("open");
    record_concurrently(&log, 500, 8).await;
    log.shutdown().await.expect("shutdown");
    let reader = AuditReader::open(&target.url).await.expect("reader");
    assert_eq!(reader.count().await.unwrap(), 500);
    let report = reader.verify::<&str>(&[]).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.rows, 500);
    assert_eq!(report.head.as_ref().map(|h| h.0), Some(500));
    let rows = reader.rows_after(0, 10_000).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=500).collect::<Vec<_>>());
}

async fn sync_mode_concurrent(kind: Kind) {
    concurrent_records_chain(kind, Durability::Sync).await;
}

async fn batched_mode_concurrent(kind: Kind) {
    concurrent_records_chain(kind, BATCHED).await;
}

async fn sync_record_is_visible_to_a_separate_reader(kind: Kind) {
    let target = Target::new(kind).await;
    let log = AuditLog::open(target.settings()).await.expect("open");
    let reader = AuditReader::open(&target.url).await.expect("reader");
    for i in 1..=20 {
        log.record(event(i, Utc::now())).await.expect("record");
        assert_eq!(reader.count().await.unwrap(), i as i64, "row {i} not visible after record returned");
    }
    assert_eq!(log.backlog(), 0);
    log.shutdown().await.unwrap();
}

async fn batched_shutdown_drains_the_queue(kind: Kind) {
    let target = Target::new(kind).await;
    let mut settings = target.settings();
    settings.durability = Durability::Batched { max_delay: Duration::from_secs(60) };
    settings.max_batch = 1000;
    let log = AuditLog::open(settings.clone()).await.expect("open");
    for i in 0..50 {
        log.record(event(i, Utc::now())).await.expect("record");
    }
    assert!(log.backlog() > 0, "rows should still be queued behind the 60 s delay");
    let started = Instant::now();
    log.shutdown().await.expect("shutdown");
    log.shutdown().await.expect("shutdown is idempotent");
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown waited for the batch delay");
    assert_eq!(log.backlog(), 0);
    assert!(matches!(log.record(event(0, Utc::now())).await, Err(StoreError::Closed)));

    // Reopen: everything is there and the chain continues.
    let log = AuditLog::open(settings).await.expect("reopen");
    log.record(event(50, Utc::now())).await.unwrap();
    log.shutdown().await.unwrap();
    let reader = AuditReader::open(&target.url).await.unwrap();
    assert_eq!(reader.count().await.unwrap(), 51);
    let report = reader.verify::<&str>(&[]).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    match kind {
        Kind::Sqlite => assert_eq!(report.head.map(|h| h.0), Some(51), "the one chain continues"),
        Kind::Postgres => {
            // Each process appends to a chain of its own.
            let rows: Vec<u64> = report.chains.iter().map(|c| c.rows).collect();
            assert_eq!(rows.iter().sum::<u64>(), 51);
            assert!(rows.contains(&50) && rows.contains(&1), "{report:?}");
        }
    }
}

async fn dropping_every_handle_still_writes_the_queue(kind: Kind) {
    let target = Target::new(kind).await;
    let mut settings = target.settings();
    settings.durability = Durability::Batched { max_delay: Duration::from_millis(500) };
    let log = AuditLog::open(settings).await.expect("open");
    let clone = log.clone();
    for i in 0..50 {
        clone.record(event(i, Utc::now())).await.expect("record");
    }
    drop(log);
    drop(clone);
    let reader = AuditReader::open(&target.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.count().await.unwrap() < 50 {
        assert!(Instant::now() < deadline, "queued rows were lost when the handles were dropped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reader.verify::<&str>(&[]).await.unwrap().is_clean());
}

/// Two gateways on one database: on SQLite one chain (BEGIN IMMEDIATE), on Postgres a chain each
/// (no lock between them); every chain verifies.
async fn two_writers_share_one_chain(kind: Kind) {
    let target = Target::new(kind).await;
    let first = AuditLog::open(target.settings()).await.expect("open");
    let mut settings = target.settings();
    settings.durability = BATCHED;
    let second = AuditLog::open(settings).await.expect("open second");
    tokio::join!(record_concurrently(&first, 150, 4), record_concurrently(&second, 150, 4));
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
    let reader = AuditReader::open(&target.url).await.unwrap();
    assert_eq!(reader.count().await.unwrap(), 300);
    let report = reader.verify::<&str>(&[]).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    let chains = if kind == Kind::Sqlite { 1 } else { 2 };
    assert_eq!(report.chains.len(), chains, "{report:?}");
    assert_eq!(report.rows, 300);
}

async fn jsonl_lines_equal_rows(kind: Kind) {
    let target = Target::new(kind).await;
    let path = target.path("audit.jsonl");
    let mut settings = target.settings();
    settings.jsonl = Some(JsonlSink::File(path.clone()));
    settings.durability = BATCHED;
    let log = AuditLog::open(settings).await.expect("open");
    record_concurrently(&log, 40, 4).await;
    log.shutdown().await.unwrap();
    let reader = AuditReader::open(&target.url).await.unwrap();
    let rows = reader.rows_after(0, 100).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 40);
    for (line, row) in lines.iter().zip(&rows) {
        let json: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(json, serde_json::to_value(row).unwrap());
        let parsed: AuditRow = serde_json::from_str(line).unwrap();
        assert_eq!(&parsed, row);
        let time = json["event_time"].as_str().unwrap();
        assert!(time.ends_with('Z') && time.len() == "2026-01-01T00:00:00.000000Z".len(), "{time}");
        assert!(json["policy_ids"].is_array() && json["arguments"].is_object());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}

async fn rows_read_back_as_written(kind: Kind) {
    let target = Target::new(kind).await;
    let log = AuditLog::open(target.settings()).await.expect("open");
    let mut written = Vec::new();
    for i in 0..10 {
        let mut e = event(i, Utc::now());
        if i == 3 {
            e.arguments = None;
            e.latency_ms = Some(f64::NAN);
            e.policy_ids = Vec::new();
        }
        log.record(e.clone()).await.unwrap();
        written.push(e);
    }
    log.shutdown().await.unwrap();
    let reader = AuditReader::open(&target.url).await.unwrap();
    let rows = reader.rows_after(0, 100).await.unwrap();
    for (row, mut event) in rows.into_iter().zip(written) {
        event.event_time = chrono::SubsecRound::trunc_subsecs(event.event_time, 6);
        event.latency_ms = event.latency_ms.filter(|ms| ms.is_finite());
        assert_eq!(row.event, event);
    }
    assert_eq!(reader.rows_after(5, 2).await.unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), vec![6, 7]);
}

/// A trigger that makes every insert fail, standing in for a database that is down or full.
async fn break_inserts(target: &Target, broken: bool) {
    let sql = match (target.kind, broken) {
        (Kind::Sqlite, true) => {
            "CREATE TRIGGER refuse BEFORE INSERT ON mcp_audit BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
        }
        (Kind::Sqlite, false) => "DROP TRIGGER refuse",
        (Kind::Postgres, true) => {
            "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER refuse BEFORE INSERT ON mcp_audit FOR EACH ROW EXECUTE FUNCTION refuse();"
        }
        (Kind::Postgres, false) => "DROP TRIGGER refuse ON mcp_audit",
    };
    target.raw(sql).await;
}

async fn a_failed_commit_fails_sync_callers_and_retries_batched_rows(kind: Kind) {
    let target = Target::new(kind).await;
    let log = AuditLog::open(target.settings()).await.expect("open");
    log.record(event(1, Utc::now())).await.unwrap();
    break_inserts(&target, true).await;
    let err = log.record(event(2, Utc::now())).await.expect_err("the caller must learn the row is not stored");
    assert!(matches!(err, StoreError::NotRecorded(_)), "{err}");
    assert!(err.to_string().contains("injected failure"), "{err}");
    break_inserts(&target, false).await;
    log.record(event(3, Utc::now())).await.unwrap();
    log.shutdown().await.unwrap();

    let mut settings = target.settings();
    settings.durability = BATCHED;
    let log = AuditLog::open(settings).await.expect("open batched");
    break_inserts(&target, true).await;
    for i in 4..=6 {
        log.record(event(i, Utc::now())).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reader = AuditReader::open(&target.url).await.unwrap();
    assert_eq!(reader.count().await.unwrap(), 2);
    assert_eq!(log.backlog(), 3, "the failed rows are still held");
    break_inserts(&target, false).await;
    log.shutdown().await.unwrap();
    assert_eq!(reader.count().await.unwrap(), 5, "batched rows were retried, not dropped");
    assert!(reader.verify::<&str>(&[]).await.unwrap().is_clean());
}

/// The scopes a caller presented are part of the chain: removing them from a row is found.
async fn scopes_are_chained(kind: Kind) {
    let target = Target::new(kind).await;
    let log = AuditLog::open(target.settings()).await.expect("open");
    for i in 0..4 {
        log.record(event(i, Utc::now())).await.unwrap();
    }
    log.shutdown().await.unwrap();
    let reader = AuditReader::open(&target.url).await.unwrap();
    assert!(reader.verify::<&str>(&[]).await.unwrap().is_clean());
    let rows = reader.rows_after(0, 10).await.unwrap();
    assert_eq!(rows[1].event.scopes, Some(vec!["mcp".to_owned(), "notes:write".to_owned()]));
    assert_eq!(rows[2].event.scopes, Some(vec![]));
    assert_eq!(rows[0].event.scopes, None);
    let exported = serde_json::to_value(&rows[1]).unwrap();
    assert_eq!(exported["scopes"], serde_json::json!(["mcp", "notes:write"]), "shown by the export");
    target.raw("UPDATE mcp_audit SET scopes = '[\"mcp\"]' WHERE scopes LIKE '%notes:write%'").await;
    let bad = reader.verify::<&str>(&[]).await.unwrap().first_bad.expect("an edited scope breaks the chain");
    assert_eq!(bad.seq, rows[1].seq);
}

on_both!(
    scopes_are_chained,
    a_failed_commit_fails_sync_callers_and_retries_batched_rows,
    sync_mode_concurrent,
    batched_mode_concurrent,
    sync_record_is_visible_to_a_separate_reader,
    batched_shutdown_drains_the_queue,
    dropping_every_handle_still_writes_the_queue,
    two_writers_share_one_chain,
    jsonl_lines_equal_rows,
    rows_read_back_as_written,
);

#[tokio::test]
async fn retention_without_a_signing_key_is_refused() {
    let target = Target::new(Kind::Sqlite).await;
    let mut settings = target.settings();
    settings.retain = Some(Duration::from_secs(3600));
    assert!(matches!(AuditLog::open(settings).await, Err(StoreError::Settings(_))));
}

#[tokio::test]
async fn a_bad_url_never_shows_its_password() {
    let err = AuditLog::open(warden_store::AuditSettings::new("postgres://audit:hunter2@127.0.0.1:1/x"))
        .await
        .err()
        .expect("nothing listens on port 1");
    let shown = err.to_string();
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
}

/// Following a log two gateways write: chain by chain, each in link order, nothing skipped.
#[tokio::test]
async fn postgres_rows_are_followed_chain_by_chain() {
    let target = Target::new(Kind::Postgres).await;
    let (a, b) = (AuditLog::open(target.settings()).await.unwrap(), AuditLog::open(target.settings()).await.unwrap());
    tokio::join!(record_concurrently(&a, 30, 3), record_concurrently(&b, 20, 2));
    let reader = AuditReader::open(&target.url).await.unwrap();
    let mut positions = reader.chain_positions(i64::MAX).await.unwrap();
    positions.sort();
    let mut expected = vec![(a.chain().to_owned(), 30), (b.chain().to_owned(), 20)];
    expected.sort();
    assert_eq!(positions, expected);
    let none: Vec<i64> = reader.chain_positions(0).await.unwrap().into_iter().map(|(_, l)| l).collect();
    assert_eq!(none, vec![0, 0], "nothing at or before seq 0");
    let rows = reader.chain_rows_after(a.chain(), 10, 100).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.link).collect::<Vec<_>>(), (11..=30).collect::<Vec<_>>());
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
}
