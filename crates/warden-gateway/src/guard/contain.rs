//! Containment: an operator takes a misbehaving server out of service in one step, with
//! `warden contain SERVER` or the admin API (admin principals only), and puts it back with
//! `warden release SERVER`.
//!
//! Containing a server:
//! - records it in `mcp_containment` (so it survives a restart) and in the audit log;
//! - unlists it and makes it uncallable: no connection to it is given out, its connections are
//!   stopped (a stdio child is ended), calls in flight on them fail, calls parked for a client's
//!   input are dropped, and clients are told their lists changed;
//! - revokes its pending and approved approvals, and with them the per-session connections bound
//!   to it;
//! - revokes the credentials obtained per caller for it (exchanged tokens): none issued before
//!   the containment is used again, after a release either;
//! - turns on emergency mode while any server is contained: every `write` and `irreversible` call
//!   anywhere needs an operator's (out-of-band) approval.
//!
//! The store is the truth; each gateway applies it at start-up, at once after a change made
//! through its own admin API (or `warden contain`, which asks the gateway to sync), and every
//! `approvals.containment_poll` otherwise (another process or another gateway). Contained
//! servers are refused where connections are given out ([`crate::servers::Server::slot`]), so no
//! path to them remains; emergency mode is read by the approval guard.

use super::audit::Auditor;
use super::forward::parked::Parked;
use crate::catalogue::ListKind;
use crate::credentials::Credentials;
use crate::error::GatewayError;
use crate::hub::{Audience, Hub};
use crate::metrics::Metrics;
use crate::servers::Registry;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use warden_store::approvals::Approval;
use warden_store::{ApprovalStorage, ContainmentStorage, UpstreamTokenStore};

/// The containment list as this gateway last applied it.
pub struct Containment {
    store: Arc<dyn ContainmentStorage>,
    applied: Mutex<BTreeSet<String>>,
}

/// What containing a server did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contained {
    /// Whether it was newly contained (false: it already was).
    pub newly: bool,
    /// Approvals revoked.
    pub revoked: usize,
}

impl Containment {
    /// Containment kept in `store`; nothing is applied until [`Containment::sync`].
    pub fn new(store: Arc<dyn ContainmentStorage>) -> Containment {
        Containment { store, applied: Mutex::new(BTreeSet::new()) }
    }

    /// The store.
    pub fn store(&self) -> &dyn ContainmentStorage {
        self.store.as_ref()
    }

    /// Whether any server is contained (emergency mode).
    pub fn emergency(&self) -> bool {
        !self.applied.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }
}

/// Contains `server`: records it, audits it (undone if the audit log cannot record it), and
/// revokes its approvals. Used by the admin API and by `warden contain`; the gateway applies it
/// when it next syncs.
pub async fn contain(
    store: &dyn ContainmentStorage,
    approvals: &dyn ApprovalStorage,
    grants: Option<&UpstreamTokenStore>,
    auditor: &Auditor,
    server: &str,
    by: &str,
    reason: &str,
) -> Result<Contained, GatewayError> {
    let newly = store.contain(server, by, reason).await.map_err(GatewayError::store("the containment store"))?;
    if newly && let Err(e) = auditor.containment("containment", server, by, reason).await {
        let _ = store.release(server).await;
        return Err(GatewayError::Refused(format!(
            "the audit log could not record the containment, so it was undone: {}",
            e.message
        )));
    }
    let revoked = approvals.revoke_server(server, by).await.map_err(GatewayError::store("the approval store"))?;
    for approval in &revoked {
        audit_revoked(auditor, approval, by).await;
    }
    revoke_credentials(store, grants, auditor, server, None, by, "the server was contained").await?;
    Ok(Contained { newly, revoked: revoked.len() })
}

/// Revokes the credentials Warden obtained for `server` on behalf of `subject` (`None`: every
/// caller), as of now: recorded (gateways drop what was issued before it when they next sync,
/// and never use it again), stored grants deleted, and audited. How many grants were deleted.
pub async fn revoke_credentials(
    store: &dyn ContainmentStorage,
    grants: Option<&UpstreamTokenStore>,
    auditor: &Auditor,
    server: &str,
    subject: Option<&str>,
    by: &str,
    why: &str,
) -> Result<u64, GatewayError> {
    store.revoke_credentials(server, subject, by).await.map_err(GatewayError::store("the containment store"))?;
    let deleted = match grants {
        Some(g) => g.delete(server, subject).await.map_err(GatewayError::store("the grant store"))?,
        None => 0,
    };
    let whose = match subject {
        Some(s) => format!("{}'s", auditor.scrubbed(s)),
        None => "every caller's".to_owned(),
    };
    auditor
        .operator_event("credentials_revoked", "REVOKED", by, Some(server), &format!("{whose} credentials: {why}"))
        .await
        .map_err(|e| GatewayError::Refused(format!("the audit log could not record the revocation: {}", e.message)))?;
    Ok(deleted)
}

/// Releases `server`; whether it was contained.
pub async fn release(
    store: &dyn ContainmentStorage,
    auditor: &Auditor,
    server: &str,
    by: &str,
) -> Result<bool, GatewayError> {
    let Some(record) = store.release(server).await.map_err(GatewayError::store("the containment store"))? else {
        return Ok(false);
    };
    if let Err(e) = auditor.containment("containment_released", server, by, "released").await {
        let _ = store.contain(&record.server, &record.contained_by, &record.reason).await;
        return Err(GatewayError::Refused(format!(
            "the audit log could not record the release, so it was undone: {}",
            e.message
        )));
    }
    Ok(true)
}

async fn audit_revoked(auditor: &Auditor, approval: &Approval, by: &str) {
    let event = super::audit::ApprovalEvent {
        event: "approval_revoked",
        approval,
        by: Some(by),
        note: "the server was contained",
    };
    if let Err(e) = auditor.approval(event).await {
        tracing::error!("a revoked approval could not be audited: {}", e.message);
    }
}

impl Containment {
    /// Applies the containment list in the store to the `registry`: servers newly on it are
    /// contained (their parked calls dropped), servers no longer on it released, and clients told
    /// their lists changed. On a store error the list applied stays.
    pub async fn sync(
        &self,
        registry: &Registry,
        parked: &Parked,
        hub: &Hub,
        metrics: &Metrics,
        credentials: &Credentials,
    ) -> Result<(), GatewayError> {
        let listed = self.store.list().await.map_err(GatewayError::store("the containment store"))?;
        let wanted: BTreeSet<String> = listed.into_iter().map(|c| c.server).collect();
        let mut changed = false;
        for server in registry.all() {
            let name = &server.info.name;
            if wanted.contains(name) && !server.is_contained() {
                server.contain().await;
                let dropped = parked.drop_server(name);
                tracing::warn!(server = %name, parked_calls_dropped = dropped,
                    "server contained: unlisted, connections stopped; emergency mode is on");
                changed = true;
            } else if !wanted.contains(name) && server.is_contained() {
                server.release();
                tracing::warn!(server = %name, "server released from containment");
                changed = true;
            }
        }
        let emergency = !wanted.is_empty();
        metrics.contained_servers.set(wanted.len() as i64);
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = wanted;
        if changed {
            for kind in [ListKind::Tools, ListKind::Prompts, ListKind::Resources] {
                hub.list_changed(kind, &Audience::All);
            }
        }
        if emergency {
            tracing::debug!("emergency mode: write and irreversible calls need an operator's approval");
        }
        // After containment, which must not wait on it.
        if credentials.any() {
            let revocations = self.store.revocations().await.map_err(GatewayError::store("the containment store"))?;
            for r in revocations {
                let dropped = credentials.revoke(&r.server, r.subject.as_deref(), r.revoked_at);
                if dropped > 0 {
                    tracing::warn!(server = %r.server, dropped, "credentials revoked by {}", r.revoked_by);
                }
            }
        }
        Ok(())
    }
}
