//! Detection quality of the poisoning scanner on the labelled corpus
//! (`corpus/malicious.jsonl`, `corpus/benign.jsonl`): recall, false-positive rate, and
//! whether each attack is attributed to the family it belongs to.

#[path = "../corpus/eval.rs"]
mod eval;

use warden_inspect::poison::PoisonScanner;

#[test]
fn corpus_quality() {
    let report = eval::evaluate(&PoisonScanner::new()).expect("corpus parses");
    println!("{}", report.markdown());
    for (id, family) in &report.misses {
        println!("missed: {id} ({family})");
    }
    for (id, rules) in &report.false_positives {
        println!("false positive: {id} {rules:?}");
    }
    assert!(report.malicious >= 150, "malicious corpus has {} examples", report.malicious);
    assert!(report.benign >= 150, "benign corpus has {} examples", report.benign);
    assert!(report.recall() >= 0.90, "recall {:.3} below 0.90", report.recall());
    assert!(report.false_positive_rate() <= 0.03, "false-positive rate {:.3} above 0.03", report.false_positive_rate());
    assert!(
        report.family_match_rate() >= 0.80,
        "expected family found for {:.3}, below 0.80",
        report.family_match_rate()
    );
}
