//! The console's live stream (server-sent events): what changed, so the page fetches it again.
//!
//! The stream looks at the stores, not at this process's own events, so a call held by another
//! gateway sharing the database appears too; this gateway's own changes wake it at once. It
//! ends when the session does.

use super::{Console, ConsoleState};
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde_json::json;
use std::time::Duration;

/// How often the stores are looked at when nothing woke the stream.
const LOOK_EVERY: Duration = Duration::from_secs(2);
/// A comment line this often keeps proxies from closing a quiet stream.
const PING_EVERY: Duration = Duration::from_secs(15);

/// How long an event may wait for a client that does not read.
const SEND_WITHIN: Duration = Duration::from_secs(10);

/// Most live streams one session may hold open (a few tabs).
const STREAMS_PER_SESSION: usize = 4;

/// One open stream, counted against its session while it lasts.
struct Open {
    console: std::sync::Arc<Console>,
    session: [u8; 32],
}

impl Open {
    fn new(c: &std::sync::Arc<Console>, token: &str) -> Option<Open> {
        let session: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()).into();
        let mut open = c.streams.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(session).or_insert(0);
        if *n >= STREAMS_PER_SESSION {
            return None;
        }
        *n += 1;
        Some(Open { console: c.clone(), session })
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut open = self.console.streams.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.session);
            }
        }
    }
}

/// What the page shows counts of, as last sent.
#[derive(Default, PartialEq, Eq, Clone)]
struct Seen {
    pending: Vec<String>,
    waiting: (usize, usize),
    contained: Vec<String>,
}

async fn look(c: &Console) -> Seen {
    let now = chrono::Utc::now();
    let mut pending: Vec<String> = match c.gateway.approvals.store().list(Some("pending"), 500).await {
        Ok(items) => items.into_iter().filter(|a| a.expires_at > now).map(|a| a.id).collect(),
        Err(_) => vec![],
    };
    pending.sort();
    let mut contained: Vec<String> = match c.gateway.containment.store().list().await {
        Ok(list) => list.into_iter().map(|x| x.server).collect(),
        Err(_) => vec![],
    };
    contained.sort();
    Seen { pending, waiting: super::reviews::waiting(c).await, contained }
}

fn event(name: &str, data: serde_json::Value) -> bytes::Bytes {
    bytes::Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

pub async fn stream(axum::extract::State(c): ConsoleState, headers: HeaderMap) -> Response {
    let operator = match c.reader(&headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let token = super::session::cookie(&headers, c.cookie_name()).unwrap_or_default();
    let Some(open) = Open::new(&c, &token) else {
        return super::problem(StatusCode::TOO_MANY_REQUESTS, "this session has enough live streams open");
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(8);
    tokio::spawn(async move {
        let _open = open;
        let mut last: Option<Seen> = None;
        let mut pinged = tokio::time::Instant::now();
        loop {
            // The session ended (signed out, expired): so does the stream.
            if c.sessions.get(&token).is_none() {
                return;
            }
            let now = look(&c).await;
            let mut out = Vec::new();
            if last.as_ref().is_none_or(|l| l.pending != now.pending) {
                out.push(event("approvals", json!({ "pending": now.pending.len() })));
            }
            if last.as_ref().is_none_or(|l| l.waiting != now.waiting) {
                out.push(event("reviews", json!({ "held": now.waiting.0, "quarantined": now.waiting.1 })));
            }
            if last.as_ref().is_none_or(|l| l.contained != now.contained) {
                out.push(event("inventory", json!({ "contained": now.contained.len() })));
            }
            if out.is_empty() && pinged.elapsed() >= PING_EVERY {
                out.push(event("ping", json!({})));
            }
            if !out.is_empty() {
                pinged = tokio::time::Instant::now();
            }
            // A client that stops reading holds its stream only so long: a send that cannot
            // complete ends it, so a session's end is noticed and its slot freed.
            for chunk in out {
                match tokio::time::timeout(SEND_WITHIN, tx.send(Ok(chunk))).await {
                    Ok(Ok(())) => {}
                    _ => return,
                }
            }
            last = Some(now);
            tokio::select! {
                _ = c.changed.notified() => {}
                _ = tokio::time::sleep(LOOK_EVERY) => {}
                _ = tx.closed() => return,
            }
        }
    });
    tracing::debug!(subject = %operator.principal.subject, "console event stream opened");
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}
