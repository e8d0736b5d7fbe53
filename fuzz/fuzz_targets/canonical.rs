//! RFC 8785 canonical JSON of a definition: never panics, and is a fixed point (the canonical
//! form of the canonical form is itself), so a pinned hash cannot differ for the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_inspect::canonical::{definition_hash, to_canonical};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(canonical) = to_canonical(&value) else { return };
    let reread: serde_json::Value = serde_json::from_str(&canonical).expect("canonical JSON is JSON");
    assert_eq!(to_canonical(&reread).expect("canonical again"), canonical);
    assert_eq!(definition_hash(&reread).ok(), definition_hash(&value).ok());
});
