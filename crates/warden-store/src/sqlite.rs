//! The SQLite side of [`Backend`](crate::backend::Backend): one file, WAL, times as text.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Column, Executor, Row, Sqlite, SqliteConnection, SqlitePool, Statement, Transaction, TypeInfo, ValueRef};

use crate::StoreError;
use crate::backend::{Backend, CONNECT_TIMEOUT, redact};
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
