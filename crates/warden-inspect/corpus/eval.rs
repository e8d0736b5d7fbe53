//! Evaluation of the poisoning scanner against the labelled corpus in this directory,
//! shared by `tests/poison_quality.rs` and `examples/detection_report.rs`.

use serde_json::Value;
use warden_inspect::poison::{DefinitionKind, Family, Finding, PoisonScanner, is_flagged};

/// The labelled malicious definitions.
pub const MALICIOUS: &str = include_str!("malicious.jsonl");
/// The labelled benign definitions.
pub const BENIGN: &str = include_str!("benign.jsonl");

/// One labelled definition.
pub struct Example {
    pub id: String,
    /// Expected family (malicious) or server category (benign).
    pub family: String,
    pub kind: DefinitionKind,
    pub definition: Value,
}

/// Parses a JSONL corpus file; a malformed line is an error naming the line.
pub fn load(text: &str) -> Result<Vec<Example>, String> {
    let mut examples = Vec::new();
    for (number, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let value: Value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("line {}: no {name}", number + 1))
        };
        let kind = match field("kind")?.as_str() {
            "tool" => DefinitionKind::Tool,
            "prompt" => DefinitionKind::Prompt,
            "resource_template" => DefinitionKind::ResourceTemplate,
            "instructions" => DefinitionKind::Instructions,
            other => return Err(format!("line {}: unknown kind {other}", number + 1)),
        };
        let definition =
            value.get("definition").cloned().ok_or_else(|| format!("line {}: no definition", number + 1))?;
        examples.push(Example { id: field("id")?, family: field("family")?, kind, definition });
    }
    Ok(examples)
}

/// Per-family figures.
pub struct Row {
    pub family: Family,
    /// Malicious examples labelled with this family.
    pub malicious: usize,
    /// Of those, flagged (any finding at medium or above).
    pub detected: usize,
    /// Of those, with a finding of this family (any severity).
    pub family_found: usize,
    /// Definitions (both sets) with a flagging finding of this family, and how many of
    /// them are malicious.
    pub flagged_by_family: usize,
    pub flagged_by_family_malicious: usize,
    /// Benign definitions with a flagging finding of this family.
    pub benign_false_positives: usize,
}

pub struct Report {
    pub rows: Vec<Row>,
    pub malicious: usize,
    pub detected: usize,
    pub family_found: usize,
    pub benign: usize,
    pub benign_flagged: usize,
    /// Malicious examples not flagged, with their label.
    pub misses: Vec<(String, String)>,
    /// Benign examples flagged, with the flagging rules.
    pub false_positives: Vec<(String, Vec<&'static str>)>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

impl Report {
    pub fn recall(&self) -> f64 {
        ratio(self.detected, self.malicious)
    }
    pub fn false_positive_rate(&self) -> f64 {
        ratio(self.benign_flagged, self.benign)
    }
    pub fn family_match_rate(&self) -> f64 {
        ratio(self.family_found, self.malicious)
    }

    /// The table for `docs/detection.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| Family | Malicious | Detected | Recall | Family found | Precision | Benign FP |\n|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for row in &self.rows {
            let precision = if row.flagged_by_family == 0 {
                "–".to_owned()
            } else {
                format!("{:.3}", ratio(row.flagged_by_family_malicious, row.flagged_by_family))
            };
            out.push_str(&format!(
                "| {} | {} | {} | {:.3} | {} | {} | {} |\n",
                row.family,
                row.malicious,
                row.detected,
                ratio(row.detected, row.malicious),
                row.family_found,
                precision,
                row.benign_false_positives
            ));
        }
        out.push_str(&format!(
            "| **all** | {} | {} | **{:.3}** | {} ({:.3}) | | {} of {} benign (FPR **{:.3}**) |\n",
            self.malicious,
            self.detected,
            self.recall(),
            self.family_found,
            self.family_match_rate(),
            self.benign_flagged,
            self.benign,
            self.false_positive_rate()
        ));
        out
    }
}

fn family_of(label: &str) -> Option<Family> {
    label.parse().ok()
}

/// Scans both sets and tallies the figures.
pub fn evaluate(scanner: &PoisonScanner) -> Result<Report, String> {
    let malicious = load(MALICIOUS)?;
    let benign = load(BENIGN)?;
    let mut rows: Vec<Row> = Family::ALL
        .into_iter()
        .map(|family| Row {
            family,
            malicious: 0,
            detected: 0,
            family_found: 0,
            flagged_by_family: 0,
            flagged_by_family_malicious: 0,
            benign_false_positives: 0,
        })
        .collect();
    let mut report = Report {
        rows: Vec::new(),
        malicious: malicious.len(),
        detected: 0,
        family_found: 0,
        benign: benign.len(),
        benign_flagged: 0,
        misses: Vec::new(),
        false_positives: Vec::new(),
    };
    let flagging_families = |findings: &[Finding]| -> Vec<Family> {
        let mut families: Vec<Family> =
            findings.iter().filter(|f| f.severity >= warden_inspect::poison::FLAG_SEVERITY).map(|f| f.family).collect();
        families.sort();
        families.dedup();
        families
    };
    for example in &malicious {
        let expected =
            family_of(&example.family).ok_or_else(|| format!("{}: unknown family {}", example.id, example.family))?;
        let findings = scanner.scan(example.kind, &example.definition);
        let flagged = is_flagged(&findings);
        let found = findings.iter().any(|f| f.family == expected);
        let row = &mut rows[Family::ALL.iter().position(|&f| f == expected).unwrap_or(0)];
        row.malicious += 1;
        row.detected += usize::from(flagged);
        row.family_found += usize::from(found);
        report.detected += usize::from(flagged);
        report.family_found += usize::from(found);
        if !flagged {
            report.misses.push((example.id.clone(), example.family.clone()));
        }
        for family in flagging_families(&findings) {
            let row = &mut rows[Family::ALL.iter().position(|&f| f == family).unwrap_or(0)];
            row.flagged_by_family += 1;
            row.flagged_by_family_malicious += 1;
        }
    }
    for example in &benign {
        let findings = scanner.scan(example.kind, &example.definition);
        if is_flagged(&findings) {
            report.benign_flagged += 1;
            let rules = findings
                .iter()
                .filter(|f| f.severity >= warden_inspect::poison::FLAG_SEVERITY)
                .map(|f| f.rule)
                .collect();
            report.false_positives.push((example.id.clone(), rules));
        }
        for family in flagging_families(&findings) {
            let row = &mut rows[Family::ALL.iter().position(|&f| f == family).unwrap_or(0)];
            row.flagged_by_family += 1;
            row.benign_false_positives += 1;
        }
    }
    report.rows = rows;
    Ok(report)
}
