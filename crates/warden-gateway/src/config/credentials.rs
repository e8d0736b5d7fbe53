//! `[credentials]`, and checks of the credential sections that obtain tokens per caller
//! (`token_exchange`, `oauth`).

use super::servers::{Isolation, OAuthClientSection, ServerSection, TokenExchangeSection};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[credentials]`: for servers whose callers each authorize Warden (`credential = { oauth }`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsSection {
    /// An environment variable holding the key the callers' upstream tokens are encrypted with
    /// at rest: 32 bytes, as 64 hex digits or base64.
    pub key_env: Option<String>,
    /// A file holding that key (relative to the config file).
    pub key_file: Option<PathBuf>,
    /// Where authorization servers send callers back: Warden's `/oauth/callback` on its public
    /// origin. By default the origin of `[gateway] resource`; register it exactly.
    pub redirect_uri: Option<String>,
    /// Warden's client at its own issuer (`[auth.oauth] issuer`), with which a browser opening
    /// a consent link signs in: only the caller the link was made for can use it. Register
    /// `/oauth/signed-in` on the same origin as its redirect URI.
    pub sign_in: Option<SignInSection>,
}

/// `[credentials] sign_in`
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInSection {
    /// Warden's client id at its issuer.
    pub client_id: String,
    /// An environment variable holding its secret (none: a public client, PKCE only).
    pub client_secret_env: Option<String>,
    /// A file holding its secret (relative to the config file).
    pub client_secret_file: Option<PathBuf>,
}

/// The path where a browser returns from signing in at the gateway's issuer.
pub const SIGNED_IN_PATH: &str = "/oauth/signed-in";

/// The path of the callback on the gateway's listener.
pub const CALLBACK_PATH: &str = "/oauth/callback";

/// The path under which links to start an authorization are served.
pub const START_PATH: &str = "/oauth/start";

impl CredentialsSection {
    pub(super) fn validate(&self) -> Result<(), (Vec<String>, String)> {
        let at = |k: &str| vec!["credentials".to_owned(), k.to_owned()];
        if self.key_env.is_some() && self.key_file.is_some() {
            return Err((at("key_env"), "set one of key_env or key_file".into()));
        }
        if let Some(r) = &self.redirect_uri {
            let ok = url::Url::parse(r).is_ok_and(|u| {
                u.path() == CALLBACK_PATH && u.query().is_none() && u.fragment().is_none() && browser_url(&u).is_ok()
            });
            if !ok {
                return Err((
                    at("redirect_uri"),
                    format!("must be an https URL (http only on loopback) whose path is {CALLBACK_PATH}"),
                ));
            }
        }
        Ok(())
    }

    /// The sign-in redirect URI: `/oauth/signed-in` on the redirect URI's origin.
    pub fn signed_in_uri(&self, resource: Option<&str>) -> Option<String> {
        let u = url::Url::parse(&self.redirect_uri(resource)?).ok()?;
        Some(format!("{}{SIGNED_IN_PATH}", u.origin().ascii_serialization()))
    }

    /// The redirect URI: the configured one, or `/oauth/callback` on the origin of `resource`.
    pub fn redirect_uri(&self, resource: Option<&str>) -> Option<String> {
        if let Some(r) = &self.redirect_uri {
            return Some(r.clone());
        }
        let u = url::Url::parse(resource?).ok()?;
        Some(format!("{}{CALLBACK_PATH}", u.origin().ascii_serialization()))
    }
}

/// Whether a browser may be sent to `u`: https, or http to a loopback host (development). Never
/// another scheme (`javascript:`, `data:`, `file:`...), and never with credentials in it.
pub fn browser_url(u: &url::Url) -> Result<(), String> {
    if !u.username().is_empty() || u.password().is_some() {
        return Err("it carries credentials".into());
    }
    match (u.scheme(), u.host()) {
        ("https", Some(_)) => Ok(()),
        ("http", Some(url::Host::Domain("localhost"))) => Ok(()),
        ("http", Some(url::Host::Ipv4(ip))) if ip.is_loopback() => Ok(()),
        ("http", Some(url::Host::Ipv6(ip))) if ip.is_loopback() => Ok(()),
        ("http", _) => Err("plain http is allowed only to a loopback host".into()),
        (scheme, _) => Err(format!("its scheme {scheme:?} is not https")),
    }
}

/// An `oauth` section, at `at`; `issuer` is `[auth.oauth] issuer`.
pub(super) fn check_oauth(
    o: &OAuthClientSection,
    credentials: &CredentialsSection,
    resource: Option<&str>,
    issuer: Option<&str>,
    at: Vec<String>,
) -> Result<(), (Vec<String>, String)> {
    let key = |k: &str| [at.clone(), vec![k.to_owned()]].concat();
    if o.client_id.trim().is_empty() {
        return Err((key("client_id"), "must not be empty".into()));
    }
    if o.client_secret_env.is_some() && o.client_secret_file.is_some() {
        return Err((at.clone(), "set at most one of client_secret_env or client_secret_file".into()));
    }
    if credentials.key_env.is_none() && credentials.key_file.is_none() {
        return Err((
            vec!["credentials".into()],
            "a server with credential = { oauth } needs [credentials] key_env or key_file: callers' tokens are \
             stored encrypted"
                .into(),
        ));
    }
    if issuer.is_none() || credentials.sign_in.as_ref().is_none_or(|c| c.client_id.trim().is_empty()) {
        return Err((
            vec!["credentials".into(), "sign_in".into()],
            "a server with credential = { oauth } needs [auth.oauth] and [credentials] sign_in: whoever opens a \
             consent link signs in at the gateway's issuer, so that a link sent to someone else is useless"
                .into(),
        ));
    }
    if credentials.sign_in.as_ref().is_some_and(|c| c.client_secret_env.is_some() && c.client_secret_file.is_some()) {
        return Err((
            vec!["credentials".into(), "sign_in".into()],
            "set at most one of client_secret_env or client_secret_file".into(),
        ));
    }
    if credentials.redirect_uri(resource).is_none() {
        return Err((
            vec!["credentials".into(), "redirect_uri".into()],
            "set [credentials] redirect_uri or [gateway] resource: authorization servers send callers back there"
                .into(),
        ));
    }
    if let Some(a) = &o.authorization_server
        && url::Url::parse(a).map(|u| u.query().is_some() || u.fragment().is_some()).unwrap_or(true)
    {
        return Err((key("authorization_server"), format!("{a:?} is not an issuer URL")));
    }
    super::auth::check_scopes(&o.scopes, key("scopes"))
}

/// The `credential` section `c` of server `s` (a url server) at `here`, in `config`.
pub(super) fn check_credential(
    config: &super::Config,
    c: &super::CredentialSection,
    s: &ServerSection,
    here: Vec<String>,
) -> Result<(), (Vec<String>, String)> {
    let key = |k: &str| [here.clone(), vec![k.to_owned()]].concat();
    let sources = [c.env.is_some(), c.file.is_some(), c.token_exchange.is_some(), c.oauth.is_some()];
    if sources.iter().filter(|x| **x).count() != 1 {
        return Err((key("credential"), "set exactly one of env, file, token_exchange or oauth".into()));
    }
    let per_caller = match (&c.token_exchange, &c.oauth) {
        (Some(_), _) => Some("token_exchange"),
        (_, Some(_)) => Some("oauth"),
        _ => None,
    };
    if let Some(mode) = per_caller
        && s.isolation != Isolation::Session
    {
        return Err((
            [here.clone(), vec!["credential".into(), mode.into()]].concat(),
            format!(
                "{mode} needs isolation = \"session\": each caller's token must travel only on connections of that caller"
            ),
        ));
    }
    if per_caller.is_some() && (c.header != "Authorization" || c.scheme != "Bearer") {
        return Err((
            key("credential"),
            "header and scheme apply to env and file credentials; a token obtained per caller is sent as \
             Authorization: Bearer"
                .into(),
        ));
    }
    if let Some(h) = s.headers.keys().find(|h| h.eq_ignore_ascii_case(&c.header)) {
        return Err((
            key("headers"),
            format!("{h:?} is the header the credential is sent in: set it in credential only"),
        ));
    }
    if http::HeaderName::from_bytes(c.header.as_bytes()).is_err() {
        return Err((key("credential"), format!("{:?} is not a header name", c.header)));
    }
    if let Some(o) = &c.oauth {
        let at = [here.clone(), vec!["credential".into(), "oauth".into()]].concat();
        let issuer = config.auth.oauth.as_ref().map(|o| o.issuer.as_str());
        check_oauth(o, &config.credentials, config.gateway.resource.as_deref(), issuer, at)?;
    }
    if let Some(x) = &c.token_exchange {
        check_token_exchange(x, [here.clone(), vec!["credential".into(), "token_exchange".into()]].concat())?;
    }
    Ok(())
}

/// A `token_exchange` section, at `at`.
pub(super) fn check_token_exchange(x: &TokenExchangeSection, at: Vec<String>) -> Result<(), (Vec<String>, String)> {
    let key = |k: &str| [at.clone(), vec![k.to_owned()]].concat();
    if x.client_id.trim().is_empty() {
        return Err((key("client_id"), "must not be empty".into()));
    }
    if x.client_secret_env.is_some() == x.client_secret_file.is_some() {
        return Err((at.clone(), "set exactly one of client_secret_env or client_secret_file".into()));
    }
    for (k, v) in [("resource", &x.resource)] {
        if let Some(v) = v
            && url::Url::parse(v).map(|u| !u.has_host() || u.fragment().is_some()).unwrap_or(true)
        {
            return Err((key(k), format!("{v:?} is not an absolute URL without a fragment")));
        }
    }
    if x.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
        return Err((key("audience"), "must not be empty".into()));
    }
    super::auth::check_scopes(&x.scopes, key("scopes"))
}
