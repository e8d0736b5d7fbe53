//! What the tables beside the audit chain (pins, quarantine) share: one transaction or pooled
//! connection on either backend, the SQL that differs between them, and decoding stored text.

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::Value;

use crate::StoreError;
use crate::event::parse_stored_time;

/// The SQL that differs between the backends.
pub(crate) struct Dialect {
    postgres: bool,
    /// Appended to a read inside a write transaction, so two concurrent writers serialize.
    pub lock_rows: &'static str,
    /// Takes a lock on one caller (`$1`) for the rest of the transaction, where a write
    /// transaction alone does not serialize writers (SQLite's `BEGIN IMMEDIATE` does).
    pub lock_caller: Option<&'static str>,
}

pub(crate) const SQLITE: Dialect = Dialect { postgres: false, lock_rows: "", lock_caller: None };

pub(crate) const POSTGRES: Dialect = Dialect {
    postgres: true,
    lock_rows: " FOR UPDATE",
    lock_caller: Some("SELECT pg_advisory_xact_lock(hashtextextended($1, 7))"),
};

impl Dialect {
    /// One string per backend, built by `build` on first use and kept (SQL assembled from the
    /// dialect's parts, asked for on every write).
    pub fn cached(
        &self,
        cells: &'static [std::sync::OnceLock<String>; 2],
        build: impl FnOnce(&Dialect) -> String,
    ) -> &'static str {
        cells[usize::from(self.postgres)].get_or_init(|| build(self))
    }

    /// The `$n` parameter of a time given as stored-format text (Postgres: as `timestamptz`,
    /// the text being UTC).
    pub fn time_param(&self, n: usize) -> String {
        if self.postgres { format!("(${n}::timestamp AT TIME ZONE 'UTC')") } else { format!("${n}") }
    }

    /// The time column `column` read as stored-format text (Postgres: from `timestamptz`, which
    /// also keeps sqlx's decoder, which panics on `infinity`, away from hand-edited rows).
    pub fn at(&self, column: &str) -> String {
        if self.postgres {
            format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
        } else {
            column.to_owned()
        }
    }
}

/// Runs `$body` in one write transaction with `$conn` its connection, `$sql` the backend's
/// [`Dialect`] and `$now` the current time in the form the backend binds. `$body` runs as an
/// async block returning `Result`: an error (`?` or `return Err`) rolls back, `Ok` commits.
macro_rules! write_tx {
    ($store:expr, |$conn:ident, $sql:ident, $now:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(pool) => {
                // IMMEDIATE: take the write lock before reading, so a read-then-write cannot
                // deadlock against another writer.
                let mut tx =
                    pool.begin_with("BEGIN IMMEDIATE").await.map_err(StoreError::db("starting a transaction"))?;
                let $conn: &mut sqlx::SqliteConnection = &mut *tx;
                let $sql = &$crate::sql::SQLITE;
                let now_text = $crate::event::stored_time(&$crate::sql::now());
                let $now = now_text.as_str();
                let value = async { $body }.await?;
                tx.commit().await.map_err(StoreError::db("committing"))?;
                Ok(value)
            }
            Backend::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(StoreError::db("starting a transaction"))?;
                let $conn: &mut sqlx::PgConnection = &mut *tx;
                let $sql = &$crate::sql::POSTGRES;
                let $now = $crate::sql::now();
                let value = async { $body }.await?;
                tx.commit().await.map_err(StoreError::db("committing"))?;
                Ok(value)
            }
        }
    };
}

/// Runs `$body` on a pooled connection, for reads.
macro_rules! read_conn {
    ($store:expr, |$conn:ident, $sql:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                let $conn: &mut sqlx::SqliteConnection = &mut pooled;
                let $sql = &$crate::sql::SQLITE;
                $body
            }
            Backend::Postgres(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                let $conn: &mut sqlx::PgConnection = &mut pooled;
                let $sql = &$crate::sql::POSTGRES;
                $body
            }
        }
    };
}

pub(crate) use {read_conn, write_tx};

/// Now, as both backends keep it (microseconds): what is returned equals what is read back.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Stored JSON text back to a value. The text was written by this crate; a row edited by hand
/// into something else is an error, never a panic.
pub(crate) fn json(text: &str, what: &'static str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|err| StoreError::Database { doing: what, source: sqlx::Error::Decode(err.into()) })
}

/// Stored time text back to a time; an error, never a panic, for a hand-edited row.
pub(crate) fn time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_stored_time(text).ok_or_else(|| StoreError::Database {
        doing: "reading a stored time",
        source: sqlx::Error::Decode(format!("`{text}` is not a time").into()),
    })
}
