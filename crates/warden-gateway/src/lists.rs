//! Merged lists: every server's tools, prompts, resources and templates under their exposed names,
//! in server order, paginated with Warden's own cursors.

use crate::client::ClientContext;
use crate::gateway::Gateway;
use crate::inventory::ListKind;
use crate::names;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashMap;
use warden_protocol::RpcError;

const CURSOR_PREFIX: &str = "w1:";

impl Gateway {
    /// Answers a list request with the merged list.
    pub async fn list(&self, ctx: &ClientContext, kind: ListKind, params: Option<&Value>) -> Result<Value, RpcError> {
        let offset = match params.and_then(|p| p.get("cursor")) {
            None | Some(Value::Null) => 0,
            Some(Value::String(c)) => decode_cursor(c).ok_or_else(|| RpcError::invalid_params("invalid cursor"))?,
            Some(_) => return Err(RpcError::invalid_params("cursor must be a string")),
        };
        let fetches = self.servers.iter().map(|server| async move {
            let slot = server.slot(ctx)?;
            let (lane, conn, generation) = slot.lane(ctx.era()).await?;
            lane.inventory.get(&conn, generation, kind, true).await
        });
        let results = futures::future::join_all(fetches).await;
        let mut items: Vec<Value> = Vec::new();
        for (server, result) in self.servers.iter().zip(results) {
            match result {
                Ok(snap) => {
                    for item in snap.items.iter() {
                        let mut item = item.clone();
                        if let Some(name) = item.get("name").and_then(Value::as_str) {
                            let exposed = names::expose(&server.info.namespace, &self.settings.separator, name);
                            item["name"] = Value::String(exposed);
                        }
                        items.push(item);
                    }
                }
                Err(e) => {
                    tracing::warn!(server = %server.info.name, list = kind.method(), "left out of the list: {}", e.message)
                }
            }
        }
        if matches!(kind, ListKind::Tools | ListKind::Prompts) {
            drop_ambiguous(&mut items);
        }
        let page = self.settings.list_page_size;
        let total = items.len();
        if offset > total {
            return Err(RpcError::invalid_params("invalid cursor"));
        }
        let end = if page == 0 { total } else { (offset + page).min(total) };
        let mut result = json!({ kind.field(): items.drain(offset..end).collect::<Vec<_>>() });
        if end < total {
            result["nextCursor"] = Value::String(encode_cursor(end));
        }
        Ok(result)
    }
}

/// Removes every item whose exposed name occurs more than once: a client could not tell them
/// apart, and a call by that name is refused anyway.
fn drop_ambiguous(items: &mut Vec<Value>) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for i in items.iter() {
        if let Some(n) = i.get("name").and_then(Value::as_str) {
            *counts.entry(n.to_owned()).or_default() += 1;
        }
    }
    items.retain(|i| {
        let n = i.get("name").and_then(Value::as_str).unwrap_or_default();
        let unique = counts.get(n).copied().unwrap_or(0) <= 1;
        if !unique {
            tracing::warn!(name = %n, "left an ambiguous name out of the list");
        }
        unique
    });
}

fn encode_cursor(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{offset}"))
}

fn decode_cursor(c: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(c).ok()?;
    std::str::from_utf8(&bytes).ok()?.strip_prefix(CURSOR_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        assert_eq!(decode_cursor("nope"), None);
        assert_eq!(decode_cursor(&URL_SAFE_NO_PAD.encode("w1:-1")), None);
    }

    #[test]
    fn ambiguous_names_are_left_out() {
        let mut items = vec![json!({"name": "a"}), json!({"name": "b"}), json!({"name": "a"})];
        drop_ambiguous(&mut items);
        assert_eq!(items, vec![json!({"name": "b"})]);
    }
}
