//! A credential Warden injects into its requests to a server (`credential`) is bound to that
//! server: what comes back through Warden — a result, an error, a notification, a request, a list
//! entry, the text inside a base64 payload — never carries it on to a client. Every string that
//! contains it, as the header value or as the bare secret, has it replaced, and the place is
//! recorded (`credential.echoed`, never the value). A reply tied to one server is searched for
//! that server's credential; one that is not (a list gathered from every server, an `initialize`
//! answer) for every server's. Tokens obtained per caller (token exchange) are searched for the
//! same way, every one Warden holds for the server.

use super::payload::{self, Decoded};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_upstream::Credential;

/// What replaces an echoed credential.
pub const MARK: &str = "[REDACTED:injected_credential]";

/// How long a server's credential is kept before it is read again (a rotated file is picked up).
const FRESH: Duration = Duration::from_secs(5);

/// Shorter secrets are not matched: they would match ordinary text.
const MIN_LEN: usize = 8;

/// When a server's credential was read, and its forms.
type Read = (Instant, Arc<Vec<String>>);

/// The credentials injected into each server's requests, read again every few seconds.
pub struct Injected {
    credentials: HashMap<String, Credential>,
    /// Per server: credentials its `env` or `headers` take from Warden's environment or a file.
    referenced: HashMap<String, Vec<String>>,
    read: Mutex<HashMap<String, Read>>,
    per_caller: Option<Arc<crate::credentials::Credentials>>,
}

impl Injected {
    /// For the servers with a fixed `credential`, by name, and the tokens `per_caller` holds.
    pub fn new(credentials: HashMap<String, Credential>, per_caller: Arc<crate::credentials::Credentials>) -> Injected {
        Injected {
            credentials,
            referenced: HashMap::new(),
            read: Mutex::default(),
            per_caller: Some(per_caller).filter(|c| c.any()),
        }
    }

    /// For the servers with a fixed `credential` only.
    pub fn fixed(credentials: HashMap<String, Credential>) -> Injected {
        Injected { credentials, referenced: HashMap::new(), read: Mutex::default(), per_caller: None }
    }

    /// Also searches for the credentials servers' `env` and `headers` take from Warden's
    /// environment or a file ([`referenced_of_config`]), by server.
    pub fn with_referenced(mut self, referenced: HashMap<String, Vec<String>>) -> Injected {
        self.referenced = referenced;
        self
    }

    /// The forms of the credential injected into `server`'s requests: the header value and the
    /// bare secret; empty when it has none.
    fn secrets_of(&self, server: &str) -> Arc<Vec<String>> {
        let Some(c) = self.credentials.get(server) else { return Arc::default() };
        let now = Instant::now();
        let mut cache = self.read.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, s)) = cache.get(server)
            && now.duration_since(*at) < FRESH
        {
            return s.clone();
        }
        let mut forms: Vec<String> = vec![];
        let Ok(header) = c.value() else {
            // Unreadable now (a file being rotated): a connection may still hold the value read
            // before, so the forms known are kept.
            return cache.get(server).map(|(_, s)| s.clone()).unwrap_or_default();
        };
        if let Some(scheme) = &c.scheme
            && let Some(bare) = header.strip_prefix(&format!("{scheme} "))
        {
            forms.push(bare.to_owned());
        }
        forms.push(header);
        forms.retain(|f| f.len() >= MIN_LEN);
        // After a rotation, connections opened before still send the old value: keep it too.
        if let Some((_, before)) = cache.get(server) {
            for old in before.iter().take(2) {
                if !forms.contains(old) && forms.len() < 4 {
                    forms.push(old.clone());
                }
            }
        }
        let forms = Arc::new(forms);
        cache.insert(server.to_owned(), (now, forms.clone()));
        forms
    }

    /// The forms to search for: `server`'s, or every server's when the reply is not one server's;
    /// longest first, so a header value is replaced whole.
    fn secrets(&self, server: Option<&str>) -> Vec<String> {
        if self.credentials.is_empty() && self.per_caller.is_none() && self.referenced.is_empty() {
            return vec![];
        }
        let mut all: Vec<String> = match server {
            Some(s) => self.secrets_of(s).to_vec(),
            None => self.credentials.keys().flat_map(|s| self.secrets_of(s).to_vec()).collect(),
        };
        match server {
            Some(s) => all.extend(self.referenced.get(s).into_iter().flatten().cloned()),
            None => all.extend(self.referenced.values().flatten().cloned()),
        }
        if let Some(c) = &self.per_caller {
            all.extend(c.held_secrets(server).into_iter().filter(|f| f.len() >= MIN_LEN));
        }
        all.sort_by_key(|f| std::cmp::Reverse(f.len()));
        all.dedup();
        all
    }

    /// Replaces the credential wherever it appears in `value`; returns a finding for each place.
    pub fn redact(&self, server: Option<&str>, value: &mut Value) -> Vec<Value> {
        let secrets = self.secrets(server);
        let mut found = vec![];
        if !secrets.is_empty() {
            walk(value, &mut String::new(), &secrets, &mut found);
        }
        found
    }

    /// The same for one text (an error's message); whether it was changed.
    pub fn redact_text(&self, server: Option<&str>, text: &mut String) -> bool {
        let secrets = self.secrets(server);
        !secrets.is_empty() && replace(text, &secrets)
    }
}

fn replace(text: &mut String, secrets: &[String]) -> bool {
    if !secrets.iter().any(|s| text.contains(s.as_str())) {
        return false;
    }
    for s in secrets {
        *text = text.replace(s.as_str(), MARK);
    }
    true
}

fn walk(value: &mut Value, pointer: &mut String, secrets: &[String], found: &mut Vec<Value>) {
    match value {
        Value::String(s) => {
            let echoed = replace(s, secrets);
            if echoed {
                found.push(json!({ "rule": "credential.echoed", "at": pointer.clone() }));
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push_str(&format!("/{i}"));
                walk(v, pointer, secrets, found);
                pointer.truncate(len);
            }
        }
        Value::Object(members) => {
            let payloads: Vec<String> = members.keys().filter(|k| payload::is_payload(members, k)).cloned().collect();
            for (k, v) in members.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                if payloads.contains(k) {
                    in_payload(v, pointer, secrets, found);
                } else {
                    walk(v, pointer, secrets, found);
                }
                pointer.truncate(len);
            }
        }
        _ => {}
    }
}

/// A base64 payload: searched as it stands and, when it decodes to text, inside, where a
/// credential is replaced and the text encoded again.
fn in_payload(value: &mut Value, pointer: &str, secrets: &[String], found: &mut Vec<Value>) {
    let Value::String(encoded) = value else { return };
    if replace(encoded, secrets) {
        found.push(json!({ "rule": "credential.echoed", "at": pointer }));
        return;
    }
    if let Decoded::Text(mut text) = payload::decode(encoded)
        && replace(&mut text, secrets)
    {
        *encoded = payload::encode(&text);
        found.push(json!({ "rule": "credential.echoed", "at": pointer }));
    }
}

/// Reviews each list as it is fetched, before `next` (the integrity guard) does: an item quoting
/// an injected credential has it replaced first, so it is never pinned, stored or compared as
/// drift, and the place is audited.
pub struct BeforeReview {
    /// The credentials searched for.
    pub injected: Arc<Injected>,
    /// The review that follows.
    pub next: Arc<dyn crate::servers::ListReview>,
    /// Where the replacement is recorded.
    pub auditor: Arc<crate::guard::audit::Auditor>,
}

#[async_trait::async_trait]
impl crate::servers::ListReview for BeforeReview {
    async fn review(&self, server: &str, kind: crate::catalogue::ListKind, mut items: Vec<Value>) -> Vec<Value> {
        for item in &mut items {
            let found = self.injected.redact(Some(server), item);
            if found.is_empty() {
                continue;
            }
            let name = item.get("name").or_else(|| item.get("uri")).and_then(Value::as_str).unwrap_or("?").to_owned();
            tracing::warn!(server = %server, item = %name, "a listed item quoted an injected credential: replaced");
            let reason = "the server's list quoted the credential Warden sends it; replaced before review";
            let what = format!("{kind:?}").to_lowercase();
            self.auditor
                .integrity_event("credential_echoed", server, &what, &name, reason, Some(Value::Array(found)))
                .await;
        }
        self.next.review(server, kind, items).await
    }
}

/// The credentials of `servers`' configurations, for [`Injected::new`].
pub fn of_config(config: &crate::config::Config) -> HashMap<String, Credential> {
    config
        .servers
        .iter()
        .filter(|(_, s)| s.url.is_some())
        .filter_map(|(name, s)| {
            Some((name.clone(), crate::servers::credential_of(s.credential.as_ref()?, &config.base_dir)?))
        })
        .collect()
}

/// Per server, the credentials its `env` and `headers` take from Warden's environment or a file
/// (`{ env = "VAR" }`, `{ file = "path" }`): values that look like credentials by their name or
/// form, read now. Values written into the configuration, or settings that are not credentials
/// (a path, a log level), are not searched for.
pub fn referenced_of_config(config: &crate::config::Config) -> HashMap<String, Vec<String>> {
    let scanner = warden_inspect::SecretScanner::new();
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for (name, s) in &config.servers {
        for (key, value) in s.env.iter().chain(&s.headers) {
            if value.literal().is_some() {
                continue;
            }
            let Ok(v) = value.resolve(&config.base_dir) else { continue };
            let v = v.strip_prefix("Bearer ").unwrap_or(&v).trim().to_owned();
            if v.len() >= MIN_LEN && crate::servers::entry::credential_kind(&scanner, key, &v).is_some() {
                out.entry(name.clone()).or_default().push(v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_is_searched_and_the_place_named() {
        let secrets = vec!["Bearer s3cret-value".to_owned(), "s3cret-value".to_owned()];
        let mut v = json!({ "content": [{ "type": "text", "text": "you sent Bearer s3cret-value" }],
                            "structuredContent": { "a/b": ["x s3cret-value y"] }, "n": 1 });
        let mut found = vec![];
        walk(&mut v, &mut String::new(), &secrets, &mut found);
        assert_eq!(v["content"][0]["text"], format!("you sent {MARK}"));
        let blob = payload::encode("config: s3cret-value");
        let mut r = json!({ "contents": [{ "uri": "x://a", "mimeType": "text/plain", "blob": blob }] });
        let mut in_blob = vec![];
        walk(&mut r, &mut String::new(), &secrets, &mut in_blob);
        let Decoded::Text(t) = payload::decode(r["contents"][0]["blob"].as_str().unwrap()) else { panic!("{r}") };
        assert_eq!(t, format!("config: {MARK}"));
        assert_eq!(in_blob, vec![json!({ "rule": "credential.echoed", "at": "/contents/0/blob" })]);
        assert_eq!(v["structuredContent"]["a/b"][0], format!("x {MARK} y"));
        assert_eq!(found.len(), 2);
        assert!(found.iter().any(|f| f["at"] == "/structuredContent/a~1b/0"), "{found:?}");
        assert!(!v.to_string().contains("s3cret"));
    }
}
