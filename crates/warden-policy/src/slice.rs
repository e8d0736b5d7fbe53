//! Policy slices: the policies whose scope can match a request, so that a decision evaluates only
//! those. Cedar alone evaluates every policy of a set for every request.
//!
//! A slice depends on the action, the resource's type and parent, the resource's own id and the
//! principal's own id and roles only where some policy scope names them, and the principal's type;
//! requests that agree on these get the same slice, which is cached. Ids no policy names (a
//! resource URI a caller made up, say) do not multiply the cache. Matching mirrors Cedar's scope semantics for the entities
//! Warden builds (principals in their roles, items in their server, no other hierarchy), and any
//! scope form not recognized keeps the policy in, so a slice can only hold too much, never too
//! little.

use crate::query::Placement;
use cedar_policy::{
    ActionConstraint, EntityTypeName, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// Most slices kept; past this the cache starts over.
const MAX_SLICES: usize = 4096;

struct Scoped {
    policy: Policy,
    principal: PrincipalConstraint,
    action: ActionConstraint,
    resource: ResourceConstraint,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    action: EntityUid,
    resource_type: EntityTypeName,
    resource_named: Option<EntityUid>,
    resource_ancestors: Vec<EntityUid>,
    principal_type: EntityTypeName,
    principal_named: Vec<EntityUid>,
}

/// The policies of a set, indexed by scope.
pub(crate) struct Slices {
    scoped: Vec<Scoped>,
    named: HashSet<EntityUid>,
    named_resources: HashSet<EntityUid>,
    cache: RwLock<HashMap<Key, Arc<PolicySet>>>,
}

impl Slices {
    pub(crate) fn new(set: &PolicySet) -> Slices {
        let mut named = HashSet::new();
        let mut named_resources = HashSet::new();
        let scoped: Vec<Scoped> = set
            .policies()
            .map(|p| {
                let principal = p.principal_constraint();
                match &principal {
                    PrincipalConstraint::In(u) | PrincipalConstraint::Eq(u) | PrincipalConstraint::IsIn(_, u) => {
                        named.insert(u.clone());
                    }
                    PrincipalConstraint::Any | PrincipalConstraint::Is(_) => {}
                }
                let resource = p.resource_constraint();
                match &resource {
                    ResourceConstraint::In(u) | ResourceConstraint::Eq(u) | ResourceConstraint::IsIn(_, u) => {
                        named_resources.insert(u.clone());
                    }
                    ResourceConstraint::Any | ResourceConstraint::Is(_) => {}
                }
                Scoped { policy: p.clone(), principal, action: p.action_constraint(), resource }
            })
            .collect();
        Slices { scoped, named, named_resources, cache: RwLock::new(HashMap::new()) }
    }

    /// Every policy.
    #[cfg(test)]
    pub(crate) fn all(&self) -> PolicySet {
        PolicySet::from_policies(self.scoped.iter().map(|s| s.policy.clone())).unwrap_or_default()
    }

    /// The policies that can apply to a request placed at `at`.
    pub(crate) fn for_request(&self, at: &Placement) -> Arc<PolicySet> {
        let principal_named: Vec<EntityUid> = std::iter::once(&at.principal)
            .chain(&at.principal_ancestors)
            .filter(|u| self.named.contains(*u))
            .cloned()
            .collect();
        let key = Key {
            action: at.action.clone(),
            resource_type: at.resource.type_name().clone(),
            resource_named: self.named_resources.contains(&at.resource).then(|| at.resource.clone()),
            resource_ancestors: at.resource_ancestors.clone(),
            principal_type: at.principal.type_name().clone(),
            principal_named,
        };
        if let Some(s) = self.cache.read().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return s.clone();
        }
        let policies = self
            .scoped
            .iter()
            .filter(|s| {
                principal_matches(&s.principal, at)
                    && action_matches(&s.action, at)
                    && resource_matches(&s.resource, at)
            })
            .map(|s| s.policy.clone());
        // Policies come from a valid set, so their ids are unique and adding cannot fail.
        let slice = Arc::new(PolicySet::from_policies(policies).unwrap_or_default());
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_SLICES {
            cache.clear();
        }
        cache.insert(key, slice.clone());
        slice
    }
}

fn principal_matches(c: &PrincipalConstraint, at: &Placement) -> bool {
    let is_in = |u: &EntityUid| *u == at.principal || at.principal_ancestors.contains(u);
    match c {
        PrincipalConstraint::Any => true,
        PrincipalConstraint::Eq(u) => *u == at.principal,
        PrincipalConstraint::In(u) => is_in(u),
        PrincipalConstraint::Is(t) => at.principal.type_name() == t,
        PrincipalConstraint::IsIn(t, u) => at.principal.type_name() == t && is_in(u),
    }
}

fn action_matches(c: &ActionConstraint, at: &Placement) -> bool {
    // Warden's schema has no action groups: `in [A, B]` is membership.
    match c {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(u) => *u == at.action,
        ActionConstraint::In(us) => us.contains(&at.action),
    }
}

fn resource_matches(c: &ResourceConstraint, at: &Placement) -> bool {
    let is_in = |u: &EntityUid| *u == at.resource || at.resource_ancestors.contains(u);
    match c {
        ResourceConstraint::Any => true,
        ResourceConstraint::Eq(u) => *u == at.resource,
        ResourceConstraint::In(u) => is_in(u),
        ResourceConstraint::Is(t) => at.resource.type_name() == t,
        ResourceConstraint::IsIn(t, u) => at.resource.type_name() == t && is_in(u),
    }
}
