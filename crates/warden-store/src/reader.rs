//! [`AuditReader`]: read-only access for `warden audit` (verify, query, tail, export) and the
//! detection gates.

use crate::StoreError;
use crate::backend::Backend;
use crate::event::AuditRow;
use crate::query::{QueryLimits, QueryResult};
use crate::verify::{self, VerifyReport};

/// A read-only view of the audit store. The database refuses writes on its connections.
#[derive(Clone)]
pub struct AuditReader {
    backend: Backend,
    limits: QueryLimits,
}

impl AuditReader {
    /// Opens the store read-only: SQLite opened read-only with `PRAGMA query_only`; Postgres
    /// sessions with `default_transaction_read_only = on`. The tables must exist (the gateway
    /// creates them); nothing is created here.
    pub async fn open(url: &str) -> Result<AuditReader, StoreError> {
        Ok(AuditReader { backend: Backend::open_reader(url).await?, limits: QueryLimits::default() })
    }

    /// Replaces the limits on [`query`](Self::query) (default: 10 s, 10 000 rows).
    pub fn with_query_limits(mut self, limits: QueryLimits) -> AuditReader {
        self.limits = limits;
        self
    }

    /// Walks the whole chain and reports the first row that breaks it.
    ///
    /// If old rows were pruned, the chain must start at a checkpoint whose signature verifies
    /// under one of `trusted_keys` (hex Ed25519 public keys). With no keys, the key stored in
    /// the checkpoint is used and the report says so.
    pub async fn verify<S: AsRef<str>>(&self, trusted_keys: &[S]) -> Result<VerifyReport, StoreError> {
        verify::verify(&self.backend, trusted_keys).await
    }

    /// Runs one `SELECT`/`WITH`/`VALUES` statement read-only, under the time and row limits.
    /// Anything that would write is refused by the database.
    ///
    /// On Postgres a read-only transaction does not stop a privileged role from calling
    /// server-side functions that touch files (`pg_read_file`, `lo_export`): connect the
    /// reader as a role granted only `SELECT` on `mcp_audit`, `mcp_audit_checkpoints` and
    /// `mcp_audit_heads`.
    ///
    /// ```no_run
    /// # async fn run(reader: &warden_store::AuditReader) -> Result<(), warden_store::StoreError> {
    /// let result = reader.query("SELECT decision, COUNT(*) FROM mcp_audit GROUP BY decision").await?;
    /// for row in &result.rows {
    ///     println!("{row:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn query(&self, sql: &str) -> Result<QueryResult, StoreError> {
        self.backend.query(sql, self.limits).await
    }

    /// Up to `limit` rows (at most 10 000) with seq greater than `seq`, in order: for tailing
    /// and export. A row that cannot be read (edited by hand) is an error naming it.
    pub async fn rows_after(&self, seq: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = self.backend.rows_after(seq, limit.clamp(0, 10_000)).await?;
        rows.into_iter()
            .map(|row| match row {
                Ok(row) => row.into_row(),
                Err((seq, problem)) => Err(StoreError::CorruptRow { seq, problem }),
            })
            .collect()
    }

    /// Up to `limit` rows (at most 10 000) of `chain` after `link`, in chain order: for following
    /// a log that several gateways write (a row's `seq` is taken when its transaction starts, so
    /// rows of two gateways commit out of `seq` order; each chain commits in link order).
    pub async fn chain_rows_after(&self, chain: &str, link: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = self.backend.chain_rows_after(chain, link, limit.clamp(0, 10_000)).await?;
        rows.into_iter()
            .map(|row| match row {
                Ok(row) => row.into_row(),
                Err((seq, problem)) => Err(StoreError::CorruptRow { seq, problem }),
            })
            .collect()
    }

    /// Every chain with rows, and its last link among the rows with `seq` at most `seq`
    /// (`i64::MAX`: its last link; 0 when it has none there yet).
    pub async fn chain_positions(&self, seq: i64) -> Result<Vec<(String, i64)>, StoreError> {
        let result = self
            .backend
            .query(
                &format!(
                    "SELECT chain, COALESCE(MAX(CASE WHEN seq <= {seq} THEN link END), 0) AS link FROM mcp_audit GROUP BY chain"
                ),
                self.limits,
            )
            .await?;
        Ok(result.rows.iter().filter_map(|r| Some((r.first()?.as_str()?.to_owned(), r.get(1)?.as_i64()?))).collect())
    }

    /// Rows in the table.
    pub async fn count(&self) -> Result<i64, StoreError> {
        self.backend.count().await
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }
}
