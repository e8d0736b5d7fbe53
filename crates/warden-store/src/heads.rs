//! Signed statements of every chain's head.
//!
//! With a chain per gateway process, deleting a whole chain, or the end of one, leaves every
//! remaining chain intact. So each gateway that has a signing key states, every few seconds and
//! when it stops, the last link and hash of every chain it sees, signed; `verify` then checks
//! that every chain named by a statement still holds that link with that hash. A chain deleted
//! or cut short after a statement named its head is found; what was written after the last
//! statement is covered only by the next one (the report says when the last was made).

use ed25519_dalek::{Signer, SigningKey};
use serde_json::Value;

use std::collections::{BTreeMap, BTreeSet};

use crate::StoreError;
use crate::backend::Backend;
use crate::chain::GENESIS_HASH;
use crate::checkpoint::{Trust, check_signed};
use crate::event::stored_time;

/// How often a gateway states the heads.
pub const HEADS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A row of `mcp_audit_heads`; `heads` is the JSON text of `[[chain, link, row_hash], ...]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HeadsStatement {
    pub id: i64,
    pub created_at: String,
    /// The chain of the gateway that made the statement.
    pub chain: String,
    pub heads: String,
    pub public_key: String,
    pub signature: String,
}

/// One head a statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Claim {
    pub chain: String,
    pub link: i64,
    pub row_hash: String,
    /// When the statement naming it was made.
    pub stated_at: String,
}

impl HeadsStatement {
    fn message(created_at: &str, chain: &str, heads: &str) -> Vec<u8> {
        format!("warden-audit-heads-v1\n{created_at}\n{chain}\n{heads}").into_bytes()
    }

    /// A statement by the writer of `chain` of `heads`, signed with `key`.
    pub fn sign(
        key: &SigningKey,
        chain: &str,
        heads: &[(String, i64, String)],
        now: chrono::DateTime<chrono::Utc>,
    ) -> HeadsStatement {
        let created_at = stored_time(&now);
        let heads = Value::from(
            heads
                .iter()
                .map(|(c, l, h)| Value::from(vec![Value::from(c.clone()), (*l).into(), h.clone().into()]))
                .collect::<Vec<_>>(),
        )
        .to_string();
        let signature = key.sign(&Self::message(&created_at, chain, &heads));
        HeadsStatement {
            id: 0,
            created_at,
            chain: chain.to_owned(),
            heads,
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Checks the signature (against `trusted_keys` when there are any) and reads the heads.
    /// The error is a sentence for the verify report.
    pub fn check<S: AsRef<str>>(&self, trusted_keys: &[S]) -> Result<(Trust, Vec<Claim>), String> {
        let at = &self.created_at;
        let what = format!("the statement of heads of {at}");
        let message = Self::message(at, &self.chain, &self.heads);
        let trust = check_signed(&what, &self.public_key, &self.signature, &message, trusted_keys)?;
        let heads: Vec<(String, i64, String)> = serde_json::from_str(&self.heads)
            .map_err(|_| format!("the statement of heads of {at} does not list heads (edited)"))?;
        let claims = heads
            .into_iter()
            .map(|(chain, link, row_hash)| Claim { chain, link, row_hash, stated_at: at.clone() })
            .collect();
        Ok((trust, claims))
    }
}

/// What one gateway has stated, so that it never states less than before: a gateway asked to
/// sign heads that went back (a chain cut short, deleted or rewritten since it last looked)
/// refuses, and says so, instead of vouching for the tampered log.
pub(crate) struct Stater {
    key: std::sync::Arc<SigningKey>,
    /// This gateway's chain.
    chain: String,
    /// The heads it last stated (or, before its first statement, those the latest statements
    /// signed with its key name).
    stated: BTreeMap<String, (i64, String)>,
    started: bool,
}

impl Stater {
    pub fn new(key: std::sync::Arc<SigningKey>, chain: &str) -> Stater {
        Stater { key, chain: chain.to_owned(), stated: BTreeMap::new(), started: false }
    }

    /// States the heads of this gateway's chain and of every chain a statement signed with the
    /// same key names. Only chains some gateway holding the key vouched for are ever named, so a
    /// chain made up in the database is named by none.
    pub async fn state(&mut self, backend: &Backend) -> Result<(), StoreError> {
        let public = hex::encode(self.key.verifying_key().as_bytes());
        let mut known: BTreeSet<String> = self.stated.keys().cloned().collect();
        known.insert(self.chain.clone());
        for statement in backend.heads_statements().await? {
            let Ok((Trust::Trusted, claims)) = statement.check(&[public.as_str()]) else { continue };
            for claim in claims {
                if !self.started {
                    // What the others stated last is the floor this gateway starts from.
                    let floor = self.stated.entry(claim.chain.clone()).or_insert((0, GENESIS_HASH.to_owned()));
                    if claim.link > floor.0 {
                        *floor = (claim.link, claim.row_hash.clone());
                    }
                }
                known.insert(claim.chain);
            }
        }
        self.started = true;
        for (chain, (link, hash)) in &self.stated {
            if *link == 0 {
                continue;
            }
            let there = match backend.row_hash_at(chain, *link).await? {
                Some(h) => h == *hash,
                // Pruned by retention: a checkpoint covers it.
                None => backend.latest_checkpoint(chain).await?.is_some_and(|cp| cp.link >= *link),
            };
            if !there {
                return Err(StoreError::ChainBroken {
                    seq: 0,
                    problem: format!(
                        "chain {chain:?} link {link}, stated before, is gone or changed (rows deleted or edited): no \
                         statement of heads is signed until `warden audit verify` has been run"
                    ),
                });
            }
        }
        let mut heads = Vec::new();
        for chain in known {
            let (link, hash) = backend.chain_head(&chain).await?.unwrap_or((0, GENESIS_HASH.to_owned()));
            heads.push((chain, link, hash));
        }
        let statement = HeadsStatement::sign(&self.key, &self.chain, &heads, crate::sql::now());
        backend.insert_heads(&statement).await?;
        self.stated = heads.into_iter().map(|(c, l, h)| (c, (l, h))).collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_checks_and_an_edited_one_does_not() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let public = hex::encode(key.verifying_key().as_bytes());
        let heads = vec![("gw-a".to_owned(), 4, "a".repeat(64)), ("gw-b".to_owned(), 2, "b".repeat(64))];
        let s = HeadsStatement::sign(&key, "gw-a", &heads, chrono::Utc::now());
        let (trust, claims) = s.check(&[public.as_str()]).unwrap();
        assert_eq!(trust, Trust::Trusted);
        assert_eq!(claims.len(), 2);
        assert_eq!((claims[1].chain.as_str(), claims[1].link), ("gw-b", 2));
        assert_eq!(s.check::<&str>(&[]).unwrap().0, Trust::StoredKeyOnly);
        let mut shortened = s.clone();
        shortened.heads = shortened.heads.replace("[\"gw-b\",2", "[\"gw-b\",1");
        assert!(shortened.check(&[public.as_str()]).is_err());
        assert!(s.check(&["00".repeat(32)]).is_err());
    }
}
