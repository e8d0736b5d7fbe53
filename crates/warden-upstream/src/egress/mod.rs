//! The egress guard: whether a URL leads only to the public internet.
//!
//! A URL passes when it is `https` and every address its host resolves to is public: not
//! private, loopback, link-local, unique-local, shared (CGNAT), multicast, reserved, documentation,
//! or a cloud metadata address, including those same addresses hidden inside IPv6 forms (mapped,
//! compatible, NAT64, 6to4). Numeric tricks (`http://2130706433/`, `0x7f.1`) are read the way
//! browsers and HTTP clients read them, by the WHATWG URL parser.
//!
//! [`check_url`] resolves the name once, for a URL a tool argument carries: a server that fetches
//! it resolves it again, so a name whose answers change between the two (DNS rebinding) is only
//! caught if the server checks too. Where Warden itself connects, it connects to the addresses it
//! checked and to no others: its own clients ([`Policy::client`]) resolve through the guard, and a
//! sandboxed server's egress proxy ([`proxy`]) dials the checked address itself.

mod own;
pub mod proxy;
mod rules;

pub use own::{Policy, Refused, refusal, refused_connections};
pub use proxy::{EgressEvent, EgressObserver, Outcome};
pub use rules::{Rule, Rules};

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The outcome of checking one URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlCheck {
    /// The URL as parsed and normalized, or the input (cut to 2 KiB) when it does not parse.
    pub normalized: String,
    /// Why it is refused; `None` when it passes.
    pub refused: Option<String>,
}

impl UrlCheck {
    /// Whether the URL passed.
    pub fn passed(&self) -> bool {
        self.refused.is_none()
    }
}

/// Why an address is not public, or `None` when it is.
pub fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([169, 254, 169, 254], 32, "a cloud metadata address"),
        ([100, 100, 100, 200], 32, "a cloud metadata address"),
        ([192, 0, 0, 192], 32, "a cloud metadata address"),
        ([0, 0, 0, 0], 8, "an unspecified address"),
        ([127, 0, 0, 0], 8, "a loopback address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([169, 254, 0, 0], 16, "a link-local address"),
        ([100, 64, 0, 0], 10, "a shared (carrier-grade NAT) address"),
        ([192, 0, 0, 0], 24, "an IETF protocol address"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved address"),
    ];
    RANGES.iter().find(|(net, prefix, _)| in_v4(ip, *net, *prefix)).map(|(_, _, why)| *why)
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible) carry an IPv4 address.
    if s[..5] == [0; 5] && s[5] == 0xffff {
        return non_public_v4(embedded(s[6], s[7]));
    }
    // ::ffff:0:a.b.c.d (IPv4-translated, RFC 2765) carries one too.
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        return non_public_v4(embedded(s[6], s[7]));
    }
    if s[..6] == [0; 6] {
        return Some("an IPv4-compatible address (deprecated)");
    }
    // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return non_public_v4(embedded(s[6], s[7]));
    }
    // Local-use NAT64 (64:ff9b:1::/48, RFC 8215) leads into a private network.
    if s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1 {
        return Some("a local-use NAT64 address");
    }
    // 6to4 (2002::/16) reaches the IPv4 address in bits 16..48.
    if s[0] == 0x2002 {
        return non_public_v4(embedded(s[1], s[2]));
    }
    const RANGES: &[(u16, u16, &str)] = &[
        (0xfd00, 0xffff, "a cloud metadata or unique-local address"),
        (0xfc00, 0xfe00, "a unique-local address"),
        (0xfe80, 0xffc0, "a link-local address"),
        (0xfec0, 0xffc0, "a site-local address"),
        (0xff00, 0xff00, "a multicast address"),
    ];
    if let Some((_, _, why)) = RANGES.iter().find(|(net, mask, _)| s[0] & mask == *net) {
        return Some(why);
    }
    if s[0] == 0x2001 && s[1] == 0x0db8 {
        return Some("a documentation address");
    }
    if s[0] == 0x2001 && s[1] == 0 {
        return Some("a Teredo address");
    }
    if s[0] == 0x0100 && s[1..4] == [0; 3] {
        return Some("a discard-only address");
    }
    None
}

/// Time allowed for resolving a name Warden connects to.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves `host` and keeps the addresses `verdict` accepts. A name with none left is refused,
/// naming the first refusal; the addresses dropped beside accepted ones are logged. The caller
/// connects to what this returns and to nothing else, so a name whose answers change afterwards
/// (DNS rebinding) cannot lead anywhere unchecked.
pub(crate) async fn resolve_checked(
    host: &str,
    port: u16,
    verdict: impl Fn(IpAddr) -> Result<(), String>,
) -> Result<Vec<SocketAddr>, String> {
    let found = match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port))).await {
        Ok(Ok(found)) => found.collect::<Vec<_>>(),
        Ok(Err(_)) => return Err(format!("the host {host:?} does not resolve")),
        Err(_) => return Err(format!("resolving the host {host:?} timed out")),
    };
    let mut kept = Vec::new();
    let mut first_refusal = None;
    for addr in found {
        match verdict(addr.ip()) {
            Ok(()) if !kept.contains(&addr) => kept.push(addr),
            Ok(()) => {}
            Err(why) => {
                tracing::debug!(%host, address = %addr.ip(), "egress: an address of the host is refused: {why}");
                first_refusal.get_or_insert(why);
            }
        }
    }
    match (kept.is_empty(), first_refusal) {
        (true, Some(why)) => Err(format!("the host {host:?} resolves to {why}")),
        (true, None) => Err(format!("the host {host:?} has no address")),
        (false, Some(why)) => {
            tracing::warn!(%host, "egress: some addresses of the host are refused and not used: {why}");
            Ok(kept)
        }
        (false, None) => Ok(kept),
    }
}

/// Whether `ip` passes for a destination on `port`: listed in `allowed`, or (when not `listed_only`)
/// public. The refusal names the address and why.
pub(crate) fn address_verdict(allowed: &Rules, ip: IpAddr, port: u16, listed_only: bool) -> Result<(), String> {
    if allowed.allows_address(ip, port) {
        return Ok(());
    }
    match non_public(ip) {
        Some(why) => Err(format!("{ip}, {why}, which is not listed by address")),
        None if listed_only => {
            Err(format!("{ip}, which is not listed by address (plain http goes only to listed addresses)"))
        }
        None => Ok(()),
    }
}

/// Longest URL checked; longer ones are refused.
const MAX_URL_BYTES: usize = 8 * 1024;

/// Checks a URL: it must parse, use `https` (or also `http` when `allow_http`), and its host must
/// resolve, within `timeout`, only to public addresses.
pub async fn check_url(raw: &str, allow_http: bool, timeout: Duration) -> UrlCheck {
    let refuse = |normalized: String, why: String| UrlCheck { normalized, refused: Some(why) };
    if raw.len() > MAX_URL_BYTES {
        return refuse(raw.chars().take(2048).collect(), "the URL is too long".into());
    }
    // What parsers disagree on is refused rather than read one way: a backslash (a path
    // separator to some, a host delimiter to others), white space or control characters
    // anywhere (silently removed by some), and credentials before the host.
    if raw.chars().any(|c| c == '\\' || c.is_whitespace() || c.is_control()) {
        return refuse(
            raw.chars().take(2048).collect(),
            "the URL contains a backslash, white space or a control character".into(),
        );
    }
    let url = match url::Url::parse(raw) {
        Ok(u) => u,
        Err(e) => return refuse(raw.chars().take(2048).collect(), format!("not a URL ({e})")),
    };
    let normalized = url.to_string();
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        other => return refuse(normalized, format!("the scheme {other:?} is not allowed (https only)")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse(normalized, "the URL carries credentials before its host".into());
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match url.host() {
        None => return refuse(normalized, "the URL has no host".into()),
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(url::Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name.to_owned(), port));
            match tokio::time::timeout(timeout, lookup).await {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                Ok(Err(_)) => return refuse(normalized, format!("the host {name:?} does not resolve")),
                Err(_) => return refuse(normalized, format!("resolving the host {name:?} timed out")),
            }
        }
    };
    if addresses.is_empty() {
        return refuse(normalized, "the host has no address".into());
    }
    for ip in addresses {
        if let Some(why) = non_public(ip) {
            return refuse(normalized, format!("the host resolves to {why}"));
        }
    }
    UrlCheck { normalized, refused: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Option<&'static str> {
        non_public(s.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.31.255.255",
            "192.168.0.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.100.100.200",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.0.192",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:0:a00:1",
            "::ffff:0:7f00:1",
            "64:ff9b:1::a00:1",
            "64:ff9b:1::101:101",
        ] {
            assert!(v4(private).is_some(), "{private} must not pass");
        }
        for public in
            ["1.1.1.1", "93.184.215.14", "172.32.0.1", "2606:4700:4700::1111", "::ffff:1.1.1.1", "64:ff9b::101:101"]
        {
            assert_eq!(v4(public), None, "{public} is public");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_after_parsing() {
        let t = Duration::from_secs(2);
        assert!(check_url("https://1.1.1.1/x", false, t).await.passed());
        for (url, why) in [
            ("http://1.1.1.1/", "scheme"),
            ("https://127.0.0.1/", "loopback"),
            ("https://2130706433/", "loopback"),
            ("https://0x7f.1/", "loopback"),
            ("https://[::ffff:7f00:1]/", "loopback"),
            ("https://169.254.169.254/latest/meta-data/", "metadata"),
            ("https://user@10.0.0.1:8443/", "credentials"),
            ("https://1.1.1.1@127.0.0.1/", "credentials"),
            ("https://1.1.1.1\\@127.0.0.1/", "backslash"),
            ("https://1.1.1.1\\.evil/", "backslash"),
            (" https://127.0.0.1/", "white space"),
            ("https://1.1.1.1/\tx", "white space"),
            ("https://1.1.1\n.1/", "white space"),
            ("https://localhost/", "loopback"),
            ("file:///etc/passwd", "scheme"),
            ("gopher://1.1.1.1/", "scheme"),
            ("not-a-url", "not a URL"),
            ("https://name.invalid/", "resolve"),
        ] {
            let c = check_url(url, false, t).await;
            let refused = c.refused.unwrap_or_else(|| panic!("{url} must be refused"));
            assert!(refused.contains(why), "{url}: {refused}");
        }
        assert_eq!(check_url("https://0x7f.1/a/../b", false, t).await.normalized, "https://127.0.0.1/b");
        assert!(check_url("http://1.1.1.1/", true, t).await.passed());
    }
}
