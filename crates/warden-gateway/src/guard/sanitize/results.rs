//! The response guards of tool results beyond cleaning: `structuredContent` against the tool's
//! `outputSchema` (failing closed), the configured response schema (undeclared fields removed or
//! refused), personal data per tool, and size caps.

use super::{Cleaning, MAX_FINDINGS, OutputGuard};
use crate::config::{ExtraFields, PiiAction, ToolSection};
use crate::schemas::Schemas;
use serde_json::Value;
use warden_inspect::PiiKind;
use warden_protocol::{RpcError, error};

/// Longest string of a result by default (`max_text_bytes`).
pub const DEFAULT_MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Largest result by default (`max_result_bytes`).
pub const DEFAULT_MAX_RESULT_BYTES: usize = 4 * 1024 * 1024;

impl OutputGuard {
    /// Checks a `tools/call` result against the tool's `outputSchema` and the configured
    /// response schema, then redacts secrets in it. `exposed` names the tool in errors.
    pub fn tool_result(
        &self,
        exposed: &str,
        definition: &Value,
        settings: &ToolSection,
        result: &mut Value,
    ) -> Result<Cleaning, RpcError> {
        let is_error = result.get("isError").and_then(Value::as_bool) == Some(true);
        let schemas = definition.get("outputSchema").is_some() || settings.response_schema.is_some();
        if is_error
            && schemas
            && let Some(obj) = result.as_object_mut()
        {
            // An error's data is not checked against the tool's schemas, so none of it passes:
            // flagging a result as an error cannot carry fields the schemas would refuse.
            if obj.remove("structuredContent").is_some() {
                tracing::info!(tool = %crate::names::shown(exposed), "removed structuredContent from an error result");
            }
        }
        if !is_error {
            if let Some(schema) = definition.get("outputSchema") {
                let structured = result
                    .get("structuredContent")
                    .ok_or_else(|| refuse(exposed, "it declares an outputSchema but returned no structuredContent"))?;
                validate(&self.schemas, exposed, "outputSchema", schema, structured)?;
            }
            if let Some(schema) = &settings.response_schema {
                self.narrow(exposed, schema, settings.extra_fields.unwrap_or_default(), result)?;
            }
        }
        let mut cleaned = self.clean_result(result);
        if cleaned.refused.is_some() {
            return Ok(cleaned);
        }
        let personal = self.personal_data(exposed, settings, result)?;
        cleaned.redactions += personal.iter().map(|(_, n)| n).sum::<u32>();
        for (kind, _) in personal {
            if cleaned.found.len() < MAX_FINDINGS {
                cleaned.found.push(serde_json::json!({ "kind": kind }));
            }
        }
        self.cap(exposed, settings, result)?;
        Ok(cleaned)
    }

    /// Applies the tool's policy on personal data: kinds to refuse, then kinds to redact; the
    /// kinds redacted and how many of each.
    fn personal_data(
        &self,
        exposed: &str,
        settings: &ToolSection,
        result: &mut Value,
    ) -> Result<Vec<(&'static str, u32)>, RpcError> {
        let Some(rules) = &settings.pii else { return Ok(vec![]) };
        let kinds = |action: PiiAction| -> Vec<PiiKind> {
            rules.iter().filter(|(_, a)| **a == action).filter_map(|(k, _)| k.parse().ok()).collect()
        };
        let refused = kinds(PiiAction::Refuse);
        if !refused.is_empty() {
            // Found by redacting a copy: the kinds present, never the values.
            let mut probe = result.clone();
            let found = self.pii.redact_json(&mut probe, &refused);
            if found.total > 0 {
                let names: Vec<&str> = found.by_kind.keys().copied().collect();
                return Err(refuse(
                    exposed,
                    &format!("it contains personal data this tool may not return ({})", names.join(", ")),
                ));
            }
        }
        let redacted = kinds(PiiAction::Redact);
        if redacted.is_empty() {
            return Ok(vec![]);
        }
        Ok(self.pii.redact_json(result, &redacted).by_kind.into_iter().collect())
    }

    /// Cuts over-long texts and refuses an over-large result.
    fn cap(&self, exposed: &str, settings: &ToolSection, result: &mut Value) -> Result<(), RpcError> {
        let max_text = settings.max_text_bytes.map_or(DEFAULT_MAX_TEXT_BYTES, |b| b as usize);
        let cut = cut_texts(result, max_text, 0);
        if cut > 0 {
            tracing::info!(tool = %crate::names::shown(exposed), cut, "cut over-long texts in a result");
        }
        let max_result = settings.max_result_bytes.map_or(DEFAULT_MAX_RESULT_BYTES, |b| b as usize);
        let size = serde_json::to_vec(result).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > max_result {
            return Err(refuse(exposed, &format!("it is {size} bytes, over the {max_result} bytes allowed")));
        }
        Ok(())
    }

    /// Applies the configured response schema: fields it does not declare are removed (or the
    /// result is refused), and what remains must match it.
    fn narrow(&self, exposed: &str, schema: &Value, extra: ExtraFields, result: &mut Value) -> Result<(), RpcError> {
        let Some(structured) = result.get_mut("structuredContent") else {
            return Err(refuse(exposed, "a response schema is configured but it returned no structuredContent"));
        };
        let original = structured.clone();
        let removed = strip_undeclared(schema, structured, "", 0);
        if !removed.is_empty() {
            if extra == ExtraFields::Refuse {
                return Err(refuse(
                    exposed,
                    &format!("it returned fields its response schema does not declare: {}", removed.join(", ")),
                ));
            }
            tracing::info!(tool = %crate::names::shown(exposed), fields = ?removed, "removed undeclared result fields");
        }
        let narrowed = structured.clone();
        validate(&self.schemas, exposed, "response schema", schema, &narrowed)?;
        // The text form of the same data must not carry what was removed.
        if let Some(blocks) = result.get_mut("content").and_then(Value::as_array_mut) {
            for block in blocks {
                let same =
                    block.get("text").and_then(Value::as_str).and_then(|t| serde_json::from_str::<Value>(t).ok());
                if same.as_ref() == Some(&original) {
                    block["text"] = Value::String(narrowed.to_string());
                } else if !removed.is_empty() && block.get("type").and_then(Value::as_str) == Some("text") {
                    // Text that merely describes the data cannot be narrowed field by field.
                    block["text"] = Value::String(narrowed.to_string());
                }
            }
        }
        Ok(())
    }
}

fn validate(schemas: &Schemas, exposed: &str, which: &str, schema: &Value, instance: &Value) -> Result<(), RpcError> {
    match schemas.check(schema, instance) {
        Err(why) => Err(refuse(exposed, &format!("its {which} cannot be used ({why})"))),
        Ok(None) => Ok(()),
        Ok(Some(m)) => Err(refuse(
            exposed,
            &format!("its structuredContent does not match its {which} at {} (schema {})", m.at, m.schema_path),
        )),
    }
}

/// Cuts every string longer than `max` bytes (binary payloads excepted); how many were cut.
fn cut_texts(value: &mut Value, max: usize, depth: usize) -> u32 {
    if depth > 128 {
        return 0;
    }
    match value {
        Value::String(s) if s.len() > max => {
            *s = warden_inspect::sanitize::truncate(s, max).into_owned();
            1
        }
        Value::Array(items) => items.iter_mut().map(|v| cut_texts(v, max, depth + 1)).sum(),
        Value::Object(obj) => {
            // Payloads are not cut (their text was cleaned decoded); the result's size cap holds them.
            let payloads: Vec<String> = obj.keys().filter(|k| super::payload::is_payload(obj, k)).cloned().collect();
            obj.iter_mut().filter(|(k, _)| !payloads.contains(k)).map(|(_, v)| cut_texts(v, max, depth + 1)).sum()
        }
        _ => 0,
    }
}

/// Removes object members a schema's `properties` do not declare (where it declares any),
/// following `properties` and `items`; returns the JSON pointers removed.
fn strip_undeclared(schema: &Value, value: &mut Value, at: &str, depth: usize) -> Vec<String> {
    let mut removed = Vec::new();
    if depth > 64 {
        return removed;
    }
    match value {
        Value::Object(obj) => {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else { return removed };
            let undeclared: Vec<String> = obj.keys().filter(|k| !props.contains_key(*k)).cloned().collect();
            for k in undeclared {
                obj.remove(&k);
                removed.push(format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")));
            }
            for (k, v) in obj.iter_mut() {
                if let Some(sub) = props.get(k) {
                    removed.extend(strip_undeclared(sub, v, &format!("{at}/{k}"), depth + 1));
                }
            }
        }
        Value::Array(items) => {
            if let Some(sub) = schema.get("items") {
                for (i, v) in items.iter_mut().enumerate() {
                    removed.extend(strip_undeclared(sub, v, &format!("{at}/{i}"), depth + 1));
                }
            }
        }
        _ => {}
    }
    removed
}

fn refuse(exposed: &str, why: &str) -> RpcError {
    RpcError::new(
        error::UPSTREAM_INVALID_RESPONSE,
        format!("tools/call {}: the result was refused: {why}", crate::names::shown(exposed)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn undeclared_fields_are_found_at_every_depth() {
        let schema = json!({ "properties": { "a": { "properties": { "b": {} } }, "list": { "items": { "properties": { "x": {} } } } } });
        let mut v = json!({ "a": { "b": 1, "c": 2 }, "list": [{ "x": 1, "y": 2 }], "z": 3 });
        let removed = strip_undeclared(&schema, &mut v, "", 0);
        assert_eq!(removed, vec!["/z", "/a/c", "/list/0/y"]);
        assert_eq!(v, json!({ "a": { "b": 1 }, "list": [{ "x": 1 }] }));
    }
}
