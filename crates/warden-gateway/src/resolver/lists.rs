//! Merged lists: every server's tools, prompts, resources and templates under their exposed names,
//! in server order, paginated with Warden's own cursors.

use super::Resolver;
use crate::catalogue::ListKind;
use crate::client::ClientContext;
use crate::names;
use crate::servers::ServerInfo;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use warden_protocol::RpcError;

const CURSOR_PREFIX: &str = "w1:";

/// Whether a principal may see one listed item (as its server listed it): `(kind, server, item)`.
pub type Visible<'a> = &'a (dyn Fn(ListKind, &str, &Value) -> bool + Sync);

impl Resolver {
    /// The merged list of `kind` for this client, from `cursor` on, with what `visible` lets
    /// this principal see, and the servers whose items are on the page. Each server's list is
    /// fetched fresh (a server that cannot be reached is left out), and what the integrity guard
    /// held is not in it.
    pub async fn list(
        &self,
        ctx: &ClientContext,
        kind: ListKind,
        cursor: Option<&Value>,
        visible: Visible<'_>,
    ) -> Result<(Value, Vec<Arc<ServerInfo>>), RpcError> {
        let offset = match cursor {
            None | Some(Value::Null) => 0,
            Some(Value::String(c)) => decode_cursor(c).ok_or_else(|| RpcError::invalid_params("invalid cursor"))?,
            Some(_) => return Err(RpcError::invalid_params("cursor must be a string")),
        };
        let servers = self.registry.all();
        let fetches = servers.iter().map(|server| async move {
            let slot = server.slot(ctx)?;
            server.ready(ctx).await?;
            let (lane, conn, generation) = slot.lane(ctx.era()).await?;
            lane.inventory.get(&conn, generation, kind, true).await.map_err(|f| super::list_failed(server, kind, f))
        });
        let results = futures::future::join_all(fetches).await;
        // (server, the item as its server listed it, its exposed name)
        let mut offered: Vec<(&Arc<ServerInfo>, &Value, Option<String>)> = Vec::new();
        let snapshots: Vec<_> = servers
            .iter()
            .zip(results)
            .filter_map(|(server, result)| match result {
                Ok(snap) => Some((server, snap)),
                Err(e) => {
                    tracing::warn!(server = %server.info.name, list = kind.method(), "left out of the list: {}", e.message);
                    None
                }
            })
            .collect();
        for (server, snap) in &snapshots {
            for item in snap.items.iter() {
                let exposed = item
                    .get("name")
                    .and_then(Value::as_str)
                    .map(|n| names::expose(&server.info.namespace, &self.separator, n));
                offered.push((&server.info, item, exposed));
            }
        }
        // Ambiguity is judged on everything the servers offer, as calls are: a name two servers
        // offer is neither listed nor callable, whoever asks.
        let unique = if matches!(kind, ListKind::Tools | ListKind::Prompts) {
            unambiguous(offered.iter().map(|(_, _, n)| n.as_deref()))
        } else {
            vec![true; offered.len()]
        };
        let mut items: Vec<(Value, &Arc<ServerInfo>)> = Vec::new();
        for ((server, item, exposed), unique) in offered.into_iter().zip(unique) {
            if unique && visible(kind, &server.name, item) {
                let mut item = item.clone();
                if let Some(n) = exposed {
                    item["name"] = Value::String(n);
                }
                items.push((item, server));
            }
        }
        let page = self.page_size;
        let total = items.len();
        if offset > total {
            return Err(RpcError::invalid_params("invalid cursor"));
        }
        let end = if page == 0 { total } else { (offset + page).min(total) };
        let mut sources: Vec<Arc<ServerInfo>> = Vec::new();
        let mut shown = Vec::with_capacity(end - offset);
        for (item, server) in items.drain(offset..end) {
            if !sources.iter().any(|s| Arc::ptr_eq(s, server)) {
                sources.push(server.clone());
            }
            shown.push(item);
        }
        let mut result = json!({ kind.field(): shown });
        if end < total {
            result["nextCursor"] = Value::String(encode_cursor(end));
        }
        Ok((result, sources))
    }
}

/// Which names no other item has: a client could not tell the others apart, and a call by such
/// a name is refused anyway.
fn unambiguous<'a>(names: impl Iterator<Item = Option<&'a str>> + Clone) -> Vec<bool> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in names.clone().flatten() {
        *counts.entry(n).or_default() += 1;
    }
    names
        .map(|n| {
            let unique = n.is_none_or(|n| counts.get(n).copied().unwrap_or(0) <= 1);
            if !unique {
                tracing::warn!(name = %n.unwrap_or_default(), "left an ambiguous name out of the list");
            }
            unique
        })
        .collect()
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
        let names = [Some("a"), Some("b"), Some("a"), None];
        assert_eq!(unambiguous(names.iter().copied()), vec![false, true, false, true]);
    }
}
