//! Checks of the credential sections that obtain tokens (`token_exchange`).

use super::servers::{Isolation, ServerSection, TokenExchangeSection};

/// A `token_exchange` section of server `s`, at `at`.
pub(super) fn check_token_exchange(
    x: &TokenExchangeSection,
    s: &ServerSection,
    at: Vec<String>,
) -> Result<(), (Vec<String>, String)> {
    let key = |k: &str| [at.clone(), vec![k.to_owned()]].concat();
    if s.isolation != Isolation::Session {
        return Err((
            at.clone(),
            "token_exchange needs isolation = \"session\": each caller's token must travel only on connections \
             of that caller"
                .into(),
        ));
    }
    if x.client_id.trim().is_empty() {
        return Err((key("client_id"), "must not be empty".into()));
    }
    if x.client_secret_env.is_some() == x.client_secret_file.is_some() {
        return Err((at.clone(), "set exactly one of client_secret_env or client_secret_file".into()));
    }
    for (k, v) in [("resource", &x.resource)] {
        if let Some(v) = v
            && url::Url::parse(v).map(|u| !u.has_host() || u.fragment().is_some()).unwrap_or(true)
        {
            return Err((key(k), format!("{v:?} is not an absolute URL without a fragment")));
        }
    }
    if x.audience.as_deref().is_some_and(|a| a.trim().is_empty()) {
        return Err((key("audience"), "must not be empty".into()));
    }
    super::auth::check_scopes(&x.scopes, key("scopes"))
}
