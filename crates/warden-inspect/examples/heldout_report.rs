//! Measures the scanners on the held-out splits, which were written separately from a brief
//! of the attack taxonomy and are never tuned on:
//!
//! - `corpus/heldout/definitions.jsonl`: the poisoning scanner (rules and model), recall per
//!   attack family and the false-hold rate on benign definitions;
//! - `corpus/heldout/results.jsonl`: the injection scanner on tool results, recall per style
//!   and the share of benign results flagged.
//! - `corpus/heldout/results-2.jsonl`: the same on a second results split, written later.
//!
//! Each is reported for the rules alone and for rules with the model.
//!
//! ```text
//! cargo run --release -p warden-inspect --example heldout_report
//! ```

#[path = "../corpus/heldout.rs"]
mod heldout;

fn main() {
    for split in [heldout::definitions(), heldout::results(), heldout::results_second()] {
        for (label, scores) in [("rules", &split.rules), ("rules and model", &split.combined)] {
            println!("\n### {} — {label}\n", split.title);
            println!("| family | flagged | total | recall |");
            println!("|---|---|---|---|");
            for (family, (h, t)) in &scores.families {
                println!("| {family} | {h} | {t} | {:.2} |", *h as f64 / (*t).max(1) as f64);
            }
            let (h, t) = scores.attacks();
            println!("| **all attacks** | {h} | {t} | {:.3} |", h as f64 / t.max(1) as f64);
            println!(
                "| benign (false flags) | {} | {} | {:.3} |",
                scores.benign.0,
                scores.benign.1,
                scores.false_rate()
            );
            for id in &scores.false_flags {
                println!("- false flag: `{id}`");
            }
        }
    }
}
