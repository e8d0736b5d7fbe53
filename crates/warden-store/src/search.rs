//! Rows matching an operator's filter, newest first, a page at a time: the console's audit view
//! and its export. Every value is a bound parameter; nothing of the filter is written into SQL.

use chrono::{DateTime, Utc};

use crate::StoreError;
use crate::backend::Decoded;
use crate::chain::StoredRow;
use crate::event::{AuditRow, stored_time};
use crate::reader::AuditReader;
use sqlx::Row;

/// Most rows one page returns.
pub const MAX_PAGE: i64 = 1_000;

/// Which rows: every field set must match exactly (times bound the window).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Rows at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Rows before this time.
    pub until: Option<DateTime<Utc>>,
    /// The principal's subject (`actor_id`).
    pub principal: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    /// `ALLOW`, `DENY`, `REQUIRE_APPROVAL`, ...
    pub decision: Option<String>,
    /// `ok`, `error`, `refused`, ...
    pub outcome: Option<String>,
    /// The kind of event (`call`, `drift`, ...).
    pub event: Option<String>,
    /// Rows with a smaller `seq` only: the next page of a listing.
    pub before: Option<i64>,
}

/// A condition and the text bound to it.
enum Bound {
    Text(String),
    Time(String),
    Seq(i64),
}

impl AuditFilter {
    /// The `WHERE` clause (with `$1`.. parameters, times through `time_param`) and its values.
    fn clause(&self, sql: &crate::sql::Dialect) -> (String, Vec<Bound>) {
        let mut conditions = Vec::new();
        let mut values = Vec::new();
        let mut add = |column: &str, value: Bound| {
            let n = values.len() + 1;
            let param = match value {
                Bound::Time(_) => sql.time_param(n),
                _ => format!("${n}"),
            };
            conditions.push(format!("{column}{param}"));
            values.push(value);
        };
        if let Some(t) = &self.since {
            add("event_time >= ", Bound::Time(stored_time(t)));
        }
        if let Some(t) = &self.until {
            add("event_time < ", Bound::Time(stored_time(t)));
        }
        for (column, value) in [
            ("actor_id = ", &self.principal),
            ("server_name = ", &self.server),
            ("tool_name = ", &self.tool),
            ("decision = ", &self.decision),
            ("outcome = ", &self.outcome),
            ("event = ", &self.event),
        ] {
            if let Some(v) = value {
                add(column, Bound::Text(v.clone()));
            }
        }
        if let Some(seq) = self.before {
            add("seq < ", Bound::Seq(seq));
        }
        let clause = if conditions.is_empty() { String::new() } else { format!(" WHERE {}", conditions.join(" AND ")) };
        (clause, values)
    }
}

macro_rules! search_on {
    ($conn:ident, $sql:ident, $filter:expr, $limit:expr) => {{
        let (clause, values) = $filter.clause($sql);
        let text = format!("{}{clause} ORDER BY seq DESC LIMIT {}", crate::rows::select_rows($sql), $limit);
        let mut query = sqlx::query(&text);
        for v in values {
            query = match v {
                Bound::Text(t) | Bound::Time(t) => query.bind(t),
                Bound::Seq(s) => query.bind(s),
            };
        }
        let rows = query.fetch_all(&mut *$conn).await.map_err(StoreError::db("searching audit rows"))?;
        let decoded: Vec<Decoded> = rows.iter().map(|r| crate::rows::decode_row!(r)).collect();
        Ok::<_, StoreError>(decoded)
    }};
}

impl AuditReader {
    /// Up to `limit` rows (at most [`MAX_PAGE`]) matching `filter`, newest first. A row that
    /// cannot be read (edited by hand) is an error naming it.
    pub async fn search(&self, filter: &AuditFilter, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let decoded = match self.backend() {
            crate::backend::Backend::Sqlite(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                let conn: &mut sqlx::SqliteConnection = &mut pooled;
                let sql = &crate::sql::SQLITE;
                search_on!(conn, sql, filter, limit)?
            }
            crate::backend::Backend::Postgres(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                let conn: &mut sqlx::PgConnection = &mut pooled;
                let sql = &crate::sql::POSTGRES;
                search_on!(conn, sql, filter, limit)?
            }
        };
        decoded
            .into_iter()
            .map(|row| match row {
                Ok(row) => row.into_row(),
                Err((seq, problem)) => Err(StoreError::CorruptRow { seq, problem }),
            })
            .collect()
    }

    /// The row with `seq`, if there is one.
    pub async fn row(&self, seq: i64) -> Result<Option<AuditRow>, StoreError> {
        Ok(self.rows_after(seq.saturating_sub(1), 1).await?.into_iter().find(|r| r.seq == seq))
    }
}

/// Tool calls of one `server/tool` since a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallCount {
    pub server: String,
    pub tool: String,
    /// Every call row.
    pub calls: u64,
    /// Those refused (any decision but `ALLOW`).
    pub refused: u64,
}

macro_rules! call_counts_on {
    ($conn:ident, $sql:ident, $since:expr) => {{
        let text = format!(
            "SELECT server_name, tool_name, COUNT(*), SUM(CASE WHEN decision = 'ALLOW' THEN 0 ELSE 1 END) \
             FROM mcp_audit WHERE event = 'call' AND event_time >= {} AND server_name IS NOT NULL \
             AND tool_name IS NOT NULL GROUP BY server_name, tool_name",
            $sql.time_param(1)
        );
        let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(&text)
            .bind(stored_time(&$since))
            .fetch_all(&mut *$conn)
            .await
            .map_err(StoreError::db("counting recent calls"))?;
        Ok::<_, StoreError>(rows)
    }};
}

impl AuditReader {
    /// Calls per `server/tool` at or after `since`, and how many were refused.
    pub async fn call_counts(&self, since: DateTime<Utc>) -> Result<Vec<CallCount>, StoreError> {
        let rows = match self.backend() {
            crate::backend::Backend::Sqlite(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                let conn: &mut sqlx::SqliteConnection = &mut pooled;
                let sql = &crate::sql::SQLITE;
                call_counts_on!(conn, sql, since)?
            }
            crate::backend::Backend::Postgres(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                let conn: &mut sqlx::PgConnection = &mut pooled;
                let sql = &crate::sql::POSTGRES;
                call_counts_on!(conn, sql, since)?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(server, tool, calls, refused)| CallCount {
                server,
                tool,
                calls: calls.max(0) as u64,
                refused: refused.unwrap_or(0).max(0) as u64,
            })
            .collect())
    }
}
