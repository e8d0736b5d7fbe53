//! Detection quality of the injection scanner on tool results
//! (`corpus/results/injected.jsonl`, `corpus/results/benign.jsonl`): recall on results
//! that carry an injection and false-positive rate on honest ones, at severity medium
//! or above.

use serde_json::Value;
use warden_inspect::InjectionScanner;
use warden_inspect::poison::Severity;

struct Example {
    id: String,
    result: Value,
}

fn load(name: &str) -> Vec<Example> {
    let path = format!("{}/corpus/results/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"));
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .enumerate()
        .map(|(number, line)| {
            let mut value: Value =
                serde_json::from_str(line).unwrap_or_else(|error| panic!("{name}:{}: {error}", number + 1));
            let id = value["id"].as_str().unwrap_or_else(|| panic!("{name}:{}: no id", number + 1)).to_owned();
            let result = value["result"].take();
            Example { id, result }
        })
        .collect()
}

#[test]
fn result_corpus_quality() {
    let scanner = InjectionScanner::new();
    let injected = load("injected.jsonl");
    let benign = load("benign.jsonl");
    assert!(injected.len() >= 60, "injected corpus has {} examples", injected.len());
    assert!(benign.len() >= 60, "benign corpus has {} examples", benign.len());

    let mut caught = 0;
    for example in &injected {
        let found = scanner.scan_result(&example.result);
        if found.at_least(Severity::Medium) {
            caught += 1;
        } else {
            println!("missed: {} {:?}", example.id, found.findings.iter().map(|f| f.rule).collect::<Vec<_>>());
        }
    }
    let mut flagged = 0;
    for example in &benign {
        let found = scanner.scan_result(&example.result);
        if !found.findings.is_empty() && !found.at_least(Severity::Medium) {
            let rules: Vec<_> = found.findings.iter().map(|f| (f.rule, f.severity.as_str())).collect();
            println!("below threshold: {} {rules:?}", example.id);
        }
        if found.at_least(Severity::Medium) {
            flagged += 1;
            let rules: Vec<_> = found.findings.iter().map(|f| (f.rule, f.severity.as_str())).collect();
            println!("false positive: {} {rules:?}", example.id);
        }
    }
    let recall = f64::from(caught) / injected.len() as f64;
    let false_positive_rate = f64::from(flagged) / benign.len() as f64;
    println!(
        "injection in results: recall {recall:.3} ({caught}/{}), false-positive rate {false_positive_rate:.3} ({flagged}/{})",
        injected.len(),
        benign.len()
    );
    assert!(recall >= 0.85, "recall {recall:.3} below 0.85");
    assert!(false_positive_rate <= 0.05, "false-positive rate {false_positive_rate:.3} above 0.05");
}
