//! Stores kept in memory, behind the same traits as the SQL stores ([`crate::storage`]), with the
//! same rules: an approval is bound to its call and used once, a quarantined item is released to
//! its caller only, a pin is set once. For tests of what uses the stores, without a database;
//! nothing here survives the process.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::StoreError;
use crate::approvals::{Approval, ApprovalRequest, Decided, Requested, Verdict};
use crate::containment::{Contained, Revocation};
use crate::pins::Pin;
use crate::quarantine::{Held, Withheld};
use crate::storage::{ApprovalStorage, AuditSink, ContainmentStorage, PinStorage, QuarantineStorage};
use crate::{AuditEvent, sql};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn at_ms(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}-{}", hex::encode(rand::random::<[u8; 12]>()))
}

/// Audit rows kept in memory, in the order recorded.
#[derive(Default)]
pub struct MemoryAudit {
    rows: Mutex<Vec<AuditEvent>>,
    /// When set, every write fails (to test that a failed audit write refuses the request).
    pub failing: std::sync::atomic::AtomicBool,
}

impl MemoryAudit {
    /// Every row recorded so far.
    pub fn rows(&self) -> Vec<AuditEvent> {
        lock(&self.rows).clone()
    }
}

#[async_trait]
impl AuditSink for MemoryAudit {
    async fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Closed);
        }
        lock(&self.rows).push(event);
        Ok(())
    }
    async fn shutdown(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Approvals kept in memory.
#[derive(Default)]
pub struct MemoryApprovals {
    approvals: Mutex<Vec<Approval>>,
}

impl MemoryApprovals {
    fn update_where(&self, matches: impl Fn(&Approval) -> bool, change: impl Fn(&mut Approval)) -> Vec<Approval> {
        let mut all = lock(&self.approvals);
        let mut changed = Vec::new();
        for a in all.iter_mut().filter(|a| matches(a)) {
            change(a);
            changed.push(a.clone());
        }
        changed
    }
}

fn same_call(a: &Approval, principal_key: &str, server: &str, tool: &str, args_hash: &str) -> bool {
    a.principal_key == principal_key && a.server == server && a.tool == tool && a.args_hash == args_hash
}

fn expires_ms(a: &Approval) -> i64 {
    a.expires_at.timestamp_millis()
}

#[async_trait]
impl ApprovalStorage for MemoryApprovals {
    async fn request_capped(
        &self,
        r: &ApprovalRequest<'_>,
        max_pending: Option<u32>,
        now_ms: i64,
    ) -> Result<Requested, StoreError> {
        let mut all = lock(&self.approvals);
        if let Some(max) = max_pending {
            let pending = all
                .iter()
                .filter(|a| a.principal_key == r.principal_key && a.status == "pending" && expires_ms(a) > now_ms)
                .count() as i64;
            if pending >= i64::from(max) {
                return Ok(Requested::TooMany(pending));
            }
        }
        let id = new_id("apr");
        all.push(Approval {
            id: id.clone(),
            created_at: sql::now(),
            expires_at: at_ms(r.expires_at_ms),
            server: r.server.to_owned(),
            tool: r.tool.to_owned(),
            exposed: r.exposed.to_owned(),
            principal_key: r.principal_key.to_owned(),
            actor_id: r.actor_id.to_owned(),
            tenant: r.tenant.map(str::to_owned),
            session_id: r.session_id.map(str::to_owned),
            request_id: r.request_id.map(str::to_owned),
            args_hash: r.args_hash.to_owned(),
            arguments: r.arguments.clone(),
            reasons: r.reasons.to_vec(),
            flow: r.flow.to_owned(),
            status: "pending".to_owned(),
            decided_by: None,
            decided_at: None,
            used_at: None,
        });
        Ok(Requested::Stored(id))
    }

    async fn list(&self, status: Option<&str>, limit: u32) -> Result<Vec<Approval>, StoreError> {
        let all = lock(&self.approvals);
        let mut found: Vec<Approval> =
            all.iter().filter(|a| status.is_none_or(|s| a.status == s)).rev().cloned().collect();
        found.truncate(limit as usize);
        Ok(found)
    }

    async fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        Ok(lock(&self.approvals).iter().find(|a| a.id == id).cloned())
    }

    async fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        by: &str,
        now_ms: i64,
        use_within_ms: i64,
    ) -> Result<Decided, StoreError> {
        let mut all = lock(&self.approvals);
        let Some(a) = all.iter_mut().find(|a| a.id == id) else { return Ok(Decided::NotFound) };
        if a.status != "pending" {
            return Ok(Decided::AlreadyDecided(a.status.clone()));
        }
        if expires_ms(a) <= now_ms {
            a.status = "expired".to_owned();
            return Ok(Decided::Expired);
        }
        a.status = match verdict {
            Verdict::Approve => "approved",
            Verdict::Deny => "denied",
        }
        .to_owned();
        a.decided_by = Some(by.to_owned());
        a.decided_at = Some(sql::now());
        if verdict == Verdict::Approve {
            a.expires_at = at_ms(now_ms.saturating_add(use_within_ms));
        }
        Ok(Decided::Done(Box::new(a.clone())))
    }

    async fn undecide(&self, id: &str, by: &str) -> Result<bool, StoreError> {
        let undone = self.update_where(
            |a| a.id == id && matches!(a.status.as_str(), "approved" | "denied") && a.decided_by.as_deref() == Some(by),
            |a| {
                a.status = "pending".to_owned();
                a.decided_by = None;
                a.decided_at = None;
            },
        );
        Ok(!undone.is_empty())
    }

    async fn find_for(
        &self,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Approval>, StoreError> {
        Ok(lock(&self.approvals)
            .iter()
            .rev()
            .find(|a| {
                same_call(a, principal_key, server, tool, args_hash)
                    && matches!(a.status.as_str(), "pending" | "approved" | "denied")
                    && expires_ms(a) > now_ms
            })
            .cloned())
    }

    async fn use_once(
        &self,
        id: &str,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let used = self.update_where(
            |a| {
                a.id == id
                    && a.status == "approved"
                    && same_call(a, principal_key, server, tool, args_hash)
                    && expires_ms(a) > now_ms
            },
            |a| {
                a.status = "used".to_owned();
                a.used_at = Some(sql::now());
            },
        );
        Ok(!used.is_empty())
    }

    async fn redeem(
        &self,
        id: &str,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let redeemed = self.update_where(
            |a| {
                a.id == id
                    && a.status == "pending"
                    && same_call(a, principal_key, server, tool, args_hash)
                    && expires_ms(a) > now_ms
            },
            |a| {
                let now = sql::now();
                a.status = "used".to_owned();
                a.decided_by = Some(by.to_owned());
                a.decided_at = Some(now);
                a.used_at = Some(now);
            },
        );
        Ok(!redeemed.is_empty())
    }

    async fn decline(&self, id: &str, principal_key: &str, by: &str) -> Result<bool, StoreError> {
        let declined = self.update_where(
            |a| a.id == id && a.status == "pending" && a.principal_key == principal_key,
            |a| {
                a.status = "denied".to_owned();
                a.decided_by = Some(by.to_owned());
                a.decided_at = Some(sql::now());
            },
        );
        Ok(!declined.is_empty())
    }

    async fn expire(&self, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        Ok(self.update_where(
            |a| matches!(a.status.as_str(), "pending" | "approved") && expires_ms(a) <= now_ms,
            |a| a.status = "expired".to_owned(),
        ))
    }

    async fn revoke_server(&self, server: &str, by: &str) -> Result<Vec<Approval>, StoreError> {
        Ok(self.update_where(
            |a| a.server == server && matches!(a.status.as_str(), "pending" | "approved"),
            |a| {
                a.status = "revoked".to_owned();
                a.decided_by = Some(by.to_owned());
                a.decided_at = Some(sql::now());
            },
        ))
    }

    async fn close(&self) {}
}

/// Quarantined results kept in memory.
#[derive(Default)]
pub struct MemoryQuarantine {
    items: Mutex<Vec<Held>>,
}

impl MemoryQuarantine {
    /// Every item held or reviewed so far.
    pub fn items(&self) -> Vec<Held> {
        lock(&self.items).clone()
    }

    /// Releases a held item (as `warden quarantine release` would); whether it was held.
    pub fn release(&self, id: &str, by: &str) -> bool {
        let mut items = lock(&self.items);
        match items.iter_mut().find(|i| i.id == id && i.status == "held") {
            Some(item) => {
                item.status = "released".to_owned();
                item.reviewed_by = Some(by.to_owned());
                item.reviewed_at = Some(sql::now());
                true
            }
            None => false,
        }
    }
}

#[async_trait]
impl QuarantineStorage for MemoryQuarantine {
    async fn hold(&self, item: &Withheld<'_>) -> Result<String, StoreError> {
        let id = new_id("q");
        lock(&self.items).push(Held {
            id: id.clone(),
            created_at: sql::now(),
            server: item.server.to_owned(),
            method: item.method.to_owned(),
            item: item.item.to_owned(),
            principal_key: item.principal_key.to_owned(),
            actor_id: item.actor_id.to_owned(),
            tenant: item.tenant.map(str::to_owned),
            session_id: item.session_id.map(str::to_owned),
            request_id: item.request_id.map(str::to_owned),
            severity: item.severity.to_owned(),
            findings: item.findings.clone(),
            content: Some(item.content.clone()),
            status: "held".to_owned(),
            reviewed_by: None,
            reviewed_at: None,
        });
        Ok(id)
    }

    async fn released_to(&self, id: &str, principal_key: &str) -> Result<Option<Held>, StoreError> {
        Ok(lock(&self.items)
            .iter()
            .find(|i| i.id == id && i.status == "released" && i.principal_key == principal_key)
            .cloned())
    }

    async fn close(&self) {}
}

/// Pins and candidates kept in memory.
#[derive(Default)]
pub struct MemoryPins {
    pins: Mutex<BTreeMap<(String, String, String), Pin>>,
    candidates: Mutex<HashMap<(String, String, String, String), String>>,
}

#[async_trait]
impl PinStorage for MemoryPins {
    async fn pins(&self, server: &str) -> Result<Vec<Pin>, StoreError> {
        Ok(lock(&self.pins).values().filter(|p| p.server == server).cloned().collect())
    }

    async fn pin_if_absent(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        hash: &str,
        definition: &Value,
        by: &str,
    ) -> Result<bool, StoreError> {
        let mut pins = lock(&self.pins);
        let key = (server.to_owned(), kind.to_owned(), name.to_owned());
        if pins.contains_key(&key) {
            return Ok(false);
        }
        pins.insert(
            key,
            Pin {
                server: server.to_owned(),
                kind: kind.to_owned(),
                name: name.to_owned(),
                hash: hash.to_owned(),
                definition: definition.clone(),
                pinned_at: sql::now(),
                pinned_by: by.to_owned(),
            },
        );
        Ok(true)
    }

    async fn record_candidate(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        hash: &str,
        _definition: Option<&Value>,
        reason: &str,
        _findings: &Value,
    ) -> Result<bool, StoreError> {
        let key = (server.to_owned(), kind.to_owned(), name.to_owned(), hash.to_owned());
        Ok(lock(&self.candidates).insert(key, reason.to_owned()).is_none())
    }

    async fn close(&self) {}
}

/// Contained servers kept in memory.
#[derive(Default)]
pub struct MemoryContainment {
    contained: Mutex<BTreeMap<String, Contained>>,
    revoked: Mutex<BTreeMap<(String, String), Revocation>>,
}

#[async_trait]
impl ContainmentStorage for MemoryContainment {
    async fn contain(&self, server: &str, by: &str, reason: &str) -> Result<bool, StoreError> {
        let mut all = lock(&self.contained);
        if all.contains_key(server) {
            return Ok(false);
        }
        let record = Contained {
            server: server.to_owned(),
            contained_at: sql::now(),
            contained_by: by.to_owned(),
            reason: reason.to_owned(),
        };
        all.insert(server.to_owned(), record);
        Ok(true)
    }

    async fn release(&self, server: &str) -> Result<Option<Contained>, StoreError> {
        Ok(lock(&self.contained).remove(server))
    }

    async fn list(&self) -> Result<Vec<Contained>, StoreError> {
        Ok(lock(&self.contained).values().cloned().collect())
    }

    async fn revoke_credentials(
        &self,
        server: &str,
        subject: Option<&str>,
        by: &str,
    ) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        let at = sql::now();
        let r = Revocation {
            server: server.to_owned(),
            subject: subject.map(str::to_owned),
            revoked_at: at,
            revoked_by: by.to_owned(),
        };
        lock(&self.revoked).insert((server.to_owned(), subject.unwrap_or_default().to_owned()), r);
        Ok(at)
    }

    async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        Ok(lock(&self.revoked).values().cloned().collect())
    }

    async fn close(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request<'a>(key: &'a str, hash: &'a str, arguments: &'a Value, expires_at_ms: i64) -> ApprovalRequest<'a> {
        ApprovalRequest {
            server: "s",
            tool: "t",
            exposed: "s__t",
            principal_key: key,
            actor_id: "alice",
            tenant: None,
            session_id: None,
            request_id: None,
            args_hash: hash,
            arguments,
            reasons: &[],
            flow: "out_of_band",
            expires_at_ms,
        }
    }

    #[tokio::test]
    async fn an_approval_is_bound_to_its_call_and_used_once() {
        let store = MemoryApprovals::default();
        let args = json!({});
        let Requested::Stored(id) = store.request_capped(&request("k", "h", &args, 10_000), Some(2), 0).await.unwrap()
        else {
            panic!("stored")
        };
        assert!(matches!(store.decide(&id, Verdict::Approve, "ops", 1, 5_000).await.unwrap(), Decided::Done(_)));
        assert!(matches!(store.decide(&id, Verdict::Deny, "ops", 2, 5_000).await.unwrap(), Decided::AlreadyDecided(_)));
        assert!(!store.use_once(&id, "k", "s", "t", "other", 3).await.unwrap(), "other arguments");
        assert!(!store.use_once(&id, "mallory", "s", "t", "h", 3).await.unwrap(), "another caller");
        assert!(store.use_once(&id, "k", "s", "t", "h", 3).await.unwrap());
        assert!(!store.use_once(&id, "k", "s", "t", "h", 4).await.unwrap(), "once");
        store.request_capped(&request("k", "h2", &args, 10_000), Some(2), 0).await.unwrap();
        store.request_capped(&request("k", "h3", &args, 10_000), Some(2), 0).await.unwrap();
        let capped = store.request_capped(&request("k", "h4", &args, 10_000), Some(2), 0).await.unwrap();
        assert_eq!(capped, Requested::TooMany(2));
        assert_eq!(store.expire(20_000).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn quarantined_items_go_to_their_caller_only_once_released() {
        let store = MemoryQuarantine::default();
        let (findings, content) = (json!([]), json!({ "x": 1 }));
        let item = Withheld {
            server: "s",
            method: "tools/call",
            item: "s__t",
            principal_key: "k",
            actor_id: "alice",
            tenant: None,
            session_id: None,
            request_id: None,
            severity: "high",
            findings: &findings,
            content: &content,
        };
        let id = store.hold(&item).await.unwrap();
        assert!(store.released_to(&id, "k").await.unwrap().is_none(), "held");
        assert!(store.release(&id, "ops"));
        assert!(store.released_to(&id, "mallory").await.unwrap().is_none());
        assert_eq!(store.released_to(&id, "k").await.unwrap().and_then(|i| i.content), Some(content));
    }
}
