//! The Cedar policy engine: policies loaded and validated against Warden's schema, and decisions
//! that say which policies made them.
//!
//! Decisions are default deny. A permit that decides an allow and carries `@require_approval`
//! turns it into [`Verdict::RequireApproval`]. A `forbid` that fails to evaluate denies (Cedar
//! alone would skip it, which would fail open).

use crate::query::{BaseKey, ContextKey, Item, Placement, Query, arguments, base, context, place, request};
use crate::slice::Slices;
use cedar_policy::{
    Authorizer, Decision as CedarDecision, Effect, PolicyId, PolicySet, Schema, ValidationMode, Validator,
};
use miette::Diagnostic;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{OnceLock, RwLock};

/// Warden's Cedar schema, as shipped.
pub const SCHEMA_TEXT: &str = include_str!("warden.cedarschema");

/// Most cached entity sets or contexts; past this a cache starts over.
const MAX_CACHED: usize = 4096;

/// The annotation that makes a permit require a human's approval.
pub const REQUIRE_APPROVAL: &str = "require_approval";
/// The annotation naming a policy in decisions (else `file#n`).
pub const ID: &str = "id";
/// The annotation whose text is shown to a client refused by the policy.
pub const REASON: &str = "reason";
/// The annotation limiting how long a call the policy allows may run, in seconds.
pub const MAX_RUNTIME_SEC: &str = "max_runtime_sec";
/// The annotation limiting how many more times a call the policy allows may be made after failing.
pub const MAX_RETRIES: &str = "max_retries";

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
    /// What the deciding permits of an allow limit (`@max_runtime_sec`, `@max_retries`): the
    /// strictest of them.
    pub constraints: crate::rules_file::CallConstraints,
}

impl Decision {
    fn deny(why: String) -> Decision {
        Decision {
            verdict: Verdict::Deny,
            policies: vec![],
            reasons: vec![],
            errors: vec![why],
            constraints: Default::default(),
        }
    }

    /// A deny that no policy made: what is refused before any policy is asked.
    pub fn default_deny() -> Decision {
        Decision {
            verdict: Verdict::Deny,
            policies: vec![],
            reasons: vec![],
            errors: vec![],
            constraints: Default::default(),
        }
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
    constraints: crate::rules_file::CallConstraints,
}

/// A validated policy set, ready to decide.
pub struct PolicyEngine {
    slices: Slices,
    bases: RwLock<HashMap<BaseKey, cedar_policy::Entities>>,
    contexts: RwLock<HashMap<ContextKey, cedar_policy::Context>>,
    meta: HashMap<PolicyId, PolicyMeta>,
    authorizer: Authorizer,
    /// Validation warnings (policies that can never apply, and the like).
    pub warnings: Vec<PolicyProblem>,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine").field("policies", &self.meta.len()).finish()
    }
}

impl PolicyEngine {
    /// An engine with no policies: every request is denied.
    pub fn deny_all() -> PolicyEngine {
        PolicyEngine {
            slices: Slices::new(&PolicySet::new()),
            bases: Default::default(),
            contexts: Default::default(),
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
                        constraints: crate::rules_file::CallConstraints::from_annotations(
                            policy.annotation(MAX_RUNTIME_SEC),
                            policy.annotation(MAX_RETRIES),
                        ),
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
        Ok(PolicyEngine {
            slices: Slices::new(&set),
            bases: Default::default(),
            contexts: Default::default(),
            meta,
            authorizer: Authorizer::new(),
            warnings,
        })
    }

    /// How many policies are loaded.
    pub fn len(&self) -> usize {
        self.meta.len()
    }

    /// Whether no policy is loaded (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// The request and its entities. The principal's and the item's entities, and contexts, are
    /// built once and reused by every request that shares them (a list shares one context, and
    /// calls share one within a second).
    fn build(&self, q: &Query<'_>, at: &Placement) -> Result<(cedar_policy::Request, cedar_policy::Entities), String> {
        let args = arguments(q)?;
        // What a caller chooses freely (resource URIs, path and URL arguments) is never a cache
        // key: it would let one caller fill the caches.
        let has_args = args.is_some();
        let context = if q.call.paths.is_empty() && q.call.urls.is_empty() {
            cached(&self.contexts, ContextKey::of(q, has_args), || context(q, has_args))?
        } else {
            context(q, has_args)?
        };
        let base = match q.item {
            Item::Resource { .. } => base(q, None)?,
            _ => cached(&self.bases, BaseKey::of(q), || base(q, None))?,
        };
        let entities = match args {
            Some(a) => base.add_entities([a], None).map_err(|e| e.to_string())?,
            None => base,
        };
        Ok((request(at, context, None)?, entities))
    }

    /// Decides a query.
    pub fn decide(&self, q: &Query<'_>) -> Decision {
        let at = place(q);
        let slice = self.slices.for_request(&at);
        self.decide_with(q, &at, &slice)
    }

    /// Decides a query against every policy, not its slice: what slicing must never change.
    #[cfg(test)]
    fn decide_unsliced(&self, q: &Query<'_>) -> Decision {
        self.decide_with(q, &place(q), &self.slices.all())
    }

    fn decide_with(&self, q: &Query<'_>, at: &Placement, policies: &PolicySet) -> Decision {
        let (request, entities) = match self.build(q, at) {
            Ok(x) => x,
            Err(why) => return Decision::deny(format!("the request could not be put to the policies: {why}")),
        };
        let response = self.authorizer.is_authorized(&request, policies, &entities);
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
            CedarDecision::Allow if !failed_forbids.is_empty() => Decision {
                verdict: Verdict::Deny,
                policies: failed_forbids,
                reasons: vec![],
                errors,
                constraints: Default::default(),
            },
            CedarDecision::Allow => {
                let approval = deciding.iter().any(|id| self.meta.get(*id).is_some_and(|m| m.require_approval));
                let constraints = deciding
                    .iter()
                    .filter_map(|id| self.meta.get(*id))
                    .fold(Default::default(), |c: crate::rules_file::CallConstraints, m| c.tighten(m.constraints));
                Decision {
                    verdict: if approval { Verdict::RequireApproval } else { Verdict::Allow },
                    reasons: reasons(&deciding),
                    policies: deciding.iter().map(|id| id.to_string()).collect(),
                    errors,
                    constraints,
                }
            }
            CedarDecision::Deny => Decision {
                verdict: Verdict::Deny,
                reasons: reasons(&deciding),
                policies: deciding.iter().map(|id| id.to_string()).collect(),
                errors,
                constraints: Default::default(),
            },
        }
    }
}

/// The value for `key`, made by `make` on first use. The cache starts over when full.
fn cached<K: std::hash::Hash + Eq, V: Clone>(
    cache: &RwLock<HashMap<K, V>>,
    key: K,
    make: impl FnOnce() -> Result<V, String>,
) -> Result<V, String> {
    if let Some(v) = cache.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(v.clone());
    }
    let v = make()?;
    let mut c = cache.write().unwrap_or_else(|p| p.into_inner());
    if c.len() >= MAX_CACHED {
        c.clear();
    }
    c.insert(key, v.clone());
    Ok(v)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Action, CallFacts, Item, ServerFacts, ToolFacts};
    use crate::{Principal, PrincipalClass, ToolClass};

    /// A small deterministic generator, so a failure can be replayed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[(self.next() % items.len() as u64) as usize]
        }
    }

    fn random_policy(r: &mut Rng, n: usize) -> String {
        let i = r.next() % 3;
        let principal = r
            .pick(&[
                "principal".to_owned(),
                format!("principal == User::\"u{i}\""),
                format!("principal in Role::\"r{i}\""),
                "principal is Service".to_owned(),
                format!("principal is Admin in Role::\"r{i}\""),
                format!("principal in User::\"u{i}\""),
                format!("principal == Service::\"u{i}\""),
            ])
            .clone();
        let action = *r.pick(&[
            "action",
            "action == Action::\"call_tool\"",
            "action in [Action::\"call_tool\", Action::\"get_prompt\"]",
            "action == Action::\"read_resource\"",
            "action in [Action::\"sample\", Action::\"elicit\", Action::\"list_roots\"]",
        ]);
        let resource = r
            .pick(&[
                "resource".to_owned(),
                format!("resource in Server::\"s{i}\""),
                format!("resource == Tool::\"s{i}/t{i}\""),
                "resource is Tool".to_owned(),
                format!("resource is Tool in Server::\"s{i}\""),
                format!("resource == Server::\"s{i}\""),
                format!("resource is Resource in Server::\"s{i}\""),
                format!("resource == Prompt::\"s{i}/p{i}\""),
                format!("resource in Tool::\"s{i}/t0\""),
                "resource == Resource::\"file:///a\"".to_owned(),
                "resource in Resource::\"file:///b\"".to_owned(),
            ])
            .clone();
        let effect = if r.next().is_multiple_of(3) { "forbid" } else { "permit" };
        let approval = if r.next().is_multiple_of(4) { "@require_approval " } else { "" };
        let condition = *r.pick(&["true", "context.listing", "!context.listing", "context.call_depth < 2"]);
        format!("@id(\"p{n}\") {approval}{effect} ({principal}, {action}, {resource}) when {{ {condition} }};")
    }

    #[test]
    fn slicing_never_changes_a_decision() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        let mut kept = Vec::new();
        for n in 0..400 {
            let text = random_policy(&mut r, n);
            // Keep what validates on its own (some scope combinations can never apply).
            if PolicyEngine::load(&[PolicySource { name: "one".into(), text: text.clone() }]).is_ok() {
                kept.push(text);
            }
        }
        assert!(kept.len() > 150, "enough policies survive validation: {}", kept.len());
        let engine = PolicyEngine::load(&[PolicySource { name: "random".into(), text: kept.join("\n") }]).unwrap();
        let classes = [PrincipalClass::User, PrincipalClass::Service, PrincipalClass::Admin];
        let mut decided = std::collections::HashMap::new();
        for _ in 0..3000 {
            let mut p = Principal::new(format!("u{}", r.next() % 3), *r.pick(&classes));
            p.roles = (0..3).filter(|_| r.next().is_multiple_of(2)).map(|i| format!("r{i}")).collect();
            let server = ServerFacts { name: format!("s{}", r.next() % 3), trusted: false };
            let tool = ToolFacts {
                name: format!("t{}", r.next() % 3),
                class: ToolClass::Write,
                admin: false,
                annotations: None,
                scopes: vec![],
            };
            let prompt = format!("p{}", r.next() % 3);
            let (action, item) = match r.next() % 6 {
                0 => (Action::CallTool, Item::Tool(&tool)),
                1 => (Action::GetPrompt, Item::Prompt(&prompt)),
                2 => {
                    let uri = *r.pick(&["file:///a", "file:///b", "file:///x", "file:///y"]);
                    (Action::ReadResource, Item::Resource { uri, template: r.next().is_multiple_of(2) })
                }
                3 => (Action::Sample, Item::Server),
                4 => (Action::Elicit, Item::Server),
                _ => (Action::ListRoots, Item::Server),
            };
            let call = CallFacts {
                listing: r.next().is_multiple_of(2),
                call_depth: (r.next() % 3) as u32,
                era: "legacy",
                paths_confined: true,
                urls_public: true,
                ..Default::default()
            };
            let q = Query { principal: &p, action, server: &server, item, call: &call };
            let sliced = engine.decide(&q);
            let whole = engine.decide_unsliced(&q);
            assert_eq!(sliced, whole, "{q:?}");
            *decided.entry(sliced.verdict).or_insert(0) += 1;
        }
        assert!(decided.len() == 3, "every verdict was exercised: {decided:?}");
    }
}
