//! The admin listener, on its own address so that the MCP listener never exposes it:
//! Prometheus metrics and a health check (open), and the operator API (admin principals only).
//!
//! | route | what |
//! |---|---|
//! | `GET /metrics`, `GET /healthz` | metrics, liveness |
//! | `GET /v1/approvals[?status=pending]` | approvals, newest first |
//! | `GET /v1/approvals/{id}` | one approval |
//! | `POST /v1/approvals/{id}/approve`, `…/deny` | decide a pending approval (not one's own call) |
//! | `GET /v1/containment` | servers contained |
//! | `POST /v1/servers/{name}/contain` (`{"reason": "…"}`), `…/release` | contain or release a server |
//! | `POST /v1/containment/sync` | read the containment list again (what `warden contain` asks) |
//! | `POST /v1/servers/{name}/credentials/revoke` (`{"user": "…"}`) | revoke the credentials Warden obtained for the server (one user's, or all) |
//! | `POST /v1/servers/{name}/authorize` | **any caller**, for itself: whether it has authorized the server, or the link to do so |
//!
//! The operator routes authenticate like the MCP endpoint (bearer token or API key; the implicit
//! local principal never counts) and need a principal of the admin class: an agent holding a
//! user's token cannot approve its own calls. The `authorize` route needs a credential too, and
//! answers about the caller's own grant only.

use crate::gateway::Gateway;
use crate::guard::approve::{Answer, Ruling};
use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use warden_policy::{Principal, PrincipalClass};

/// The admin routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let state = Arc::new(Admin { gateway, last_sync: std::sync::Mutex::new(None) });
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .route("/v1/approvals", axum::routing::get(list_approvals))
        .route("/v1/approvals/{id}", axum::routing::get(show_approval))
        .route("/v1/approvals/{id}/approve", axum::routing::post(approve))
        .route("/v1/approvals/{id}/deny", axum::routing::post(deny))
        .route("/v1/containment", axum::routing::get(list_contained))
        .route("/v1/containment/sync", axum::routing::post(sync))
        .route("/v1/servers/{name}/contain", axum::routing::post(contain))
        .route("/v1/servers/{name}/release", axum::routing::post(release))
        .route("/v1/servers/{name}/credentials/revoke", axum::routing::post(revoke_credentials))
        .route("/v1/servers/{name}/authorize", axum::routing::post(authorize))
        .with_state(state)
}

struct Admin {
    gateway: Arc<Gateway>,
    last_sync: std::sync::Mutex<Option<Instant>>,
}

type AdminState = State<Arc<Admin>>;

async fn metrics(State(admin): AdminState) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(Body::from(admin.gateway.render_metrics()))
        .unwrap_or_default()
}

fn problem(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// The caller, if it authenticates as an admin; otherwise the response refusing it. A
/// credential must be presented: the implicit local principal (no `[auth]`) is never an
/// operator here, so a web page that gets a browser to post to this address cannot act as one.
async fn operator(admin: &Admin, headers: &HeaderMap) -> Result<Arc<Principal>, Response> {
    if !headers.contains_key(header::AUTHORIZATION) {
        return Err(problem(StatusCode::UNAUTHORIZED, "a bearer token of an admin principal is required"));
    }
    if let Some(operator) = admin.gateway.authenticator.operator_key(headers) {
        return Ok(operator);
    }
    let principal = admin.gateway.authenticator.authenticate(headers, None).await.map_err(|f| {
        tracing::info!("refused an unauthenticated admin request: {}", f.message);
        problem(StatusCode::UNAUTHORIZED, "a bearer token of an admin principal is required")
    })?;
    if principal.class != PrincipalClass::Admin {
        tracing::warn!(subject = %principal.subject, "refused an admin request from a non-admin principal");
        return Err(problem(StatusCode::FORBIDDEN, "only admin principals may use the operator API"));
    }
    Ok(principal)
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
}

async fn list_approvals(State(admin): AdminState, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    if let Err(r) = operator(&admin, &headers).await {
        return r;
    }
    let limit = q.limit.unwrap_or(100).min(1000);
    match admin.gateway.approvals.store().list(q.status.as_deref(), limit).await {
        Ok(items) => Json(json!({ "approvals": items })).into_response(),
        Err(e) => store_problem(e),
    }
}

async fn show_approval(State(admin): AdminState, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = operator(&admin, &headers).await {
        return r;
    }
    match admin.gateway.approvals.store().get(&id).await {
        Ok(Some(a)) => Json(json!({ "approval": a })).into_response(),
        Ok(None) => problem(StatusCode::NOT_FOUND, "no approval has this id"),
        Err(e) => store_problem(e),
    }
}

async fn approve(state: AdminState, headers: HeaderMap, id: Path<String>) -> Response {
    decide(state, headers, id, Answer::Approve).await
}

async fn deny(state: AdminState, headers: HeaderMap, id: Path<String>) -> Response {
    decide(state, headers, id, Answer::Deny).await
}

async fn decide(State(admin): AdminState, headers: HeaderMap, Path(id): Path<String>, answer: Answer) -> Response {
    let who = match operator(&admin, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let g = &admin.gateway;
    let key = who.identity_key();
    let ruled = crate::guard::approve::decide(
        g.approvals.store(),
        &g.auditor,
        &id,
        answer,
        crate::guard::approve::Decider { by: &who.subject, by_key: Some(&key), reason: None },
        g.approvals.use_within(),
    )
    .await;
    match ruled {
        Ok(Ruling::Done(a)) => Json(json!({ "approval": a })).into_response(),
        Ok(Ruling::Refused(why) | Ruling::Unknown(why)) => problem(StatusCode::CONFLICT, &why),
        Ok(Ruling::OwnCall) => problem(StatusCode::CONFLICT, "nobody may decide on their own call"),
        Err(e) => {
            tracing::error!("an approval decision failed: {e}");
            problem(StatusCode::SERVICE_UNAVAILABLE, "the decision could not be recorded")
        }
    }
}

async fn list_contained(State(admin): AdminState, headers: HeaderMap) -> Response {
    if let Err(r) = operator(&admin, &headers).await {
        return r;
    }
    match admin.gateway.containment.store().list().await {
        Ok(items) => Json(json!({ "contained": items, "emergency": !items.is_empty() })).into_response(),
        Err(e) => store_problem(e),
    }
}

#[derive(Deserialize, Default)]
struct ContainBody {
    reason: Option<String>,
}

async fn contain(
    State(admin): AdminState,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Option<Json<ContainBody>>,
) -> Response {
    let who = match operator(&admin, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let reason = body.and_then(|b| b.0.reason).unwrap_or_else(|| "contained through the admin API".into());
    match admin.gateway.contain_server(&name, &who.subject, &reason).await {
        Ok(done) => Json(json!({
            "server": name,
            "contained": true,
            "newly": done.newly,
            "approvalsRevoked": done.revoked,
            "emergency": true,
        }))
        .into_response(),
        Err(e) => {
            tracing::error!("containment failed: {e}");
            problem(StatusCode::CONFLICT, &e.to_string())
        }
    }
}

#[derive(Deserialize, Default)]
struct RevokeBody {
    user: Option<String>,
    reason: Option<String>,
}

async fn revoke_credentials(
    State(admin): AdminState,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Option<Json<RevokeBody>>,
) -> Response {
    let who = match operator(&admin, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let body = body.map(|b| b.0).unwrap_or_default();
    let reason = body.reason.unwrap_or_else(|| "revoked through the admin API".into());
    match admin.gateway.revoke_credentials(&name, body.user.as_deref(), &who.subject, &reason).await {
        Ok(deleted) => Json(json!({ "server": name, "user": body.user, "revoked": true, "grantsDeleted": deleted }))
            .into_response(),
        Err(e) => problem(StatusCode::CONFLICT, &e.to_string()),
    }
}

/// A caller's own authorization of a server: `{"authorized": true}`, or the link to give it.
async fn authorize(State(admin): AdminState, headers: HeaderMap, Path(name): Path<String>) -> Response {
    if !headers.contains_key(header::AUTHORIZATION) {
        return problem(StatusCode::UNAUTHORIZED, "a bearer token is required");
    }
    let caller = match admin.gateway.authenticator.authenticate(&headers, None).await {
        Ok(p) => p,
        Err(_) => return problem(StatusCode::UNAUTHORIZED, "a valid bearer token is required"),
    };
    if admin.gateway.registry.get(&name).is_none() || !admin.gateway.credentials.has_oauth_for(&name) {
        return problem(StatusCode::NOT_FOUND, "no server by that name needs its callers' authorization");
    }
    match admin.gateway.credentials.authorization(&caller, &name).await {
        Ok(None) => Json(json!({ "server": name, "authorized": true })).into_response(),
        Ok(Some(url)) => Json(json!({ "server": name, "authorized": false, "url": url })).into_response(),
        Err(e) => problem(StatusCode::BAD_GATEWAY, &e.message),
    }
}

async fn release(State(admin): AdminState, headers: HeaderMap, Path(name): Path<String>) -> Response {
    let who = match operator(&admin, &headers).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match admin.gateway.release_server(&name, &who.subject).await {
        Ok(was) => Json(json!({ "server": name, "released": was, "emergency": admin.gateway.containment.emergency() }))
            .into_response(),
        Err(e) => {
            tracing::error!("release failed: {e}");
            problem(StatusCode::CONFLICT, &e.to_string())
        }
    }
}

/// Reads the containment list again. Open to anyone who reaches the admin listener: it changes
/// nothing but how soon this gateway applies what the store says; at most ten a second are served.
async fn sync(State(admin): AdminState) -> Response {
    {
        let mut last = admin.last_sync.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(100)) {
            return problem(StatusCode::TOO_MANY_REQUESTS, "synced moments ago");
        }
        *last = Some(Instant::now());
    }
    match admin.gateway.sync_containment().await {
        Ok(()) => Json(json!({ "synced": true, "emergency": admin.gateway.containment.emergency() })).into_response(),
        Err(e) => {
            tracing::error!("containment sync failed: {e}");
            problem(StatusCode::SERVICE_UNAVAILABLE, "the containment list could not be read")
        }
    }
}

fn store_problem(e: warden_store::StoreError) -> Response {
    tracing::error!("the admin API could not read the store: {e}");
    problem(StatusCode::SERVICE_UNAVAILABLE, "the store could not be read")
}
