//! Delivery: a bounded queue to one background task that POSTs each notice to the webhooks
//! subscribed to its event. Nothing on a request's path waits for a webhook: a full queue drops
//! the notice (with a warning and `warden_notifications_total{outcome="dropped"}`).

use super::{Notice, NotifyEvent, WebhookFormat, format};
use crate::config::{Config, SettingValue, ValueSource};
use crate::error::GatewayError;
use crate::metrics::{Metrics, NotifyLabels};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use warden_store::AuditEvent;
use warden_upstream::egress::Policy;

/// Notices waiting for the delivery task, at most.
pub const QUEUE: usize = 1024;
/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The pause before the one retry.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Hands notices to the delivery task. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Notice>,
    wanted: Arc<HashSet<NotifyEvent>>,
    metrics: Arc<Metrics>,
    progress: Arc<Progress>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").field("wanted", &self.wanted).finish_non_exhaustive()
    }
}

/// Notices queued or being delivered, to wait for at shutdown.
#[derive(Default)]
struct Progress {
    open: AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Progress {
    fn done(&self) {
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// One configured webhook, its URL resolved. The URL is never logged: it often carries its
/// own secret; a webhook is named by its place in the configuration.
struct Webhook {
    name: String,
    url: String,
    format: WebhookFormat,
    events: Vec<NotifyEvent>,
    client: reqwest::Client,
}

impl Notifier {
    /// Resolves each webhook of `[notifications]` (its URL read now from the environment or a
    /// file when so given; an unset variable, an unreadable file or a URL the egress guard
    /// refuses is an error naming the key and the variable or file, never the value), and
    /// starts the delivery task. `None` when no webhook is configured. Must run inside the
    /// runtime.
    pub fn start(config: &Config, metrics: Arc<Metrics>) -> Result<Option<Notifier>, GatewayError> {
        let hooks = (0..config.notifications.webhooks.len()).map(|i| webhook(config, i)).collect::<Result<_, _>>()?;
        Ok(Notifier::run(config, hooks, metrics))
    }

    /// The same for a command a person runs (`warden contain`): a webhook whose URL cannot be
    /// read here (a variable only the gateway's service has) is left out, and said why.
    pub fn start_available(config: &Config, metrics: Arc<Metrics>) -> (Option<Notifier>, Vec<GatewayError>) {
        let (hooks, skipped): (Vec<_>, Vec<_>) =
            (0..config.notifications.webhooks.len()).map(|i| webhook(config, i)).partition(Result::is_ok);
        let hooks = hooks.into_iter().filter_map(Result::ok).collect();
        (Notifier::run(config, hooks, metrics), skipped.into_iter().filter_map(Result::err).collect())
    }

    fn run(config: &Config, hooks: Vec<Webhook>, metrics: Arc<Metrics>) -> Option<Notifier> {
        if hooks.is_empty() {
            return None;
        }
        let wanted: HashSet<NotifyEvent> = hooks.iter().flat_map(|h| h.events.iter().copied()).collect();
        let origin = config.console.origin(config.admin.listen.as_deref());
        let (queue, rx) = mpsc::channel(QUEUE);
        let progress = Arc::new(Progress::default());
        tokio::spawn(deliver(hooks, origin, rx, metrics.clone(), progress.clone()));
        Some(Notifier { queue, wanted: Arc::new(wanted), metrics, progress })
    }

    /// Whether some webhook subscribes to `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.wanted.contains(&event)
    }

    /// The notice `row` announces to a webhook here, if any (see [`Notice::of_row`]).
    pub fn notice_of(&self, row: &AuditEvent) -> Option<Notice> {
        Notice::of_row(row).filter(|n| self.wants(n.event))
    }

    /// Queues `notice` for its webhooks; never waits. A full queue drops it, with a warning
    /// and a metric.
    pub fn send(&self, notice: Notice) {
        if !self.wants(notice.event) {
            return;
        }
        let event = notice.event;
        self.progress.open.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.queue.try_send(notice) {
            self.progress.done();
            let why = match e {
                mpsc::error::TrySendError::Full(_) => "the queue is full",
                mpsc::error::TrySendError::Closed(_) => "delivery has stopped",
            };
            tracing::warn!(event = event_name(event), "notification dropped: {why}");
            self.count(event, "dropped");
        }
    }

    /// Waits until every queued notice has been delivered (or given up on), at most `within`;
    /// whether they all were. For shutdown, and for commands that exit when done.
    pub async fn drain(&self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let idle = self.progress.idle.notified();
            if self.progress.open.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.progress.open.load(Ordering::Acquire) == 0;
            }
        }
    }

    fn count(&self, event: NotifyEvent, outcome: &str) {
        count(&self.metrics, event, outcome);
    }
}

fn count(metrics: &Metrics, event: NotifyEvent, outcome: &str) {
    let labels = NotifyLabels { event: event_name(event).to_owned(), outcome: outcome.to_owned() };
    metrics.notifications.get_or_create(&labels).inc();
}

/// Webhook `i` of `[notifications]`, its URL read and checked.
fn webhook(config: &Config, i: usize) -> Result<Webhook, GatewayError> {
    let w = &config.notifications.webhooks[i];
    let key = match source(&w.url) {
        Some(from) => format!("notifications.webhooks.{i}.url (from {from})"),
        None => format!("notifications.webhooks.{i}.url"),
    };
    let url = w.url.resolve(&config.base_dir).map_err(|why| GatewayError::Config(format!("{key}: {why}")))?;
    let url = url.trim().to_owned();
    // A value read from the environment or a file was not seen when the configuration was
    // checked: it is checked here as a written one was then.
    let scheme = url::Url::parse(&url).map(|u| u.scheme().to_owned()).unwrap_or_default();
    if scheme != "https" && !(w.allow_private && scheme == "http") {
        return Err(GatewayError::Config(format!("{key}: must be an https URL (http only with allow_private)")));
    }
    // The address checked is the address connected to: the guard resolves the name for each
    // connection.
    let policy = if w.allow_private {
        Policy::any_address()
    } else {
        config.egress.policy().map_err(|e| GatewayError::Config(format!("egress.allow: {e}")))?
    };
    let client = policy
        .check_url(&url)
        .and_then(|_| policy.client(&url))
        .and_then(|b| b.timeout(TIMEOUT).build().map_err(|e| e.without_url().to_string()))
        .map_err(|why| GatewayError::Config(format!("{key}: {why}; or set allow_private for an internal receiver")))?;
    let name = format!("notifications.webhooks.{i} ({})", format_name(w.format));
    Ok(Webhook { name, url, format: w.format, events: w.events.clone(), client })
}

/// Where a setting's value is read from, for messages (never the value).
fn source(value: &SettingValue) -> Option<String> {
    match value {
        SettingValue::Text(_) => None,
        SettingValue::From(ValueSource { env: Some(var), .. }) => Some(format!("the environment variable {var}")),
        SettingValue::From(ValueSource { file: Some(f), .. }) => Some(format!("the file {}", f.display())),
        SettingValue::From(_) => None,
    }
}

fn event_name(event: NotifyEvent) -> &'static str {
    match event {
        NotifyEvent::Approval => "approval",
        NotifyEvent::Drift => "drift",
        NotifyEvent::Quarantine => "quarantine",
        NotifyEvent::Gate => "gate",
        NotifyEvent::Containment => "containment",
    }
}

fn format_name(format: WebhookFormat) -> &'static str {
    match format {
        WebhookFormat::Json => "json",
        WebhookFormat::Slack => "slack",
        WebhookFormat::Teams => "teams",
    }
}

/// The delivery task: each notice to each webhook subscribed to its event, the webhooks at
/// once, the notices in turn.
async fn deliver(
    hooks: Vec<Webhook>,
    origin: Option<String>,
    mut rx: mpsc::Receiver<Notice>,
    metrics: Arc<Metrics>,
    progress: Arc<Progress>,
) {
    while let Some(notice) = rx.recv().await {
        let link = notice.link(origin.as_deref());
        let posts = hooks
            .iter()
            .filter(|h| h.events.contains(&notice.event))
            .map(|h| post(h, &notice, link.as_deref(), &metrics));
        futures::future::join_all(posts).await;
        progress.done();
    }
}

/// POSTs `notice` to `hook`, once more after a connection failure or a 5xx.
async fn post(hook: &Webhook, notice: &Notice, link: Option<&str>, metrics: &Metrics) {
    let body = format::body(hook.format, notice, link);
    let event = event_name(notice.event);
    for attempt in 1..=2 {
        let last = attempt == 2;
        match hook.client.post(&hook.url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(webhook = %hook.name, event, kind = notice.kind, "notification sent");
                count(metrics, notice.event, "sent");
                return;
            }
            Ok(r) if r.status().is_server_error() && !last => {
                tracing::warn!(webhook = %hook.name, event, status = r.status().as_u16(), "notification refused by the webhook; retrying");
            }
            Ok(r) => {
                tracing::error!(webhook = %hook.name, event, status = r.status().as_u16(), "notification NOT sent: refused by the webhook");
                break;
            }
            // Without the URL: a webhook URL often carries its own secret.
            Err(e) => match warden_upstream::egress::refusal(&e) {
                Some(why) => {
                    tracing::error!(webhook = %hook.name, event, "notification NOT sent: the webhook was {why}");
                    break;
                }
                None if !last => {
                    tracing::warn!(webhook = %hook.name, event, "notification not delivered ({}); retrying", e.without_url());
                }
                None => {
                    tracing::error!(webhook = %hook.name, event, "notification NOT sent: {}", e.without_url());
                    break;
                }
            },
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
    count(metrics, notice.event, "failed");
}
