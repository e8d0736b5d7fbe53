//! What a reviewer is shown of a finding: a bounded excerpt with invisible characters
//! written out, and the text hidden in tag characters or variation selectors.

use super::confusables::is_invisible;

/// Longest excerpt, in characters.
pub const MAX_EXCERPT_CHARS: usize = 120;

/// Characters of context shown before a match.
const CONTEXT_BEFORE: usize = 24;

/// Longest decoded hidden text, in characters.
const MAX_DECODED_CHARS: usize = 4096;

/// An excerpt of `text` around `span`: at most [`MAX_EXCERPT_CHARS`] characters, with
/// control, invisible and non-printing characters written as `\u{…}` (tab, newline and
/// carriage return as `\t`, `\n`, `\r`) so a reviewer sees them. A cut is marked `…`.
pub(super) fn excerpt(text: &str, span: &std::ops::Range<usize>) -> String {
    let start = floor_boundary(text, span.start.min(text.len()));
    let from = text[..start].char_indices().rev().nth(CONTEXT_BEFORE - 1).map_or(0, |(i, _)| i);
    let mut out = String::new();
    let mut used = 0;
    if from > 0 {
        out.push('…');
        used += 1;
    }
    for c in text[from..].chars() {
        let piece = escape(c);
        let len = piece.chars().count();
        if used + len > MAX_EXCERPT_CHARS - 1 {
            out.push('…');
            return out;
        }
        out.push_str(&piece);
        used += len;
    }
    out
}

/// `c` as a reviewer should see it.
pub(super) fn escape(c: char) -> String {
    match c {
        '\n' => "\\n".to_owned(),
        '\r' => "\\r".to_owned(),
        '\t' => "\\t".to_owned(),
        '\\' => "\\\\".to_owned(),
        _ if is_invisible(c) || is_unusual(c) => format!("\\u{{{:x}}}", u32::from(c)),
        _ => c.to_string(),
    }
}

/// Private-use, unassigned-looking and other characters that may not render.
fn is_unusual(c: char) -> bool {
    matches!(u32::from(c), 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0x061C | 0x3164 | 0xFFF0..=0xFFF8)
}

/// The ASCII text spelled by the Unicode tag characters in `text`.
pub(super) fn decode_tags(text: &str) -> String {
    text.chars()
        .filter_map(|c| match u32::from(c) {
            cp @ 0xE0020..=0xE007E => char::from_u32(cp - 0xE0000),
            _ => None,
        })
        .take(MAX_DECODED_CHARS)
        .collect()
}

/// The bytes encoded by a run of variation selectors (`U+FE00–FE0F` are 0–15,
/// `U+E0100–E01EF` are 16–255), read as UTF-8 where they can be.
pub(super) fn decode_variation_selectors(text: &str) -> String {
    let bytes: Vec<u8> = text
        .chars()
        .filter_map(|c| match u32::from(c) {
            cp @ 0xFE00..=0xFE0F => u8::try_from(cp - 0xFE00).ok(),
            cp @ 0xE0100..=0xE01EF => u8::try_from(cp - 0xE0100 + 16).ok(),
            _ => None,
        })
        .take(MAX_DECODED_CHARS)
        .collect();
    String::from_utf8_lossy(&bytes).chars().map(escape).collect()
}

/// The largest char boundary at or before `at`.
pub(super) fn floor_boundary(text: &str, mut at: usize) -> usize {
    if at >= text.len() {
        return text.len();
    }
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}
