//! The containment store against both backends: containing once (the first record stays),
//! listing by name, releasing, and the list surviving a new store on the same database.

mod common;

use common::{Kind, Target};
use warden_store::ContainmentStore;

async fn contained_listed_released(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ContainmentStore::open(&target.url).await.expect("open");
    assert!(store.list().await.unwrap().is_empty());
    assert!(store.contain("web", "alice", "exfiltration suspected").await.unwrap());
    assert!(!store.contain("web", "mallory", "other reason").await.unwrap(), "already contained");
    assert!(store.contain("db", "bob", "drift").await.unwrap());

    let listed = store.list().await.unwrap();
    assert_eq!(listed.iter().map(|c| c.server.as_str()).collect::<Vec<_>>(), ["db", "web"], "by name");
    assert_eq!((listed[1].contained_by.as_str(), listed[1].reason.as_str()), ("alice", "exfiltration suspected"));
    assert!((chrono::Utc::now() - listed[1].contained_at).num_seconds().abs() < 60);

    // Another store on the same database (a restart, or another gateway) sees the same list.
    store.close().await;
    let reopened = ContainmentStore::open(&target.url).await.expect("reopen");
    assert_eq!(reopened.list().await.unwrap(), listed);

    assert_eq!(reopened.release("web").await.unwrap().as_ref(), Some(&listed[1]));
    assert_eq!(reopened.release("web").await.unwrap(), None, "released once");
    assert_eq!(reopened.release("nowhere").await.unwrap(), None);
    assert_eq!(reopened.list().await.unwrap(), listed[..1]);

    // Contained again after a release: a new record.
    assert!(reopened.contain("web", "carol", "again").await.unwrap());
    let listed = reopened.list().await.unwrap();
    assert_eq!((listed[1].server.as_str(), listed[1].contained_by.as_str()), ("web", "carol"));
}

async fn concurrent_contains_contain_once(kind: Kind) {
    let target = Target::new(kind).await;
    let stores = [
        ContainmentStore::open(&target.url).await.expect("open"),
        ContainmentStore::open(&target.url).await.expect("open"),
    ];
    let mut tasks = Vec::new();
    for i in 0..8usize {
        let store = stores[i % 2].clone();
        tasks.push(tokio::spawn(async move { store.contain("web", &format!("op{i}"), "r").await.unwrap() }));
    }
    let mut newly = 0;
    for task in tasks {
        newly += usize::from(task.await.unwrap());
    }
    assert_eq!(newly, 1);
    assert_eq!(stores[0].list().await.unwrap().len(), 1);
}

async fn credential_revocations_keep_the_latest_per_server_and_caller(kind: Kind) {
    let target = Target::new(kind).await;
    let store = ContainmentStore::open(&target.url).await.expect("open");
    assert!(store.revocations().await.unwrap().is_empty());
    let first = store.revoke_credentials("web", Some("alice"), "ops").await.unwrap();
    store.revoke_credentials("web", None, "ops").await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let second = store.revoke_credentials("web", Some("alice"), "carol").await.unwrap();
    assert!(second > first);
    let all = store.revocations().await.unwrap();
    assert_eq!(all.len(), 2, "one row per server and caller: {all:?}");
    let alice = all.iter().find(|r| r.subject.as_deref() == Some("alice")).unwrap();
    assert_eq!((alice.revoked_by.as_str(), alice.revoked_at), ("carol", second), "the latest, read back exactly");
    assert!(all.iter().any(|r| r.subject.is_none() && r.server == "web"), "every caller's: no subject");
}

on_both!(
    contained_listed_released,
    concurrent_contains_contain_once,
    credential_revocations_keep_the_latest_per_server_and_caller
);
