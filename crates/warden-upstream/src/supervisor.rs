//! Keeps one server reachable: connects on first use, and after a crash reconnects on the next use,
//! backing off when the server keeps failing.

use crate::connection::Connection;
use crate::core::ServerEvent;
use crate::error::UpstreamError;
use crate::spec::UpstreamSpec;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};

/// A server that has lived this long before failing is considered healthy again.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct State {
    conn: Option<Arc<Connection>>,
    connected_at: Option<Instant>,
    failures: u32,
    not_before: Option<Instant>,
    last_reason: Option<String>,
    generation: u64,
}

/// One supervised server.
pub struct Upstream {
    spec: Arc<UpstreamSpec>,
    events: mpsc::Sender<ServerEvent>,
    state: Mutex<State>,
}

impl Upstream {
    /// A supervisor for `spec`; nothing is started until [`Upstream::connection`] is called.
    pub fn new(spec: Arc<UpstreamSpec>, events: mpsc::Sender<ServerEvent>) -> Self {
        Upstream {
            spec,
            events,
            state: Mutex::new(State {
                conn: None,
                connected_at: None,
                failures: 0,
                not_before: None,
                last_reason: None,
                generation: 0,
            }),
        }
    }

    /// The server's spec.
    pub fn spec(&self) -> &Arc<UpstreamSpec> {
        &self.spec
    }

    /// A live connection and its generation (which changes whenever the server was restarted or
    /// reconnected), connecting if needed. While the server is backing off after repeated
    /// failures this fails at once, saying when to retry.
    pub async fn connection(&self) -> Result<(Arc<Connection>, u64), UpstreamError> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.conn {
            if !c.is_closed() {
                return Ok((c.clone(), st.generation));
            }
            let lived = st.connected_at.map(|t| t.elapsed()).unwrap_or_default();
            st.last_reason = Some(
                c.exit_status()
                    .map_or_else(|| "the connection ended".to_owned(), |s| format!("the process exited ({s})")),
            );
            st.conn = None;
            if lived >= HEALTHY_AFTER {
                st.failures = 0;
            } else {
                st.failures += 1;
                st.not_before = Some(Instant::now() + backoff(st.failures));
            }
        }
        if let Some(t) = st.not_before {
            let now = Instant::now();
            if t > now {
                let reason = st.last_reason.clone().unwrap_or_else(|| "it failed recently".into());
                return Err(UpstreamError::Unavailable {
                    server: self.spec.name.clone(),
                    reason: format!("restarting after a failure ({reason})"),
                    retry_after: Some(t - now),
                });
            }
        }
        match Connection::open(self.spec.clone(), self.events.clone()).await {
            Ok(c) => {
                st.conn = Some(c.clone());
                st.connected_at = Some(Instant::now());
                st.not_before = None;
                st.generation += 1;
                Ok((c, st.generation))
            }
            Err(e @ UpstreamError::EraUnsupported { .. }) => {
                // Not a failure of the server: retrying will not help and must not back off others.
                if let Some(c) = st.conn.take() {
                    c.shutdown().await;
                }
                Err(e)
            }
            Err(e) => {
                st.failures += 1;
                st.not_before = Some(Instant::now() + backoff(st.failures));
                st.last_reason = Some(match &e {
                    UpstreamError::Unavailable { reason, .. } => reason.clone(),
                    other => other.to_string(),
                });
                Err(e)
            }
        }
    }

    /// The current connection, if one is live, without connecting.
    pub fn current(&self) -> Option<Arc<Connection>> {
        let st = self.state.try_lock().ok()?;
        st.conn.clone().filter(|c| !c.is_closed())
    }

    /// Stops the server.
    pub async fn shutdown(&self) {
        let conn = self.state.lock().await.conn.take();
        if let Some(c) = conn {
            c.shutdown().await;
        }
    }
}

fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let exp = failures.saturating_sub(2).min(16);
    (FIRST_BACKOFF * 2u32.pow(exp)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::ZERO, "the first restart is immediate");
        assert_eq!(backoff(2), FIRST_BACKOFF);
        assert!(backoff(5) > backoff(4));
        assert_eq!(backoff(60), MAX_BACKOFF);
    }
}
