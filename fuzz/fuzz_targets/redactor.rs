//! The secret redactor on arbitrary text: never panics, does not grow text without bound, and
//! leaves nothing to redact behind (redacting its output again changes nothing).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use warden_inspect::SecretScanner;

fn scanner() -> &'static SecretScanner {
    static S: OnceLock<SecretScanner> = OnceLock::new();
    S.get_or_init(SecretScanner::new)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (once, found) = scanner().redact_str(text);
    // Each redaction writes a marker of bounded size in place of what it removed.
    assert!(once.len() <= text.len() + 64 * found.total as usize, "the output grew without bound");
    let (twice, again) = scanner().redact_str(&once);
    assert_eq!(again.total, 0, "a redacted text still held a secret: {once:?}");
    assert_eq!(twice, once);
});
