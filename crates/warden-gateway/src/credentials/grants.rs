//! Callers' grants to servers that require their own authorization (`credential = { oauth }`):
//! using a stored grant, refreshing it, asking for one through a consent link, and the steps of
//! that link (see [`super::oauth`] for the protocol side).

use super::endpoint::Granted;
use super::oauth::{FlowRefused, OAuthClient};
use super::{Credentials, Issued, Key, lock};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use warden_policy::Principal;
use warden_protocol::{RpcError, error};

/// A grant's tokens, as sealed in the store.
fn sealed_set(granted: &Granted) -> Value {
    let expires_at = Utc::now().timestamp().saturating_add(granted.lifetime.as_secs() as i64);
    serde_json::json!({
        "access_token": granted.token, "refresh_token": granted.refresh,
        "expires_at": expires_at, "scope": granted.scope,
    })
}

impl Credentials {
    /// The token `principal` granted for `server`: held, stored, or refreshed; without one, the
    /// link to grant it (a URL elicitation).
    pub(super) async fn granted_token(
        &self,
        client: &OAuthClient,
        principal: &Principal,
        server: &str,
    ) -> Result<Issued, RpcError> {
        let key = Key { server: server.to_owned(), principal: principal.identity_key(), scopes: vec![] };
        if let Some(held) = self.held(&key) {
            return Ok(held);
        }
        let failed = |why: &str| {
            RpcError::new(
                error::UPSTREAM_CREDENTIAL,
                format!("Warden could not use your authorization of server '{server}': {why}"),
            )
        };
        let (Some(store), Some(vault)) = (self.store.get(), &self.vault) else {
            return Err(failed("the gateway keeps no grants (no database is attached)"));
        };
        let binding = format!("{server}\u{0}{}", key.principal);
        // Read before anything is used: a revocation after this moment does not cover what
        // follows from it, one before it does.
        let since = Utc::now();
        let stored = store.get(server, &key.principal).await.map_err(|e| {
            tracing::error!("reading an upstream grant: {e}");
            failed("the grant store could not be read")
        })?;
        if let Some(row) = stored {
            let set = vault.open(&binding, &row.sealed).ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok());
            let usable = set.filter(|_| !self.revoked_at(server, &row.subject, row.issued_at));
            let stale = lock(&self.stale).contains(&key);
            match usable {
                Some(set) => {
                    let left = set["expires_at"].as_i64().unwrap_or(0).saturating_sub(Utc::now().timestamp());
                    if let Some(access) = set["access_token"].as_str().filter(|_| left > 5 && !stale) {
                        let lifetime = Duration::from_secs(left as u64);
                        let issued = Issued::new(access.to_owned(), &principal.subject, row.issued_at, lifetime);
                        self.hold(key, &issued, lifetime);
                        return Ok(issued);
                    }
                    if let Some(refresh) = set["refresh_token"].as_str() {
                        match client.refresh(refresh).await {
                            Ok(mut granted) => {
                                granted.refresh = granted.refresh.or_else(|| Some(refresh.to_owned()));
                                let issued =
                                    self.keep_grant(server, principal, granted, since).await.map_err(|w| failed(&w))?;
                                let note = format!("token {} refreshed", issued.id);
                                self.audit(server, principal, "upstream_refreshed", "ALLOW", &note).await;
                                return Ok(issued);
                            }
                            Err(r) => {
                                tracing::warn!(server = %server, "refreshing a grant failed: {}", r.logged);
                                self.audit(server, principal, "upstream_refreshed", "DENY", &r.shown).await;
                                // Only a refresh token the server no longer honours ends the
                                // grant; anything else (an outage) is tried again next time.
                                if r.code.as_deref() != Some("invalid_grant") {
                                    return Err(failed(&r.shown));
                                }
                            }
                        }
                    }
                }
                None => tracing::warn!(server = %server, "a stored grant is revoked or does not open; it is dropped"),
            }
            let _ = store.forget(server, &key.principal).await;
        }
        let link = self.flows.link(server, &Arc::new(principal.clone()), &self.origin);
        Err(RpcError::new(
            error::URL_ELICITATION_REQUIRED,
            format!(
                "server '{server}' needs your authorization: open the link to let Warden act for you there, then retry"
            ),
        )
        .with_data(serde_json::json!({ "elicitations": [{
            "mode": "url",
            "elicitationId": format!("warden-authorize-{server}"),
            "url": link,
            "message": format!("Authorize Warden to use '{server}' on your behalf"),
        }]})))
    }

    /// Seals and stores a grant of `principal` for `server` whose authority began at `since`,
    /// and holds its access token. A revocation after `since` and before now leaves nothing.
    async fn keep_grant(
        &self,
        server: &str,
        principal: &Principal,
        granted: Granted,
        since: DateTime<Utc>,
    ) -> Result<Issued, String> {
        let (Some(store), Some(vault)) = (self.store.get(), &self.vault) else {
            return Err("the gateway keeps no grants".into());
        };
        let key = Key { server: server.to_owned(), principal: principal.identity_key(), scopes: vec![] };
        let binding = format!("{server}\u{0}{}", key.principal);
        let sealed = vault.seal(&binding, sealed_set(&granted).to_string().as_bytes())?;
        store.put(server, &key.principal, &principal.subject, &sealed, since).await.map_err(|e| {
            tracing::error!("storing an upstream grant: {e}");
            "the grant could not be stored".to_owned()
        })?;
        if self.revoked_at(server, &principal.subject, since) {
            let _ = store.forget(server, &key.principal).await;
            return Err("its credentials were revoked by an operator meanwhile".into());
        }
        let issued = Issued::new(granted.token, &principal.subject, since, granted.lifetime);
        self.hold(key, &issued, granted.lifetime);
        Ok(issued)
    }

    /// Whether `principal` has authorized `server` (`None`), or the link to do so.
    pub async fn authorization(&self, principal: &Principal, server: &str) -> Result<Option<String>, RpcError> {
        match self.token(principal, server, None).await {
            Ok(_) => Ok(None),
            Err(e) if e.code == error::URL_ELICITATION_REQUIRED => Ok(e
                .data
                .as_ref()
                .and_then(|d| d.pointer("/elicitations/0/url"))
                .and_then(Value::as_str)
                .map(str::to_owned)),
            Err(e) => Err(e),
        }
    }

    /// Where callers' grants are kept, once attached.
    pub fn grants(&self) -> Option<&warden_store::UpstreamTokenStore> {
        self.store.get().map(|s| s.as_ref())
    }

    /// A browser opened consent link `id`; `cookie` is the value set on it. Where to send it
    /// (to sign in at the gateway's issuer).
    pub async fn open_flow(&self, id: &str, cookie: &str) -> Result<String, String> {
        let Some(sign_in) = &self.sign_in else { return Err("sign-in is not configured".into()) };
        match self.flows.open(id, cookie, sign_in).await {
            Ok(location) => Ok(location),
            Err(refused) => Err(self.refused("authorization link refused", refused).await),
        }
    }

    /// The browser is back from signing in; `identify` validates the token it got as the gateway
    /// validates callers' tokens. Where to send it (to the server's authorization server).
    pub async fn signed_in_flow(
        &self,
        query: &HashMap<String, String>,
        cookies: &HashMap<String, String>,
        identify: impl AsyncFnOnce(&str) -> Option<Arc<Principal>>,
    ) -> Result<String, String> {
        let Some(sign_in) = &self.sign_in else { return Err("sign-in is not configured".into()) };
        match self.flows.signed_in(query, cookies, sign_in, &self.oauth, identify).await {
            Ok(location) => Ok(location),
            Err(refused) => Err(self.refused("sign-in refused", refused).await),
        }
    }

    /// The authorization server sent a browser back with `query`; `cookies` are the browser's.
    /// The server authorized, or why not (each audited).
    pub async fn finish_flow(
        &self,
        query: &HashMap<String, String>,
        cookies: &HashMap<String, String>,
    ) -> Result<String, String> {
        let done = match self.flows.complete(query, cookies, &self.oauth).await {
            Ok(done) => done,
            Err(refused) => return Err(self.refused("authorization response refused", refused).await),
        };
        match self.keep_grant(&done.server, &done.principal, done.granted, done.since).await {
            Ok(issued) => {
                let note = format!("authorized; token {} stored sealed", issued.id);
                self.audit(&done.server, &done.principal, "upstream_authorized", "ALLOW", &note).await;
                Ok(done.server)
            }
            Err(why) => {
                self.audit(&done.server, &done.principal, "upstream_authorized", "DENY", &why).await;
                Err(why)
            }
        }
    }

    /// Audits a refused step of a consent flow; what the page says.
    async fn refused(&self, what: &str, refused: FlowRefused) -> String {
        let reason = format!("{what}: {}", refused.why);
        let nobody = || Arc::new(Principal::new("unknown", warden_policy::PrincipalClass::User));
        let (server, principal) = refused.flow.unwrap_or_else(|| (String::new(), nobody()));
        self.audit(&server, &principal, "upstream_authorized", "DENY", &reason).await;
        refused.why
    }
}
