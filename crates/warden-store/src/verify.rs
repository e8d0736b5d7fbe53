//! Walking the chain: recompute every row's hash and check that each row follows the last.

use serde::Serialize;

use crate::StoreError;
use crate::backend::{Backend, Decoded};
use crate::chain::GENESIS_HASH;
use crate::checkpoint::Trust;
use crate::heads::Claim;

/// The outcome of [`AuditReader::verify`](crate::AuditReader::verify).
///
/// A clean report proves that every chain's rows follow from its row 1 (or a trusted
/// checkpoint) to its head, and that every head a signed statement named is still there. It
/// cannot prove that rows written after the last statement were not cut off: record the heads
/// somewhere the database's writers cannot reach and compare them next time.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct VerifyReport {
    /// Rows read, in every chain.
    pub rows: u64,
    /// The last row's seq and hash of the chain `''` (if every row was pruned: the latest
    /// checkpoint's); for a log with named chains, see `chains`.
    pub head: Option<(i64, String)>,
    /// The first row that breaks a chain, if any. Later rows are counted but not checked.
    pub first_bad: Option<BadRow>,
    /// The checkpoint the chain `''` starts from, when old rows were pruned.
    pub checkpoint: Option<i64>,
    /// Every chain: its rows, head and checkpoint.
    pub chains: Vec<ChainSummary>,
    /// When the latest signed statement of heads was made, if any.
    pub heads_stated_at: Option<String>,
    /// Things a reviewer should know that are not breaks, e.g. an untrusted checkpoint key.
    pub notes: Vec<String>,
}

/// One chain as verified.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ChainSummary {
    /// Its name (`""`: a SQLite file's chain, or rows written before chains existed).
    pub chain: String,
    /// Rows read.
    pub rows: u64,
    /// Its last link and hash.
    pub head: Option<(i64, String)>,
    /// The link of the checkpoint it starts from, when old rows were pruned.
    pub checkpoint: Option<i64>,
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

/// Checks a chain's rows one at a time, in link order, against the row (or checkpoint) before.
pub(crate) struct ChainWalker {
    chain: String,
    /// The last accepted row's link and hash; `None` before link 1.
    last: Option<(i64, String)>,
    /// `last` is a checkpoint, not a row.
    from_checkpoint: bool,
}

impl ChainWalker {
    /// A walker of `chain` that expects link 1 after the genesis hash, or the link after
    /// `anchor` (a checkpoint's link and hash).
    pub fn after(chain: &str, anchor: Option<(i64, String)>) -> ChainWalker {
        ChainWalker { chain: chain.to_owned(), from_checkpoint: anchor.is_some(), last: anchor }
    }

    /// How a place in the chain is named: "row N" in the chain `''`, else "chain C link N".
    fn name(&self, link: i64) -> String {
        if self.chain.is_empty() { format!("row {link}") } else { format!("chain {} link {link}", self.chain) }
    }

    pub fn check(&mut self, row: &Decoded) -> Result<(), BadRow> {
        let row = match row {
            Ok(row) => row,
            Err((seq, problem)) => {
                return Err(BadRow { seq: *seq, problem: format!("row {seq}: {problem} (edited)") });
            }
        };
        let (seq, link) = (row.seq, row.link);
        let bad = |problem: String| Err(BadRow { seq, problem });
        let this = self.name(link);
        if self.chain.is_empty() && link != seq {
            return bad(format!("row {seq}: its link {link} is not its seq (edited)"));
        }
        let (expected_link, expected_hash) = match &self.last {
            None => (1, GENESIS_HASH),
            Some((last, hash)) => (last.saturating_add(1), hash.as_str()),
        };
        if link < expected_link {
            let start = self.name(expected_link);
            return bad(format!("{this} comes before the start of the chain at {start} (inserted)"));
        }
        if link > expected_link {
            let missing = if link - expected_link == 1 {
                format!("{} is missing", self.name(expected_link))
            } else if self.chain.is_empty() {
                format!("rows {expected_link} to {} are missing", link - 1)
            } else {
                format!("links {expected_link} to {} of chain {} are missing", link - 1, self.chain)
            };
            return match &self.last {
                None => bad(format!("{this} is the first row: {missing} (deleted) and no checkpoint covers them")),
                Some((last, _)) if self.from_checkpoint => {
                    bad(format!("{this} follows the checkpoint at {}: {missing} (deleted)", self.name(*last)))
                }
                Some((last, _)) => bad(format!("{this} follows {}: {missing} (deleted)", self.name(*last))),
            };
        }
        if row.prev_hash != expected_hash {
            return match &self.last {
                None => bad(format!("{this}: its prev_hash is not the start of the chain (inserted or reordered)")),
                Some((last, _)) if self.from_checkpoint => bad(format!(
                    "{this}: its prev_hash does not match the checkpoint at {} (edited, inserted or reordered)",
                    self.name(*last)
                )),
                Some((last, _)) => {
                    bad(format!("{this}: its prev_hash does not match {} (inserted or reordered)", self.name(*last)))
                }
            };
        }
        if row.computed_hash() != row.row_hash {
            return bad(format!("{this}: its contents do not match its hash (edited)"));
        }
        self.last = Some((link, row.row_hash.clone()));
        self.from_checkpoint = false;
        Ok(())
    }
}

/// Walks every chain a page at a time (never all rows in memory), checking the heads that
/// signed statements name as it passes them.
pub(crate) async fn verify<S: AsRef<str>>(backend: &Backend, trusted_keys: &[S]) -> Result<VerifyReport, StoreError> {
    let mut report = VerifyReport::default();
    let mut forged = Vec::new();
    let mut claims = stated_heads(backend, trusted_keys, &mut report, &mut forged).await?;
    let mut chains = backend.chains().await?;
    let named: std::collections::BTreeSet<String> = claims.keys().cloned().collect();
    for claimed in claims.keys() {
        if !chains.contains(claimed) {
            chains.push(claimed.clone());
        }
    }
    for chain in &chains {
        if chain.is_empty() {
            continue;
        }
        // A SQLite log has one writer and one chain; on Postgres, once gateways state heads,
        // every chain was named by the gateway that wrote it.
        let problem = if !backend.is_shared() {
            Some(format!("chain {chain:?} in a SQLite log, which has only its one chain (inserted)"))
        } else if report.heads_stated_at.is_some() && !named.contains(chain) {
            Some(format!(
                "chain {chain:?} is named by no signed statement of heads (inserted, or written without the key)"
            ))
        } else {
            None
        };
        if let Some(problem) = problem {
            report.first_bad.get_or_insert(BadRow { seq: 0, problem });
        }
    }
    for chain in chains {
        let claimed = claims.remove(&chain).unwrap_or_default();
        let summary = verify_chain(backend, &chain, trusted_keys, claimed, &mut report).await?;
        if chain.is_empty() {
            report.head.clone_from(&summary.head);
            report.checkpoint = summary.checkpoint;
        }
        report.chains.push(summary);
    }
    if let Some(bad) = forged.into_iter().next() {
        report.first_bad.get_or_insert(bad);
    }
    if let [only] = report.chains.as_slice()
        && report.head.is_none()
    {
        // One chain (one gateway's log): its head is the log's.
        report.head.clone_from(&only.head);
        report.checkpoint = only.checkpoint;
    }
    Ok(report)
}

/// The heads named by the signed statements, by chain, each chain's in link order.
async fn stated_heads<S: AsRef<str>>(
    backend: &Backend,
    trusted_keys: &[S],
    report: &mut VerifyReport,
    forged: &mut Vec<BadRow>,
) -> Result<std::collections::BTreeMap<String, Vec<Claim>>, StoreError> {
    let mut claims: std::collections::BTreeMap<String, Vec<Claim>> = Default::default();
    let mut unverified = 0;
    for statement in backend.heads_statements().await? {
        match statement.check(trusted_keys) {
            Ok((trust, named)) => {
                unverified += usize::from(trust == Trust::StoredKeyOnly);
                for claim in named {
                    claims.entry(claim.chain.clone()).or_default().push(claim);
                }
                report.heads_stated_at = report.heads_stated_at.take().max(Some(statement.created_at.clone()));
            }
            // Reported after the chains: a broken row says more than a statement that fails.
            Err(problem) => forged.push(BadRow { seq: 0, problem }),
        }
    }
    if unverified > 0 {
        report.notes.push(format!(
            "{unverified} statement(s) of heads were checked against the key stored with them, not a trusted key; \
             pass the gateways' public key to rule out forged statements"
        ));
    }
    for list in claims.values_mut() {
        list.sort_by_key(|c| c.link);
    }
    Ok(claims)
}

async fn verify_chain<S: AsRef<str>>(
    backend: &Backend,
    chain: &str,
    trusted_keys: &[S],
    claims: Vec<Claim>,
    report: &mut VerifyReport,
) -> Result<ChainSummary, StoreError> {
    const PAGE: i64 = 1000;
    let mut summary = ChainSummary { chain: chain.to_owned(), ..ChainSummary::default() };
    let mut claims = claims.into_iter().peekable();
    let mut page = backend.chain_rows_after(chain, i64::MIN, PAGE).await?;
    let first_link = page.first().map(|row| match row {
        Ok(row) => row.link,
        Err((seq, _)) => *seq,
    });
    let mut anchor = None;
    match first_link {
        None => {
            // Every row pruned (or none written): the chain is its latest checkpoint, if any.
            if let Some(cp) = backend.latest_checkpoint(chain).await? {
                if check_checkpoint(report, &cp, trusted_keys) {
                    summary.checkpoint = Some(cp.link);
                }
                summary.head = Some((cp.link, cp.row_hash.clone()));
                anchor = Some((cp.link, cp.row_hash));
            }
        }
        Some(first) if first > 1 => {
            if let Some(cp) = backend.checkpoint_at(chain, first - 1).await?
                && check_checkpoint(report, &cp, trusted_keys)
            {
                summary.checkpoint = Some(cp.link);
                anchor = Some((cp.link, cp.row_hash));
            }
        }
        Some(_) => {}
    }
    // A chain named from its start, before it had rows: nothing to find.
    while claims.next_if(|c| c.link == 0).is_some() {}
    // Heads named at or before the checkpoint: only the checkpoint's own can still be checked.
    while let Some(c) = claims.next_if(|c| anchor.as_ref().is_some_and(|(link, _)| c.link <= *link)) {
        if let Some((link, hash)) = &anchor
            && c.link == *link
            && c.row_hash != *hash
        {
            report.first_bad.get_or_insert(claim_broken(&c, "the checkpoint there has another hash"));
        }
    }
    let mut walker = ChainWalker::after(chain, anchor);
    loop {
        let mut last_link = None;
        for row in &page {
            report.rows += 1;
            summary.rows += 1;
            let (seq, link) = match row {
                Ok(row) => {
                    summary.head = Some((row.link, row.row_hash.clone()));
                    (row.seq, row.link)
                }
                Err((seq, _)) => (*seq, *seq),
            };
            last_link = Some(link);
            if report.first_bad.is_none()
                && let Err(bad) = walker.check(row)
            {
                report.first_bad = Some(bad);
            }
            while let Some(c) = claims.next_if(|c| c.link <= link) {
                let matches = c.link == link && row.as_ref().is_ok_and(|r| r.row_hash == c.row_hash);
                if !matches {
                    let why =
                        if c.link < link { "that link is not in the chain" } else { "the row there has another hash" };
                    report.first_bad.get_or_insert(BadRow { seq, ..claim_broken(&c, why) });
                }
            }
        }
        let Some(last_link) = last_link else { break };
        page = backend.chain_rows_after(chain, last_link, PAGE).await?;
    }
    if let Some(c) = claims.last() {
        let problem = match &summary.head {
            Some((link, _)) => format!(
                "chain {chain:?} ends at link {link}, but the statement of heads of {} names link {} (rows cut off)",
                c.stated_at, c.link
            ),
            None => format!(
                "chain {chain:?} has no rows, but the statement of heads of {} names link {} (deleted)",
                c.stated_at, c.link
            ),
        };
        report.first_bad.get_or_insert(BadRow { seq: 0, problem });
    }
    Ok(summary)
}

fn claim_broken(c: &Claim, why: &str) -> BadRow {
    BadRow {
        seq: 0,
        problem: format!(
            "chain {:?} link {}, named by the statement of heads of {}: {why} (edited or deleted)",
            c.chain, c.link, c.stated_at
        ),
    }
}

/// Records the checkpoint in the report; false (and `first_bad` set) if it cannot be trusted.
fn check_checkpoint<S: AsRef<str>>(
    report: &mut VerifyReport,
    cp: &crate::checkpoint::Checkpoint,
    trusted_keys: &[S],
) -> bool {
    match cp.check(trusted_keys) {
        Ok(trust) => {
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
        let mut walker = ChainWalker::after("", anchor);
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
        (rows[1].seq, rows[1].link) = (2, 2);
        (rows[3].seq, rows[3].link) = (4, 4);
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
