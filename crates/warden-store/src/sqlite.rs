//! The SQLite side of [`Backend`](crate::backend::Backend): one file, WAL, times as text.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Column, Executor, Row, Sqlite, SqliteConnection, SqlitePool, Statement, Transaction, TypeInfo, ValueRef};

use crate::StoreError;
use crate::backend::{Backend, CONNECT_TIMEOUT, Decoded, redact};
use crate::chain::{COLUMNS, StoredRow};
use crate::checkpoint::Checkpoint;
use crate::event::stored_time;
use crate::query::{Dialect, QueryLimits, QueryResult, check_read_statement};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a connection waits for another writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn open_writer(path: &Path, url: &str, synchronous_full: bool) -> Result<Backend, StoreError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io { path: parent.to_owned(), source })?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(if synchronous_full { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
        .busy_timeout(BUSY_TIMEOUT);
    // The writer task and pruning; reads go through `AuditReader`.
    let pool = SqlitePoolOptions::new()
        .acquire_timeout(CONNECT_TIMEOUT)
        .max_connections(2)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect { url: redact(url), source })?;
    MIGRATOR.run(&pool).await.map_err(|source| StoreError::Migrate { url: redact(url), source })?;
    Ok(Backend::Sqlite(pool))
}

pub(crate) async fn open_reader(path: &Path, url: &str) -> Result<Backend, StoreError> {
    if !path.exists() {
        return Err(StoreError::Url {
            url: redact(url),
            problem: "no audit database at that path (the gateway creates it on first start)".into(),
        });
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("query_only", "ON");
    let pool = SqlitePoolOptions::new()
        .acquire_timeout(CONNECT_TIMEOUT)
        .max_connections(2)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect { url: redact(url), source })?;
    Ok(Backend::Sqlite(pool))
}

/// `BEGIN IMMEDIATE` takes the write lock at once, so two writers cannot both read the same
/// head and then collide.
pub(crate) async fn begin_write(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::db("starting a write transaction"))
}

pub(crate) async fn last_row(conn: &mut SqliteConnection) -> Result<Option<(i64, String)>, StoreError> {
    sqlx::query_as("SELECT seq, row_hash FROM mcp_audit ORDER BY seq DESC LIMIT 1")
        .fetch_optional(conn)
        .await
        .map_err(StoreError::db("reading the chain head"))
}

pub(crate) async fn insert(conn: &mut SqliteConnection, row: &StoredRow) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "INSERT INTO mcp_audit ({COLUMNS}) VALUES \
         ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)"
    ))
    .bind(row.seq)
    .bind(&row.event_time)
    .bind(&row.request_id)
    .bind(&row.era)
    .bind(&row.event)
    .bind(&row.method)
    .bind(&row.actor_id)
    .bind(&row.actor_class)
    .bind(&row.tenant)
    .bind(&row.client_id)
    .bind(&row.session_id)
    .bind(&row.server_name)
    .bind(&row.tool_name)
    .bind(&row.action_class)
    .bind(&row.arguments)
    .bind(row.redactions)
    .bind(&row.result_hash)
    .bind(&row.decision)
    .bind(&row.policy_ids)
    .bind(&row.reason)
    .bind(&row.approval_id)
    .bind(&row.outcome)
    .bind(row.error_code)
    .bind(row.latency_ms)
    .bind(&row.prev_hash)
    .bind(&row.row_hash)
    .bind(&row.findings)
    .execute(conn)
    .await
    .map_err(StoreError::db("inserting an audit row"))?;
    Ok(())
}

pub(crate) async fn rows_after(conn: &mut SqliteConnection, seq: i64, limit: i64) -> Result<Vec<Decoded>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM mcp_audit WHERE seq > $1 ORDER BY seq LIMIT $2"))
        .bind(seq)
        .bind(limit)
        .fetch_all(conn)
        .await
        .map_err(StoreError::db("reading audit rows"))?;
    Ok(rows.iter().map(decode).collect())
}

/// Reads a row without trusting it: a value of the wrong type (SQLite lets a hand edit store
/// text in an integer column) becomes an error naming the column, never a panic.
fn decode(row: &SqliteRow) -> Decoded {
    let seq: i64 = row.try_get("seq").map_err(|_| (0, "its seq is not an integer".to_owned()))?;
    macro_rules! col {
        ($name:literal) => {
            row.try_get($name).map_err(|_| (seq, format!("column {} holds a value of the wrong type", $name)))?
        };
    }
    Ok(StoredRow {
        seq,
        event_time: col!("event_time"),
        request_id: col!("request_id"),
        era: col!("era"),
        event: col!("event"),
        method: col!("method"),
        actor_id: col!("actor_id"),
        actor_class: col!("actor_class"),
        tenant: col!("tenant"),
        client_id: col!("client_id"),
        session_id: col!("session_id"),
        server_name: col!("server_name"),
        tool_name: col!("tool_name"),
        action_class: col!("action_class"),
        arguments: col!("arguments"),
        redactions: col!("redactions"),
        result_hash: col!("result_hash"),
        decision: col!("decision"),
        policy_ids: col!("policy_ids"),
        reason: col!("reason"),
        approval_id: col!("approval_id"),
        outcome: col!("outcome"),
        error_code: col!("error_code"),
        latency_ms: col!("latency_ms"),
        prev_hash: col!("prev_hash"),
        row_hash: col!("row_hash"),
        findings: col!("findings"),
    })
}

pub(crate) async fn count(conn: &mut SqliteConnection) -> Result<i64, StoreError> {
    sqlx::query_scalar("SELECT COUNT(*) FROM mcp_audit")
        .fetch_one(conn)
        .await
        .map_err(StoreError::db("counting audit rows"))
}

pub(crate) async fn retention_bounds(
    conn: &mut SqliteConnection,
    time: DateTime<Utc>,
) -> Result<(Option<i64>, Option<i64>), StoreError> {
    sqlx::query_as("SELECT (SELECT MIN(seq) FROM mcp_audit WHERE event_time >= $1), (SELECT MAX(seq) FROM mcp_audit)")
        .bind(stored_time(&time))
        .fetch_one(conn)
        .await
        .map_err(StoreError::db("finding rows to prune"))
}

const CHECKPOINT_COLUMNS: &str = "seq, row_hash, event_time, created_at, public_key, signature";

pub(crate) async fn checkpoint_at(conn: &mut SqliteConnection, seq: i64) -> Result<Option<Checkpoint>, StoreError> {
    let row = sqlx::query(&format!("SELECT {CHECKPOINT_COLUMNS} FROM mcp_audit_checkpoints WHERE seq = $1"))
        .bind(seq)
        .fetch_optional(conn)
        .await
        .map_err(StoreError::db("reading a checkpoint"))?;
    row.as_ref().map(decode_checkpoint).transpose()
}

pub(crate) async fn latest_checkpoint(conn: &mut SqliteConnection) -> Result<Option<Checkpoint>, StoreError> {
    let row = sqlx::query(&format!("SELECT {CHECKPOINT_COLUMNS} FROM mcp_audit_checkpoints ORDER BY seq DESC LIMIT 1"))
        .fetch_optional(conn)
        .await
        .map_err(StoreError::db("reading the latest checkpoint"))?;
    row.as_ref().map(decode_checkpoint).transpose()
}

fn decode_checkpoint(row: &SqliteRow) -> Result<Checkpoint, StoreError> {
    let seq: i64 = row.try_get("seq").map_err(StoreError::db("reading a checkpoint"))?;
    let corrupt = |_| StoreError::CorruptRow { seq, problem: "its checkpoint holds a value of the wrong type".into() };
    Ok(Checkpoint {
        seq,
        row_hash: row.try_get("row_hash").map_err(corrupt)?,
        event_time: row.try_get("event_time").map_err(corrupt)?,
        created_at: row.try_get("created_at").map_err(corrupt)?,
        public_key: row.try_get("public_key").map_err(corrupt)?,
        signature: row.try_get("signature").map_err(corrupt)?,
    })
}

pub(crate) async fn insert_checkpoint(conn: &mut SqliteConnection, cp: &Checkpoint) -> Result<(), StoreError> {
    sqlx::query(&format!("INSERT INTO mcp_audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"))
        .bind(cp.seq)
        .bind(&cp.row_hash)
        .bind(&cp.event_time)
        .bind(&cp.created_at)
        .bind(&cp.public_key)
        .bind(&cp.signature)
        .execute(conn)
        .await
        .map_err(StoreError::db("writing a checkpoint"))?;
    Ok(())
}

pub(crate) async fn delete_through(conn: &mut SqliteConnection, seq: i64) -> Result<u64, StoreError> {
    let done = sqlx::query("DELETE FROM mcp_audit WHERE seq <= $1")
        .bind(seq)
        .execute(conn)
        .await
        .map_err(StoreError::db("deleting pruned rows"))?;
    Ok(done.rows_affected())
}

pub(crate) async fn scalar(conn: &mut SqliteConnection, sql: &str, times: &[DateTime<Utc>]) -> Result<f64, StoreError> {
    let mut query = sqlx::query(sql);
    for time in times {
        query = query.bind(stored_time(time));
    }
    let row = query.fetch_one(conn).await.map_err(StoreError::db("running gate SQL"))?;
    let value = row.try_get_raw(0).map_err(StoreError::db("running gate SQL"))?;
    if value.is_null() {
        return Ok(0.0);
    }
    match value.type_info().name() {
        "INTEGER" => row.try_get::<i64, _>(0).map(|n| n as f64),
        _ => row.try_get::<f64, _>(0),
    }
    .map_err(StoreError::db("reading gate SQL's result (it must be one number)"))
}

pub(crate) async fn query(
    conn: &mut SqliteConnection,
    sql: &str,
    limits: QueryLimits,
) -> Result<QueryResult, StoreError> {
    check_read_statement(sql, Dialect::Sqlite)?;
    let deadline = Instant::now() + limits.timeout;
    // SQLite calls this every 1000 VM steps; returning false interrupts the statement.
    conn.lock_handle()
        .await
        .map_err(StoreError::db("preparing the query"))?
        .set_progress_handler(1000, move || Instant::now() < deadline);
    let result = run_query(conn, sql, limits).await;
    if let Ok(mut handle) = conn.lock_handle().await {
        handle.remove_progress_handler();
    }
    match result {
        Err(_) if Instant::now() >= deadline => Err(StoreError::QueryTimeout(limits.timeout)),
        other => other,
    }
}

async fn run_query(conn: &mut SqliteConnection, sql: &str, limits: QueryLimits) -> Result<QueryResult, StoreError> {
    let statement = conn.prepare(sql).await.map_err(StoreError::db("preparing the query"))?;
    let columns: Vec<String> = statement.columns().iter().map(|c| c.name().to_owned()).collect();
    let mut result = QueryResult { columns, ..QueryResult::default() };
    let mut rows = statement.query().fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(StoreError::db("running the query"))? {
        if result.rows.len() == limits.max_rows {
            result.truncated = true;
            break;
        }
        result.rows.push((0..row.len()).map(|i| json_value(&row, i)).collect());
    }
    Ok(result)
}

fn json_value(row: &SqliteRow, i: usize) -> serde_json::Value {
    use serde_json::Value;
    let Ok(raw) = row.try_get_raw(i) else { return Value::Null };
    if raw.is_null() {
        return Value::Null;
    }
    match raw.type_info().name() {
        "INTEGER" => row.try_get::<i64, _>(i).map_or(Value::Null, Value::from),
        "REAL" => row.try_get::<f64, _>(i).map_or(Value::Null, Value::from),
        "BLOB" => row.try_get::<Vec<u8>, _>(i).map_or(Value::Null, |b| Value::from(hex::encode(b))),
        _ => row.try_get_unchecked::<String, _>(i).map_or(Value::Null, Value::from),
    }
}
