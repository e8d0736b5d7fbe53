//! Redaction recall on credentials in the formats providers document (`corpus/secrets/`,
//! randomly generated values in realistic contexts, assembled from provider documentation by
//! a writer who did not see the rules): at least 0.95, over at least 150 vendors.
//!
//! ```text
//! cargo run --release -p warden-inspect --example redaction_recall
//! ```

#[path = "../corpus/recall.rs"]
mod recall;

#[test]
fn provider_formats_are_redacted() {
    let found = recall::measure(&warden_inspect::SecretScanner::new());
    assert!(found.vendors >= 150, "{} vendors", found.vendors);
    let misses: Vec<&str> = found.misses.iter().map(|m| m.id.as_str()).collect();
    assert!(found.rate() >= 0.95, "recall {:.3} < 0.95; missed: {misses:?}", found.rate());
}
