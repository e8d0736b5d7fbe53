//! The audit log in the console: rows by filter a page at a time, one row's full record, the
//! filtered rows as JSONL, the chain's state, and the detection gates with their recent history.

use super::{Console, ConsoleState, Refusal, problem, store_problem};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_store::AuditFilter;

/// Rows per page unless asked for fewer.
const PAGE: i64 = 100;
/// Most rows one export writes.
const MAX_EXPORT: usize = 100_000;
/// Points of each gate's history.
const HISTORY_POINTS: i32 = 12;
/// How long a chain check or a gate reading is reused: both read much of the log.
const REUSE_FOR: Duration = Duration::from_secs(15);

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/console/api/audit", axum::routing::get(rows))
        .route("/console/api/audit/export", axum::routing::get(export))
        .route("/console/api/audit/{seq}", axum::routing::get(row))
        .route("/console/api/chain", axum::routing::get(chain))
        .route("/console/api/gates", axum::routing::get(gates))
}

/// The filter as the page sends it.
#[derive(Deserialize, Default)]
struct Filter {
    since: Option<String>,
    until: Option<String>,
    principal: Option<String>,
    server: Option<String>,
    tool: Option<String>,
    decision: Option<String>,
    outcome: Option<String>,
    event: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

impl Filter {
    fn parsed(&self) -> Result<AuditFilter, Refusal> {
        let time = |t: &Option<String>, what: &str| -> Result<Option<DateTime<Utc>>, Refusal> {
            match t.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => DateTime::parse_from_rfc3339(t)
                    .map(|t| Some(t.to_utc()))
                    .map_err(|_| Refusal(StatusCode::BAD_REQUEST, format!("{what} is not an RFC 3339 time"))),
            }
        };
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        Ok(AuditFilter {
            since: time(&self.since, "since")?,
            until: time(&self.until, "until")?,
            principal: text(&self.principal),
            server: text(&self.server),
            tool: text(&self.tool),
            decision: text(&self.decision),
            outcome: text(&self.outcome),
            event: text(&self.event),
            before: self.before,
        })
    }

    /// The filter in words, for the audit row of an export.
    fn described(&self) -> String {
        let pairs = [
            ("since", &self.since),
            ("until", &self.until),
            ("principal", &self.principal),
            ("server", &self.server),
            ("tool", &self.tool),
            ("decision", &self.decision),
            ("outcome", &self.outcome),
            ("event", &self.event),
        ];
        let set: Vec<String> = pairs
            .iter()
            .filter_map(|(k, v)| v.as_deref().filter(|v| !v.is_empty()).map(|v| format!("{k}={v}")))
            .collect();
        let text = if set.is_empty() { "every row".to_owned() } else { set.join(" ") };
        text.chars().filter(|c| !c.is_control()).take(500).collect()
    }
}

async fn rows(State(c): ConsoleState, headers: HeaderMap, Query(q): Query<Filter>) -> Response {
    if let Err(r) = c.reader(&headers) {
        return r.into_response();
    }
    let filter = match q.parsed() {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let limit = q.limit.unwrap_or(PAGE).clamp(1, warden_store::search::MAX_PAGE);
    match c.reader.search(&filter, limit).await {
        Ok(rows) => {
            let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.seq)).flatten();
            Json(json!({ "rows": rows, "next": next })).into_response()
        }
        Err(e) => store_problem(e),
    }
}

async fn row(State(c): ConsoleState, headers: HeaderMap, Path(seq): Path<i64>) -> Response {
    if let Err(r) = c.reader(&headers) {
        return r.into_response();
    }
    match c.reader.row(seq).await {
        Ok(Some(row)) => Json(json!({ "row": row })).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no row has this number"),
        Err(e) => store_problem(e),
    }
}

/// The filtered rows as JSONL, newest first, streamed a page at a time. Exports are audited:
/// the rows hold who called what.
async fn export(State(c): ConsoleState, headers: HeaderMap, Query(q): Query<Filter>) -> Response {
    let operator = match c.reader(&headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let mut filter = match q.parsed() {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    if let Err(e) =
        c.gateway.auditor.operator_action("audit_exported", "ALLOW", &operator.principal.subject, &q.described()).await
    {
        tracing::error!("an audit export was refused: the log did not record it: {}", e.message);
        return problem(StatusCode::SERVICE_UNAVAILABLE, "the export could not be recorded, so it is not made");
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    let reader = c.reader.clone();
    tokio::spawn(async move {
        let mut written = 0;
        while written < MAX_EXPORT {
            let page = match reader.search(&filter, warden_store::search::MAX_PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("an audit export stopped: {e}");
                    let _ = tx.send(Err(std::io::Error::other("the store could not be read"))).await;
                    return;
                }
            };
            let Some(last) = page.last().map(|r| r.seq) else { return };
            let mut chunk = String::new();
            for r in page.iter().take(MAX_EXPORT - written) {
                chunk.push_str(&serde_json::to_string(r).unwrap_or_default());
                chunk.push('\n');
            }
            written += page.len();
            if tx.send(Ok(bytes::Bytes::from(chunk))).await.is_err() {
                return;
            }
            filter.before = Some(last);
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(header::CONTENT_DISPOSITION, "attachment; filename=\"warden-audit.jsonl\"")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

/// A reading reused for a moment.
pub struct Reused {
    at: std::sync::Mutex<Option<(Instant, Value)>>,
}

impl Reused {
    pub fn new() -> Reused {
        Reused { at: std::sync::Mutex::new(None) }
    }

    fn fresh(&self) -> Option<Value> {
        let at = self.at.lock().unwrap_or_else(|p| p.into_inner());
        at.as_ref().filter(|(t, _)| t.elapsed() < REUSE_FOR).map(|(_, v)| v.clone())
    }

    fn keep(&self, v: &Value) {
        *self.at.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), v.clone()));
    }
}

async fn chain(State(c): ConsoleState, headers: HeaderMap) -> Response {
    if let Err(r) = c.reader(&headers) {
        return r.into_response();
    }
    if let Some(v) = c.chain_status.fresh() {
        return Json(v).into_response();
    }
    let report = match c.reader.verify(&c.trusted_keys).await {
        Ok(r) => r,
        Err(e) => return store_problem(e),
    };
    let ok = report.first_bad.is_none();
    let up_to = match &report.first_bad {
        Some(bad) => Some(bad.seq - 1),
        None => report
            .head
            .as_ref()
            .map(|h| h.0)
            .or_else(|| report.chains.iter().filter_map(|ch| ch.head.as_ref().map(|h| h.0)).max()),
    };
    let detail = match &report.first_bad {
        Some(bad) => format!("the chain breaks at row {}: {}", bad.seq, bad.problem),
        None => format!("{} rows in {} chain(s) verified", report.rows, report.chains.len().max(1)),
    };
    let v = json!({
        "ok": ok,
        "verifiedUpTo": up_to,
        "rows": report.rows,
        "lastCheckpoint": report.checkpoint.map(|seq| json!({ "seq": seq, "at": report.heads_stated_at })),
        "detail": detail,
        "notes": report.notes,
    });
    c.chain_status.keep(&v);
    Json(v).into_response()
}

async fn gates(State(c): ConsoleState, headers: HeaderMap) -> Response {
    if let Err(r) = c.reader(&headers) {
        return r.into_response();
    }
    if let Some(v) = c.gate_readings.fresh() {
        return Json(v).into_response();
    }
    let now = Utc::now();
    let current = match warden_store::gates::evaluate(&c.reader, &c.gates, now).await {
        Ok(r) => r,
        Err(e) => return store_problem(e),
    };
    let mut out = Vec::new();
    for (gate, reading) in c.gates.iter().zip(&current) {
        // Readings back through twice the gate's window, so a trip and its fall both show.
        let step = (gate.window / (HISTORY_POINTS as u32 / 2)).max(Duration::from_secs(60));
        let mut history = Vec::new();
        for k in (1..HISTORY_POINTS).rev() {
            let at = now - chrono::TimeDelta::from_std(step * k as u32).unwrap_or_default();
            let past = warden_store::gates::evaluate(&c.reader, std::slice::from_ref(gate), at).await;
            if let Ok(Some(r)) = past.map(|mut v| v.pop()) {
                history.push(json!({ "at": at.to_rfc3339(), "value": r.value }));
            }
        }
        history.push(json!({ "at": now.to_rfc3339(), "value": reading.value }));
        out.push(json!({
            "name": reading.name,
            "value": reading.value,
            "threshold": reading.threshold,
            "tripped": reading.tripped,
            "detail": reading.detail,
            "window": humantime(gate.window),
            "ratio": gate.is_ratio(),
            "history": history,
        }));
    }
    let v = json!({ "gates": out });
    c.gate_readings.keep(&v);
    Json(v).into_response()
}

fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
