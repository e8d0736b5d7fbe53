//! Prints the poisoning scanner's measured quality on the labelled corpus as the markdown
//! table in `docs/detection.md`, then the misses and false positives.
//!
//! ```text
//! cargo run -p warden-inspect --example detection_report
//! ```

#[path = "../corpus/eval.rs"]
mod eval;

use warden_inspect::poison::PoisonScanner;

fn main() {
    let report = match eval::evaluate(&PoisonScanner::new()) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("corpus: {error}");
            std::process::exit(1);
        }
    };
    print!("{}", report.markdown());
    println!();
    for (id, family) in &report.misses {
        println!("- missed: `{id}` ({family})");
    }
    for (id, rules) in &report.false_positives {
        println!("- false positive: `{id}` ({})", rules.join(", "));
    }
}
