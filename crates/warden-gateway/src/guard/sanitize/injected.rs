//! A credential Warden injects into its requests to a server (`credential`) is bound to that
//! server: what the server sends back — a result, an error, a notification or a request — never
//! carries it on to a client. Every string that contains it, as the header value or as the bare
//! secret, has it replaced, and the place is recorded (`credential.echoed`, never the value).

use crate::servers::ServerInfo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_upstream::TransportSpec;

/// What replaces an echoed credential.
pub const MARK: &str = "[REDACTED:injected_credential]";

/// How long a server's credential is kept before it is read again (a rotated file is picked up).
const FRESH: Duration = Duration::from_secs(5);

/// Shorter secrets are not matched: they would match ordinary text.
const MIN_LEN: usize = 8;

/// When a server's credential was read, and its forms.
type Read = (Instant, Arc<Vec<String>>);

/// The credentials injected into each server's requests, read again every few seconds.
#[derive(Default)]
pub struct Injected(Mutex<HashMap<String, Read>>);

impl Injected {
    /// The forms of the credential injected into `server`'s requests: the header value and the
    /// bare secret, longest first; empty when it has none.
    fn secrets(&self, server: &ServerInfo) -> Arc<Vec<String>> {
        let TransportSpec::Http { credential: Some(c), .. } = &server.spec.transport else {
            return Arc::default();
        };
        let now = Instant::now();
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, s)) = cache.get(&server.name)
            && now.duration_since(*at) < FRESH
        {
            return s.clone();
        }
        let mut forms: Vec<String> = vec![];
        if let Ok(header) = c.value() {
            if let Some(scheme) = &c.scheme
                && let Some(bare) = header.strip_prefix(&format!("{scheme} "))
            {
                forms.push(bare.to_owned());
            }
            forms.push(header);
        }
        forms.retain(|f| f.len() >= MIN_LEN);
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        let forms = Arc::new(forms);
        cache.insert(server.name.clone(), (now, forms.clone()));
        forms
    }

    /// Replaces `server`'s credential wherever it appears in `value`'s strings; returns a finding
    /// for each string changed.
    pub fn redact(&self, server: &ServerInfo, value: &mut Value) -> Vec<Value> {
        let secrets = self.secrets(server);
        let mut found = vec![];
        if !secrets.is_empty() {
            walk(value, &mut String::new(), &secrets, &mut found);
        }
        found
    }

    /// The same for one text (an error's message); whether it was changed.
    pub fn redact_text(&self, server: &ServerInfo, text: &mut String) -> bool {
        let secrets = self.secrets(server);
        replace(text, &secrets)
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
            for (k, v) in members.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                walk(v, pointer, secrets, found);
                pointer.truncate(len);
            }
        }
        _ => {}
    }
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
        assert_eq!(v["structuredContent"]["a/b"][0], format!("x {MARK} y"));
        assert_eq!(found.len(), 2);
        assert!(found.iter().any(|f| f["at"] == "/structuredContent/a~1b/0"), "{found:?}");
        assert!(!v.to_string().contains("s3cret"));
    }
}
