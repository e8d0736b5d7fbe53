//! The fields 2026-07-28 requires on results: `resultType` on every result, and `ttlMs` and
//! `cacheScope` on the cacheable ones.

use crate::meta;
use serde_json::{Map, Value, json};

/// Methods whose results are cacheable (`CacheableResult`) in 2026-07-28.
pub fn is_cacheable(method: &str) -> bool {
    matches!(
        method,
        "tools/list"
            | "prompts/list"
            | "resources/list"
            | "resources/templates/list"
            | "resources/read"
            | "server/discover"
    )
}

/// Completes a result for a 2026-07-28 client: `resultType` (`complete` unless the result says
/// otherwise); on cacheable results that are not `input_required`, `cacheScope: "private"` (what a
/// gateway answers depends on who asks) and a `ttlMs` of at most `ttl_ms`; and `server_info`
/// under `_meta`.
pub fn complete_modern(method: &str, mut result: Value, ttl_ms: u64, server_info: &Value) -> Value {
    let Some(obj) = result.as_object_mut() else { return result };
    let input_required = obj.get("resultType").and_then(Value::as_str) == Some("input_required");
    obj.entry("resultType").or_insert_with(|| json!("complete"));
    if is_cacheable(method) && !input_required {
        let ttl = obj.get("ttlMs").and_then(Value::as_u64).map_or(ttl_ms, |t| t.min(ttl_ms));
        obj.insert("ttlMs".into(), json!(ttl));
        obj.insert("cacheScope".into(), json!("private"));
    }
    let m = obj.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    if let Some(m) = m.as_object_mut() {
        m.insert(meta::SERVER_INFO.into(), server_info.clone());
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_what_is_missing_and_keeps_what_is_there() {
        let info = json!({ "name": "w" });
        let r = complete_modern("tools/list", json!({ "tools": [] }), 5, &info);
        assert_eq!(
            (r["resultType"].clone(), r["ttlMs"].clone(), r["cacheScope"].clone()),
            (json!("complete"), json!(5), json!("private"))
        );
        assert_eq!(r["_meta"][meta::SERVER_INFO], info);
        let r = complete_modern("resources/read", json!({ "ttlMs": 9, "cacheScope": "public" }), 5, &info);
        assert_eq!(
            (r["ttlMs"].clone(), r["cacheScope"].clone()),
            (json!(5), json!("private")),
            "never longer or wider than ours"
        );
        let r = complete_modern("resources/read", json!({ "ttlMs": 2 }), 5, &info);
        assert_eq!(r["ttlMs"], 2, "a shorter freshness is kept");
        let r = complete_modern("tools/call", json!({ "resultType": "input_required" }), 0, &info);
        assert_eq!(r["resultType"], "input_required");
        assert!(r.get("ttlMs").is_none());
    }
}
