//! The chain finds tampering, and retention leaves a signed checkpoint it can start from.

mod common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::{Kind, Target, event};
use warden_store::{AuditLog, AuditReader, StoreError, VerifyReport, public_key_of};

/// Ten rows; rows 3, 6 and 9 are DENY.
async fn ten_rows(kind: Kind) -> Target {
    let target = Target::new(kind).await;
    let log = AuditLog::open(target.settings()).await.expect("open");
    for i in 1..=10 {
        log.record(event(i, Utc::now())).await.expect("record");
    }
    log.shutdown().await.unwrap();
    target
}

async fn verify(target: &Target, keys: &[String]) -> VerifyReport {
    AuditReader::open(&target.url).await.expect("reader").verify(keys).await.expect("verify")
}

/// The first bad row and the problem, a named chain's places said as rows ("chain C link 5"
/// as "row 5"), so that both databases' reports compare with one text.
fn first_bad(report: &VerifyReport) -> (i64, String) {
    let bad = report.first_bad.as_ref().unwrap_or_else(|| panic!("tampering not found: {report:?}"));
    let words: Vec<&str> = bad.problem.split(' ').collect();
    let mut plain = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match (words[i], words.get(i + 2)) {
            ("chain", Some(&"link")) => {
                plain.push("row");
                i += 3;
            }
            ("of", _) if words.get(i + 1) == Some(&"chain") => i += 3,
            ("links", _) => {
                plain.push("rows");
                i += 1;
            }
            (w, _) => {
                plain.push(w);
                i += 1;
            }
        }
    }
    (bad.seq, plain.join(" "))
}

async fn an_untouched_chain_verifies(kind: Kind) {
    let target = ten_rows(kind).await;
    let report = verify(&target, &[]).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.rows, report.head.map(|h| h.0), report.checkpoint), (10, Some(10), None));
}

async fn an_edited_column_is_found(kind: Kind) {
    let target = ten_rows(kind).await;
    target.raw("UPDATE mcp_audit SET decision = 'ALLOW' WHERE seq = 6").await;
    let report = verify(&target, &[]).await;
    assert_eq!(first_bad(&report), (6, "row 6: its contents do not match its hash (edited)".into()));
    assert_eq!(report.rows, 10, "later rows are still counted");
}

async fn a_deleted_middle_row_is_found(kind: Kind) {
    let target = ten_rows(kind).await;
    target.raw("DELETE FROM mcp_audit WHERE seq = 5").await;
    let report = verify(&target, &[]).await;
    assert_eq!(first_bad(&report), (6, "row 6 follows row 4: row 5 is missing (deleted)".into()));
}

async fn a_deleted_first_row_is_found(kind: Kind) {
    let target = ten_rows(kind).await;
    target.raw("DELETE FROM mcp_audit WHERE seq <= 2").await;
    let (seq, problem) = first_bad(&verify(&target, &[]).await);
    assert_eq!(seq, 3);
    assert!(problem.contains("rows 1 to 2 are missing (deleted) and no checkpoint covers them"), "{problem}");
}

/// The documented limit: cutting rows off the end leaves a valid, shorter chain; only the
/// head in the report (compared with one recorded earlier) shows it.
async fn a_truncated_tail_shows_only_in_the_head(kind: Kind) {
    let target = ten_rows(kind).await;
    let before = verify(&target, &[]).await.head;
    target.raw("DELETE FROM mcp_audit WHERE seq = 10").await;
    let report = verify(&target, &[]).await;
    assert!(report.is_clean());
    assert_ne!(report.head, before);
    assert_eq!(report.head.map(|h| h.0), Some(9));
}

async fn a_forged_row_is_found(kind: Kind) {
    let target = ten_rows(kind).await;
    let made_up = "ab".repeat(32);
    target
        .raw(&format!(
            "INSERT INTO mcp_audit (seq, chain, link, event_time, event, decision, prev_hash, row_hash) \
             VALUES (11, (SELECT chain FROM mcp_audit WHERE seq = 10), 11, '2026-01-01 00:00:00.000000', \
             'call', 'ALLOW', '{}', '{made_up}')",
            "cd".repeat(32)
        ))
        .await;
    let report = verify(&target, &[]).await;
    assert_eq!(first_bad(&report), (11, "row 11: its prev_hash does not match row 10 (inserted or reordered)".into()));

    // A better forger links to the real head but still cannot produce the hash.
    target.raw("UPDATE mcp_audit SET prev_hash = (SELECT row_hash FROM mcp_audit WHERE seq = 10) WHERE seq = 11").await;
    let report = verify(&target, &[]).await;
    assert_eq!(first_bad(&report), (11, "row 11: its contents do not match its hash (edited)".into()));
}

async fn swapped_rows_are_found(kind: Kind) {
    let target = ten_rows(kind).await;
    target.raw("UPDATE mcp_audit SET seq = -3, link = -3 WHERE seq = 3").await;
    target.raw("UPDATE mcp_audit SET seq = 3, link = 3 WHERE seq = 7").await;
    target.raw("UPDATE mcp_audit SET seq = 7, link = 7 WHERE seq = -3").await;
    let report = verify(&target, &[]).await;
    assert_eq!(first_bad(&report), (3, "row 3: its prev_hash does not match row 2 (inserted or reordered)".into()));
}

/// A value of the wrong type (possible in SQLite's dynamic typing; an out-of-range time in
/// Postgres) is a finding, not a crash.
async fn an_unreadable_value_is_found_not_a_panic(kind: Kind) {
    let target = ten_rows(kind).await;
    match kind {
        Kind::Sqlite => target.raw("UPDATE mcp_audit SET redactions = 'lots' WHERE seq = 2").await,
        Kind::Postgres => target.raw("UPDATE mcp_audit SET event_time = 'infinity' WHERE seq = 2").await,
    }
    let (seq, problem) = first_bad(&verify(&target, &[]).await);
    assert_eq!(seq, 2);
    assert!(problem.starts_with("row 2: ") && problem.ends_with("(edited)"), "{problem}");
    let reader = AuditReader::open(&target.url).await.unwrap();
    assert!(matches!(reader.rows_after(0, 10).await, Err(StoreError::CorruptRow { seq: 2, .. })));
    // The query tool shows the value instead of panicking either.
    let result = reader.query("SELECT seq, event_time, redactions FROM mcp_audit WHERE seq = 2").await;
    if kind == Kind::Postgres {
        assert!(matches!(result, Err(StoreError::QueryRefused(_))), "{result:?}");
    } else {
        assert_eq!(result.unwrap().rows[0][2], serde_json::json!("lots"));
    }
}

/// Ten rows three hours old and five fresh ones, in a log that keeps one hour.
async fn pruned_store(kind: Kind) -> (Target, AuditLog, String) {
    let target = Target::new(kind).await;
    let key = target.path("keys/checkpoint.key");
    let mut settings = target.settings();
    settings.retain = Some(Duration::from_secs(3600));
    settings.signing_key = Some(key.clone());
    let log = AuditLog::open(settings).await.expect("open");
    let old = Utc::now() - TimeDelta::hours(3);
    for i in 1..=10 {
        log.record(event(i, old + TimeDelta::seconds(i as i64))).await.unwrap();
    }
    for i in 11..=15 {
        log.record(event(i, Utc::now())).await.unwrap();
    }
    let report = log.prune(Utc::now()).await.expect("prune");
    assert_eq!((report.deleted, report.checkpoint), (10, Some(10)));
    let public = public_key_of(&key).expect("key was generated");
    (target, log, public)
}

async fn retention_leaves_a_signed_checkpoint(kind: Kind) {
    let (target, log, public) = pruned_store(kind).await;
    let report = verify(&target, std::slice::from_ref(&public)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.rows, report.checkpoint, report.head.as_ref().map(|h| h.0)), (5, Some(10), Some(15)));
    assert!(report.notes.is_empty());

    // Without trusted keys it still verifies, and says on what authority.
    let report = verify(&target, &[]).await;
    assert!(report.is_clean() && !report.notes.is_empty(), "{report:?}");
    assert!(report.notes.iter().all(|n| n.contains("key stored with")), "{report:?}");

    // A key the operator does not trust is refused.
    let (seq, problem) = first_bad(&verify(&target, &["12".repeat(32)]).await);
    assert_eq!(seq, 10);
    assert!(problem.contains("not one of the trusted keys"), "{problem}");

    // Nothing to prune a second time; the chain carries on past the checkpoint.
    assert_eq!(log.prune(Utc::now()).await.unwrap().deleted, 0);
    for i in 16..=18 {
        log.record(event(i, Utc::now())).await.unwrap();
    }
    let report = verify(&target, std::slice::from_ref(&public)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.head.map(|h| h.0), Some(18));

    // Everything pruned: the head is the checkpoint, and the next row chains from it.
    let report = log.prune(Utc::now() + TimeDelta::hours(2)).await.unwrap();
    assert_eq!((report.deleted, report.checkpoint), (8, Some(18)));
    let report = verify(&target, std::slice::from_ref(&public)).await;
    assert!(report.is_clean() && report.rows == 0, "{report:?}");
    assert_eq!(report.head.map(|h| h.0), Some(18));
    log.record(event(19, Utc::now())).await.unwrap();
    let report = verify(&target, std::slice::from_ref(&public)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!((report.checkpoint, report.head.map(|h| h.0)), (Some(18), Some(19)));
    log.shutdown().await.unwrap();
}

async fn a_tampered_checkpoint_is_found(kind: Kind) {
    let (target, log, public) = pruned_store(kind).await;
    log.shutdown().await.unwrap();
    let keys = std::slice::from_ref(&public);
    let reader = AuditReader::open(&target.url).await.unwrap();
    let signature = reader.query("SELECT signature FROM mcp_audit_checkpoints WHERE seq = 10").await.unwrap().rows[0]
        [0]
    .as_str()
    .unwrap()
    .to_owned();
    let forged = format!("{}{}", if signature.starts_with('0') { '1' } else { '0' }, &signature[1..]);
    target.raw(&format!("UPDATE mcp_audit_checkpoints SET signature = '{forged}'")).await;
    let (seq, problem) = first_bad(&verify(&target, keys).await);
    assert_eq!(seq, 10);
    assert!(problem.contains("signature does not verify"), "{problem}");

    // Moving the checkpoint's hash (to hide an edit of row 11) breaks the signature too.
    target
        .raw(&format!("UPDATE mcp_audit_checkpoints SET signature = '{signature}', row_hash = '{}'", "e".repeat(64)))
        .await;
    assert!(first_bad(&verify(&target, keys).await).1.contains("signature does not verify"));

    target.raw(&format!("UPDATE mcp_audit_checkpoints SET signature = '{signature}'")).await;
    target.raw("UPDATE mcp_audit_checkpoints SET row_hash = (SELECT prev_hash FROM mcp_audit WHERE seq = 11)").await;
    assert!(verify(&target, keys).await.is_clean(), "restored");

    target.raw(&format!("UPDATE mcp_audit SET prev_hash = '{}' WHERE seq = 11", "f".repeat(64))).await;
    let (seq, problem) = first_bad(&verify(&target, keys).await);
    assert_eq!(seq, 11);
    assert!(problem.contains("does not match the checkpoint at row 10"), "{problem}");

    target.raw("DELETE FROM mcp_audit_checkpoints").await;
    let (seq, problem) = first_bad(&verify(&target, keys).await);
    assert_eq!(seq, 11);
    assert!(problem.contains("rows 1 to 10 are missing (deleted) and no checkpoint covers them"), "{problem}");
}

async fn prune_refuses_a_broken_chain(kind: Kind) {
    let target = Target::new(kind).await;
    let mut settings = target.settings();
    settings.retain = Some(Duration::from_secs(3600));
    settings.signing_key = Some(target.path("checkpoint.key"));
    let log = AuditLog::open(settings).await.expect("open");
    for i in 1..=5 {
        log.record(event(i, Utc::now() - TimeDelta::hours(2))).await.unwrap();
    }
    target.raw("UPDATE mcp_audit SET tool_name = 'other' WHERE seq = 3").await;
    let err = log.prune(Utc::now()).await.expect_err("must not sign over an edited row");
    assert!(matches!(err, StoreError::ChainBroken { seq: 3, .. }), "{err}");
    let reader = AuditReader::open(&target.url).await.unwrap();
    assert_eq!(reader.count().await.unwrap(), 5, "nothing deleted");
    log.shutdown().await.unwrap();
}

on_both!(
    an_untouched_chain_verifies,
    an_edited_column_is_found,
    a_deleted_middle_row_is_found,
    a_deleted_first_row_is_found,
    a_truncated_tail_shows_only_in_the_head,
    a_forged_row_is_found,
    swapped_rows_are_found,
    an_unreadable_value_is_found_not_a_panic,
    retention_leaves_a_signed_checkpoint,
    a_tampered_checkpoint_is_found,
    prune_refuses_a_broken_chain,
);

/// Two gateways sharing Postgres, each with the signing key: a chain each, and statements of
/// every chain's head. `(target, public key, chain of the first, chain of the second)`.
async fn two_gateways() -> (Target, String, String, String) {
    let target = Target::new(Kind::Postgres).await;
    let key = target.path("keys/audit.key");
    let mut settings = target.settings();
    settings.signing_key = Some(key.clone());
    let (a, b) = (AuditLog::open(settings.clone()).await.unwrap(), AuditLog::open(settings).await.unwrap());
    assert_ne!(a.chain(), b.chain());
    for i in 1..=10 {
        a.record(event(i, Utc::now())).await.unwrap();
        b.record(event(i, Utc::now())).await.unwrap();
    }
    let chains = (a.chain().to_owned(), b.chain().to_owned());
    // Each states the heads it ends at as it stops; the later statement names both at 10.
    a.shutdown().await.unwrap();
    b.shutdown().await.unwrap();
    (target, public_key_of(&key).unwrap(), chains.0, chains.1)
}

#[tokio::test]
async fn postgres_every_chain_verifies_and_its_statement_of_heads_is_trusted() {
    let (target, public, a, b) = two_gateways().await;
    let report = verify(&target, std::slice::from_ref(&public)).await;
    assert!(report.is_clean() && report.notes.is_empty(), "{report:?}");
    assert_eq!(report.rows, 20);
    let heads: Vec<(&str, Option<i64>)> =
        report.chains.iter().map(|c| (c.chain.as_str(), c.head.as_ref().map(|h| h.0))).collect();
    assert!(heads.contains(&(a.as_str(), Some(10))) && heads.contains(&(b.as_str(), Some(10))), "{heads:?}");
    assert!(report.heads_stated_at.is_some());
}

#[tokio::test]
async fn postgres_a_chain_deleted_whole_is_found() {
    let (target, public, _, b) = two_gateways().await;
    target.raw(&format!("DELETE FROM mcp_audit WHERE chain = '{b}'")).await;
    let report = verify(&target, &[public]).await;
    let problem = report.first_bad.expect("found").problem;
    assert!(problem.contains(&b) && problem.contains("has no rows") && problem.contains("(deleted)"), "{problem}");
}

#[tokio::test]
async fn postgres_a_chain_cut_short_is_found() {
    let (target, public, a, _) = two_gateways().await;
    target.raw(&format!("DELETE FROM mcp_audit WHERE chain = '{a}' AND link > 7")).await;
    let report = verify(&target, std::slice::from_ref(&public)).await;
    let problem = report.first_bad.expect("found").problem;
    assert!(
        problem.contains("ends at link 7") && problem.contains("names link 10") && problem.contains("cut off"),
        "{problem}"
    );
    // Forging a statement that names the shorter head needs the key.
    target.raw("UPDATE mcp_audit_heads SET heads = replace(heads, ',10,', ',7,')").await;
    let problem = verify(&target, &[public]).await.first_bad.expect("found").problem;
    assert!(problem.contains("signature does not verify"), "{problem}");
}

#[tokio::test]
async fn postgres_a_made_up_chain_is_named_by_no_statement() {
    let (target, public, a, _) = two_gateways().await;
    // A whole chain of the forger's own, hashed correctly from the genesis.
    target
        .raw(&format!(
            "INSERT INTO mcp_audit SELECT nextval('mcp_audit_seq'), event_time, request_id, era, event, method, actor_id, \
             actor_class, tenant, client_id, session_id, server_name, tool_name, action_class, arguments, redactions, \
             result_hash, decision, policy_ids, reason, approval_id, outcome, error_code, latency_ms, prev_hash, row_hash, \
             findings, 'forged', link FROM mcp_audit WHERE chain = '{a}' AND link = 1"
        ))
        .await;
    let problem = verify(&target, &[public]).await.first_bad.expect("found").problem;
    assert!(problem.contains("\"forged\"") && problem.contains("named by no signed statement"), "{problem}");
}

#[tokio::test]
async fn postgres_a_gateway_neither_builds_on_nor_vouches_for_a_cut_chain() {
    let target = Target::new(Kind::Postgres).await;
    let mut settings = target.settings();
    settings.signing_key = Some(target.path("audit.key"));
    settings.durability = warden_store::Durability::Sync;
    let log = AuditLog::open(settings.clone()).await.unwrap();
    for i in 1..=5 {
        log.record(event(i, Utc::now())).await.unwrap();
    }
    let other = AuditLog::open(settings).await.unwrap();
    other.record(event(1, Utc::now())).await.unwrap();
    other.shutdown().await.unwrap();
    target.raw(&format!("DELETE FROM mcp_audit WHERE chain = '{}' AND link > 3", log.chain())).await;
    // Its writer does not append after a head it did not leave (the call is refused, in sync).
    assert!(log.record(event(6, Utc::now())).await.is_err());
    // A gateway starting now does not sign the shorter chain either.
    let mut settings = target.settings();
    settings.signing_key = Some(target.path("audit.key"));
    let third = AuditLog::open(settings).await.unwrap();
    third.shutdown().await.unwrap();
    let problem =
        verify(&target, &[public_key_of(&target.path("audit.key")).unwrap()]).await.first_bad.unwrap().problem;
    assert!(problem.contains("cut off"), "{problem}");
}

#[tokio::test]
async fn sqlite_a_named_chain_is_refused() {
    let target = ten_rows(Kind::Sqlite).await;
    target.raw("UPDATE mcp_audit SET chain = 'elsewhere' WHERE seq > 8").await;
    let problem = verify(&target, &[]).await.first_bad.expect("found").problem;
    assert!(problem.contains("SQLite log"), "{problem}");
}
