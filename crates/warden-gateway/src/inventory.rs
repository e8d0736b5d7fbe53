//! What a server offers: its tools, prompts, resources and resource templates, as last listed.
//!
//! Lists are fetched page by page with bounds on pages and items, validated item by item (an item
//! that cannot be named is dropped, so it can be neither listed nor called), and cached per
//! connection generation until the server says the list changed.

use crate::names::UriTemplate;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::Mutex;
use warden_protocol::{Kind, RpcError, header_value};
use warden_upstream::{Call, Connection};

/// The four lists a server can offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`
    Tools,
    /// `prompts/list`
    Prompts,
    /// `resources/list`
    Resources,
    /// `resources/templates/list`
    Templates,
}

impl ListKind {
    /// All four.
    pub const ALL: [ListKind; 4] = [ListKind::Tools, ListKind::Prompts, ListKind::Resources, ListKind::Templates];

    /// The list method.
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::Templates => "resources/templates/list",
        }
    }

    /// The result member holding the items.
    pub fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::Templates => "resourceTemplates",
        }
    }

    /// The server capability that offers the list.
    pub fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::Templates => "resources",
        }
    }

    /// The member that identifies an item.
    pub fn key(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::Templates => "uriTemplate",
        }
    }

    /// The list a method asks for.
    pub fn from_method(method: &str) -> Option<Self> {
        ListKind::ALL.into_iter().find(|k| k.method() == method)
    }

    /// The lists a `list_changed` notification invalidates.
    pub fn changed_by(notification: &str) -> &'static [ListKind] {
        match notification {
            "notifications/tools/list_changed" => &[ListKind::Tools],
            "notifications/prompts/list_changed" => &[ListKind::Prompts],
            "notifications/resources/list_changed" => &[ListKind::Resources, ListKind::Templates],
            _ => &[],
        }
    }

    /// The `list_changed` notification for this list.
    pub fn changed_notification(self) -> &'static str {
        match self {
            ListKind::Tools => "notifications/tools/list_changed",
            ListKind::Prompts => "notifications/prompts/list_changed",
            ListKind::Resources | ListKind::Templates => "notifications/resources/list_changed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One fetched list.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The items as the server sent them (server-side names).
    pub items: Arc<Vec<Value>>,
    /// For templates: each item's compiled template (`None` when it does not compile).
    pub templates: Arc<Vec<Option<UriTemplate>>>,
    generation: u64,
    fetched_at: Instant,
}

impl Snapshot {
    /// The item whose key member equals `key`.
    pub fn find(&self, kind: ListKind, key: &str) -> Option<&Value> {
        self.items.iter().find(|i| i.get(kind.key()).and_then(Value::as_str) == Some(key))
    }

    /// The item whose key member equals `key`, shared rather than copied.
    pub fn definition(&self, kind: ListKind, key: &str) -> Option<Definition> {
        let index = self.items.iter().position(|i| i.get(kind.key()).and_then(Value::as_str) == Some(key))?;
        Some(Definition { list: self.items.clone(), index })
    }
}

/// One listed definition (a tool, prompt or template), shared with the list it came from.
#[derive(Debug, Clone)]
pub struct Definition {
    list: Arc<Vec<Value>>,
    index: usize,
}

impl Definition {
    /// The definition as the server listed it.
    pub fn value(&self) -> &Value {
        &self.list[self.index]
    }
}

/// Most pages followed when fetching one list.
const MAX_PAGES: usize = 100;
/// Most items kept from one list.
const MAX_ITEMS: usize = 10_000;

/// The cached lists of one connection.
#[derive(Default)]
pub struct Inventory {
    lists: [Mutex<Option<Snapshot>>; 4],
    dirty: [AtomicBool; 4],
    last_miss_refetch: std::sync::Mutex<Option<Instant>>,
    /// Reviews every fetched list against its server's pins before it is kept.
    reviewer: Option<(std::sync::Arc<crate::integrity::Integrity>, String)>,
}

/// Least time between refetches caused by calls to names not in the cached list, so that calls to
/// made-up names cannot turn into a flood of list requests upstream.
const MISS_REFETCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

impl Inventory {
    /// An empty inventory whose lists `reviewer` (the integrity guard, and the server's name)
    /// reviews as they are fetched.
    pub fn new(reviewer: Option<(std::sync::Arc<crate::integrity::Integrity>, String)>) -> Inventory {
        Inventory { reviewer, ..Inventory::default() }
    }

    /// Whether a call to an unlisted name may refetch the list now (rate-limited).
    pub fn may_refetch_on_miss(&self) -> bool {
        let mut last = self.last_miss_refetch.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < MISS_REFETCH_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Marks a list as changed.
    pub fn invalidate(&self, kind: ListKind) {
        self.dirty[kind.index()].store(true, Ordering::Release);
    }

    /// Marks every list as changed.
    pub fn invalidate_all(&self) {
        for k in ListKind::ALL {
            self.invalidate(k);
        }
    }

    /// The list, fetched now when `fresh` (or when missing, stale or from an older connection).
    /// Concurrent callers share one fetch.
    pub async fn get(
        &self,
        conn: &Connection,
        generation: u64,
        kind: ListKind,
        fresh: bool,
    ) -> Result<Snapshot, RpcError> {
        let asked_at = Instant::now();
        let mut slot = self.lists[kind.index()].lock().await;
        let dirty = self.dirty[kind.index()].load(Ordering::Acquire);
        if let Some(s) = slot.as_ref() {
            let current = s.generation == generation && !dirty;
            if current && (!fresh || s.fetched_at >= asked_at) {
                return Ok(s.clone());
            }
        }
        self.dirty[kind.index()].store(false, Ordering::Release);
        let mut items = fetch(conn, kind).await?;
        // What the integrity guard holds is not kept: neither listed nor callable.
        if let Some((integrity, server)) = &self.reviewer {
            items = integrity.review(server, kind, items).await;
        }
        let templates = if kind == ListKind::Templates {
            items.iter().map(|t| t.get("uriTemplate").and_then(Value::as_str).and_then(UriTemplate::compile)).collect()
        } else {
            vec![]
        };
        let snap =
            Snapshot { items: Arc::new(items), templates: Arc::new(templates), generation, fetched_at: Instant::now() };
        *slot = Some(snap.clone());
        Ok(snap)
    }
}

async fn fetch(conn: &Connection, kind: ListKind) -> Result<Vec<Value>, RpcError> {
    if !conn.hello().has_capability(kind.capability()) {
        return Ok(vec![]);
    }
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen_cursors = std::collections::HashSet::new();
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
        let reply = conn.call(Call::new(kind.method(), params)).await.map_err(|e| e.to_rpc())?;
        if reply.kind() != Kind::Response {
            let e = reply.rpc_error().unwrap_or_else(|| RpcError::internal("error"));
            // A server without this list (for example no templates) simply has none.
            if e.code == warden_protocol::error::METHOD_NOT_FOUND {
                return Ok(items);
            }
            return Err(e);
        }
        let result = reply.result().cloned().unwrap_or(Value::Null);
        let Some(page) = result.get(kind.field()).and_then(Value::as_array) else {
            return Err(RpcError::new(
                warden_protocol::error::UPSTREAM_INVALID_RESPONSE,
                format!("server '{}' answered {} without a {} list", conn.server(), kind.method(), kind.field()),
            ));
        };
        for item in page {
            if items.len() >= MAX_ITEMS {
                tracing::warn!(server = %conn.server(), list = kind.method(), "list truncated at {MAX_ITEMS} items");
                return Ok(items);
            }
            match check_item(kind, item) {
                Ok(()) => items.push(item.clone()),
                Err(why) => tracing::warn!(server = %conn.server(), list = kind.method(), "dropped an item: {why}"),
            }
        }
        match result.get("nextCursor").and_then(Value::as_str) {
            Some(c) if !c.is_empty() && seen_cursors.insert(c.to_owned()) => cursor = Some(c.to_owned()),
            _ => return Ok(items),
        }
    }
    tracing::warn!(server = %conn.server(), list = kind.method(), "list truncated at {MAX_PAGES} pages");
    Ok(items)
}

fn check_item(kind: ListKind, item: &Value) -> Result<(), String> {
    let key = item.get(kind.key()).and_then(Value::as_str).ok_or_else(|| format!("it has no string {}", kind.key()))?;
    if key.is_empty() || key.len() > 4096 {
        return Err(format!("its {} is empty or too long", kind.key()));
    }
    if matches!(kind, ListKind::Resources | ListKind::Templates) && item.get("name").and_then(Value::as_str).is_none() {
        return Err("it has no name".into());
    }
    if kind == ListKind::Tools {
        let schema = item.get("inputSchema").ok_or("it has no inputSchema")?;
        if !schema.is_object() {
            return Err("its inputSchema is not an object".into());
        }
        header_annotations(schema).map_err(|why| format!("tool {key:?} has an invalid x-mcp-header: {why}"))?;
    }
    Ok(())
}

/// An `x-mcp-header` annotation: the property path and the header's name part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderAnnotation {
    /// Chain of `properties` keys from the schema root.
    pub path: Vec<String>,
    /// The `{Name}` of `Mcp-Param-{Name}`.
    pub name: String,
}

/// Reads and checks the `x-mcp-header` annotations of an input schema, per 2026-07-28.
pub fn header_annotations(schema: &Value) -> Result<Vec<HeaderAnnotation>, String> {
    let mut out = Vec::new();
    walk(schema, &mut Vec::new(), true, false, &mut out)?;
    let mut names: Vec<String> = out.iter().map(|a| a.name.to_ascii_lowercase()).collect();
    names.sort();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Err("two properties use the same header name".into());
    }
    Ok(out)
}

fn walk(
    node: &Value,
    path: &mut Vec<String>,
    reachable: bool,
    is_property: bool,
    out: &mut Vec<HeaderAnnotation>,
) -> Result<(), String> {
    if path.len() > 32 {
        return Ok(());
    }
    match node {
        Value::Object(map) => {
            if let Some(h) = map.get("x-mcp-header") {
                if !(reachable && is_property) {
                    return Err("it is not on a property reachable through properties alone".into());
                }
                let name = h.as_str().ok_or("its value is not a string")?;
                let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
                if name.is_empty() || !name.chars().all(token) {
                    return Err(format!("{name:?} is not a valid header name"));
                }
                match map.get("type").and_then(Value::as_str) {
                    Some("string" | "integer" | "boolean") => {}
                    _ => return Err("it is on a property that is not a string, integer or boolean".into()),
                }
                out.push(HeaderAnnotation { path: path.clone(), name: name.to_owned() });
            }
            for (k, v) in map {
                match k.as_str() {
                    "properties" => {
                        if let Value::Object(props) = v {
                            for (pname, pschema) in props {
                                path.push(pname.clone());
                                walk(pschema, path, reachable, true, out)?;
                                path.pop();
                            }
                        }
                    }
                    // Data, not schemas.
                    "default" | "examples" | "enum" | "const" | "x-mcp-header" => {}
                    _ => walk(v, path, false, false, out)?,
                }
            }
        }
        Value::Array(items) => {
            for v in items {
                walk(v, path, false, false, out)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn value_at<'a>(args: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(args, |v, k| v.get(k)).filter(|v| !v.is_null())
}

fn header_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => n.as_i64().filter(|i| i.unsigned_abs() < (1 << 53)).map(|i| i.to_string()),
        _ => None,
    }
}

/// The `Mcp-Param-*` headers a call to `tool` with `arguments` must carry: `(Name, encoded value)`.
pub fn param_headers(tool: &Value, arguments: &Value) -> Vec<(String, String)> {
    let Some(schema) = tool.get("inputSchema") else { return vec![] };
    let Ok(annotations) = header_annotations(schema) else { return vec![] };
    annotations
        .into_iter()
        .filter_map(|a| {
            let v = value_at(arguments, &a.path)?;
            Some((a.name, header_value::encode(&header_text(v)?)))
        })
        .collect()
}

/// Checks the `Mcp-Param-*` headers a client sent against the call's arguments.
pub fn check_param_headers(tool: &Value, arguments: &Value, sent: &[(String, String)]) -> Result<(), String> {
    let Some(schema) = tool.get("inputSchema") else { return Ok(()) };
    let Ok(annotations) = header_annotations(schema) else { return Ok(()) };
    for a in annotations {
        let header = format!("mcp-param-{}", a.name.to_ascii_lowercase());
        let got = sent.iter().find(|(n, _)| *n == header).map(|(_, v)| v.as_str());
        let body = value_at(arguments, &a.path);
        match (body, got) {
            (None, None) => {}
            (None, Some(_)) => return Err(format!("Mcp-Param-{} is sent but the argument is absent", a.name)),
            (Some(_), None) => return Err(format!("Mcp-Param-{} is missing", a.name)),
            (Some(v), Some(h)) => {
                let same = match v {
                    Value::Number(n) => h.parse::<f64>().ok().zip(n.as_f64()).is_some_and(|(a, b)| a == b),
                    other => header_text(other).as_deref() == Some(h),
                };
                if !same {
                    return Err(format!("Mcp-Param-{} does not match the argument", a.name));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(props: Value) -> Value {
        json!({ "name": "t", "inputSchema": { "type": "object", "properties": props } })
    }

    #[test]
    fn reads_valid_annotations() {
        let t = tool(json!({
            "region": { "type": "string", "x-mcp-header": "Region" },
            "opts": { "type": "object", "properties": { "n": { "type": "integer", "x-mcp-header": "N" } } },
            "q": { "type": "string", "default": { "x-mcp-header": "data, not a schema" } }
        }));
        let a = header_annotations(&t["inputSchema"]).unwrap();
        assert_eq!(a.len(), 2);
        let h = param_headers(&t, &json!({ "region": "Zürich", "opts": { "n": 42 } }));
        assert!(h.contains(&("Region".into(), "=?base64?WsO8cmljaA==?=".into())));
        assert!(h.contains(&("N".into(), "42".into())));
    }

    #[test]
    fn refuses_invalid_annotations() {
        for bad in [
            json!({ "a": { "type": "number", "x-mcp-header": "A" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "A B" } }),
            json!({ "a": { "type": "string", "x-mcp-header": "A" }, "b": { "type": "string", "x-mcp-header": "a" } }),
            json!({ "a": { "type": "array", "items": { "type": "string", "x-mcp-header": "A" } } }),
            json!({ "a": { "anyOf": [{ "type": "string", "x-mcp-header": "A" }] } }),
        ] {
            assert!(header_annotations(&tool(bad.clone())["inputSchema"]).is_err(), "{bad}");
            assert!(check_item(ListKind::Tools, &tool(bad)).is_err());
        }
    }

    #[test]
    fn checks_client_headers_against_the_body() {
        let t = tool(
            json!({ "region": { "type": "string", "x-mcp-header": "Region" }, "n": { "type": "integer", "x-mcp-header": "N" } }),
        );
        let args = json!({ "region": "eu", "n": 42 });
        let ok = vec![("mcp-param-region".to_owned(), "eu".to_owned()), ("mcp-param-n".to_owned(), "42.0".to_owned())];
        assert!(check_param_headers(&t, &args, &ok).is_ok());
        assert!(check_param_headers(&t, &args, &ok[..1]).is_err(), "a missing header is refused");
        let wrong = vec![("mcp-param-region".to_owned(), "us".to_owned()), ok[1].clone()];
        assert!(check_param_headers(&t, &args, &wrong).is_err());
        assert!(check_param_headers(&t, &json!({}), &ok).is_err(), "a header without its argument is refused");
        assert!(check_param_headers(&t, &json!({ "region": null }), &[]).is_ok());
    }

    #[test]
    fn items_without_names_are_dropped() {
        assert!(check_item(ListKind::Tools, &json!({ "inputSchema": {} })).is_err());
        assert!(check_item(ListKind::Tools, &json!({ "name": "x" })).is_err());
        assert!(check_item(ListKind::Resources, &json!({ "uri": "a://b" })).is_err());
        assert!(check_item(ListKind::Prompts, &json!({ "name": "p" })).is_ok());
    }
}
