//! The HTTP listener: accepts connections within bounds, so that clients that send slowly, send
//! huge heads, or simply open many connections cannot hold the gateway's sockets.
//!
//! - a request's head must arrive within `header_read_timeout`, which also closes a connection
//!   idle that long between requests;
//! - a head larger than `max_header_bytes` is refused (431);
//! - at most `max_connections` connections are open at once, and at most
//!   `max_connections_per_client` from one address; past either, a new connection is closed as
//!   soon as it is accepted;
//! - a body must arrive within `body_read_timeout` (the front answers 408 otherwise).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The bounds a listener keeps.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// Time allowed for a request's head, and for a connection's idleness between requests.
    pub header_read_timeout: Duration,
    /// Largest request head, in bytes (at least 8192).
    pub max_header_bytes: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one address.
    pub max_connections_per_client: usize,
}

impl HttpLimits {
    /// The bounds the `[gateway]` section sets.
    pub fn of(g: &crate::config::GatewaySection) -> HttpLimits {
        HttpLimits {
            header_read_timeout: g.header_read_timeout.0,
            max_header_bytes: (g.max_header_bytes as usize).max(8192),
            max_connections: g.max_connections as usize,
            max_connections_per_client: g.max_connections_per_client as usize,
        }
    }
}

/// Open connections by client address.
#[derive(Default)]
struct PerClient {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerClient`], given back when the connection closes.
struct ClientPlace {
    clients: Arc<PerClient>,
    addr: IpAddr,
}

impl PerClient {
    fn admit(self: &Arc<Self>, addr: IpAddr, most: usize) -> Option<ClientPlace> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(addr).or_default();
        if *n >= most {
            return None;
        }
        *n += 1;
        Some(ClientPlace { clients: self.clone(), addr })
    }
}

impl Drop for ClientPlace {
    fn drop(&mut self) {
        let mut open = self.clients.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.addr) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.addr);
            }
        }
    }
}

/// Serves `app` on `listener` within `limits` until `shutdown` completes, then lets the open
/// connections finish (at most `grace`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let total = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Arc::new(PerClient::default());
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = total.clone().try_acquire_owned() else {
            tracing::warn!(client = %peer.ip(), "refused a connection: {} are open already", limits.max_connections);
            continue;
        };
        let Some(place) = clients.admit(peer.ip(), limits.max_connections_per_client) else {
            tracing::warn!(client = %peer.ip(), "refused a connection: this client has {} open already",
                limits.max_connections_per_client);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(client = %peer.ip(), "connection ended: {e}");
            }
            drop((slot, place));
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {grace:?} were closed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_per_client_are_bounded_and_given_back() {
        let clients = Arc::new(PerClient::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..2).map(|_| clients.admit(a, 2).unwrap()).collect();
        assert!(clients.admit(a, 2).is_none(), "a third from the same address is refused");
        assert!(clients.admit(b, 2).is_some(), "another address is not");
        drop(held);
        assert!(clients.admit(a, 2).is_some());
        assert!(clients.open.lock().unwrap().get(&b).is_none(), "nothing is kept for closed connections");
    }
}
