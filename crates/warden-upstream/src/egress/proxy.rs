//! A sandboxed server's way out: an HTTP `CONNECT` proxy that Warden runs for it.
//!
//! The server has a network namespace of its own with nothing in it but its loopback. The
//! sandbox opens a listening socket on that loopback (`127.0.0.1:3128`, named to the server in
//! `HTTPS_PROXY` and its kin) and hands it to the gateway, which accepts on it here. Each
//! `CONNECT host:port` is decided against the server's egress list: a host must be listed by name
//! and resolve to public addresses (or to addresses listed by address), an address must be listed
//! by address. Warden resolves the name once and dials the address it checked. Everything else is
//! answered `403` and reported to the observer, which writes an audit row and counts it. Requests
//! other than `CONNECT` (plain-http forwarding) are refused: the server must use https.

use super::{Rules, address_verdict, non_public, resolve_checked};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The port the proxy listens on inside the server's namespace.
pub const PROXY_PORT: u16 = 3128;

/// What became of one connection a server asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Allowed and connected to `address`.
    Connected {
        /// The address dialled.
        address: SocketAddr,
    },
    /// Allowed, but no address answered.
    Failed(String),
    /// Refused by the server's egress list or the address checks.
    Refused(String),
}

/// One connection a sandboxed server asked for.
#[derive(Debug, Clone)]
pub struct EgressEvent<'a> {
    /// The server.
    pub server: &'a str,
    /// What it asked for (`host:port`, cut to 256 characters), or the request line it sent.
    pub target: &'a str,
    /// What became of it.
    pub outcome: Outcome,
}

/// Told of every connection a sandboxed server asks for (the audit log and metrics).
pub trait EgressObserver: Send + Sync {
    /// One connection asked for, allowed or refused.
    fn connection(&self, event: &EgressEvent<'_>);
}

impl std::fmt::Debug for dyn EgressObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EgressObserver")
    }
}

const HEAD_MAX: usize = 8 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Tunnels one server may hold open at once.
const MAX_TUNNELS: usize = 256;
/// Tunnels all servers together may hold open at once (two descriptors each).
const MAX_TUNNELS_ALL: usize = 1024;

fn all_tunnels() -> Arc<tokio::sync::Semaphore> {
    static ALL: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(MAX_TUNNELS_ALL))).clone()
}

/// Serves the proxy on `listener` for server `server` until `stop`.
pub(crate) fn serve(
    listener: std::net::TcpListener,
    server: String,
    rules: Rules,
    observer: Option<Arc<dyn EgressObserver>>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let shared =
        Arc::new(Shared { server, rules, observer, tunnels: Arc::new(tokio::sync::Semaphore::new(MAX_TUNNELS)) });
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                () = stop.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::debug!(server = %shared.server, "egress proxy: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let shared = shared.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = stop.cancelled() => {}
                    () = shared.handle(stream) => {}
                }
            });
        }
    });
    Ok(())
}

struct Shared {
    server: String,
    rules: Rules,
    observer: Option<Arc<dyn EgressObserver>>,
    tunnels: Arc<tokio::sync::Semaphore>,
}

/// A `CONNECT` request's target.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Address(SocketAddr),
    Name(String, u16),
}

impl Shared {
    async fn handle(&self, mut client: TcpStream) {
        let (Ok(_permit), Ok(_all)) = (self.tunnels.clone().try_acquire_owned(), all_tunnels().try_acquire_owned())
        else {
            let _ = reply(&mut client, 503, "too many connections are open").await;
            self.report("(over the limit)", Outcome::Refused("too many connections open at once".into()));
            return;
        };
        let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
            Ok(Ok(h)) => h,
            Ok(Err(why)) => {
                let _ = reply(&mut client, 400, &why).await;
                self.report("(unreadable request)", Outcome::Refused(why));
                return;
            }
            Err(_) => {
                let _ = reply(&mut client, 400, "no request within 10 s").await;
                self.report("(no request)", Outcome::Refused("no request within 10 s".into()));
                return;
            }
        };
        let line = head.lines().next().unwrap_or_default();
        let shown: String = line.chars().filter(|c| !c.is_control()).take(256).collect();
        let target = match parse_connect(line) {
            Ok(t) => t,
            Err(why) => {
                let _ = reply(&mut client, if why.starts_with("only") { 405 } else { 400 }, &why).await;
                self.report(&shown, Outcome::Refused(why));
                return;
            }
        };
        let asked = match &target {
            Target::Address(a) => a.to_string(),
            Target::Name(h, p) => format!("{h}:{p}"),
        };
        let addresses = match self.decide(&target).await {
            Ok(a) => a,
            Err(why) => {
                let _ = reply(&mut client, 403, &why).await;
                self.report(&asked, Outcome::Refused(why));
                return;
            }
        };
        let mut upstream = None;
        let mut last = String::from("no address");
        for addr in &addresses {
            match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    upstream = Some((s, *addr));
                    break;
                }
                Ok(Err(e)) => last = format!("{addr}: {}", e.kind()),
                Err(_) => last = format!("{addr}: timed out"),
            }
        }
        let Some((mut upstream, address)) = upstream else {
            let why = format!("could not connect ({last})");
            let _ = reply(&mut client, 502, &why).await;
            self.report(&asked, Outcome::Failed(why));
            return;
        };
        self.report(&asked, Outcome::Connected { address });
        if client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await.is_err() {
            return;
        }
        if !rest.is_empty() && upstream.write_all(&rest).await.is_err() {
            return;
        }
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }

    /// The addresses to dial for `target`, or why it is refused.
    async fn decide(&self, target: &Target) -> Result<Vec<SocketAddr>, String> {
        match target {
            Target::Address(a) if self.rules.allows_address(a.ip(), a.port()) => Ok(vec![*a]),
            Target::Address(a) => Err(match non_public(a.ip()) {
                Some(why) => format!("{a} is {why} and not in this server's egress list"),
                None => format!("{a} is not in this server's egress list (an address must be listed by address)"),
            }),
            Target::Name(host, port) if !self.rules.allows_name(host, *port) => {
                Err(format!("{host}:{port} is not in this server's egress list"))
            }
            Target::Name(host, port) => {
                let rules = &self.rules;
                resolve_checked(host, *port, |ip| address_verdict(rules, ip, *port, false)).await
            }
        }
    }

    fn report(&self, target: &str, outcome: Outcome) {
        match &outcome {
            Outcome::Refused(why) => tracing::warn!(server = %self.server, %target, "egress refused: {why}"),
            Outcome::Failed(why) => tracing::info!(server = %self.server, %target, "egress failed: {why}"),
            Outcome::Connected { address } => {
                tracing::info!(server = %self.server, %target, %address, "egress allowed")
            }
        }
        if let Some(o) = &self.observer {
            o.connection(&EgressEvent { server: &self.server, target, outcome });
        }
    }
}

/// Reads up to the end of the request head; returns it and whatever came after it.
async fn read_head(client: &mut TcpStream) -> Result<(String, Vec<u8>), String> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = client.read(&mut chunk).await.map_err(|e| format!("reading the request failed ({})", e.kind()))?;
        if n == 0 {
            return Err("the connection closed before a request".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            let head = String::from_utf8(buf).map_err(|_| "the request is not text".to_owned())?;
            return Ok((head, rest));
        }
        if buf.len() > HEAD_MAX {
            return Err("the request head is too long".into());
        }
    }
}

/// Reads `CONNECT host:port HTTP/1.x`.
fn parse_connect(line: &str) -> Result<Target, String> {
    let mut parts = line.split(' ');
    let (Some(method), Some(authority), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the request line is malformed".into());
    };
    if method != "CONNECT" {
        return Err("only CONNECT is proxied: reach https URLs through the proxy; plain http is not forwarded".into());
    }
    if !version.starts_with("HTTP/1.") {
        return Err("the request line is malformed".into());
    }
    if let Ok(sa) = authority.parse::<SocketAddr>() {
        return Ok(Target::Address(canonical(sa)));
    }
    let (host, port) = authority.rsplit_once(':').ok_or("the target has no port")?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or("the target's port is not valid")?;
    // The URL parser reads a host the way clients and resolvers do (`0x7f.1` is an address).
    match url::Host::parse(host).map_err(|_| "the target's host is not valid".to_owned())? {
        url::Host::Ipv4(ip) => Ok(Target::Address(SocketAddr::new(ip.into(), port))),
        url::Host::Ipv6(ip) => Ok(Target::Address(canonical(SocketAddr::new(ip.into(), port)))),
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty() || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.') {
                return Err("the target's host is not valid".into());
            }
            Ok(Target::Name(d, port))
        }
    }
}

fn canonical(sa: SocketAddr) -> SocketAddr {
    SocketAddr::new(super::rules::canonical(sa.ip()), sa.port())
}

async fn reply(client: &mut TcpStream, status: u16, why: &str) -> std::io::Result<()> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        502 => "Bad Gateway",
        _ => "Service Unavailable",
    };
    let body = format!("Warden egress: {why}\n");
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes()).await?;
    client.write_all(body.as_bytes()).await?;
    client.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_lines_are_read_strictly() {
        assert_eq!(
            parse_connect("CONNECT api.Example.com.:443 HTTP/1.1"),
            Ok(Target::Name("api.example.com".into(), 443))
        );
        assert_eq!(parse_connect("CONNECT 10.0.0.1:80 HTTP/1.1"), Ok(Target::Address("10.0.0.1:80".parse().unwrap())));
        assert_eq!(
            parse_connect("CONNECT [::ffff:a9fe:a9fe]:80 HTTP/1.1"),
            Ok(Target::Address("169.254.169.254:80".parse().unwrap()))
        );
        assert_eq!(parse_connect("CONNECT 0x7f.1:80 HTTP/1.1"), Ok(Target::Address("127.0.0.1:80".parse().unwrap())));
        assert_eq!(
            parse_connect("CONNECT 2130706433:80 HTTP/1.1"),
            Ok(Target::Address("127.0.0.1:80".parse().unwrap()))
        );
        for bad in [
            "GET http://x/ HTTP/1.1",
            "CONNECT x HTTP/1.1",
            "CONNECT x:0 HTTP/1.1",
            "CONNECT a_b:1 HTTP/1.1",
            "CONNECT x:1  HTTP/1.1",
            "CONNECT x:1 SPDY",
        ] {
            assert!(parse_connect(bad).is_err(), "{bad}");
        }
    }
}
