//! Training the linear models: logistic regression (AdaGrad) over hashed n-grams, with
//! multiple-instance rounds so the model learns the attacking window rather than the
//! honest text around it, and a threshold chosen on out-of-fold scores.
//!
//! Deterministic: the same examples in the same order give the same weights, bit for bit.
//! `examples/train_models.rs` reads the training corpora and writes `model/*.model`.

use std::fmt::Write as _;

use super::features::{each_feature, windows};

/// One labelled training document: the strings a scanner would read from it.
#[derive(Debug, Clone)]
pub struct Example {
    /// The texts the model reads (descriptions, result texts).
    pub texts: Vec<String>,
    /// Whether the document is an attack.
    pub malicious: bool,
    /// The attack family, for the family table (attacks only; `None` leaves it out).
    pub family: Option<String>,
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// log2 of the weight table size.
    pub bucket_bits: u32,
    /// log2 of the family table size.
    pub family_bucket_bits: u32,
    /// Passes over the data per training round.
    pub epochs: usize,
    /// Multiple-instance rounds after the first, document-level one.
    pub rounds: usize,
    /// AdaGrad learning rate.
    pub learning_rate: f32,
    /// L2 penalty per update.
    pub l2: f32,
    /// Folds for choosing the threshold.
    pub folds: usize,
    /// Largest share of benign training documents (out of fold) the threshold lets through.
    pub false_positive_target: f32,
    /// Weights smaller than this are not written.
    pub prune: f32,
    /// Seed of the shuffles.
    pub seed: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bucket_bits: 18,
            family_bucket_bits: 15,
            epochs: 12,
            rounds: 2,
            learning_rate: 0.01,
            l2: 1e-4,
            folds: 5,
            false_positive_target: 0.01,
            prune: 0.002,
            seed: 0x005e_ed0f_3a2d,
        }
    }
}

/// A trained model with how it did out of fold.
#[derive(Debug, Clone)]
pub struct Trained {
    /// What the file says it is.
    pub title: String,
    settings: Settings,
    bias: f32,
    weights: Vec<f32>,
    threshold: f32,
    families: Vec<String>,
    family_bias: Vec<f32>,
    family_weights: Vec<f32>,
    /// Out-of-fold recall on the attacks at the threshold.
    pub fold_recall: f32,
    /// Out-of-fold share of benign documents at or above the threshold.
    pub fold_false_positives: f32,
    /// Out-of-fold scores of the attacks and of the benign documents, highest first.
    pub fold_scores: (Vec<f32>, Vec<f32>),
}

/// A document as the trainer sees it: each window's masked feature indices.
struct Prepared {
    windows: Vec<Vec<u32>>,
    malicious: bool,
}

fn prepare(example: &Example, mask: u32) -> Prepared {
    let mut normal = String::new();
    let mut out = Vec::new();
    for text in &example.texts {
        for window in windows(text) {
            let mut features = Vec::new();
            each_feature(&text[window], &mut normal, |hash, _, _| features.push(hash & mask));
            out.push(features);
        }
    }
    Prepared { windows: out, malicious: example.malicious }
}

/// A small deterministic generator for shuffles.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Logistic regression state.
struct Linear {
    bias: f32,
    weights: Vec<f32>,
    squares: Vec<f32>,
    bias_square: f32,
}

impl Linear {
    fn new(size: usize) -> Linear {
        Linear { bias: 0.0, weights: vec![0.0; size], squares: vec![0.0; size], bias_square: 0.0 }
    }

    fn logit(&self, features: &[u32]) -> f32 {
        self.bias + features.iter().map(|&i| self.weights[i as usize]).sum::<f32>()
    }

    /// `data`: (features, target, weight).
    fn fit(&mut self, data: &mut [(&[u32], f32, f32)], settings: &Settings, rng: &mut Rng) {
        for _ in 0..settings.epochs {
            rng.shuffle(data);
            for (features, target, weight) in data.iter() {
                let gradient = (sigmoid(self.logit(features)) - target) * weight;
                for &i in *features {
                    let i = i as usize;
                    let g = gradient + settings.l2 * self.weights[i];
                    self.squares[i] += g * g;
                    self.weights[i] -= settings.learning_rate * g / (self.squares[i].sqrt() + 1e-6);
                }
                self.bias_square += gradient * gradient;
                self.bias -= settings.learning_rate * gradient / (self.bias_square.sqrt() + 1e-6);
            }
        }
    }

    fn best_window<'p>(&self, doc: &'p Prepared) -> Option<(&'p [u32], f32)> {
        doc.windows.iter().map(|w| (w.as_slice(), self.logit(w))).max_by(|a, b| a.1.total_cmp(&b.1))
    }
}

/// Trains the binary model on `docs`: a document-level round, then rounds where each
/// attack contributes its best window and every benign window is a negative.
fn fit_binary(docs: &[&Prepared], settings: &Settings, rng: &mut Rng) -> Linear {
    let mut model = Linear::new(1 << settings.bucket_bits);
    let whole: Vec<(Vec<u32>, bool)> = docs.iter().map(|d| (d.windows.concat(), d.malicious)).collect();
    let attacks = docs.iter().filter(|d| d.malicious).count().max(1) as f32;
    let honest = (docs.len() as f32 - attacks).max(1.0);
    let mut data: Vec<(&[u32], f32, f32)> = whole
        .iter()
        .map(|(f, m)| (f.as_slice(), f32::from(u8::from(*m)), if *m { honest / attacks } else { 1.0 }))
        .collect();
    model.fit(&mut data, settings, rng);
    for _ in 0..settings.rounds {
        let positives: Vec<&[u32]> =
            docs.iter().filter(|d| d.malicious).filter_map(|d| model.best_window(d).map(|(w, _)| w)).collect();
        let negatives: Vec<&[u32]> =
            docs.iter().filter(|d| !d.malicious).flat_map(|d| d.windows.iter().map(Vec::as_slice)).collect();
        let boost = (negatives.len() as f32 / positives.len().max(1) as f32).max(1.0);
        let mut data: Vec<(&[u32], f32, f32)> = positives
            .into_iter()
            .map(|w| (w, 1.0, boost))
            .chain(negatives.into_iter().map(|w| (w, 0.0, 1.0)))
            .collect();
        model.fit(&mut data, settings, rng);
    }
    model
}

fn doc_score(model: &Linear, doc: &Prepared) -> f32 {
    model.best_window(doc).map_or(f32::NEG_INFINITY, |(_, score)| score)
}

/// Trains a model on `examples`.
pub fn train(title: &str, examples: &[Example], settings: &Settings) -> Trained {
    let mask = (1u32 << settings.bucket_bits) - 1;
    let prepared: Vec<Prepared> = examples.iter().map(|e| prepare(e, mask)).collect();
    let mut rng = Rng(settings.seed);

    // Out-of-fold scores choose the threshold.
    let mut order: Vec<usize> = (0..prepared.len()).collect();
    rng.shuffle(&mut order);
    let mut fold_of = vec![0usize; prepared.len()];
    for (rank, &index) in order.iter().enumerate() {
        fold_of[index] = rank % settings.folds.max(1);
    }
    let mut out_of_fold = vec![0f32; prepared.len()];
    for fold in 0..settings.folds {
        let training: Vec<&Prepared> =
            prepared.iter().enumerate().filter(|(i, _)| fold_of[*i] != fold).map(|(_, d)| d).collect();
        let model = fit_binary(&training, settings, &mut rng);
        for (index, doc) in prepared.iter().enumerate().filter(|(i, _)| fold_of[*i] == fold) {
            out_of_fold[index] = doc_score(&model, doc);
        }
    }
    let mut honest: Vec<f32> =
        prepared.iter().zip(&out_of_fold).filter(|(d, _)| !d.malicious).map(|(_, s)| *s).collect();
    honest.sort_by(|a, b| b.total_cmp(a));
    let allowed = (settings.false_positive_target * honest.len() as f32).floor() as usize;
    // Just above the highest benign score that must stay below, and never below even odds.
    let threshold = honest.get(allowed).map_or(0.0, |s| s + 1e-3).max(0.0);
    let mut attacks: Vec<f32> =
        prepared.iter().zip(&out_of_fold).filter(|(d, _)| d.malicious).map(|(_, s)| *s).collect();
    let fold_recall = attacks.iter().filter(|&&s| s >= threshold).count() as f32 / attacks.len().max(1) as f32;
    let fold_false_positives = honest.iter().filter(|&&s| s >= threshold).count() as f32 / honest.len().max(1) as f32;

    attacks.sort_by(|a, b| b.total_cmp(a));
    let all: Vec<&Prepared> = prepared.iter().collect();
    let model = fit_binary(&all, settings, &mut rng);

    // The family table: each attack's best window, labelled with its family.
    let mut families: Vec<String> = examples.iter().filter_map(|e| e.family.clone()).collect();
    families.sort();
    families.dedup();
    let family_mask = (1u32 << settings.family_bucket_bits) - 1;
    let classes = families.len();
    let mut family_bias = vec![0f32; classes];
    let mut family_weights = vec![0f32; (1usize << settings.family_bucket_bits) * classes];
    let mut labelled: Vec<(Vec<u32>, usize)> = Vec::new();
    let mut normal = String::new();
    for example in examples {
        let Some(class) = example.family.as_ref().and_then(|f| families.iter().position(|x| x == f)) else { continue };
        // Find the best window again as text, so the family table hashes at its own size.
        let mut best: Option<(f32, &str)> = None;
        for text in &example.texts {
            for window in windows(text) {
                let piece = &text[window];
                let mut sum = model.bias;
                each_feature(piece, &mut normal, |hash, _, _| sum += model.weights[(hash & mask) as usize]);
                if best.is_none_or(|(top, _)| sum > top) {
                    best = Some((sum, piece));
                }
            }
        }
        if let Some((_, piece)) = best {
            let mut features = Vec::new();
            each_feature(piece, &mut normal, |hash, _, _| features.push(hash & family_mask));
            labelled.push((features, class));
        }
    }
    if classes > 0 {
        for epoch in 0..settings.epochs * 2 {
            rng.shuffle(&mut labelled);
            let rate = settings.learning_rate / (1.0 + epoch as f32 * 0.5);
            for (features, class) in &labelled {
                let mut scores = family_bias.clone();
                for &i in features {
                    let row = i as usize * classes;
                    for (c, score) in scores.iter_mut().enumerate() {
                        *score += family_weights[row + c];
                    }
                }
                let top = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let total: f32 = scores.iter().map(|s| (s - top).exp()).sum();
                for c in 0..classes {
                    let p = (scores[c] - top).exp() / total;
                    let gradient = p - f32::from(u8::from(c == *class));
                    family_bias[c] -= rate * gradient;
                    for &i in features {
                        family_weights[i as usize * classes + c] -= rate * gradient;
                    }
                }
            }
        }
    }

    Trained {
        title: title.to_owned(),
        settings: settings.clone(),
        bias: model.bias,
        weights: model.weights,
        threshold,
        families,
        family_bias,
        family_weights,
        fold_recall,
        fold_false_positives,
        fold_scores: (attacks, honest),
    }
}

impl Trained {
    /// The chosen threshold, a logit.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The model file: a header, then one line per weight kept.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let s = &self.settings;
        let _ = writeln!(out, "# Warden linear model: {}.", self.title);
        let _ = writeln!(
            out,
            "# Generated by `cargo run --release -p warden-inspect --example train_models`; do not edit."
        );
        let _ = writeln!(
            out,
            "# Out of fold: recall {:.3}, benign at or above the threshold {:.4}.",
            self.fold_recall, self.fold_false_positives
        );
        let _ = writeln!(out, "buckets {}", s.bucket_bits);
        let _ = writeln!(out, "threshold {:.4}", self.threshold);
        let _ = writeln!(out, "bias {:.4}", self.bias);
        if !self.families.is_empty() {
            let _ = writeln!(out, "family_buckets {}", s.family_bucket_bits);
            let _ = writeln!(out, "families {}", self.families.join(" "));
            let biases: Vec<String> = self.family_bias.iter().map(|b| format!("{b:.4}")).collect();
            let _ = writeln!(out, "family_bias {}", biases.join(" "));
        }
        for (index, weight) in self.weights.iter().enumerate() {
            if weight.abs() >= s.prune {
                let _ = writeln!(out, "w {index:x} {weight:.4}");
            }
        }
        let classes = self.families.len();
        for (at, weight) in self.family_weights.iter().enumerate() {
            if weight.abs() >= s.prune * 5.0 {
                let _ = writeln!(out, "f {:x} {} {weight:.3}", at / classes, at % classes);
            }
        }
        out
    }
}
