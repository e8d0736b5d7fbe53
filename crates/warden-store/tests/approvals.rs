//! The approval store against both backends: requesting and listing, one decision per
//! approval (also under a race), the use window an approval gives, single use bound to the
//! caller, call and arguments, the in-band flows, expiry, revocation per server, and the
//! database's own checks.

mod common;

use chrono::DateTime;
use common::{Kind, Target};
use serde_json::{Value, json};
use warden_store::ApprovalStore;
use warden_store::approvals::{ApprovalRequest, Decided, Verdict};

const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn arguments() -> Value {
    json!({ "path": "/etc/hosts", "force": true, "n": 3 })
}

/// Asks for approval of `who`'s call of `server`'s `delete` with arguments hashed `hash`,
/// waiting until `expires_at_ms`.
async fn ask(store: &ApprovalStore, who: &str, server: &str, hash: &str, expires_at_ms: i64) -> String {
    let args = arguments();
    let reasons = vec!["policy:irreversible".to_owned(), "class irreversible".to_owned()];
    let request = ApprovalRequest {
        server,
        tool: "delete",
        exposed: &format!("{server}__delete"),
        principal_key: who,
        actor_id: "alice",
        tenant: Some("acme"),
        session_id: Some("s-1"),
        request_id: Some("7"),
        args_hash: hash,
        arguments: &args,
        reasons: &reasons,
        flow: "out_of_band",
        expires_at_ms,
    };
    store.request(&request).await.expect("request")
}

async fn status(store: &ApprovalStore, id: &str) -> String {
    store.get(id).await.unwrap().expect("stored").status
}

async fn request_list_get(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let expires = now_ms() + HOUR;
    let first = ask(&store, "key-alice", "fs", "h1", expires).await;
    let second = ask(&store, "key-alice", "fs", "h2", expires).await;
    assert!(first.starts_with("apr-") && first.len() == 28, "{first}");
    assert!(first[4..].chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{first}");
    assert_ne!(first, second);
    let pending = store.list(Some("pending"), 10).await.unwrap();
    assert_eq!(pending.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), [second.as_str(), first.as_str()]);
    assert_eq!(store.list(Some("pending"), 1).await.unwrap().len(), 1);
    assert_eq!(store.list(None, 10).await.unwrap().len(), 2);
    assert!(store.list(Some("approved"), 10).await.unwrap().is_empty());
    let approval = store.get(&first).await.unwrap().expect("stored");
    assert_eq!(approval, pending[1]);
    assert_eq!(approval.arguments, arguments());
    assert_eq!(approval.reasons, ["policy:irreversible", "class irreversible"]);
    assert_eq!(approval.expires_at, DateTime::from_timestamp_millis(expires).unwrap());
    assert_eq!(
        (approval.server.as_str(), approval.tool.as_str(), approval.exposed.as_str()),
        ("fs", "delete", "fs__delete")
    );
    assert_eq!((approval.principal_key.as_str(), approval.actor_id.as_str()), ("key-alice", "alice"));
    assert_eq!(
        (approval.tenant.as_deref(), approval.session_id.as_deref(), approval.request_id.as_deref()),
        (Some("acme"), Some("s-1"), Some("7"))
    );
    assert_eq!(
        (approval.args_hash.as_str(), approval.flow.as_str(), approval.status.as_str()),
        ("h1", "out_of_band", "pending")
    );
    assert_eq!((approval.decided_by, approval.decided_at, approval.used_at), (None, None, None));
    assert!((chrono::Utc::now() - approval.created_at).num_seconds().abs() < 60);
    let shown = serde_json::to_value(&pending[0]).unwrap();
    assert!(shown.get("principal_key").is_none(), "the caller's key is not shown: {shown}");
    assert!(store.get("apr-000000000000000000000000").await.unwrap().is_none());
}

async fn decided_once(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let now = now_ms();
    let id = ask(&store, "key-alice", "fs", "h", now + HOUR).await;
    let Decided::Done(approval) = store.decide(&id, Verdict::Deny, "bob", now, 15 * MINUTE).await.unwrap() else {
        panic!("not decided")
    };
    assert_eq!((approval.status.as_str(), approval.decided_by.as_deref()), ("denied", Some("bob")));
    assert!(approval.decided_at.is_some());
    assert_eq!(approval.expires_at, DateTime::from_timestamp_millis(now + HOUR).unwrap(), "a denial keeps the expiry");
    assert_eq!(
        store.decide(&id, Verdict::Approve, "mallory", now, 15 * MINUTE).await.unwrap(),
        Decided::AlreadyDecided("denied".into()),
        "a denied approval is never approved"
    );
    assert_eq!(store.get(&id).await.unwrap().unwrap().decided_by.as_deref(), Some("bob"));
    assert_eq!(store.decide("apr-nope", Verdict::Approve, "bob", now, MINUTE).await.unwrap(), Decided::NotFound);

    // Past its expiry, a pending approval is not decided but marked expired.
    let late = ask(&store, "key-alice", "fs", "h2", now + MINUTE).await;
    assert_eq!(store.decide(&late, Verdict::Approve, "bob", now + MINUTE, HOUR).await.unwrap(), Decided::Expired);
    let approval = store.get(&late).await.unwrap().unwrap();
    assert_eq!((approval.status.as_str(), approval.decided_by), ("expired", None));
    assert_eq!(
        store.decide(&late, Verdict::Approve, "bob", now, HOUR).await.unwrap(),
        Decided::AlreadyDecided("expired".into())
    );
}

async fn concurrent_decides_decide_once(kind: Kind) {
    let target = Target::new(kind).await;
    let stores =
        [ApprovalStore::open(&target.url).await.expect("open"), ApprovalStore::open(&target.url).await.expect("open")];
    let now = now_ms();
    let id = ask(&stores[0], "key-alice", "fs", "h", now + HOUR).await;
    let mut tasks = Vec::new();
    for i in 0..8usize {
        let store = stores[i % 2].clone();
        let id = id.clone();
        let verdict = if i % 2 == 0 { Verdict::Approve } else { Verdict::Deny };
        tasks.push(tokio::spawn(
            async move { store.decide(&id, verdict, &format!("r{i}"), now, MINUTE).await.unwrap() },
        ));
    }
    let mut done = 0;
    for task in tasks {
        match task.await.unwrap() {
            Decided::Done(_) => done += 1,
            Decided::AlreadyDecided(status) => assert!(status == "approved" || status == "denied", "{status}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(done, 1);
}

async fn approve_sets_the_use_window(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let now = now_ms();
    let id = ask(&store, "key-alice", "fs", "h", now + HOUR).await;
    let Decided::Done(approval) = store.decide(&id, Verdict::Approve, "bob", now, 15 * MINUTE).await.unwrap() else {
        panic!("not decided")
    };
    assert_eq!((approval.status.as_str(), approval.decided_by.as_deref()), ("approved", Some("bob")));
    assert_eq!(approval.expires_at, DateTime::from_timestamp_millis(now + 15 * MINUTE).unwrap());
    assert!(approval.decided_at.is_some() && approval.used_at.is_none());
    assert_eq!(store.get(&id).await.unwrap().as_ref(), Some(&*approval));
}

async fn used_once_only_by_its_call(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let now = now_ms();
    let id = ask(&store, "key-alice", "fs", "h", now + HOUR).await;
    assert!(
        !store.use_once(&id, "key-alice", "fs", "delete", "h", now).await.unwrap(),
        "a pending approval is not used"
    );
    assert!(matches!(store.decide(&id, Verdict::Approve, "bob", now, MINUTE).await.unwrap(), Decided::Done(_)));
    assert!(!store.use_once(&id, "key-mallory", "fs", "delete", "h", now).await.unwrap(), "another caller");
    assert!(!store.use_once(&id, "key-alice", "fs", "delete", "other", now).await.unwrap(), "other arguments");
    assert!(!store.use_once(&id, "key-alice", "web", "delete", "h", now).await.unwrap(), "another server");
    assert!(!store.use_once(&id, "key-alice", "fs", "write", "h", now).await.unwrap(), "another tool");
    assert!(!store.use_once(&id, "key-alice", "fs", "delete", "h", now + MINUTE).await.unwrap(), "after its window");
    assert!(!store.use_once("apr-nope", "key-alice", "fs", "delete", "h", now).await.unwrap());
    assert_eq!(status(&store, &id).await, "approved");
    assert!(store.use_once(&id, "key-alice", "fs", "delete", "h", now + MINUTE - 1).await.unwrap());
    assert!(!store.use_once(&id, "key-alice", "fs", "delete", "h", now).await.unwrap(), "used once only");
    let approval = store.get(&id).await.unwrap().unwrap();
    assert_eq!((approval.status.as_str(), approval.decided_by.as_deref()), ("used", Some("bob")));
    assert!(approval.used_at.is_some());

    let denied = ask(&store, "key-alice", "fs", "h", now + HOUR).await;
    assert!(matches!(store.decide(&denied, Verdict::Deny, "bob", now, MINUTE).await.unwrap(), Decided::Done(_)));
    assert!(!store.use_once(&denied, "key-alice", "fs", "delete", "h", now).await.unwrap(), "a denied approval");
    assert_eq!(status(&store, &denied).await, "denied");
}

async fn concurrent_uses_use_once(kind: Kind) {
    let target = Target::new(kind).await;
    let stores =
        [ApprovalStore::open(&target.url).await.expect("open"), ApprovalStore::open(&target.url).await.expect("open")];
    let now = now_ms();
    let id = ask(&stores[0], "key-alice", "fs", "h", now + HOUR).await;
    assert!(matches!(stores[0].decide(&id, Verdict::Approve, "bob", now, MINUTE).await.unwrap(), Decided::Done(_)));
    let mut tasks = Vec::new();
    for i in 0..8usize {
        let store = stores[i % 2].clone();
        let id = id.clone();
        tasks.push(tokio::spawn(
            async move { store.use_once(&id, "key-alice", "fs", "delete", "h", now).await.unwrap() },
        ));
    }
    let mut used = 0;
    for task in tasks {
        used += usize::from(task.await.unwrap());
    }
    assert_eq!(used, 1);
}

async fn redeemed_once(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let now = now_ms();
    let id = ask(&store, "key-alice", "fs", "h", now + MINUTE).await;
    assert!(!store.redeem(&id, "key-mallory", "fs", "delete", "h", "user", now).await.unwrap(), "another caller");
    assert!(!store.redeem(&id, "key-alice", "fs", "delete", "other", "user", now).await.unwrap(), "other arguments");
    assert!(!store.redeem(&id, "key-alice", "fs", "delete", "h", "user", now + MINUTE).await.unwrap(), "expired");
    assert!(store.redeem(&id, "key-alice", "fs", "delete", "h", "alice", now).await.unwrap());
    assert!(!store.redeem(&id, "key-alice", "fs", "delete", "h", "alice", now).await.unwrap(), "redeemed once only");
    let approval = store.get(&id).await.unwrap().unwrap();
    assert_eq!((approval.status.as_str(), approval.decided_by.as_deref()), ("used", Some("alice")));
    assert!(approval.used_at.is_some());
    assert_eq!(approval.decided_at, approval.used_at);

    let approved = ask(&store, "key-alice", "fs", "h", now + HOUR).await;
    assert!(matches!(store.decide(&approved, Verdict::Approve, "bob", now, MINUTE).await.unwrap(), Decided::Done(_)));
    assert!(!store.redeem(&approved, "key-alice", "fs", "delete", "h", "alice", now).await.unwrap(), "not pending");
    assert_eq!(status(&store, &approved).await, "approved");
}

async fn declined(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let now = now_ms();
    let id = ask(&store, "key-alice", "fs", "h", now + HOUR).await;
    assert!(!store.decline(&id, "key-mallory", "mallory").await.unwrap(), "another caller");
    assert_eq!(status(&store, &id).await, "pending");
    assert!(store.decline(&id, "key-alice", "alice").await.unwrap());
    let approval = store.get(&id).await.unwrap().unwrap();
    assert_eq!((approval.status.as_str(), approval.decided_by.as_deref()), ("denied", Some("alice")));
    assert!(approval.decided_at.is_some());
    assert!(!store.decline(&id, "key-alice", "alice").await.unwrap(), "declined once");
    assert!(!store.redeem(&id, "key-alice", "fs", "delete", "h", "alice", now).await.unwrap());
}

async fn found_for_its_call(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let now = now_ms();
    let older = ask(&store, "key-alice", "fs", "h", now + MINUTE).await;
    let newer = ask(&store, "key-alice", "fs", "h", now + HOUR).await;
    let _other_args = ask(&store, "key-alice", "fs", "h2", now + HOUR).await;
    let _other_caller = ask(&store, "key-bob", "fs", "h", now + HOUR).await;
    let found = |store: &ApprovalStore, key: &'static str, hash: &'static str, at: i64| {
        let store = store.clone();
        async move { store.find_for(key, "fs", "delete", hash, at).await.unwrap().map(|a| a.id) }
    };
    assert_eq!(found(&store, "key-alice", "h", now).await, Some(newer.clone()), "the newest");
    assert!(store.find_for("key-alice", "web", "delete", "h", now).await.unwrap().is_none());
    assert!(store.find_for("key-alice", "fs", "write", "h", now).await.unwrap().is_none());
    assert_eq!(found(&store, "key-carol", "h", now).await, None);

    // A denied one is still found (the retry is refused, not asked again).
    assert!(matches!(store.decide(&newer, Verdict::Deny, "bob", now, MINUTE).await.unwrap(), Decided::Done(_)));
    assert_eq!(found(&store, "key-alice", "h", now).await, Some(newer.clone()));
    // An approved one too, until used; a used one is not.
    assert!(store.undecide(&newer, "bob").await.unwrap());
    assert!(matches!(store.decide(&newer, Verdict::Approve, "bob", now, HOUR).await.unwrap(), Decided::Done(_)));
    assert_eq!(found(&store, "key-alice", "h", now).await, Some(newer.clone()));
    assert!(store.use_once(&newer, "key-alice", "fs", "delete", "h", now).await.unwrap());
    assert_eq!(found(&store, "key-alice", "h", now).await, Some(older.clone()), "used ones are ignored");
    // Expired ones are ignored, marked or not.
    assert_eq!(found(&store, "key-alice", "h", now + MINUTE).await, None);
    assert_eq!(store.expire(now + MINUTE).await.unwrap().len(), 1);
    assert_eq!(found(&store, "key-alice", "h", now).await, None);
}

async fn expired_in_bulk(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let now = now_ms();
    let pending_late = ask(&store, "key-alice", "fs", "h1", now + MINUTE).await;
    let approved_late = ask(&store, "key-alice", "fs", "h2", now + HOUR).await;
    assert!(matches!(
        store.decide(&approved_late, Verdict::Approve, "bob", now, MINUTE).await.unwrap(),
        Decided::Done(_)
    ));
    let denied_late = ask(&store, "key-alice", "fs", "h3", now + MINUTE).await;
    assert!(store.decline(&denied_late, "key-alice", "alice").await.unwrap());
    let used_late = ask(&store, "key-alice", "fs", "h4", now + MINUTE).await;
    assert!(store.redeem(&used_late, "key-alice", "fs", "delete", "h4", "alice", now).await.unwrap());
    let pending_in_time = ask(&store, "key-alice", "fs", "h5", now + HOUR).await;

    assert!(store.expire(now + MINUTE - 1).await.unwrap().is_empty(), "nothing expired yet");
    let expired = store.expire(now + MINUTE).await.unwrap();
    assert_eq!(
        expired.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        [pending_late.as_str(), approved_late.as_str()]
    );
    assert!(expired.iter().all(|a| a.status == "expired"));
    assert_eq!(expired[1].decided_by.as_deref(), Some("bob"), "who approved it stays");
    assert_eq!(status(&store, &pending_late).await, "expired");
    assert_eq!(status(&store, &approved_late).await, "expired");
    assert_eq!(status(&store, &denied_late).await, "denied");
    assert_eq!(status(&store, &used_late).await, "used");
    assert_eq!(status(&store, &pending_in_time).await, "pending");
    assert!(store.expire(now + MINUTE).await.unwrap().is_empty(), "marked once");
    assert!(!store.use_once(&approved_late, "key-alice", "fs", "delete", "h2", now).await.unwrap());
}

async fn revoked_per_server(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let now = now_ms();
    let pending = ask(&store, "key-alice", "fs", "h1", now + HOUR).await;
    let approved = ask(&store, "key-alice", "fs", "h2", now + HOUR).await;
    assert!(matches!(store.decide(&approved, Verdict::Approve, "bob", now, HOUR).await.unwrap(), Decided::Done(_)));
    let denied = ask(&store, "key-alice", "fs", "h3", now + HOUR).await;
    assert!(matches!(store.decide(&denied, Verdict::Deny, "bob", now, HOUR).await.unwrap(), Decided::Done(_)));
    let used = ask(&store, "key-alice", "fs", "h4", now + HOUR).await;
    assert!(store.redeem(&used, "key-alice", "fs", "delete", "h4", "alice", now).await.unwrap());
    let elsewhere = ask(&store, "key-alice", "web", "h1", now + HOUR).await;

    let revoked = store.revoke_server("fs", "ops").await.unwrap();
    assert_eq!(revoked.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), [pending.as_str(), approved.as_str()]);
    assert!(revoked.iter().all(|a| a.status == "revoked" && a.decided_by.as_deref() == Some("ops")));
    assert!(revoked.iter().all(|a| a.decided_at.is_some()));
    assert_eq!(status(&store, &pending).await, "revoked");
    assert_eq!(status(&store, &approved).await, "revoked");
    assert_eq!(status(&store, &denied).await, "denied");
    assert_eq!(status(&store, &used).await, "used");
    assert_eq!(status(&store, &elsewhere).await, "pending");
    assert!(!store.use_once(&approved, "key-alice", "fs", "delete", "h2", now).await.unwrap());
    assert!(store.revoke_server("fs", "ops").await.unwrap().is_empty());
    assert!(store.revoke_server("nowhere", "ops").await.unwrap().is_empty());
}

async fn undecided_by_its_decider(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let now = now_ms();
    let id = ask(&store, "key-alice", "fs", "h", now + HOUR).await;
    assert!(!store.undecide(&id, "bob").await.unwrap(), "nothing to undo");
    assert!(matches!(store.decide(&id, Verdict::Approve, "bob", now, HOUR).await.unwrap(), Decided::Done(_)));
    assert!(!store.undecide(&id, "mallory").await.unwrap(), "only its decider's");
    assert!(store.undecide(&id, "bob").await.unwrap());
    let approval = store.get(&id).await.unwrap().unwrap();
    assert_eq!((approval.status.as_str(), approval.decided_by, approval.decided_at), ("pending", None, None));
    assert!(!store.use_once(&id, "key-alice", "fs", "delete", "h", now).await.unwrap(), "pending again");
    assert!(matches!(store.decide(&id, Verdict::Deny, "carol", now, HOUR).await.unwrap(), Decided::Done(_)));
    assert!(store.undecide(&id, "carol").await.unwrap());

    // A used approval cannot be made usable again.
    assert!(matches!(store.decide(&id, Verdict::Approve, "bob", now, HOUR).await.unwrap(), Decided::Done(_)));
    assert!(store.use_once(&id, "key-alice", "fs", "delete", "h", now).await.unwrap());
    assert!(!store.undecide(&id, "bob").await.unwrap());
    assert_eq!(status(&store, &id).await, "used");
}

async fn the_database_refuses_a_bad_status_or_flow(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let id = ask(&store, "k", "fs", "h", now_ms() + HOUR).await;
    let bad = |sql: String| {
        let target = &target;
        async move { target.try_raw(&sql).await.is_err() }
    };
    assert!(bad(format!("UPDATE mcp_approvals SET status = 'granted' WHERE id = '{id}'")).await, "unknown status");
    assert!(bad(format!("UPDATE mcp_approvals SET flow = 'telepathy' WHERE id = '{id}'")).await, "unknown flow");
    assert!(bad(format!("UPDATE mcp_approvals SET status = 'approved' WHERE id = '{id}'")).await, "approved by no one");
    assert!(bad(format!("UPDATE mcp_approvals SET status = 'used' WHERE id = '{id}'")).await, "used at no time");
    let args = json!({});
    let request = ApprovalRequest {
        server: "fs",
        tool: "delete",
        exposed: "fs__delete",
        principal_key: "k",
        actor_id: "a",
        tenant: None,
        session_id: None,
        request_id: None,
        args_hash: "h",
        arguments: &args,
        reasons: &[],
        flow: "telepathy",
        expires_at_ms: now_ms() + HOUR,
    };
    assert!(store.request(&request).await.is_err(), "a request with an unknown flow stored");
    let request = ApprovalRequest { flow: "elicitation", ..request };
    let id = store.request(&request).await.expect("no tenant, session or request id is fine");
    let approval = store.get(&id).await.unwrap().unwrap();
    assert_eq!((approval.flow.as_str(), approval.reasons.len(), approval.tenant), ("elicitation", 0, None));
}

async fn a_hand_edited_row_is_an_error(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ApprovalStore::open(&target.url).await.expect("open");
    let id = ask(&store, "k", "fs", "h", now_ms() + HOUR).await;
    target.raw(&format!("UPDATE mcp_approvals SET reasons = '{{\"a\": 1}}' WHERE id = '{id}'")).await;
    assert!(store.get(&id).await.is_err(), "reasons that are not a list of strings");
    target.raw(&format!("UPDATE mcp_approvals SET reasons = '[1]' WHERE id = '{id}'")).await;
    assert!(store.list(None, 10).await.is_err());
    target.raw(&format!("UPDATE mcp_approvals SET reasons = '[]', arguments = 'not json' WHERE id = '{id}'")).await;
    assert!(store.get(&id).await.is_err(), "arguments that are not JSON");
    target
        .raw(&format!("UPDATE mcp_approvals SET arguments = '{{}}', expires_at_ms = {} WHERE id = '{id}'", i64::MAX))
        .await;
    assert!(store.get(&id).await.is_err(), "an expiry out of range");
}

on_both!(
    request_list_get,
    decided_once,
    concurrent_decides_decide_once,
    approve_sets_the_use_window,
    used_once_only_by_its_call,
    concurrent_uses_use_once,
    redeemed_once,
    declined,
    found_for_its_call,
    expired_in_bulk,
    revoked_per_server,
    undecided_by_its_decider,
    the_database_refuses_a_bad_status_or_flow,
    a_hand_edited_row_is_an_error,
);
