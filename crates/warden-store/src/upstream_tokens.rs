//! Tokens users granted Warden for servers that need their own authorization, in table
//! `mcp_upstream_tokens` of the audit database: one sealed (encrypted) token set per server and
//! caller. This store never sees a token in the clear; sealing is the gateway's.

use chrono::{DateTime, Utc};

use crate::StoreError;
use crate::backend::Backend;
use crate::sql::{read_conn, time, write_tx};

/// One stored token set.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredToken {
    /// The caller's subject (for revocation by user).
    pub subject: String,
    /// The encrypted token set.
    pub sealed: String,
    /// When it was stored.
    pub issued_at: DateTime<Utc>,
}

/// The upstream token store.
#[derive(Clone)]
pub struct UpstreamTokenStore {
    backend: Backend,
}

impl UpstreamTokenStore {
    /// Opens the table in the audit database at `url`, creating the database and every table if
    /// needed.
    pub async fn open(url: &str) -> Result<UpstreamTokenStore, StoreError> {
        Ok(UpstreamTokenStore { backend: Backend::open_writer(url, true).await? })
    }

    /// Stores `sealed` for `server` and caller `principal_key` (replacing what was there), as
    /// issued at `issued_at` (when its authority began, which a revocation is compared with).
    pub async fn put(
        &self,
        server: &str,
        principal_key: &str,
        subject: &str,
        sealed: &str,
        issued_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let text = crate::event::stored_time(&issued_at);
        write_tx!(self, |conn, sql, _now| {
            sqlx::query(&format!(
                "INSERT INTO mcp_upstream_tokens (server, principal_key, subject, sealed, issued_at) \
                 VALUES ($1, $2, $3, $4, {}) ON CONFLICT (server, principal_key) \
                 DO UPDATE SET subject = excluded.subject, sealed = excluded.sealed, issued_at = excluded.issued_at",
                sql.time_param(5)
            ))
            .bind(server)
            .bind(principal_key)
            .bind(subject)
            .bind(sealed)
            .bind(&text)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("storing an upstream token"))?;
            Ok::<_, StoreError>(())
        })
    }

    /// The token set stored for `server` and `principal_key`.
    pub async fn get(&self, server: &str, principal_key: &str) -> Result<Option<StoredToken>, StoreError> {
        let row: Option<(String, String, String)> = read_conn!(self, |conn, sql| {
            sqlx::query_as(&format!(
                "SELECT subject, sealed, {} FROM mcp_upstream_tokens WHERE server = $1 AND principal_key = $2",
                sql.at("issued_at")
            ))
            .bind(server)
            .bind(principal_key)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::db("reading an upstream token"))?
        });
        row.map(|(subject, sealed, at)| Ok(StoredToken { subject, sealed, issued_at: time(&at)? })).transpose()
    }

    /// Deletes the token sets of `server` (of `subject` only, when given); how many.
    pub async fn delete(&self, server: &str, subject: Option<&str>) -> Result<u64, StoreError> {
        write_tx!(self, |conn, _sql, _now| {
            let done = match subject {
                Some(s) => {
                    sqlx::query("DELETE FROM mcp_upstream_tokens WHERE server = $1 AND subject = $2")
                        .bind(server)
                        .bind(s)
                        .execute(&mut *conn)
                        .await
                }
                None => {
                    sqlx::query("DELETE FROM mcp_upstream_tokens WHERE server = $1")
                        .bind(server)
                        .execute(&mut *conn)
                        .await
                }
            };
            Ok::<_, StoreError>(done.map_err(StoreError::db("deleting upstream tokens"))?.rows_affected())
        })
    }

    /// Deletes the one token set of `server` and `principal_key` (it no longer works).
    pub async fn forget(&self, server: &str, principal_key: &str) -> Result<(), StoreError> {
        write_tx!(self, |conn, _sql, _now| {
            sqlx::query("DELETE FROM mcp_upstream_tokens WHERE server = $1 AND principal_key = $2")
                .bind(server)
                .bind(principal_key)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("deleting an upstream token"))?;
            Ok::<_, StoreError>(())
        })
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}
