//! `[egress]`: what Warden's own connections may reach beyond public https.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `[egress]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EgressSection {
    /// Addresses and networks Warden's own connections (Streamable HTTP servers, the JWKS, the
    /// alert webhook, the trace exporter) may reach although they are not public, and the only
    /// ones reached over plain http: `"127.0.0.1:8080"`, `"10.0.0.5"`, `"10.20.0.0/16"`,
    /// `"[fd00::5]:443"`. Everything else must be https to a public address. Names are not
    /// accepted here: what a name resolves to can change.
    #[serde(default)]
    pub allow: Vec<String>,
}

impl EgressSection {
    /// The policy for Warden's own connections.
    pub fn policy(&self) -> Result<warden_upstream::egress::Policy, String> {
        warden_upstream::egress::Policy::new(warden_upstream::egress::Rules::parse(&self.allow)?)
    }
}

impl super::Config {
    /// Every URL Warden itself connects to passes the egress guard's checks that need no
    /// resolving; names are checked again on every connection.
    pub(super) fn validate_egress(&self) -> Result<(), (Vec<String>, String)> {
        let at = |path: &[&str]| path.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let policy = self.egress.policy().map_err(|e| (at(&["egress", "allow"]), e))?;
        let advice = "; list the address in [egress] allow if it is yours (docs/sandbox.md)";
        for (name, s) in &self.servers {
            if let Some(u) = &s.url {
                policy
                    .check_url(u)
                    .map_err(|e| (vec!["servers".into(), name.clone(), "url".into()], format!("{e}{advice}")))?;
            }
            if let Some(a) = s.credential.as_ref().and_then(|c| c.oauth.as_ref()?.authorization_server.as_ref()) {
                let at = ["servers", name, "credential", "oauth", "authorization_server"];
                policy.check_url(a).map_err(|e| (at.map(str::to_owned).to_vec(), format!("{e}{advice}")))?;
            }
            if let Some(x) = s.credential.as_ref().and_then(|c| c.token_exchange.as_ref()) {
                let at = ["servers", name, "credential", "token_exchange", "token_url"];
                policy.check_url(&x.token_url).map_err(|e| (at.map(str::to_owned).to_vec(), format!("{e}{advice}")))?;
            }
        }
        if let Some(u) = self.auth.oauth.as_ref().and_then(|o| o.jwks_url.as_ref()) {
            policy.check_url(u).map_err(|e| (at(&["auth", "oauth", "jwks_url"]), format!("{e}{advice}")))?;
        }
        if let Some(u) = &self.telemetry.otlp_endpoint {
            policy.check_url(u).map_err(|e| (at(&["telemetry", "otlp_endpoint"]), format!("{e}{advice}")))?;
        }
        if let Some(u) = &self.gates.webhook {
            let webhook = if self.gates.webhook_allow_private {
                warden_upstream::egress::Policy::any_address()
            } else {
                policy.clone()
            };
            webhook.check_url(u).map_err(|e| (at(&["gates", "webhook"]), format!("{e}{advice}")))?;
        }
        for (i, w) in self.notifications.webhooks.iter().enumerate() {
            let Some(u) = w.url.literal() else { continue };
            let checked = if w.allow_private { warden_upstream::egress::Policy::any_address() } else { policy.clone() };
            checked.check_url(u).map_err(|e| {
                let key = vec!["notifications".into(), "webhooks".into(), i.to_string(), "url".into()];
                (key, format!("{e}; or set allow_private for an internal receiver"))
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    #[test]
    fn outbound_urls_and_egress_lists_are_checked_when_read() {
        let e = |text: &str| Config::parse(text, "w.toml").unwrap_err();
        let refused = e("[servers.m]\nurl = \"http://169.254.169.254/mcp\"\n");
        assert_eq!(refused.key, "servers.m.url");
        assert!(refused.message.contains("metadata") && refused.message.contains("[egress] allow"), "{refused}");
        let plain = e("[servers.m]\nurl = \"http://1.1.1.1/mcp\"\n");
        assert!(plain.message.contains("plain http"), "{plain}");
        let local = "[servers.m]\nurl = \"http://127.0.0.1:3001/mcp\"\n";
        assert!(e(local).message.contains("loopback"));
        assert!(Config::parse(&format!("{local}[egress]\nallow = [\"127.0.0.1:3001\"]\n"), "w.toml").is_ok());
        assert!(Config::parse("[servers.m]\nurl = \"https://mcp.example.com/mcp\"\n", "w.toml").is_ok());
        let jwks = e(
            "[gateway]\nresource = \"https://gw.example/mcp\"\n[auth.oauth]\nissuer = \"i\"\njwks_url = \"https://10.0.0.1/k\"\n",
        );
        assert_eq!(jwks.key, "auth.oauth.jwks_url");
        assert_eq!(e("[telemetry]\notlp_endpoint = \"http://10.0.0.9:4318\"\n").key, "telemetry.otlp_endpoint");
        assert_eq!(e("[gates]\nwebhook = \"https://[::ffff:127.0.0.1]/h\"\n").key, "gates.webhook");
        assert_eq!(e("[egress]\nallow = [\"metadata.google.internal\"]\n").key, "egress.allow");
        let bad = e("[servers.s]\ncommand = \"x\"\negress = [\"*\"]\n");
        assert_eq!(bad.key, "servers.s.egress");
        let off = e("[servers.s]\ncommand = \"x\"\nsandbox = \"off\"\negress = [\"api.example.com\"]\n");
        assert!(off.message.contains("no effect"), "{off}");
        assert_eq!(
            e("[servers.s]\ncommand = \"x\"\nsandbox = \"off\"\nsandbox_read = [\"/srv\"]\n").key,
            "servers.s.sandbox_read"
        );
        assert_eq!(
            e("[servers.h]\nurl = \"https://a.example/mcp\"\negress = [\"a.example\"]\n").key,
            "servers.h.egress"
        );
        let exchange = |extra: &str, url: &str| {
            format!(
                "[servers.h]\nurl = \"https://a.example/mcp\"\n{extra}credential = {{ token_exchange = {{ token_url = \"{url}\", client_id = \"w\", client_secret_env = \"S\" }} }}\n"
            )
        };
        assert!(Config::parse(&exchange("isolation = \"session\"\n", "https://as.example/token"), "w.toml").is_ok());
        let shared = e(&exchange("", "https://as.example/token"));
        assert!(shared.message.contains("isolation"), "{shared}");
        let metadata = e(&exchange("isolation = \"session\"\n", "http://169.254.169.254/token"));
        assert_eq!(metadata.key, "servers.h.credential.token_exchange.token_url");
        let both = "[servers.h]\nurl = \"https://a.example/mcp\"\nisolation = \"session\"\ncredential = { env = \"X\", token_exchange = { token_url = \"https://as.example/t\", client_id = \"w\", client_secret_env = \"S\" } }\n";
        assert!(e(both).message.contains("exactly one"));
        let oauth = |credentials: &str| {
            format!(
                "[gateway]\nresource = \"https://gw.example/mcp\"\n[auth.oauth]\nissuer = \"https://idp.example\"\n\
                 jwks_url = \"https://idp.example/jwks\"\n[servers.h]\nurl = \"https://a.example/mcp\"\n\
                 isolation = \"session\"\ncredential = {{ oauth = {{ client_id = \"w\" }} }}\n{credentials}"
            )
        };
        let keyed = "[credentials]\nkey_env = \"K\"\n";
        let no_sign_in = e(&oauth(keyed));
        assert_eq!(no_sign_in.key, "credentials.sign_in", "{no_sign_in}");
        assert!(Config::parse(&oauth(&format!("{keyed}sign_in = {{ client_id = \"s\" }}\n")), "w.toml").is_ok());
        assert_eq!(e(&oauth("")).key, "credentials", "a key is needed");
        let header = "[servers.h]\nurl = \"https://a.example/mcp\"\nheaders = { authorization = \"Bearer x\" }\ncredential = { env = \"X\" }\n";
        assert_eq!(e(header).key, "servers.h.headers");
    }
}
