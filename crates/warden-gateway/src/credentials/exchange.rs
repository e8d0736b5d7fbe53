//! OAuth 2.0 Token Exchange (RFC 8693): a caller's validated access token is exchanged at the
//! configured authorization server for an access token whose audience is one server (RFC 8707
//! `resource`, and `audience` when set), with the scopes the request needs.
//!
//! Warden authenticates as a confidential client (HTTP Basic, RFC 6749 §2.3.1). The token endpoint
//! is reached through the egress guard with redirects refused.

use super::endpoint::{Granted, Refused, SecretSource, TIMEOUT, token_request};
use crate::config::TokenExchangeSection;

const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Exchanges callers' tokens for one server.
pub struct Exchanger {
    token_url: reqwest::Url,
    client: reqwest::Client,
    client_id: String,
    secret: SecretSource,
    resource: String,
    audience: Option<String>,
    /// The scopes asked for when a request names none.
    pub scopes: Vec<String>,
}

impl Exchanger {
    /// The exchanger of a server reached at `server_url`, from its validated section.
    pub fn new(
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
        let secret = SecretSource::of(x.client_secret_env.as_ref(), x.client_secret_file.as_ref(), base_dir)
            .ok_or("it has no client secret")?;
        Ok(Exchanger {
            token_url,
            client,
            client_id: x.client_id.clone(),
            secret,
            resource: x.resource.clone().unwrap_or_else(|| server_url.to_owned()),
            audience: x.audience.clone(),
            scopes: x.scopes.clone(),
        })
    }

    /// Exchanges `subject` (the caller's access token) for a token for this server with `scopes`.
    pub async fn exchange(&self, subject: &str, scopes: &[String]) -> Result<Granted, Refused> {
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
        token_request(&self.client, &self.token_url, &self.client_id, Some(&self.secret), form, Some(subject))
            .await
            .map_err(|r| Refused { shown: r.shown.replace("refused (", "refused the token exchange ("), ..r })
    }
}
