//! Quarantine: results the gateway withheld from a client because they carried instructions
//! aimed at the model. The client's model got a notice instead; the content (already cleaned
//! and with secrets redacted) waits here, in table `mcp_quarantine` of the audit database, for
//! a person to review.
//!
//! A held item is reviewed once: [`released`](Review::Release) (the person judged it safe for
//! the model: its original caller may now read it) or [`discarded`](Review::Discard) (kept
//! for the record, never served). Either way the reviewer's name and the time are kept.
//!
//! ```no_run
//! use warden_store::quarantine::{Held, QuarantineStore, Review};
//! # async fn run() -> Result<(), warden_store::StoreError> {
//! let store = QuarantineStore::open("sqlite:///var/lib/warden/audit.db").await?;
//! for item in store.list(Some("held"), 50).await? {
//!     println!("{} {} {} {}", item.id, item.server, item.item, item.severity);
//! }
//! # let id = "q-0";
//! let _ = store.review(id, Review::Release, "alice").await?;
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::StoreError;
use crate::backend::Backend;
use crate::sql::{Dialect, json, read_conn, time, write_tx};

/// What the gateway stores when it withholds a result.
#[derive(Debug, Clone, Default)]
pub struct Withheld<'a> {
    pub server: &'a str,
    /// The MCP method answered, e.g. `tools/call`.
    pub method: &'a str,
    /// The tool or prompt name, or the resource URI, as the client named it.
    pub item: &'a str,
    /// Names the caller exactly (the gateway's principal identity key): only this caller may
    /// read the item once released.
    pub principal_key: &'a str,
    /// The caller's subject, for people reading the list.
    pub actor_id: &'a str,
    pub tenant: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// The highest severity found: `low`, `medium`, `high` or `critical`.
    pub severity: &'a str,
    /// What the scanner found (rules and severities, never the text).
    pub findings: &'a Value,
    /// The whole result as it would have gone to the client.
    pub content: &'a Value,
}

/// One quarantined result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Held {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub server: String,
    pub method: String,
    pub item: String,
    #[serde(skip)]
    pub principal_key: String,
    pub actor_id: String,
    pub tenant: Option<String>,
    pub session_id: Option<String>,
    pub request_id: Option<String>,
    pub severity: String,
    pub findings: Value,
    /// The withheld result; `None` in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// `held`, `released` or `discarded`.
    pub status: String,
    pub reviewed_by: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// A person's decision on a held item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    /// Safe for the model: the original caller may read it.
    Release,
    /// Not to be served; kept for the record.
    Discard,
}

impl Review {
    fn status(self) -> &'static str {
        match self {
            Review::Release => "released",
            Review::Discard => "discarded",
        }
    }
}

/// What a review did.
#[derive(Debug, Clone, PartialEq)]
pub enum Reviewed {
    /// The item, now released or discarded.
    Done(Box<Held>),
    /// No item has that id.
    NotFound,
    /// It was reviewed before: its status stays.
    AlreadyReviewed(String),
}

/// The quarantined results, in the audit database.
#[derive(Clone)]
pub struct QuarantineStore {
    backend: Backend,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

/// Every column, in [`Row`]'s order; `content` only when `with_content`.
fn select(sql: &Dialect, with_content: bool) -> String {
    format!(
        "SELECT id, {}, server, method, item, principal_key, actor_id, tenant, session_id, request_id, \
         severity, findings, {}, status, reviewed_by, {} FROM mcp_quarantine",
        sql.at("created_at"),
        if with_content { "content" } else { "NULL" },
        sql.at("reviewed_at"),
    )
}

impl QuarantineStore {
    /// Opens the quarantine table in the audit database at `url` (`sqlite://...` or
    /// `postgres://...`), creating the database and every table if needed.
    pub async fn open(url: &str) -> Result<QuarantineStore, StoreError> {
        // The gateway answers its client only after the item is stored: full sync on SQLite.
        let backend = Backend::open_writer(url, true).await?;
        Ok(QuarantineStore { backend })
    }

    /// Stores a withheld result and returns its new id (`q-` and 24 hex digits, random).
    pub async fn hold(&self, item: &Withheld<'_>) -> Result<String, StoreError> {
        let id = format!("q-{}", hex::encode(rand::random::<[u8; 12]>()));
        let findings = item.findings.to_string();
        let content = item.content.to_string();
        write_tx!(self, |conn, _sql, now| {
            sqlx::query(
                "INSERT INTO mcp_quarantine (id, created_at, server, method, item, principal_key, actor_id, \
                 tenant, session_id, request_id, severity, findings, content) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(&id)
            .bind(now)
            .bind(item.server)
            .bind(item.method)
            .bind(item.item)
            .bind(item.principal_key)
            .bind(item.actor_id)
            .bind(item.tenant)
            .bind(item.session_id)
            .bind(item.request_id)
            .bind(item.severity)
            .bind(&findings)
            .bind(&content)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("storing a quarantined result"))?;
            Ok(id.clone())
        })
    }

    /// Items with `status` (every item if `None`), newest first, at most `limit`, without
    /// their content.
    pub async fn list(&self, status: Option<&str>, limit: u32) -> Result<Vec<Held>, StoreError> {
        let rows: Vec<Row> = read_conn!(self, |conn, sql| {
            let filter = if status.is_some() { " WHERE status = $2" } else { "" };
            let text = format!("{}{filter} ORDER BY created_at DESC, id LIMIT $1", select(sql, false));
            let mut query = sqlx::query_as(&text).bind(i64::from(limit));
            if let Some(status) = status {
                query = query.bind(status);
            }
            query.fetch_all(conn).await.map_err(StoreError::db("listing quarantined results"))?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// One item with its content.
    pub async fn get(&self, id: &str) -> Result<Option<Held>, StoreError> {
        let row: Option<Row> = read_conn!(self, |conn, sql| {
            sqlx::query_as(&format!("{} WHERE id = $1", select(sql, true)))
                .bind(id)
                .fetch_optional(conn)
                .await
                .map_err(StoreError::db("reading a quarantined result"))?
        });
        row.map(from_row).transpose()
    }

    /// Records a person's decision on a held item. Only a held item can be reviewed, once:
    /// two reviewers racing get one `Done` and one `AlreadyReviewed`.
    pub async fn review(&self, id: &str, review: Review, by: &str) -> Result<Reviewed, StoreError> {
        let changed = write_tx!(self, |conn, _sql, now| {
            let updated = sqlx::query(
                "UPDATE mcp_quarantine SET status = $2, reviewed_by = $3, reviewed_at = $4 \
                 WHERE id = $1 AND status = 'held'",
            )
            .bind(id)
            .bind(review.status())
            .bind(by)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("reviewing a quarantined result"))?;
            Ok::<bool, StoreError>(updated.rows_affected() == 1)
        })?;
        Ok(match self.get(id).await? {
            None => Reviewed::NotFound,
            Some(item) if changed => Reviewed::Done(Box::new(item)),
            Some(item) => Reviewed::AlreadyReviewed(item.status),
        })
    }

    /// Undoes `by`'s review of `id`: the item is held again. For a review that could not be
    /// recorded in the audit log, which must not stand unrecorded. Whether it was undone.
    pub async fn reopen(&self, id: &str, by: &str) -> Result<bool, StoreError> {
        write_tx!(self, |conn, _sql, _now| {
            let updated = sqlx::query(
                "UPDATE mcp_quarantine SET status = 'held', reviewed_by = NULL, reviewed_at = NULL \
                 WHERE id = $1 AND status <> 'held' AND reviewed_by = $2",
            )
            .bind(id)
            .bind(by)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("reopening a quarantined result"))?;
            Ok(updated.rows_affected() == 1)
        })
    }

    /// A released item, only for the caller it was withheld from (`principal_key`); `None`
    /// for any other caller, an item still held or discarded, or an unknown id, alike.
    pub async fn released_to(&self, id: &str, principal_key: &str) -> Result<Option<Held>, StoreError> {
        Ok(self.get(id).await?.filter(|item| item.status == "released" && item.principal_key == principal_key))
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

fn from_row(row: Row) -> Result<Held, StoreError> {
    let (
        id,
        created_at,
        server,
        method,
        item,
        principal_key,
        actor_id,
        tenant,
        session_id,
        request_id,
        severity,
        findings,
        content,
        status,
        reviewed_by,
        reviewed_at,
    ) = row;
    Ok(Held {
        created_at: time(&created_at)?,
        findings: json(&findings, "a quarantined result's findings")?,
        content: content.as_deref().map(|c| json(c, "a quarantined result")).transpose()?,
        reviewed_at: reviewed_at.as_deref().map(time).transpose()?,
        id,
        server,
        method,
        item,
        principal_key,
        actor_id,
        tenant,
        session_id,
        request_id,
        severity,
        status,
        reviewed_by,
    })
}
