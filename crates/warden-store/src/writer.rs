//! [`AuditLog`]: the one writer of the chain in this process.
//!
//! `record` hands the event to a single writer task through a bounded queue. The task takes
//! whatever is queued (up to `max_batch`), and in one transaction reads the chain head,
//! numbers and hashes the rows, inserts them and commits; then it answers `Sync` callers and
//! copies the rows to the JSONL sink. One task per process keeps its chain unbroken however many
//! callers there are: on SQLite the one chain `''` (under the database's write lock), on
//! Postgres a chain of this process's own, so gateways sharing the database never wait for one
//! another; there, with a signing key, it also states every chain's head every few seconds.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::SigningKey;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::StoreError;
use crate::backend::{Backend, redact};
use crate::chain::{GENESIS_HASH, StoredRow};
use crate::checkpoint::{self, PruneReport};
use crate::event::{AuditEvent, AuditRow};
use crate::heads;

/// When `record` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// After the row's transaction committed (SQLite `synchronous=FULL`). Callers that wait
    /// at the same time share one commit.
    Sync,
    /// Once the event is queued; the writer gathers events for up to `max_delay` and commits
    /// them together (SQLite `synchronous=NORMAL`). A crash can lose the queue.
    Batched { max_delay: Duration },
}

/// Where committed rows are copied as JSON lines, for log shippers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonlSink {
    Stdout,
    /// Appended to; created with mode 0600.
    File(PathBuf),
}

/// How to open an [`AuditLog`]. Start from [`AuditSettings::new`].
#[derive(Clone)]
pub struct AuditSettings {
    /// `sqlite:///abs/path.db`, `sqlite://relative.db` or `postgres://...`.
    pub url: String,
    pub durability: Durability,
    /// Most rows per transaction.
    pub max_batch: usize,
    /// Most events waiting for the writer; `record` waits for room beyond that.
    pub queue: usize,
    pub jsonl: Option<JsonlSink>,
    /// File holding the Ed25519 secret (64 hex characters) that signs retention checkpoints;
    /// generated with mode 0600 if missing. Required with `retain`.
    pub signing_key: Option<PathBuf>,
    /// Delete rows older than this (after a signed checkpoint). `None` keeps everything.
    pub retain: Option<Duration>,
}

impl AuditSettings {
    /// `Sync` durability, batches of 256, a queue of 4096, no sink, no retention.
    pub fn new(url: impl Into<String>) -> AuditSettings {
        AuditSettings {
            url: url.into(),
            durability: Durability::Sync,
            max_batch: 256,
            queue: 4096,
            jsonl: None,
            signing_key: None,
            retain: None,
        }
    }

    fn retention(&self) -> Result<Option<TimeDelta>, StoreError> {
        if self.max_batch == 0 || self.queue == 0 {
            return Err(StoreError::Settings("max_batch and queue must be at least 1".into()));
        }
        let Some(retain) = self.retain else { return Ok(None) };
        if self.signing_key.is_none() {
            return Err(StoreError::Settings(
                "retention needs a signing key: set signing_key to a file path (a key is generated there if missing), \
                 so pruned rows leave a signed checkpoint"
                    .into(),
            ));
        }
        match TimeDelta::from_std(retain) {
            Ok(delta) if delta > TimeDelta::zero() => Ok(Some(delta)),
            _ => Err(StoreError::Settings("retain must be a positive duration of at most a few million years".into())),
        }
    }
}

impl std::fmt::Debug for AuditSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSettings")
            .field("url", &redact(&self.url))
            .field("durability", &self.durability)
            .field("max_batch", &self.max_batch)
            .field("queue", &self.queue)
            .field("jsonl", &self.jsonl)
            .field("signing_key", &self.signing_key)
            .field("retain", &self.retain)
            .finish()
    }
}

/// The audit log's write side. Cheap to clone; every clone feeds the same writer.
///
/// Dropping every clone lets the writer finish what is queued (while the runtime lives);
/// [`shutdown`](AuditLog::shutdown) also waits for it.
#[derive(Clone)]
pub struct AuditLog {
    shared: Arc<Shared>,
}

struct Shared {
    sender: Mutex<Option<mpsc::Sender<Pending>>>,
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
    retention: Mutex<Option<JoinHandle<()>>>,
    heads: Mutex<Option<JoinHandle<()>>>,
    /// States the heads (Postgres, with a signing key).
    stater: Option<Arc<tokio::sync::Mutex<heads::Stater>>>,
    backlog: Arc<AtomicUsize>,
    sync: bool,
    backend: Backend,
    /// This process's chain (`''` on SQLite).
    chain: String,
    signing_key: Option<Arc<SigningKey>>,
    retain: Option<TimeDelta>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        for task in [&self.retention, &self.heads] {
            if let Some(task) = task.lock().unwrap_or_else(PoisonError::into_inner).take() {
                task.abort();
            }
        }
    }
}

/// An event waiting for the writer, and who to tell when it is committed.
struct Pending {
    event: AuditEvent,
    ack: Option<oneshot::Sender<Result<(), Arc<StoreError>>>>,
}

impl AuditLog {
    /// Opens (creating on first start) the store, runs migrations and starts the writer, and
    /// the retention task if `retain` is set.
    pub async fn open(settings: AuditSettings) -> Result<AuditLog, StoreError> {
        let retain = settings.retention()?;
        let signing_key = match &settings.signing_key {
            Some(path) => Some(Arc::new(checkpoint::load_or_create_key(path)?)),
            None => None,
        };
        let sink = match &settings.jsonl {
            None => None,
            Some(target) => Some(Sink::open(target).await?),
        };
        let sync = settings.durability == Durability::Sync;
        let backend = Backend::open_writer(&settings.url, sync).await?;
        let chain = if backend.is_shared() { chain_name() } else { String::new() };
        if !chain.is_empty() {
            tracing::info!(chain = %chain, "audit rows of this gateway go to a chain of its own");
        }
        let (sender, receiver) = mpsc::channel(settings.queue);
        let backlog = Arc::new(AtomicUsize::new(0));
        let writer = Writer {
            receiver,
            head: None,
            chain: chain.clone(),
            backend: backend.clone(),
            durability: settings.durability,
            max_batch: settings.max_batch,
            backlog: backlog.clone(),
            sink,
        };
        let writer = tokio::spawn(writer.run());
        let retention = match (retain, &signing_key) {
            (Some(retain), Some(key)) => Some(tokio::spawn(retention_loop(backend.clone(), key.clone(), retain))),
            _ => None,
        };
        let stater = match &signing_key {
            Some(key) if !chain.is_empty() => {
                // The chain is named from its start, before it has rows: a chain no statement
                // names is one no gateway holding the key wrote.
                let mut stater = heads::Stater::new(key.clone(), &chain);
                if let Err(err) = stater.state(&backend).await {
                    tracing::error!(error = %err, "the audit chains' heads could not be stated");
                }
                Some(Arc::new(tokio::sync::Mutex::new(stater)))
            }
            _ => None,
        };
        let heads = stater.clone().map(|stater| tokio::spawn(heads_loop(backend.clone(), stater)));
        Ok(AuditLog {
            shared: Arc::new(Shared {
                sender: Mutex::new(Some(sender)),
                writer: tokio::sync::Mutex::new(Some(writer)),
                retention: Mutex::new(retention),
                heads: Mutex::new(heads),
                stater,
                backlog,
                sync,
                backend,
                chain,
                signing_key,
                retain,
            }),
        })
    }

    /// Appends one event. In `Sync` mode returns once its transaction committed (an error
    /// means it is not stored: fail the request closed); in `Batched` mode once it is queued,
    /// waiting for room if the queue is full. Never drops an event.
    pub async fn record(&self, event: AuditEvent) -> Result<(), StoreError> {
        let sender = self.shared.sender.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let sender = sender.ok_or(StoreError::Closed)?;
        let (ack, committed) = if self.shared.sync {
            let (ack, committed) = oneshot::channel();
            (Some(ack), Some(committed))
        } else {
            (None, None)
        };
        // Counted before sending so the writer can never count it off first.
        self.shared.backlog.fetch_add(1, Ordering::Relaxed);
        if sender.send(Pending { event: event.normalized(), ack }).await.is_err() {
            self.shared.backlog.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::WriterGone);
        }
        drop(sender);
        match committed {
            None => Ok(()),
            Some(committed) => match committed.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(err)) => Err(StoreError::NotRecorded(err)),
                Err(_) => Err(StoreError::WriterGone),
            },
        }
    }

    /// Stops accepting events, commits everything queued, flushes the JSONL sink and closes
    /// the database. Idempotent; concurrent calls all wait for the drain. If the database is
    /// down this waits until it is back (rows are not dropped): bound it with a timeout.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let mut writer = self.shared.writer.lock().await;
        self.shared.sender.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(task) = self.shared.retention.lock().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
        if let Some(task) = self.shared.heads.lock().unwrap_or_else(PoisonError::into_inner).take() {
            task.abort();
        }
        if let Some(task) = writer.take() {
            task.await.map_err(|_| StoreError::WriterGone)?;
            // The last word on this chain: a statement naming the head it ends at.
            if let Some(stater) = &self.shared.stater
                && let Err(err) = stater.lock().await.state(&self.shared.backend).await
            {
                tracing::error!(error = %err, "the audit chains' heads could not be stated at shutdown");
            }
            self.shared.backend.close().await;
        }
        Ok(())
    }

    /// This process's chain: `""` on SQLite, else the name it was given at start.
    pub fn chain(&self) -> &str {
        &self.shared.chain
    }

    /// Events queued or being written, for metrics.
    pub fn backlog(&self) -> usize {
        self.shared.backlog.load(Ordering::Relaxed)
    }

    /// Runs one retention pass as of `now` (the periodic task calls this with the clock).
    /// Fails with a settings error unless `retain` and `signing_key` were set.
    pub async fn prune(&self, now: DateTime<Utc>) -> Result<PruneReport, StoreError> {
        let (Some(key), Some(retain)) = (&self.shared.signing_key, self.shared.retain) else {
            return Err(StoreError::Settings("pruning needs `retain` and `signing_key` in the audit settings".into()));
        };
        checkpoint::prune(&self.shared.backend, key, now - retain, now).await
    }
}

async fn retention_loop(backend: Backend, key: Arc<SigningKey>, retain: TimeDelta) {
    let period =
        retain.to_std().unwrap_or_default().div_f64(10.0).clamp(Duration::from_secs(1), Duration::from_secs(600));
    // The first pass waits one period, so a restart loop does not prune on every start.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = Utc::now();
        if let Err(err) = checkpoint::prune(&backend, &key, now - retain, now).await {
            tracing::error!(error = %err, "audit retention failed; rows are kept until it succeeds");
        }
    }
}

/// States the chains' heads every [`heads::HEADS_EVERY`].
async fn heads_loop(backend: Backend, stater: Arc<tokio::sync::Mutex<heads::Stater>>) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + heads::HEADS_EVERY, heads::HEADS_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = stater.lock().await.state(&backend).await {
            tracing::error!(error = %err, "the audit chains' heads could not be stated");
        }
    }
}

/// A chain name no other process has: the host, the start time and a random suffix.
fn chain_name() -> String {
    let host =
        std::env::var("HOSTNAME").ok().or_else(|| std::fs::read_to_string("/etc/hostname").ok()).unwrap_or_default();
    let host: String =
        host.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').take(63).collect();
    let host = if host.is_empty() { "gateway".to_owned() } else { host };
    format!("{host}-{}-{:06x}", Utc::now().format("%Y%m%dT%H%M%S"), rand::random::<u32>() & 0xff_ffff)
}

struct Writer {
    chain: String,
    /// The head of its own chain as this writer left it (a named chain has no other writer).
    head: Option<(i64, String)>,
    receiver: mpsc::Receiver<Pending>,
    backend: Backend,
    durability: Durability,
    max_batch: usize,
    backlog: Arc<AtomicUsize>,
    sink: Option<Sink>,
}

impl Writer {
    async fn run(mut self) {
        let mut batch = Vec::with_capacity(self.max_batch);
        // `recv_many` returns 0 only when every sender is gone and the queue is empty.
        while self.receiver.recv_many(&mut batch, self.max_batch).await > 0 {
            if let Durability::Batched { max_delay } = self.durability {
                let deadline = tokio::time::Instant::now() + max_delay;
                while batch.len() < self.max_batch {
                    let room = self.max_batch - batch.len();
                    match tokio::time::timeout_at(deadline, self.receiver.recv_many(&mut batch, room)).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
            let rows = self.commit(&mut batch).await;
            if let Some(sink) = &mut self.sink {
                sink.write(&rows).await;
            }
        }
    }

    /// Commits the batch, retrying (with backoff) until it does, except that `Sync` callers
    /// are told of a failure at once and their events leave the batch. Returns what was
    /// committed and empties `batch`.
    async fn commit(&mut self, batch: &mut Vec<Pending>) -> Vec<AuditRow> {
        let mut delay = Duration::from_millis(100);
        loop {
            match append(&self.backend, &self.chain, &self.head, batch.iter().map(|p| &p.event)).await {
                Ok(rows) => {
                    if let Some(last) = rows.last().filter(|_| !self.chain.is_empty()) {
                        self.head = Some((last.link, last.row_hash.clone()));
                    }
                    // Out of the backlog before any caller hears it committed.
                    self.backlog.fetch_sub(batch.len(), Ordering::Relaxed);
                    return batch
                        .drain(..)
                        .zip(rows)
                        .map(|(pending, row)| {
                            if let Some(ack) = pending.ack {
                                let _ = ack.send(Ok(()));
                            }
                            row.with_event(pending.event)
                        })
                        .collect();
                }
                Err(err) => {
                    let err = Arc::new(err);
                    let before = batch.len();
                    batch.retain_mut(|pending| match pending.ack.take() {
                        Some(ack) => {
                            let _ = ack.send(Err(err.clone()));
                            false
                        }
                        None => true,
                    });
                    self.backlog.fetch_sub(before - batch.len(), Ordering::Relaxed);
                    if batch.is_empty() {
                        tracing::error!(error = %err, "audit rows did not commit; the callers were told");
                        return Vec::new();
                    }
                    tracing::error!(error = %err, rows = batch.len(), retry_in = ?delay, "audit rows did not commit; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// One transaction: read the head of `chain`, chain the events after it, insert, commit. A
/// named chain's head must be the one its writer left (`expected`): rows deleted or edited
/// behind its back are not built upon (the rows wait, and the error says why).
async fn append<'a>(
    backend: &Backend,
    chain: &str,
    expected: &Option<(i64, String)>,
    events: impl Iterator<Item = &'a AuditEvent>,
) -> Result<Vec<StoredRow>, StoreError> {
    let events: Vec<&AuditEvent> = events.collect();
    let mut tx = backend.begin_append(chain).await?;
    let head = tx.head(chain).await?;
    if !chain.is_empty() && head != *expected {
        return Err(StoreError::ChainBroken {
            seq: 0,
            problem: format!(
                "this gateway's audit chain {chain:?} does not end where it left it (rows deleted or edited): \
                 nothing more is appended to it; run `warden audit verify`"
            ),
        });
    }
    let (mut link, mut prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
    // In the chain '' a row's seq is its link; a named chain's rows take theirs from the sequence.
    let seqs = if chain.is_empty() { None } else { Some(tx.next_seqs(events.len()).await?) };
    let mut rows = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        link = link.checked_add(1).ok_or_else(|| StoreError::CorruptRow {
            seq: link,
            problem: "the chain head's link is at its maximum (edited?)".into(),
        })?;
        let seq = seqs.as_ref().and_then(|s| s.get(i).copied()).unwrap_or(link);
        let row = StoredRow::linked(seq, chain, link, event, &prev_hash);
        tx.insert(&row).await?;
        prev_hash.clone_from(&row.row_hash);
        rows.push(row);
    }
    tx.commit().await?;
    Ok(rows)
}

/// The JSONL copy. The database is the record; a sink that cannot be written is logged, not
/// fatal.
struct Sink {
    out: SinkOut,
    name: String,
}

enum SinkOut {
    Stdout(tokio::io::Stdout),
    File(tokio::fs::File),
}

impl Sink {
    async fn open(target: &JsonlSink) -> Result<Sink, StoreError> {
        Ok(match target {
            JsonlSink::Stdout => Sink { out: SinkOut::Stdout(tokio::io::stdout()), name: "stdout".into() },
            JsonlSink::File(path) => {
                let mut options = tokio::fs::OpenOptions::new();
                options.create(true).append(true);
                #[cfg(unix)]
                options.mode(0o600);
                let file = options.open(path).await.map_err(|source| StoreError::Io { path: path.clone(), source })?;
                Sink { out: SinkOut::File(file), name: path.display().to_string() }
            }
        })
    }

    async fn write(&mut self, rows: &[AuditRow]) {
        if rows.is_empty() {
            return;
        }
        let mut lines = String::new();
        for row in rows {
            match serde_json::to_string(row) {
                Ok(line) => {
                    lines.push_str(&line);
                    lines.push('\n');
                }
                Err(err) => tracing::warn!(seq = row.seq, error = %err, "audit row could not be written as JSON"),
            }
        }
        let result = match &mut self.out {
            SinkOut::Stdout(out) => write_flushed(out, lines.as_bytes()).await,
            SinkOut::File(out) => write_flushed(out, lines.as_bytes()).await,
        };
        if let Err(err) = result {
            tracing::warn!(sink = %self.name, error = %err, "audit JSONL sink write failed; the rows are in the database");
        }
    }
}

async fn write_flushed(out: &mut (impl AsyncWriteExt + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(bytes).await?;
    out.flush().await
}
