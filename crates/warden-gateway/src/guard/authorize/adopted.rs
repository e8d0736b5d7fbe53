//! Classes adopted for one definition (`[tools."s/t"] class` with `definition`, written by
//! `warden tools review --adopt`): applied only while the server lists that very definition.
//!
//! The check runs on every call and listing of an adopted tool, so the definition's hash is
//! remembered with the definition it was computed for: a definition equal to the last one seen
//! is not hashed again.

use crate::config::{ToolClass, ToolSection};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

/// Definitions remembered at most; past it the memory starts again.
const MAX_REMEMBERED: usize = 4096;

/// The hashes of the definitions adopted tools were last listed with.
#[derive(Default)]
pub(super) struct AdoptedClasses {
    /// `server/tool` → the definition last seen and its `sha256:` hash (none if it has none).
    seen: Mutex<HashMap<String, (Value, Option<String>)>>,
}

impl AdoptedClasses {
    /// The configured class of a tool, unless it was adopted for another definition than
    /// `definition`: then the class of the server's `*` entry (or none), as if the tool had never
    /// been reviewed, and the gateway says so once per definition.
    pub(super) fn class(
        &self,
        server: &str,
        settings: &ToolSection,
        server_default: Option<ToolClass>,
        definition: &Value,
    ) -> Option<ToolClass> {
        let Some(adopted_for) = &settings.definition else { return settings.class };
        let tool = definition.get("name").and_then(Value::as_str).unwrap_or_default();
        let key = format!("{server}/{tool}");
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let known = seen.get(&key).filter(|(d, _)| d == definition).map(|(_, h)| h.clone());
        let (now, first_sight) = match known {
            Some(h) => (h, false),
            None => {
                let h = warden_inspect::canonical::definition_hash(definition).ok();
                if seen.len() >= MAX_REMEMBERED {
                    seen.clear();
                }
                seen.insert(key, (definition.clone(), h.clone()));
                (h, true)
            }
        };
        drop(seen);
        if now.as_deref() == Some(adopted_for.as_str()) {
            return settings.class;
        }
        if first_sight {
            tracing::warn!(
                server = %server,
                tool = %crate::names::for_log(tool),
                "the class adopted for this tool was for another definition: it is treated as never reviewed until `warden tools review` adopts it again"
            );
        }
        server_default
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_adopted_class_applies_only_to_its_definition() {
        let listed =
            json!({ "name": "t", "inputSchema": { "type": "object" }, "annotations": { "readOnlyHint": true } });
        let hash = warden_inspect::canonical::definition_hash(&listed).unwrap();
        let adopted = ToolSection { class: Some(ToolClass::Read), definition: Some(hash), ..Default::default() };
        let classes = AdoptedClasses::default();
        for _ in 0..2 {
            assert_eq!(classes.class("s", &adopted, None, &listed), Some(ToolClass::Read));
        }
        let changed =
            json!({ "name": "t", "inputSchema": { "type": "object" }, "annotations": { "readOnlyHint": false } });
        for _ in 0..2 {
            assert_eq!(classes.class("s", &adopted, None, &changed), None, "another definition");
            assert_eq!(
                classes.class("s", &adopted, Some(ToolClass::Irreversible), &changed),
                Some(ToolClass::Irreversible)
            );
        }
        assert_eq!(classes.class("s", &adopted, None, &listed), Some(ToolClass::Read), "and back");
        let by_hand = ToolSection { class: Some(ToolClass::Write), ..Default::default() };
        assert_eq!(classes.class("s", &by_hand, None, &changed), Some(ToolClass::Write));
    }
}
