//! The JSON-RPC 2.0 envelope, owned by Warden.
//!
//! A frame is read into a [`Message`] that keeps every member it carried: unknown top-level members
//! and unknown fields inside `params` and `result` survive, because typed structs would drop them.
//! The `id` is kept as the exact bytes the peer sent and echoed back unchanged.
//!
//! Reading is bounded: a frame larger than [`Limits::max_frame_bytes`], nested deeper than
//! [`Limits::max_depth`], or naming an object key twice is refused with a [`ParseError`] that
//! already knows which JSON-RPC error to answer with.

use crate::bounded::{BoundedValue, DEPTH_MARKER, DUPLICATE_MARKER};
use crate::error::{INVALID_REQUEST, PARSE_ERROR, RpcError, TOO_LARGE};
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// Size and shape limits applied to every frame Warden reads.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest frame accepted, in bytes.
    pub max_frame_bytes: usize,
    /// Deepest nesting of arrays and objects accepted.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_frame_bytes: 4 * 1024 * 1024, max_depth: 64 }
    }
}

/// A JSON-RPC request id: a string or an integer, kept as the bytes the peer sent.
#[derive(Clone)]
pub struct Id(Box<RawValue>);

/// A comparable form of an [`Id`], for maps of in-flight requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdKey {
    /// An integer id.
    Num(i128),
    /// A string id.
    Str(String),
}

impl Id {
    fn from_raw(raw: Box<RawValue>) -> Result<Self, &'static str> {
        match serde_json::from_str::<Value>(raw.get()) {
            Ok(Value::String(_)) => Ok(Id(raw)),
            Ok(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Id(raw)),
            Ok(Value::Null) => Err("id must not be null"),
            Ok(Value::Number(_)) => Err("id must be a string or an integer"),
            _ => Err("id must be a string or an integer"),
        }
    }

    /// An integer id.
    pub fn number(n: u64) -> Self {
        Id(RawValue::from_string(n.to_string()).expect("an integer is valid JSON"))
    }

    /// A string id.
    pub fn string(s: &str) -> Self {
        let text = serde_json::to_string(s).expect("a string serializes");
        Id(RawValue::from_string(text).expect("a serialized string is valid JSON"))
    }

    /// The id exactly as the peer sent it.
    pub fn raw(&self) -> &str {
        self.0.get()
    }

    /// The comparable key of this id.
    pub fn key(&self) -> IdKey {
        match serde_json::from_str::<Value>(self.0.get()) {
            Ok(Value::String(s)) => IdKey::Str(s),
            Ok(Value::Number(n)) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .map_or_else(|| IdKey::Str(self.0.get().to_owned()), IdKey::Num),
            _ => IdKey::Str(self.0.get().to_owned()),
        }
    }

    /// The id as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }

    /// Reads an id from a JSON value, as found inside `params` (for example a cancelled request's id).
    pub fn from_value(v: &Value) -> Option<Self> {
        let raw = RawValue::from_string(v.to_string()).ok()?;
        Id::from_raw(raw).ok()
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.get())
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// What a message is, by the members it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `method` and `id`: expects a response.
    Request,
    /// `method` and no `id`.
    Notification,
    /// `id` and `result`.
    Response,
    /// `error`, with an `id` when the failed request's id is known.
    Error,
}

/// One JSON-RPC message.
#[derive(Debug, Clone)]
pub struct Message {
    id: Option<Id>,
    method: Option<String>,
    params: Option<Value>,
    result: Option<Value>,
    error: Option<Value>,
    extra: Map<String, Value>,
}

/// Why a frame was refused, with the JSON-RPC error to answer it with.
#[derive(Debug, Clone)]
pub struct ParseError {
    /// The id of the offending request, when it could be read.
    pub id: Option<Id>,
    /// The error to send back.
    pub error: RpcError,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    fn new(id: Option<Id>, code: i32, message: impl Into<String>) -> Self {
        ParseError { id, error: RpcError::new(code, message) }
    }
}

impl Message {
    /// Reads one message from a frame, enforcing `limits`.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<Message, ParseError> {
        if bytes.len() > limits.max_frame_bytes {
            return Err(ParseError::new(
                None,
                TOO_LARGE,
                format!("frame of {} bytes exceeds the limit of {} bytes", bytes.len(), limits.max_frame_bytes),
            ));
        }
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        match first {
            Some(b'{') => {}
            Some(b'[') => {
                return Err(ParseError::new(
                    None,
                    INVALID_REQUEST,
                    "JSON-RPC batches are not accepted: send one message per frame",
                ));
            }
            None => return Err(ParseError::new(None, PARSE_ERROR, "empty frame")),
            Some(_) => {
                // Either malformed JSON or a JSON value that is not an object.
                return match serde_json::from_slice::<de::IgnoredAny>(bytes) {
                    Ok(_) => Err(ParseError::new(None, INVALID_REQUEST, "a JSON-RPC message must be an object")),
                    Err(e) => Err(ParseError::new(None, PARSE_ERROR, format!("malformed JSON: {e}"))),
                };
            }
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let mut partial = Partial::default();
        let read = (EnvelopeSeed { partial: &mut partial, max_depth: limits.max_depth })
            .deserialize(&mut de)
            .and_then(|()| de.end());
        if let Err(e) = read {
            let text = e.to_string();
            // serde_json's own recursion limit may fire before ours: both mean "too deep".
            let too_deep = text.contains(DEPTH_MARKER) || text.contains("recursion limit");
            let code = if too_deep || text.contains(DUPLICATE_MARKER) || !e.is_syntax() && !e.is_eof() {
                INVALID_REQUEST
            } else {
                PARSE_ERROR
            };
            let id = partial.id.take().and_then(|raw| Id::from_raw(raw).ok());
            let prefix = if code == PARSE_ERROR { "malformed JSON" } else { "invalid message" };
            return Err(ParseError::new(id, code, format!("{prefix}: {text}")));
        }
        partial.finish()
    }

    /// A request.
    pub fn request(id: Id, method: impl Into<String>, params: Option<Value>) -> Message {
        Message { id: Some(id), method: Some(method.into()), params, result: None, error: None, extra: Map::new() }
    }

    /// A notification.
    pub fn notification(method: impl Into<String>, params: Option<Value>) -> Message {
        Message { id: None, method: Some(method.into()), params, result: None, error: None, extra: Map::new() }
    }

    /// A successful response.
    pub fn response(id: Id, result: Value) -> Message {
        Message { id: Some(id), method: None, params: None, result: Some(result), error: None, extra: Map::new() }
    }

    /// An error response; `id` is `None` when the request's id could not be read.
    pub fn error_response(id: Option<Id>, error: &RpcError) -> Message {
        Message { id, method: None, params: None, result: None, error: Some(error.to_value()), extra: Map::new() }
    }

    /// What this message is.
    pub fn kind(&self) -> Kind {
        if self.error.is_some() {
            Kind::Error
        } else if self.result.is_some() {
            Kind::Response
        } else if self.id.is_some() {
            Kind::Request
        } else {
            Kind::Notification
        }
    }

    /// The id, if any.
    pub fn id(&self) -> Option<&Id> {
        self.id.as_ref()
    }

    /// Replaces the id.
    pub fn set_id(&mut self, id: Id) {
        self.id = Some(id);
    }

    /// The method of a request or notification.
    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// Replaces the method.
    pub fn set_method(&mut self, method: impl Into<String>) {
        self.method = Some(method.into());
    }

    /// The params, if any.
    pub fn params(&self) -> Option<&Value> {
        self.params.as_ref()
    }

    /// The params for editing.
    pub fn params_mut(&mut self) -> Option<&mut Value> {
        self.params.as_mut()
    }

    /// Takes the params out.
    pub fn take_params(&mut self) -> Option<Value> {
        self.params.take()
    }

    /// Replaces the params.
    pub fn set_params(&mut self, params: Option<Value>) {
        self.params = params;
    }

    /// A string member of `params`.
    pub fn param_str(&self, key: &str) -> Option<&str> {
        self.params.as_ref()?.get(key)?.as_str()
    }

    /// The result of a successful response.
    pub fn result(&self) -> Option<&Value> {
        self.result.as_ref()
    }

    /// The result for editing.
    pub fn result_mut(&mut self) -> Option<&mut Value> {
        self.result.as_mut()
    }

    /// Takes the result out.
    pub fn take_result(&mut self) -> Option<Value> {
        self.result.take()
    }

    /// The error object of an error response.
    pub fn error(&self) -> Option<&Value> {
        self.error.as_ref()
    }

    /// The error object of an error response, read as an [`RpcError`].
    pub fn rpc_error(&self) -> Option<RpcError> {
        self.error.as_ref().map(RpcError::from_value)
    }

    /// Replaces the error object.
    pub fn set_error(&mut self, error: &RpcError) {
        self.result = None;
        self.error = Some(error.to_value());
    }

    /// Top-level members other than the JSON-RPC ones.
    pub fn extra(&self) -> &Map<String, Value> {
        &self.extra
    }

    /// `params._meta`, if present and an object.
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        self.params.as_ref()?.get("_meta")?.as_object()
    }

    /// `params._meta` for editing, created if absent. `None` when `params` is not an object.
    pub fn meta_mut(&mut self) -> Option<&mut Map<String, Value>> {
        let params = self.params.get_or_insert_with(|| Value::Object(Map::new()));
        let obj = params.as_object_mut()?;
        let meta = obj.entry("_meta").or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        meta.as_object_mut()
    }

    /// The message as compact JSON.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        // Serializing a message built from valid JSON cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }

    /// The message as compact JSON text.
    pub fn to_json(&self) -> String {
        String::from_utf8(self.to_vec()).unwrap_or_default()
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("jsonrpc", "2.0")?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        } else if self.error.is_some() {
            map.serialize_entry("id", &Value::Null)?;
        }
        if let Some(m) = &self.method {
            map.serialize_entry("method", m)?;
        }
        if let Some(p) = &self.params {
            map.serialize_entry("params", p)?;
        }
        if let Some(r) = &self.result {
            map.serialize_entry("result", r)?;
        }
        if let Some(e) = &self.error {
            map.serialize_entry("error", e)?;
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Default)]
struct Partial {
    jsonrpc: Option<String>,
    id: Option<Box<RawValue>>,
    method: Option<Value>,
    params: Option<Value>,
    result: Option<Value>,
    error: Option<Value>,
    extra: Map<String, Value>,
}

impl Partial {
    fn finish(mut self) -> Result<Message, ParseError> {
        let id = match self.id.take() {
            Some(raw) => match Id::from_raw(raw) {
                Ok(id) => Some(id),
                Err(why) => {
                    // A null id is how peers answer frames they could not read; keep it as "no id".
                    if self.error.is_some() && why.contains("null") {
                        None
                    } else {
                        return Err(ParseError::new(None, INVALID_REQUEST, why));
                    }
                }
            },
            None => None,
        };
        let fail = |msg: &str| Err(ParseError::new(id.clone(), INVALID_REQUEST, msg.to_owned()));
        match self.jsonrpc.as_deref() {
            Some("2.0") => {}
            Some(_) => return fail("jsonrpc must be \"2.0\""),
            None => return fail("missing jsonrpc member"),
        }
        let method = match self.method.take() {
            Some(Value::String(m)) if !m.is_empty() => Some(m),
            Some(_) => return fail("method must be a non-empty string"),
            None => None,
        };
        if let Some(p) = &self.params
            && !p.is_object()
            && !p.is_array()
        {
            return fail("params must be an object or an array");
        }
        let msg =
            Message { id, method, params: self.params, result: self.result, error: self.error, extra: self.extra };
        let fail = |msg: &str, id: &Option<Id>| Err(ParseError::new(id.clone(), INVALID_REQUEST, msg.to_owned()));
        match (&msg.method, &msg.result, &msg.error) {
            (Some(_), None, None) => {}
            (None, Some(_), None) => {
                if msg.id.is_none() {
                    return fail("a response must carry the id of its request", &msg.id);
                }
                if msg.params.is_some() {
                    return fail("a response must not carry params", &msg.id);
                }
            }
            (None, None, Some(e)) => {
                if !e.is_object()
                    || !e.get("code").is_some_and(Value::is_i64)
                    || !e.get("message").is_some_and(Value::is_string)
                {
                    return fail("error must be an object with an integer code and a string message", &msg.id);
                }
            }
            (None, None, None) => {
                return Err(ParseError::new(
                    msg.id,
                    INVALID_REQUEST,
                    "a message must carry a method, a result or an error",
                ));
            }
            _ => return fail("a message must carry exactly one of method, result and error", &msg.id),
        }
        Ok(msg)
    }
}

struct EnvelopeSeed<'p> {
    partial: &'p mut Partial,
    max_depth: usize,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let p = self.partial;
        let value = |depth| BoundedValue { depth, max_depth: self.max_depth };
        while let Some(key) = map.next_key::<String>()? {
            let seen = match key.as_str() {
                "jsonrpc" => p.jsonrpc.is_some(),
                "id" => p.id.is_some(),
                "method" => p.method.is_some(),
                "params" => p.params.is_some(),
                "result" => p.result.is_some(),
                "error" => p.error.is_some(),
                other => p.extra.contains_key(other),
            };
            if seen {
                let shown: String = key.chars().take(64).collect();
                return Err(de::Error::custom(format!("{DUPLICATE_MARKER} {shown:?}")));
            }
            match key.as_str() {
                "jsonrpc" => {
                    let v = map.next_value_seed(value(1))?;
                    p.jsonrpc = Some(match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    });
                }
                "id" => p.id = Some(map.next_value::<Box<RawValue>>()?),
                "method" => p.method = Some(map.next_value_seed(value(1))?),
                "params" => p.params = Some(map.next_value_seed(value(1))?),
                "result" => p.result = Some(map.next_value_seed(value(1))?),
                "error" => p.error = Some(map.next_value_seed(value(1))?),
                _ => {
                    let v = map.next_value_seed(value(1))?;
                    p.extra.insert(key, v);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::INVALID_REQUEST;

    fn parse(s: &str) -> Result<Message, ParseError> {
        Message::parse(s.as_bytes(), &Limits::default())
    }

    #[test]
    fn request_round_trips_with_unknown_fields() {
        let m =
            parse(r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x","zz":{"q":1}},"ext":true}"#)
                .unwrap();
        assert_eq!(m.kind(), Kind::Request);
        assert_eq!(m.method(), Some("tools/call"));
        let back: Value = serde_json::from_slice(&m.to_vec()).unwrap();
        assert_eq!(back["params"]["zz"]["q"], 1);
        assert_eq!(back["ext"], true);
    }

    #[test]
    fn id_is_echoed_byte_for_byte() {
        for raw in [r#""abc""#, "12345678901234567890", r#""\u00e9""#, "-3"] {
            let m = parse(&format!(r#"{{"jsonrpc":"2.0","id":{raw},"method":"ping"}}"#)).unwrap();
            let reply = Message::response(m.id().unwrap().clone(), serde_json::json!({}));
            assert!(reply.to_json().contains(&format!(r#""id":{raw}"#)), "{}", reply.to_json());
        }
    }

    #[test]
    fn refuses_wrong_version_missing_and_odd_ids() {
        let e = parse(r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#).unwrap_err();
        assert_eq!(e.error.code, INVALID_REQUEST);
        assert!(e.id.is_some(), "the id is known, so the error can be correlated");
        assert!(parse(r#"{"id":1,"method":"ping"}"#).is_err());
        assert!(parse(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#).is_err());
        assert!(parse(r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#).is_err());
        assert!(parse(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#).is_err());
        assert!(parse(r#"{"jsonrpc":"2.0","result":{}}"#).is_err(), "a response needs an id");
    }

    #[test]
    fn refuses_duplicate_members_and_ids() {
        let e = parse(r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#).unwrap_err();
        assert_eq!(e.error.code, INVALID_REQUEST);
        let e =
            parse(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","name":"b"}}"#).unwrap_err();
        assert_eq!(e.error.code, INVALID_REQUEST);
        assert!(e.id.is_some());
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        let e = parse(r#"{"jsonrpc":"2.0","id":1,"method":"#).unwrap_err();
        assert_eq!(e.error.code, PARSE_ERROR);
        let e = parse("not json").unwrap_err();
        assert_eq!(e.error.code, PARSE_ERROR);
        let e = parse("\"just a string\"").unwrap_err();
        assert_eq!(e.error.code, INVALID_REQUEST);
    }

    #[test]
    fn size_and_depth_are_bounded() {
        let limits = Limits { max_frame_bytes: 64, max_depth: 4 };
        let big = format!(r#"{{"jsonrpc":"2.0","method":"x","params":{{"a":"{}"}}}}"#, "a".repeat(100));
        assert_eq!(Message::parse(big.as_bytes(), &limits).unwrap_err().error.code, TOO_LARGE);
        let deep = r#"{"jsonrpc":"2.0","method":"x","params":{"a":[[[[1]]]]}}"#;
        let e = Message::parse(deep.as_bytes(), &Limits { max_frame_bytes: 1000, max_depth: 4 }).unwrap_err();
        assert_eq!(e.error.code, INVALID_REQUEST);
    }

    #[test]
    fn nesting_past_the_parsers_own_limit_is_still_an_invalid_request() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"x","params":{{"a":{}{}}}}}"#,
            "[".repeat(300),
            "]".repeat(300)
        );
        let e = Message::parse(deep.as_bytes(), &Limits { max_frame_bytes: 1 << 20, max_depth: 128 }).unwrap_err();
        assert_eq!(e.error.code, INVALID_REQUEST, "{}", e.error.message);
        let dup = format!(r#"{{"jsonrpc":"2.0","id":1,"{k}":1,"{k}":2,"method":"x"}}"#, k = "k".repeat(10_000));
        let e = Message::parse(dup.as_bytes(), &Limits::default()).unwrap_err();
        assert!(e.error.message.len() < 300, "a repeated key is not echoed whole: {} bytes", e.error.message.len());
    }

    #[test]
    fn batches_are_refused_clearly() {
        let e = parse(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).unwrap_err();
        assert!(e.error.message.contains("batch"));
    }

    #[test]
    fn error_response_with_null_id_is_read() {
        let m = parse(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}}"#).unwrap();
        assert_eq!(m.kind(), Kind::Error);
        assert!(m.id().is_none());
        assert!(m.to_json().contains(r#""id":null"#));
    }

    #[test]
    fn meta_mut_creates_meta() {
        let mut m = Message::request(Id::number(1), "tools/list", None);
        m.meta_mut().unwrap().insert("k".into(), Value::Bool(true));
        assert_eq!(m.params().unwrap()["_meta"]["k"], true);
    }
}
