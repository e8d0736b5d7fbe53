//! Which database holds the log, and the small set of operations the rest of the crate needs
//! from it. Opening a database and running ad-hoc queries differ by database (`sqlite.rs`,
//! `postgres.rs`); the chain's rows are read and written by one codec (`rows.rs`).

use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgConnectOptions;
use sqlx::{PgPool, Postgres, SqlitePool, Transaction};

use crate::StoreError;
use crate::chain::StoredRow;
use crate::query::{QueryLimits, QueryResult};

/// How long opening a store, or waiting for a pooled connection, may take before failing.
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Where a URL points.
pub(crate) enum Location {
    Sqlite(PathBuf),
    Postgres(Box<PgConnectOptions>),
}

impl Location {
    /// `sqlite:///abs/path.db`, `sqlite://rel.db`, `sqlite:rel.db`, `postgres://...`.
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let problem = |problem: &str| StoreError::Url { url: redact(url), problem: problem.to_owned() };
        if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if rest.contains('?') {
                return Err(problem("SQLite URLs take no options; give only the file path"));
            }
            if rest.is_empty() || rest == ":memory:" || rest.starts_with("file:") {
                return Err(problem(
                    "give the path of the database file, e.g. sqlite:///var/lib/warden/audit.db; \
                     an in-memory database would keep nothing",
                ));
            }
            return Ok(Location::Sqlite(PathBuf::from(rest)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // The parser's own message may quote the URL, so it is not passed on.
            let options = PgConnectOptions::from_str(url).map_err(|_| problem("not a valid Postgres URL"))?;
            return Ok(Location::Postgres(Box::new(options)));
        }
        Err(problem("expected a URL starting with sqlite:// or postgres://"))
    }
}

/// The URL with any password (in the user-info part or as a `password` option) masked, for
/// messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // Not parseable: show only the scheme, which cannot hold a secret.
        return match url.split_once(':') {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => format!("{scheme}:..."),
            _ => "<unparseable URL>".to_owned(),
        };
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("****"));
    }
    if parsed.query_pairs().any(|(key, _)| key.eq_ignore_ascii_case("password")) {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(key, value)| {
                let value = if key.eq_ignore_ascii_case("password") { "****".into() } else { value.into_owned() };
                (key.into_owned(), value)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// An open pool on one of the two databases.
#[derive(Clone)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A write transaction: SQLite `BEGIN IMMEDIATE`; on Postgres either an advisory transaction
/// lock (the chain `''`, retention) or none (a gateway appending to its own chain).
pub(crate) enum WriteTx {
    Sqlite(Transaction<'static, sqlx::Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// One row as read for verification: either the stored row or why it could not be read.
pub(crate) type Decoded = Result<StoredRow, (i64, String)>;

impl Backend {
    /// Opens the store for writing, creating it (and its tables) if needed.
    pub async fn open_writer(url: &str, synchronous_full: bool) -> Result<Backend, StoreError> {
        match Location::parse(url)? {
            Location::Sqlite(path) => crate::sqlite::open_writer(&path, url, synchronous_full).await,
            Location::Postgres(options) => crate::postgres::open_writer(*options, url).await,
        }
    }

    /// Opens the store read-only: the database refuses writes on these connections.
    pub async fn open_reader(url: &str) -> Result<Backend, StoreError> {
        match Location::parse(url)? {
            Location::Sqlite(path) => crate::sqlite::open_reader(&path, url).await,
            Location::Postgres(options) => crate::postgres::open_reader(*options, url).await,
        }
    }

    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        match self {
            Backend::Sqlite(pool) => crate::sqlite::begin_write(pool).await.map(WriteTx::Sqlite),
            Backend::Postgres(pool) => crate::postgres::begin_write(pool).await.map(WriteTx::Postgres),
        }
    }

    /// A transaction appending to `chain`: the chain `''` is shared, so it is locked (as
    /// [`Backend::begin_write`]); a named chain has one writer, its gateway, and takes no lock.
    pub async fn begin_append(&self, chain: &str) -> Result<WriteTx, StoreError> {
        match self {
            Backend::Postgres(pool) if !chain.is_empty() => {
                pool.begin().await.map(WriteTx::Postgres).map_err(StoreError::db("starting a write transaction"))
            }
            _ => self.begin_write().await,
        }
    }

    /// Whether gateways sharing this database write a chain each (Postgres).
    pub fn is_shared(&self) -> bool {
        matches!(self, Backend::Postgres(_))
    }

    /// Runs SQL that yields one number, with `$1`, `$2`, ... bound to `times`.
    pub async fn scalar(&self, sql: &str, times: &[DateTime<Utc>]) -> Result<f64, StoreError> {
        match self {
            Backend::Sqlite(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                crate::sqlite::scalar(&mut pooled, sql, times).await
            }
            Backend::Postgres(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                crate::postgres::scalar(&mut pooled, sql, times).await
            }
        }
    }

    pub async fn query(&self, sql: &str, limits: QueryLimits) -> Result<QueryResult, StoreError> {
        match self {
            Backend::Sqlite(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                // If the caller drops this future mid-query, the connection keeps its progress
                // handler (and an expired deadline); never hand it to anyone else.
                pooled.close_on_drop();
                crate::sqlite::query(&mut pooled, sql, limits).await
            }
            Backend::Postgres(pool) => {
                let mut pooled = pool.acquire().await.map_err(StoreError::db("taking a connection"))?;
                crate::postgres::query(&mut pooled, sql, limits).await
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Sqlite(tx) => tx.commit().await,
            WriteTx::Postgres(tx) => tx.commit().await,
        }
        .map_err(StoreError::db("committing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_masks_passwords() {
        let shown = redact("postgres://audit:s3cret@db.example:5432/warden?sslmode=require");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("audit:****@db.example"), "{shown}");
        let shown = redact("postgres://db.example/warden?user=a&password=s3cret");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!redact("postgres://a:s3cret@[bad").contains("s3cret"));
    }

    #[test]
    fn parse_accepts_the_documented_forms() {
        assert!(
            matches!(Location::parse("sqlite:///var/a.db"), Ok(Location::Sqlite(p)) if p.as_path() == std::path::Path::new("/var/a.db"))
        );
        assert!(
            matches!(Location::parse("sqlite://a.db"), Ok(Location::Sqlite(p)) if p.as_path() == std::path::Path::new("a.db"))
        );
        assert!(matches!(Location::parse("postgres://u@h/db"), Ok(Location::Postgres(_))));
        assert!(Location::parse("sqlite::memory:").is_err());
        assert!(Location::parse("mysql://h/db").is_err());
        let err = Location::parse("postgres://u:s3cret@h:notaport/db").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| !e.contains("s3cret")));
    }
}
