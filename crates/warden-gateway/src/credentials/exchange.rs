//! OAuth 2.0 Token Exchange (RFC 8693): a caller's validated access token is exchanged at the
//! configured authorization server for an access token whose audience is one server (RFC 8707
//! `resource`, and `audience` when set), with the scopes the request needs.
//!
//! Warden authenticates as a confidential client (HTTP Basic, RFC 6749 §2.3.1). The token endpoint
//! is reached through the egress guard with redirects refused. What the authorization server says
//! on refusal stays in the gateway's log; a client is told the error code only.

use crate::config::TokenExchangeSection;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// The largest token response read.
const MAX_RESPONSE: usize = 64 * 1024;

/// How long an exchange may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long a token whose response names no lifetime is used.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(60);

/// Where Warden's client secret is.
enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// Exchanges callers' tokens for one server.
pub struct Exchanger {
    server: String,
    token_url: reqwest::Url,
    client: reqwest::Client,
    client_id: String,
    secret: SecretSource,
    resource: String,
    audience: Option<String>,
    /// The scopes asked for when a request names none.
    pub scopes: Vec<String>,
}

/// A token the authorization server issued.
pub struct Granted {
    /// The access token.
    pub token: String,
    /// How long it is valid.
    pub lifetime: Duration,
    /// The scopes granted, when the server said.
    pub scope: Option<String>,
}

/// Why an exchange did not give a token: what the client may be told, and what stays in the log.
#[derive(Debug)]
pub struct Refused {
    /// Safe to show: no token, no address, no text of the authorization server's.
    pub shown: String,
    /// For the gateway's log.
    pub logged: String,
}

fn refused(shown: impl Into<String>, logged: impl Into<String>) -> Refused {
    Refused { shown: shown.into(), logged: logged.into() }
}

impl Exchanger {
    /// The exchanger of server `server` (reached at `server_url`), from its validated section.
    pub fn new(
        server: &str,
        x: &TokenExchangeSection,
        server_url: &str,
        base_dir: &std::path::Path,
        egress: &warden_upstream::egress::Policy,
    ) -> Result<Exchanger, String> {
        let client = egress
            .client(&x.token_url)
            .map_err(|e| format!("its token_url is refused by the egress guard: {e}"))?
            .timeout(TIMEOUT)
            .build()
            .map_err(|_| "the HTTP client could not be built".to_owned())?;
        let token_url = reqwest::Url::parse(&x.token_url).map_err(|_| "its token_url is not a URL".to_owned())?;
        let secret = match (&x.client_secret_env, &x.client_secret_file) {
            (Some(v), _) => SecretSource::Env(v.clone()),
            (None, Some(f)) => SecretSource::File(if f.is_absolute() { f.clone() } else { base_dir.join(f) }),
            (None, None) => return Err("it has no client secret".into()),
        };
        Ok(Exchanger {
            server: server.to_owned(),
            token_url,
            client,
            client_id: x.client_id.clone(),
            secret,
            resource: x.resource.clone().unwrap_or_else(|| server_url.to_owned()),
            audience: x.audience.clone(),
            scopes: x.scopes.clone(),
        })
    }

    fn client_secret(&self) -> Result<String, Refused> {
        let read = match &self.secret {
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("the client secret file cannot be read ({})", e.kind())),
        };
        let secret = read.map_err(|why| refused("Warden's client secret for the exchange is not available", why))?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(refused("Warden's client secret for the exchange is empty", "the client secret is empty"));
        }
        Ok(secret.to_owned())
    }

    /// Exchanges `subject` (the caller's access token) for a token for this server with `scopes`.
    pub async fn exchange(&self, subject: &str, scopes: &[String]) -> Result<Granted, Refused> {
        let secret = self.client_secret()?;
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", GRANT_TYPE.into()),
            ("subject_token", subject.into()),
            ("subject_token_type", ACCESS_TOKEN_TYPE.into()),
            ("requested_token_type", ACCESS_TOKEN_TYPE.into()),
            ("resource", self.resource.clone()),
        ];
        if let Some(a) = &self.audience {
            form.push(("audience", a.clone()));
        }
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&form).finish();
        let sent = self
            .client
            .post(self.token_url.clone())
            .basic_auth(encode(&self.client_id), Some(encode(&secret)))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await;
        let resp = sent.map_err(|e| {
            let why = match warden_upstream::egress::refusal(&e) {
                Some(r) => format!("refused by the egress guard: {r}"),
                None => format!("{e}"),
            };
            refused("the authorization server could not be reached for the token exchange", why)
        })?;
        let status = resp.status();
        let body = read_capped(resp).await.map_err(|why| refused("the token exchange failed", why))?;
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
            return Err(refused(
                format!("the authorization server refused the token exchange ({code})"),
                format!("HTTP {}: {code} {description:?}", status.as_u16()),
            ));
        }
        let v = parsed.ok_or_else(|| refused("the token exchange failed", "the token response is not JSON"))?;
        let bad = |why: &str| refused("the authorization server's token response was not usable", why.to_owned());
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| bad("it has no access_token"))?;
        if token == subject {
            return Err(bad("it returned the caller's own token"));
        }
        let kind = v.get("token_type").and_then(Value::as_str).unwrap_or_default();
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(bad("its token_type is not Bearer"));
        }
        if let Some(t) = v.get("issued_token_type").and_then(Value::as_str)
            && t != ACCESS_TOKEN_TYPE
            && t != JWT_TOKEN_TYPE
        {
            return Err(bad("its issued_token_type is not an access token"));
        }
        if token.len() > 8192 || !token.bytes().all(|b| b.is_ascii_graphic()) {
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
        let scope = v.get("scope").and_then(Value::as_str).map(str::to_owned);
        tracing::debug!(server = %self.server, "token exchanged");
        Ok(Granted { token: token.to_owned(), lifetime, scope })
    }
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("the response could not be read: {e}"))? {
        if body.len() + chunk.len() > MAX_RESPONSE {
            return Err(format!("the response is larger than {MAX_RESPONSE} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
