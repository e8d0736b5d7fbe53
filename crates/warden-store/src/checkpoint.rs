//! Signed checkpoints and retention.
//!
//! Pruning old rows removes the start of the chain, so before it deletes anything it records
//! the last deleted row's seq and hash in `mcp_audit_checkpoints`, signed with an Ed25519 key.
//! `verify` then starts the chain from that checkpoint instead of from the genesis hash, and
//! accepts it only if the signature verifies under a key the operator trusts.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::StoreError;
use crate::backend::Backend;
use crate::event::stored_time;
use crate::verify::ChainWalker;

/// A row of `mcp_audit_checkpoints`; times as [`stored_time`] text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checkpoint {
    pub seq: i64,
    pub row_hash: String,
    pub event_time: String,
    pub created_at: String,
    pub public_key: String,
    pub signature: String,
    /// The chain of the last deleted row, and its link (in the chain `''`, its seq).
    pub chain: String,
    pub link: i64,
}

/// Whose word a checkpoint rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trust {
    /// Signed by one of the keys the verifier was given.
    Trusted,
    /// No keys were given; the signature verifies under the key stored beside it, which proves
    /// only that whoever wrote the checkpoint held that key.
    StoredKeyOnly,
}

impl Checkpoint {
    /// The bytes signed: a domain tag and every column but the key and signature (the chain
    /// and link only for a named chain, so that checkpoints of the chain `''` sign as before).
    fn message(&self) -> Vec<u8> {
        let Checkpoint { seq, row_hash, event_time, created_at, chain, link, .. } = self;
        if chain.is_empty() {
            format!("warden-audit-checkpoint-v1\n{seq}\n{row_hash}\n{event_time}\n{created_at}").into_bytes()
        } else {
            format!("warden-audit-checkpoint-v2\n{chain}\n{link}\n{seq}\n{row_hash}\n{event_time}\n{created_at}")
                .into_bytes()
        }
    }

    /// A checkpoint after `row` (the last row deleted), signed with `key`.
    pub fn sign(key: &SigningKey, row: &crate::chain::StoredRow, now: DateTime<Utc>) -> Checkpoint {
        let mut cp = Checkpoint {
            seq: row.seq,
            row_hash: row.row_hash.clone(),
            event_time: row.event_time.clone(),
            created_at: stored_time(&now),
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: String::new(),
            chain: row.chain.clone(),
            link: row.link,
        };
        cp.signature = hex::encode(key.sign(&cp.message()).to_bytes());
        cp
    }

    /// Checks the signature, and that the key is trusted when `trusted_keys` is not empty.
    /// The error is a sentence for the verify report.
    pub fn check<S: AsRef<str>>(&self, trusted_keys: &[S]) -> Result<Trust, String> {
        let what = format!("the checkpoint at row {}", self.seq);
        check_signed(&what, &self.public_key, &self.signature, &self.message(), trusted_keys)
    }
}

/// Checks an Ed25519 `signature` of `message` under `public_key` (both hex, as stored beside what
/// they sign), and that the key is one of `trusted_keys` when any are given. The error is a
/// sentence for the verify report about `what` was signed.
pub(crate) fn check_signed<S: AsRef<str>>(
    what: &str,
    public_key: &str,
    signature: &str,
    message: &[u8],
    trusted_keys: &[S],
) -> Result<Trust, String> {
    let key_bytes: [u8; 32] = hex::decode(public_key)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("{what} has a public key that is not 32 hex-encoded bytes (edited)"))?;
    let key = VerifyingKey::from_bytes(&key_bytes)
        .map_err(|_| format!("{what} has a public key that is not a valid Ed25519 key (edited)"))?;
    let trust = if trusted_keys.is_empty() {
        Trust::StoredKeyOnly
    } else if trusted_keys.iter().any(|k| k.as_ref().trim().eq_ignore_ascii_case(public_key)) {
        Trust::Trusted
    } else {
        return Err(format!("{what} is signed by key {public_key}, which is not one of the trusted keys (forged?)"));
    };
    let signature: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("{what} has a signature that is not 64 hex-encoded bytes (edited)"))?;
    key.verify_strict(message, &Signature::from_bytes(&signature))
        .map_err(|_| format!("{what}: its signature does not verify (edited or forged)"))?;
    Ok(trust)
}

/// Reads the 32-byte Ed25519 secret (64 hex characters) at `path`, or, if there is no file,
/// generates one there with mode 0600 and logs its public key.
pub(crate) fn load_or_create_key(path: &Path) -> Result<SigningKey, StoreError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_key(path, &text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => create_key(path),
        Err(err) => Err(StoreError::SigningKey { path: path.to_owned(), problem: format!("cannot read it: {err}") }),
    }
}

/// The public key (hex) of the signing key at `path`, for `verify --trusted-key`.
/// Does not create a key.
pub fn public_key_of(path: &Path) -> Result<String, StoreError> {
    let text = std::fs::read_to_string(path)
        .map_err(|err| StoreError::SigningKey { path: path.to_owned(), problem: format!("cannot read it: {err}") })?;
    Ok(hex::encode(parse_key(path, &text)?.verifying_key().as_bytes()))
}

fn parse_key(path: &Path, text: &str) -> Result<SigningKey, StoreError> {
    let secret: [u8; 32] = hex::decode(text.trim()).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
        StoreError::SigningKey {
            path: path.to_owned(),
            problem: "expected 64 hex characters (a 32-byte Ed25519 secret key)".into(),
        }
    })?;
    warn_if_readable_by_others(path);
    Ok(SigningKey::from_bytes(&secret))
}

fn create_key(path: &Path) -> Result<SigningKey, StoreError> {
    let io = |source| StoreError::Io { path: path.to_owned(), source };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    writeln!(file, "{}", hex::encode(key.to_bytes())).map_err(io)?;
    file.sync_all().map_err(io)?;
    tracing::warn!(
        path = %path.display(),
        public_key = %hex::encode(key.verifying_key().as_bytes()),
        "generated a new audit checkpoint signing key; record the public key to verify checkpoints"
    );
    Ok(key)
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "the audit signing key is readable by other users; chmod 600 it");
        }
    }
}

/// What one pruning pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PruneReport {
    /// Rows deleted.
    pub deleted: u64,
    /// The seq of the checkpoint written (the last deleted row), if any rows were deleted.
    pub checkpoint: Option<i64>,
}

/// Deletes the rows older than `cutoff` from the start of every chain, after checking that they
/// chain and writing a signed checkpoint for the last of them.
///
/// Only a prefix is deleted: a row older than `cutoff` that follows a newer one waits until
/// everything before it is old, so a chain is never cut in the middle.
pub(crate) async fn prune(
    backend: &Backend,
    key: &SigningKey,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    let mut report = PruneReport::default();
    for chain in backend.chains().await? {
        let pruned = prune_chain(backend, &chain, key, cutoff, now).await?;
        report.deleted += pruned.deleted;
        report.checkpoint = pruned.checkpoint.or(report.checkpoint);
    }
    Ok(report)
}

async fn prune_chain(
    backend: &Backend,
    chain: &str,
    key: &SigningKey,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    const PAGE: i64 = 1000;
    let mut tx = backend.begin_write().await?;
    let (first_recent, max_link) = tx.retention_bounds(chain, cutoff).await?;
    let last = match (first_recent, max_link) {
        (Some(first_recent), _) => first_recent - 1,
        (None, Some(max_link)) => max_link,
        (None, None) => return Ok(PruneReport::default()),
    };
    let anchor = tx.latest_checkpoint(chain).await?;
    let mut after = anchor.as_ref().map_or(i64::MIN, |cp| cp.link);
    if last <= after {
        return Ok(PruneReport::default());
    }
    // The checkpoint vouches for everything before it, so first make sure those rows chain.
    let mut walker = ChainWalker::after(chain, anchor.map(|cp| (cp.link, cp.row_hash)));
    let mut last_row = None;
    'pages: loop {
        let page = tx.chain_rows_after(chain, after, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in page {
            let link = match &row {
                Ok(row) => row.link,
                Err((seq, _)) => *seq,
            };
            if link > last {
                break 'pages;
            }
            walker.check(&row).map_err(|bad| StoreError::ChainBroken { seq: bad.seq, problem: bad.problem })?;
            after = link;
            last_row = row.ok();
        }
    }
    let Some(last_row) = last_row else {
        return Ok(PruneReport::default());
    };
    let checkpoint = Checkpoint::sign(key, &last_row, now);
    tx.insert_checkpoint(&checkpoint).await?;
    let deleted = tx.delete_through(chain, last_row.link).await?;
    tx.commit().await?;
    tracing::info!(deleted, chain, checkpoint = last_row.seq, "pruned the audit log");
    Ok(PruneReport { deleted, checkpoint: Some(last_row.seq) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7; 32])
    }

    #[test]
    fn a_signed_checkpoint_checks_and_an_edited_one_does_not() {
        let event = crate::event::AuditEvent::new(Utc::now(), "call", "ALLOW").normalized();
        let row = crate::chain::StoredRow::chain(10, &event, &"a".repeat(64));
        let cp = Checkpoint::sign(&key(), &row, Utc::now());
        let public = hex::encode(key().verifying_key().as_bytes());
        assert_eq!(cp.check(&[public.as_str()]), Ok(Trust::Trusted));
        assert_eq!(cp.check::<&str>(&[]), Ok(Trust::StoredKeyOnly));
        assert!(cp.check(&["11".repeat(32)]).is_err());
        let mut moved = cp.clone();
        moved.seq = 11;
        assert!(moved.check(&[public.as_str()]).is_err());
        let named = Checkpoint::sign(
            &key(),
            &crate::chain::StoredRow::linked(10, "gw", 3, &event, &"a".repeat(64)),
            Utc::now(),
        );
        assert_eq!(named.check(&[public.as_str()]), Ok(Trust::Trusted));
        let mut relinked = named.clone();
        relinked.link = 4;
        assert!(relinked.check(&[public.as_str()]).is_err(), "a named chain's link is signed");
        let mut rehashed = cp.clone();
        rehashed.row_hash = "b".repeat(64);
        assert!(rehashed.check(&[public.as_str()]).is_err());
        let mut garbage = cp;
        garbage.signature = "zz".into();
        assert!(garbage.check(&[public.as_str()]).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/audit.key");
        let created = load_or_create_key(&path).unwrap();
        let loaded = load_or_create_key(&path).unwrap();
        assert_eq!(created.to_bytes(), loaded.to_bytes());
        assert_eq!(public_key_of(&path).unwrap(), hex::encode(created.verifying_key().as_bytes()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(load_or_create_key(&path), Err(StoreError::SigningKey { .. })));
    }
}
