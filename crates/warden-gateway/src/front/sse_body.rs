//! SSE response bodies: a call's stream, a session's stream, and a listen stream.
//!
//! Dropping a body (the client went away) cancels what it was waiting for.

use bytes::Bytes;
use futures::Stream;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use warden_protocol::{Message, RpcError, sse};

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Cancels a token when dropped, unless disarmed.
pub struct CancelOnDrop(Option<CancellationToken>);

impl CancelOnDrop {
    /// Guards `token`.
    pub fn new(token: CancellationToken) -> Self {
        CancelOnDrop(Some(token))
    }

    /// The work finished normally: do not cancel.
    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

fn frame(msg: &Message) -> Bytes {
    sse::encode_event(&msg.to_vec())
}

struct CallStream {
    queued: std::collections::VecDeque<Message>,
    rx: Option<mpsc::Receiver<Message>>,
    task: Option<(JoinHandle<Message>, CancelOnDrop)>,
    done: bool,
}

/// A call's SSE stream: messages already produced, then whatever the call sends, then its result.
pub fn event_stream(
    first: Vec<Message>,
    rx: Option<mpsc::Receiver<Message>>,
    final_reply: Option<Message>,
    task: Option<(JoinHandle<Message>, CancelOnDrop)>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let mut queued: std::collections::VecDeque<Message> = first.into();
    queued.extend(final_reply);
    let state = CallStream { queued, rx, task, done: false };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(m) = st.queued.pop_front() {
                return Some((Ok(frame(&m)), st));
            }
            if st.done {
                return None;
            }
            let Some((task, _)) = st.task.as_mut() else {
                st.done = true;
                continue;
            };
            let rx = st.rx.as_mut();
            tokio::select! {
                biased;
                Some(m) = async { match rx { Some(rx) => rx.recv().await, None => None } } => st.queued.push_back(m),
                reply = task => {
                    let reply = reply.unwrap_or_else(|_| Message::error_response(None, &RpcError::internal("the request failed")));
                    if let Some(rx) = st.rx.as_mut() {
                        while let Ok(m) = rx.try_recv() {
                            st.queued.push_back(m);
                        }
                    }
                    st.queued.push_back(reply);
                    if let Some((_, guard)) = st.task.take() {
                        guard.disarm();
                    }
                    st.done = true;
                }
            }
        }
    })
}

/// A legacy session's stream of unsolicited messages, with keep-alives, until the session ends.
pub fn session_stream(
    rx: mpsc::Receiver<Message>,
    closed: CancellationToken,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    futures::stream::unfold((rx, closed), |(mut rx, closed)| async move {
        tokio::select! {
            m = rx.recv() => m.map(|m| (Ok(frame(&m)), (rx, closed))),
            () = tokio::time::sleep(KEEP_ALIVE) => Some((Ok(sse::keep_alive()), (rx, closed))),
            () = closed.cancelled() => None,
        }
    })
}

struct ListenState {
    ack: Option<Message>,
    rx: mpsc::Receiver<Message>,
    on_close: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
}

impl Drop for ListenState {
    fn drop(&mut self) {
        if let Some(f) = self.on_close.take() {
            tokio::spawn(f);
        }
    }
}

/// A `subscriptions/listen` stream: the acknowledgement, then notifications, with keep-alives.
/// `on_close` runs when the client closes it.
pub fn listen_stream(
    ack: Message,
    rx: mpsc::Receiver<Message>,
    on_close: Pin<Box<dyn Future<Output = ()> + Send>>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let state = ListenState { ack: Some(ack), rx, on_close: Some(on_close) };
    futures::stream::unfold(state, |mut st| async move {
        if let Some(a) = st.ack.take() {
            return Some((Ok(frame(&a)), st));
        }
        tokio::select! {
            m = st.rx.recv() => m.map(|m| (Ok(frame(&m)), st)),
            () = tokio::time::sleep(KEEP_ALIVE) => Some((Ok(sse::keep_alive()), st)),
        }
    })
}
