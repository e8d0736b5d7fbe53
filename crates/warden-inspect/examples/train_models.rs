//! Trains the linear models shipped in `model/` from the training corpora, never from the
//! held-out splits (`corpus/heldout/`):
//!
//! - `model/definitions.model` from `corpus/malicious.jsonl`, `corpus/benign.jsonl` and
//!   `corpus/train/definitions-*.jsonl`;
//! - `model/results.model` from `corpus/results/*.jsonl` and `corpus/train/results.jsonl`.
//!
//! ```text
//! cargo run --release -p warden-inspect --example train_models
//! ```
//!
//! Deterministic; `tests/models.rs` retrains and checks the shipped files are what this writes.

use warden_inspect::model::train::{Settings, train};

#[path = "../corpus/training.rs"]
mod training;

fn main() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/model");
    for (name, title, examples) in [
        ("definitions", "poisoned tool, prompt and resource definitions", training::definitions()),
        ("results", "instructions injected into tool results", training::results()),
    ] {
        let attacks = examples.iter().filter(|e| e.malicious).count();
        let mut settings = Settings::default();
        // Experiments only: the shipped files use the defaults.
        let env = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<f32>().ok());
        if let Some(v) = env("WARDEN_TRAIN_RATE") {
            settings.learning_rate = v;
        }
        if let Some(v) = env("WARDEN_TRAIN_L2") {
            settings.l2 = v;
        }
        if let Some(v) = env("WARDEN_TRAIN_EPOCHS") {
            settings.epochs = v as usize;
        }
        if let Some(v) = env("WARDEN_TRAIN_ROUNDS") {
            settings.rounds = v as usize;
        }
        let trained = train(title, &examples, &settings);
        let path = format!("{root}/{name}.model");
        let text = trained.to_text();
        if let Err(error) = std::fs::write(&path, &text) {
            eprintln!("{path}: {error}");
            std::process::exit(1);
        }
        println!(
            "{name}: {} examples ({attacks} attacks), out of fold recall {:.3}, benign flagged {:.4}, {} lines",
            examples.len(),
            trained.fold_recall,
            trained.fold_false_positives,
            text.lines().count()
        );
        if std::env::var_os("WARDEN_TRAIN_VERBOSE").is_some() {
            let quantiles = |scores: &[f32]| -> Vec<String> {
                [0.0, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9]
                    .iter()
                    .map(|q| format!("{:.2}", scores[((scores.len() as f32 - 1.0) * q) as usize]))
                    .collect()
            };
            println!("  threshold {:.3}", trained.threshold());
            println!("  attacks, highest first at 0/1/2/5/10/25/50/75/90%: {:?}", quantiles(&trained.fold_scores.0));
            println!("  benign, highest first at 0/1/2/5/10/25/50/75/90%: {:?}", quantiles(&trained.fold_scores.1));
        }
    }
}
