//! Requests the gateway sends a client (legacy sessions and stdio) and the answers matched back
//! to them.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use warden_protocol::{Id, IdKey, Kind, Message, RpcError};

/// A client that can be asked things: it answers requests the gateway sends it (legacy sessions
/// and stdio). Requests are numbered by the gateway; answers are matched back by id, and an
/// answer to an id never sent is dropped.
#[derive(Debug, Default)]
pub struct ClientPeer {
    next_id: AtomicU64,
    pending: Mutex<HashMap<IdKey, oneshot::Sender<Message>>>,
}

impl ClientPeer {
    /// Sends a request to the client over `tx` and waits up to `timeout` for its answer.
    pub async fn request(
        &self,
        tx: &mpsc::Sender<Message>,
        method: &str,
        params: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let id = Id::string(&format!("warden-{n}"));
        let (otx, orx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).insert(id.key(), otx);
        let guard = PendingGuard { peer: self, key: id.key() };
        if tx.send(Message::request(id, method, params)).await.is_err() {
            return Err(RpcError::internal("the client is no longer connected"));
        }
        let answer = tokio::time::timeout(timeout, orx).await;
        drop(guard);
        match answer {
            Err(_) => Err(RpcError::new(warden_protocol::error::REQUEST_TIMEOUT, "the client did not answer in time")),
            Ok(Err(_)) => Err(RpcError::internal("the client is no longer connected")),
            Ok(Ok(m)) => match m.kind() {
                Kind::Response => Ok(m.result().cloned().unwrap_or(Value::Null)),
                _ => Err(m.rpc_error().unwrap_or_else(|| RpcError::internal("the client answered with an error"))),
            },
        }
    }

    /// Delivers a client's answer. Returns false when no request with that id is pending.
    pub fn answer(&self, msg: Message) -> bool {
        let Some(key) = msg.id().map(Id::key) else { return false };
        let tx = self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        match tx {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        }
    }
}

struct PendingGuard<'a> {
    peer: &'a ClientPeer,
    key: IdKey,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.peer.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    #[tokio::test]
    async fn peer_matches_answers_and_drops_strays() {
        let peer = Arc::new(ClientPeer::default());
        let (tx, mut rx) = mpsc::channel(4);
        let p2 = peer.clone();
        let task = tokio::spawn(async move { p2.request(&tx, "roots/list", None, Duration::from_secs(5)).await });
        let sent = rx.recv().await.unwrap();
        assert!(!peer.answer(Message::response(Id::string("warden-999"), json!({}))), "a stray answer is dropped");
        assert!(peer.answer(Message::response(sent.id().unwrap().clone(), json!({"roots": []}))));
        assert_eq!(task.await.unwrap().unwrap(), json!({"roots": []}));
        assert!(peer.pending.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn peer_times_out_and_forgets() {
        let peer = ClientPeer::default();
        let (tx, _rx) = mpsc::channel(4);
        let e = peer.request(&tx, "roots/list", None, Duration::from_millis(10)).await.unwrap_err();
        assert_eq!(e.code, warden_protocol::error::REQUEST_TIMEOUT);
        assert!(peer.pending.lock().unwrap().is_empty());
    }
}
