//! Legacy sessions every gateway can serve: what `initialize` established, kept in Redis under a
//! hash of the session id, with a hash of the identity of the caller it belongs to. A gateway that
//! is handed a session it does not hold adopts it from there, for the same caller only, and opens
//! its own upstream connections for it; a session ended by its client ends everywhere.

use super::{SharedState, StateError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::Duration;
use warden_policy::Principal;

/// What another gateway needs to serve a session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionRecord {
    /// SHA-256 of the owning caller's identity (subject, tenant, class, client, authority).
    pub owner: String,
    /// The negotiated protocol version.
    pub version: String,
    /// The client's declared capabilities.
    pub capabilities: serde_json::Value,
    /// The client's self-reported identity.
    pub client_info: serde_json::Value,
}

/// The hash a session record names its owner by.
pub fn owner_of(principal: &Principal) -> String {
    hex::encode(Sha256::digest(principal.identity_key().as_bytes()))
}

/// The news that a session ended, naming it by its hash (never by its id).
pub fn ended_news(id: &str) -> String {
    format!("session-ended:{}", session_hash(id))
}

/// The hash a session is named by in keys and news.
pub fn session_hash(id: &str) -> String {
    hex::encode(&Sha256::digest(id.as_bytes())[..20])
}

impl SharedState {
    /// Records a session for `ttl` of idleness.
    pub async fn share_session(&self, id: &str, record: &SessionRecord, ttl: Duration) -> Result<(), StateError> {
        let value = serde_json::to_string(record).map_err(|e| StateError(e.to_string()))?;
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key("s", id)).arg(value).arg("PX").arg(ttl.as_millis().max(1) as u64);
        self.run::<()>(&cmd).await
    }

    /// The session `id`, if it is live on some gateway (an unreadable record counts as none).
    pub async fn find_session(&self, id: &str) -> Result<Option<SessionRecord>, StateError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key("s", id));
        let value: Option<String> = self.run(&cmd).await?;
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Restarts a session's idle time, and its taint's with it (a session in use on any gateway
    /// stays tainted as long as it lives): false when it has ended or expired.
    pub async fn keep_session(&self, id: &str, ttl: Duration) -> Result<bool, StateError> {
        let ms = ttl.as_millis().max(1) as u64;
        let mut pipe = redis::pipe();
        pipe.cmd("PEXPIRE").arg(self.key("s", id)).arg(ms);
        pipe.cmd("PEXPIRE").arg(self.key("t", &format!("session:{id}"))).arg(ms).ignore();
        let mut conn = self.conn().await?;
        let (kept,): (i64,) = tokio::time::timeout(self.timeout, pipe.query_async(&mut conn))
            .await
            .map_err(|_| StateError("no answer in time".into()))?
            .map_err(|e| StateError(format!("{:?}", e.kind())))?;
        Ok(kept == 1)
    }

    /// Ends a session on every gateway.
    pub async fn end_session(&self, id: &str) -> Result<(), StateError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key("s", id));
        self.run::<()>(&cmd).await?;
        self.publish(&ended_news(id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::state;
    use super::*;
    use warden_policy::PrincipalClass;

    #[tokio::test]
    async fn a_session_is_found_kept_and_ended_by_its_id_only() {
        let s = state();
        let alice = Principal::new("alice", PrincipalClass::User);
        let record = SessionRecord {
            owner: owner_of(&alice),
            version: "2025-11-25".into(),
            capabilities: serde_json::json!({ "roots": {} }),
            client_info: serde_json::json!({ "name": "c" }),
        };
        s.share_session("id-1", &record, Duration::from_secs(5)).await.unwrap();
        assert_eq!(s.find_session("id-1").await.unwrap(), Some(record));
        assert_eq!(s.find_session("id-2").await.unwrap(), None);
        s.mark_tainted("session:id-1", Duration::from_millis(300)).await.unwrap();
        assert!(s.keep_session("id-1", Duration::from_secs(5)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(s.is_tainted("session:id-1").await.unwrap(), "a kept session keeps its taint");
        assert!(!s.keep_session("id-2", Duration::from_secs(5)).await.unwrap());
        s.end_session("id-1").await.unwrap();
        assert_eq!(s.find_session("id-1").await.unwrap(), None);
        assert!(!s.keep_session("id-1", Duration::from_secs(5)).await.unwrap());
        assert_ne!(owner_of(&alice), owner_of(&Principal::new("alice", PrincipalClass::Admin)));
    }
}
