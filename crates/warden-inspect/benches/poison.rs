//! Tool-poisoning scan throughput: 10,000 definitions per iteration, cycling through the
//! labelled corpus (benign and malicious), reported as definitions per second; and the
//! injection scanner on one long tool result of mixed prose in many languages (256 KiB of
//! the texts of a training corpus), reported as bytes per second.
//!
//! ```text
//! CARGO_TARGET_DIR=target cargo bench -p warden-inspect --bench poison
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;
use warden_inspect::InjectionScanner;
use warden_inspect::poison::{DefinitionKind, PoisonScanner};

const DEFINITIONS: usize = 10_000;

fn corpus() -> Vec<(DefinitionKind, Value)> {
    let text = concat!(include_str!("../corpus/benign.jsonl"), include_str!("../corpus/malicious.jsonl"));
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|entry| {
            let kind = match entry.get("kind")?.as_str()? {
                "prompt" => DefinitionKind::Prompt,
                "resource_template" => DefinitionKind::ResourceTemplate,
                _ => DefinitionKind::Tool,
            };
            Some((kind, entry.get("definition")?.clone()))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let corpus = corpus();
    assert!(corpus.len() >= 300, "corpus has {} definitions", corpus.len());
    let mut group = c.benchmark_group("poison_scan");
    group.throughput(Throughput::Elements(DEFINITIONS as u64));
    group.sample_size(20);
    // What the gateway runs (rules and the definitions model), and the rules alone: the ratio
    // is the model's cost, measured in one run.
    for (label, scanner) in [("rules_and_model", PoisonScanner::new()), ("rules_only", PoisonScanner::rules_only())] {
        group.bench_function(format!("{DEFINITIONS}_definitions_{label}"), |b| {
            b.iter(|| {
                let mut findings = 0;
                for (kind, definition) in corpus.iter().cycle().take(DEFINITIONS) {
                    findings += scanner.scan(*kind, black_box(definition)).len();
                }
                black_box(findings)
            })
        });
    }
    group.finish();

    // One long result: the texts of a training corpus (many languages, injected and honest)
    // joined into 256 KiB, the most a model reads of one string.
    let mut long = String::new();
    for line in include_str!("../corpus/train/results-k.jsonl").lines() {
        let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
        for item in entry["result"]["content"].as_array().into_iter().flatten() {
            if let Some(text) = item["text"].as_str() {
                long.push_str(text);
                long.push('\n');
            }
        }
        if long.len() >= 256 * 1024 {
            break;
        }
    }
    let mut group = c.benchmark_group("injection_scan");
    group.throughput(Throughput::Bytes(long.len() as u64));
    group.sample_size(10);
    for (label, scanner) in
        [("rules_and_model", InjectionScanner::new()), ("rules_only", InjectionScanner::rules_only())]
    {
        group.bench_function(format!("long_result_{label}"), |b| {
            b.iter(|| black_box(scanner.scan_text("/content/0/text", black_box(&long)).findings.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
