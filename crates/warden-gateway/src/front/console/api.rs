//! The approvals inbox, the inventory and containment, for the console's page.

use super::{Console, ConsoleState, problem, store_problem};
use crate::guard::approve::{Answer, Decider, Ruling};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use warden_policy::{Principal, ToolClass};
use warden_store::approvals::Approval;

/// Most approvals listed at once.
const MAX_LISTED: u32 = 500;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/console/api/approvals", axum::routing::get(approvals))
        .route("/console/api/approvals/{id}/approve", axum::routing::post(approve))
        .route("/console/api/approvals/{id}/deny", axum::routing::post(deny))
        .route("/console/api/inventory", axum::routing::get(inventory))
        .route("/console/api/servers/{name}/contain", axum::routing::post(contain))
        .route("/console/api/servers/{name}/release", axum::routing::post(release))
}

#[derive(Deserialize)]
struct Listing {
    status: Option<String>,
}

/// An approval as the page shows it: without the caller's identity key, with whether the
/// signed-in operator made the call.
fn shown(a: &Approval, operator: &Principal) -> Value {
    let mine = a.principal_key == operator.identity_key() || a.actor_id == operator.subject;
    let mut v = serde_json::to_value(a).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("principal_key");
        o.insert("mine".into(), json!(mine));
    }
    v
}

async fn approvals(State(c): ConsoleState, headers: HeaderMap, Query(q): Query<Listing>) -> Response {
    let operator = match c.reader(&headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let store = c.gateway.approvals.store();
    let listed = match q.status.as_deref() {
        Some("history") => store.list(None, MAX_LISTED).await.map(|all| {
            let mut done: Vec<Approval> = all.into_iter().filter(|a| a.status != "pending").collect();
            done.sort_by_key(|a| std::cmp::Reverse(a.decided_at.unwrap_or(a.created_at)));
            done
        }),
        Some("pending") | None => store.list(Some("pending"), MAX_LISTED).await,
        Some(_) => return problem(StatusCode::BAD_REQUEST, "status is pending or history"),
    };
    let said = if q.status.as_deref() == Some("history") { operator_reasons(&c).await } else { HashMap::new() };
    match listed {
        Ok(items) => {
            let now = chrono::Utc::now();
            // An approval past its time is not offered, even before the gateway marks it expired.
            let items: Vec<Value> = items
                .iter()
                .filter(|a| a.status != "pending" || a.expires_at > now)
                .map(|a| {
                    let mut v = shown(a, &operator.principal);
                    v["reason"] = json!(said.get(&a.id));
                    v
                })
                .collect();
            Json(json!({ "now": now.to_rfc3339(), "approvals": items })).into_response()
        }
        Err(e) => store_problem(e),
    }
}

/// What operators said when they decided, by approval id: it is kept in the audit row of the
/// decision ("… approved by an operator: <what they said>").
async fn operator_reasons(c: &Console) -> HashMap<String, String> {
    // This gateway's own decisions are known at once; the log's rows may still be in a batch.
    let mut said = c.said.lock().unwrap_or_else(|p| p.into_inner()).clone();
    for event in ["approval_granted", "approval_denied"] {
        let filter = warden_store::AuditFilter { event: Some(event.to_owned()), ..Default::default() };
        for row in c.reader.search(&filter, MAX_LISTED as i64).await.unwrap_or_default() {
            let text = row.event.reason.as_deref().and_then(|r| r.split_once("by an operator: ")).map(|x| x.1);
            if let (Some(id), Some(text)) = (row.event.approval_id, text) {
                said.entry(id).or_insert_with(|| text.to_owned());
            }
        }
    }
    said
}

#[derive(Deserialize, Default)]
struct Said {
    reason: Option<String>,
}

async fn approve(state: ConsoleState, headers: HeaderMap, id: Path<String>, body: Option<Json<Said>>) -> Response {
    decide(state, headers, id, body, Answer::Approve).await
}

async fn deny(state: ConsoleState, headers: HeaderMap, id: Path<String>, body: Option<Json<Said>>) -> Response {
    decide(state, headers, id, body, Answer::Deny).await
}

async fn decide(
    State(c): ConsoleState,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<Said>>,
    answer: Answer,
) -> Response {
    let operator = match c.writer(&headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    let reason = body.and_then(|b| b.0.reason);
    let who = &operator.principal;
    let key = who.identity_key();
    let g = &c.gateway;
    let decider = Decider { by: &who.subject, by_key: Some(&key), reason: reason.as_deref() };
    let ruled =
        crate::guard::approve::decide(g.approvals.store(), &g.auditor, &id, answer, decider, g.approvals.use_within())
            .await;
    c.touch();
    if let (Ok(Ruling::Done(a)), Some(r)) = (&ruled, reason.as_deref().map(str::trim).filter(|r| !r.is_empty())) {
        let mut said = c.said.lock().unwrap_or_else(|p| p.into_inner());
        if said.len() >= MAX_LISTED as usize {
            said.clear();
        }
        said.insert(a.id.clone(), r.chars().filter(|c| !c.is_control()).take(500).collect());
    }
    match ruled {
        Ok(Ruling::Done(a)) => Json(json!({ "approval": shown(&a, who) })).into_response(),
        Ok(Ruling::OwnCall) => problem(StatusCode::FORBIDDEN, "an operator cannot decide on their own call"),
        Ok(Ruling::Unknown(_)) => problem(StatusCode::NOT_FOUND, "no approval has this id"),
        Ok(Ruling::Refused(_)) => {
            // Say what happened to it, in the page's terms: who won the race, or that it expired.
            let why = match g.approvals.store().get(&id).await.ok().flatten() {
                Some(a) if a.status == "pending" => "it has expired".to_owned(),
                Some(a) => match a.decided_by {
                    Some(by) => format!("already {} by {}", a.status, by),
                    None => format!("it is already {}", a.status),
                },
                None => "no approval has this id".to_owned(),
            };
            problem(StatusCode::CONFLICT, &why)
        }
        Err(e) => {
            tracing::error!("a console decision failed: {e}");
            problem(StatusCode::SERVICE_UNAVAILABLE, "the decision could not be recorded")
        }
    }
}

/// Calls and refusals per `server/tool` in the last hour.
type Counts = HashMap<(String, String), (u64, u64)>;

async fn recent_calls(c: &Console) -> Counts {
    let since = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    match c.reader.call_counts(since).await {
        Ok(rows) => rows.into_iter().map(|r| ((r.server, r.tool), (r.calls, r.refused))).collect(),
        Err(e) => {
            tracing::warn!("the console could not count recent calls: {e}");
            Counts::new()
        }
    }
}

/// How a tool's calls come to need a person, in words.
fn approval_rule(c: &Console, class: ToolClass, out_of_band: bool) -> String {
    let flow = if out_of_band { "out of band" } else { "in band when the client can ask" };
    match class {
        ToolClass::Read => "when a policy says so".to_owned(),
        _ if c.config.approvals.out_of_band_classes.contains(&class) => format!("always ({flow})"),
        _ => format!("when the context is tainted, in emergency mode, or a policy says so ({flow})"),
    }
}

async fn inventory(State(c): ConsoleState, headers: HeaderMap) -> Response {
    if let Err(r) = c.reader(&headers) {
        return r.into_response();
    }
    let contained: HashMap<String, String> = match c.gateway.containment.store().list().await {
        Ok(list) => list.into_iter().map(|x| (x.server, x.reason)).collect(),
        Err(e) => return store_problem(e),
    };
    let counts = recent_calls(&c).await;
    let mut servers = Vec::new();
    let mut tools = Vec::new();
    for (name, s) in &c.config.servers {
        let pinned = c.pins.pins(name).await.unwrap_or_default();
        let held = c.pins.candidates(name).await.unwrap_or_default();
        let running = c.gateway.registry.get(name).is_some_and(|srv| !srv.slots().is_empty());
        // The protocol version agreed with the server, where a connection is up.
        let negotiated =
            c.gateway.registry.get(name).and_then(|srv| {
                srv.slots().iter().find_map(|slot| slot.lanes().iter().find_map(|lane| lane.current()))
            });
        let era = match negotiated {
            Some(conn) => format!("{} ({})", conn.hello().version.as_str(), conn.hello().era()),
            None => {
                serde_json::to_value(s.protocol).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
            }
        };
        let (mut calls, mut refused) = (0, 0);
        // Every tool pinned or held, and every tool the configuration names.
        let mut defs: BTreeMap<String, (Value, bool, Option<String>)> = BTreeMap::new();
        for p in pinned.iter().filter(|p| p.kind == "tool") {
            defs.insert(p.name.clone(), (p.definition.clone(), true, None));
        }
        for h in held.iter().filter(|h| h.kind == "tool") {
            let entry = defs
                .entry(h.name.clone())
                .or_insert_with(|| (h.definition.clone().unwrap_or_else(|| json!({ "name": h.name })), false, None));
            entry.2 = Some(h.reason.clone());
        }
        for id in c.config.tools.keys() {
            if let Some(tool) = id.strip_prefix(&format!("{name}/")).filter(|t| !t.contains('*')) {
                defs.entry(tool.to_owned()).or_insert_with(|| (json!({ "name": tool }), false, None));
            }
        }
        for (tool, (definition, is_pinned, held_for)) in defs {
            let (facts, settings) = c.gateway.authorizer.tool(name, &definition);
            let out_of_band = settings.approval == Some(crate::config::ApprovalFlow::OutOfBand)
                || c.config.approvals.out_of_band_classes.contains(&facts.class);
            let (n, r) = counts.get(&(name.clone(), tool.clone())).copied().unwrap_or_default();
            calls += n;
            refused += r;
            tools.push(json!({
                "server": name,
                "name": tool,
                "class": facts.class.as_str(),
                "annotations": facts.annotations,
                "scopes": facts.scopes,
                "approval": approval_rule(&c, facts.class, out_of_band),
                "outOfBand": out_of_band,
                "trustedContent": settings.trusted_content.unwrap_or(s.trusted_content),
                "adminOnly": facts.admin,
                "pinned": is_pinned,
                "held": held_for,
                "calls1h": n,
                "refusals1h": r,
            }));
        }
        let is_contained = contained.contains_key(name);
        servers.push(json!({
            "name": name,
            "transport": if s.command.is_some() { "stdio" } else { "http" },
            "endpoint": match crate::servers::LaunchReview::of(s) {
                Some(r) => r.command_line,
                None => crate::servers::entry::shown_url(s.url.as_deref().unwrap_or_default()),
            },
            "sandbox": match (s.command.is_some(), s.sandbox) {
                (false, _) => "n/a",
                (true, crate::config::SandboxMode::Strict) => "strict",
                (true, crate::config::SandboxMode::Off) => "off",
            },
            "era": era,
            "state": if is_contained { "contained" } else if running { "connected" } else { "idle" },
            "contained": is_contained,
            "containedReason": contained.get(name),
            "trustedContent": s.trusted_content,
            "pinned": pinned.iter().filter(|p| p.kind == "tool").count(),
            "held": held.len(),
            "calls1h": calls,
            "refusals1h": refused,
        }));
    }
    Json(json!({ "emergency": !contained.is_empty(), "servers": servers, "tools": tools })).into_response()
}

#[derive(Deserialize, Default)]
struct ContainBody {
    reason: Option<String>,
}

async fn contain(
    State(c): ConsoleState,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Option<Json<ContainBody>>,
) -> Response {
    let operator = match c.writer(&headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    if !c.config.servers.contains_key(&name) {
        return problem(StatusCode::NOT_FOUND, "no server has this name");
    }
    let reason = body
        .and_then(|b| b.0.reason)
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| "contained from the console".into());
    let done = c.gateway.contain_server(&name, &operator.principal.subject, &reason).await;
    c.touch();
    match done {
        Ok(d) => Json(json!({ "server": name, "contained": true, "newly": d.newly, "approvalsRevoked": d.revoked }))
            .into_response(),
        Err(e) => {
            tracing::error!("containment from the console failed: {e}");
            problem(StatusCode::CONFLICT, "the server could not be contained")
        }
    }
}

async fn release(State(c): ConsoleState, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let operator = match c.writer(&headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    if !c.config.servers.contains_key(&name) {
        return problem(StatusCode::NOT_FOUND, "no server has this name");
    }
    let done = c.gateway.release_server(&name, &operator.principal.subject).await;
    c.touch();
    match done {
        Ok(was) => Json(json!({ "server": name, "released": was, "emergency": c.gateway.containment.emergency() }))
            .into_response(),
        Err(e) => {
            tracing::error!("release from the console failed: {e}");
            problem(StatusCode::CONFLICT, "the server could not be released")
        }
    }
}
