//! Talking to an authorization server's token endpoint (token exchange, authorization code,
//! refresh): the client secret, the form post through the egress guard, and the reading of its
//! answer. What the authorization server says on refusal stays in the gateway's log; a client is
//! told the error code only.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The largest token response read.
const MAX_RESPONSE: usize = 64 * 1024;

/// How long a token whose response names no lifetime is used.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// How long a request to an authorization server may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a token was not obtained: what the client may be told, and what stays in the log.
#[derive(Debug)]
pub struct Refused {
    /// Safe to show: no token, no address, no text of the authorization server's.
    pub shown: String,
    /// For the gateway's log.
    pub logged: String,
    /// The authorization server's error code, when it gave one.
    pub code: Option<String>,
}

/// A refusal shown as `shown`, logged as `logged`.
pub fn refused(shown: impl Into<String>, logged: impl Into<String>) -> Refused {
    Refused { shown: shown.into(), logged: logged.into(), code: None }
}

/// Where Warden's client secret at an authorization server is.
pub enum SecretSource {
    /// An environment variable.
    Env(String),
    /// A file (its content, trimmed).
    File(PathBuf),
}

impl SecretSource {
    /// From a section's `client_secret_env` / `client_secret_file`.
    pub fn of(env: Option<&String>, file: Option<&PathBuf>, base_dir: &Path) -> Option<SecretSource> {
        match (env, file) {
            (Some(v), _) => Some(SecretSource::Env(v.clone())),
            (None, Some(f)) => Some(SecretSource::File(if f.is_absolute() { f.clone() } else { base_dir.join(f) })),
            (None, None) => None,
        }
    }

    /// The secret, read now.
    pub fn read(&self) -> Result<String, Refused> {
        let read = match self {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("the client secret file cannot be read ({})", e.kind())),
        };
        let secret = read.map_err(|why| refused("Warden's client secret is not available", why))?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(refused("Warden's client secret is empty", "the client secret is empty"));
        }
        Ok(secret.to_owned())
    }
}

/// A token the authorization server issued.
pub struct Granted {
    /// The access token.
    pub token: String,
    /// How long it is valid.
    pub lifetime: Duration,
    /// The scopes granted, when the server said.
    pub scope: Option<String>,
    /// A refresh token, when one was issued.
    pub refresh: Option<String>,
    /// An OpenID Connect ID token, when one was issued (a sign-in asking for `openid`).
    pub id_token: Option<String>,
}

/// Posts `form` to `url` as client `client_id` (HTTP Basic with `secret`; a public client sends
/// its id in the form) and reads the token response. `not` is a token the answer must not be
/// (the caller's own, in an exchange).
pub async fn token_request(
    client: &reqwest::Client,
    url: &reqwest::Url,
    client_id: &str,
    secret: Option<&SecretSource>,
    mut form: Vec<(&str, String)>,
    not: Option<&str>,
) -> Result<Granted, Refused> {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let basic = match secret {
        Some(s) => Some((encode(client_id), encode(&s.read()?))),
        None => {
            form.push(("client_id", client_id.to_owned()));
            None
        }
    };
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
    let mut req = client
        .post(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.map_err(|e| {
        let why = match warden_upstream::egress::refusal(&e) {
            Some(r) => format!("refused by the egress guard: {r}"),
            None => format!("{e}"),
        };
        refused("the authorization server could not be reached", why)
    })?;
    let status = resp.status();
    let body = read_capped(resp).await.map_err(|why| refused("the token request failed", why))?;
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    if !status.is_success() {
        let code = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            .filter(|c| c.len() <= 40 && c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .unwrap_or("no error code");
        let description = parsed
            .as_ref()
            .and_then(|v| v.get("error_description"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .chars()
            .take(200)
            .collect::<String>();
        let mut r = refused(
            format!("the authorization server refused ({code})"),
            format!("HTTP {}: {code} {description:?}", status.as_u16()),
        );
        r.code = Some(code.to_owned());
        return Err(r);
    }
    let v = parsed.ok_or_else(|| refused("the token request failed", "the token response is not JSON"))?;
    let bad = |why: &str| refused("the authorization server's token response was not usable", why.to_owned());
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad("it has no access_token"))?;
    if not.is_some_and(|n| n == token) {
        return Err(bad("it returned the caller's own token"));
    }
    let kind = v.get("token_type").and_then(Value::as_str).unwrap_or_default();
    if !kind.eq_ignore_ascii_case("bearer") {
        return Err(bad("its token_type is not Bearer"));
    }
    if !sendable(token) {
        return Err(bad("its access_token is not a token that can be sent in a header"));
    }
    let lifetime = match v.get("expires_in") {
        None => DEFAULT_LIFETIME,
        Some(n) => n
            .as_f64()
            .filter(|s| *s > 0.0 && *s < 366.0 * 86400.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| bad("its expires_in is not a positive number of seconds"))?,
    };
    let refresh = v.get("refresh_token").and_then(Value::as_str).filter(|r| sendable(r)).map(str::to_owned);
    let scope = v.get("scope").and_then(Value::as_str).map(str::to_owned);
    let id_token = v.get("id_token").and_then(Value::as_str).filter(|t| t.len() <= 16 * 1024).map(str::to_owned);
    Ok(Granted { token: token.to_owned(), lifetime, scope, refresh, id_token })
}

fn sendable(token: &str) -> bool {
    !token.is_empty() && token.len() <= 8192 && token.bytes().all(|b| b.is_ascii_graphic())
}

/// A response body, at most [`MAX_RESPONSE`] bytes.
pub async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("the response could not be read: {e}"))? {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(format!("the response is larger than {MAX_RESPONSE} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
