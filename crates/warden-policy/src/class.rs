//! Tool classes: how much harm a call can do, which decides how closely it is watched.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The class of a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolClass {
    /// Reads only.
    Read,
    /// Changes state.
    Write,
    /// Changes state in a way that cannot be undone.
    Irreversible,
}

impl ToolClass {
    /// The name used in policies and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolClass::Read => "read",
            ToolClass::Write => "write",
            ToolClass::Irreversible => "irreversible",
        }
    }

    /// The class of a tool: the configured one; else, for a server trusted to describe its own
    /// tools, the one its annotations state explicitly; else `write`.
    ///
    /// Annotations are the server's word. An untrusted server could call a destructive tool
    /// read-only, so its annotations are never believed.
    pub fn decide(configured: Option<ToolClass>, server_trusted: bool, annotations: Option<&Value>) -> ToolClass {
        if let Some(c) = configured {
            return c;
        }
        if server_trusted && let Some(a) = annotations {
            let hint = |k: &str| a.get(k).and_then(Value::as_bool);
            if hint("readOnlyHint") == Some(true) {
                return ToolClass::Read;
            }
            if hint("destructiveHint") == Some(true) {
                return ToolClass::Irreversible;
            }
        }
        ToolClass::Write
    }
}

impl std::fmt::Display for ToolClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn configured_class_wins() {
        let ro = json!({ "readOnlyHint": true });
        assert_eq!(ToolClass::decide(Some(ToolClass::Irreversible), true, Some(&ro)), ToolClass::Irreversible);
    }

    #[test]
    fn annotations_count_only_for_trusted_servers() {
        let ro = json!({ "readOnlyHint": true });
        let destructive = json!({ "readOnlyHint": false, "destructiveHint": true });
        assert_eq!(ToolClass::decide(None, true, Some(&ro)), ToolClass::Read);
        assert_eq!(ToolClass::decide(None, true, Some(&destructive)), ToolClass::Irreversible);
        assert_eq!(
            ToolClass::decide(None, false, Some(&ro)),
            ToolClass::Write,
            "an untrusted server's word is not taken"
        );
        assert_eq!(ToolClass::decide(None, true, Some(&json!({}))), ToolClass::Write);
        assert_eq!(ToolClass::decide(None, true, None), ToolClass::Write);
        assert_eq!(
            ToolClass::decide(None, true, Some(&json!({ "readOnlyHint": "yes" }))),
            ToolClass::Write,
            "a hint that is not a boolean is no hint"
        );
    }
}
