//! What a policy's constraints (`@max_runtime_sec`, `@max_retries`; `constraints` in a rule
//! file) do to a call it allows: the call is cancelled after its runtime, and after failing it
//! may be made again only so many times.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long failures of a call are remembered.
const REMEMBERED: Duration = Duration::from_secs(3600);
/// Most calls remembered; past this the oldest half is forgotten.
const MAX_REMEMBERED: usize = 10_000;

/// Failures of calls whose policy limits retries, by caller, tool and arguments.
#[derive(Default)]
pub struct Retries(Mutex<HashMap<String, (u32, Instant)>>);

impl Retries {
    /// The key of one call: the same caller, tool and arguments.
    pub fn key(principal: &str, server: &str, tool: &str, arguments: Option<&Value>) -> String {
        use sha2::Digest;
        let args = arguments.map(crate::guard::audit::result_hash).unwrap_or_default();
        let mut h = sha2::Sha256::new();
        for part in [principal, server, tool, &args] {
            h.update(part.len().to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// How many times the call has failed lately.
    pub fn failures(&self, key: &str, now: Instant) -> u32 {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).filter(|(_, at)| now.duration_since(*at) < REMEMBERED).map_or(0, |(n, _)| *n)
    }

    /// Records the call's outcome: a failure counts, a success forgets.
    pub fn record(&self, key: String, failed: bool, now: Instant) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if !failed {
            map.remove(&key);
            return;
        }
        if map.len() >= MAX_REMEMBERED {
            map.retain(|_, (_, at)| now.duration_since(*at) < REMEMBERED / 2);
        }
        let entry = map.entry(key).or_insert((0, now));
        if now.duration_since(entry.1) >= REMEMBERED {
            *entry = (0, now);
        }
        entry.0 += 1;
        entry.1 = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_until_a_success() {
        let r = Retries::default();
        let t = Instant::now();
        let k = Retries::key("alice", "s", "t", Some(&serde_json::json!({ "a": 1 })));
        assert_ne!(k, Retries::key("alice", "s", "t", Some(&serde_json::json!({ "a": 2 }))));
        assert_ne!(k, Retries::key("bob", "s", "t", Some(&serde_json::json!({ "a": 1 }))));
        r.record(k.clone(), true, t);
        r.record(k.clone(), true, t);
        assert_eq!(r.failures(&k, t), 2);
        assert_eq!(r.failures(&k, t + REMEMBERED), 0, "forgotten after an hour");
        r.record(k.clone(), false, t);
        assert_eq!(r.failures(&k, t), 0);
    }
}
