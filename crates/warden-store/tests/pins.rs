//! The pin store against both backends: trust on first use under a race, candidates recorded
//! once, accepting, and living beside the audit log in one database.

mod common;

use std::time::Duration;

use common::{Kind, Target};
use serde_json::{Value, json};
use warden_store::{AuditLog, AuditReader, PinStore};

fn hash(n: u8) -> String {
    format!("sha256:{}", hex::encode([n; 32]))
}

fn tool(description: &str) -> Value {
    json!({"name": "search", "description": description, "inputSchema": {"type": "object"}})
}

async fn open(target: &Target) -> PinStore {
    PinStore::open(&target.url).await.expect("open pin store")
}

/// Lets the clock move on, so `last_seen` orders records.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

async fn tofu_race_pins_exactly_once(kind: Kind) {
    let target = Target::new(kind).await;
    // Two stores with their own pools stand for two gateways sharing the database.
    let stores = [open(&target).await, open(&target).await];
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let store = stores[usize::from(i % 2)].clone();
        tasks.push(tokio::spawn(async move {
            let won = store
                .pin_if_absent("github", "tool", "search", &hash(i), &tool(&format!("v{i}")), "tofu")
                .await
                .expect("pin_if_absent");
            won.then_some(i)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.expect("task"));
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let pins = stores[0].pins("github").await.expect("pins");
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0].hash, hash(winners[0]));
    assert_eq!(pins[0].definition, tool(&format!("v{}", winners[0])));
    assert_eq!(pins[0].pinned_by, "tofu");
    // Once pinned, nobody else pins.
    assert!(!stores[1].pin_if_absent("github", "tool", "search", &hash(99), &tool("x"), "tofu").await.unwrap());
}

async fn drift_candidate_is_new_once(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    store.pin("github", "tool", "search", &hash(1), &tool("old"), "alice").await.unwrap();
    let findings = json!([{"rule": "hidden-instructions"}]);
    assert!(
        store
            .record_candidate("github", "tool", "search", &hash(2), Some(&tool("new")), "drift", &json!([]))
            .await
            .unwrap()
    );
    tick().await;
    assert!(
        !store
            .record_candidate("github", "tool", "search", &hash(2), Some(&tool("new")), "poisoned", &findings)
            .await
            .unwrap()
    );
    let candidates = store.candidates("github").await.unwrap();
    assert_eq!(candidates.len(), 1);
    let candidate = &candidates[0];
    assert_eq!((candidate.kind.as_str(), candidate.name.as_str()), ("tool", "search"));
    assert_eq!(candidate.hash, hash(2));
    assert_eq!(candidate.definition, Some(tool("new")));
    assert_eq!(candidate.reason, "poisoned");
    assert_eq!(candidate.findings, findings);
    assert!(candidate.last_seen > candidate.first_seen, "{candidate:?}");
    // A further hash of the same item is a new candidate of its own.
    assert!(
        store
            .record_candidate("github", "tool", "search", &hash(3), Some(&tool("newer")), "drift", &json!([]))
            .await
            .unwrap()
    );
    assert_eq!(store.candidates("github").await.unwrap().len(), 2);
    // The pin is untouched until someone accepts.
    assert_eq!(store.pins("github").await.unwrap()[0].hash, hash(1));
}

async fn accept_one_item_then_all(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    for (name, n) in [("a", 1), ("b", 2)] {
        store
            .record_candidate("srv", "tool", name, &hash(n), Some(&json!({"name": name})), "new", &json!([]))
            .await
            .unwrap();
    }
    store
        .record_candidate("srv", "prompt", "a", &hash(3), Some(&json!({"prompt": "a"})), "new", &json!([]))
        .await
        .unwrap();

    let accepted = store.accept("srv", Some("a"), "alice").await.unwrap();
    let mut items: Vec<(&str, &str)> = accepted.iter().map(|c| (c.kind.as_str(), c.name.as_str())).collect();
    items.sort();
    assert_eq!(items, [("prompt", "a"), ("tool", "a")]);
    let pins = store.pins("srv").await.unwrap();
    assert_eq!(pins.len(), 2);
    assert!(pins.iter().all(|p| p.name == "a" && p.pinned_by == "alice"));
    let left = store.candidates("srv").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].name, "b");

    assert!(store.accept("srv", Some("nothing"), "alice").await.unwrap().is_empty());
    let accepted = store.accept("srv", None, "bob").await.unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].name, "b");
    assert!(store.candidates("srv").await.unwrap().is_empty());
    let pins = store.pins("srv").await.unwrap();
    let b = pins.iter().find(|p| p.name == "b").expect("b pinned");
    assert_eq!((b.hash.clone(), b.definition.clone(), b.pinned_by.as_str()), (hash(2), json!({"name": "b"}), "bob"));
}

/// A person accepts the definition they saw: not a newer one the server showed meanwhile, not
/// another kind of the same name.
async fn accept_exact_takes_only_what_was_seen(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    store.pin("srv", "tool", "search", &hash(1), &tool("old"), "tofu").await.unwrap();
    store.record_candidate("srv", "tool", "search", &hash(2), Some(&tool("seen")), "drift", &json!([])).await.unwrap();
    store
        .record_candidate("srv", "prompt", "search", &hash(4), Some(&json!({"name": "search"})), "new", &json!([]))
        .await
        .unwrap();
    tick().await;
    store
        .record_candidate("srv", "tool", "search", &hash(3), Some(&tool("poisoned")), "drift", &json!([]))
        .await
        .unwrap();
    use warden_store::pins::Exact;
    assert_eq!(store.accept_exact("srv", "tool", "search", &hash(2), "alice").await.unwrap(), Exact::Superseded);
    assert_eq!(store.pins("srv").await.unwrap()[0].hash, hash(1), "nothing changed");
    assert_eq!(store.accept_exact("srv", "tool", "search", &hash(9), "alice").await.unwrap(), Exact::Gone);
    let Exact::Accepted(c) = store.accept_exact("srv", "tool", "search", &hash(3), "alice").await.unwrap() else {
        panic!("the newest is accepted")
    };
    assert_eq!(c.hash, hash(3));
    let left = store.candidates("srv").await.unwrap();
    assert_eq!(left.len(), 1, "the prompt of the same name stays held: {left:?}");
    assert_eq!(left[0].kind, "prompt");
}

async fn accepting_a_removal_deletes_the_pin(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    store.pin("srv", "tool", "gone", &hash(1), &json!({"name": "gone"}), "alice").await.unwrap();
    store.pin("srv", "tool", "kept", &hash(2), &json!({"name": "kept"}), "alice").await.unwrap();
    assert!(store.record_candidate("srv", "tool", "gone", &hash(1), None, "removed", &json!([])).await.unwrap());
    let candidates = store.candidates("srv").await.unwrap();
    assert_eq!(candidates[0].definition, None);
    let accepted = store.accept("srv", None, "alice").await.unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].reason, "removed");
    let names: Vec<String> = store.pins("srv").await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["kept"]);
}

async fn accept_takes_the_latest_hash(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    store.pin("srv", "tool", "t", &hash(1), &json!({"v": 1}), "alice").await.unwrap();
    for n in [2, 3, 2] {
        store
            .record_candidate("srv", "tool", "t", &hash(n), Some(&json!({"v": n})), "drift", &json!([]))
            .await
            .unwrap();
        tick().await;
    }
    // Seen last: hash 2 (again), after hash 3.
    let accepted = store.accept("srv", Some("t"), "alice").await.unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].hash, hash(2));
    let pins = store.pins("srv").await.unwrap();
    assert_eq!((pins[0].hash.clone(), pins[0].definition.clone()), (hash(2), json!({"v": 2})));
    assert!(store.candidates("srv").await.unwrap().is_empty(), "the other hashes are dropped");

    // A removal seen after a drift wins too.
    store.record_candidate("srv", "tool", "t", &hash(4), Some(&json!({"v": 4})), "drift", &json!([])).await.unwrap();
    tick().await;
    store.record_candidate("srv", "tool", "t", &hash(2), None, "removed", &json!([])).await.unwrap();
    store.accept("srv", None, "alice").await.unwrap();
    assert!(store.pins("srv").await.unwrap().is_empty());
}

async fn definitions_round_trip(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    let definition = json!({
        "name": "weird",
        "description": "Ünïcödé \u{1F600} \u{200b} \u{e0041} \"quoted\" \\ \n new line \u{0}",
        "inputSchema": {"type": "object", "properties": {"n": {"type": "number", "default": 0.1, "maximum": 1e300}}},
        "annotations": {"readOnlyHint": true, "big": 9007199254740992u64, "neg": -5},
        "_meta": {"nested": [[[{"deep": null}]]], "empty": {}, "list": []},
        "icons": [{"src": "data:image/png;base64,AAAA"}]
    });
    store.pin("srv", "tool", "weird", &hash(1), &definition, "alice").await.unwrap();
    let pins = store.pins("srv").await.unwrap();
    assert_eq!(pins[0].definition, definition);
    let findings = json!([{"rule": "r1", "at": "/description", "score": 0.75}]);
    store
        .record_candidate("srv", "instructions", "", &hash(2), Some(&json!("Be helpful.")), "new", &findings)
        .await
        .unwrap();
    let candidate = &store.candidates("srv").await.unwrap()[0];
    assert_eq!(candidate.definition, Some(json!("Be helpful.")));
    assert_eq!(candidate.findings, findings);
    assert_eq!(candidate.kind, "instructions");
    // Times come back as they were handed out: microseconds, UTC.
    let age = chrono::Utc::now() - pins[0].pinned_at;
    assert!(age >= chrono::TimeDelta::zero() && age < chrono::TimeDelta::minutes(1), "{age:?}");
    assert_eq!(pins[0].pinned_at.timestamp_subsec_nanos() % 1000, 0);
}

async fn servers_do_not_leak(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    store.pin("one", "tool", "t", &hash(1), &json!({"s": 1}), "alice").await.unwrap();
    store.record_candidate("one", "tool", "t", &hash(2), Some(&json!({"s": 2})), "drift", &json!([])).await.unwrap();
    assert!(store.pins("two").await.unwrap().is_empty());
    assert!(store.candidates("two").await.unwrap().is_empty());
    assert!(store.accept("two", None, "alice").await.unwrap().is_empty());
    // The same item name on another server is another item.
    assert!(store.pin_if_absent("two", "tool", "t", &hash(3), &json!({"s": 3}), "tofu").await.unwrap());
    assert_eq!(store.pins("one").await.unwrap()[0].hash, hash(1));
    assert_eq!(store.candidates("one").await.unwrap().len(), 1);
    store.forget("two", "tool", "t").await.unwrap();
    assert_eq!(store.pins("one").await.unwrap().len(), 1);
}

async fn pin_replaces_and_forget_clears(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    store.pin("srv", "tool", "t", &hash(1), &json!({"v": 1}), "tofu").await.unwrap();
    store.record_candidate("srv", "tool", "t", &hash(2), Some(&json!({"v": 2})), "drift", &json!([])).await.unwrap();
    store.pin("srv", "tool", "t", &hash(2), &json!({"v": 2}), "alice").await.unwrap();
    let pins = store.pins("srv").await.unwrap();
    assert_eq!((pins.len(), pins[0].hash.clone(), pins[0].pinned_by.as_str()), (1, hash(2), "alice"));
    assert!(store.candidates("srv").await.unwrap().is_empty(), "pinning settles the item's candidates");

    store.record_candidate("srv", "tool", "t", &hash(3), Some(&json!({"v": 3})), "drift", &json!([])).await.unwrap();
    store.forget("srv", "tool", "t").await.unwrap();
    assert!(store.pins("srv").await.unwrap().is_empty());
    assert!(store.candidates("srv").await.unwrap().is_empty());
    // Forgotten: the next sighting is a first sighting.
    assert!(store.pin_if_absent("srv", "tool", "t", &hash(3), &json!({"v": 3}), "tofu").await.unwrap());
}

async fn the_database_refuses_malformed_items(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    assert!(store.pin("srv", "widget", "t", &hash(1), &json!({}), "alice").await.is_err());
    // A removal carries no definition, and only a removal lacks one.
    assert!(
        store.record_candidate("srv", "tool", "t", &hash(1), Some(&json!({})), "removed", &json!([])).await.is_err()
    );
    assert!(store.record_candidate("srv", "tool", "t", &hash(1), None, "drift", &json!([])).await.is_err());
    assert!(store.record_candidate("srv", "tool", "t", &hash(1), Some(&json!({})), "bored", &json!([])).await.is_err());
    assert!(store.candidates("srv").await.unwrap().is_empty());
}

async fn a_hand_edited_definition_is_an_error(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    store.pin("srv", "tool", "t", &hash(1), &json!({}), "alice").await.unwrap();
    target.raw("UPDATE mcp_pins SET definition = '{not json'").await;
    let err = store.pins("srv").await.expect_err("corrupt definition");
    assert!(err.to_string().contains("pinned definition"), "{err}");
}

async fn audit_log_then_pins(kind: Kind) {
    let target = Target::new(kind).await;
    let log = AuditLog::open(target.settings()).await.expect("audit log first");
    log.record(common::event(1, chrono::Utc::now())).await.unwrap();
    let store = open(&target).await;
    assert!(store.pin_if_absent("srv", "tool", "t", &hash(1), &json!({}), "tofu").await.unwrap());
    log.record(common::event(2, chrono::Utc::now())).await.unwrap();
    log.shutdown().await.unwrap();
    let report = AuditReader::open(&target.url).await.unwrap().verify::<&str>(&[]).await.unwrap();
    assert!(report.is_clean());
}

async fn pins_then_audit_log(kind: Kind) {
    let target = Target::new(kind).await;
    let store = open(&target).await;
    assert!(store.pin_if_absent("srv", "tool", "t", &hash(1), &json!({}), "tofu").await.unwrap());
    let log = AuditLog::open(target.settings()).await.expect("audit log second");
    log.record(common::event(1, chrono::Utc::now())).await.unwrap();
    log.shutdown().await.unwrap();
    let report = AuditReader::open(&target.url).await.unwrap().verify::<&str>(&[]).await.unwrap();
    assert!(report.is_clean());
    // Opening again runs no migration twice.
    let again = open(&target).await;
    assert_eq!(again.pins("srv").await.unwrap().len(), 1);
}

on_both!(
    tofu_race_pins_exactly_once,
    drift_candidate_is_new_once,
    accept_one_item_then_all,
    accept_exact_takes_only_what_was_seen,
    accepting_a_removal_deletes_the_pin,
    accept_takes_the_latest_hash,
    definitions_round_trip,
    servers_do_not_leak,
    pin_replaces_and_forget_clears,
    the_database_refuses_malformed_items,
    a_hand_edited_definition_is_an_error,
    audit_log_then_pins,
    pins_then_audit_log,
);
