//! Pins: the reviewed hash of every definition each upstream server offers, so a definition
//! that changes under the gateway (a "rug pull") is held back until a person looks at it.
//!
//! An item is one tool, prompt or resource template, or a server's instructions, named by
//! `(server, kind, name)`. Its pin holds the `sha256:` hash of its RFC 8785 canonical form
//! (computed by the caller, `warden_inspect::canonical::definition_hash`) and the definition
//! itself, so `warden pins diff` can show what changed. Pins live in the audit database, in
//! tables `mcp_pins` and `mcp_pin_candidates`, created by the same migrations.
//!
//! The gateway decides; this store remembers:
//!
//! - in `tofu` mode it pins what it first sees with [`PinStore::pin_if_absent`], which only
//!   one of several gateways sharing a database wins;
//! - in `strict` mode, and on a changed hash, it records a [`Candidate`] with
//!   [`PinStore::record_candidate`], which says whether that hash is new so the gateway
//!   alerts once, not on every listing;
//! - a person reviews ([`PinStore::candidates`], [`diff()`], [`render_diff`]) and
//!   [`accept`](PinStore::accept)s.
//!
//! Kinds are `tool`, `prompt`, `resource_template` and `instructions`; candidate reasons are
//! `new`, `drift`, `removed` (definition absent) and `poisoned`. The database refuses others.

mod diff;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::StoreError;
use crate::backend::Backend;
use crate::sql::{Dialect, json, read_conn, time, write_tx};

pub use diff::{Change, diff, escaped, render_diff};

/// Candidate reason for a definition that disappeared from the server's listing.
pub const REMOVED: &str = "removed";

/// One pinned definition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pin {
    pub server: String,
    /// `tool`, `prompt`, `resource_template` or `instructions`.
    pub kind: String,
    pub name: String,
    /// `sha256:<hex>` of the canonical definition.
    pub hash: String,
    pub definition: Value,
    pub pinned_at: DateTime<Utc>,
    /// Who pinned it: a person's name, or e.g. `tofu` for trust on first use.
    pub pinned_by: String,
}

/// A definition seen but not pinned, waiting for review. One per distinct hash of an item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    pub server: String,
    pub kind: String,
    pub name: String,
    pub hash: String,
    /// `None` exactly when `reason` is `removed`.
    pub definition: Option<Value>,
    /// `new`, `drift`, `removed` or `poisoned`.
    pub reason: String,
    /// What the inspection found, as the gateway reported it (`[]` for nothing).
    pub findings: Value,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// Makes `$candidate` the pin of its item on `$conn` (a `removed` one deletes the pin).
macro_rules! pin_candidate {
    ($conn:ident, $server:expr, $candidate:expr, $now:expr, $by:expr) => {
        match &$candidate.definition {
            None => {
                sqlx::query("DELETE FROM mcp_pins WHERE server = $1 AND kind = $2 AND name = $3")
                    .bind($server)
                    .bind(&$candidate.kind)
                    .bind(&$candidate.name)
                    .execute(&mut *$conn)
                    .await
                    .map_err(StoreError::db("deleting a removed item's pin"))?;
            }
            Some(definition) => {
                sqlx::query(
                    "INSERT INTO mcp_pins (server, kind, name, hash, definition, pinned_at, pinned_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (server, kind, name) DO UPDATE SET hash = excluded.hash, \
                     definition = excluded.definition, pinned_at = excluded.pinned_at, \
                     pinned_by = excluded.pinned_by",
                )
                .bind($server)
                .bind(&$candidate.kind)
                .bind(&$candidate.name)
                .bind(&$candidate.hash)
                .bind(definition.to_string())
                .bind($now)
                .bind($by)
                .execute(&mut *$conn)
                .await
                .map_err(StoreError::db("pinning an accepted candidate"))?;
            }
        }
    };
}

/// What came of accepting one candidate by its hash.
#[derive(Debug, Clone, PartialEq)]
pub enum Exact {
    /// Pinned (or, for `removed`, unpinned); the item's other candidates are gone too.
    Accepted(Box<Candidate>),
    /// Nothing of that item with that hash is held any more.
    Gone,
    /// The server has shown a newer definition since: that one must be reviewed instead.
    Superseded,
}

/// The pins and candidates of every server, in the audit database.
///
/// ```no_run
/// use warden_store::PinStore;
/// # async fn run() -> Result<(), warden_store::StoreError> {
/// let pins = PinStore::open("sqlite:///var/lib/warden/audit.db").await?;
/// let definition = serde_json::json!({"name": "search", "description": "Searches."});
/// let hash = "sha256:..."; // warden_inspect::canonical::definition_hash(&definition)
/// if !pins.pin_if_absent("github", "tool", "search", hash, &definition, "tofu").await? {
///     // Already pinned: compare `hash` with the pin's and record a candidate if it differs.
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PinStore {
    backend: Backend,
}

type PinRow = (String, String, String, String, String, String, String);
type CandidateRow = (String, String, String, String, Option<String>, String, String, String, String);

impl PinStore {
    /// Opens the pin tables in the audit database at `url` (`sqlite://...` or
    /// `postgres://...`), creating the database and every table (audit and pins) if needed.
    pub async fn open(url: &str) -> Result<PinStore, StoreError> {
        // A reviewed pin should survive a power cut: full sync on SQLite; writes are rare.
        let backend = Backend::open_writer(url, true).await?;
        Ok(PinStore { backend })
    }

    /// Every pin of `server`, by kind then name.
    pub async fn pins(&self, server: &str) -> Result<Vec<Pin>, StoreError> {
        let rows: Vec<PinRow> = read_conn!(self, |conn, sql| {
            sqlx::query_as(&format!(
                "SELECT server, kind, name, hash, definition, {}, pinned_by FROM mcp_pins \
                 WHERE server = $1 ORDER BY kind, name",
                sql.at("pinned_at")
            ))
            .bind(server)
            .fetch_all(conn)
            .await
            .map_err(StoreError::db("reading pins"))?
        });
        rows.into_iter().map(pin_from_row).collect()
    }

    /// Pins one item as `hash`/`definition`, replacing any pin it had, and drops its
    /// candidates: the person who pinned it has decided.
    pub async fn pin(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        hash: &str,
        definition: &Value,
        by: &str,
    ) -> Result<(), StoreError> {
        write_tx!(self, |conn, _sql, now| {
            sqlx::query(
                "INSERT INTO mcp_pins (server, kind, name, hash, definition, pinned_at, pinned_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (server, kind, name) DO UPDATE SET hash = excluded.hash, \
                 definition = excluded.definition, pinned_at = excluded.pinned_at, pinned_by = excluded.pinned_by",
            )
            .bind(server)
            .bind(kind)
            .bind(name)
            .bind(hash)
            .bind(definition.to_string())
            .bind(now)
            .bind(by)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("writing a pin"))?;
            sqlx::query("DELETE FROM mcp_pin_candidates WHERE server = $1 AND kind = $2 AND name = $3")
                .bind(server)
                .bind(kind)
                .bind(name)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("dropping candidates of a pinned item"))?;
            Ok(())
        })
    }

    /// Trust on first use: pins the item only if it has no pin, and says whether it did.
    /// Of several gateways racing on one database exactly one gets `true`; the others (and
    /// every later caller) compare their hash with the existing pin's.
    pub async fn pin_if_absent(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        hash: &str,
        definition: &Value,
        by: &str,
    ) -> Result<bool, StoreError> {
        write_tx!(self, |conn, _sql, now| {
            let inserted = sqlx::query(
                "INSERT INTO mcp_pins (server, kind, name, hash, definition, pinned_at, pinned_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (server, kind, name) DO NOTHING",
            )
            .bind(server)
            .bind(kind)
            .bind(name)
            .bind(hash)
            .bind(definition.to_string())
            .bind(now)
            .bind(by)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("writing a pin"))?;
            Ok(inserted.rows_affected() == 1)
        })
    }

    /// Records that the item was seen with `hash`, not pinned: `definition` is `None` exactly
    /// when `reason` is `removed`. Returns `true` only the first time this hash of this item
    /// is recorded, so the gateway audits and alerts once per candidate; later calls update
    /// its `last_seen`, `reason` and `findings`.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_candidate(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        hash: &str,
        definition: Option<&Value>,
        reason: &str,
        findings: &Value,
    ) -> Result<bool, StoreError> {
        let definition = definition.map(Value::to_string);
        let findings = findings.to_string();
        write_tx!(self, |conn, _sql, now| {
            let inserted = sqlx::query(
                "INSERT INTO mcp_pin_candidates \
                 (server, kind, name, hash, definition, reason, findings, first_seen, last_seen) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) \
                 ON CONFLICT (server, kind, name, hash) DO NOTHING",
            )
            .bind(server)
            .bind(kind)
            .bind(name)
            .bind(hash)
            .bind(&definition)
            .bind(reason)
            .bind(&findings)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("recording a pin candidate"))?;
            if inserted.rows_affected() == 1 {
                return Ok(true);
            }
            sqlx::query(
                "UPDATE mcp_pin_candidates SET last_seen = $5, reason = $6, findings = $7 \
                 WHERE server = $1 AND kind = $2 AND name = $3 AND hash = $4",
            )
            .bind(server)
            .bind(kind)
            .bind(name)
            .bind(hash)
            .bind(now)
            .bind(reason)
            .bind(&findings)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::db("updating a pin candidate"))?;
            Ok(false)
        })
    }

    /// Every candidate of `server`, by kind and name, the most recently seen first.
    pub async fn candidates(&self, server: &str) -> Result<Vec<Candidate>, StoreError> {
        let rows: Vec<CandidateRow> = read_conn!(self, |conn, sql| {
            sqlx::query_as(&candidate_select(sql, "", ""))
                .bind(server)
                .fetch_all(conn)
                .await
                .map_err(StoreError::db("reading pin candidates"))?
        });
        rows.into_iter().map(candidate_from_row).collect()
    }

    /// Accepts the candidates of `server` (only those of items called `name`, of any kind, if
    /// given), in one transaction. For each item the most recently seen candidate wins: a
    /// `removed` one deletes the pin, any other becomes the pin. All of the item's candidates
    /// that were read are then deleted. Returns the winning candidates.
    pub async fn accept(&self, server: &str, name: Option<&str>, by: &str) -> Result<Vec<Candidate>, StoreError> {
        write_tx!(self, |conn, sql, now| {
            let filter = if name.is_some() { " AND name = $2" } else { "" };
            let select = candidate_select(sql, filter, sql.lock_rows);
            let mut query = sqlx::query_as(&select).bind(server);
            if let Some(name) = name {
                query = query.bind(name);
            }
            let rows: Vec<CandidateRow> =
                query.fetch_all(&mut *conn).await.map_err(StoreError::db("reading pin candidates"))?;
            let mut accepted: Vec<Candidate> = Vec::new();
            for candidate in rows.into_iter().map(candidate_from_row) {
                let candidate = candidate?;
                let item = |c: &Candidate| (c.kind.clone(), c.name.clone());
                // Rows come newest first within an item, so the first of each item wins.
                let winner = accepted.last().is_none_or(|last| item(last) != item(&candidate));
                if winner {
                    pin_candidate!(conn, server, &candidate, now, by);
                }
                // Only the rows read: a hash another gateway records meanwhile stays for review.
                sqlx::query(
                    "DELETE FROM mcp_pin_candidates WHERE server = $1 AND kind = $2 AND name = $3 AND hash = $4",
                )
                .bind(server)
                .bind(&candidate.kind)
                .bind(&candidate.name)
                .bind(&candidate.hash)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("deleting an accepted candidate"))?;
                if winner {
                    accepted.push(candidate);
                }
            }
            Ok(accepted)
        })
    }

    /// Accepts exactly the candidate of `server`'s `kind` `name` with `hash`, as a person saw
    /// it, if it is still the newest seen of its item; otherwise nothing changes.
    pub async fn accept_exact(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        hash: &str,
        by: &str,
    ) -> Result<Exact, StoreError> {
        write_tx!(self, |conn, sql, now| {
            let select = candidate_select(sql, " AND kind = $2 AND name = $3", sql.lock_rows);
            let rows: Vec<CandidateRow> = sqlx::query_as(&select)
                .bind(server)
                .bind(kind)
                .bind(name)
                .fetch_all(&mut *conn)
                .await
                .map_err(StoreError::db("reading pin candidates"))?;
            let held = rows.into_iter().map(candidate_from_row).collect::<Result<Vec<Candidate>, _>>()?;
            match held.first() {
                None => return Ok(Exact::Gone),
                Some(newest) if newest.hash != hash => {
                    let seen = held.iter().any(|c| c.hash == hash);
                    return Ok(if seen { Exact::Superseded } else { Exact::Gone });
                }
                Some(_) => {}
            }
            let chosen = held[0].clone();
            pin_candidate!(conn, server, &chosen, now, by);
            for c in &held {
                sqlx::query(
                    "DELETE FROM mcp_pin_candidates WHERE server = $1 AND kind = $2 AND name = $3 AND hash = $4",
                )
                .bind(server)
                .bind(&c.kind)
                .bind(&c.name)
                .bind(&c.hash)
                .execute(&mut *conn)
                .await
                .map_err(StoreError::db("deleting an accepted candidate"))?;
            }
            Ok(Exact::Accepted(Box::new(chosen)))
        })
    }

    /// Deletes the item's pin and candidates: the next sighting is a first sighting again.
    pub async fn forget(&self, server: &str, kind: &str, name: &str) -> Result<(), StoreError> {
        write_tx!(self, |conn, _sql, _now| {
            for table in ["mcp_pins", "mcp_pin_candidates"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE server = $1 AND kind = $2 AND name = $3"))
                    .bind(server)
                    .bind(kind)
                    .bind(name)
                    .execute(&mut *conn)
                    .await
                    .map_err(StoreError::db("forgetting a pin"))?;
            }
            Ok(())
        })
    }

    /// Closes the connections.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}

/// Candidates of server `$1`, newest first within each item; the order `accept` relies on.
fn candidate_select(sql: &Dialect, filter: &str, lock: &str) -> String {
    format!(
        "SELECT server, kind, name, hash, definition, reason, findings, {}, {} FROM mcp_pin_candidates \
         WHERE server = $1{filter} ORDER BY kind, name, last_seen DESC, first_seen DESC, hash{lock}",
        sql.at("first_seen"),
        sql.at("last_seen")
    )
}

fn pin_from_row(row: PinRow) -> Result<Pin, StoreError> {
    let (server, kind, name, hash, definition, pinned_at, pinned_by) = row;
    Ok(Pin {
        definition: json(&definition, "a pinned definition")?,
        pinned_at: time(&pinned_at)?,
        server,
        kind,
        name,
        hash,
        pinned_by,
    })
}

fn candidate_from_row(row: CandidateRow) -> Result<Candidate, StoreError> {
    let (server, kind, name, hash, definition, reason, findings, first_seen, last_seen) = row;
    Ok(Candidate {
        definition: definition.as_deref().map(|text| json(text, "a candidate definition")).transpose()?,
        findings: json(&findings, "a candidate's findings")?,
        first_seen: time(&first_seen)?,
        last_seen: time(&last_seen)?,
        server,
        kind,
        name,
        hash,
        reason,
    })
}
