//! The shipped models are what `cargo run --release -p warden-inspect --example train_models`
//! writes from the training corpora: retrained here and compared weight by weight. Training is
//! deterministic; the comparison allows 0.01 per number so that a last-digit difference in the
//! platform's `exp` cannot fail it, while a model trained on other data or settings does.

#[path = "../corpus/training.rs"]
mod training;

use std::collections::BTreeMap;

use warden_inspect::model::train::{Example, Settings, train};

/// Every number of a model file, keyed by the line's key and index (`threshold`, `w 1f3a`, …).
fn numbers(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split_ascii_whitespace().collect();
        match parts.as_slice() {
            ["w", index, weight] => out.insert(format!("w {index}"), weight.parse().unwrap_or(f64::NAN)),
            ["f", index, class, weight] => out.insert(format!("f {index} {class}"), weight.parse().unwrap_or(f64::NAN)),
            ["families", ..] => out.insert(line.to_owned(), 0.0),
            [key, values @ ..] => {
                for (i, value) in values.iter().enumerate() {
                    out.insert(format!("{key} {i}"), value.parse().unwrap_or(f64::NAN));
                }
                None
            }
            [] => None,
        };
    }
    out
}

fn check(name: &str, title: &str, examples: Vec<Example>) {
    let shipped = std::fs::read_to_string(format!("{}/model/{name}.model", env!("CARGO_MANIFEST_DIR")))
        .expect("shipped model file");
    let trained = train(title, &examples, &Settings::default()).to_text();
    let (shipped, trained) = (numbers(&shipped), numbers(&trained));
    let keys: std::collections::BTreeSet<&String> = shipped.keys().chain(trained.keys()).collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter(|k| {
            let (a, b) = (shipped.get(*k).copied().unwrap_or(0.0), trained.get(*k).copied().unwrap_or(0.0));
            (a - b).abs() > 0.01 || (a - b).is_nan()
        })
        .take(5)
        .map(|k| format!("{k}: shipped {:?}, trained {:?}", shipped.get(k), trained.get(k)))
        .collect();
    assert!(
        differing.is_empty(),
        "model/{name}.model is not what the training corpora give ({differing:?}); \
         run `cargo run --release -p warden-inspect --example train_models`"
    );
}

#[test]
fn definitions_model_is_reproducible() {
    check("definitions", "poisoned tool, prompt and resource definitions", training::definitions());
}

#[test]
fn results_model_is_reproducible() {
    check("results", "instructions injected into tool results", training::results());
}
