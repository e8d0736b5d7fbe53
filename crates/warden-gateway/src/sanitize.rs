//! The response guards: what comes back from a server before a client (and its model) sees it.
//!
//! ```text
//! tools/call result ─▶ structuredContent against the tool's outputSchema (fail closed)
//!                   ─▶ the configured response schema: undeclared fields removed, or refused
//!                   ─▶ every string: secrets redacted
//!                   ─▶ every string: terminal escapes, control and invisible characters removed,
//!                      secrets redacted
//!                   ─▶ instructions aimed at the model: the context is tainted, and above
//!                      `quarantine_at` the result is quarantined
//! prompts/get, resources/read results ─▶ every string cleaned and redacted the same way
//! errors from servers ─▶ secrets, paths, hosts and stack traces removed
//! ```
//!
//! Schemas are JSON Schema 2020-12 (or the draft they declare), compiled once per distinct schema,
//! with `$ref` resolved only inside the schema (never fetched) and patterns run by a linear-time
//! regex engine.

use crate::config::{ExtraFields, PiiAction, SamplingContext, ToolSection};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use warden_inspect::sanitize::clean_text;
use warden_inspect::{Injection, InjectionScanner, PiiKind, PiiScanner, SecretScanner, scrub_error_message};
use warden_protocol::{RpcError, error};

/// Longest string of a result by default (`max_text_bytes`).
pub const DEFAULT_MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Largest result by default (`max_result_bytes`).
pub const DEFAULT_MAX_RESULT_BYTES: usize = 4 * 1024 * 1024;

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
            let binary = matches!(obj.get("type").and_then(Value::as_str), Some("image" | "audio"));
            obj.iter_mut()
                .filter(|(k, _)| !(k.as_str() == "blob" || (binary && k.as_str() == "data")))
                .map(|(_, v)| cut_texts(v, max, depth + 1))
                .sum()
        }
        _ => 0,
    }
}

/// Most distinct schemas kept compiled.
const MAX_CACHED_SCHEMAS: usize = 1024;

/// A compiled schema, or why it could not be compiled.
type Compiled = Arc<Result<jsonschema::Validator, String>>;

/// Checks and cleans what servers answer.
pub struct OutputGuard {
    secrets: SecretScanner,
    pii: PiiScanner,
    injections: InjectionScanner,
    schemas: Mutex<HashMap<[u8; 32], Compiled>>,
}

/// What cleaning a result removed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cleaning {
    /// Secrets redacted.
    pub redactions: u32,
    /// Terminal escapes, control and invisible characters removed.
    pub removed_characters: u32,
    /// Text hidden in Unicode tag characters, decoded (for the audit log).
    pub hidden_text: Option<String>,
    /// What was redacted, by kind and JSON pointer (never the value), for the audit log; at
    /// most [`MAX_FINDINGS`].
    pub found: Vec<Value>,
}

/// Most redactions a [`Cleaning`] lists by kind and place (it counts them all).
pub const MAX_FINDINGS: usize = 64;

/// Where a value lies in the value being cleaned, built only when something is found there.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The RFC 6901 pointer.
    fn pointer(&self) -> String {
        match self {
            Path::Root => String::new(),
            Path::Key(parent, key) => format!("{}/{}", parent.pointer(), key.replace('~', "~0").replace('/', "~1")),
            Path::Index(parent, i) => format!("{}/{i}", parent.pointer()),
        }
    }
}

impl Default for OutputGuard {
    fn default() -> Self {
        OutputGuard::new()
    }
}

/// A schema `$ref` outside the schema itself is never fetched.
struct NoRetrieval;

impl jsonschema::Retrieve for NoRetrieval {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("external schema references are not followed ({})", uri.as_str()).into())
    }
}

impl OutputGuard {
    /// A guard with its scanners compiled.
    pub fn new() -> OutputGuard {
        OutputGuard {
            secrets: SecretScanner::new(),
            pii: PiiScanner::new(),
            injections: InjectionScanner::new(),
            schemas: Mutex::new(HashMap::new()),
        }
    }

    fn compiled(&self, schema: &Value) -> Compiled {
        let key: [u8; 32] = Sha256::digest(serde_json::to_vec(schema).unwrap_or_default()).into();
        if let Some(c) = self.schemas.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return c.clone();
        }
        let built = jsonschema::options()
            .with_retriever(NoRetrieval)
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(schema)
            .map_err(|e| e.to_string());
        let compiled = Arc::new(built);
        let mut cache = self.schemas.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED_SCHEMAS {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        compiled
    }

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
        if !is_error {
            if let Some(schema) = definition.get("outputSchema") {
                let structured = result
                    .get("structuredContent")
                    .ok_or_else(|| refuse(exposed, "it declares an outputSchema but returned no structuredContent"))?;
                self.validate(exposed, "outputSchema", schema, structured)?;
            }
            if let Some(schema) = &settings.response_schema {
                self.narrow(exposed, schema, settings.extra_fields.unwrap_or_default(), result)?;
            }
        }
        let mut cleaned = self.clean_result(result);
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
            tracing::info!(tool = %crate::routing::shown(exposed), cut, "cut over-long texts in a result");
        }
        let max_result = settings.max_result_bytes.map_or(DEFAULT_MAX_RESULT_BYTES, |b| b as usize);
        let size = serde_json::to_vec(result).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > max_result {
            return Err(refuse(exposed, &format!("it is {size} bytes, over the {max_result} bytes allowed")));
        }
        Ok(())
    }

    fn validate(&self, exposed: &str, which: &str, schema: &Value, instance: &Value) -> Result<(), RpcError> {
        let compiled = self.compiled(schema);
        let validator = match compiled.as_ref() {
            Ok(v) => v,
            Err(why) => return Err(refuse(exposed, &format!("its {which} cannot be used ({why})"))),
        };
        match validator.iter_errors(instance).next() {
            None => Ok(()),
            Some(e) => {
                let at = e.instance_path.to_string();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                Err(refuse(
                    exposed,
                    &format!("its structuredContent does not match its {which} at {at} (schema {})", e.schema_path),
                ))
            }
        }
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
            tracing::info!(tool = %crate::routing::shown(exposed), fields = ?removed, "removed undeclared result fields");
        }
        let narrowed = structured.clone();
        self.validate(exposed, "response schema", schema, &narrowed)?;
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

    /// Cleans every string of a result (or any value): terminal escapes, control and invisible
    /// characters removed, secrets redacted. Binary payloads (`blob`, image and audio `data`)
    /// are left alone.
    pub fn clean(&self, value: &mut Value) -> Cleaning {
        let mut c = Cleaning::default();
        self.clean_value(value, &mut c, 0, &Path::Root);
        c
    }

    /// Cleans a result as [`OutputGuard::clean`] does, leaving alone only what the client must get
    /// back byte for byte (a 2026-07-28 `requestState`) and the requests to the client, which the
    /// sampling guard handles. A result of any shape, or with members Warden does not know, is
    /// cleaned all the same.
    pub fn clean_result(&self, result: &mut Value) -> Cleaning {
        let mut c = Cleaning::default();
        match result {
            Value::Object(obj) => {
                for (k, v) in obj.iter_mut() {
                    if !matches!(k.as_str(), "requestState" | "inputRequests" | "resultType") {
                        self.clean_value(v, &mut c, 1, &Path::Key(&Path::Root, k));
                    }
                }
            }
            other => self.clean_value(other, &mut c, 0, &Path::Root),
        }
        c
    }

    fn clean_value(&self, value: &mut Value, c: &mut Cleaning, depth: usize, at: &Path<'_>) {
        if depth > 128 {
            *value = Value::String("[removed by Warden: nested too deeply]".to_owned());
            c.removed_characters += 1;
            return;
        }
        match value {
            Value::String(s) => {
                let (cleaned, report) = clean_text(s);
                let removed = report.total();
                c.removed_characters += removed;
                if let Some(hidden) = report.tags_decoded {
                    c.hidden_text.get_or_insert(hidden);
                }
                let (redacted, found) = self.secrets.redact_str(&cleaned);
                c.redactions += found.total;
                for kind in found.by_kind.keys() {
                    if c.found.len() < MAX_FINDINGS {
                        c.found.push(serde_json::json!({ "kind": kind, "at": at.pointer() }));
                    }
                }
                if removed > 0 || found.total > 0 {
                    *s = redacted.into_owned();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.clean_value(v, c, depth + 1, &Path::Index(at, i));
                }
            }
            Value::Object(obj) => {
                // Text sent base64-encoded is still text for the model: it is decoded, and then
                // cleaned and scanned like any other text.
                if let Some(text) = textual_blob(obj) {
                    obj.remove("blob");
                    obj.insert("text".to_owned(), Value::String(text));
                }
                let binary = matches!(obj.get("type").and_then(Value::as_str), Some("image" | "audio"));
                for (k, v) in obj.iter_mut() {
                    if k == "blob" || (binary && k == "data") {
                        continue;
                    }
                    self.clean_value(v, c, depth + 1, &Path::Key(at, k));
                }
            }
            _ => {}
        }
    }

    /// Instructions aimed at the model inside a result.
    pub fn injections(&self, result: &Value) -> Injection {
        self.injections.scan_result(result)
    }

    /// Scrubs a server's error before a client sees it: secrets redacted, paths, internal hosts
    /// and stack traces removed. Returns how many things were removed.
    pub fn scrub_error(&self, e: &mut RpcError) -> u32 {
        let scrubbed = scrub_error_message(&self.secrets, &e.message);
        let mut n = scrubbed.redactions + scrubbed.paths + scrubbed.hosts + scrubbed.trace_lines;
        if scrubbed.changed {
            e.message = scrubbed.text;
        }
        if let Some(data) = e.data.as_mut() {
            n += self.clean(data).redactions;
        }
        n
    }
}

/// The text of a resource's `blob` whose `mimeType` says it is text (and which decodes to
/// UTF-8), so that it can travel as `text` instead. Binary payloads stay as they are.
fn textual_blob(obj: &serde_json::Map<String, Value>) -> Option<String> {
    use base64::Engine;
    let blob = obj.get("blob")?.as_str()?;
    let mime = obj.get("mimeType")?.as_str()?.split(';').next()?.trim().to_ascii_lowercase();
    let textual = mime.starts_with("text/")
        || mime.ends_with("+json")
        || mime.ends_with("+xml")
        || matches!(
            mime.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/yaml"
                | "application/x-yaml"
                | "application/toml"
                | "application/x-sh"
        );
    if !textual || obj.contains_key("text") {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(blob.trim()).ok()?;
    String::from_utf8(bytes).ok()
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
        format!("tools/call {}: the result was refused: {why}", crate::routing::shown(exposed)),
    )
}

/// One guard for the code paths that have no gateway at hand (its scanners are costly to build).
fn shared() -> &'static OutputGuard {
    static GUARD: std::sync::OnceLock<OutputGuard> = std::sync::OnceLock::new();
    GUARD.get_or_init(OutputGuard::new)
}

/// Text a server chose, made fit for the gateway's own log: cleaned, secrets redacted, on one
/// line, at most 2000 characters.
pub fn redacted_for_log(text: &str) -> String {
    const MOST: usize = 2000;
    let mut value = Value::String(text.to_owned());
    shared().clean(&mut value);
    let text = value.as_str().unwrap_or_default();
    let mut out: String = text.chars().take(MOST).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if text.chars().count() > MOST {
        out.push('…');
    }
    out
}

/// Cleans what a server's notification tells a client (a log message's `data` and `logger`, a
/// progress `message`) as results are cleaned: terminal escapes, control and invisible
/// characters removed, secrets redacted. Tokens and levels the client matches on are left as
/// they are. Returns how many values were changed.
pub fn clean_notification(n: &mut warden_protocol::Message) -> u32 {
    let Some(Value::Object(params)) = n.params_mut() else { return 0 };
    let guard = shared();
    let mut changed = 0;
    for (key, value) in params.iter_mut() {
        if !matches!(key.as_str(), "progressToken" | "level" | "progress" | "total") {
            let c = guard.clean(value);
            changed += c.redactions + c.removed_characters;
        }
    }
    changed
}

/// Most tokens a server may ask a client's model for in one sampling request, by default.
pub const SAMPLING_MAX_TOKENS: u64 = 4096;

/// What one server's sampling requests may ask of a client's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingLimits {
    /// The widest `includeContext` passed on.
    pub context: SamplingContext,
    /// The most tokens passed on.
    pub max_tokens: u64,
}

impl Default for SamplingLimits {
    fn default() -> Self {
        SamplingLimits { context: SamplingContext::None, max_tokens: SAMPLING_MAX_TOKENS }
    }
}

impl SamplingLimits {
    /// The limits a server's configuration sets.
    pub fn of(server: &crate::config::ServerSection) -> SamplingLimits {
        SamplingLimits {
            context: server.sampling_context,
            max_tokens: server.sampling_max_tokens.unwrap_or(SAMPLING_MAX_TOKENS),
        }
    }
}

/// What a server asks of a client, made safe to relay; runs after policy has allowed the
/// request. An elicitation's message and schema texts, shown to the user, are cleaned and have
/// secrets redacted. R8, the sampling guard: every string of a sampling request's messages and
/// system prompt is cleaned and has secrets redacted; `includeContext` (which would hand the
/// server the client's other conversations) is narrowed to what the server may ask (`none`
/// unless configured); `maxTokens` is capped. Other requests pass unchanged. Returns how many
/// values were redacted or removed.
pub fn guard_client_request(method: &str, params: Option<&mut Value>, limits: &SamplingLimits) -> u32 {
    let Some(Value::Object(p)) = params else { return 0 };
    let guard = shared();
    if method == "elicitation/create" {
        let mut changed = 0;
        for key in ["message", "requestedSchema"] {
            if let Some(v) = p.get_mut(key) {
                let c = guard.clean(v);
                changed += c.redactions + c.removed_characters;
            }
        }
        return changed;
    }
    if method != "sampling/createMessage" {
        return 0;
    }
    let mut changed = 0;
    for key in ["messages", "systemPrompt"] {
        if let Some(v) = p.get_mut(key) {
            let c = guard.clean(v);
            changed += c.redactions + c.removed_characters;
        }
    }
    if let Some(asked) = p.get("includeContext") {
        let wanted = asked.as_str().map_or(SamplingContext::AllServers, SamplingContext::from_wire);
        if wanted > limits.context || !asked.is_string() {
            p.insert("includeContext".to_owned(), Value::String(limits.context.wire().to_owned()));
            changed += 1;
        }
    }
    let asked = p.get("maxTokens").and_then(Value::as_u64);
    if asked.is_none_or(|t| t > limits.max_tokens) {
        p.insert("maxTokens".to_owned(), Value::from(asked.map_or(limits.max_tokens, |t| t.min(limits.max_tokens))));
        changed += u32::from(asked.is_some());
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sampling_requests_are_narrowed_and_redacted() {
        let mut p = json!({
            "messages": [{ "role": "user", "content": { "type": "text", "text": "summarize ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA \u{1b}[8mhidden" } }],
            "includeContext": "allServers",
            "maxTokens": 100000,
        });
        assert!(guard_client_request("sampling/createMessage", Some(&mut p), &SamplingLimits::default()) >= 3);
        let text = p["messages"][0]["content"]["text"].as_str().unwrap();
        assert!(!text.contains("ghp_") && !text.contains('\u{1b}'), "{text}");
        assert_eq!(p["includeContext"], "none");
        assert_eq!(p["maxTokens"], SAMPLING_MAX_TOKENS);
        let mut other = json!({ "uri": "ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" });
        assert_eq!(guard_client_request("roots/list", Some(&mut other), &SamplingLimits::default()), 0);
        let mut asked =
            json!({ "message": "token ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA \u{1b}[31m", "requestedSchema": {} });
        assert_eq!(guard_client_request("elicitation/create", Some(&mut asked), &SamplingLimits::default()), 2);
        assert_eq!(asked["message"], "token [REDACTED:github_token] ");
    }

    #[test]
    fn a_server_may_be_allowed_its_own_context_and_more_tokens() {
        let limits = SamplingLimits { context: SamplingContext::ThisServer, max_tokens: 10_000 };
        let mut p = json!({ "messages": [], "includeContext": "thisServer", "maxTokens": 8000 });
        assert_eq!(guard_client_request("sampling/createMessage", Some(&mut p), &limits), 0);
        assert_eq!((p["includeContext"].as_str(), p["maxTokens"].as_u64()), (Some("thisServer"), Some(8000)));
        for wider in [json!("allServers"), json!("everything"), json!(3)] {
            let mut p = json!({ "messages": [], "includeContext": wider, "maxTokens": 20_000 });
            guard_client_request("sampling/createMessage", Some(&mut p), &limits);
            assert_eq!(p["includeContext"], "thisServer", "narrowed from {wider}");
            assert_eq!(p["maxTokens"], 10_000);
        }
    }

    #[test]
    fn text_sent_as_a_blob_is_decoded_and_cleaned_binary_is_left() {
        use base64::Engine;
        let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
        let guard = OutputGuard::new();
        let mut r = json!({ "contents": [
            { "uri": "a://1", "mimeType": "text/plain; charset=utf-8", "blob": b64(b"key ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") },
            { "uri": "a://2", "mimeType": "image/png", "blob": b64(b"ghp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") },
            { "uri": "a://3", "mimeType": "text/plain", "blob": b64(&[0xff, 0xfe]) },
        ] });
        assert_eq!(guard.clean_result(&mut r).redactions, 1);
        assert_eq!(r["contents"][0]["text"], "key [REDACTED:github_token]");
        assert!(r["contents"][0].get("blob").is_none());
        assert!(r["contents"][1]["blob"].is_string() && r["contents"][1].get("text").is_none());
        assert!(r["contents"][2]["blob"].is_string(), "not UTF-8: left as binary");
    }

    #[test]
    fn undeclared_fields_are_found_at_every_depth() {
        let schema = json!({ "properties": { "a": { "properties": { "b": {} } }, "list": { "items": { "properties": { "x": {} } } } } });
        let mut v = json!({ "a": { "b": 1, "c": 2 }, "list": [{ "x": 1, "y": 2 }], "z": 3 });
        let removed = strip_undeclared(&schema, &mut v, "", 0);
        assert_eq!(removed, vec!["/z", "/a/c", "/list/0/y"]);
        assert_eq!(v, json!({ "a": { "b": 1 }, "list": [{ "x": 1 }] }));
    }
}
