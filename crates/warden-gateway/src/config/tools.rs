//! `[tools."server/tool"]`: per-tool settings, with `[tools."server/*"]` as defaults for a server.

use super::limits::RateSection;
use super::{QUARANTINE_LEVELS, auth, is_quarantine_level};
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
    /// The definition `class` was adopted for: the `sha256:` hash of the tool's canonical
    /// definition (as `warden pins list` shows it), written by `warden tools review --adopt`.
    /// While the server lists a different definition (its annotations changed, say), `class`
    /// does not apply and the tool is `write` until the class is reviewed again.
    pub definition: Option<String>,
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
            // A hash names one tool's definition: never inherited from a server's `*` entry.
            definition: self.definition.clone(),
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

/// Checks `[tools]` against the configured `servers`; an error names the key.
pub(super) fn validate(
    tools: &BTreeMap<String, ToolSection>,
    servers: &BTreeMap<String, super::ServerSection>,
) -> Result<(), (Vec<String>, String)> {
    for (tool, settings) in tools {
        let here = vec!["tools".to_owned(), tool.clone()];
        let Some((server, name)) = tool.split_once('/') else {
            return Err((here, "tools are named \"server/tool\" (or \"server/*\" for a server's defaults)".into()));
        };
        if name.is_empty() || !servers.contains_key(server) {
            return Err((here, format!("no server named {server:?} is configured")));
        }
        if let Some(r) = &settings.rate {
            r.parse().map_err(|e| ([here.clone(), vec!["rate".to_owned()]].concat(), e))?;
        }
        auth::check_scopes(settings.scopes.iter().flatten(), [here.clone(), vec!["scopes".to_owned()]].concat())?;
        if let Some(kind) =
            settings.pii.iter().flatten().map(|(k, _)| k).find(|k| k.parse::<warden_inspect::PiiKind>().is_err())
        {
            return Err((
                [here.clone(), vec!["pii".to_owned()]].concat(),
                format!("{kind:?} is not email, phone, payment_card, iban, us_ssn or ip_address"),
            ));
        }
        if settings.definition.is_some() && (name == "*" || settings.class.is_none()) {
            return Err((
                [here.clone(), vec!["definition".to_owned()]].concat(),
                "definition binds the class of one tool: set it with class, on a tool's own entry".into(),
            ));
        }
        if let Some(d) = settings.definition.as_deref().filter(|d| !is_definition_hash(d)) {
            return Err((
                [here.clone(), vec!["definition".to_owned()]].concat(),
                format!("{d:?} is not a sha256:<64 hex digits> definition hash (see `warden tools review`)"),
            ));
        }
        if let Some(level) = settings.quarantine_at.as_deref().filter(|l| !is_quarantine_level(l)) {
            return Err((
                [here.clone(), vec!["quarantine_at".to_owned()]].concat(),
                format!("{level:?} is not {QUARANTINE_LEVELS}"),
            ));
        }
    }
    Ok(())
}

/// Whether `d` is `sha256:` and 64 lowercase hex digits.
fn is_definition_hash(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
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

    #[test]
    fn an_adopted_class_names_one_definition() {
        let base = "[servers.s]\ncommand = \"x\"\n\n";
        let hash = format!("sha256:{}", "ab".repeat(32));
        let ok = format!("{base}[tools.\"s/t\"]\nclass = \"read\"\ndefinition = \"{hash}\"\n");
        assert!(super::super::Config::parse(&ok, "w.toml").is_ok());
        for (bad, why) in [
            (format!("{base}[tools.\"s/*\"]\nclass = \"read\"\ndefinition = \"{hash}\"\n"), "one tool"),
            (format!("{base}[tools.\"s/t\"]\ndefinition = \"{hash}\"\n"), "one tool"),
            (format!("{base}[tools.\"s/t\"]\nclass = \"read\"\ndefinition = \"sha256:XY\"\n"), "64 hex"),
        ] {
            let e = super::super::Config::parse(&bad, "w.toml").unwrap_err().to_string();
            assert!(e.contains("definition") && e.contains(why), "{e}");
        }
    }
}
