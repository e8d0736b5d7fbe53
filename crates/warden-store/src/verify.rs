//! Walking the chain: recompute every row's hash and check that each row follows the last.

use serde::Serialize;

use crate::StoreError;
use crate::backend::{Backend, Decoded};
use crate::chain::GENESIS_HASH;
use crate::checkpoint::Trust;

/// The outcome of [`AuditReader::verify`](crate::AuditReader::verify).
///
/// A clean report proves the rows chain from row 1 (or a trusted checkpoint) to `head`. It
/// cannot prove that rows after `head` were not cut off: record `head` somewhere the
/// database's writers cannot reach and compare it next time.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct VerifyReport {
    /// Rows read.
    pub rows: u64,
    /// The last row's seq and hash (if every row was pruned: the latest checkpoint's).
    pub head: Option<(i64, String)>,
    /// The first row that breaks the chain, if any. Later rows are counted but not checked.
    pub first_bad: Option<BadRow>,
    /// The checkpoint the chain starts from, when old rows were pruned.
    pub checkpoint: Option<i64>,
    /// Things a reviewer should know that are not breaks, e.g. an untrusted checkpoint key.
    pub notes: Vec<String>,
}

impl VerifyReport {
    /// No row breaks the chain.
    pub fn is_clean(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// The first place the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadRow {
    pub seq: i64,
    /// What is wrong, e.g. "row 17: its contents do not match its hash (edited)".
    pub problem: String,
}

/// Checks rows one at a time, in seq order, against the row (or checkpoint) before them.
pub(crate) struct ChainWalker {
    /// The last accepted row's seq and hash; `None` before row 1.
    last: Option<(i64, String)>,
    /// `last` is a checkpoint, not a row.
    from_checkpoint: bool,
}

impl ChainWalker {
    /// A walker that expects row 1 after the genesis hash, or the row after `anchor`
    /// (a checkpoint's seq and hash).
    pub fn after(anchor: Option<(i64, String)>) -> ChainWalker {
        ChainWalker { from_checkpoint: anchor.is_some(), last: anchor }
    }

    pub fn check(&mut self, row: &Decoded) -> Result<(), BadRow> {
        let row = match row {
            Ok(row) => row,
            Err((seq, problem)) => {
                return Err(BadRow { seq: *seq, problem: format!("row {seq}: {problem} (edited)") });
            }
        };
        let seq = row.seq;
        let bad = |problem: String| Err(BadRow { seq, problem });
        let (expected_seq, expected_hash) = match &self.last {
            None => (1, GENESIS_HASH),
            Some((last, hash)) => (last.saturating_add(1), hash.as_str()),
        };
        if seq < expected_seq {
            return bad(format!("row {seq} comes before the start of the chain at row {expected_seq} (inserted)"));
        }
        if seq > expected_seq {
            let missing = if seq - expected_seq == 1 {
                format!("row {expected_seq} is missing")
            } else {
                format!("rows {expected_seq} to {} are missing", seq - 1)
            };
            return match &self.last {
                None => bad(format!("row {seq} is the first row: {missing} (deleted) and no checkpoint covers them")),
                Some((last, _)) if self.from_checkpoint => {
                    bad(format!("row {seq} follows the checkpoint at row {last}: {missing} (deleted)"))
                }
                Some((last, _)) => bad(format!("row {seq} follows row {last}: {missing} (deleted)")),
            };
        }
        if row.prev_hash != expected_hash {
            return match &self.last {
                None => bad(format!("row {seq}: its prev_hash is not the start of the chain (inserted or reordered)")),
                Some((last, _)) if self.from_checkpoint => bad(format!(
                    "row {seq}: its prev_hash does not match the checkpoint at row {last} (edited, inserted or reordered)"
                )),
                Some((last, _)) => {
                    bad(format!("row {seq}: its prev_hash does not match row {last} (inserted or reordered)"))
                }
            };
        }
        if row.computed_hash() != row.row_hash {
            return bad(format!("row {seq}: its contents do not match its hash (edited)"));
        }
        self.last = Some((seq, row.row_hash.clone()));
        self.from_checkpoint = false;
        Ok(())
    }
}

/// Walks the whole table a page at a time (never all rows in memory).
pub(crate) async fn verify<S: AsRef<str>>(backend: &Backend, trusted_keys: &[S]) -> Result<VerifyReport, StoreError> {
    const PAGE: i64 = 1000;
    let mut report = VerifyReport::default();
    let mut page = backend.rows_after(i64::MIN, PAGE).await?;
    let Some(first) = page.first() else {
        // Every row pruned (or none written): the chain is the latest checkpoint, if any.
        if let Some(cp) = backend.latest_checkpoint().await? {
            check_checkpoint(&mut report, &cp, trusted_keys);
            report.head = Some((cp.seq, cp.row_hash));
        }
        return Ok(report);
    };
    let first_seq = match first {
        Ok(row) => row.seq,
        Err((seq, _)) => *seq,
    };
    let mut anchor = None;
    if first_seq > 1
        && let Some(cp) = backend.checkpoint_at(first_seq - 1).await?
        && check_checkpoint(&mut report, &cp, trusted_keys)
    {
        anchor = Some((cp.seq, cp.row_hash));
    }
    let mut walker = ChainWalker::after(anchor);
    loop {
        let mut last_seq = None;
        for row in &page {
            report.rows += 1;
            last_seq = Some(match row {
                Ok(row) => {
                    report.head = Some((row.seq, row.row_hash.clone()));
                    row.seq
                }
                Err((seq, _)) => *seq,
            });
            if report.first_bad.is_none()
                && let Err(bad) = walker.check(row)
            {
                report.first_bad = Some(bad);
            }
        }
        let Some(last_seq) = last_seq else { break };
        page = backend.rows_after(last_seq, PAGE).await?;
    }
    Ok(report)
}

/// Records the checkpoint in the report; false (and `first_bad` set) if it cannot be trusted.
fn check_checkpoint<S: AsRef<str>>(
    report: &mut VerifyReport,
    cp: &crate::checkpoint::Checkpoint,
    trusted_keys: &[S],
) -> bool {
    match cp.check(trusted_keys) {
        Ok(trust) => {
            report.checkpoint = Some(cp.seq);
            if trust == Trust::StoredKeyOnly {
                report.notes.push(format!(
                    "the checkpoint at row {} was checked against the key stored with it ({}), not a trusted key; \
                     pass the gateway's public key to rule out a forged checkpoint",
                    cp.seq, cp.public_key
                ));
            }
            true
        }
        Err(problem) => {
            report.first_bad = Some(BadRow { seq: cp.seq, problem });
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::StoredRow;
    use crate::event::AuditEvent;
    use chrono::Utc;

    fn chain(n: i64) -> Vec<StoredRow> {
        let mut rows: Vec<StoredRow> = Vec::new();
        for seq in 1..=n {
            let prev = rows.last().map_or(GENESIS_HASH.to_owned(), |r| r.row_hash.clone());
            let event = AuditEvent::new(Utc::now(), "call", "ALLOW").normalized();
            rows.push(StoredRow::chain(seq, &event, &prev));
        }
        rows
    }

    fn first_bad(rows: &[StoredRow], anchor: Option<(i64, String)>) -> Option<BadRow> {
        let mut walker = ChainWalker::after(anchor);
        rows.iter().find_map(|row| walker.check(&Ok(row.clone())).err())
    }

    #[test]
    fn an_intact_chain_passes() {
        assert_eq!(first_bad(&chain(5), None), None);
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let mut rows = chain(5);
        rows[2].decision = "DENY".into();
        let bad = first_bad(&rows, None).unwrap();
        assert_eq!((bad.seq, bad.problem.as_str()), (3, "row 3: its contents do not match its hash (edited)"));

        let mut rows = chain(5);
        rows.remove(2);
        let bad = first_bad(&rows, None).unwrap();
        assert_eq!(bad.problem, "row 4 follows row 2: row 3 is missing (deleted)");

        let mut rows = chain(5);
        rows.swap(1, 3);
        rows[1].seq = 2;
        rows[3].seq = 4;
        let bad = first_bad(&rows, None).unwrap();
        assert_eq!(bad.problem, "row 2: its prev_hash does not match row 1 (inserted or reordered)");

        let rows = chain(5);
        let bad = first_bad(&rows[2..], None).unwrap();
        assert!(bad.problem.contains("no checkpoint covers them"), "{}", bad.problem);
        let anchor = Some((2, rows[1].row_hash.clone()));
        assert_eq!(first_bad(&rows[2..], anchor), None);
        let wrong_anchor = Some((2, "f".repeat(64)));
        assert!(first_bad(&rows[2..], wrong_anchor).unwrap().problem.contains("checkpoint at row 2"));
    }
}
