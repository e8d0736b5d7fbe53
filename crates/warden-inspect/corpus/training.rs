//! The training corpora as examples for `warden_inspect::model::train`, shared by
//! `examples/train_models.rs` and `tests/models.rs`. Never reads `corpus/heldout/`.

use serde_json::Value;
use warden_inspect::model::texts;
use warden_inspect::model::train::Example;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus");

/// Lines of every `.jsonl` file in `corpus/<dir>` whose name starts with `prefix`, files in
/// name order.
fn lines(dir: &str, prefix: &str) -> Vec<Value> {
    let path = format!("{CORPUS}/{dir}");
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&path)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|f| {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        name.starts_with(prefix) && name.ends_with(".jsonl")
    });
    files.sort();
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{}:{}: {e}", file.display(), number + 1));
            out.push(value);
        }
    }
    out
}

/// The attack family a corpus label stands for in the model's family table; `None` for
/// families the rules own (invisible characters, escapes, lookalikes, lengths) and mixtures.
fn family(label: &str) -> Option<String> {
    let family = match label {
        "instruction" => "instruction",
        "secret_reference" | "file_access" => "file_access",
        "exfiltration" => "exfiltration",
        "shadowing" => "shadowing",
        "command_injection" => "command_injection",
        "parameter_poisoning" => "parameter_poisoning",
        "dependency_injection" => "dependency_injection",
        "redirection" => "redirection",
        "preference_manipulation" => "preference_manipulation",
        "false_urgency_authority" => "false_authority",
        "concealment" => "concealment",
        "duplicate_tool" => "overlap",
        _ => return None,
    };
    Some(family.to_owned())
}

/// Character-level families the rules own; their examples teach a word model nothing.
const RULE_ONLY: &[&str] = &["invisible", "ansi", "homoglyph", "length"];

fn example(value: &Value, text_of: &str, malicious: bool, skip_name: bool) -> Example {
    let label = value["family"].as_str().unwrap_or_default();
    Example {
        texts: texts(&value[text_of], skip_name).into_iter().map(str::to_owned).collect(),
        malicious,
        family: if malicious { family(label) } else { None },
    }
}

/// Definitions: our first corpus and the training corpora in `corpus/train/`.
pub fn definitions() -> Vec<Example> {
    let mut out = Vec::new();
    for value in lines(".", "malicious") {
        if !RULE_ONLY.contains(&value["family"].as_str().unwrap_or_default()) {
            out.push(example(&value, "definition", true, true));
        }
    }
    for value in lines(".", "benign") {
        out.push(example(&value, "definition", false, true));
    }
    for value in lines("train", "definitions") {
        let malicious = value["label"] == "malicious";
        out.push(example(&value, "definition", malicious, true));
    }
    out.retain(|e| !e.texts.is_empty());
    out
}

/// Tool results: our first corpus and `corpus/train/results.jsonl`.
pub fn results() -> Vec<Example> {
    let mut out = Vec::new();
    for value in lines("results", "injected") {
        out.push(example(&value, "result", true, false));
    }
    for value in lines("results", "benign") {
        out.push(example(&value, "result", false, false));
    }
    for value in lines("train", "results") {
        let malicious = value["label"] == "injected";
        let mut e = example(&value, "result", malicious, false);
        e.family = None;
        out.push(e);
    }
    out.retain(|e| !e.texts.is_empty());
    out
}
