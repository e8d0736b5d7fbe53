//! Whether a server's result has the shape of the result its method defines, checked by parsing
//! it as rmcp's model type for that method (and, for a 2026-07-28 `input_required` answer, as
//! rmcp's `InputRequiredResult`).
//!
//! Only the check uses the typed value: what is relayed is the JSON the server sent (after the
//! response guards), because the typed structs drop members they do not know. A content block of
//! a type this version does not know does not fail the check; it stays in the result, where the
//! guards clean and scan every string of it like any other.
//!
//! ```
//! use serde_json::json;
//! use warden_protocol::typed::check_result;
//! assert!(check_result("tools/call", &json!({ "content": [{ "type": "text", "text": "ok" }] })).is_ok());
//! assert!(check_result("tools/call", &json!({ "content": "ok" })).is_err());
//! assert!(check_result("tools/call", &json!({ "content": [{ "type": "hologram", "data": "…" }] })).is_ok());
//! ```

use rmcp::model::{
    CallToolResult, CompleteResult, GetPromptResult, InputRequiredResult, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, Prompt, ReadResourceResult, Resource,
    ResourceTemplate, Tool,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// Content block types of the MCP versions Warden speaks.
const KNOWN_BLOCKS: [&str; 5] = ["text", "image", "audio", "resource", "resource_link"];

/// Why a result was refused: what the parser said, for the log only (it quotes the server).
#[derive(Debug, Clone, PartialEq)]
pub struct Misshapen {
    /// The method whose result it claimed to be.
    pub method: String,
    /// The parser's message. It may quote what the server sent: log it escaped, never relay it.
    pub detail: String,
}

/// Checks that `result` parses as the result of `method`. Methods with results that carry no
/// data (ping, subscriptions, `logging/setLevel`) and methods rmcp does not model need only be
/// objects.
pub fn check_result(method: &str, result: &Value) -> Result<(), Misshapen> {
    let fail = |detail: String| Misshapen { method: method.to_owned(), detail };
    if !result.is_object() {
        return Err(fail("the result is not an object".to_owned()));
    }
    let input_required = result.get("resultType").and_then(Value::as_str) == Some("input_required");
    match method {
        "tools/call" | "prompts/get" | "resources/read" if input_required => parses::<InputRequiredResult>(result),
        "tools/call" => with_known_blocks(result, "content", None, parses::<CallToolResult>),
        "prompts/get" => with_known_blocks(result, "messages", Some("content"), parses::<GetPromptResult>),
        "resources/read" => parses::<ReadResourceResult>(result),
        "completion/complete" => parses::<CompleteResult>(result),
        "tools/list" => parses::<ListToolsResult>(result),
        "prompts/list" => parses::<ListPromptsResult>(result),
        "resources/list" => parses::<ListResourcesResult>(result),
        "resources/templates/list" => parses::<ListResourceTemplatesResult>(result),
        _ => Ok(()),
    }
    .map_err(fail)
}

/// Checks that one item of a list (`list_method`'s) parses as its type, so that one malformed
/// item can be dropped alone instead of spoiling the merged list it would join. What the parser
/// said is for the log only.
pub fn check_list_item(list_method: &str, item: &Value) -> Result<(), String> {
    match list_method {
        "tools/list" => parses::<Tool>(item),
        "prompts/list" => parses::<Prompt>(item),
        "resources/list" => parses::<Resource>(item),
        "resources/templates/list" => parses::<ResourceTemplate>(item),
        _ => Ok(()),
    }
}

/// Parses the value where it lies: no copy of the result is made.
fn parses<T: DeserializeOwned>(value: &Value) -> Result<(), String> {
    T::deserialize(value).map(drop).map_err(|e| e.to_string())
}

/// Parses `result`, with the content blocks of the array `list` (each block at `field` of an
/// item, or the item itself) of types this version does not know replaced by text blocks. The
/// result is copied only when it has such a block.
fn with_known_blocks(
    result: &Value,
    list: &str,
    field: Option<&str>,
    parse: fn(&Value) -> Result<(), String>,
) -> Result<(), String> {
    let items = result.get(list).and_then(Value::as_array);
    let unknown = items
        .is_some_and(|items| items.iter().filter_map(|item| field.map_or(Some(item), |f| item.get(f))).any(is_unknown));
    if !unknown {
        return parse(result);
    }
    let mut probe = result.clone();
    for item in probe.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
        let target = match field {
            Some(f) => item.get_mut(f),
            None => Some(item),
        };
        if let Some(b) = target.filter(|b| is_unknown(b)) {
            *b = json!({ "type": "text", "text": "" });
        }
    }
    parse(&probe)
}

/// A content block with a string `type` this version does not define: not a malformed result,
/// since a later MCP version may add types. A block without a string `type` is malformed.
fn is_unknown(block: &Value) -> bool {
    block.get("type").and_then(Value::as_str).is_some_and(|t| !KNOWN_BLOCKS.contains(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_method_is_held_to_its_own_result_type() {
        let good = [
            ("tools/call", json!({ "content": [{ "type": "text", "text": "x" }], "isError": false })),
            ("tools/call", json!({ "structuredContent": { "a": 1 } })),
            ("prompts/get", json!({ "messages": [{ "role": "user", "content": { "type": "text", "text": "hi" } }] })),
            ("resources/read", json!({ "contents": [{ "uri": "a://b", "text": "x" }] })),
            ("completion/complete", json!({ "completion": { "values": ["a"] } })),
            ("tools/list", json!({ "tools": [] })),
            ("ping", json!({})),
            (
                "tools/call",
                json!({ "resultType": "input_required", "requestState": "s", "inputRequests": {
                    "a": { "method": "elicitation/create", "params": { "message": "m", "requestedSchema": { "type": "object", "properties": {} } } }
                } }),
            ),
        ];
        for (method, result) in good {
            assert_eq!(check_result(method, &result), Ok(()), "{method} {result}");
        }
        let bad = [
            ("tools/call", json!({})),
            ("tools/call", json!({ "content": "x" })),
            ("tools/call", json!({ "content": [{ "type": "text", "text": 5 }] })),
            ("tools/call", json!({ "content": [{ "text": "no type" }] })),
            ("tools/call", json!({ "content": [], "isError": "yes" })),
            ("tools/call", json!({ "resultType": "banana", "content": [] })),
            ("tools/call", json!([])),
            ("prompts/get", json!({ "messages": [{ "role": "system", "content": { "type": "text", "text": "x" } }] })),
            ("prompts/get", json!({})),
            ("resources/read", json!({ "contents": [{ "text": "no uri" }] })),
            ("completion/complete", json!({ "completion": { "values": "a" } })),
            ("tools/call", json!({ "resultType": "input_required", "inputRequests": { "a": { "method": "ping" } } })),
            ("ping", json!("pong")),
        ];
        for (method, result) in bad {
            assert!(check_result(method, &result).is_err(), "{method} {result} should be refused");
        }
    }

    #[test]
    fn unknown_block_types_are_not_malformed_but_missing_types_are() {
        let r = json!({ "content": [{ "type": "hologram", "data": "x" }, { "type": "text", "text": "y" }] });
        assert_eq!(check_result("tools/call", &r), Ok(()));
        let p = json!({ "messages": [{ "role": "assistant", "content": { "type": "hologram" } }] });
        assert_eq!(check_result("prompts/get", &p), Ok(()));
        let typeless = json!({ "content": [{ "type": 7 }] });
        assert!(check_result("tools/call", &typeless).is_err());
    }
}
