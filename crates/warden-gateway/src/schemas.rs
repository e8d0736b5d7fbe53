//! JSON Schemas from servers (a tool's `inputSchema` and `outputSchema`) and from the
//! configuration, compiled once per distinct schema.
//!
//! A `$ref` is resolved only inside the schema itself: one that points elsewhere is never
//! fetched, and a schema that needs one cannot be used. Patterns run on a linear-time regex
//! engine, so a hostile pattern cannot stall the gateway.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most distinct schemas kept compiled.
const MAX_CACHED: usize = 1024;

/// A compiled schema, or why it could not be compiled.
pub type Compiled = Arc<Result<jsonschema::Validator, String>>;

/// Compiled schemas, by the hash of their JSON.
#[derive(Default)]
pub struct Schemas {
    cache: Mutex<HashMap<[u8; 32], Compiled>>,
}

/// A schema `$ref` outside the schema itself is never fetched.
struct NoRetrieval;

impl jsonschema::Retrieve for NoRetrieval {
    fn retrieve(&self, uri: &jsonschema::Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("external schema references are not followed ({})", uri.as_str()).into())
    }
}

/// Where and why an instance does not match its schema: the instance's JSON pointer and the
/// schema keyword that failed, never the instance's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// RFC 6901 pointer into the instance (`/` for the whole of it).
    pub at: String,
    /// The schema keyword that failed (`type`, `required`, `additionalProperties`, ...).
    pub keyword: String,
    /// Where in the schema.
    pub schema_path: String,
}

impl Schemas {
    /// An empty cache.
    pub fn new() -> Schemas {
        Schemas::default()
    }

    /// The compiled form of `schema`.
    pub fn compiled(&self, schema: &Value) -> Compiled {
        let key: [u8; 32] = Sha256::digest(serde_json::to_vec(schema).unwrap_or_default()).into();
        if let Some(c) = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return c.clone();
        }
        let built = jsonschema::options()
            .with_retriever(NoRetrieval)
            .with_pattern_options(jsonschema::PatternOptions::regex())
            .build(schema)
            .map_err(|e| e.to_string());
        let compiled = Arc::new(built);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        compiled
    }

    /// Checks `instance` against `schema`: `Ok(None)` when it matches, `Ok(Some(..))` with the
    /// first mismatch, `Err` with why the schema cannot be used.
    pub fn check(&self, schema: &Value, instance: &Value) -> Result<Option<Mismatch>, String> {
        Self::check_with(&self.compiled(schema), instance)
    }

    /// [`Schemas::check`] with a schema compiled already.
    pub fn check_with(compiled: &Compiled, instance: &Value) -> Result<Option<Mismatch>, String> {
        let validator = compiled.as_ref().as_ref().map_err(Clone::clone)?;
        if validator.is_valid(instance) {
            // The common case, without building errors.
            return Ok(None);
        }
        Ok(validator.iter_errors(instance).next().map(|e| {
            let at = e.instance_path.to_string();
            let schema_path = e.schema_path.to_string();
            let keyword = schema_path.rsplit('/').find(|s| !s.is_empty() && s.parse::<usize>().is_err());
            Mismatch {
                at: if at.is_empty() { "/".to_owned() } else { at },
                keyword: keyword.unwrap_or("schema").to_owned(),
                schema_path,
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mismatches_name_the_place_and_keyword_never_the_value() {
        let schemas = Schemas::new();
        let schema = json!({ "type": "object", "properties": { "n": { "type": "integer" } }, "required": ["n"] });
        assert_eq!(schemas.check(&schema, &json!({ "n": 1 })).unwrap(), None);
        let m = schemas.check(&schema, &json!({ "n": "ghp_secret" })).unwrap().unwrap();
        assert_eq!((m.at.as_str(), m.keyword.as_str()), ("/n", "type"));
        let m = schemas.check(&schema, &json!({})).unwrap().unwrap();
        assert_eq!((m.at.as_str(), m.keyword.as_str()), ("/", "required"));
    }

    #[test]
    fn remote_references_are_never_fetched() {
        let schemas = Schemas::new();
        let schema = json!({ "$ref": "https://schemas.example/evil.json" });
        assert!(schemas.check(&schema, &json!({})).is_err());
        let local = json!({ "$defs": { "s": { "type": "string" } }, "$ref": "#/$defs/s" });
        assert!(schemas.check(&local, &json!(3)).unwrap().is_some());
    }
}
