//! Redaction recall on the provider-formats corpus (`corpus/secrets/providers.jsonl`), per
//! kind, with every miss listed.
//!
//! ```text
//! cargo run --release -p warden-inspect --example redaction_recall
//! ```

#[path = "../corpus/recall.rs"]
mod recall;

fn main() {
    let found = recall::measure(&warden_inspect::SecretScanner::new());
    println!("| kind | caught | total | recall |\n|---|---|---|---|");
    for (kind, (c, t)) in &found.kinds {
        println!("| {kind} | {c} | {t} | {:.3} |", *c as f64 / (*t).max(1) as f64);
    }
    println!("| **all** ({} vendors) | {} | {} | {:.3} |", found.vendors, found.caught, found.total, found.rate());
    for miss in &found.misses {
        println!("- miss `{}` ({}): secret {:?} in {:?}", miss.id, miss.provider, miss.secret, miss.text);
    }
}
