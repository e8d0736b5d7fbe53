//! The rule file operators write (`version: v1`, `rules:`), compiled to Cedar.
//!
//! ```yaml
//! version: v1
//! rules:
//!   - id: require-approval-for-write
//!     match:
//!       labels:
//!         mcp.action: write
//!     decision: REQUIRE_APPROVAL
//!     constraints:
//!       max_runtime_sec: 60
//!       max_retries: 1
//! ```
//!
//! Each rule becomes one Cedar policy with the rule's id: `ALLOW` a `permit`, `DENY` a `forbid`,
//! `REQUIRE_APPROVAL` a `permit` annotated `@require_approval`. What a rule matches:
//!
//! - `labels`: `mcp.server` (a name, a list, or `"*"`), `mcp.tool` (a tool's name on its server),
//!   `mcp.action` (`read`, `write` or `irreversible`: the tool's class);
//! - `mcp.deny_servers_not_in` / `mcp.servers_not_in`: the server is not one of these;
//! - `auth.require_scope_match: true`: the caller's token lacks a scope the tool requires
//!   (`scopes` in its `[tools]` settings).
//!
//! All of a rule's conditions must hold for it to apply. A rule naming a tool's class, name or
//! scopes applies to tool calls only; otherwise to tool calls, prompts and resource reads.
//! `constraints` become annotations the gateway enforces on the calls the rule allows:
//! `max_runtime_sec` (the call is cancelled after that long) and `max_retries` (after a failure,
//! the same call may be made that many more times).

use serde::Deserialize;

/// A rule file's problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesFileError {
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What is wrong, naming the key.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    rules: Vec<RuleDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(rename = "match", default)]
    matches: Match,
    decision: Decision,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    constraints: Constraints,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Match {
    #[serde(default)]
    labels: Labels,
    #[serde(default)]
    mcp: McpMatch,
    #[serde(default)]
    auth: AuthMatch,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Labels {
    #[serde(rename = "mcp.server", default)]
    server: Option<OneOrMany>,
    #[serde(rename = "mcp.tool", default)]
    tool: Option<OneOrMany>,
    #[serde(rename = "mcp.action", default)]
    action: Option<OneOrMany>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct McpMatch {
    #[serde(default)]
    deny_servers_not_in: Option<Vec<String>>,
    #[serde(default)]
    servers_not_in: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuthMatch {
    #[serde(default)]
    require_scope_match: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Constraints {
    #[serde(default)]
    max_runtime_sec: Option<u64>,
    #[serde(default)]
    max_retries: Option<u32>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
enum Decision {
    #[serde(rename = "ALLOW")]
    Allow,
    #[serde(rename = "DENY")]
    Deny,
    #[serde(rename = "REQUIRE_APPROVAL")]
    RequireApproval,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Whether a file name is a rule file (`.yaml` or `.yml`) rather than Cedar.
pub fn is_rules_file(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml")
}

/// Compiles a rule file to Cedar policy text; `name` is the file's name, put in a comment.
pub fn compile(text: &str, name: &str) -> Result<String, RulesFileError> {
    let file: File = serde_norway::from_str(text).map_err(|e| {
        let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
        RulesFileError { line, column, message: e.to_string() }
    })?;
    let at_rule = |i: usize, message: String| RulesFileError { line: rule_line(text, i), column: 0, message };
    if file.version != "v1" {
        return Err(RulesFileError {
            line: 1,
            column: 0,
            message: format!("version: {:?} is not supported (v1 is)", file.version),
        });
    }
    let mut out = format!("// Compiled by Warden from {name}: each policy is one rule, with the rule's id.\n");
    let mut ids = std::collections::HashSet::new();
    for (i, rule) in file.rules.iter().enumerate() {
        let policy = compile_rule(rule).map_err(|m| at_rule(i, format!("rules[{i}] ({}): {m}", rule.id)))?;
        if !ids.insert(rule.id.clone()) {
            return Err(at_rule(i, format!("rules[{i}]: the id {:?} is used twice", rule.id)));
        }
        out.push('\n');
        out.push_str(&policy);
    }
    Ok(out)
}

fn compile_rule(rule: &RuleDef) -> Result<String, String> {
    if rule.id.is_empty() || !rule.id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c)) {
        return Err("id: use letters, digits and - _ . : /".into());
    }
    let mut conditions: Vec<String> = vec![];
    let mut tools_only = false;
    let labels = &rule.matches.labels;
    if let Some(servers) = &labels.server {
        let names: Vec<&str> = servers.values().into_iter().filter(|s| *s != "*").collect();
        if !names.is_empty() {
            conditions.push(format!("{}.contains(resource.server)", set(&names)?));
        }
    }
    if let Some(tools) = &labels.tool {
        let names: Vec<&str> = tools.values().into_iter().filter(|s| *s != "*").collect();
        tools_only = true;
        if !names.is_empty() {
            conditions.push(format!("{}.contains(resource.name)", set(&names)?));
        }
    }
    if let Some(actions) = &labels.action {
        let classes: Vec<&str> = actions.values().into_iter().filter(|s| *s != "*").collect();
        tools_only = true;
        if let Some(bad) = classes.iter().find(|c| !["read", "write", "irreversible"].contains(c)) {
            return Err(format!("match.labels.mcp.action: {bad:?} is not read, write or irreversible"));
        }
        if !classes.is_empty() {
            conditions.push(format!("{}.contains(resource.class)", set(&classes)?));
        }
    }
    let m = &rule.matches.mcp;
    for list in [&m.deny_servers_not_in, &m.servers_not_in].into_iter().flatten() {
        let names: Vec<&str> = list.iter().map(String::as_str).collect();
        conditions.push(format!("!{}.contains(resource.server)", set(&names)?));
    }
    match rule.matches.auth.require_scope_match {
        Some(true) => {
            tools_only = true;
            conditions.push("!context.scopes.containsAll(resource.scopes)".into());
        }
        // Read literally it would match every call: say what was meant instead.
        Some(false) => return Err("match.auth.require_scope_match: false matches every call; leave it out".into()),
        None => {}
    }
    let c = &rule.constraints;
    if rule.decision == Decision::Deny && (c.max_runtime_sec.is_some() || c.max_retries.is_some()) {
        return Err("constraints apply to calls a rule allows, not to a DENY rule".into());
    }
    if c.max_runtime_sec == Some(0) {
        return Err("constraints.max_runtime_sec: must be at least 1".into());
    }
    let mut annotations = vec![format!("@id({})", literal(&rule.id))];
    if let Some(d) = &rule.description {
        annotations.push(format!("@description({})", literal(d)));
    }
    match (rule.decision, &rule.reason) {
        (_, Some(r)) => annotations.push(format!("@reason({})", literal(r))),
        (Decision::Deny, None) => {
            annotations.push(format!("@reason({})", literal(&format!("refused by rule {}", rule.id))))
        }
        _ => {}
    }
    if rule.decision == Decision::RequireApproval {
        annotations.push("@require_approval(\"\")".into());
    }
    if let Some(s) = c.max_runtime_sec {
        annotations.push(format!("@max_runtime_sec(\"{s}\")"));
    }
    if let Some(n) = c.max_retries {
        annotations.push(format!("@max_retries(\"{n}\")"));
    }
    let effect = if rule.decision == Decision::Deny { "forbid" } else { "permit" };
    let scope = if tools_only {
        "principal,\n    action == Action::\"call_tool\",\n    resource".to_owned()
    } else {
        "principal,\n    action in [Action::\"call_tool\", Action::\"get_prompt\", Action::\"read_resource\"],\n    resource"
            .to_owned()
    };
    let when = if conditions.is_empty() {
        String::new()
    } else {
        format!("\nwhen {{\n    {}\n}}", conditions.join(" &&\n    "))
    };
    Ok(format!("{}\n{effect} (\n    {scope}\n){when};\n", annotations.join("\n")))
}

/// A Cedar string literal.
fn literal(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn set(values: &[&str]) -> Result<String, String> {
    if values.is_empty() {
        return Err("an empty list matches nothing".into());
    }
    Ok(format!("[{}]", values.iter().map(|v| literal(v)).collect::<Vec<_>>().join(", ")))
}

/// The line a rule starts on (its `- ` item under `rules:`), for errors found after parsing.
fn rule_line(text: &str, index: usize) -> usize {
    let mut seen = 0;
    let mut in_rules = false;
    let mut indent = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if line.starts_with("rules:") {
            in_rules = true;
            continue;
        }
        if !in_rules || !trimmed.starts_with("- ") {
            continue;
        }
        let here = line.len() - trimmed.len();
        if *indent.get_or_insert(here) != here {
            continue;
        }
        if seen == index {
            return n + 1;
        }
        seen += 1;
    }
    0
}

/// The constraints a policy's annotations set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallConstraints {
    /// The call is cancelled after this long.
    pub max_runtime: Option<std::time::Duration>,
    /// After a failure, the same call may be made this many more times.
    pub max_retries: Option<u32>,
}

impl CallConstraints {
    /// Reads `@max_runtime_sec` and `@max_retries`; a value that is not a number is ignored
    /// (validation reports it).
    pub fn from_annotations(runtime: Option<&str>, retries: Option<&str>) -> CallConstraints {
        CallConstraints {
            max_runtime: runtime
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|s| *s > 0)
                .map(std::time::Duration::from_secs),
            max_retries: retries.and_then(|s| s.parse().ok()),
        }
    }

    /// The stricter of two.
    pub fn tighten(self, other: CallConstraints) -> CallConstraints {
        fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(x), Some(y)) => Some(std::cmp::min(x, y)),
                (x, y) => x.or(y),
            }
        }
        CallConstraints {
            max_runtime: min(self.max_runtime, other.max_runtime),
            max_retries: min(self.max_retries, other.max_retries),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const THREAT_MODEL: &str = include_str!("../../../examples/policies/threat-model.yaml");

    #[test]
    fn the_threat_models_file_compiles_rule_by_rule() {
        let cedar = compile(THREAT_MODEL, "threat-model.yaml").unwrap();
        assert!(
            cedar.contains(
                "@id(\"deny-unregistered-server\")\n@reason(\"refused by rule deny-unregistered-server\")\nforbid ("
            ),
            "{cedar}"
        );
        assert!(
            cedar.contains("![\"github\", \"jira\", \"snowflake\", \"slack\"].contains(resource.server)"),
            "{cedar}"
        );
        assert!(
            cedar.contains("@require_approval(\"\")\n@max_runtime_sec(\"60\")\n@max_retries(\"1\")\npermit ("),
            "{cedar}"
        );
        assert!(cedar.contains("[\"write\"].contains(resource.class)"), "{cedar}");
        assert!(cedar.contains("!context.scopes.containsAll(resource.scopes)"), "{cedar}");
    }

    #[test]
    fn mistakes_name_line_and_key() {
        let e = compile("version: v1\nrules:\n  - id: a\n    decision: DENY\n    match:\n      lables: {}\n", "f.yaml")
            .unwrap_err();
        assert_eq!(e.line, 6, "{e:?}");
        assert!(e.message.contains("lables"), "{e:?}");
        let e = compile("version: v1\nrules:\n  - id: a\n    decision: MAYBE\n", "f.yaml").unwrap_err();
        assert!(e.message.contains("MAYBE") || e.message.contains("decision"), "{e:?}");
        let e = compile("version: v2\nrules: []\n", "f.yaml").unwrap_err();
        assert!(e.message.contains("v2"), "{e:?}");
        let e = compile(
            "version: v1\nrules:\n  - id: a\n    decision: ALLOW\n  - id: b\n    decision: DENY\n    constraints:\n      max_retries: 1\n",
            "f.yaml",
        )
        .unwrap_err();
        assert_eq!(e.line, 5, "{e:?}");
        let e = compile("version: v1\nrules:\n  - id: a\n    decision: ALLOW\n    match:\n      labels:\n        mcp.action: delete\n", "f.yaml").unwrap_err();
        assert!(e.message.contains("delete"), "{e:?}");
        let e = compile("version: v1\nrules:\n  - id: a\n    decision: DENY\n    match:\n      auth:\n        require_scope_match: false\n", "f.yaml").unwrap_err();
        assert!(e.message.contains("require_scope_match"), "{e:?}");
        let e = compile("version: v1\nrules:\n  - id: \"a\\\"b\"\n    decision: ALLOW\n", "f.yaml").unwrap_err();
        assert!(e.message.contains("id"), "{e:?}");
    }

    #[test]
    fn values_cannot_break_out_of_their_strings() {
        let cedar = compile(
            "version: v1\nrules:\n  - id: a\n    decision: ALLOW\n    match:\n      labels:\n        mcp.server: 'x\") || true || (\"'\n",
            "f.yaml",
        )
        .unwrap();
        assert!(cedar.contains("[\"x\\\") || true || (\\\"\"].contains(resource.server)"), "{cedar}");
    }
}
