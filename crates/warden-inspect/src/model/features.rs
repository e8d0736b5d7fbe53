//! What the linear models read: windows of text and the hashed n-grams in each.
//!
//! A window is a run of sentences between [`MIN_WINDOW_BYTES`] and [`MAX_WINDOW_BYTES`]:
//! an attack is usually one or two sentences inside honest text, and a window keeps it from
//! being outweighed by the honest rest. The features of a window are its lowercased words,
//! word pairs, character 4-grams (digits read as `0`, whitespace runs as one space) and one
//! feature per word in capitals. Each is hashed (FNV-1a, seeded by kind) to 32 bits; a model
//! masks the hash to its table size.

use std::ops::Range;

/// Sentences are gathered into a window until it holds at least this many bytes.
pub const MIN_WINDOW_BYTES: usize = 80;
/// A longer sentence is cut at whitespace into windows of at most this many bytes.
pub const MAX_WINDOW_BYTES: usize = 512;

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// The kind of a feature, which seeds its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A lowercased word.
    Word,
    /// Two adjacent words.
    Pair,
    /// Four characters.
    Chars,
    /// A word written in capitals.
    Capitals,
}

impl Kind {
    fn seed(self) -> u32 {
        let tag = match self {
            Kind::Word => b'w',
            Kind::Pair => b'p',
            Kind::Chars => b'c',
            Kind::Capitals => b'u',
        };
        fnv(FNV_OFFSET, &[tag])
    }
}

fn fnv(mut hash: u32, bytes: &[u8]) -> u32 {
    for &byte in bytes {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Byte ranges of the windows of `text`, in order, covering it.
pub fn windows(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        let boundary = byte == b'\n'
            || (matches!(byte, b'.' | b'!' | b'?' | b';' | b':')
                && bytes.get(at + 1).is_none_or(|next| next.is_ascii_whitespace()));
        at += 1;
        if boundary && at - start >= MIN_WINDOW_BYTES {
            out.push(start..at);
            start = at;
        } else if at - start >= MAX_WINDOW_BYTES {
            // Cut at the last whitespace, on a character boundary.
            let piece = &text[start..floor(text, at)];
            let cut = piece.rfind(char::is_whitespace).filter(|&cut| cut > MIN_WINDOW_BYTES).unwrap_or(piece.len());
            let end = start + cut;
            if end > start {
                out.push(start..end);
                start = end;
            }
            at = at.max(start);
        }
    }
    if start < bytes.len() {
        match out.last_mut() {
            // A short tail joins the window before it.
            Some(last) if bytes.len() - start < MIN_WINDOW_BYTES / 4 => last.end = bytes.len(),
            _ => out.push(start..bytes.len()),
        }
    }
    out
}

fn floor(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Lowercases `text` into `out`, digits as `0`, whitespace runs as one space.
pub fn normalize(text: &str, out: &mut String) {
    out.clear();
    let mut space = true;
    for c in text.chars() {
        if c.is_whitespace() {
            if !space {
                out.push(' ');
                space = true;
            }
            continue;
        }
        space = false;
        if c.is_ascii() {
            let c = c.to_ascii_lowercase();
            out.push(if c.is_ascii_digit() { '0' } else { c });
        } else {
            out.extend(c.to_lowercase());
        }
    }
}

/// Calls `each(hash, kind, text)` for every feature of one window. `normal` is scratch
/// space. `text` is the n-gram for words and pairs (for explanations), empty otherwise.
pub fn each_feature(window: &str, normal: &mut String, mut each: impl FnMut(u32, Kind, &str)) {
    for word in window.split(|c: char| !c.is_alphanumeric()) {
        if word.len() >= 3 && word.chars().all(|c| c.is_uppercase()) {
            each(Kind::Capitals.seed(), Kind::Capitals, "");
        }
    }
    normalize(window, normal);
    let normal = normal.as_str();

    // Words and pairs.
    let word_seed = Kind::Word.seed();
    let pair_seed = Kind::Pair.seed();
    let mut previous: Option<(&str, u32)> = None;
    for word in normal.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()) {
        each(fnv(word_seed, word.as_bytes()), Kind::Word, word);
        if let Some((before, partial)) = previous {
            let hash = fnv(partial, word.as_bytes());
            let start = before.as_ptr() as usize - normal.as_ptr() as usize;
            let end = word.as_ptr() as usize - normal.as_ptr() as usize + word.len();
            each(hash, Kind::Pair, &normal[start..end]);
        }
        previous = Some((word, fnv(fnv(pair_seed, word.as_bytes()), b" ")));
    }

    // Character 4-grams, on character boundaries.
    let char_seed = Kind::Chars.seed();
    let mut starts = [0usize; 5];
    let mut seen = 0usize;
    for (at, _) in normal.char_indices().chain(std::iter::once((normal.len(), ' '))) {
        starts[seen % 5] = at;
        seen += 1;
        if seen >= 5 {
            let from = starts[(seen - 5) % 5];
            each(fnv(char_seed, &normal.as_bytes()[from..at]), Kind::Chars, "");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_text_and_respect_the_bounds() {
        let text = "Short. ".repeat(40) + &"word ".repeat(300) + "tail";
        let found = windows(&text);
        assert_eq!(found.first().map(|w| w.start), Some(0));
        assert_eq!(found.last().map(|w| w.end), Some(text.len()));
        for pair in found.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
        }
        assert!(found.iter().all(|w| w.len() <= MAX_WINDOW_BYTES + MIN_WINDOW_BYTES / 4));
        assert!(windows("").is_empty());
        let multibyte = "é".repeat(700);
        for window in windows(&multibyte) {
            assert!(multibyte.is_char_boundary(window.start) && multibyte.is_char_boundary(window.end));
        }
    }

    #[test]
    fn features_are_words_pairs_grams_and_capitals() {
        let mut normal = String::new();
        let mut words = Vec::new();
        let mut counts = [0usize; 4];
        each_feature("Call IMPORTANT tool 42", &mut normal, |_, kind, text| {
            counts[kind as usize] += 1;
            if kind != Kind::Chars && kind != Kind::Capitals {
                words.push(text.to_owned());
            }
        });
        assert_eq!(words, ["call", "important", "call important", "tool", "important tool", "00", "tool 00"]);
        assert_eq!(counts[Kind::Capitals as usize], 1);
        assert_eq!(counts[Kind::Chars as usize], "call important tool 00".len() - 3);
    }
}
