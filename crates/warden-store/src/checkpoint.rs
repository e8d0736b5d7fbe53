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
    /// The bytes signed: a domain tag and every column but the key and signature.
    fn message(seq: i64, row_hash: &str, event_time: &str, created_at: &str) -> Vec<u8> {
        format!("warden-audit-checkpoint-v1\n{seq}\n{row_hash}\n{event_time}\n{created_at}").into_bytes()
    }

    pub fn sign(key: &SigningKey, seq: i64, row_hash: &str, event_time: &str, now: DateTime<Utc>) -> Checkpoint {
        let created_at = stored_time(&now);
        let signature = key.sign(&Self::message(seq, row_hash, event_time, &created_at));
        Checkpoint {
            seq,
            row_hash: row_hash.to_owned(),
            event_time: event_time.to_owned(),
            created_at,
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: hex::encode(signature.to_bytes()),
        }
    }

    /// Checks the signature, and that the key is trusted when `trusted_keys` is not empty.
    /// The error is a sentence for the verify report.
    pub fn check<S: AsRef<str>>(&self, trusted_keys: &[S]) -> Result<Trust, String> {
        let seq = self.seq;
        let key_bytes: [u8; 32] =
            hex::decode(&self.public_key).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
                format!("the checkpoint at row {seq} has a public key that is not 32 hex-encoded bytes (edited)")
            })?;
        let key = VerifyingKey::from_bytes(&key_bytes).map_err(|_| {
            format!("the checkpoint at row {seq} has a public key that is not a valid Ed25519 key (edited)")
        })?;
        let trust = if trusted_keys.is_empty() {
            Trust::StoredKeyOnly
        } else if trusted_keys.iter().any(|k| k.as_ref().trim().eq_ignore_ascii_case(&self.public_key)) {
            Trust::Trusted
        } else {
            return Err(format!(
                "the checkpoint at row {seq} is signed by key {}, which is not one of the trusted keys (forged checkpoint?)",
                self.public_key
            ));
        };
        let signature: [u8; 64] =
            hex::decode(&self.signature).ok().and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
                format!("the checkpoint at row {seq} has a signature that is not 64 hex-encoded bytes (edited)")
            })?;
        key.verify_strict(
            &Self::message(seq, &self.row_hash, &self.event_time, &self.created_at),
            &Signature::from_bytes(&signature),
        )
        .map_err(|_| {
            format!("the checkpoint at row {seq}: its signature does not verify (checkpoint edited or forged)")
        })?;
        Ok(trust)
    }
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

/// Deletes the rows older than `cutoff` from the start of the chain, after checking that they
/// chain and writing a signed checkpoint for the last of them.
///
/// Only a prefix is deleted: a row older than `cutoff` that follows a newer one waits until
/// everything before it is old, so the chain is never cut in the middle.
pub(crate) async fn prune(
    backend: &Backend,
    key: &SigningKey,
    cutoff: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<PruneReport, StoreError> {
    const PAGE: i64 = 1000;
    let mut tx = backend.begin_write().await?;
    let (first_recent, max_seq) = tx.retention_bounds(cutoff).await?;
    let last = match (first_recent, max_seq) {
        (Some(first_recent), _) => first_recent - 1,
        (None, Some(max_seq)) => max_seq,
        (None, None) => return Ok(PruneReport::default()),
    };
    let anchor = tx.latest_checkpoint().await?;
    let mut after = anchor.as_ref().map_or(i64::MIN, |cp| cp.seq);
    if last <= after {
        return Ok(PruneReport::default());
    }
    // The checkpoint vouches for everything before it, so first make sure those rows chain.
    let mut walker = ChainWalker::after(anchor.map(|cp| (cp.seq, cp.row_hash)));
    let mut last_row = None;
    'pages: loop {
        let page = tx.rows_after(after, PAGE).await?;
        if page.is_empty() {
            break;
        }
        for row in page {
            let seq = match &row {
                Ok(row) => row.seq,
                Err((seq, _)) => *seq,
            };
            if seq > last {
                break 'pages;
            }
            walker.check(&row).map_err(|bad| StoreError::ChainBroken { seq: bad.seq, problem: bad.problem })?;
            after = seq;
            last_row = row.ok();
        }
    }
    let Some(last_row) = last_row else {
        return Ok(PruneReport::default());
    };
    let checkpoint = Checkpoint::sign(key, last_row.seq, &last_row.row_hash, &last_row.event_time, now);
    tx.insert_checkpoint(&checkpoint).await?;
    let deleted = tx.delete_through(last_row.seq).await?;
    tx.commit().await?;
    tracing::info!(deleted, checkpoint = last_row.seq, "pruned the audit log");
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
        let cp = Checkpoint::sign(&key(), 10, &"a".repeat(64), "2026-01-01 00:00:00.000000", Utc::now());
        let public = hex::encode(key().verifying_key().as_bytes());
        assert_eq!(cp.check(&[public.as_str()]), Ok(Trust::Trusted));
        assert_eq!(cp.check::<&str>(&[]), Ok(Trust::StoredKeyOnly));
        assert!(cp.check(&["11".repeat(32)]).is_err());
        let mut moved = cp.clone();
        moved.seq = 11;
        assert!(moved.check(&[public.as_str()]).is_err());
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
