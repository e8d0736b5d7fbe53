//! Floors on the held-out splits (`corpus/heldout/`), which were written from a brief of the
//! taxonomy by writers who did not see the rules, the models or the other corpora. Measured,
//! never tuned on. The floors are what this landing reaches, so a change that loses ground
//! fails; `docs/detection.md` gives the figures and the targets still ahead.

#[path = "../corpus/heldout.rs"]
mod heldout;

#[test]
fn definitions_held_out_floors() {
    let split = heldout::definitions();
    let s = &split.combined;
    let (held, total) = s.attacks();
    let recall = held as f64 / total as f64;
    assert!(recall >= 0.9, "held-out poisoning recall {recall:.3} < 0.9: {:?}", s.families);
    let steering = s.recall_of(&["shadowing", "preference_manipulation"]);
    assert!(steering >= 0.9, "shadowing and preference manipulation recall {steering:.3} < 0.9");
    assert!(s.false_rate() <= 0.02, "false holds {:.3} > 0.02: {:?}", s.false_rate(), s.false_flags);
    // The model adds to the rules, never replaces them.
    assert!(held >= split.rules.attacks().0);
}

#[test]
fn results_held_out_floors() {
    let split = heldout::results();
    let s = &split.combined;
    let (flagged, total) = s.attacks();
    let recall = flagged as f64 / total as f64;
    assert!(recall >= 0.7, "held-out injected-result recall {recall:.3} < 0.7: {:?}", s.families);
    assert!(s.false_rate() <= 0.045, "benign results flagged {:.3} > 0.045: {:?}", s.false_rate(), s.false_flags);
}

/// The second results split, written after the first had been measured many times, measured
/// once when it landed (`docs/detection.md`).
#[test]
fn second_results_held_out_floors() {
    let split = heldout::results_second();
    let s = &split.combined;
    let (flagged, total) = s.attacks();
    let recall = flagged as f64 / total as f64;
    assert!(recall >= 0.67, "second held-out injected-result recall {recall:.3} < 0.67: {:?}", s.families);
    assert!(s.false_rate() <= 0.036, "benign results flagged {:.3} > 0.036: {:?}", s.false_rate(), s.false_flags);
}
