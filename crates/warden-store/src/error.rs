//! The one error type at this crate's boundary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Everything that can go wrong opening, writing, reading or checking the audit store.
///
/// Messages name the store by its URL with any password removed, and say what to do where
/// there is something to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is not one this crate can open.
    #[error("audit store URL `{url}`: {problem}")]
    Url { url: String, problem: String },

    /// The settings contradict each other or are out of range.
    #[error("audit settings: {0}")]
    Settings(String),

    /// The database could not be reached or opened.
    #[error("cannot open the audit store at `{url}`: {source}")]
    Connect {
        url: String,
        #[source]
        source: sqlx::Error,
    },

    /// The schema could not be created or upgraded.
    #[error(
        "cannot create or upgrade the audit tables at `{url}`: {source} \
         (the database user needs CREATE rights on first start)"
    )]
    Migrate {
        url: String,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A statement failed.
    #[error("audit store error while {doing}: {source}")]
    Database {
        doing: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// The writer could not commit the batch that held this event (Sync mode).
    #[error("the audit event was not recorded: {0}")]
    NotRecorded(Arc<StoreError>),

    /// `record` was called after `shutdown`.
    #[error("the audit log is shut down and accepts no more events")]
    Closed,

    /// The writer task ended without answering; the event may or may not be stored.
    #[error("the audit writer stopped unexpectedly; the event may not have been recorded")]
    WriterGone,

    /// The checkpoint signing key could not be read, parsed or created.
    #[error("checkpoint signing key {path}: {problem}")]
    SigningKey { path: PathBuf, problem: String },

    /// A file (JSONL sink, key, SQLite directory) could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A stored row holds a value this crate cannot read (usually: it was edited by hand).
    #[error("row {seq} cannot be read: {problem}; run `verify` to check the chain")]
    CorruptRow { seq: i64, problem: String },

    /// An ad-hoc query was refused before it reached the database.
    #[error("query refused: {0}")]
    QueryRefused(String),

    /// An ad-hoc query ran past its time limit and was stopped.
    #[error("the query ran longer than {0:?} and was stopped")]
    QueryTimeout(Duration),

    /// Pruning found the rows it was about to delete do not chain; it deletes nothing.
    #[error("refusing to prune: the chain is broken at row {seq}: {problem}")]
    ChainBroken { seq: i64, problem: String },
}

impl StoreError {
    pub(crate) fn db(doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
        move |source| StoreError::Database { doing, source }
    }
}
