//! Audit write throughput on one Postgres, with one gateway and with two (each its own writer
//! and chain), in both durability modes: rows per second over all writers, and the wall time.
//!
//!   cargo bench -p warden-store --bench append            # WARDEN_BENCH_POSTGRES to override
//!
//! Each run uses a schema of its own in the database, dropped afterwards. Every writer records
//! `ROWS` events from `TASKS` concurrent tasks (callers waiting on their row in `sync`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use sqlx::Connection;
use warden_store::{AuditEvent, AuditLog, AuditReader, AuditSettings, Durability};

const ROWS: usize = 20_000;
const TASKS: usize = 32;

fn event(i: usize) -> AuditEvent {
    let mut e = AuditEvent::new(Utc::now(), "call", "ALLOW");
    e.tool_name = Some("echo".into());
    e.server_name = Some("demo".into());
    e.actor_id = Some(format!("user-{}", i % 50));
    e.arguments = Some(serde_json::json!({ "text": format!("call {i}") }));
    e.latency_ms = Some(1.5);
    e
}

async fn run(base: &str, writers: usize, durability: Durability) -> (f64, Duration) {
    let schema = format!("bench_{}", hex::encode(rand::random::<[u8; 6]>()));
    let mut admin = sqlx::PgConnection::connect(base).await.expect("Postgres");
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.expect("schema");
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let mut logs = Vec::new();
    for _ in 0..writers {
        let mut settings = AuditSettings::new(url.clone());
        settings.durability = durability;
        logs.push(Arc::new(AuditLog::open(settings).await.expect("open")));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for log in &logs {
        for t in 0..TASKS {
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                for i in (t..ROWS).step_by(TASKS) {
                    log.record(event(i)).await.expect("record");
                }
            }));
        }
    }
    for t in tasks {
        t.await.expect("task");
    }
    for log in &logs {
        log.shutdown().await.expect("shutdown");
    }
    let took = started.elapsed();
    let report = AuditReader::open(&url).await.expect("reader").verify::<&str>(&[]).await.expect("verify");
    assert!(report.is_clean() && report.rows == (ROWS * writers) as u64, "{report:?}");
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await.expect("drop");
    ((ROWS * writers) as f64 / took.as_secs_f64(), took)
}

#[tokio::main]
async fn main() {
    let base =
        std::env::var("WARDEN_BENCH_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    println!("{ROWS} rows per writer, {TASKS} concurrent callers per writer, Postgres at {base}");
    println!("{:<9} {:>8} {:>12} {:>10}", "mode", "writers", "rows/s", "wall");
    for (name, durability) in
        [("sync", Durability::Sync), ("batched", Durability::Batched { max_delay: Duration::from_millis(50) })]
    {
        for writers in [1, 2] {
            let (rate, took) = run(&base, writers, durability).await;
            println!("{name:<9} {writers:>8} {rate:>12.0} {:>9.2}s", took.as_secs_f64());
        }
    }
}
