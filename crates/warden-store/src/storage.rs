//! What the gateway needs of each store, as traits: the SQL stores of this crate implement them,
//! and so do the in-memory stores of the `memory` module, with which the gateway's guards are tested
//! without a database.

use async_trait::async_trait;
use serde_json::Value;

use crate::StoreError;
use crate::approvals::{Approval, ApprovalRequest, ApprovalStore, Decided, Requested, Verdict};
use crate::containment::{Contained, ContainmentStore, Revocation};
use crate::pins::{Pin, PinStore};
use crate::quarantine::{Held, QuarantineStore, Withheld};
use crate::{AuditEvent, AuditLog};

/// Where audit rows go.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Records one row (see [`AuditLog::record`]).
    async fn record(&self, event: AuditEvent) -> Result<(), StoreError>;
    /// Writes what is queued and stops.
    async fn shutdown(&self) -> Result<(), StoreError>;
}

/// The approvals (see [`ApprovalStore`] for what each does).
#[async_trait]
pub trait ApprovalStorage: Send + Sync {
    async fn request_capped(
        &self,
        r: &ApprovalRequest<'_>,
        max_pending: Option<u32>,
        now_ms: i64,
    ) -> Result<Requested, StoreError>;
    async fn list(&self, status: Option<&str>, limit: u32) -> Result<Vec<Approval>, StoreError>;
    async fn get(&self, id: &str) -> Result<Option<Approval>, StoreError>;
    async fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        by: &str,
        now_ms: i64,
        use_within_ms: i64,
    ) -> Result<Decided, StoreError>;
    async fn undecide(&self, id: &str, by: &str) -> Result<bool, StoreError>;
    async fn find_for(
        &self,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Approval>, StoreError>;
    async fn use_once(
        &self,
        id: &str,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    #[allow(clippy::too_many_arguments)]
    async fn redeem(
        &self,
        id: &str,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        by: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
    async fn decline(&self, id: &str, principal_key: &str, by: &str) -> Result<bool, StoreError>;
    async fn expire(&self, now_ms: i64) -> Result<Vec<Approval>, StoreError>;
    async fn revoke_server(&self, server: &str, by: &str) -> Result<Vec<Approval>, StoreError>;
    async fn close(&self);
}

/// The quarantine, as the request path uses it (see [`QuarantineStore`]).
#[async_trait]
pub trait QuarantineStorage: Send + Sync {
    async fn hold(&self, item: &Withheld<'_>) -> Result<String, StoreError>;
    async fn released_to(&self, id: &str, principal_key: &str) -> Result<Option<Held>, StoreError>;
    async fn close(&self);
}

/// The pins, as the integrity guard uses them (see [`PinStore`]).
#[async_trait]
pub trait PinStorage: Send + Sync {
    async fn pins(&self, server: &str) -> Result<Vec<Pin>, StoreError>;
    async fn pin_if_absent(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        hash: &str,
        definition: &Value,
        by: &str,
    ) -> Result<bool, StoreError>;
    #[allow(clippy::too_many_arguments)]
    async fn record_candidate(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        hash: &str,
        definition: Option<&Value>,
        reason: &str,
        findings: &Value,
    ) -> Result<bool, StoreError>;
    async fn close(&self);
}

/// The contained servers (see [`ContainmentStore`]).
#[async_trait]
pub trait ContainmentStorage: Send + Sync {
    async fn contain(&self, server: &str, by: &str, reason: &str) -> Result<bool, StoreError>;
    async fn release(&self, server: &str) -> Result<Option<Contained>, StoreError>;
    async fn list(&self) -> Result<Vec<Contained>, StoreError>;
    async fn revoke_credentials(
        &self,
        server: &str,
        subject: Option<&str>,
        by: &str,
    ) -> Result<chrono::DateTime<chrono::Utc>, StoreError>;
    async fn revocations(&self) -> Result<Vec<Revocation>, StoreError>;
    async fn close(&self);
}

#[async_trait]
impl AuditSink for AuditLog {
    async fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        AuditLog::record(self, event).await
    }
    async fn shutdown(&self) -> Result<(), StoreError> {
        AuditLog::shutdown(self).await
    }
}

#[async_trait]
impl ApprovalStorage for ApprovalStore {
    async fn request_capped(
        &self,
        r: &ApprovalRequest<'_>,
        max_pending: Option<u32>,
        now_ms: i64,
    ) -> Result<Requested, StoreError> {
        ApprovalStore::request_capped(self, r, max_pending, now_ms).await
    }
    async fn list(&self, status: Option<&str>, limit: u32) -> Result<Vec<Approval>, StoreError> {
        ApprovalStore::list(self, status, limit).await
    }
    async fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        ApprovalStore::get(self, id).await
    }
    async fn decide(
        &self,
        id: &str,
        verdict: Verdict,
        by: &str,
        now_ms: i64,
        use_within_ms: i64,
    ) -> Result<Decided, StoreError> {
        ApprovalStore::decide(self, id, verdict, by, now_ms, use_within_ms).await
    }
    async fn undecide(&self, id: &str, by: &str) -> Result<bool, StoreError> {
        ApprovalStore::undecide(self, id, by).await
    }
    async fn find_for(
        &self,
        principal_key: &str,
        server: &str,
        tool: &str,
        args_hash: &str,
        now_ms: i64,
    ) -> Result<Option<Approval>, StoreError> {
        ApprovalStore::find_for(self, principal_key, server, tool, args_hash, now_ms).await
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
        ApprovalStore::use_once(self, id, principal_key, server, tool, args_hash, now_ms).await
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
        ApprovalStore::redeem(self, id, principal_key, server, tool, args_hash, by, now_ms).await
    }
    async fn decline(&self, id: &str, principal_key: &str, by: &str) -> Result<bool, StoreError> {
        ApprovalStore::decline(self, id, principal_key, by).await
    }
    async fn expire(&self, now_ms: i64) -> Result<Vec<Approval>, StoreError> {
        ApprovalStore::expire(self, now_ms).await
    }
    async fn revoke_server(&self, server: &str, by: &str) -> Result<Vec<Approval>, StoreError> {
        ApprovalStore::revoke_server(self, server, by).await
    }
    async fn close(&self) {
        ApprovalStore::close(self).await
    }
}

#[async_trait]
impl QuarantineStorage for QuarantineStore {
    async fn hold(&self, item: &Withheld<'_>) -> Result<String, StoreError> {
        QuarantineStore::hold(self, item).await
    }
    async fn released_to(&self, id: &str, principal_key: &str) -> Result<Option<Held>, StoreError> {
        QuarantineStore::released_to(self, id, principal_key).await
    }
    async fn close(&self) {
        QuarantineStore::close(self).await
    }
}

#[async_trait]
impl PinStorage for PinStore {
    async fn pins(&self, server: &str) -> Result<Vec<Pin>, StoreError> {
        PinStore::pins(self, server).await
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
        PinStore::pin_if_absent(self, server, kind, name, hash, definition, by).await
    }
    async fn record_candidate(
        &self,
        server: &str,
        kind: &str,
        name: &str,
        hash: &str,
        definition: Option<&Value>,
        reason: &str,
        findings: &Value,
    ) -> Result<bool, StoreError> {
        PinStore::record_candidate(self, server, kind, name, hash, definition, reason, findings).await
    }
    async fn close(&self) {
        PinStore::close(self).await
    }
}

#[async_trait]
impl ContainmentStorage for ContainmentStore {
    async fn contain(&self, server: &str, by: &str, reason: &str) -> Result<bool, StoreError> {
        ContainmentStore::contain(self, server, by, reason).await
    }
    async fn release(&self, server: &str) -> Result<Option<Contained>, StoreError> {
        ContainmentStore::release(self, server).await
    }
    async fn list(&self) -> Result<Vec<Contained>, StoreError> {
        ContainmentStore::list(self).await
    }
    async fn revoke_credentials(
        &self,
        server: &str,
        subject: Option<&str>,
        by: &str,
    ) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
        ContainmentStore::revoke_credentials(self, server, subject, by).await
    }
    async fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        ContainmentStore::revocations(self).await
    }
    async fn close(&self) {
        ContainmentStore::close(self).await
    }
}
