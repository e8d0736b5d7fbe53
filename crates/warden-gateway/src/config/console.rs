//! `[console]` and `[notifications]`: the operator console on the admin listener, and where
//! Warden tells people that something waits for them.

use super::{ConfigDuration, SettingValue, SignInSection, browser_url};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The path the console is served under, on the admin listener.
pub const CONSOLE_PATH: &str = "/console";

/// `[console]`: the operator console, served at `/console` on the admin listener when
/// `[admin] listen` is set.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSection {
    /// Serve the console.
    pub enabled: bool,
    /// The origin operators' browsers reach the admin listener at, such as
    /// `"https://warden-admin.example.com"` (https; http only on loopback). Sign-in returns to
    /// it, and links in notifications point at it. Default: `http://` and `[admin] listen` when
    /// that is a loopback address; otherwise the console is not served until this is set.
    pub public_url: Option<String>,
    /// OpenID Connect sign-in (authorization code with PKCE) at `[auth.oauth] issuer`, as this
    /// client. Register `/console/auth/callback` on `public_url` as its redirect URI. The
    /// operator is the admin class by the same rules as the admin API (`admin_subjects`).
    pub sign_in: Option<SignInSection>,
    /// Let an admin-class API key sign in (break-glass, for when the identity provider is down).
    pub api_key_sign_in: bool,
    /// How long a console session lasts before the operator signs in again.
    pub session_lifetime: ConfigDuration,
}

impl Default for ConsoleSection {
    fn default() -> Self {
        ConsoleSection {
            enabled: true,
            public_url: None,
            sign_in: None,
            api_key_sign_in: true,
            session_lifetime: ConfigDuration(Duration::from_secs(8 * 3600)),
        }
    }
}

impl ConsoleSection {
    /// The console's origin (`scheme://host[:port]`, no trailing slash), from `public_url` or,
    /// on a loopback admin listener, its address; `None` when the console is not served. An
    /// admin listener on another address serves no console without an https `public_url`:
    /// sign-in and sessions never cross a network in the clear.
    pub fn origin(&self, admin_listen: Option<&str>) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let listen = admin_listen?;
        match &self.public_url {
            Some(u) => url::Url::parse(u).ok().map(|u| u.origin().ascii_serialization()),
            None => {
                let loopback = listen.parse::<std::net::SocketAddr>().is_ok_and(|a| a.ip().is_loopback());
                loopback.then(|| format!("http://{listen}"))
            }
        }
    }

    pub(super) fn validate(&self, oauth: bool) -> Result<(), (Vec<String>, String)> {
        let at = |k: &str| vec!["console".to_owned(), k.to_owned()];
        if let Some(u) = &self.public_url {
            let ok = url::Url::parse(u).is_ok_and(|p| {
                matches!(p.path(), "" | "/") && p.query().is_none() && p.fragment().is_none() && browser_url(&p).is_ok()
            });
            if !ok {
                return Err((
                    at("public_url"),
                    "must be an origin such as https://warden-admin.example.com (https; http only on loopback)".into(),
                ));
            }
        }
        if let Some(s) = &self.sign_in {
            if !oauth {
                return Err((at("sign_in"), "needs [auth.oauth]: operators sign in at its issuer".into()));
            }
            if s.client_id.trim().is_empty() {
                return Err((at("sign_in"), "client_id must not be empty".into()));
            }
            if s.client_secret_env.is_some() && s.client_secret_file.is_some() {
                return Err((at("sign_in"), "set client_secret_env or client_secret_file, not both".into()));
            }
        }
        let lifetime = self.session_lifetime.0;
        if lifetime < Duration::from_secs(60) || lifetime > Duration::from_secs(7 * 24 * 3600) {
            return Err((at("session_lifetime"), "must be between 1m and 7d".into()));
        }
        Ok(())
    }
}

/// `[notifications]`: where Warden pushes what waits for a person.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsSection {
    /// Webhooks told of each event they subscribe to.
    pub webhooks: Vec<WebhookSection>,
}

/// One webhook. Messages carry the event, the server and tool, the caller's subject, why, and a
/// link to the item in the console; never argument values, results or secrets.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// Its URL; often a secret in itself (Slack, Teams), so `{ env = "VAR" }` or
    /// `{ file = "path" }` is better than the URL written here. https to a public address,
    /// reached through the egress guard.
    pub url: SettingValue,
    /// The message format.
    #[serde(default)]
    pub format: WebhookFormat,
    /// The events sent; all of them by default.
    #[serde(default = "all_events")]
    pub events: Vec<NotifyEvent>,
    /// Allow an http URL or a private or loopback address (an internal receiver).
    #[serde(default)]
    pub allow_private: bool,
}

/// How a webhook's messages are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// A JSON object: `{"source": "warden", "event", "title", "text", "link", ...}`.
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` and blocks).
    Slack,
    /// A Microsoft Teams message (an Adaptive Card attachment, as Teams workflows accept).
    Teams,
}

/// What a person may be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// A call waits for approval.
    Approval,
    /// A changed or new tool definition is held for review.
    Drift,
    /// A result was quarantined for instructing the model.
    Quarantine,
    /// A detection gate tripped.
    Gate,
    /// A server was contained or released.
    Containment,
}

fn all_events() -> Vec<NotifyEvent> {
    vec![
        NotifyEvent::Approval,
        NotifyEvent::Drift,
        NotifyEvent::Quarantine,
        NotifyEvent::Gate,
        NotifyEvent::Containment,
    ]
}

impl NotificationsSection {
    pub(super) fn validate(&self) -> Result<(), (Vec<String>, String)> {
        for (i, w) in self.webhooks.iter().enumerate() {
            let at = || vec!["notifications".to_owned(), "webhooks".to_owned(), i.to_string(), "url".to_owned()];
            if let Some(why) = w.url.problem() {
                return Err((at(), why));
            }
            if let Some(u) = w.url.literal() {
                let parsed = url::Url::parse(u).map_err(|_| (at(), "is not a URL".to_owned()))?;
                if parsed.scheme() != "https" && !(w.allow_private && parsed.scheme() == "http") {
                    return Err((at(), "must be https (http only with allow_private)".into()));
                }
            }
            if w.events.is_empty() {
                return Err((
                    vec!["notifications".to_owned(), "webhooks".to_owned(), i.to_string(), "events".to_owned()],
                    "names no event".into(),
                ));
            }
        }
        Ok(())
    }
}
