//! What an operator allows beyond the default: addresses and networks that are not public but may
//! be reached (listed by address, never by name), and, for a sandboxed server, the host names it
//! may reach at all.
//!
//! The forms, each a string in the configuration:
//!
//! | form | allows |
//! |---|---|
//! | `10.0.0.5`, `fd00::5` | that address, every port |
//! | `10.0.0.5:8443`, `[fd00::5]:8443` | that address and port |
//! | `10.20.0.0/16` | that network, every port |
//! | `api.example.com` | that host name, port 443 |
//! | `api.example.com:8443` | that host name and port |
//! | `*.example.com[:port]` | every name below `example.com` (not `example.com` itself) |
//!
//! A name is only a name: the addresses it resolves to must still be public, or be listed by
//! address themselves.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// One entry of an egress list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// An address or a network; `port: None` allows every port.
    Address {
        /// The network (a single address is a /32 or /128).
        net: IpNet,
        /// The one port allowed, if only one is.
        port: Option<u16>,
    },
    /// A host name, lower case, without a trailing dot.
    Name {
        /// The name, or the suffix below which names are allowed (`wildcard`).
        name: String,
        /// `*.name`: names below it, not itself.
        wildcard: bool,
        /// The port allowed (443 unless the entry names one).
        port: u16,
    },
}

impl Rule {
    /// Reads one entry; the error says what is wrong with it.
    pub fn parse(entry: &str) -> Result<Rule, String> {
        let s = entry.trim();
        let bad = |why: &str| format!("egress entry {entry:?}: {why}");
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.contains('/') {
            let net: IpNet = s.parse().map_err(|_| bad("not an address, a network (a.b.c.d/n) or a host name"))?;
            return Ok(Rule::Address { net: net.trunc(), port: None });
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Rule::Address { net: IpNet::from(ip), port: None });
        }
        if let Ok(sa) = s.parse::<SocketAddr>() {
            if sa.port() == 0 {
                return Err(bad("the port is not valid"));
            }
            return Ok(Rule::Address { net: IpNet::from(sa.ip()), port: Some(sa.port()) });
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']'))
            && let Ok(ip) = inner.parse::<IpAddr>()
        {
            return Ok(Rule::Address { net: IpNet::from(ip), port: None });
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| bad("the port is not valid"))?),
            None => (s, 443),
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let (name, wildcard) = match host.strip_prefix("*.") {
            Some(rest) => (rest.to_owned(), true),
            None => (host, false),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(bad("not an address, a network or a host name"));
        }
        if name.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
            return Err(bad("looks like an address but does not read as one"));
        }
        if wildcard && !name.contains('.') {
            return Err(bad("a wildcard must stand below a domain (*.example.com), not a top-level name"));
        }
        Ok(Rule::Name { name, wildcard, port })
    }

    /// Whether this entry allows address `ip` on `port`.
    fn allows_address(&self, ip: IpAddr, port: u16) -> bool {
        match self {
            Rule::Address { net, port: p } => net.contains(&canonical(ip)) && p.is_none_or(|p| p == port),
            Rule::Name { .. } => false,
        }
    }

    /// Whether this entry allows host name `host` (lower case, no trailing dot) on `port`.
    fn allows_name(&self, host: &str, port: u16) -> bool {
        match self {
            Rule::Name { name, wildcard: false, port: p } => *p == port && host == name,
            Rule::Name { name, wildcard: true, port: p } => {
                *p == port && host.strip_suffix(name.as_str()).is_some_and(|head| head.len() > 1 && head.ends_with('.'))
            }
            Rule::Address { .. } => false,
        }
    }
}

/// An IPv4 address mapped into IPv6 is the IPv4 address.
pub(super) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// An egress list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules(Vec<Rule>);

impl Rules {
    /// Reads every entry; the first error is returned.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Rules, String> {
        entries.iter().map(|e| Rule::parse(e.as_ref())).collect::<Result<Vec<_>, _>>().map(Rules)
    }

    /// The entries.
    pub fn entries(&self) -> &[Rule] {
        &self.0
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip:port` is listed by address.
    pub fn allows_address(&self, ip: IpAddr, port: u16) -> bool {
        self.0.iter().any(|r| r.allows_address(ip, port))
    }

    /// Whether host name `host` on `port` is listed by name.
    pub fn allows_name(&self, host: &str, port: u16) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.0.iter().any(|r| r.allows_name(&host, port))
    }

    /// The entries that name hosts rather than addresses.
    pub fn names(&self) -> impl Iterator<Item = &Rule> {
        self.0.iter().filter(|r| matches!(r, Rule::Name { .. }))
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::Address { net, port: None } if net.prefix_len() == net.max_prefix_len() => {
                write!(f, "{}", net.addr())
            }
            Rule::Address { net, port: None } => write!(f, "{net}"),
            Rule::Address { net, port: Some(p) } => write!(f, "{}", SocketAddr::new(net.addr(), *p)),
            Rule::Name { name, wildcard, port } => {
                write!(
                    f,
                    "{}{name}{}",
                    if *wildcard { "*." } else { "" },
                    if *port == 443 { String::new() } else { format!(":{port}") }
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(entries: &[&str]) -> Rules {
        Rules::parse(entries).unwrap()
    }

    #[test]
    fn every_form_reads_and_allows_what_it_says() {
        let r = rules(&[
            "10.0.0.5",
            "10.9.0.1:8443",
            "[fd00::5]:8443",
            "fd00::6",
            "10.20.0.7/16",
            "api.example.com",
            "*.cdn.example.com:8443",
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(r.allows_address(ip("10.0.0.5"), 1));
        assert!(r.allows_address(ip("::ffff:10.0.0.5"), 80), "a mapped address is the address");
        assert!(r.allows_address(ip("10.9.0.1"), 8443) && !r.allows_address(ip("10.9.0.1"), 443));
        assert!(r.allows_address(ip("fd00::5"), 8443) && !r.allows_address(ip("fd00::5"), 80));
        assert!(r.allows_address(ip("fd00::6"), 9));
        assert!(r.allows_address(ip("10.20.255.1"), 22) && !r.allows_address(ip("10.21.0.1"), 22));
        assert!(!r.allows_address(ip("10.0.0.6"), 1));
        assert!(r.allows_name("API.example.com.", 443) && !r.allows_name("api.example.com", 80));
        assert!(!r.allows_name("evil-api.example.com", 443) && !r.allows_name("example.com", 443));
        assert!(r.allows_name("a.cdn.example.com", 8443) && r.allows_name("a.b.cdn.example.com", 8443));
        assert!(!r.allows_name("cdn.example.com", 8443), "a wildcard does not allow its own domain");
        assert!(!r.allows_name("xcdn.example.com", 8443) && !r.allows_name("a.cdn.example.com", 443));
        assert!(!r.allows_name("10.0.0.5", 443), "an address is never allowed as a name");
        assert_eq!(
            r.entries().iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "10.0.0.5",
                "10.9.0.1:8443",
                "[fd00::5]:8443",
                "fd00::6",
                "10.20.0.0/16",
                "api.example.com",
                "*.cdn.example.com:8443"
            ]
        );
    }

    #[test]
    fn malformed_entries_are_refused() {
        for bad in [
            "",
            "*",
            "*.com",
            "a b",
            "host:0",
            "host:99999",
            "10.0.0.1:x",
            "10.1",
            "300.1.1.1",
            "-a.example",
            "a..b",
            "1.2.3.4/40",
        ] {
            assert!(Rule::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
