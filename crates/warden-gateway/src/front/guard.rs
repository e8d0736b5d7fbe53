//! Checks made on every HTTP request before anything is read: `Host` (DNS rebinding) and `Origin`.

use http::HeaderMap;
use std::net::SocketAddr;

/// Which `Host` and `Origin` values the endpoint accepts.
#[derive(Debug, Clone)]
pub struct OriginGuard {
    hosts: Option<Vec<String>>,
    origins: Vec<String>,
}

impl OriginGuard {
    /// Builds the guard from configuration. Empty lists mean: loopback names on the listen port,
    /// when listening on loopback; no host check otherwise.
    pub fn new(listen: SocketAddr, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let port = listen.port();
        let loopback_names = ["127.0.0.1".to_owned(), "localhost".to_owned(), "[::1]".to_owned()];
        let hosts = if !allowed_hosts.is_empty() {
            Some(allowed_hosts.iter().map(|h| h.to_ascii_lowercase()).collect())
        } else if listen.ip().is_loopback() {
            Some(loopback_names.iter().flat_map(|n| [n.clone(), format!("{n}:{port}")]).collect())
        } else {
            tracing::warn!(
                "listening on a non-loopback address without gateway.allowed_hosts: Host headers are not checked"
            );
            None
        };
        let origins = if allowed_origins.is_empty() {
            loopback_names.iter().flat_map(|n| [format!("http://{n}:{port}"), format!("https://{n}:{port}")]).collect()
        } else {
            allowed_origins.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect()
        };
        OriginGuard { hosts, origins }
    }

    /// `Err` with a reason when the request must be refused with 403.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        self.check_host(headers)?;
        if let Some(origin) = headers.get(http::header::ORIGIN) {
            let origin = origin.to_str().map(str::to_ascii_lowercase).map_err(|_| "Forbidden: Origin not allowed")?;
            if !self.origins.contains(&origin) {
                return Err("Forbidden: Origin not allowed");
            }
        }
        Ok(())
    }

    /// The `Host` check alone, for public documents any origin may read.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), &'static str> {
        if let Some(hosts) = &self.hosts {
            let host = headers.get(http::header::HOST).and_then(|h| h.to_str().ok()).map(str::to_ascii_lowercase);
            match host {
                Some(h) if hosts.contains(&h) => {}
                _ => return Err("Forbidden: Host header not allowed"),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn loopback_defaults() {
        let g = OriginGuard::new("127.0.0.1:8787".parse().unwrap(), &[], &[]);
        assert!(g.check(&headers(&[("host", "127.0.0.1:8787")])).is_ok());
        assert!(g.check(&headers(&[("host", "localhost:8787"), ("origin", "http://localhost:8787")])).is_ok());
        assert!(g.check(&headers(&[("host", "evil.example.com")])).is_err(), "DNS rebinding is refused");
        assert!(g.check(&headers(&[("host", "127.0.0.1:8787"), ("origin", "http://evil.example.com")])).is_err());
        assert!(g.check(&headers(&[])).is_err(), "a request without Host is refused");
    }

    #[test]
    fn configured_lists() {
        let g = OriginGuard::new(
            "0.0.0.0:443".parse().unwrap(),
            &["mcp.example.com".into()],
            &["https://app.example.com".into()],
        );
        assert!(g.check(&headers(&[("host", "MCP.example.com"), ("origin", "https://app.example.com")])).is_ok());
        assert!(g.check(&headers(&[("host", "mcp.example.com"), ("origin", "https://evil.example.com")])).is_err());
    }
}
