//! `[tools."server/tool"]`: per-tool settings, with `[tools."server/*"]` as defaults for a server.

use super::limits::RateSection;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
pub use warden_policy::ToolClass;

/// `[tools."server/tool"]` or `[tools."server/*"]`. A setting of the named tool overrides the
/// same setting of its server's `*` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolSection {
    /// The tool's class. Unset: the server's annotations if the server is `trusted`, else `write`.
    pub class: Option<ToolClass>,
    /// Reachable only by the admin principal class: never listed or callable for anyone else.
    pub admin: Option<bool>,
    /// OAuth scopes a token needs to call the tool; without them the call gets 403
    /// `insufficient_scope` naming them.
    pub scopes: Option<Vec<String>>,
    /// Arguments holding file paths (strings or arrays of strings): normalized and checked
    /// against the server's `path_roots` for policies (`context.paths`, `context.paths_confined`).
    pub path_arguments: Option<Vec<String>>,
    /// Arguments holding URLs: resolved and checked for public https addresses for policies
    /// (`context.urls`, `context.urls_public`).
    pub url_arguments: Option<Vec<String>>,
    /// This tool's own rate per principal, instead of `limits.per_tool`.
    pub rate: Option<RateSection>,
    /// Calls a principal may make to this tool per UTC day.
    pub daily_calls: Option<u64>,
    /// A JSON Schema the tool's `structuredContent` must match, narrower than what the tool
    /// declares: fields it does not declare are removed (or refused, see `extra_fields`).
    pub response_schema: Option<serde_json::Value>,
    /// What happens to result fields the `response_schema` does not declare.
    pub extra_fields: Option<ExtraFields>,
    /// Longest text (in bytes) of any one string in the tool's result; longer text is cut
    /// with a marker saying how much was removed. Default 1 MiB.
    pub max_text_bytes: Option<u64>,
    /// Largest whole result (in bytes of JSON, after cutting texts); a larger one is refused.
    /// Default 4 MiB.
    pub max_result_bytes: Option<u64>,
    /// Personal data in the tool's results, by kind (`email`, `phone`, `payment_card`, `iban`,
    /// `us_ssn`, `ip_address`): `allow` (the default), `redact` or `refuse`.
    pub pii: Option<BTreeMap<String, PiiAction>>,
    /// Quarantine this tool's results whose instructions aimed at the model reach this
    /// severity (`low`, `medium`, `high`, `critical` or `off`), instead of `output.quarantine_at`.
    pub quarantine_at: Option<String>,
    /// Whether this tool's results are trusted content (reading them does not taint the
    /// context), instead of the server's `trusted_content`.
    pub trusted_content: Option<bool>,
    /// How a human approves a call of this tool when one is needed: `in_band` (asked in the
    /// client, where it can) or `out_of_band` (an operator, with `warden approvals`). Default:
    /// `out_of_band` for the classes in `approvals.out_of_band_classes`, else `in_band`.
    pub approval: Option<super::ApprovalFlow>,
    /// What happens to a call whose arguments carry a credential-shaped value (a token, a key,
    /// a password, as the secret scanner finds in results): `approve` (the default) holds the
    /// call for a human's approval (a prompt, resource read or completion, which cannot be
    /// approved, is refused), `refuse` refuses it, `allow` lets it through. Either way the audit
    /// row records what was found and where, never the value.
    pub secrets_in_arguments: Option<ArgumentSecrets>,
}

/// What happens to a call whose arguments carry a credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArgumentSecrets {
    /// Held for a human's approval.
    #[default]
    Approve,
    /// Refused.
    Refuse,
    /// Let through (and recorded).
    Allow,
}

/// What happens to personal data of one kind in a result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PiiAction {
    /// Passed on.
    #[default]
    Allow,
    /// Replaced by `[REDACTED:<kind>]`.
    Redact,
    /// The whole result is refused.
    Refuse,
}

/// Result fields a configured response schema does not declare.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExtraFields {
    /// Removed before the client sees the result.
    #[default]
    Strip,
    /// The whole result is refused.
    Refuse,
}

impl ToolSection {
    /// `self` with unset settings taken from `defaults`.
    pub fn over(&self, defaults: &ToolSection) -> ToolSection {
        ToolSection {
            class: self.class.or(defaults.class),
            admin: self.admin.or(defaults.admin),
            scopes: self.scopes.clone().or_else(|| defaults.scopes.clone()),
            path_arguments: self.path_arguments.clone().or_else(|| defaults.path_arguments.clone()),
            url_arguments: self.url_arguments.clone().or_else(|| defaults.url_arguments.clone()),
            rate: self.rate.clone().or_else(|| defaults.rate.clone()),
            daily_calls: self.daily_calls.or(defaults.daily_calls),
            response_schema: self.response_schema.clone().or_else(|| defaults.response_schema.clone()),
            extra_fields: self.extra_fields.or(defaults.extra_fields),
            max_text_bytes: self.max_text_bytes.or(defaults.max_text_bytes),
            max_result_bytes: self.max_result_bytes.or(defaults.max_result_bytes),
            pii: self.pii.clone().or_else(|| defaults.pii.clone()),
            quarantine_at: self.quarantine_at.clone().or_else(|| defaults.quarantine_at.clone()),
            trusted_content: self.trusted_content.or(defaults.trusted_content),
            approval: self.approval.or(defaults.approval),
            secrets_in_arguments: self.secrets_in_arguments.or(defaults.secrets_in_arguments),
        }
    }
}

/// The settings of one tool, its own over its server's `*` entry.
pub fn tool_settings(tools: &BTreeMap<String, ToolSection>, server: &str, tool: &str) -> ToolSection {
    let own = tools.get(&format!("{server}/{tool}"));
    let defaults = tools.get(&format!("{server}/*"));
    match (own, defaults) {
        (Some(o), Some(d)) => o.over(d),
        (Some(o), None) => o.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => ToolSection::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_overrides_its_server_defaults() {
        let mut tools = BTreeMap::new();
        tools.insert(
            "files/*".to_owned(),
            ToolSection {
                path_arguments: Some(vec!["path".into()]),
                class: Some(ToolClass::Read),
                ..Default::default()
            },
        );
        tools
            .insert("files/write_file".to_owned(), ToolSection { class: Some(ToolClass::Write), ..Default::default() });
        let w = tool_settings(&tools, "files", "write_file");
        assert_eq!(w.class, Some(ToolClass::Write));
        assert_eq!(w.path_arguments, Some(vec!["path".to_owned()]));
        assert_eq!(tool_settings(&tools, "files", "read_file").class, Some(ToolClass::Read));
        assert_eq!(tool_settings(&tools, "other", "x").class, None);
    }
}
