//! Callers' upstream tokens at rest: AES-256-GCM under the key of `[credentials] key_env` or
//! `key_file`, a fresh random nonce per seal, and the server and caller as associated data, so a
//! sealed row moved to another caller or server does not open.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// The sealing key.
pub struct Vault {
    key: LessSafeKey,
    random: SystemRandom,
}

impl Vault {
    /// The vault of `[credentials]`, reading the key now; errors never contain it.
    pub fn from_config(c: &crate::config::CredentialsSection, base_dir: &std::path::Path) -> Result<Vault, String> {
        let text = match (&c.key_env, &c.key_file) {
            (Some(var), _) => std::env::var(var).map_err(|_| format!("the environment variable {var} is not set"))?,
            (None, Some(f)) => {
                let path = if f.is_absolute() { f.clone() } else { base_dir.join(f) };
                std::fs::read_to_string(&path).map_err(|e| format!("the key file cannot be read ({})", e.kind()))?
            }
            (None, None) => return Err("no key is configured ([credentials] key_env or key_file)".into()),
        };
        Vault::new(text.trim())
    }

    /// A vault keyed by `text`: 32 bytes as 64 hex digits or base64.
    pub fn new(text: &str) -> Result<Vault, String> {
        let bytes =
            hex::decode(text).ok().or_else(|| B64.decode(text).ok()).filter(|b| b.len() == 32).ok_or_else(|| {
                "the credential key must be 32 bytes, as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)"
                    .to_owned()
            })?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "the credential key is not usable".to_owned())?;
        Ok(Vault { key: LessSafeKey::new(key), random: SystemRandom::new() })
    }

    /// `plain` sealed for `binding` (server and caller): base64 of nonce and ciphertext.
    pub fn seal(&self, binding: &str, plain: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| "no randomness".to_owned())?;
        let mut data = plain.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(binding.as_bytes()), &mut data)
            .map_err(|_| "sealing failed".to_owned())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(B64.encode(out))
    }

    /// What [`Vault::seal`] sealed for `binding`; an error for anything else (another key, another
    /// binding, an edited row).
    pub fn open(&self, binding: &str, sealed: &str) -> Result<Vec<u8>, String> {
        let bytes = B64.decode(sealed).map_err(|_| "not a sealed value".to_owned())?;
        if bytes.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err("not a sealed value".into());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| "not a sealed value".to_owned())?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(binding.as_bytes()), &mut data)
            .map_err(|_| "it does not open with this key for this server and caller".to_owned())?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_binding() {
        let v = Vault::new(&"ab".repeat(32)).unwrap();
        let sealed = v.seal("s|alice", b"token-set").unwrap();
        assert!(!sealed.contains("token-set"));
        assert_ne!(sealed, v.seal("s|alice", b"token-set").unwrap(), "a fresh nonce each time");
        assert_eq!(v.open("s|alice", &sealed).unwrap(), b"token-set");
        assert!(v.open("s|bob", &sealed).is_err(), "moved to another caller: refused");
        let other = Vault::new(&B64.encode([7u8; 32])).unwrap();
        assert!(other.open("s|alice", &sealed).is_err(), "another key: refused");
        let mut edited = B64.decode(&sealed).unwrap();
        let last = edited.len() - 1;
        edited[last] ^= 1;
        assert!(v.open("s|alice", &B64.encode(edited)).is_err());
        assert!(Vault::new("short").is_err());
    }
}
