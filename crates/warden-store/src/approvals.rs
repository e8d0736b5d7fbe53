//! Approvals: tool calls a policy lets through only with a person's approval. The gateway
//! stores the call here, in table `mcp_approvals` of the audit database, and asks for a
//! decision: out of band (an operator approves or denies it with `warden approvals` or the
//! admin API) or in band (the client's user is asked, through `input_required` or
//! elicitation).
//!
//! An approval is bound to its call: the caller (the principal key), the server, the tool and
//! the hash of the arguments. Only that call, retried before the approval expires, is let
//! through, and only once. Every state change is a single guarded `UPDATE`, so two gateways
//! sharing the database never both decide an approval or both use it.
//!
//! ```no_run
//! use warden_store::approvals::{ApprovalStore, Decided, Verdict};
//! # async fn run() -> Result<(), warden_store::StoreError> {
//! let store = ApprovalStore::open("sqlite:///var/lib/warden/audit.db").await?;
//! for approval in store.list(Some("pending"), 50).await? {
//!     println!("{} {} {} {}", approval.id, approval.actor_id, approval.server, approval.tool);
//! }
//! # let id = "apr-0";
//! let now_ms = chrono::Utc::now().timestamp_millis();
//! if let Decided::Done(approval) = store.decide(id, Verdict::Approve, "alice", now_ms, 15 * 60_000).await? {
//!     println!("approved until {}", approval.expires_at);
//! }
//! # Ok(()) }
//! ```

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::StoreError;
use crate::backend::Backend;
use crate::sql::{Dialect, json, read_conn, time, write_tx};

/// What the gateway stores when a call needs a person's approval.
#[derive(Debug, Clone)]
pub struct ApprovalRequest<'a> {
    pub server: &'a str,
    /// The tool's name on its server.
    pub tool: &'a str,
    /// The tool's name as the client called it.
    pub exposed: &'a str,
    /// Names the caller exactly (the gateway's principal identity key): only this caller's
    /// retry may use the approval.
    pub principal_key: &'a str,
    /// The caller's subject, for people reading the list.
    pub actor_id: &'a str,
    pub tenant: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
    /// The hash of the call's arguments: only a retry with the same arguments may use the
    /// approval.
    pub args_hash: &'a str,
    /// The arguments (with secrets already redacted), for the person deciding.
    pub arguments: &'a Value,
    /// Why the call needs approval (for example the deciding policies), for the person
    /// deciding.
    pub reasons: &'a [String],
    /// How the decision is asked for: `out_of_band`, `input_required` or `elicitation`.
    pub flow: &'a str,
    /// Until when (unix milliseconds) the request waits for a decision.
    pub expires_at_ms: i64,
}

/// What became of a request for approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// Stored, pending, under this id.
    Stored(String),
    /// Not stored: the caller already has this many requests pending.
    TooMany(i64),
}

/// One approval, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Approval {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// While pending, until when it waits for a decision; once approved, until when the call
    /// may be retried.
    pub expires_at: DateTime<Utc>,
    pub server: String,
    pub tool: String,
    pub exposed: String,
    #[serde(skip)]
    pub principal_key: String,
    pub actor_id: String,
    pub tenant: Option<String>,
    pub session_id: Option<String>,
    pub request_id: Option<String>,
    pub args_hash: String,
    pub arguments: Value,
    pub reasons: Vec<String>,
    /// `out_of_band`, `input_required` or `elicitation`.
    pub flow: String,
    /// `pending`, `approved`, `denied`, `used`, `expired` or `revoked`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub used_at: Option<DateTime<Utc>>,
}

/// A person's decision on a pending approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The caller may retry the call, once, within the use window.
    Approve,
    /// The call stays refused.
    Deny,
}

impl Verdict {
    fn status(self) -> &'static str {
        match self {
            Verdict::Approve => "approved",
            Verdict::Deny => "denied",
        }
    }
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq)]
pub enum Decided {
    /// The approval, now approved or denied.
    Done(Box<Approval>),
    /// No approval has that id.
    NotFound,
    /// It was decided (or used, expired or revoked) before: its status stays.
    AlreadyDecided(String),
    /// It waited past its expiry for a decision; it is now marked expired.
    Expired,
}

/// The approvals, in the audit database.
#[derive(Clone)]
pub struct ApprovalStore {
    backend: Backend,
}

/// Every column, as [`select`] reads it.
#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    created_at: String,
    expires_at_ms: i64,
    server: String,
    tool: String,
    exposed: String,
    principal_key: String,
    actor_id: String,
    tenant: Option<String>,
    session_id: Option<String>,
    request_id: Option<String>,
    args_hash: String,
    arguments: String,
    reasons: String,
    flow: String,
    status: String,
    decided_by: Option<String>,
    decided_at: Option<String>,
    used_at: Option<String>,
}

/// Every column, named as in [`Row`]. Sort by `mcp_approvals.created_at`: plain `created_at`
/// would be the text read here.
fn select(sql: &Dialect) -> String {
    format!(
        "SELECT id, {} AS created_at, expires_at_ms, server, tool, exposed, principal_key, actor_id, tenant, \
         session_id, request_id, args_hash, arguments, reasons, flow, status, decided_by, {} AS decided_at, \
         {} AS used_at FROM mcp_approvals",
        sql.at("created_at"),
        sql.at("decided_at"),
        sql.at("used_at"),
    )
}

/// Inside a write transaction: selects and locks the ids of the approvals matching `$filter`
/// (its parameters bound to `$bind`), runs `$update` on each (its `$1` the id, then `$set`),
/// and reads each back as it is now, oldest first.
macro_rules! update_each {
    ($conn:ident, $sql:ident, $filter:expr, [$($bind:expr),*], $update:expr, [$($set:expr),*], $doing:expr) => {{
        let ids: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT id FROM mcp_approvals WHERE {} ORDER BY created_at, id{}",
            $filter, $sql.lock_rows
        ))
        $(.bind($bind))*
        .fetch_all(&mut *$conn)
        .await
        .map_err(StoreError::db($doing))?;
        let mut rows: Vec<Row> = Vec::with_capacity(ids.len());
        for (id,) in ids {
            sqlx::query($update).bind(&id)$(.bind($set))*.execute(&mut *$conn).await.map_err(StoreError::db($doing))?;
            let row: Row = sqlx::query_as(&format!("{} WHERE id = $1", select($sql)))
                .bind(&id)
                .fetch_one(&mut *$conn)
                .await
                .map_err(StoreError::db($doing))?;
            rows.push(row);
        }
        Ok::<Vec<Row>, StoreError>(rows)
    }};
}

impl ApprovalStore {
    /// Opens the approvals table in the audit database at `url` (`sqlite://...` or
    /// `postgres://...`), creating the database and every table if needed.
    pub async fn open(url: &str) -> Result<ApprovalStore, StoreError> {
        // A decision or a use is acted on only after it is stored: full sync on SQLite.
        let backend = Backend::open_writer(url, true).await?;
        Ok(ApprovalStore { backend })
    }

    /// Stores a call waiting for approval, pending, and returns its new id (`apr-` and 24 hex
    /// digits, random).
    pub async fn request(&self, r: &ApprovalRequest<'_>) -> Result<String, StoreError> {
        match self.request_capped(r, None, 0).await? {
            Requested::Stored(id) => Ok(id),
            Requested::TooMany(_) => unreachable!("no cap was given"),
        }
    }

    /// Stores a request for approval unless its caller already has `max_pending` requests
    /// pending at `now_ms` (no cap when `None`); checked and stored in one transaction, so
    /// callers racing cannot pass the cap together.
    pub async fn request_capped(
        &self,
        r: &ApprovalRequest<'_>,
        max_pending: Option<u32>,
        now_ms: i64,
    ) -> Result<Requested, StoreError> {
        let id = format!("apr-{}", hex::encode(rand::random::<[u8; 12]>()));
        let arguments = r.arguments.to_string();
        let reasons = Value::from(r.reasons.to_vec()).to_string();
        write_tx!(self, |conn, sql, now| {
            if let Some(max) = max_pending {
                if let Some(lock) = sql.lock_caller {
                    sqlx::query(lock)
                        .bind(r.principal_key)
                        .execute(&mut *conn)
                        .await
                        .map_err(StoreError::db("locking the caller's approvals"))?;
                }
                let (pending,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM mcp_approvals WHERE principal_key = $1 AND status = 'pending' \
                     AND expires_at_ms > $2",
                )
                .bind(r.principal_key)
                .bind(now_ms)
                .fetch_one(&mut *conn)
                .await
                .map_err(StoreError::db("counting pending approvals"))?;
                if pending >= i64::from(max) {
                    return Ok(Requested::TooMany(pending));
                }
            }
            sqlx::query(
                "INSERT INTO mcp_approvals (id, created_at, expires_at_ms, server, tool, exposed, principal_key, \
                 actor_id, tenant, session_id, request_id, args_hash, arguments, reasons, flow) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(&id)
            .bind(now)
            .bind(r.expires_at_ms)
            .bind(r.server)
            .bind(r.tool)
            .bind(r.exposed)
            .bind(r.principal_key)
            .bind(r.actor_id)
            .bind(r.tenant)
            .bind(r.session_id)
            .bind(r.request_id)
            .bind(r.args_hash)
            .bind(&arguments)
            .bind(&reasons)
            .bind(r.flow)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("storing a request for approval"))?;
            Ok(Requested::Stored(id.clone()))
        })
    }

    /// Approvals with `status` (every approval if `None`), newest first, at most `limit`.
    pub async fn list(&self, status: Option<&str>, limit: u32) -> Result<Vec<Approval>, StoreError> {
        let rows: Vec<Row> = read_conn!(self, |conn, sql| {
            let filter = if status.is_some() { " WHERE status = $2" } else { "" };
            let text = format!("{}{filter} ORDER BY mcp_approvals.created_at DESC, id LIMIT $1", select(sql));
            let mut query = sqlx::query_as(&text).bind(i64::from(limit));
            if let Some(status) = status {
                query = query.bind(status);
            }
            query.fetch_all(conn).await.map_err(StoreError::db("listing approvals"))?
        });
        rows.into_iter().map(from_row).collect()
    }

    /// One approval.
    pub async fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let row: Option<Row> = read_conn!(self, |conn, sql| {
            sqlx::query_as(&format!("{} WHERE id = $1", select(sql)))
                .bind(id)
                .fetch_optional(conn)
                .await
                .map_err(StoreError::db("reading an approval"))?
        });
        row.map(from_row).transpose()
    }

    /// Records a person's decision on a pending approval that has not expired (at `now_ms`,
    /// unix milliseconds). Approving gives the caller `use_within_ms` from now to retry the
    /// call; denying leaves the expiry as it was. An approval is decided once: two people
    /// racing get one `Done` and one `AlreadyDecided`. A pending approval past its expiry is
    /// marked expired and `Expired` returned.
    pub async fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        by: &str,
        now_ms: i64,
        use_within_ms: i64,
    ) -> Result<Decided, StoreError> {
        let expires = match verdict {
            Verdict::Approve => Some(now_ms.saturating_add(use_within_ms)),
            Verdict::Deny => None,
        };
        let (decided, expired, row) = write_tx!(self, |conn, sql, now| {
            let decided = sqlx::query(
                "UPDATE mcp_approvals SET status = $2, decided_by = $3, decided_at = $4, \
                 expires_at_ms = COALESCE($5, expires_at_ms) \
                 WHERE id = $1 AND status = 'pending' AND expires_at_ms > $6",
            )
            .bind(id)
            .bind(verdict.status())
            .bind(by)
            .bind(now)
            .bind(expires)
            .bind(now_ms)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("deciding an approval"))?
            .rows_affected()
                == 1;
            let expired = !decided
                && sqlx::query(
                    "UPDATE mcp_approvals SET status = 'expired' \
                     WHERE id = $1 AND status = 'pending' AND expires_at_ms <= $2",
                )
                .bind(id)
                .bind(now_ms)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("expiring an approval"))?
                .rows_affected()
                    == 1;
            let row: Option<Row> = sqlx::query_as(&format!("{} WHERE id = $1", select(sql)))
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .map_err(StoreError::db("reading an approval"))?;
            Ok::<_, StoreError>((decided, expired, row))
        })?;
        Ok(match row.map(from_row).transpose()? {
            None => Decided::NotFound,
            Some(approval) if decided => Decided::Done(Box::new(approval)),
            Some(_) if expired => Decided::Expired,
            Some(approval) => Decided::AlreadyDecided(approval.status),
        })
    }

    /// Undoes `by`'s decision on `id`: the approval is pending again (its expiry stays as the
    /// decision left it). For a decision that could not be recorded in the audit log, which
    /// must not stand unrecorded. Only an approval still approved or denied (not yet used) is
    /// undone. Whether it was undone.
    pub async fn undecide(&self, id: &str, by: &str) -> Result<bool, StoreError> {
        write_tx!(self, |conn, _sql, _now| {
            let updated = sqlx::query(
                "UPDATE mcp_approvals SET status = 'pending', decided_by = NULL, decided_at = NULL \
                 WHERE id = $1 AND status IN ('approved', 'denied') AND decided_by = $2",
            )
            .bind(id)
            .bind(by)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("undoing an approval's decision"))?;
            Ok(updated.rows_affected() == 1)
        })
    }

    /// The newest approval for exactly this call (caller, server, tool and argument hash) that
    /// is pending, approved or denied and has not expired at `now_ms`: what the gateway
    /// consults when the call comes (again), so that a retry waits for, uses, or is refused by
    /// the decision already asked for instead of asking again.
    pub async fn find_for(
        &self,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Approval>, StoreError> {
        let row: Option<Row> = read_conn!(self, |conn, sql| {
            sqlx::query_as(&format!(
                "{} WHERE principal_key = $1 AND server = $2 AND tool = $3 AND args_hash = $4 \
                 AND status IN ('pending', 'approved', 'denied') AND expires_at_ms > $5 \
                 ORDER BY mcp_approvals.created_at DESC, id LIMIT 1",
                select(sql)
            ))
            .bind(principal_key)
            .bind(server)
            .bind(tool)
            .bind(args_hash)
            .bind(now_ms)
            .fetch_optional(conn)
            .await
            .map_err(StoreError::db("finding an approval"))?
        });
        row.map(from_row).transpose()
    }

    /// Uses an approved approval for the call it was given for: only the same caller, server,
    /// tool and argument hash, before it expires at `now_ms`, and only once. Whether this call
    /// used it: of two racing retries exactly one gets `true`.
    pub async fn use_once(
        &self,
        id: &str,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        write_tx!(self, |conn, _sql, now| {
            let updated = sqlx::query(
                "UPDATE mcp_approvals SET status = 'used', used_at = $6 \
                 WHERE id = $1 AND status = 'approved' AND principal_key = $2 AND server = $3 AND tool = $4 \
                 AND args_hash = $5 AND expires_at_ms > $7",
            )
            .bind(id)
            .bind(principal_key)
            .bind(server)
            .bind(tool)
            .bind(args_hash)
            .bind(now)
            .bind(now_ms)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("using an approval"))?;
            Ok(updated.rows_affected() == 1)
        })
    }

    /// For an approval asked in band, which the client's user (`by`) accepted: the pending
    /// approval is decided and used at once, for the same caller, server, tool and argument
    /// hash, before it expires at `now_ms`. Whether it was redeemed: only once.
    #[allow(clippy::too_many_arguments)]
    pub async fn redeem(
        &self,
        id: &str,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        write_tx!(self, |conn, _sql, now| {
            let updated = sqlx::query(
                "UPDATE mcp_approvals SET status = 'used', decided_by = $6, decided_at = $7, used_at = $7 \
                 WHERE id = $1 AND status = 'pending' AND principal_key = $2 AND server = $3 AND tool = $4 \
                 AND args_hash = $5 AND expires_at_ms > $8",
            )
            .bind(id)
            .bind(principal_key)
            .bind(server)
            .bind(tool)
            .bind(args_hash)
            .bind(by)
            .bind(now)
            .bind(now_ms)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("redeeming an approval"))?;
            Ok(updated.rows_affected() == 1)
        })
    }

    /// For an approval asked in band, which the client's user (`by`) declined: the caller's
    /// pending approval is denied. Whether it changed.
    pub async fn decline(&self, id: &str, principal_key: &str, by: &str) -> Result<bool, StoreError> {
        write_tx!(self, |conn, _sql, now| {
            let updated = sqlx::query(
                "UPDATE mcp_approvals SET status = 'denied', decided_by = $3, decided_at = $4 \
                 WHERE id = $1 AND status = 'pending' AND principal_key = $2",
            )
            .bind(id)
            .bind(principal_key)
            .bind(by)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("declining an approval"))?;
            Ok(updated.rows_affected() == 1)
        })
    }

    /// Marks every pending or approved approval whose expiry is at or before `now_ms` expired,
    /// and returns them as they are now, oldest first: no one can decide or use them any more.
    pub async fn expire(&self, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        let rows = write_tx!(self, |conn, sql, _now| {
            update_each!(
                conn,
                sql,
                "status IN ('pending', 'approved') AND expires_at_ms <= $1",
                [now_ms],
                "UPDATE mcp_approvals SET status = 'expired' WHERE id = $1 AND status IN ('pending', 'approved')",
                [],
                "expiring approvals"
            )
        })?;
        rows.into_iter().map(from_row).collect()
    }

    /// Revokes every pending or approved approval for `server` (for example when an operator
    /// contains it), in `by`'s name, and returns them as they are now, oldest first: no one can
    /// decide or use them any more.
    pub async fn revoke_server(&self, server: &str, by: &str) -> Result<Vec<Approval>, StoreError> {
        let rows = write_tx!(self, |conn, sql, now| {
            update_each!(
                conn,
                sql,
                "server = $1 AND status IN ('pending', 'approved')",
                [server],
                "UPDATE mcp_approvals SET status = 'revoked', decided_by = $2, decided_at = $3 \
                 WHERE id = $1 AND status IN ('pending', 'approved')",
                [by, now],
                "revoking a server's approvals"
            )
        })?;
        rows.into_iter().map(from_row).collect()
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

/// A decoding error for a stored value this crate did not write.
fn bad(doing: &'static str, problem: String) -> StoreError {
    StoreError::Database { doing, source: sqlx::Error::Decode(problem.into()) }
}

fn from_row(row: Row) -> Result<Approval, StoreError> {
    let reasons = match json(&row.reasons, "an approval's reasons")? {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(reason) => Ok(reason),
                other => Err(bad("reading an approval's reasons", format!("`{other}` is not a string"))),
            })
            .collect::<Result<Vec<String>, StoreError>>()?,
        other => return Err(bad("reading an approval's reasons", format!("`{other}` is not a list"))),
    };
    Ok(Approval {
        created_at: time(&row.created_at)?,
        expires_at: DateTime::from_timestamp_millis(row.expires_at_ms).ok_or_else(|| {
            bad("reading an approval's expiry", format!("{} is not a time in milliseconds", row.expires_at_ms))
        })?,
        arguments: json(&row.arguments, "an approval's arguments")?,
        reasons,
        decided_at: row.decided_at.as_deref().map(time).transpose()?,
        used_at: row.used_at.as_deref().map(time).transpose()?,
        id: row.id,
        server: row.server,
        tool: row.tool,
        exposed: row.exposed,
        principal_key: row.principal_key,
        actor_id: row.actor_id,
        tenant: row.tenant,
        session_id: row.session_id,
        request_id: row.request_id,
        args_hash: row.args_hash,
        flow: row.flow,
        status: row.status,
        decided_by: row.decided_by,
    })
}
