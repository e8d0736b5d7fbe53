//! Console sessions: an opaque cookie naming a session kept in this process, and the checks
//! every request makes (the session) and every state change makes (CSRF token, JSON, same
//! origin).

use super::{Console, Refusal};
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use warden_policy::{Principal, PrincipalClass};

/// Most sessions kept at once; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

/// The CSRF header a state change carries.
pub const CSRF_HEADER: &str = "x-warden-csrf";

/// A signed-in operator.
#[derive(Clone)]
pub struct Operator {
    pub principal: Arc<Principal>,
    /// The session's CSRF token.
    pub csrf: String,
    /// `oidc` or `api_key`.
    pub via: &'static str,
    pub expires_at: DateTime<Utc>,
    expires: Instant,
}

/// The sessions of this console, by the SHA-256 of their cookie.
pub struct Sessions {
    by_hash: Mutex<HashMap<[u8; 32], Operator>>,
    lifetime: Duration,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    pub fn new(lifetime: Duration) -> Sessions {
        Sessions { by_hash: Mutex::new(HashMap::new()), lifetime }
    }

    /// A new session for `principal`: its cookie value and the session.
    pub fn open(&self, principal: Arc<Principal>, via: &'static str) -> (String, Operator) {
        let token = crate::credentials::oauth::random_token();
        let operator = Operator {
            principal,
            csrf: crate::credentials::oauth::random_token(),
            via,
            expires_at: Utc::now() + self.lifetime,
            expires: Instant::now() + self.lifetime,
        };
        let mut all = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|_, o| o.expires > Instant::now());
        if all.len() >= MAX_SESSIONS
            && let Some(oldest) = all.iter().min_by_key(|(_, o)| o.expires).map(|(k, _)| *k)
        {
            all.remove(&oldest);
        }
        all.insert(digest(&token), operator.clone());
        (token, operator)
    }

    /// The session a cookie value names, while it lasts.
    pub fn get(&self, token: &str) -> Option<Operator> {
        let mut all = self.by_hash.lock().unwrap_or_else(|p| p.into_inner());
        let key = digest(token);
        match all.get(&key) {
            Some(o) if o.expires > Instant::now() => Some(o.clone()),
            Some(_) => {
                all.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn close(&self, token: &str) {
        self.by_hash.lock().unwrap_or_else(|p| p.into_inner()).remove(&digest(token));
    }
}

/// The value of cookie `name` in a request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

impl Console {
    /// The session cookie's name: `__Host-` bound to this origin on https.
    pub(super) fn cookie_name(&self) -> &'static str {
        if self.secure { "__Host-warden-console" } else { "warden-console" }
    }

    /// The `Set-Cookie` value carrying a session token (or clearing it, with `None`).
    pub(super) fn session_cookie(&self, token: Option<&str>) -> String {
        let (value, age) = match token {
            Some(t) => (t, self.sessions.lifetime.as_secs()),
            None => ("", 0),
        };
        let (path, secure) = if self.secure { ("/", "; Secure") } else { ("/console", "") };
        format!("{}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={age}{secure}", self.cookie_name())
    }

    /// The operator a read request comes from, or the response refusing it.
    pub(super) fn reader(&self, headers: &HeaderMap) -> Result<Operator, Refusal> {
        self.check_host(headers)?;
        // The API answers the console's own page: not a page on another site, nor one on the
        // same site (another port, a sibling host) that the cookie would also reach.
        if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes() != b"same-origin") {
            return Err(Refusal(StatusCode::FORBIDDEN, "the console's API answers the console's own page".into()));
        }
        let token = cookie(headers, self.cookie_name())
            .ok_or_else(|| Refusal(StatusCode::UNAUTHORIZED, "sign in to use the console".into()))?;
        let operator = self
            .sessions
            .get(&token)
            .ok_or_else(|| Refusal(StatusCode::UNAUTHORIZED, "the session has ended: sign in again".into()))?;
        if operator.principal.class != PrincipalClass::Admin {
            return Err(Refusal(StatusCode::FORBIDDEN, "only admin principals may use the console".into()));
        }
        Ok(operator)
    }

    /// The operator a state change comes from: a session, from this origin, with its CSRF token
    /// and a JSON body; or the response refusing it.
    pub(super) fn writer(&self, headers: &HeaderMap) -> Result<Operator, Refusal> {
        self.same_origin(headers)?;
        let operator = self.reader(headers)?;
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        // Compared as digests: the time a comparison takes says nothing about the token.
        if digest(sent) != digest(&operator.csrf) || sent.is_empty() {
            return Err(Refusal(StatusCode::FORBIDDEN, "the request lacks the console's CSRF token".into()));
        }
        Ok(operator)
    }

    /// A state change must come from the console's own pages: a JSON body (a cross-site form
    /// cannot send one without a preflight), and neither `Origin` nor `Sec-Fetch-Site` saying
    /// another site sent it.
    pub(super) fn same_origin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        self.check_host(headers)?;
        let refuse = |why: &str| Err(Refusal(StatusCode::FORBIDDEN, why.into()));
        // The page's origin is the console's under any name it answers to (127.0.0.1 or
        // localhost on a loopback listener).
        if let Some(origin) = headers.get(header::ORIGIN) {
            let scheme = if self.secure { "https://" } else { "http://" };
            let sent = origin.to_str().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).unwrap_or_default();
            let ours = sent.strip_prefix(scheme).is_some_and(|host| self.hosts.iter().any(|h| h == host));
            if !ours {
                return refuse("a request from another origin is refused");
            }
        }
        if let Some(site) = headers.get("sec-fetch-site")
            && site.as_bytes() != b"same-origin"
        {
            return refuse("a request from another site is refused");
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
        if !json {
            return Err(Refusal(StatusCode::UNSUPPORTED_MEDIA_TYPE, "a state change needs a JSON body".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_and_are_found_only_by_their_token() {
        let s = Sessions::new(Duration::from_millis(50));
        let (token, op) = s.open(Arc::new(Principal::new("alice", PrincipalClass::Admin)), "api_key");
        assert_eq!(s.get(&token).unwrap().csrf, op.csrf);
        assert!(s.get("another").is_none());
        assert!(s.get(&op.csrf).is_none(), "the CSRF token is not a session token");
        std::thread::sleep(Duration::from_millis(60));
        assert!(s.get(&token).is_none(), "an expired session is gone");
        let (token, _) = s.open(Arc::new(Principal::new("bob", PrincipalClass::Admin)), "oidc");
        s.close(&token);
        assert!(s.get(&token).is_none());
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "xwarden-console=evil; warden-console=good".parse().unwrap());
        assert_eq!(cookie(&h, "warden-console").as_deref(), Some("good"));
        assert_eq!(cookie(&h, "missing"), None);
    }
}
