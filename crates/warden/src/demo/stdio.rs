//! The demo server on stdin/stdout.

use super::{ClientRequests, Demo, Peer, initialize_result, listen_ack, shape_modern};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use warden_protocol::{Id, IdKey, Kind, Limits, Message, meta};
use warden_upstream::{Line, LineReader};

/// Serves the demo on stdin/stdout until stdin closes.
pub async fn serve(page_size: usize) -> anyhow::Result<()> {
    let demo = Arc::new(Demo::with_page_size(page_size));
    let (tx, mut rx) = mpsc::channel::<Message>(256);
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(m) = rx.recv().await {
            let mut line = m.to_vec();
            line.push(b'\n');
            if out.write_all(&line).await.is_err() {
                break;
            }
            if rx.is_empty() {
                let _ = out.flush().await;
            }
        }
    });
    let requests = Arc::new(ClientRequests::default());
    let inflight: Arc<Mutex<HashMap<IdKey, CancellationToken>>> = Arc::default();
    // Who hears about changed notes: the legacy session, and modern listen streams by id.
    let legacy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let listens: Arc<Mutex<HashMap<IdKey, Value>>> = Arc::default();
    {
        let (mut changes, tx, legacy, listens) = (demo.changes(), tx.clone(), legacy.clone(), listens.clone());
        tokio::spawn(async move {
            while changes.recv().await.is_ok() {
                if legacy.load(Ordering::Relaxed) {
                    let _ = tx.send(Message::notification("notifications/resources/list_changed", None)).await;
                }
                let ids: Vec<Value> = listens.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
                for id in ids {
                    let params = json!({ "_meta": { meta::SUBSCRIPTION_ID: id } });
                    let _ = tx.send(Message::notification("notifications/resources/list_changed", Some(params))).await;
                }
            }
        });
    }
    let limits = Limits::default();
    let mut reader = LineReader::new(BufReader::new(tokio::io::stdin()), limits.max_frame_bytes);
    while let Ok(line) = reader.next().await {
        let bytes = match line {
            Line::Frame(b) => b,
            Line::Oversized(_) => continue,
            Line::Eof => break,
        };
        let msg = match Message::parse(&bytes, &limits) {
            Ok(m) => m,
            Err(e) => {
                let _ = tx.send(Message::error_response(e.id, &e.error)).await;
                continue;
            }
        };
        match msg.kind() {
            Kind::Response | Kind::Error => requests.answer(msg),
            Kind::Notification => {
                if msg.method() == Some("notifications/cancelled") {
                    let id = msg.params().and_then(|p| p.get("requestId")).and_then(Id::from_value);
                    if let Some(id) = id {
                        listens.lock().unwrap_or_else(|p| p.into_inner()).remove(&id.key());
                        if let Some(t) = inflight.lock().unwrap_or_else(|p| p.into_inner()).get(&id.key()).cloned() {
                            t.cancel();
                        }
                    }
                }
            }
            Kind::Request => {
                let Some(id) = msg.id().cloned() else { continue };
                let method = msg.method().unwrap_or_default().to_owned();
                if method == "initialize" {
                    legacy.store(true, Ordering::Relaxed);
                    let _ = tx.send(Message::response(id, initialize_result(msg.params()))).await;
                    continue;
                }
                if method == "subscriptions/listen" {
                    let (ack, resources) = listen_ack(&msg);
                    if resources {
                        listens.lock().unwrap_or_else(|p| p.into_inner()).insert(id.key(), id.to_value());
                    }
                    let _ = tx.send(ack).await;
                    continue;
                }
                let params = msg.params().cloned().unwrap_or_else(|| json!({}));
                let modern = params.get("_meta").and_then(|m| m.get(meta::PROTOCOL_VERSION)).is_some();
                let cancel = CancellationToken::new();
                inflight.lock().unwrap_or_else(|p| p.into_inner()).insert(id.key(), cancel.clone());
                let (demo, tx, requests, inflight) = (demo.clone(), tx.clone(), requests.clone(), inflight.clone());
                tokio::spawn(async move {
                    let notify_tx = tx.clone();
                    let peer = Peer {
                        notify: Box::new(move |m| {
                            let _ = notify_tx.try_send(m);
                        }),
                        ask: (!modern).then(|| requests.asker(tx.clone())),
                        cancel,
                    };
                    let reply = match demo.handle(&method, &params, modern, &peer).await {
                        Ok(r) => Message::response(id.clone(), if modern { shape_modern(&method, r) } else { r }),
                        Err(e) => Message::error_response(Some(id.clone()), &e),
                    };
                    inflight.lock().unwrap_or_else(|p| p.into_inner()).remove(&id.key());
                    let _ = tx.send(reply).await;
                });
            }
        }
    }
    // Input ended: the client is gone. Flush what is queued, then stop, even though background
    // tasks (change notifications) still hold senders.
    drop(tx);
    let _ = tokio::time::timeout(std::time::Duration::from_millis(200), writer).await;
    std::process::exit(0)
}
