//! Delivery of messages that belong to no request: list changes and resource updates, to legacy
//! sessions (on their stream) and to modern `subscriptions/listen` streams.
//!
//! Every delivery names an [`Audience`]: a change on a shared connection concerns everyone, a
//! change on a connection kept for one session or principal concerns only them.

use crate::catalogue::ListKind;
use crate::session::SessionStore;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use warden_policy::Principal;
use warden_protocol::{Message, meta};

/// Who may receive a message from a connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Audience {
    /// A shared connection: every client.
    All,
    /// A connection kept for one legacy session.
    Session(String),
    /// A connection kept for one principal's modern requests, by [`Principal::identity_key`].
    Principal(String),
}

/// What a `subscriptions/listen` stream asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenFilter {
    /// `toolsListChanged`
    pub tools: bool,
    /// `promptsListChanged`
    pub prompts: bool,
    /// `resourcesListChanged`
    pub resources: bool,
    /// `resourceSubscriptions`
    pub resource_uris: Vec<String>,
}

impl ListenFilter {
    /// Reads a filter; unknown members are ignored, wrong types refused.
    pub fn from_value(v: &Value) -> Result<Self, String> {
        let obj = v.as_object().ok_or("notifications must be an object")?;
        let flag = |k: &str| -> Result<bool, String> {
            match obj.get(k) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(format!("{k} must be a boolean")),
            }
        };
        let uris = match obj.get("resourceSubscriptions") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|u| u.as_str().map(str::to_owned).ok_or("resourceSubscriptions must be strings"))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("resourceSubscriptions must be an array".into()),
        };
        Ok(ListenFilter {
            tools: flag("toolsListChanged")?,
            prompts: flag("promptsListChanged")?,
            resources: flag("resourcesListChanged")?,
            resource_uris: uris,
        })
    }

    /// The filter as sent back in the acknowledgement.
    pub fn to_value(&self) -> Value {
        let mut v = json!({
            "toolsListChanged": self.tools,
            "promptsListChanged": self.prompts,
            "resourcesListChanged": self.resources,
        });
        if !self.resource_uris.is_empty() {
            v["resourceSubscriptions"] = json!(self.resource_uris);
        }
        v
    }

    fn wants(&self, kind: ListKind) -> bool {
        match kind {
            ListKind::Tools => self.tools,
            ListKind::Prompts => self.prompts,
            ListKind::Resources | ListKind::Templates => self.resources,
        }
    }
}

/// One open `subscriptions/listen` stream.
#[derive(Debug)]
pub struct Listener {
    /// Registry id.
    pub id: u64,
    /// Who opened it.
    pub principal: Arc<Principal>,
    /// What it honours.
    pub filter: ListenFilter,
    /// The listen request's id, stamped on every notification.
    pub subscription_id: Value,
    tx: mpsc::Sender<Message>,
}

impl Listener {
    /// Sends a notification on the stream, stamped with the subscription id.
    pub fn send(&self, method: &str, params: Option<Value>) -> bool {
        let mut params = params.unwrap_or_else(|| json!({}));
        if let Some(obj) = params.as_object_mut() {
            let m = obj.entry("_meta").or_insert_with(|| json!({}));
            if let Some(m) = m.as_object_mut() {
                m.insert(meta::SUBSCRIPTION_ID.into(), self.subscription_id.clone());
            }
        }
        self.tx.try_send(Message::notification(method, Some(params))).is_ok()
    }
}

/// The registry of everything that can receive unsolicited messages.
pub struct Hub {
    /// Legacy HTTP sessions.
    pub sessions: SessionStore,
    detached: Mutex<HashMap<String, Arc<crate::session::Session>>>,
    listeners: Mutex<HashMap<u64, Arc<Listener>>>,
    next: AtomicU64,
}

impl Hub {
    /// A hub over a session store.
    pub fn new(sessions: SessionStore) -> Self {
        Hub {
            sessions,
            detached: Mutex::new(HashMap::new()),
            listeners: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }

    /// Registers a session that lives outside the HTTP store (a stdio client).
    pub fn add_detached(&self, s: Arc<crate::session::Session>) {
        self.detached.lock().unwrap_or_else(|p| p.into_inner()).insert(s.id.clone(), s);
    }

    /// Forgets a detached session.
    pub fn remove_detached(&self, id: &str) {
        self.detached.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// A session by id, wherever it lives.
    pub fn session(&self, id: &str) -> Option<Arc<crate::session::Session>> {
        if let Some(s) = self.detached.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Some(s.clone());
        }
        self.sessions.all().into_iter().find(|s| s.id == id)
    }

    fn all_sessions(&self) -> Vec<Arc<crate::session::Session>> {
        let mut v = self.sessions.all();
        v.extend(self.detached.lock().unwrap_or_else(|p| p.into_inner()).values().cloned());
        v
    }

    /// A fresh listener id.
    pub fn next_listener_id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Opens a listener under an id from [`Hub::next_listener_id`].
    pub fn listen(
        &self,
        id: u64,
        principal: Arc<Principal>,
        filter: ListenFilter,
        subscription_id: Value,
        tx: mpsc::Sender<Message>,
    ) -> Arc<Listener> {
        let l = Arc::new(Listener { id, principal, filter, subscription_id, tx });
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).insert(id, l.clone());
        l
    }

    /// Closes a listener.
    pub fn unlisten(&self, id: u64) {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
    }

    fn listeners(&self) -> Vec<Arc<Listener>> {
        self.listeners.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Tells the audience a list changed.
    pub fn list_changed(&self, kind: ListKind, audience: &Audience) {
        let method = kind.changed_notification();
        for s in self.all_sessions() {
            let included = match audience {
                Audience::All => true,
                Audience::Session(id) => &s.id == id,
                Audience::Principal(_) => false,
            };
            if included {
                s.push(Message::notification(method, None));
            }
        }
        for l in self.listeners() {
            let included = match audience {
                Audience::All => true,
                Audience::Principal(key) => &l.principal.identity_key() == key,
                Audience::Session(_) => false,
            };
            if included && l.filter.wants(kind) {
                l.send(method, None);
            }
        }
    }

    /// Delivers `notifications/resources/updated` to the given subscribers.
    pub fn resource_updated(&self, uri: &str, subscribers: &HashSet<Subscriber>) {
        let params = json!({ "uri": uri });
        for sub in subscribers {
            match sub {
                Subscriber::Session(id) => {
                    if let Some(s) = self.session(id) {
                        s.push(Message::notification("notifications/resources/updated", Some(params.clone())));
                    }
                }
                Subscriber::Listener(id) => {
                    let l = self.listeners.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
                    if let Some(l) = l {
                        l.send("notifications/resources/updated", Some(params.clone()));
                    }
                }
            }
        }
    }
}

/// Who subscribed to a resource.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subscriber {
    /// A legacy session, by id.
    Session(String),
    /// A listen stream, by registry id.
    Listener(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_round_trips_and_refuses_bad_types() {
        let f =
            ListenFilter::from_value(&json!({"toolsListChanged": true, "resourceSubscriptions": ["a://b"], "x": 1}))
                .unwrap();
        assert!(f.tools && !f.prompts);
        assert_eq!(f.to_value()["resourceSubscriptions"], json!(["a://b"]));
        assert!(ListenFilter::from_value(&json!({"toolsListChanged": "yes"})).is_err());
        assert!(ListenFilter::from_value(&json!([])).is_err());
    }
}
