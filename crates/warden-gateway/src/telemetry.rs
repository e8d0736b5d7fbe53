//! Trace context for OpenTelemetry. When traces are exported (`[telemetry] otlp_endpoint`), each
//! request is a span whose parent is the trace context the client sent in `params._meta`
//! (`traceparent`, `tracestate`), and the request forwarded to a server carries the span's own
//! context there in turn. When they are not, nothing here runs: one relaxed load per request.

use opentelemetry::propagation::{Extractor, Injector};
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;

static ON: AtomicBool = AtomicBool::new(false);

/// The keys of trace context in `_meta` (SEP-414: W3C Trace Context and Baggage).
const KEYS: [&str; 3] = ["traceparent", "tracestate", "baggage"];

/// Turns spans and propagation on (the binary does this once it has installed an exporter and
/// the W3C propagator).
pub fn enable() {
    ON.store(true, Ordering::Relaxed);
}

/// Whether traces are exported.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

struct MetaReader<'a>(Option<&'a Map<String, Value>>);

impl Extractor for MetaReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        // Bounded: a hostile client's oversized header is ignored, not parsed.
        self.0?.get(key)?.as_str().filter(|v| v.len() <= 512)
    }

    fn keys(&self) -> Vec<&str> {
        KEYS.iter().copied().filter(|k| self.0.is_some_and(|m| m.contains_key(*k))).collect()
    }
}

struct MetaWriter<'a>(&'a mut Map<String, Value>);

impl Injector for MetaWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), Value::String(value));
    }
}

/// The span of one request, child of the client's trace context when it sent one.
pub fn request_span(method: &str, request_id: &str, params: Option<&Value>) -> tracing::Span {
    let name = params.and_then(|p| p.get("name").or_else(|| p.get("uri"))).and_then(Value::as_str);
    let otel_name = match name {
        Some(n) => format!("{method} {}", crate::names::shown(n)),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        target: "warden::request",
        "mcp.request",
        otel.name = %otel_name,
        otel.kind = "server",
        mcp.method.name = %method,
        jsonrpc.request.id = %request_id,
        warden.decision = tracing::field::Empty,
    );
    let meta = params.and_then(|p| p.get("_meta")).and_then(Value::as_object);
    if meta.is_some() {
        let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&MetaReader(meta)));
        let _ = span.set_parent(parent);
    }
    span
}

/// Writes the current span's trace context into a request's `params._meta`, replacing what the
/// client sent (the server's parent is the gateway's span, not the client's).
pub fn inject(params: &mut Value) {
    let Some(obj) = params.as_object_mut() else { return };
    let meta = obj.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else { return };
    for k in KEYS {
        meta.remove(k);
    }
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetaWriter(meta)));
}
