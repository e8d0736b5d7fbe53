//! Lookalike letters and invisible characters: the confusable skeleton of a name, and the
//! folded copy of a text that the rules are run over a second time.
//!
//! The table is small and hand-written (Cyrillic, Greek, Armenian and Latin lookalikes of
//! ASCII letters); fullwidth and mathematical alphanumerics are mapped by arithmetic. It
//! is not Unicode's full confusables list (UTS #39): it covers the letters that are used
//! to impersonate ASCII tool names, and nothing that needs a data file.

/// Lookalikes of ASCII letters, sorted by code point for binary search.
const LOOKALIKES: &[(char, char)] = &[
    ('\u{0131}', 'i'), // dotless i
    ('\u{017F}', 's'), // long s
    ('\u{0251}', 'a'), // Latin alpha
    ('\u{0261}', 'g'), // script g
    ('\u{026A}', 'i'), // small capital I
    ('\u{0274}', 'n'),
    ('\u{0280}', 'r'),
    ('\u{028F}', 'y'),
    ('\u{0299}', 'b'),
    ('\u{029C}', 'h'),
    ('\u{029F}', 'l'),
    ('\u{0391}', 'A'), // Greek capitals
    ('\u{0392}', 'B'),
    ('\u{0395}', 'E'),
    ('\u{0396}', 'Z'),
    ('\u{0397}', 'H'),
    ('\u{0399}', 'I'),
    ('\u{039A}', 'K'),
    ('\u{039C}', 'M'),
    ('\u{039D}', 'N'),
    ('\u{039F}', 'O'),
    ('\u{03A1}', 'P'),
    ('\u{03A4}', 'T'),
    ('\u{03A5}', 'Y'),
    ('\u{03A7}', 'X'),
    ('\u{03B1}', 'a'), // Greek small letters
    ('\u{03B3}', 'y'),
    ('\u{03B5}', 'e'),
    ('\u{03B9}', 'i'),
    ('\u{03BA}', 'k'),
    ('\u{03BD}', 'v'),
    ('\u{03BF}', 'o'),
    ('\u{03C1}', 'p'),
    ('\u{03C4}', 't'),
    ('\u{03C5}', 'u'),
    ('\u{03C7}', 'x'),
    ('\u{03C9}', 'w'),
    ('\u{0405}', 'S'), // Cyrillic capitals
    ('\u{0406}', 'I'),
    ('\u{0408}', 'J'),
    ('\u{0410}', 'A'),
    ('\u{0412}', 'B'),
    ('\u{0415}', 'E'),
    ('\u{041A}', 'K'),
    ('\u{041C}', 'M'),
    ('\u{041D}', 'H'),
    ('\u{041E}', 'O'),
    ('\u{0420}', 'P'),
    ('\u{0421}', 'C'),
    ('\u{0422}', 'T'),
    ('\u{0423}', 'Y'),
    ('\u{0425}', 'X'),
    ('\u{0430}', 'a'), // Cyrillic small letters
    ('\u{0432}', 'b'),
    ('\u{0435}', 'e'),
    ('\u{043A}', 'k'),
    ('\u{043C}', 'm'),
    ('\u{043D}', 'h'),
    ('\u{043E}', 'o'),
    ('\u{0440}', 'p'),
    ('\u{0441}', 'c'),
    ('\u{0442}', 't'),
    ('\u{0443}', 'y'),
    ('\u{0445}', 'x'),
    ('\u{0451}', 'e'),
    ('\u{0455}', 's'),
    ('\u{0456}', 'i'),
    ('\u{0457}', 'i'),
    ('\u{0458}', 'j'),
    ('\u{04AE}', 'Y'),
    ('\u{04AF}', 'y'),
    ('\u{04BB}', 'h'),
    ('\u{04C0}', 'l'),
    ('\u{04CF}', 'l'),
    ('\u{0501}', 'd'),
    ('\u{051B}', 'q'),
    ('\u{051D}', 'w'),
    ('\u{0570}', 'h'), // Armenian
    ('\u{0578}', 'n'),
    ('\u{057D}', 'u'),
    ('\u{0585}', 'o'),
    ('\u{1D00}', 'a'), // small capitals
    ('\u{1D04}', 'c'),
    ('\u{1D05}', 'd'),
    ('\u{1D07}', 'e'),
    ('\u{1D0A}', 'j'),
    ('\u{1D0B}', 'k'),
    ('\u{1D0D}', 'm'),
    ('\u{1D0F}', 'o'),
    ('\u{1D18}', 'p'),
    ('\u{1D1B}', 't'),
    ('\u{1D1C}', 'u'),
    ('\u{1D20}', 'v'),
    ('\u{1D21}', 'w'),
    ('\u{1D22}', 'z'),
    ('\u{210A}', 'g'), // letterlike symbols
    ('\u{210E}', 'h'),
    ('\u{2113}', 'l'),
    ('\u{212F}', 'e'),
    ('\u{2134}', 'o'),
    ('\u{2160}', 'I'),
    ('\u{217C}', 'l'),
    ('\u{A731}', 's'),
];

/// The ASCII letter or digit `c` imitates, if it is a lookalike of one.
pub(super) fn lookalike(c: char) -> Option<char> {
    let cp = u32::from(c);
    match cp {
        // Fullwidth ASCII.
        0xFF01..=0xFF5E => char::from_u32(cp - 0xFEE0),
        // Mathematical alphanumerics: 13 styles of A–Z a–z, then 5 of 0–9.
        0x1D400..=0x1D6A3 => {
            let index = (cp - 0x1D400) % 52;
            let base = if index < 26 { u32::from(b'A') + index } else { u32::from(b'a') + index - 26 };
            char::from_u32(base)
        }
        0x1D7CE..=0x1D7FF => char::from_u32(u32::from(b'0') + (cp - 0x1D7CE) % 10),
        _ => LOOKALIKES.binary_search_by_key(&c, |&(from, _)| from).ok().map(|i| LOOKALIKES[i].1),
    }
}

/// Characters that render as nothing (or nothing meaningful) but reach the model.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F..=0x9F
            | 0xAD
            | 0x115F | 0x1160 | 0x180E | 0x3164 | 0xFFA0
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x206F
            | 0xFE00..=0xFE0F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0xE0000..=0xE007F
            | 0xE0100..=0xE01EF
    )
}

/// The confusable skeleton of a name: two names with the same skeleton look alike.
///
/// Built in order: invisible characters are dropped; fullwidth, mathematical and
/// lookalike letters (Cyrillic `а е о р с у х і`, Greek `ο α ρ ι κ`, Armenian `օ`,
/// small capitals, `ı`, `ℓ`, …) become the ASCII letter they imitate; the result is
/// lowercased; the digits `0` and `1` become `o` and `l`; and the separators `_`, `-`,
/// `.` and white space are removed. So `send_email`, `send-email`, `SendEmail` and
/// `send_emaіl` (Cyrillic `і`) share the skeleton `sendemail`.
///
/// ```
/// use warden_inspect::poison::skeleton;
///
/// assert_eq!(skeleton("send_emaіl"), "sendemail");
/// assert_eq!(skeleton("get-file"), skeleton("get_file"));
/// assert_eq!(skeleton("t00l"), "tool");
/// ```
pub fn skeleton(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if is_invisible(c) || matches!(c, '_' | '-' | '.') || c.is_whitespace() {
            continue;
        }
        let c = lookalike(c).unwrap_or(c);
        for lower in c.to_lowercase() {
            out.push(match lower {
                '0' => 'o',
                '1' => 'l',
                other => other,
            });
        }
    }
    out
}

/// A copy of a text with invisible characters and terminal escapes removed, Unicode tag
/// characters decoded to the ASCII they spell, and lookalike letters folded to ASCII;
/// with, for each byte of the copy, the offset in the original it came from.
pub(super) struct Folded {
    pub(super) text: String,
    /// `offsets[i]` is where byte `i` of `text` came from; one extra entry holds the
    /// original's length, so a span `a..b` of the copy is `offsets[a]..offsets[b]`.
    pub(super) offsets: Vec<usize>,
}

/// Whether [`fold`] could change `text`: it has non-ASCII or control characters.
pub(super) fn needs_fold(text: &str) -> bool {
    text.bytes().any(|b| b >= 0x80 || (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0x7F)
}

/// Folds `text` (see [`Folded`]); `None` when folding changes nothing.
pub(super) fn fold(text: &str) -> Option<Folded> {
    let mut out = String::with_capacity(text.len());
    let mut offsets = Vec::with_capacity(text.len() + 1);
    let mut changed = false;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let cp = u32::from(c);
        let replacement = match cp {
            // A tag character spells the ASCII character 0xE0000 below it.
            0xE0020..=0xE007E => char::from_u32(cp - 0xE0000),
            0x1B => {
                // Drop a CSI sequence whole, so `ig\e[8mnore` folds to `ignore`.
                if chars.peek().is_some_and(|&(_, next)| next == '[') {
                    chars.next();
                    for _ in 0..32 {
                        match chars.next() {
                            Some((_, '\x40'..='\x7E')) | None => break,
                            Some(_) => {}
                        }
                    }
                }
                None
            }
            _ if is_invisible(c) => None,
            _ => Some(lookalike(c).unwrap_or(c)),
        };
        match replacement {
            Some(r) => {
                if r != c {
                    changed = true;
                }
                let mut buf = [0; 4];
                let encoded = r.encode_utf8(&mut buf);
                offsets.extend(std::iter::repeat_n(at, encoded.len()));
                out.push_str(encoded);
            }
            None => changed = true,
        }
    }
    if !changed {
        return None;
    }
    offsets.push(text.len());
    Some(Folded { text: out, offsets })
}
