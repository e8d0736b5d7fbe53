//! The checks a PII candidate must pass beyond its shape: check digits, registries of
//! valid lengths and number ranges, and the context that tells a phone number from a
//! date or a version string.

use std::net::Ipv6Addr;

/// The digits of `text`, or `None` past `max` of them.
fn digits(text: &str, max: usize) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0').collect();
    (digits.len() <= max).then_some(digits)
}

/// The Luhn check every payment card number carries in its last digit.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A payment card number: 13–19 digits, one kind of separator at most, a known issuer
/// prefix (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro) and a valid
/// Luhn check digit.
pub(super) fn is_payment_card(text: &str) -> bool {
    let has_space = text.contains(' ');
    let has_dash = text.contains('-');
    if has_space && has_dash {
        return false;
    }
    let Some(d) = digits(text, 19) else { return false };
    if d.len() < 13 {
        return false;
    }
    let prefix = |n: usize| d.iter().take(n).fold(0u32, |acc, &x| acc * 10 + u32::from(x));
    let known_issuer = match d[0] {
        4 => true,
        5 => (51..=55).contains(&prefix(2)) || prefix(2) == 50 || (56..=58).contains(&prefix(2)),
        2 => (2221..=2720).contains(&prefix(4)),
        3 => matches!(prefix(2), 34 | 37 | 35 | 36 | 38 | 39 | 30),
        6 => true,
        _ => false,
    };
    known_issuer && luhn(&d) && !d.iter().all(|&x| x == d[0])
}

/// The length of an IBAN in each country that issues them (the SWIFT registry).
#[rustfmt::skip]
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24), ("AE", 23), ("AL", 28), ("AT", 20), ("AZ", 28), ("BA", 20), ("BE", 16), ("BG", 22),
    ("BH", 22), ("BR", 29), ("CH", 21), ("CR", 22), ("CY", 28), ("CZ", 24), ("DE", 22), ("DK", 18),
    ("DO", 28), ("EE", 20), ("EG", 29), ("ES", 24), ("FI", 18), ("FO", 18), ("FR", 27), ("GB", 22),
    ("GE", 22), ("GI", 23), ("GL", 18), ("GR", 27), ("GT", 28), ("HR", 21), ("HU", 28), ("IE", 22),
    ("IL", 23), ("IS", 26), ("IT", 27), ("JO", 30), ("KW", 30), ("KZ", 20), ("LB", 28), ("LI", 21),
    ("LT", 20), ("LU", 20), ("LV", 21), ("MC", 27), ("MD", 24), ("ME", 22), ("MK", 19), ("MR", 27),
    ("MT", 31), ("MU", 30), ("NL", 18), ("NO", 15), ("PK", 24), ("PL", 28), ("PS", 29), ("PT", 25),
    ("QA", 29), ("RO", 24), ("RS", 22), ("SA", 24), ("SE", 24), ("SI", 19), ("SK", 24), ("SM", 27),
    ("TN", 24), ("TR", 26), ("UA", 29), ("VG", 24), ("XK", 20),
];

/// The end (in bytes of `text`) of the IBAN that `text` starts with, if any: the
/// country's registered length, and the ISO 7064 mod-97 check. The candidate may run on
/// into a following word (`… 00 AND`); only the country's length is taken, and it must
/// end where a group of the printed form ends.
pub(super) fn iban_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let country = text.get(..2)?;
    let &(_, length) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country)?;
    let mut chars = Vec::with_capacity(length);
    let mut end = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b' ' {
            continue;
        }
        chars.push(b);
        end = i + 1;
        if chars.len() == length {
            break;
        }
    }
    if chars.len() != length || bytes.get(end).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    // Move the country and check digits to the end; letters count as 10..35.
    let mut remainder: u32 = 0;
    for &b in chars[4..].iter().chain(&chars[..4]) {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return None,
        };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    (remainder == 1).then_some(end)
}

/// A US Social Security number outside the ranges never issued: area 000, 666 and
/// 900–999, group 00, serial 0000.
pub(super) fn is_us_ssn(text: &str) -> bool {
    let Some(d) = digits(text, 9) else { return false };
    if d.len() != 9 {
        return false;
    }
    let number = |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |acc, &x| acc * 10 + u32::from(x));
    let (area, group, serial) = (number(0..3), number(3..5), number(5..9));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// An IPv4 address: four decimal octets of at most 255, without leading zeros, that is
/// not part of a longer dotted run (`10.0.19045.1234`, `1.2.3.4.5`).
pub(super) fn is_ipv4(text: &str, before: Option<u8>, after: &[u8]) -> bool {
    if before.is_some_and(|b| b == b'.' || b.is_ascii_alphanumeric()) {
        return false;
    }
    if after.first() == Some(&b'.') && after.get(1).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    let mut parts = 0;
    for part in text.split('.') {
        parts += 1;
        let valid = !part.is_empty()
            && part.len() <= 3
            && !(part.len() > 1 && part.starts_with('0'))
            && part.parse::<u16>().is_ok_and(|v| v <= 255);
        if !valid {
            return false;
        }
    }
    parts == 4
}

/// An IPv6 address that parses as one, is not `::` alone, and is not glued to other
/// hex, colons or dots (C++ paths, MAC addresses, times).
pub(super) fn is_ipv6(text: &str, before: Option<u8>, after: &[u8]) -> bool {
    if before.is_some_and(|b| b == b':' || b == b'.' || b.is_ascii_alphanumeric())
        || after.first().is_some_and(|&b| b == b':' || b.is_ascii_alphanumeric())
    {
        return false;
    }
    text.len() > 2 && text.parse::<Ipv6Addr>().is_ok()
}

/// A phone number: E.164 (`+` and 8–15 digits, any of ` .-` between groups) or a
/// national format whose digit groups have a shape phone numbers are printed in
/// (`(555) 123-4567`, `555-123-4567`, `020 7946 0958`, `01 23 45 67 89`), with one kind
/// of separator. Dates, versions, times, UUID pieces and long runs of digits are not.
pub(super) fn is_phone(text: &str, before: Option<u8>, after: &[u8]) -> bool {
    if before.is_some_and(|b| matches!(b, b'.' | b'-' | b'/' | b':' | b'_') || b.is_ascii_alphanumeric())
        || after.first().is_some_and(|&b| matches!(b, b'-' | b'/' | b':' | b'_') || b.is_ascii_alphanumeric())
        || (after.first() == Some(&b'.') && after.get(1).is_some_and(u8::is_ascii_digit))
    {
        return false;
    }
    let Some(d) = digits(text, 15) else { return false };
    if let Some(rest) = text.strip_prefix('+') {
        let separators: Vec<u8> = rest.bytes().filter(|b| matches!(b, b' ' | b'.' | b'-')).collect();
        let one_kind = separators.windows(2).all(|w| w[0] == w[1]) || !separators.contains(&b'.');
        return (8..=15).contains(&d.len()) && one_kind;
    }
    if !(10..=11).contains(&d.len()) {
        return false;
    }
    // Group lengths, with a parenthesised area code as the first group.
    let groups: Vec<usize> = text
        .split([' ', '.', '-'])
        .filter(|g| !g.is_empty())
        .map(|g| g.trim_matches(|c| c == '(' || c == ')').len())
        .collect();
    let separators: Vec<char> = text.chars().filter(|c| matches!(c, ' ' | '.' | '-')).collect();
    let parenthesised = text.starts_with('(');
    let one_kind = separators.windows(2).all(|w| w[0] == w[1]);
    let area_code_then_number = parenthesised && separators.len() == 2 && separators[0] == ' ';
    if !(one_kind || area_code_then_number) {
        return false;
    }
    let leading_zero = text.trim_start_matches('(').starts_with('0');
    match groups.as_slice() {
        // North America: (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567.
        [3, 3, 4] => true,
        [1, 3, 3, 4] => text.starts_with('1'),
        // Trunk-prefixed national numbers (UK, DE, FR, …) never start with a year.
        [3, 4, 4] | [4, 3, 4] | [4, 3, 3] | [5, 6] | [4, 6] | [4, 7] | [3, 7] | [3, 8] => leading_zero,
        [2, 2, 2, 2, 2] => leading_zero && separators[0] != '-',
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_digits() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
    }

    #[test]
    fn iban_lengths_and_checks() {
        assert_eq!(iban_end("DE89370400440532013000"), Some(22));
        assert_eq!(iban_end("DE89 3704 0044 0532 0130 00 AND"), Some(27));
        assert_eq!(iban_end("DE88370400440532013000"), None);
        assert_eq!(iban_end("ZZ89370400440532013000"), None);
        assert_eq!(iban_end("DE8937040044053201300"), None);
    }

    #[test]
    fn ssn_ranges() {
        assert!(is_us_ssn("123-45-6789"));
        for bad in ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"] {
            assert!(!is_us_ssn(bad), "{bad}");
        }
    }
}
