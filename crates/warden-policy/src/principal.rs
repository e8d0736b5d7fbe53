//! The principal: the authenticated caller behind a request.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind of caller. Admin rights come only from this class, never from a role or flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrincipalClass {
    /// A person using an MCP client.
    #[default]
    User,
    /// A service account.
    Service,
    /// An operator of the gateway.
    Admin,
}

/// What vouched for a caller. Two callers with the same subject but different authorities are
/// different callers (an API key named like a token's subject is not that subject).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Authority {
    /// The configured local principal (stdio, or HTTP without `[auth]`).
    #[default]
    Local,
    /// A static API key.
    ApiKey,
    /// A bearer token from the configured OAuth issuer.
    OAuth,
}

/// The caller behind a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Principal {
    /// Stable subject identifier (the token's `sub`, the API key's name, or the local principal).
    pub subject: String,
    /// The tenant the caller belongs to, if any.
    pub tenant: Option<String>,
    /// The OAuth client the caller used, if known.
    pub client_id: Option<String>,
    /// Roles and groups.
    pub roles: Vec<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The kind of caller.
    pub class: PrincipalClass,
    /// What vouched for it.
    pub authority: Authority,
}

impl Principal {
    /// A principal with only a subject and a class.
    pub fn new(subject: impl Into<String>, class: PrincipalClass) -> Self {
        Principal {
            subject: subject.into(),
            tenant: None,
            client_id: None,
            roles: vec![],
            scopes: vec![],
            class,
            authority: Authority::Local,
        }
    }

    /// A key naming this caller for maps: equal exactly when [`Principal::same_caller`] holds.
    pub fn identity_key(&self) -> String {
        // Lengths make the encoding unambiguous whatever the fields contain.
        let part = |s: &str| format!("{}:{s}", s.len());
        format!(
            "{:?}|{:?}|{}|{}|{}",
            self.authority,
            self.class,
            part(self.tenant.as_deref().unwrap_or("")),
            part(self.client_id.as_deref().unwrap_or("")),
            part(&self.subject)
        )
    }

    /// Whether `other` is the same caller, for binding sessions and approvals: same subject, tenant,
    /// class and client.
    pub fn same_caller(&self, other: &Principal) -> bool {
        self.subject == other.subject
            && self.tenant == other.tenant
            && self.class == other.class
            && self.client_id == other.client_id
            && self.authority == other.authority
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_caller_compares_identity_not_roles() {
        let a = Principal::new("alice", PrincipalClass::User);
        let mut a2 = a.clone();
        a2.roles.push("extra".into());
        assert!(a.same_caller(&a2));
        let mut other_tenant = a.clone();
        other_tenant.tenant = Some("t2".into());
        assert!(!a.same_caller(&other_tenant));
        assert!(!a.same_caller(&Principal::new("alice", PrincipalClass::Admin)));
        assert!(!a.same_caller(&Principal::new("bob", PrincipalClass::User)));
        let mut by_key = a.clone();
        by_key.authority = Authority::ApiKey;
        assert!(!a.same_caller(&by_key), "an API key named alice is not alice");
        assert_ne!(a.identity_key(), by_key.identity_key());
        assert_eq!(a.identity_key(), a2.identity_key());
        assert_ne!(a.identity_key(), other_tenant.identity_key());
        let mut tricky = Principal::new("x", PrincipalClass::User);
        tricky.tenant = Some("a|b".into());
        let mut other = Principal::new("b|x", PrincipalClass::User);
        other.tenant = Some("a".into());
        assert_ne!(tricky.identity_key(), other.identity_key(), "no field can spill into another");
    }
}
