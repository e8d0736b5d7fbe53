//! The egress policy for the connections Warden itself makes: Streamable HTTP upstreams, JWKS
//! fetches, alert webhooks and trace exports.
//!
//! A destination passes when its URL is `https` to public addresses, or names addresses the
//! operator listed (`[egress] allow`); plain `http` goes only to listed addresses. Each client is
//! built for one URL: redirects are never followed, proxies from the environment are ignored (a
//! proxy would resolve the name itself), an address in the URL is checked when the client is
//! built, and a name is resolved by the guard on every new connection, which then connects to the
//! addresses it checked and no others.

use super::{Rules, address_verdict, resolve_checked};
use std::sync::Arc;

/// What Warden's own connections may reach beyond public https.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    allowed: Rules,
    any_address: bool,
}

static REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Connections Warden itself would have made that the guard refused, since the process started.
pub fn refused_connections() -> u64 {
    REFUSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// A connection refused by the egress guard; found in an error's sources by [`refusal`].
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refused by the egress guard: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// The egress guard's refusal somewhere in `err`'s sources, if it is one.
pub fn refusal(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut e: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cur) = e {
        if let Some(r) = cur.downcast_ref::<Refused>() {
            return Some(r.to_string());
        }
        e = cur.source();
    }
    None
}

impl Policy {
    /// The policy allowing, beyond public https, the addresses and networks `allowed` lists
    /// (entries naming hosts are refused here: only an address can be vouched for).
    pub fn new(allowed: Rules) -> Result<Policy, String> {
        if let Some(name) = allowed.names().next() {
            return Err(format!(
                "egress entry {name:?} names a host: list addresses or networks here (a name's addresses change)"
            ));
        }
        Ok(Policy { allowed, any_address: false })
    }

    /// A policy that lets one destination reach any address over http or https, for a setting
    /// that opts out explicitly (`gates.webhook_allow_private`). Redirects stay refused.
    pub fn any_address() -> Policy {
        Policy { allowed: Rules::default(), any_address: true }
    }

    /// What can be checked of `url` without resolving it: it parses, uses https (or http to a
    /// listed address), carries no credentials before its host, and an address in it passes.
    pub fn check_url(&self, url: &str) -> Result<reqwest::Url, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err("the URL carries credentials before its host".into());
        }
        let http = match parsed.scheme() {
            "https" => false,
            "http" => true,
            other => return Err(format!("the scheme {other:?} is not allowed")),
        };
        let port = parsed.port_or_known_default().unwrap_or(443);
        let ip = match parsed.host() {
            None => return Err("the URL has no host".into()),
            Some(url::Host::Domain(_)) => return Ok(parsed),
            Some(url::Host::Ipv4(ip)) => ip.into(),
            Some(url::Host::Ipv6(ip)) => ip.into(),
        };
        if !self.any_address {
            address_verdict(&self.allowed, ip, port, http).map_err(|why| format!("it leads to {why}"))?;
        }
        Ok(parsed)
    }

    /// A client builder for requests to `url` only (see the module's documentation). The caller
    /// adds timeouts and builds it.
    pub fn client(&self, url: &str) -> Result<reqwest::ClientBuilder, String> {
        let parsed = self.check_url(url)?;
        let builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy();
        if self.any_address {
            return Ok(builder);
        }
        let resolver = Guarded {
            allowed: self.allowed.clone(),
            port: parsed.port_or_known_default().unwrap_or(443),
            listed_only: parsed.scheme() == "http",
        };
        Ok(builder.dns_resolver(Arc::new(resolver)))
    }

    /// Resolves `host` for a connection on `port` as the client would, for a blocking client of
    /// another HTTP stack: the addresses to connect to, or the refusal.
    pub async fn resolve(&self, host: &str, port: u16, http: bool) -> Result<Vec<std::net::SocketAddr>, String> {
        let allowed = self.allowed.clone();
        let any = self.any_address;
        resolve_checked(host, port, move |ip| if any { Ok(()) } else { address_verdict(&allowed, ip, port, http) })
            .await
            .inspect_err(|_| {
                REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
    }
}

/// The resolver of a client built by [`Policy::client`].
#[derive(Debug, Clone)]
struct Guarded {
    allowed: Rules,
    port: u16,
    listed_only: bool,
}

impl reqwest::dns::Resolve for Guarded {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let checked =
                resolve_checked(&host, this.port, |ip| address_verdict(&this.allowed, ip, this.port, this.listed_only))
                    .await
                    .map_err(|why| {
                        REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::error!(%host, "egress: a connection Warden would make is refused: {why}");
                        Box::new(Refused(why)) as Box<dyn std::error::Error + Send + Sync>
                    })?;
            Ok(Box::new(checked.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_any_connection() {
        let p = Policy::new(Rules::parse(&["127.0.0.1:8080", "10.1.0.0/16"]).unwrap()).unwrap();
        assert!(p.check_url("https://1.1.1.1/keys").is_ok());
        assert!(p.check_url("http://127.0.0.1:8080/mcp").is_ok(), "listed, so http is allowed");
        assert!(p.check_url("https://10.1.2.3/").is_ok());
        assert!(p.check_url("https://jwks.example.com/").is_ok(), "a name is checked when resolved");
        for (url, why) in [
            ("http://1.1.1.1/", "plain http"),
            ("http://127.0.0.1:8081/", "loopback"),
            ("https://169.254.169.254/", "metadata"),
            ("https://[::ffff:169.254.169.254]/", "metadata"),
            ("https://10.2.0.1/", "private"),
            ("https://user@1.1.1.1/", "credentials"),
            ("ftp://1.1.1.1/", "scheme"),
        ] {
            let e = p.check_url(url).err().unwrap_or_else(|| panic!("{url} must be refused"));
            assert!(e.contains(why), "{url}: {e}");
        }
        assert!(Policy::new(Rules::parse(&["metadata.internal"]).unwrap()).is_err(), "names cannot be vouched for");
        assert!(Policy::any_address().check_url("http://10.0.0.1/hook").is_ok());
    }

    #[tokio::test]
    async fn a_name_leading_to_a_refused_address_is_refused_when_connecting() {
        let p = Policy::default();
        let client = p.client("https://localhost:9/").unwrap().build().unwrap();
        let err = client.get("https://localhost:9/").send().await.unwrap_err();
        let why = refusal(&err).expect("the guard's refusal is in the error");
        assert!(refused_connections() >= 1, "counted");
        assert!(why.contains("loopback"), "{why}");
        let p = Policy::new(Rules::parse(&["127.0.0.1"]).unwrap()).unwrap();
        let addrs = p.resolve("localhost", 9, true).await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback() && a.ip().is_ipv4()), "only the listed address: {addrs:?}");
    }
}
