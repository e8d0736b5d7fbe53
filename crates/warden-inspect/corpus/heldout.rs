#![allow(dead_code)]
//! Evaluation on the held-out splits (`corpus/heldout/`), shared by
//! `examples/heldout_report.rs` and `tests/heldout.rs`. Measures only: nothing here may be
//! used to choose rules, thresholds or training data.

use std::collections::BTreeMap;

use warden_inspect::InjectionScanner;
use warden_inspect::poison::{DefinitionKind, PoisonScanner, Severity, is_flagged};

const DEFINITIONS: &str = include_str!("heldout/definitions.jsonl");
const RESULTS: &str = include_str!("heldout/results.jsonl");
const RESULTS_SECOND: &str = include_str!("heldout/results-2.jsonl");

/// Counts for one scanner configuration.
#[derive(Debug, Default)]
pub struct Scores {
    /// family -> (flagged, total), attacks only.
    pub families: BTreeMap<String, (usize, usize)>,
    /// (flagged, total) of benign examples.
    pub benign: (usize, usize),
    /// Ids of benign examples flagged.
    pub false_flags: Vec<String>,
}

impl Scores {
    fn add(&mut self, malicious: bool, family: &str, id: &str, flagged: bool) {
        if malicious {
            let entry = self.families.entry(family.to_owned()).or_default();
            entry.0 += usize::from(flagged);
            entry.1 += 1;
        } else {
            self.benign.0 += usize::from(flagged);
            self.benign.1 += 1;
            if flagged {
                self.false_flags.push(id.to_owned());
            }
        }
    }

    /// (flagged, total) over every attack family.
    pub fn attacks(&self) -> (usize, usize) {
        self.families.values().fold((0, 0), |(h, t), (fh, ft)| (h + fh, t + ft))
    }

    /// Recall over the given families.
    pub fn recall_of(&self, families: &[&str]) -> f64 {
        let (h, t) = self
            .families
            .iter()
            .filter(|(f, _)| families.contains(&f.as_str()))
            .fold((0, 0), |(h, t), (_, (fh, ft))| (h + fh, t + ft));
        h as f64 / t.max(1) as f64
    }

    /// Recall over every family but the given ones.
    pub fn recall_without(&self, families: &[&str]) -> f64 {
        let all: Vec<&str> = self.families.keys().map(String::as_str).filter(|f| !families.contains(f)).collect();
        self.recall_of(&all)
    }

    /// Share of benign examples flagged.
    pub fn false_rate(&self) -> f64 {
        self.benign.0 as f64 / self.benign.1.max(1) as f64
    }
}

/// One split measured twice.
pub struct Split {
    pub title: &'static str,
    pub rules: Scores,
    pub combined: Scores,
}

fn parse(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("held-out line {}: {e}", n + 1)))
        .collect()
}

fn field(value: &serde_json::Value, name: &str) -> String {
    value[name].as_str().unwrap_or_default().to_owned()
}

/// The poisoning scanner on held-out definitions: flagged = held.
pub fn definitions() -> Split {
    let (rules, combined) = (PoisonScanner::rules_only(), PoisonScanner::new());
    let mut split = Split { title: "Held-out definitions", rules: Scores::default(), combined: Scores::default() };
    for example in parse(DEFINITIONS) {
        let malicious = field(&example, "label") == "malicious";
        let (family, id) = (field(&example, "family"), field(&example, "id"));
        let held = |s: &PoisonScanner| is_flagged(&s.scan(DefinitionKind::Tool, &example["definition"]));
        split.rules.add(malicious, &family, &id, held(&rules));
        split.combined.add(malicious, &family, &id, held(&combined));
    }
    split
}

/// The injection scanner on held-out results: flagged = any finding at medium or above (the
/// result taints the session).
pub fn results() -> Split {
    results_of("Held-out tool results", RESULTS)
}

/// As [`results`], on the second held-out results split (`heldout/results-2.jsonl`), written
/// after the first had been measured many times, and measured once when it landed.
pub fn results_second() -> Split {
    results_of("Second held-out tool results", RESULTS_SECOND)
}

fn results_of(title: &'static str, text: &str) -> Split {
    let (rules, combined) = (InjectionScanner::rules_only(), InjectionScanner::new());
    let mut split = Split { title, rules: Scores::default(), combined: Scores::default() };
    for example in parse(text) {
        let malicious = field(&example, "label") == "injected";
        let (family, id) = (field(&example, "family"), field(&example, "id"));
        let flagged = |s: &InjectionScanner| s.scan_result(&example["result"]).at_least(Severity::Medium);
        split.rules.add(malicious, &family, &id, flagged(&rules));
        split.combined.add(malicious, &family, &id, flagged(&combined));
    }
    split
}
