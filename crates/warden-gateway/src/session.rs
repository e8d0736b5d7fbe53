//! Legacy sessions: what a 2025-era client established with `initialize`.
//!
//! A session id is 256 bits from the operating system's CSPRNG, so it cannot be guessed, but it is
//! still only a handle: it never authenticates. Every request presenting it must come from the
//! principal that created it; any other principal is told the session does not exist.
//!
//! With `[state] redis`, a session is also recorded there ([`crate::state::SessionRecord`]): a
//! gateway handed a session it does not hold adopts it for the same caller, so a load balancer
//! needs no stickiness. A session idle here is let go here only; one its client ends, or that
//! expired everywhere, is gone everywhere.

use crate::clock::Clock;
use crate::peer::ClientPeer;
use crate::state::{SessionRecord, SharedState, owner_of, session_hash};
use rand::TryRngCore;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_policy::Principal;
use warden_protocol::{IdKey, Message, ProtocolVersion};

/// One legacy session.
#[derive(Debug)]
pub struct Session {
    /// The session id sent in `Mcp-Session-Id`.
    pub id: String,
    /// The caller that created it.
    pub principal: Arc<Principal>,
    /// The negotiated protocol version.
    pub version: ProtocolVersion,
    /// The client's declared capabilities.
    pub capabilities: Arc<Value>,
    /// The client's self-reported identity.
    pub client_info: Arc<Value>,
    /// Requests the gateway sends this client, awaiting answers.
    pub peer: Arc<ClientPeer>,
    /// Fired when the session ends.
    pub closed: CancellationToken,
    stream: Mutex<Option<mpsc::Sender<Message>>>,
    last_seen: Mutex<Instant>,
    log_level: Mutex<Option<String>>,
    inflight: Mutex<HashMap<IdKey, CancellationToken>>,
    subscriptions: Mutex<HashSet<String>>,
    initialized: AtomicBool,
    /// When the shared record's idle time was last restarted.
    kept_at: Mutex<Instant>,
    /// Whether the shared state holds the session's record (it could not be written while the
    /// shared state was away; it is written when it returns).
    recorded: AtomicBool,
}

/// Why a session could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Unknown, expired, ended, or belonging to another principal.
    NotFound,
    /// The store is full.
    Full,
    /// The shared state that holds sessions cannot be reached.
    Unavailable,
}

impl Session {
    /// A session not kept in any store (stdio clients).
    pub fn detached(
        principal: Arc<Principal>,
        version: ProtocolVersion,
        capabilities: Value,
        client_info: Value,
    ) -> Arc<Session> {
        Arc::new(Session::new(new_session_id(), principal, version, capabilities, client_info, Instant::now()))
    }

    fn new(
        id: String,
        principal: Arc<Principal>,
        version: ProtocolVersion,
        capabilities: Value,
        client_info: Value,
        now: Instant,
    ) -> Self {
        Session {
            id,
            principal,
            version,
            capabilities: Arc::new(capabilities),
            client_info: Arc::new(client_info),
            peer: Arc::new(ClientPeer::default()),
            closed: CancellationToken::new(),
            stream: Mutex::new(None),
            last_seen: Mutex::new(now),
            log_level: Mutex::new(None),
            inflight: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashSet::new()),
            initialized: AtomicBool::new(false),
            kept_at: Mutex::new(now),
            recorded: AtomicBool::new(false),
        }
    }

    /// Sends an unsolicited message on the session's stream, if one is open. Returns whether it was queued.
    pub fn push(&self, msg: Message) -> bool {
        let tx = self.stream.lock().unwrap_or_else(|p| p.into_inner()).clone();
        tx.is_some_and(|tx| tx.try_send(msg).is_ok())
    }

    /// The sender for the session's stream, if one is open.
    pub fn stream(&self) -> Option<mpsc::Sender<Message>> {
        self.stream.lock().unwrap_or_else(|p| p.into_inner()).clone().filter(|tx| !tx.is_closed())
    }

    /// Opens the session's stream. Fails if one is already open.
    pub fn attach_stream(&self, tx: mpsc::Sender<Message>) -> bool {
        let mut slot = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|t| !t.is_closed()) {
            return false;
        }
        *slot = Some(tx);
        true
    }

    /// Marks the session as used now.
    pub fn touch(&self, now: Instant) {
        *self.last_seen.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }

    fn idle(&self, now: Instant) -> Duration {
        let open_stream = self.stream().is_some();
        let busy = !self.inflight.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
        if open_stream || busy {
            return Duration::ZERO;
        }
        now.saturating_duration_since(*self.last_seen.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The log level the client set with `logging/setLevel`.
    pub fn log_level(&self) -> Option<String> {
        self.log_level.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Records the client's log level.
    pub fn set_log_level(&self, level: &str) {
        *self.log_level.lock().unwrap_or_else(|p| p.into_inner()) = Some(level.to_owned());
    }

    /// Records a request in flight. `None` when a request with the same id is already in flight.
    pub fn begin(&self, id: IdKey) -> Option<CancellationToken> {
        let mut map = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(&id) {
            return None;
        }
        let token = self.closed.child_token();
        map.insert(id, token.clone());
        Some(token)
    }

    /// Forgets a finished request.
    pub fn end(&self, id: &IdKey) {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Cancels a request in flight (`notifications/cancelled` from the client).
    pub fn cancel(&self, id: &IdKey) -> bool {
        match self.inflight.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    /// Records a resource subscription; false if already subscribed.
    pub fn subscribe(&self, uri: &str) -> bool {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner()).insert(uri.to_owned())
    }

    /// Removes a resource subscription; false if not subscribed.
    pub fn unsubscribe(&self, uri: &str) -> bool {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner()).remove(uri)
    }

    /// The resource subscriptions.
    pub fn subscriptions(&self) -> Vec<String> {
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// Marks `notifications/initialized` as received.
    pub fn mark_initialized(&self) {
        self.initialized.store(true, Ordering::Relaxed);
    }

    /// Ends the session: cancels everything in flight and closes its stream.
    pub fn close(&self) {
        self.closed.cancel();
        self.stream.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// Writes a session's record to the shared state (logged when it cannot be).
async fn record(shared: &SharedState, s: &Session, ttl: Duration, now: Instant) {
    let record = SessionRecord {
        owner: owner_of(&s.principal),
        version: s.version.as_str().to_owned(),
        capabilities: (*s.capabilities).clone(),
        client_info: (*s.client_info).clone(),
    };
    match shared.share_session(&s.id, &record, ttl).await {
        Ok(()) => s.recorded.store(true, Ordering::Relaxed),
        Err(e) => tracing::warn!("{e}: a session is known to this gateway only, until it returns"),
    }
    *s.kept_at.lock().unwrap_or_else(|p| p.into_inner()) = now;
}

/// A 256-bit session id from the operating system's CSPRNG, hex encoded.
pub fn new_session_id() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes).expect("the operating system's random number generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// All live legacy HTTP sessions.
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    max: usize,
    idle_timeout: Duration,
    clock: Arc<dyn Clock>,
    shared: Option<Arc<SharedState>>,
    /// Sessions found ended elsewhere, whose connections here are still to be released.
    gone: Mutex<Vec<Arc<Session>>>,
}

impl SessionStore {
    /// A store holding at most `max` sessions, ending those idle for `idle_timeout`.
    pub fn new(max: usize, idle_timeout: Duration, clock: Arc<dyn Clock>) -> Self {
        SessionStore {
            sessions: Mutex::new(HashMap::new()),
            max,
            idle_timeout,
            clock,
            shared: None,
            gone: Mutex::new(Vec::new()),
        }
    }

    /// The same store, its sessions recorded in `shared` for every gateway.
    pub fn shared(mut self, shared: Option<Arc<SharedState>>) -> Self {
        self.shared = shared;
        self
    }

    /// Whether sessions outlive this gateway (they are recorded in the shared state).
    pub fn are_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Creates a session.
    pub fn create(
        &self,
        principal: Arc<Principal>,
        version: ProtocolVersion,
        capabilities: Value,
        client_info: Value,
    ) -> Result<Arc<Session>, SessionError> {
        let s = Session::new(new_session_id(), principal, version, capabilities, client_info, self.clock.now());
        self.insert(s)
    }

    fn insert(&self, s: Session) -> Result<Arc<Session>, SessionError> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max {
            return Err(SessionError::Full);
        }
        let s = Arc::new(s);
        map.insert(s.id.clone(), s.clone());
        Ok(s)
    }

    /// Creates a session and, with shared state, records it for every gateway. With the shared
    /// state away the session is this gateway's alone until it returns (other gateways answer
    /// "not found" and the client opens a new session there: nothing is allowed that would not be).
    pub async fn open(
        &self,
        principal: Arc<Principal>,
        version: ProtocolVersion,
        capabilities: Value,
        client_info: Value,
    ) -> Result<Arc<Session>, SessionError> {
        let s = self.create(principal, version, capabilities, client_info)?;
        if let Some(shared) = &self.shared {
            record(shared, &s, self.idle_timeout, self.clock.now()).await;
        }
        Ok(s)
    }

    /// Finds a session for `principal`: one this gateway holds or, with shared state, one another
    /// gateway opened, adopted here. Another principal's session is reported as not found, so
    /// that session ids cannot be probed.
    pub async fn find(&self, id: &str, principal: &Arc<Principal>) -> Result<Arc<Session>, SessionError> {
        let Some(shared) = &self.shared else { return self.get(id, principal) };
        let held = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).contains_key(id);
        if held {
            let s = self.get(id, principal)?;
            let now = self.clock.now();
            let due = self.keep_due(&s, now);
            if due && !self.keep(shared, &s, now).await {
                return Err(SessionError::NotFound);
            }
            return Ok(s);
        }
        let record = match shared.find_session(id).await {
            Ok(Some(r)) => r,
            Ok(None) => return Err(SessionError::NotFound),
            Err(e) => {
                tracing::error!("{e}: a session this gateway does not hold cannot be looked up");
                return Err(SessionError::Unavailable);
            }
        };
        if record.owner != owner_of(principal) {
            tracing::warn!(session = %&id[..8.min(id.len())], presented_by = %principal.subject, "a session id was presented by a principal that does not own it");
            return Err(SessionError::NotFound);
        }
        let version = ProtocolVersion::parse(&record.version).ok_or(SessionError::NotFound)?;
        let now = self.clock.now();
        let s = Session::new(id.to_owned(), principal.clone(), version, record.capabilities, record.client_info, now);
        s.mark_initialized();
        s.recorded.store(true, Ordering::Relaxed);
        let s = self.insert(s)?;
        tracing::info!(session = %&id[..8.min(id.len())], "session adopted from another gateway");
        Ok(s)
    }

    /// Whether the shared record's idle time is due to be restarted (an eighth of it has passed).
    fn keep_due(&self, s: &Session, now: Instant) -> bool {
        now.saturating_duration_since(*s.kept_at.lock().unwrap_or_else(|p| p.into_inner())) > self.idle_timeout / 8
    }

    /// Restarts the shared record's idle time (writing it, if it never was): false when the
    /// session ended or expired everywhere else, and it is let go here too.
    async fn keep(&self, shared: &SharedState, s: &Arc<Session>, now: Instant) -> bool {
        if !s.recorded.load(Ordering::Relaxed) {
            record(shared, s, self.idle_timeout, now).await;
            return true;
        }
        match shared.keep_session(&s.id, self.idle_timeout).await {
            Ok(true) => *s.kept_at.lock().unwrap_or_else(|p| p.into_inner()) = now,
            Ok(false) => {
                tracing::info!(session = %&s.id[..8.min(s.id.len())], "session ended on another gateway");
                if let Some(gone) = self.remove(&s.id) {
                    self.gone.lock().unwrap_or_else(|p| p.into_inner()).push(gone);
                }
                return false;
            }
            // This gateway knows the session and its caller; it goes on serving it.
            Err(e) => tracing::warn!("{e}: the session's idle time was not restarted"),
        }
        true
    }

    /// Keeps the shared records of sessions busy here without requests (an open event stream, a
    /// long call) from expiring, and returns the sessions found ended elsewhere since the last
    /// look, for their connections to be released.
    pub async fn keep_busy(&self) -> Vec<Arc<Session>> {
        if let Some(shared) = &self.shared {
            let now = self.clock.now();
            for s in self.all() {
                let due = self.keep_due(&s, now);
                if due && s.idle(now).is_zero() {
                    self.keep(shared, &s, now).await;
                }
            }
        }
        std::mem::take(&mut *self.gone.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Finds a session this gateway holds for `principal` (see [`SessionStore::find`]).
    pub fn get(&self, id: &str, principal: &Principal) -> Result<Arc<Session>, SessionError> {
        let s =
            self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned().ok_or(SessionError::NotFound)?;
        if !s.principal.same_caller(principal) {
            tracing::warn!(session = %&id[..8.min(id.len())], presented_by = %principal.subject, "a session id was presented by a principal that does not own it");
            return Err(SessionError::NotFound);
        }
        if s.closed.is_cancelled() || s.idle(self.clock.now()) > self.idle_timeout {
            return Err(SessionError::NotFound);
        }
        s.touch(self.clock.now());
        Ok(s)
    }

    /// Ends a session its client ended: here, and with shared state on every gateway. With the
    /// shared state away it is not ended anywhere (`Unavailable`: the client asks again), since
    /// other gateways would go on serving it.
    pub async fn end(&self, id: &str) -> Result<Option<Arc<Session>>, SessionError> {
        if let Some(shared) = &self.shared
            && let Err(e) = shared.end_session(id).await
        {
            tracing::warn!("{e}: a session its client ended was not ended");
            return Err(SessionError::Unavailable);
        }
        Ok(self.remove(id))
    }

    /// The session named by `hash` ([`crate::state::session_hash`]), if this gateway holds it.
    pub fn by_hash(&self, hash: &str) -> Option<Arc<Session>> {
        let map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.values().find(|s| session_hash(&s.id) == hash).cloned()
    }

    /// Ends and removes a session (here).
    pub fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        if let Some(s) = &s {
            s.close();
        }
        s
    }

    /// Ends and removes idle sessions, returning them.
    pub fn reap(&self) -> Vec<Arc<Session>> {
        let now = self.clock.now();
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let expired: Vec<String> = map
            .iter()
            .filter(|(_, s)| s.closed.is_cancelled() || s.idle(now) > self.idle_timeout)
            .map(|(k, _)| k.clone())
            .collect();
        expired.into_iter().filter_map(|k| map.remove(&k)).inspect(|s| s.close()).collect()
    }

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use serde_json::json;
    use warden_policy::PrincipalClass;

    fn store(clock: Arc<ManualClock>) -> SessionStore {
        SessionStore::new(2, Duration::from_secs(60), clock)
    }

    fn alice() -> Arc<Principal> {
        Arc::new(Principal::new("alice", PrincipalClass::User))
    }

    #[test]
    fn ids_are_long_random_and_distinct() {
        let a = new_session_id();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_session_id());
    }

    #[test]
    fn a_session_is_refused_to_another_principal() {
        let s = store(Arc::new(ManualClock::default()));
        let sess = s.create(alice(), ProtocolVersion::V2025_11_25, json!({}), json!({})).unwrap();
        assert!(s.get(&sess.id, &alice()).is_ok());
        let mallory = Principal::new("mallory", PrincipalClass::User);
        assert_eq!(s.get(&sess.id, &mallory).unwrap_err(), SessionError::NotFound);
        let admin_alice = Principal::new("alice", PrincipalClass::Admin);
        assert_eq!(s.get(&sess.id, &admin_alice).unwrap_err(), SessionError::NotFound);
    }

    #[test]
    fn idle_sessions_expire_and_store_is_bounded() {
        let clock = Arc::new(ManualClock::default());
        let s = store(clock.clone());
        let a = s.create(alice(), ProtocolVersion::V2025_11_25, json!({}), json!({})).unwrap();
        s.create(alice(), ProtocolVersion::V2025_11_25, json!({}), json!({})).unwrap();
        assert_eq!(
            s.create(alice(), ProtocolVersion::V2025_11_25, json!({}), json!({})).unwrap_err(),
            SessionError::Full
        );
        clock.advance(Duration::from_secs(61));
        assert_eq!(s.get(&a.id, &alice()).unwrap_err(), SessionError::NotFound);
        assert_eq!(s.reap().len(), 2);
        assert!(s.is_empty());
        assert!(a.closed.is_cancelled());
    }

    #[test]
    fn a_session_with_an_open_stream_or_a_call_in_flight_is_not_idle() {
        let clock = Arc::new(ManualClock::default());
        let s = store(clock.clone());
        let a = s.create(alice(), ProtocolVersion::V2025_11_25, json!({}), json!({})).unwrap();
        let (tx, _rx) = mpsc::channel(1);
        assert!(a.attach_stream(tx.clone()));
        assert!(!a.attach_stream(tx), "one stream at a time");
        clock.advance(Duration::from_secs(600));
        assert!(s.reap().is_empty());
    }

    #[tokio::test]
    async fn a_shared_session_busy_without_requests_is_kept_everywhere() {
        let section = crate::config::StateSection {
            redis: Some("redis://127.0.0.1:6379".into()),
            prefix: format!("warden-test-{}", rand::random::<u64>()),
            ..Default::default()
        };
        let shared = Arc::new(SharedState::from_config(&section).unwrap().unwrap());
        let clock = Arc::new(ManualClock::default());
        let store = SessionStore::new(4, Duration::from_millis(800), clock.clone()).shared(Some(shared.clone()));
        let s = store.open(alice(), ProtocolVersion::V2025_11_25, json!({}), json!({})).await.unwrap();
        let (tx, _rx) = mpsc::channel(1);
        assert!(s.attach_stream(tx), "an event stream is open, and no request comes");
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            clock.advance(Duration::from_millis(300));
            assert!(store.keep_busy().await.is_empty());
        }
        assert!(shared.find_session(&s.id).await.unwrap().is_some(), "kept past its idle time");
        // Ended elsewhere: let go here, for its connections to be released.
        shared.end_session(&s.id).await.unwrap();
        clock.advance(Duration::from_millis(300));
        let gone = store.keep_busy().await;
        assert_eq!(gone.len(), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn duplicate_ids_in_flight_are_refused() {
        let sess = Session::detached(alice(), ProtocolVersion::V2025_11_25, json!({}), json!({}));
        let t = sess.begin(IdKey::Num(1)).unwrap();
        assert!(sess.begin(IdKey::Num(1)).is_none());
        assert!(sess.cancel(&IdKey::Num(1)));
        assert!(t.is_cancelled());
        sess.end(&IdKey::Num(1));
        assert!(sess.begin(IdKey::Num(1)).is_some());
    }
}
