//! Measures the poisoning scanner on the held-out split (`corpus/heldout/definitions.jsonl`):
//! recall per attack family and the false-hold rate on benign definitions. The split was
//! written separately from a brief of the attack taxonomy; it measures, it is never tuned on.
//!
//! ```text
//! cargo run --release -p warden-inspect --example heldout_report
//! ```

use std::collections::BTreeMap;
use warden_inspect::poison::{DefinitionKind, PoisonScanner, is_flagged};

const SPLIT: &str = include_str!("../corpus/heldout/definitions.jsonl");

fn main() {
    let scanner = PoisonScanner::new();
    // family -> (held, total); benign: (held, total)
    let mut families: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut benign = (0usize, 0usize);
    let mut false_holds = Vec::new();
    for (number, line) in SPLIT.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let example: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("line {}: {e}", number + 1);
                std::process::exit(1);
            }
        };
        let field = |name: &str| example[name].as_str().unwrap_or_default().to_owned();
        let held = is_flagged(&scanner.scan(DefinitionKind::Tool, &example["definition"]));
        if field("label") == "malicious" {
            let entry = families.entry(field("family")).or_default();
            entry.0 += usize::from(held);
            entry.1 += 1;
        } else {
            benign.0 += usize::from(held);
            benign.1 += 1;
            if held {
                false_holds.push(field("id"));
            }
        }
    }
    println!("| family | held | total | recall |");
    println!("|---|---|---|---|");
    let (mut held, mut total) = (0, 0);
    for (family, (h, t)) in &families {
        println!("| {family} | {h} | {t} | {:.2} |", *h as f64 / (*t).max(1) as f64);
        held += h;
        total += t;
    }
    println!("| **all attacks** | {held} | {total} | {:.2} |", held as f64 / total.max(1) as f64);
    println!(
        "| benign (false holds) | {} | {} | {:.3} |",
        benign.0,
        benign.1,
        benign.0 as f64 / benign.1.max(1) as f64
    );
    for id in false_holds {
        println!("- false hold: `{id}`");
    }
}
