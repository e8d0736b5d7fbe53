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
use tokio_util::sync::CancellationToken;
use warden_protocol::{Message, sse};

const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A call being served, producing the response to send.
pub type CallFuture = Pin<Box<dyn Future<Output = Message> + Send>>;

fn frame(msg: &Message) -> Bytes {
    sse::encode_event(&msg.to_vec())
}

struct CallStream {
    queued: std::collections::VecDeque<Message>,
    rx: Option<mpsc::Receiver<Message>>,
    call: Option<CallFuture>,
}

/// A call's SSE stream: messages already produced, then whatever the call sends, then its result.
/// The call is polled by the stream itself; dropping the stream drops the call.
pub fn event_stream(
    first: Vec<Message>,
    rx: Option<mpsc::Receiver<Message>>,
    call: Option<CallFuture>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let state = CallStream { queued: first.into(), rx, call };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(m) = st.queued.pop_front() {
                return Some((Ok(frame(&m)), st));
            }
            let call = st.call.as_mut()?;
            let rx = st.rx.as_mut();
            tokio::select! {
                biased;
                Some(m) = async { match rx { Some(rx) => rx.recv().await, None => None } } => st.queued.push_back(m),
                reply = call => {
                    if let Some(rx) = st.rx.as_mut() {
                        while let Ok(m) = rx.try_recv() {
                            st.queued.push_back(m);
                        }
                    }
                    st.queued.push_back(reply);
                    st.call = None;
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
