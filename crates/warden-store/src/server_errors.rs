//! Servers' original error messages, kept (when the gateway is configured to) in table
//! `mcp_server_errors`, apart from the audit log: clients only ever see the scrubbed form, and
//! access to the originals can be granted to fewer people than read the audit log (Postgres:
//! `GRANT SELECT` on `mcp_audit` alone; SQLite: whoever can read the file reads both).

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::StoreError;
use crate::backend::Backend;
use crate::sql::{json, read_conn, time, write_tx};

/// A server's error as it sent it, and whose request it answered.
#[derive(Debug, Clone, Default)]
pub struct OriginalError<'a> {
    pub server: &'a str,
    pub method: &'a str,
    /// The tool or prompt as the client named it, or the resource URI.
    pub item: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub code: i64,
    pub message: &'a str,
    pub data: Option<&'a Value>,
}

/// One kept error, as read back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptError {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub server: String,
    pub method: String,
    pub item: Option<String>,
    pub request_id: Option<String>,
    pub session_id: Option<String>,
    pub actor_id: Option<String>,
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

/// The kept originals, in the audit database.
#[derive(Clone)]
pub struct ServerErrorStore {
    backend: Backend,
}

type Row = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    String,
    Option<String>,
);

impl ServerErrorStore {
    /// Opens the table in the audit database at `url`, creating every table if needed.
    pub async fn open(url: &str) -> Result<ServerErrorStore, StoreError> {
        let backend = Backend::open_writer(url, false).await?;
        Ok(ServerErrorStore { backend })
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.backend.close().await;
    }

    /// Keeps one original error.
    pub async fn keep(&self, e: &OriginalError<'_>) -> Result<(), StoreError> {
        let data = e.data.map(Value::to_string);
        write_tx!(self, |conn, _sql, now| {
            sqlx::query(
                "INSERT INTO mcp_server_errors \
                 (created_at, server, method, item, request_id, session_id, actor_id, code, message, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(now)
            .bind(e.server)
            .bind(e.method)
            .bind(e.item)
            .bind(e.request_id)
            .bind(e.session_id)
            .bind(e.actor_id)
            .bind(e.code)
            .bind(e.message)
            .bind(&data)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("keeping a server's error"))?;
            Ok(())
        })
    }

    /// The most recent `limit` errors, newest first.
    pub async fn recent(&self, limit: u32) -> Result<Vec<KeptError>, StoreError> {
        let rows: Vec<Row> = read_conn!(self, |conn, sql| {
            sqlx::query_as(&format!(
                "SELECT id, {}, server, method, item, request_id, session_id, actor_id, code, message, data \
                 FROM mcp_server_errors ORDER BY id DESC LIMIT $1",
                sql.at("created_at")
            ))
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await
            .map_err(StoreError::db("reading kept server errors"))?
        });
        rows.into_iter()
            .map(|(id, created_at, server, method, item, request_id, session_id, actor_id, code, message, data)| {
                Ok(KeptError {
                    id,
                    created_at: time(&created_at)?,
                    data: data.as_deref().map(|d| json(d, "a kept error's data")).transpose()?,
                    server,
                    method,
                    item,
                    request_id,
                    session_id,
                    actor_id,
                    code,
                    message,
                })
            })
            .collect()
    }
}
