//! The audit log of every request and decision Warden makes: a durable, hash-chained table
//! `mcp_audit` in SQLite (embedded, the default) or Postgres (when several gateways share
//! state), behind one API.
//!
//! - [`AuditLog`] writes: one writer task per process batches events into transactions,
//!   either answering each caller after its commit ([`Durability::Sync`]) or once queued
//!   ([`Durability::Batched`]), and copies committed rows to an optional JSONL sink.
//! - [`AuditReader`] reads, read-only at the database: [`verify`](AuditReader::verify) the
//!   chain, run ad-hoc [`query`](AuditReader::query)s, page through rows for tail and export.
//! - [`PinStore`] keeps, in the same database, the reviewed hash of every tool, prompt,
//!   resource template and instructions each server offers, and the changed definitions
//!   waiting for review; [`pins::diff()`] shows what changed.
//! - [`QuarantineStore`] keeps the results withheld from clients for carrying instructions aimed
//!   at the model, until a person releases or discards them.
//! - [`ApprovalStore`] keeps the tool calls waiting for a person's approval and the decisions:
//!   an approved call is let through once, only for the caller, tool and arguments approved.
//! - [`ContainmentStore`] keeps the servers an operator contained, with who did it and why.
//! - [`storage`] says what the gateway needs of each store, as traits the stores implement, and
//!   [`memory`] keeps the same in memory, for tests without a database.
//! - [`gates`] turns recent rows into alerts (unapproved writes, unknown servers, drift,
//!   scope mismatches, quarantines).
//!
//! It knows nothing of the gateway's types: the gateway fills in an [`AuditEvent`] (with
//! arguments already redacted) and this crate stores it. It is not a query engine or a
//! metrics store, and it does not decide anything.
//!
//! # The chain
//!
//! Row `seq` (1, 2, 3, ... with no gaps) stores `prev_hash`, the previous row's `row_hash`
//! (64 zeros for row 1), and
//! `row_hash = hex(sha256(prev_hash || "\n" || canonical))`, where `canonical` is a JSON array
//! of `seq` and every other column except `row_hash`, in table order (`findings`, added
//! later, only when set, after `prev_hash`), with JSON columns as their stored text and the
//! time as stored (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC). Verification
//! therefore finds an edited column, a deleted row, an inserted row, and rows whose seq
//! values were swapped, and names the first bad row.
//!
//! What the chain alone cannot show is rows cut off the end: a shorter chain is still a valid
//! chain. [`VerifyReport::head`] gives the last seq and hash; record it outside the database
//! (a ticket, a log shipper, another host) and compare the next report against it.
//!
//! # Chains
//!
//! A SQLite file has one writer and one chain, named `''`. On Postgres each gateway process
//! appends to a chain of its own, named when it starts (host, start time, a random suffix), so
//! that gateways never wait for one another: a row's `link` is its place in its chain (from 1),
//! `seq` (from a sequence) orders rows across chains, and a named chain's row also hashes its
//! chain and link (`findings`, or null, then the chain and the link end the array). `scopes`
//! (the caller's token scopes on call rows, added after chains) is hashed only when set, last,
//! with a null for absent `findings` before it in the chain `''`. Rows of the
//! chain `''` keep `link = seq`. Verification walks every chain. Each gateway with a signing key
//! also states every chain's head every few seconds, signed (table `mcp_audit_heads`), so that a
//! chain deleted whole or cut short after a statement is found.
//!
//! Retention ([`AuditSettings::retain`]) deletes the oldest rows, but first checks that they
//! chain and writes a checkpoint: the last deleted row's seq and hash, signed with an Ed25519
//! key. Verification then starts from a checkpoint signed by a trusted key.
//!
//! # Example
//!
//! ```no_run
//! use warden_store::{AuditEvent, AuditLog, AuditReader, AuditSettings, Durability};
//! # async fn run() -> Result<(), warden_store::StoreError> {
//! let mut settings = AuditSettings::new("sqlite:///var/lib/warden/audit.db");
//! settings.durability = Durability::Batched { max_delay: std::time::Duration::from_millis(50) };
//! let log = AuditLog::open(settings).await?;
//! log.record(AuditEvent::new(chrono::Utc::now(), "call", "ALLOW")).await?;
//! log.shutdown().await?;
//!
//! let reader = AuditReader::open("sqlite:///var/lib/warden/audit.db").await?;
//! let report = reader.verify::<&str>(&[]).await?;
//! assert!(report.is_clean());
//! # Ok(()) }
//! ```

pub mod approvals;
mod backend;
mod chain;
mod checkpoint;
pub mod containment;
mod error;
mod event;
pub mod gates;
mod heads;
pub mod memory;
pub mod pins;
mod postgres;
pub mod quarantine;
mod query;
mod reader;
mod rows;
pub mod search;
pub mod server_errors;
mod sql;
mod sqlite;
pub mod storage;
pub mod upstream_tokens;
mod verify;
mod writer;

pub use approvals::ApprovalStore;
pub use chain::GENESIS_HASH;
pub use checkpoint::{PruneReport, public_key_of};
pub use containment::{ContainmentStore, Revocation};
pub use error::StoreError;
pub use event::{AuditEvent, AuditRow};
pub use pins::{Candidate, Pin, PinStore};
pub use quarantine::QuarantineStore;
pub use query::{QueryLimits, QueryResult};
pub use reader::AuditReader;
pub use search::AuditFilter;
pub use server_errors::ServerErrorStore;
pub use storage::{ApprovalStorage, AuditSink, ContainmentStorage, PinStorage, QuarantineStorage};
pub use upstream_tokens::{StoredToken, UpstreamTokenStore};
pub use verify::{BadRow, ChainSummary, VerifyReport};
pub use writer::{AuditLog, AuditSettings, Durability, JsonlSink};
