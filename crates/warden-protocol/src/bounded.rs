//! A JSON value reader that refuses what a gateway must not pass on: nesting deeper than a limit
//! and objects that name the same key twice.
//!
//! Duplicate keys matter because peers disagree on them: one parser keeps the first value, another
//! the last. If Warden inspected `{"name":"safe","name":"rm"}` as `safe` while the server ran `rm`,
//! every guard above the envelope would be bypassed, so such frames are refused outright.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Reads one JSON value, failing past `max_depth` levels of nesting or on a repeated object key.
pub(crate) struct BoundedValue {
    pub(crate) depth: usize,
    pub(crate) max_depth: usize,
}

impl BoundedValue {
    fn nested(&self) -> Self {
        BoundedValue { depth: self.depth + 1, max_depth: self.max_depth }
    }
}

impl<'de> DeserializeSeed<'de> for BoundedValue {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.depth >= self.max_depth {
            return Err(de::Error::custom(DepthExceeded(self.max_depth)));
        }
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(v) = seq.next_element_seed(self.nested())? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        if self.depth >= self.max_depth {
            return Err(de::Error::custom(DepthExceeded(self.max_depth)));
        }
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(DuplicateKey(key)));
            }
            let v = map.next_value_seed(self.nested())?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Message fragment used to recognise a depth failure in serde's error text.
pub(crate) const DEPTH_MARKER: &str = "nesting deeper than";
/// Message fragment used to recognise a duplicate-key failure in serde's error text.
pub(crate) const DUPLICATE_MARKER: &str = "duplicate key";

struct DepthExceeded(usize);

impl fmt::Display for DepthExceeded {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{DEPTH_MARKER} {} levels", self.0)
    }
}

struct DuplicateKey(String);

impl fmt::Display for DuplicateKey {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let shown: String = self.0.chars().take(64).collect();
        write!(f, "{DUPLICATE_MARKER} {shown:?}")
    }
}

/// Parses a whole document as one bounded value.
pub fn parse_value(bytes: &[u8], max_depth: usize) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = BoundedValue { depth: 0, max_depth }.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ordinary_json() {
        let v = parse_value(br#"{"a":[1,2,{"b":null}],"c":"d"}"#, 8).unwrap();
        assert_eq!(v["a"][2]["b"], Value::Null);
    }

    #[test]
    fn refuses_duplicate_keys_at_any_depth() {
        let e = parse_value(br#"{"a":{"x":1,"x":2}}"#, 8).unwrap_err();
        assert!(e.to_string().contains(DUPLICATE_MARKER));
    }

    #[test]
    fn refuses_depth_bombs_without_overflowing_the_stack() {
        let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse_value(bomb.as_bytes(), 64).unwrap_err();
        assert!(e.to_string().contains(DEPTH_MARKER), "{e}");
    }

    #[test]
    fn depth_limit_is_exact() {
        assert!(parse_value(b"[[1]]", 2).is_ok());
        assert!(parse_value(b"[[[1]]]", 2).is_err());
    }

    #[test]
    fn refuses_trailing_garbage() {
        assert!(parse_value(b"{} x", 8).is_err());
    }
}
