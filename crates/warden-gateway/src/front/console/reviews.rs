//! Reviews in the console: definitions held by the integrity guard (with what changed and what
//! the scanner found) to accept, and quarantined results to release or discard.

use super::{Console, ConsoleState, problem, store_problem};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use warden_store::pins::Exact;
use warden_store::quarantine::{Review, Reviewed};

/// Most quarantined results listed.
const MAX_HELD: u32 = 200;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/console/api/reviews", axum::routing::get(reviews))
        .route("/console/api/pins/{server}/accept", axum::routing::post(accept))
        .route("/console/api/quarantine/{id}", axum::routing::get(held_item))
        .route("/console/api/quarantine/{id}/release", axum::routing::post(release))
        .route("/console/api/quarantine/{id}/discard", axum::routing::post(discard))
}

/// How many definitions and results wait for review: the page's badge.
pub async fn waiting(c: &Console) -> (usize, usize) {
    let mut held = 0;
    for name in c.config.servers.keys() {
        held += c.pins.candidates(name).await.map_or(0, |v| v.len());
    }
    let quarantined = c.quarantine.list(Some("held"), MAX_HELD).await.map_or(0, |v| v.len());
    (held, quarantined)
}

async fn reviews(State(c): ConsoleState, headers: HeaderMap) -> Response {
    if let Err(r) = c.reader(&headers) {
        return r.into_response();
    }
    let mut definitions = Vec::new();
    for server in c.config.servers.keys() {
        let (held, pinned) = match (c.pins.candidates(server).await, c.pins.pins(server).await) {
            (Ok(h), Ok(p)) => (h, p),
            (Err(e), _) | (_, Err(e)) => return store_problem(e),
        };
        for h in held {
            let old = pinned.iter().find(|p| p.kind == h.kind && p.name == h.name).map(|p| p.definition.clone());
            let changes = match (&old, &h.definition) {
                (Some(o), Some(n)) => serde_json::to_value(warden_store::pins::diff(o, n)).unwrap_or_default(),
                _ => json!([]),
            };
            definitions.push(json!({
                "server": h.server,
                "kind": h.kind,
                "name": h.name,
                "hash": h.hash,
                "reason": h.reason,
                "first_seen": h.first_seen,
                "last_seen": h.last_seen,
                "findings": h.findings,
                "old": old,
                "new": h.definition,
                "changes": changes,
            }));
        }
    }
    let quarantine = match c.quarantine.list(Some("held"), MAX_HELD).await {
        Ok(items) => items,
        Err(e) => return store_problem(e),
    };
    Json(json!({ "definitions": definitions, "quarantine": quarantine })).into_response()
}

#[derive(Deserialize)]
struct Which {
    kind: String,
    name: String,
    /// The hash of the definition the operator saw.
    hash: String,
}

/// Pins exactly the held definition the operator saw (by kind, name and hash), unless the
/// server has shown a newer one since; records who did first, and does nothing the log cannot
/// record.
async fn accept(
    State(c): ConsoleState,
    headers: HeaderMap,
    Path(server): Path<String>,
    body: Option<Json<Which>>,
) -> Response {
    let operator = match c.writer(&headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    if !c.config.servers.contains_key(&server) {
        return problem(StatusCode::NOT_FOUND, "no server has this name");
    }
    let Some(Json(which)) = body else {
        return problem(StatusCode::BAD_REQUEST, "name the definition: {\"kind\", \"name\", \"hash\"}");
    };
    let by = &operator.principal.subject;
    let what = format!("{} {} {}", which.kind, which.name, which.hash);
    // The request is on record before anything changes; what came of it follows.
    if let Err(e) = c.gateway.auditor.operator_event("pins_accepted", "REQUESTED", by, Some(&server), &what).await {
        tracing::error!("an acceptance of a definition was refused: the audit log did not record it: {}", e.message);
        return problem(StatusCode::SERVICE_UNAVAILABLE, "the acceptance could not be recorded, so it was not made");
    }
    let done = c.pins.accept_exact(&server, &which.kind, &which.name, &which.hash, by).await;
    c.touch();
    match done {
        Ok(Exact::Accepted(candidate)) => {
            let _ = c.gateway.auditor.operator_event("pins_accepted", "ALLOW", by, Some(&server), &what).await;
            c.gateway.pins_changed(&server).await;
            Json(json!({ "accepted": [candidate] })).into_response()
        }
        Ok(Exact::Superseded) => {
            let _ = c
                .gateway
                .auditor
                .operator_event("pins_accepted", "DENY", by, Some(&server), &format!("{what}: superseded"))
                .await;
            problem(StatusCode::CONFLICT, "the server has shown a newer definition since: review that one")
        }
        Ok(Exact::Gone) => {
            let _ = c
                .gateway
                .auditor
                .operator_event("pins_accepted", "DENY", by, Some(&server), &format!("{what}: no longer held"))
                .await;
            problem(StatusCode::CONFLICT, "that definition is no longer held")
        }
        Err(e) => {
            let _ = c
                .gateway
                .auditor
                .operator_event("pins_accepted", "DENY", by, Some(&server), &format!("{what}: not stored"))
                .await;
            store_problem(e)
        }
    }
}

async fn held_item(State(c): ConsoleState, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = c.reader(&headers) {
        return r.into_response();
    }
    match c.quarantine.get(&id).await {
        Ok(Some(item)) => Json(json!({ "item": item })).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no quarantined result has this id"),
        Err(e) => store_problem(e),
    }
}

async fn release(state: ConsoleState, headers: HeaderMap, id: Path<String>) -> Response {
    decide(state, headers, id, Review::Release).await
}

async fn discard(state: ConsoleState, headers: HeaderMap, id: Path<String>) -> Response {
    decide(state, headers, id, Review::Discard).await
}

async fn decide(State(c): ConsoleState, headers: HeaderMap, Path(id): Path<String>, review: Review) -> Response {
    let operator = match c.writer(&headers) {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    // Whoever a result was withheld from does not release it to themselves.
    match c.quarantine.get(&id).await {
        Ok(Some(item)) if item.actor_id == operator.principal.subject => {
            return problem(StatusCode::FORBIDDEN, "an operator cannot review a result withheld from their own call");
        }
        Ok(_) => {}
        Err(e) => return store_problem(e),
    }
    let done =
        crate::guard::quarantine::review(&c.quarantine, &c.gateway.auditor, &id, review, &operator.principal.subject)
            .await;
    c.touch();
    match done {
        Ok(Reviewed::Done(item)) => Json(json!({ "item": item })).into_response(),
        Ok(Reviewed::NotFound) => problem(StatusCode::NOT_FOUND, "no quarantined result has this id"),
        Ok(Reviewed::AlreadyReviewed(status)) => problem(StatusCode::CONFLICT, &format!("it was already {status}")),
        Err(e) => {
            tracing::error!("a quarantine review from the console failed: {e}");
            problem(StatusCode::SERVICE_UNAVAILABLE, "the review could not be recorded")
        }
    }
}
