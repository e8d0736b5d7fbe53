#![allow(dead_code)]
//! Redaction recall on `corpus/secrets/providers.jsonl`: credentials in the formats providers
//! document, randomly generated (none is live), each in a realistic context. Shared by
//! `tests/redaction_recall.rs` and `examples/redaction_recall.rs`.

use std::collections::BTreeMap;

use warden_inspect::SecretScanner;

const PROVIDERS: &str = include_str!("secrets/providers.jsonl");

/// One example the redactor missed.
#[derive(Debug)]
pub struct Miss {
    pub id: String,
    pub provider: String,
    pub secret: String,
    pub text: String,
}

/// Counts over the corpus.
#[derive(Debug, Default)]
pub struct Recall {
    pub caught: usize,
    pub total: usize,
    /// kind -> (caught, total).
    pub kinds: BTreeMap<String, (usize, usize)>,
    /// Distinct vendors (the provider name before any parenthesis).
    pub vendors: usize,
    pub misses: Vec<Miss>,
}

impl Recall {
    pub fn rate(&self) -> f64 {
        self.caught as f64 / self.total.max(1) as f64
    }
}

/// Caught: the secret does not survive redaction verbatim and at least half of its bytes
/// fall in redacted spans (a webhook's token is the credential, not its host).
pub fn measure(scanner: &SecretScanner) -> Recall {
    let mut recall = Recall::default();
    let mut vendors = std::collections::BTreeSet::new();
    for (number, line) in PROVIDERS.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("providers.jsonl:{}: {e}", number + 1));
        let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
        let (text, secret, provider) = (field("text"), field("secret"), field("provider"));
        vendors.insert(provider.split(" (").next().unwrap_or_default().to_owned());
        let Some(at) = text.find(&secret) else { panic!("providers.jsonl:{}: secret not in text", number + 1) };
        let (out, _) = scanner.redact_str(&text);
        let mut covered = vec![false; secret.len()];
        for found in scanner.find(&text) {
            for (i, c) in covered.iter_mut().enumerate() {
                if found.span.contains(&(at + i)) {
                    *c = true;
                }
            }
        }
        let share = covered.iter().filter(|&&c| c).count() as f64 / secret.len().max(1) as f64;
        let caught = !out.contains(secret.as_str()) && share >= 0.5;
        let entry = recall.kinds.entry(field("kind")).or_default();
        entry.0 += usize::from(caught);
        entry.1 += 1;
        recall.total += 1;
        if caught {
            recall.caught += 1;
        } else {
            recall.misses.push(Miss { id: field("id"), provider, secret, text });
        }
    }
    recall.vendors = vendors.len();
    recall
}
