//! `[state]`: state several gateways share.

use super::duration::ConfigDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What a gateway does when the shared state cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Unavailable {
    /// Refuse the calls that need it, saying why.
    #[default]
    Refuse,
    /// Limit calls by this gateway's own counters until it returns (each gateway then allows
    /// the whole limit): logged. Applies to rate limits and budgets only.
    Local,
}

/// `[state]`: without `redis`, state is this gateway's own (in memory), as for one gateway.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// Redis holding the state gateways share (`redis://host:6379/0`; TLS is not built in).
    /// Prefer `redis_env` when the URL holds a password.
    #[serde(default)]
    pub redis: Option<String>,
    /// The environment variable holding the Redis URL.
    #[serde(default)]
    pub redis_env: Option<String>,
    /// Prefix of every key Warden writes (gateways sharing state use the same one).
    #[serde(default = "prefix")]
    pub prefix: String,
    /// How long a call waits for Redis before it counts as unreachable.
    #[serde(default = "timeout")]
    pub timeout: ConfigDuration,
    /// When Redis cannot be reached: `refuse` (the default) or `local`.
    #[serde(default)]
    pub on_unavailable: Unavailable,
}

fn prefix() -> String {
    "warden".into()
}

fn timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_millis(500))
}

impl Default for StateSection {
    fn default() -> Self {
        StateSection {
            redis: None,
            redis_env: None,
            prefix: prefix(),
            timeout: timeout(),
            on_unavailable: Unavailable::Refuse,
        }
    }
}

impl StateSection {
    /// Whether state is shared with other gateways (a Redis is named).
    pub fn is_shared(&self) -> bool {
        self.redis.is_some() || self.redis_env.is_some()
    }

    /// Checks the section; gateways sharing state must also share the approvals key
    /// (`has_approvals_key`: `[approvals] state_key` is set).
    pub(super) fn validate(&self, has_approvals_key: bool) -> Result<(), (Vec<String>, String)> {
        let at = |k: &str| vec!["state".to_owned(), k.to_owned()];
        if self.is_shared() && !has_approvals_key {
            return Err((
                vec!["approvals".to_owned(), "state_key".to_owned()],
                "gateways that share state ([state]) must share this key too, or none can continue a call \
                 another approved in band: set { env = \"VAR\" } or { file = \"path\" } (32 bytes or more) \
                 on every gateway"
                    .into(),
            ));
        }
        if self.redis.is_some() && self.redis_env.is_some() {
            return Err((at("redis"), "set one of redis or redis_env".into()));
        }
        if let Some(u) = &self.redis
            && !(u.starts_with("redis://") || u.starts_with("redis+unix://"))
        {
            let why = if u.starts_with("rediss://") {
                "TLS to Redis (rediss://) is not built into Warden: reach it through a local TLS tunnel"
            } else {
                "must be a redis:// or redis+unix:// URL"
            };
            return Err((at("redis"), why.into()));
        }
        if self.prefix.is_empty() || !self.prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err((at("prefix"), "use letters, digits, '-' and '_'".into()));
        }
        if self.timeout.0.is_zero() {
            return Err((at("timeout"), "must be above zero".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn gateways_sharing_state_share_the_approvals_key_and_no_tls_url_is_taken() {
        let e = Config::parse("[state]\nredis_env = \"R\"\n", "w.toml").unwrap_err();
        assert_eq!(e.key, "approvals.state_key", "{e}");
        let shared = "[state]\nredis_env = \"R\"\n\n[approvals]\nstate_key = { env = \"K\" }\n";
        assert!(Config::parse(shared, "w.toml").is_ok());
        let tls = "[state]\nredis = \"rediss://h:6380\"\n\n[approvals]\nstate_key = { env = \"K\" }\n";
        assert!(Config::parse(tls, "w.toml").unwrap_err().message.contains("tunnel"));
    }
}
