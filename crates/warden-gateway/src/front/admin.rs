//! The admin listener: Prometheus metrics and a health check, on their own address so that the
//! MCP listener never exposes them.

use crate::gateway::Gateway;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{StatusCode, header};
use std::sync::Arc;

/// The admin routes: `GET /metrics` and `GET /healthz`.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(|| async { "ok\n" }))
        .with_state(gateway)
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(Body::from(gateway.render_metrics()))
        .unwrap_or_default()
}
