//! The result cleaner: never panics, leaves no C0/C1 control, escape, bidirectional, zero-width
//! or tag character (only `\n`, `\r` and `\t`), and is a fixed point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_inspect::sanitize::clean_text;

fn forbidden(c: char) -> bool {
    (c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        || ('\u{E0000}'..='\u{E007F}').contains(&c)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (once, _) = clean_text(text);
    if let Some(c) = once.chars().find(|c| forbidden(*c)) {
        panic!("{c:?} survived cleaning: {once:?}");
    }
    let (twice, removed) = clean_text(&once);
    assert_eq!(twice, once, "cleaning is not a fixed point");
    assert_eq!(removed.total(), 0);
});
