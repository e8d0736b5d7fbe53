//! Containment: servers an operator cut off, kept in table `mcp_containment` of the audit
//! database with who contained each and why, so that every gateway sharing the database, and
//! a gateway started later, keeps them contained until an operator releases them.
//!
//! ```no_run
//! use warden_store::ContainmentStore;
//! # async fn run() -> Result<(), warden_store::StoreError> {
//! let store = ContainmentStore::open("sqlite:///var/lib/warden/audit.db").await?;
//! store.contain("web", "alice", "exfiltration suspected").await?;
//! for server in store.list().await? {
//!     println!("{} since {} by {}: {}", server.server, server.contained_at, server.contained_by, server.reason);
//! }
//! store.release("web").await?;
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::StoreError;
use crate::backend::Backend;
use crate::sql::{Dialect, read_conn, time, write_tx};

/// One contained server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contained {
    pub server: String,
    pub contained_at: DateTime<Utc>,
    /// The operator who contained it.
    pub contained_by: String,
    /// Why, as the operator gave it.
    pub reason: String,
}

/// A revocation of the credentials Warden obtains per caller for a server.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Revocation {
    pub server: String,
    /// The caller whose credentials were revoked; `None`: every caller's.
    pub subject: Option<String>,
    /// Credentials issued at or before this are not used again.
    pub revoked_at: DateTime<Utc>,
    /// The operator who revoked them.
    pub revoked_by: String,
}

/// The contained servers, in the audit database.
#[derive(Clone)]
pub struct ContainmentStore {
    backend: Backend,
}

type Row = (String, String, String, String);

fn select(sql: &Dialect) -> String {
    format!("SELECT server, {}, contained_by, reason FROM mcp_containment", sql.at("contained_at"))
}

impl ContainmentStore {
    /// Opens the containment table in the audit database at `url` (`sqlite://...` or
    /// `postgres://...`), creating the database and every table if needed.
    pub async fn open(url: &str) -> Result<ContainmentStore, StoreError> {
        // An operator is told a server is contained only after it is stored: full sync on SQLite.
        let backend = Backend::open_writer(url, true).await?;
        Ok(ContainmentStore { backend })
    }

    /// Contains `server` in `by`'s name for `reason`. Whether it was newly contained: `false`
    /// if it already was, and then the first record (who and why) stays.
    pub async fn contain(&self, server: &str, by: &str, reason: &str) -> Result<bool, StoreError> {
        write_tx!(self, |conn, _sql, now| {
            let inserted = sqlx::query(
                "INSERT INTO mcp_containment (server, contained_at, contained_by, reason) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (server) DO NOTHING",
            )
            .bind(server)
            .bind(now)
            .bind(by)
            .bind(reason)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("containing a server"))?;
            Ok(inserted.rows_affected() == 1)
        })
    }

    /// Releases `server`: its record is removed and returned; `None` if it was not contained.
    pub async fn release(&self, server: &str) -> Result<Option<Contained>, StoreError> {
        let row: Option<Row> = write_tx!(self, |conn, sql, _now| {
            let row: Option<Row> = sqlx::query_as(&format!("{} WHERE server = $1{}", select(sql), sql.lock_rows))
                .bind(server)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::db("reading a contained server"))?;
            if row.is_some() {
                sqlx::query("DELETE FROM mcp_containment WHERE server = $1")
                    .bind(server)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db("releasing a contained server"))?;
            }
            Ok::<_, StoreError>(row)
        })?;
        row.map(from_row).transpose()
    }

    /// Every contained server, by name.
    pub async fn list(&self) -> Result<Vec<Contained>, StoreError> {
        let rows: Vec<Row> = read_conn!(self, |conn, sql| {
            sqlx::query_as(&format!("{} ORDER BY server", select(sql)))
                .fetch_all(conn)
                .await
                .map_err(StoreError::db("listing contained servers"))?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// Revokes the credentials obtained for `server` (for `subject`, or for every caller), as of
    /// now; returns the time recorded.
    pub async fn revoke_credentials(
        &self,
        server: &str,
        subject: Option<&str>,
        by: &str,
    ) -> Result<DateTime<Utc>, StoreError> {
        let at = crate::sql::now();
        let text = crate::event::stored_time(&at);
        write_tx!(self, |conn, sql, _now| {
            sqlx::query(&format!(
                "INSERT INTO mcp_credential_revocations (server, subject, revoked_at, revoked_by) \
                 VALUES ($1, $2, {}, $4) ON CONFLICT (server, subject) \
                 DO UPDATE SET revoked_at = excluded.revoked_at, revoked_by = excluded.revoked_by",
                sql.time_param(3)
            ))
            .bind(server)
            .bind(subject.unwrap_or_default())
            .bind(&text)
            .bind(by)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("revoking credentials"))?;
            Ok::<_, StoreError>(())
        })?;
        Ok(at)
    }

    /// Every revocation, the latest per server and caller.
    pub async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let rows: Vec<(String, String, String, String)> = read_conn!(self, |conn, sql| {
            sqlx::query_as(&format!(
                "SELECT server, subject, {}, revoked_by FROM mcp_credential_revocations ORDER BY server, subject",
                sql.at("revoked_at")
            ))
            .fetch_all(conn)
            .await
            .map_err(StoreError::db("listing credential revocations"))?
        });
        rows.into_iter()
            .map(|(server, subject, at, by)| {
                Ok(Revocation {
                    server,
                    subject: Some(subject).filter(|s| !s.is_empty()),
                    revoked_at: time(&at)?,
                    revoked_by: by,
                })
            })
            .collect()
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

fn from_row((server, contained_at, contained_by, reason): Row) -> Result<Contained, StoreError> {
    Ok(Contained { contained_at: time(&contained_at)?, server, contained_by, reason })
}
