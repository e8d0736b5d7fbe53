//! The Cedar policy engine: policies loaded and validated against Warden's schema, and decisions
//! that say which policies made them.
//!
//! Decisions are default deny. A permit that decides an allow and carries `@require_approval`
//! turns it into [`Verdict::RequireApproval`]. A `forbid` that fails to evaluate denies (Cedar
//! alone would skip it, which would fail open).

use crate::query::{Query, build};
use cedar_policy::{
    Authorizer, Decision as CedarDecision, Effect, PolicyId, PolicySet, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::OnceLock;

/// Warden's Cedar schema, as shipped.
pub const SCHEMA_TEXT: &str = include_str!("warden.cedarschema");

/// The annotation that makes a permit require a human's approval.
pub const REQUIRE_APPROVAL: &str = "require_approval";
/// The annotation naming a policy in decisions (else `file#n`).
pub const ID: &str = "id";
/// The annotation whose text is shown to a client refused by the policy.
pub const REASON: &str = "reason";

/// The parsed schema.
pub fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| match Schema::from_cedarschema_str(SCHEMA_TEXT) {
        Ok((s, _)) => s,
        Err(e) => panic!("the shipped Cedar schema does not parse: {e}"),
    })
}

/// What a decision allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Go ahead.
    Allow,
    /// Refused.
    Deny,
    /// Allowed once a human approves.
    RequireApproval,
}

impl Verdict {
    /// The verdict's name (`allow`, `deny`, `require_approval`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::RequireApproval => "require_approval",
        }
    }

    /// Whether the item may be shown (allowed now or after approval).
    pub fn permits(self) -> bool {
        self != Verdict::Deny
    }
}

/// A decision, with what made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// The policies that decided it: the satisfied permits for an allow, the satisfied forbids
    /// (or failing forbids) for a deny; empty for the default deny.
    pub policies: Vec<String>,
    /// `@reason` texts of those policies, to tell the client.
    pub reasons: Vec<String>,
    /// Policies that failed to evaluate, with why.
    pub errors: Vec<String>,
}

impl Decision {
    fn deny(why: String) -> Decision {
        Decision { verdict: Verdict::Deny, policies: vec![], reasons: vec![], errors: vec![why] }
    }

    /// Whether nothing permitted the request (as opposed to a forbid refusing it).
    pub fn is_default_deny(&self) -> bool {
        self.verdict == Verdict::Deny && self.policies.is_empty()
    }
}

/// One policy file's text, named for errors.
#[derive(Debug, Clone)]
pub struct PolicySource {
    /// The file name shown in errors and used in default policy ids.
    pub name: String,
    /// The Cedar text.
    pub text: String,
}

/// A problem in a policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    /// The file.
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)
    }
}

/// Policies that could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PolicyError {
    /// Every problem found.
    pub problems: Vec<PolicyProblem>,
}

#[derive(Debug, Clone)]
struct PolicyMeta {
    effect: Effect,
    require_approval: bool,
    reason: Option<String>,
}

/// A validated policy set, ready to decide.
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    policies: PolicySet,
    meta: HashMap<PolicyId, PolicyMeta>,
    authorizer: Authorizer,
    /// Validation warnings (policies that can never apply, and the like).
    pub warnings: Vec<PolicyProblem>,
}

impl PolicyEngine {
    /// An engine with no policies: every request is denied.
    pub fn deny_all() -> PolicyEngine {
        PolicyEngine {
            policies: PolicySet::new(),
            meta: HashMap::new(),
            authorizer: Authorizer::new(),
            warnings: vec![],
        }
    }

    /// Parses and validates policy files against the schema (strict mode). Any problem in any
    /// file fails the whole load, so a bad file never half-replaces a good set.
    pub fn load(sources: &[PolicySource]) -> Result<PolicyEngine, PolicyError> {
        let mut problems = Vec::new();
        let mut set = PolicySet::new();
        let mut meta = HashMap::new();
        let mut origin: HashMap<PolicyId, usize> = HashMap::new();
        for (index, source) in sources.iter().enumerate() {
            let parsed = match PolicySet::from_str(&source.text) {
                Ok(p) => p,
                Err(e) => {
                    for d in e.iter() {
                        problems.push(problem(source, d));
                    }
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                problems.push(PolicyProblem {
                    file: source.name.clone(),
                    line: 0,
                    column: 0,
                    message: "policy templates (with ?principal or ?resource) are not supported".into(),
                });
                continue;
            }
            let mut policies: Vec<_> = parsed.policies().collect();
            // Ids are assigned in source order (policy0, policy1, ...); keep that order.
            policies.sort_by_key(|p| p.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(0));
            for (n, policy) in policies.into_iter().enumerate() {
                let id = match policy.annotation(ID) {
                    Some(id) => id.to_owned(),
                    None => format!("{}#{}", source.name, n + 1),
                };
                let pid = PolicyId::new(&id);
                if let Some(first) = origin.get(&pid) {
                    let (line, column) = id_location(source, &id, sources[*first].name == source.name);
                    problems.push(PolicyProblem {
                        file: source.name.clone(),
                        line,
                        column,
                        message: format!("policy id {id:?} is already used in {}", sources[*first].name),
                    });
                    continue;
                }
                if let Err(e) = set.add(policy.new_id(pid.clone())) {
                    problems.push(PolicyProblem {
                        file: source.name.clone(),
                        line: 0,
                        column: 0,
                        message: e.to_string(),
                    });
                    continue;
                }
                meta.insert(
                    pid.clone(),
                    PolicyMeta {
                        effect: policy.effect(),
                        require_approval: policy.annotation(REQUIRE_APPROVAL).is_some(),
                        reason: policy.annotation(REASON).map(str::to_owned),
                    },
                );
                origin.insert(pid, index);
            }
        }
        let validation = Validator::new(schema().clone()).validate(&set, ValidationMode::Strict);
        let locate = |id: &PolicyId, d: &dyn Diagnostic| {
            let source = origin.get(id).map(|i| &sources[*i]);
            match source {
                Some(s) => problem(s, d),
                None => PolicyProblem { file: "(policies)".into(), line: 0, column: 0, message: d.to_string() },
            }
        };
        for e in validation.validation_errors() {
            problems.push(locate(e.policy_id(), e));
        }
        let warnings = validation.validation_warnings().map(|w| locate(w.policy_id(), w)).collect();
        if !problems.is_empty() {
            return Err(PolicyError { problems });
        }
        Ok(PolicyEngine { policies: set, meta, authorizer: Authorizer::new(), warnings })
    }

    /// How many policies are loaded.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether no policy is loaded (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// Decides a query.
    pub fn decide(&self, q: &Query<'_>) -> Decision {
        let (request, entities) = match build(q, None) {
            Ok(x) => x,
            Err(why) => return Decision::deny(format!("the request could not be put to the policies: {why}")),
        };
        let response = self.authorizer.is_authorized(&request, &self.policies, &entities);
        let mut errors = Vec::new();
        let mut failed_forbids = Vec::new();
        for e in response.diagnostics().errors() {
            let cedar_policy::AuthorizationError::PolicyEvaluationError(pe) = e;
            let id = pe.policy_id();
            if self.meta.get(id).is_some_and(|m| m.effect == Effect::Forbid) {
                failed_forbids.push(id.to_string());
            }
            errors.push(e.to_string());
        }
        let mut deciding: Vec<&PolicyId> = response.diagnostics().reason().collect();
        deciding.sort_by_key(|id| id.to_string());
        let reasons = |ids: &[&PolicyId]| -> Vec<String> {
            ids.iter().filter_map(|id| self.meta.get(*id).and_then(|m| m.reason.clone())).collect()
        };
        match response.decision() {
            CedarDecision::Allow if !failed_forbids.is_empty() => {
                Decision { verdict: Verdict::Deny, policies: failed_forbids, reasons: vec![], errors }
            }
            CedarDecision::Allow => {
                let approval = deciding.iter().any(|id| self.meta.get(*id).is_some_and(|m| m.require_approval));
                Decision {
                    verdict: if approval { Verdict::RequireApproval } else { Verdict::Allow },
                    reasons: reasons(&deciding),
                    policies: deciding.iter().map(|id| id.to_string()).collect(),
                    errors,
                }
            }
            CedarDecision::Deny => Decision {
                verdict: Verdict::Deny,
                reasons: reasons(&deciding),
                policies: deciding.iter().map(|id| id.to_string()).collect(),
                errors,
            },
        }
    }
}

/// Where an `@id` annotation naming `id` is in a file: its second use when the first is in the
/// same file.
fn id_location(source: &PolicySource, id: &str, same_file: bool) -> (usize, usize) {
    let needle = format!("{id:?}");
    let mut found = source.text.match_indices(&needle).map(|(i, _)| i);
    let at = if same_file { found.nth(1) } else { found.next() };
    at.map(|o| line_col(&source.text, o)).unwrap_or((0, 0))
}

/// A diagnostic located in its file by its first labelled span.
fn problem(source: &PolicySource, d: &dyn Diagnostic) -> PolicyProblem {
    let offset = d.labels().and_then(|mut l| l.next()).map(|l| l.offset());
    let (line, column) = offset.map(|o| line_col(&source.text, o)).unwrap_or((0, 0));
    let mut message = d.to_string();
    if let Some(help) = d.help() {
        message.push_str(&format!(" ({help})"));
    }
    PolicyProblem { file: source.name.clone(), line, column, message }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}
