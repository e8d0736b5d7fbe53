//! The Postgres side of [`Backend`](crate::backend::Backend): shared by several gateways,
//! one chain kept by an advisory lock, times as `timestamptz`.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow, PgValueFormat, PgValueRef};
use sqlx::{
    Column, Connection, Decode, Executor, PgConnection, PgPool, Postgres, Row, Statement, Transaction, TypeInfo,
    ValueRef,
};

use crate::StoreError;
use crate::backend::{Backend, CONNECT_TIMEOUT, redact};
use crate::query::{Dialect, QueryLimits, QueryResult, check_read_statement};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The advisory lock every writer of the chain takes for the length of its transaction
/// ("WardenAu" in ASCII).
const CHAIN_LOCK: i64 = 0x5761_7264_656e_4175;

pub(crate) async fn open_writer(options: PgConnectOptions, url: &str) -> Result<Backend, StoreError> {
    let pool = PgPoolOptions::new()
        .acquire_timeout(CONNECT_TIMEOUT)
        .max_connections(4)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect { url: redact(url), source })?;
    MIGRATOR.run(&pool).await.map_err(|source| StoreError::Migrate { url: redact(url), source })?;
    Ok(Backend::Postgres(pool))
}

pub(crate) async fn open_reader(options: PgConnectOptions, url: &str) -> Result<Backend, StoreError> {
    let options = options.options([("default_transaction_read_only", "on")]);
    let pool = PgPoolOptions::new()
        .acquire_timeout(CONNECT_TIMEOUT)
        .max_connections(2)
        .connect_with(options)
        .await
        .map_err(|source| StoreError::Connect { url: redact(url), source })?;
    Ok(Backend::Postgres(pool))
}

pub(crate) async fn begin_write(pool: &PgPool) -> Result<Transaction<'static, Postgres>, StoreError> {
    let mut tx = pool.begin().await.map_err(StoreError::db("starting a write transaction"))?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(CHAIN_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("locking the audit chain"))?;
    Ok(tx)
}

pub(crate) async fn scalar(conn: &mut PgConnection, sql: &str, times: &[DateTime<Utc>]) -> Result<f64, StoreError> {
    let mut query = sqlx::query(sql);
    for time in times {
        query = query.bind(*time);
    }
    let row = query.fetch_one(conn).await.map_err(StoreError::db("running gate SQL"))?;
    match json_value(&row, 0) {
        Ok(serde_json::Value::Null) => Ok(0.0),
        Ok(serde_json::Value::Number(n)) => {
            n.as_f64().ok_or_else(|| StoreError::QueryRefused("gate SQL gave a number out of range".into()))
        }
        _ => Err(StoreError::QueryRefused("gate SQL must return one number".into())),
    }
}

pub(crate) async fn query(conn: &mut PgConnection, sql: &str, limits: QueryLimits) -> Result<QueryResult, StoreError> {
    check_read_statement(sql, Dialect::Postgres)?;
    let mut tx =
        conn.begin_with("BEGIN READ ONLY").await.map_err(StoreError::db("starting a read-only transaction"))?;
    let millis = limits.timeout.as_millis().clamp(1, i32::MAX as u128);
    tx.execute(format!("SET LOCAL statement_timeout = {millis}").as_str())
        .await
        .map_err(StoreError::db("setting the query's time limit"))?;
    let result = run_query(&mut tx, sql, limits).await;
    // Whatever the query did, none of it is kept.
    let _ = tx.rollback().await;
    result.map_err(|err| match &err {
        StoreError::Database { source: sqlx::Error::Database(db), .. } if db.code().as_deref() == Some("57014") => {
            StoreError::QueryTimeout(limits.timeout)
        }
        _ => err,
    })
}

async fn run_query(conn: &mut PgConnection, sql: &str, limits: QueryLimits) -> Result<QueryResult, StoreError> {
    let statement = conn.prepare(sql).await.map_err(StoreError::db("preparing the query"))?;
    let mut columns = Vec::new();
    for column in statement.columns() {
        let ty = column.type_info().name();
        if !SHOWN_TYPES.contains(&ty) {
            return Err(StoreError::QueryRefused(format!(
                "column `{}` has type {ty}, which the query tool does not show; cast it, e.g. `{}::text`",
                column.name(),
                column.name()
            )));
        }
        columns.push(column.name().to_owned());
    }
    let mut result = QueryResult { columns, ..QueryResult::default() };
    let mut rows = statement.query().fetch(&mut *conn);
    while let Some(row) = rows.try_next().await.map_err(StoreError::db("running the query"))? {
        if result.rows.len() == limits.max_rows {
            result.truncated = true;
            break;
        }
        result.rows.push((0..row.len()).map(|i| json_value(&row, i)).collect::<Result<_, _>>()?);
    }
    Ok(result)
}

/// A `timestamptz`/`timestamp` read without sqlx's decoder, which panics on `infinity` and
/// other values outside chrono's range; those are errors here.
fn time_value(value: PgValueRef<'_>) -> Result<DateTime<Utc>, String> {
    match value.format() {
        PgValueFormat::Binary => {
            let micros = <i64 as Decode<Postgres>>::decode(value).map_err(|e| e.to_string())?;
            pg_epoch()
                .checked_add_signed(TimeDelta::microseconds(micros))
                .ok_or_else(|| "the time is out of range".to_owned())
        }
        PgValueFormat::Text => {
            let text = value.as_str().map_err(|e| e.to_string())?;
            DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f%#z")
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| format!("`{text}` is not a time"))
        }
    }
}

fn pg_epoch() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or_default()
}

const SHOWN_TYPES: &[&str] = &[
    "BOOL",
    "INT2",
    "INT4",
    "INT8",
    "OID",
    "FLOAT4",
    "FLOAT8",
    "NUMERIC",
    "TEXT",
    "VARCHAR",
    "BPCHAR",
    "NAME",
    "CHAR",
    "UNKNOWN",
    "CITEXT",
    "TIMESTAMPTZ",
    "TIMESTAMP",
    "DATE",
    "JSON",
    "JSONB",
    "BYTEA",
    "UUID",
    "VOID",
];

fn json_value(row: &PgRow, i: usize) -> Result<serde_json::Value, StoreError> {
    use serde_json::Value;
    let raw = row.try_get_raw(i).map_err(StoreError::db("reading a query result"))?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let undecodable =
        |ty: &str| StoreError::QueryRefused(format!("a {ty} value in column {i} could not be read; cast it to text"));
    let ty = raw.type_info().name().to_owned();
    let value = match ty.as_str() {
        "BOOL" => row.try_get::<bool, _>(i).map(Value::from).ok(),
        "INT2" => row.try_get::<i16, _>(i).map(Value::from).ok(),
        "INT4" => row.try_get::<i32, _>(i).map(Value::from).ok(),
        "INT8" => row.try_get::<i64, _>(i).map(Value::from).ok(),
        "OID" => row.try_get::<sqlx::postgres::types::Oid, _>(i).map(|oid| Value::from(oid.0)).ok(),
        "FLOAT4" => row.try_get::<f32, _>(i).map(|f| Value::from(f64::from(f))).ok(),
        "FLOAT8" => row.try_get::<f64, _>(i).map(Value::from).ok(),
        "NUMERIC" => raw.as_bytes().ok().and_then(numeric),
        "TIMESTAMPTZ" => time_value(raw).ok().map(|t| Value::from(t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())),
        "TIMESTAMP" => time_value(raw).ok().map(|t| Value::from(t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())),
        "DATE" => <i32 as Decode<Postgres>>::decode(raw)
            .ok()
            .and_then(|days| NaiveDate::from_ymd_opt(2000, 1, 1)?.checked_add_signed(TimeDelta::try_days(days.into())?))
            .map(|d| Value::from(d.to_string())),
        "JSON" | "JSONB" => row.try_get::<Value, _>(i).ok(),
        "BYTEA" => row.try_get::<Vec<u8>, _>(i).map(|b| Value::from(hex::encode(b))).ok(),
        "UUID" => raw.as_bytes().ok().filter(|b| b.len() == 16).map(|b| {
            let h = hex::encode(b);
            Value::from(format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]))
        }),
        "VOID" => Some(Value::Null),
        _ => row.try_get_unchecked::<String, _>(i).map(Value::from).ok(),
    };
    value.ok_or_else(|| undecodable(&ty))
}

/// Postgres binary NUMERIC (base-10000 digits) to JSON: a number when it fits, else text.
fn numeric(bytes: &[u8]) -> Option<serde_json::Value> {
    use serde_json::Value;
    let word = |k: usize| bytes.get(k * 2..k * 2 + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let (ndigits, weight, sign, dscale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Some(Value::from("NaN")),
        0xD000 => return Some(Value::from("Infinity")),
        0xF000 => return Some(Value::from("-Infinity")),
        _ => return None,
    }
    let digits: Vec<i16> = (0..usize::try_from(ndigits).ok()?).map(|k| word(4 + k)).collect::<Option<_>>()?;
    if digits.iter().any(|d| !(0..10_000).contains(d)) {
        return None;
    }
    let group = |g: i32| usize::try_from(g).ok().and_then(|g| digits.get(g)).copied().unwrap_or(0);
    let mut int = String::new();
    for g in 0..=i32::from(weight) {
        int.push_str(&format!("{:04}", group(g)));
    }
    let int = int.trim_start_matches('0');
    let mut text = format!("{}{}", if sign == 0x4000 { "-" } else { "" }, if int.is_empty() { "0" } else { int });
    let scale = usize::try_from(dscale).ok()?;
    if scale > 0 {
        let mut frac = String::new();
        let mut g = i32::from(weight) + 1;
        while frac.len() < scale {
            frac.push_str(&format!("{:04}", group(g)));
            g += 1;
        }
        frac.truncate(scale);
        text = format!("{text}.{frac}");
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(Value::from(n));
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => Some(Value::from(f)),
        _ => Some(Value::from(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::numeric;
    use serde_json::json;

    fn encode(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in [ndigits, weight, sign as i16, dscale].iter().chain(digits) {
            out.extend_from_slice(&w.to_be_bytes());
        }
        out
    }

    #[test]
    fn numeric_decodes() {
        assert_eq!(numeric(&encode(2, 1, 0, 0, &[12, 3456])), Some(json!(123456)));
        assert_eq!(numeric(&encode(2, 0, 0x4000, 2, &[7, 5000])), Some(json!(-7.5)));
        assert_eq!(numeric(&encode(1, -1, 0, 4, &[25])), Some(json!(0.0025)));
        assert_eq!(numeric(&encode(0, 0, 0, 0, &[])), Some(json!(0)));
        assert_eq!(numeric(&encode(1, 0, 0, 0, &[10_000])), None);
        assert_eq!(numeric(&[0, 1]), None);
        assert_eq!(numeric(&encode(0, 0, 0xC000, 0, &[])), Some(json!("NaN")));
    }
}
