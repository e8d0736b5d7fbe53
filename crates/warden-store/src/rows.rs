//! The row codec of the audit chain, written once for both databases: the SQL that reads and
//! writes `mcp_audit` and `mcp_audit_checkpoints`, and how a row read back becomes a
//! [`StoredRow`]. What differs between SQLite and Postgres (times as text or `timestamptz`) is
//! the [`Dialect`]'s: times cross the boundary as [`stored_time`](crate::event::stored_time) text
//! both ways, so a row reads back exactly as it was hashed, and a value no time can be (a
//! hand-edited `infinity`) is a finding, never a panic in a decoder.

use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::StoreError;
use crate::backend::Decoded;
use crate::chain::{COLUMNS, StoredRow};
use crate::checkpoint::Checkpoint;
use crate::event::stored_time;
use crate::heads::HeadsStatement;
use crate::sql::Dialect;

/// `SELECT` of every column of `mcp_audit`, times as stored text.
pub(crate) fn select_rows(sql: &Dialect) -> String {
    format!(
        "SELECT {} FROM mcp_audit",
        COLUMNS.replace("event_time", &format!("{} AS event_time", sql.at("event_time")))
    )
}

/// `INSERT` of one row, its time given as stored text; built once per backend.
fn insert_row(sql: &Dialect) -> &'static str {
    static CELLS: [std::sync::OnceLock<String>; 2] = [const { std::sync::OnceLock::new() }; 2];
    sql.cached(&CELLS, |sql| {
        let params: Vec<String> = (1..=30).map(|n| if n == 2 { sql.time_param(n) } else { format!("${n}") }).collect();
        format!("INSERT INTO mcp_audit ({COLUMNS}) VALUES ({})", params.join(", "))
    })
}

const CHECKPOINT_COLUMNS: &str = "seq, row_hash, event_time, created_at, public_key, signature, chain, link";

fn select_checkpoints(sql: &Dialect) -> String {
    format!(
        "SELECT seq, row_hash, {} AS event_time, {} AS created_at, public_key, signature, chain, link \
         FROM mcp_audit_checkpoints",
        sql.at("event_time"),
        sql.at("created_at")
    )
}

/// Reads a row without trusting it: a value of the wrong type (SQLite lets a hand edit store
/// text in an integer column; a time Postgres cannot print) becomes an error naming the column.
macro_rules! decode_row {
    ($row:expr) => {{
        let row = $row;
        (|| -> Decoded {
            let seq: i64 = row.try_get("seq").map_err(|_| (0, "its seq is not an integer".to_owned()))?;
            macro_rules! col {
                ($name:literal) => {
                    row.try_get($name)
                        .map_err(|_| (seq, format!("column {} holds a value of the wrong type", $name)))?
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
                chain: col!("chain"),
                link: {
                    let link: Option<i64> = col!("link");
                    link.unwrap_or(seq)
                },
                scopes: col!("scopes"),
            })
        })()
    }};
}

pub(crate) use decode_row;

macro_rules! decode_checkpoint {
    ($row:expr) => {{
        let row = $row;
        let seq: i64 = row.try_get("seq").map_err(StoreError::db("reading a checkpoint"))?;
        let text = |name: &str| {
            row.try_get::<String, _>(name).map_err(|_| StoreError::CorruptRow {
                seq,
                problem: format!("its checkpoint's {name} holds a value of the wrong type"),
            })
        };
        let link: Option<i64> = row.try_get("link").map_err(|_| StoreError::CorruptRow {
            seq,
            problem: "its checkpoint's link holds a value of the wrong type".into(),
        })?;
        Ok::<Checkpoint, StoreError>(Checkpoint {
            seq,
            row_hash: text("row_hash")?,
            event_time: text("event_time")?,
            created_at: text("created_at")?,
            public_key: text("public_key")?,
            signature: text("signature")?,
            chain: text("chain")?,
            link: link.unwrap_or(seq),
        })
    }};
}

/// Runs `$body` with `$conn` bound to the transaction's or the pool's connection and `$sql` to
/// its database's [`Dialect`].
macro_rules! on_conn {
    (tx $tx:expr, |$conn:ident, $sql:ident| $body:expr) => {
        match $tx {
            crate::backend::WriteTx::Sqlite(tx) => {
                let $conn: &mut sqlx::SqliteConnection = &mut *tx;
                let $sql = &crate::sql::SQLITE;
                $body
            }
            crate::backend::WriteTx::Postgres(tx) => {
                let $conn: &mut sqlx::PgConnection = &mut *tx;
                let $sql = &crate::sql::POSTGRES;
                $body
            }
        }
    };
    (pool $backend:expr, |$conn:ident, $sql:ident| $body:expr) => {
        match $backend {
            crate::backend::Backend::Sqlite(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                let $conn: &mut sqlx::SqliteConnection = &mut pooled;
                let $sql = &crate::sql::SQLITE;
                $body
            }
            crate::backend::Backend::Postgres(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                let $conn: &mut sqlx::PgConnection = &mut pooled;
                let $sql = &crate::sql::POSTGRES;
                $body
            }
        }
    };
}

/// Rows after `$seq`, at most `$limit`, read on `$conn`.
macro_rules! rows_after_on {
    ($conn:ident, $sql:ident, $seq:expr, $limit:expr) => {{
        let rows = sqlx::query(&format!("{} WHERE seq > $1 ORDER BY seq LIMIT $2", select_rows($sql)))
            .bind($seq)
            .bind($limit)
            .fetch_all(&mut *$conn)
            .await
            .map_err(StoreError::db("reading audit rows"))?;
        Ok(rows.iter().map(|r| decode_row!(r)).collect())
    }};
}

/// Rows of `$chain` after link `$link`, at most `$limit`, read on `$conn`.
macro_rules! chain_rows_after_on {
    ($conn:ident, $sql:ident, $chain:expr, $link:expr, $limit:expr) => {{
        let rows = sqlx::query(&format!("{} WHERE chain = $1 AND link > $2 ORDER BY link LIMIT $3", select_rows($sql)))
            .bind($chain)
            .bind($link)
            .bind($limit)
            .fetch_all(&mut *$conn)
            .await
            .map_err(StoreError::db("reading audit rows"))?;
        Ok(rows.iter().map(|r| decode_row!(r)).collect())
    }};
}

/// The latest checkpoint of `$chain`, read on `$conn`.
macro_rules! latest_checkpoint_on {
    ($conn:ident, $sql:ident, $chain:expr) => {{
        let row = sqlx::query(&format!("{} WHERE chain = $1 ORDER BY link DESC LIMIT 1", select_checkpoints($sql)))
            .bind($chain)
            .fetch_optional(&mut *$conn)
            .await
            .map_err(StoreError::db("reading the latest checkpoint"))?;
        row.as_ref().map(|r| decode_checkpoint!(r)).transpose()
    }};
}

impl crate::backend::Backend {
    /// Rows of every chain after `seq`, in the order they were written.
    pub async fn rows_after(&self, seq: i64, limit: i64) -> Result<Vec<Decoded>, StoreError> {
        on_conn!(pool self, |conn, sql| rows_after_on!(conn, sql, seq, limit))
    }

    /// Rows of `chain` after `link`, in chain order.
    pub async fn chain_rows_after(&self, chain: &str, link: i64, limit: i64) -> Result<Vec<Decoded>, StoreError> {
        on_conn!(pool self, |conn, sql| chain_rows_after_on!(conn, sql, chain, link, limit))
    }

    /// Every chain with rows or a checkpoint, by name.
    pub async fn chains(&self) -> Result<Vec<String>, StoreError> {
        on_conn!(pool self, |conn, _sql| {
            sqlx::query_scalar(
                "SELECT DISTINCT chain FROM mcp_audit UNION SELECT DISTINCT chain FROM mcp_audit_checkpoints ORDER BY 1",
            )
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db("listing the audit chains"))
        })
    }

    pub async fn count(&self) -> Result<i64, StoreError> {
        on_conn!(pool self, |conn, _sql| {
            sqlx::query_scalar("SELECT COUNT(*) FROM mcp_audit")
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::db("counting audit rows"))
        })
    }

    pub async fn checkpoint_at(&self, chain: &str, link: i64) -> Result<Option<Checkpoint>, StoreError> {
        on_conn!(pool self, |conn, sql| {
            let row = sqlx::query(&format!("{} WHERE chain = $1 AND link = $2", select_checkpoints(sql)))
                .bind(chain)
                .bind(link)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::db("reading a checkpoint"))?;
            row.as_ref().map(|r| decode_checkpoint!(r)).transpose()
        })
    }

    pub async fn latest_checkpoint(&self, chain: &str) -> Result<Option<Checkpoint>, StoreError> {
        on_conn!(pool self, |conn, sql| latest_checkpoint_on!(conn, sql, chain))
    }

    /// The last link and hash of `chain`; if every row was pruned, its latest checkpoint's.
    pub async fn chain_head(&self, chain: &str) -> Result<Option<(i64, String)>, StoreError> {
        on_conn!(pool self, |conn, sql| {
            let last: Option<(i64, String)> =
                sqlx::query_as("SELECT link, row_hash FROM mcp_audit WHERE chain = $1 ORDER BY link DESC LIMIT 1")
                    .bind(chain)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db("reading a chain's head"))?;
            if last.is_some() {
                return Ok(last);
            }
            let checkpoint: Option<Checkpoint> = latest_checkpoint_on!(conn, sql, chain)?;
            Ok(checkpoint.map(|cp| (cp.link, cp.row_hash)))
        })
    }

    /// The hash of `chain`'s row at `link`, if there is one.
    pub async fn row_hash_at(&self, chain: &str, link: i64) -> Result<Option<String>, StoreError> {
        on_conn!(pool self, |conn, _sql| {
            sqlx::query_scalar("SELECT row_hash FROM mcp_audit WHERE chain = $1 AND link = $2")
                .bind(chain)
                .bind(link)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::db("reading a row's hash"))
        })
    }

    /// Every signed statement of heads, oldest first.
    pub async fn heads_statements(&self) -> Result<Vec<HeadsStatement>, StoreError> {
        on_conn!(pool self, |conn, sql| {
            let rows: Vec<(i64, String, String, String, String, String)> = sqlx::query_as(&format!(
                "SELECT id, {} AS created_at, chain, heads, public_key, signature FROM mcp_audit_heads ORDER BY id",
                sql.at("created_at")
            ))
            .fetch_all(&mut *conn)
            .await
            .map_err(StoreError::db("reading the statements of heads"))?;
            Ok(rows
                .into_iter()
                .map(|(id, created_at, chain, heads, public_key, signature)| HeadsStatement {
                    id,
                    created_at,
                    chain,
                    heads,
                    public_key,
                    signature,
                })
                .collect())
        })
    }

    /// Records `statement`, and forgets the older statements of the same writer (each names the
    /// heads the later one names or earlier links of them).
    pub async fn insert_heads(&self, statement: &HeadsStatement) -> Result<(), StoreError> {
        on_conn!(pool self, |conn, sql| {
            let id: i64 = sqlx::query_scalar(&format!(
                "INSERT INTO mcp_audit_heads (created_at, chain, heads, public_key, signature) \
                 VALUES ({}, $2, $3, $4, $5) RETURNING id",
                sql.time_param(1)
            ))
            .bind(&statement.created_at)
            .bind(&statement.chain)
            .bind(&statement.heads)
            .bind(&statement.public_key)
            .bind(&statement.signature)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::db("writing a statement of heads"))?;
            sqlx::query("DELETE FROM mcp_audit_heads WHERE chain = $1 AND id < $2")
                .bind(&statement.chain)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("forgetting older statements of heads"))?;
            Ok(())
        })
    }
}

impl crate::backend::WriteTx {
    /// The last link and hash of `chain`; if every row was pruned, its latest checkpoint's.
    pub async fn head(&mut self, chain: &str) -> Result<Option<(i64, String)>, StoreError> {
        on_conn!(tx self, |conn, sql| {
            let last: Option<(i64, String)> =
                sqlx::query_as("SELECT link, row_hash FROM mcp_audit WHERE chain = $1 ORDER BY link DESC LIMIT 1")
                    .bind(chain)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(StoreError::db("reading the chain head"))?;
            if let Some(head) = last {
                return Ok(Some(head));
            }
            let checkpoint: Option<Checkpoint> = latest_checkpoint_on!(conn, sql, chain)?;
            Ok(checkpoint.map(|cp| (cp.link, cp.row_hash)))
        })
    }

    /// `n` values of `seq` no other writer is given (Postgres's sequence).
    pub async fn next_seqs(&mut self, n: usize) -> Result<Vec<i64>, StoreError> {
        match self {
            crate::backend::WriteTx::Postgres(tx) => {
                sqlx::query_scalar("SELECT nextval('mcp_audit_seq') FROM generate_series(1, $1)")
                    .bind(n as i64)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(StoreError::db("numbering audit rows"))
            }
            crate::backend::WriteTx::Sqlite(_) => {
                Err(StoreError::QueryRefused("a SQLite audit log has the one chain ''".into()))
            }
        }
    }

    pub async fn insert(&mut self, row: &StoredRow) -> Result<(), StoreError> {
        on_conn!(tx self, |conn, sql| {
            sqlx::query(insert_row(sql))
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
                .bind(&row.chain)
                .bind(row.link)
                .bind(&row.scopes)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("inserting an audit row"))?;
            Ok(())
        })
    }

    pub async fn chain_rows_after(&mut self, chain: &str, link: i64, limit: i64) -> Result<Vec<Decoded>, StoreError> {
        on_conn!(tx self, |conn, sql| chain_rows_after_on!(conn, sql, chain, link, limit))
    }

    /// In `chain`: the lowest link of a row at or after `time`, and the highest link.
    pub async fn retention_bounds(
        &mut self,
        chain: &str,
        time: DateTime<Utc>,
    ) -> Result<(Option<i64>, Option<i64>), StoreError> {
        on_conn!(tx self, |conn, sql| {
            sqlx::query_as(&format!(
                "SELECT (SELECT MIN(link) FROM mcp_audit WHERE chain = $2 AND event_time >= {}), \
                 (SELECT MAX(link) FROM mcp_audit WHERE chain = $2)",
                sql.time_param(1)
            ))
            .bind(stored_time(&time))
            .bind(chain)
            .fetch_one(&mut *conn)
            .await
            .map_err(StoreError::db("finding rows to prune"))
        })
    }

    pub async fn latest_checkpoint(&mut self, chain: &str) -> Result<Option<Checkpoint>, StoreError> {
        on_conn!(tx self, |conn, sql| latest_checkpoint_on!(conn, sql, chain))
    }

    pub async fn insert_checkpoint(&mut self, cp: &Checkpoint) -> Result<(), StoreError> {
        on_conn!(tx self, |conn, sql| {
            sqlx::query(&format!(
                "INSERT INTO mcp_audit_checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, {}, {}, $5, $6, $7, $8)",
                sql.time_param(3),
                sql.time_param(4)
            ))
            .bind(cp.seq)
            .bind(&cp.row_hash)
            .bind(&cp.event_time)
            .bind(&cp.created_at)
            .bind(&cp.public_key)
            .bind(&cp.signature)
            .bind(&cp.chain)
            .bind(cp.link)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("writing a checkpoint"))?;
            Ok(())
        })
    }

    /// Deletes the rows of `chain` up to and including `link`.
    pub async fn delete_through(&mut self, chain: &str, link: i64) -> Result<u64, StoreError> {
        on_conn!(tx self, |conn, _sql| {
            let done = sqlx::query("DELETE FROM mcp_audit WHERE chain = $1 AND link <= $2")
                .bind(chain)
                .bind(link)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("deleting pruned rows"))?;
            Ok(done.rows_affected())
        })
    }
}
