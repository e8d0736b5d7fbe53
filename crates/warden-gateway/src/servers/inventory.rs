//! What a server offers: its tools, prompts, resources and resource templates, as last listed.
//!
//! Lists are fetched page by page with bounds on pages and items, validated item by item (an item
//! that cannot be named is dropped, so it can be neither listed nor called), and cached per
//! connection generation until the server says the list changed.

use super::{Failure, request};
use crate::catalogue::ListKind;
use crate::names::UriTemplate;
use crate::schemas::{Compiled, Schemas};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::Mutex;
use warden_upstream::{Call, Connection};

/// Reviews a list fetched from a server before it is kept: what it returns is all that is listed
/// and callable (the integrity guard pins and scans definitions here).
#[async_trait::async_trait]
pub trait ListReview: Send + Sync {
    /// What of `items`, just fetched from `server`, may be kept, in order.
    async fn review(&self, server: &str, kind: ListKind, items: Vec<Value>) -> Vec<Value>;
}

/// One fetched list.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The items as the server sent them (server-side names).
    pub items: Arc<Vec<Value>>,
    /// For templates: each item's compiled template (`None` when it does not compile).
    pub templates: Arc<Vec<Option<UriTemplate>>>,
    /// Each item's compiled input schema, once a call needed it.
    input_schemas: Arc<Vec<OnceLock<Compiled>>>,
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
        self.definition_where(kind, |k| k == key)
    }

    /// The first item whose key member satisfies `wanted`, shared rather than copied.
    pub fn definition_where(&self, kind: ListKind, wanted: impl Fn(&str) -> bool) -> Option<Definition> {
        let index = self.items.iter().position(|i| i.get(kind.key()).and_then(Value::as_str).is_some_and(&wanted))?;
        Some(Definition { list: self.items.clone(), index, input_schemas: self.input_schemas.clone() })
    }
}

/// One listed definition (a tool, prompt or template), shared with the list it came from.
#[derive(Debug, Clone)]
pub struct Definition {
    list: Arc<Vec<Value>>,
    index: usize,
    input_schemas: Arc<Vec<OnceLock<Compiled>>>,
}

impl Definition {
    /// A definition standing alone (not from a fetched list), for tests of the guards.
    pub fn standalone(value: Value) -> Definition {
        Definition { list: Arc::new(vec![value]), index: 0, input_schemas: Arc::new(vec![OnceLock::new()]) }
    }

    /// Its `inputSchema`, compiled once for the list it came from; `None` when it has none.
    pub fn input_schema(&self, schemas: &Schemas) -> Option<Compiled> {
        let schema = self.value().get("inputSchema")?;
        let slot = self.input_schemas.get(self.index)?;
        Some(slot.get_or_init(|| schemas.compiled(schema)).clone())
    }

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
    /// Reviews every fetched list before it is kept, with the server's name.
    reviewer: Option<(Arc<dyn ListReview>, String)>,
}

/// Least time between refetches caused by calls to names not in the cached list, so that calls to
/// made-up names cannot turn into a flood of list requests upstream.
const MISS_REFETCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

impl Inventory {
    /// An empty inventory whose lists `reviewer` (the integrity guard, and the server's name)
    /// reviews as they are fetched.
    pub fn new(reviewer: Option<(Arc<dyn ListReview>, String)>) -> Inventory {
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
    ) -> Result<Snapshot, Failure> {
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
        if let Some((reviewer, server)) = &self.reviewer {
            items = reviewer.review(server, kind, items).await;
        }
        let templates = if kind == ListKind::Templates {
            items.iter().map(|t| t.get("uriTemplate").and_then(Value::as_str).and_then(UriTemplate::compile)).collect()
        } else {
            vec![]
        };
        let input_schemas = Arc::new(items.iter().map(|_| OnceLock::new()).collect());
        let snap = Snapshot {
            items: Arc::new(items),
            templates: Arc::new(templates),
            input_schemas,
            generation,
            fetched_at: Instant::now(),
        };
        *slot = Some(snap.clone());
        Ok(snap)
    }
}

pub(super) async fn fetch(conn: &Connection, kind: ListKind) -> Result<Vec<Value>, Failure> {
    if !conn.hello().has_capability(kind.capability()) {
        return Ok(vec![]);
    }
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen_cursors = std::collections::HashSet::new();
    for _ in 0..MAX_PAGES {
        let params = cursor.as_ref().map(|c| json!({ "cursor": c }));
        let result = match request(conn, Call::new(kind.method(), params)).await {
            Ok(result) => result,
            // A server without this list (for example no templates) simply has none.
            Err(Failure::Server(e)) if e.peek().code == warden_protocol::error::METHOD_NOT_FOUND => return Ok(items),
            Err(other) => return Err(other),
        };
        let Some(page) = result.get(kind.field()).and_then(Value::as_array) else {
            return Err(Failure::Gateway(warden_protocol::RpcError::new(
                warden_protocol::error::UPSTREAM_INVALID_RESPONSE,
                format!("server '{}' answered {} without a {} list", conn.server(), kind.method(), kind.field()),
            )));
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
    warden_protocol::typed::check_list_item(kind.method(), item)
        .map_err(|detail| format!("it is not a valid item ({})", crate::names::for_log(&detail)))?;
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
        crate::headers::header_annotations(schema)
            .map_err(|why| format!("tool {key:?} has an invalid x-mcp-header: {why}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_without_names_are_dropped() {
        assert!(check_item(ListKind::Tools, &json!({ "inputSchema": {} })).is_err());
        assert!(check_item(ListKind::Tools, &json!({ "name": "x" })).is_err());
        assert!(check_item(ListKind::Resources, &json!({ "uri": "a://b" })).is_err());
        assert!(check_item(ListKind::Prompts, &json!({ "name": "p" })).is_ok());
        let misshapen = json!({ "name": "t", "description": 5, "inputSchema": { "type": "object" } });
        assert!(check_item(ListKind::Tools, &misshapen).is_err(), "one malformed item is dropped alone");
    }
}
