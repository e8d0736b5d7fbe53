//! RFC 8785 (JSON Canonicalization Scheme) serialization and the definition hashes pins are made of.
//!
//! A pin records `sha256:<hex>` of a tool, prompt or resource template definition as
//! reviewed. Two listings of the same definition must hash alike whatever their key order or
//! whitespace, and any change a client could see (a character of a description, an
//! annotation, a schema default, `_meta`, an icon) must change the hash. JCS gives both: it
//! sorts object members by the UTF-16 code units of their names, writes no whitespace, escapes
//! only what JSON requires and writes numbers as ECMAScript's `Number.prototype.toString` does.
//!
//! Two inputs are refused rather than hashed, so a definition whose hash would be ambiguous is
//! treated by the caller as changed:
//!
//! - an integer that no IEEE 754 double holds exactly (for instance 2^53 + 1): JCS works on
//!   doubles, so `9007199254740993` and `9007199254740992` would hash alike, and a client in
//!   JavaScript would read both as the latter;
//! - nesting deeper than [`MAX_DEPTH`] arrays and objects, which also bounds recursion.
//!
//! ```
//! use warden_inspect::canonical::{definition_hash, to_canonical};
//! let a = serde_json::json!({"name": "search", "inputSchema": {"type": "object"}});
//! let b: serde_json::Value =
//!     serde_json::from_str(r#"{ "inputSchema": {"type":"object"}, "name":"search" }"#).unwrap();
//! assert_eq!(to_canonical(&a).unwrap(), r#"{"inputSchema":{"type":"object"},"name":"search"}"#);
//! assert_eq!(definition_hash(&a).unwrap(), definition_hash(&b).unwrap());
//! ```

use std::cmp::Ordering;
use std::fmt::{self, Write as _};

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha256};

/// How many arrays and objects may nest inside one another. The 129th level is refused.
pub const MAX_DEPTH: usize = 128;

/// The largest integer below which every integer is exactly a double: 2^53.
const EXACT_INTEGER_LIMIT: u64 = 1 << 53;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanonicalError {
    /// Arrays and objects nest deeper than [`MAX_DEPTH`]; `at` is the JSON pointer of the
    /// first container past the limit.
    TooDeep { at: String },
    /// An integer that no double holds exactly, so its canonical form would be ambiguous.
    InexactInteger { at: String, number: String },
}

impl fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanonicalError::TooDeep { at } => {
                write!(f, "the JSON at `{at}` nests deeper than {MAX_DEPTH} levels, so it is not hashed")
            }
            CanonicalError::InexactInteger { at, number } => write!(
                f,
                "the integer {number} at `{at}` has no exact IEEE 754 double form, so its canonical \
                 (RFC 8785) form would be ambiguous and it is not hashed"
            ),
        }
    }
}

impl std::error::Error for CanonicalError {}

impl CanonicalError {
    /// Prefixes the pointer with one parent segment, as the error travels up the tree.
    fn within(mut self, segment: &str) -> CanonicalError {
        let at = match &mut self {
            CanonicalError::TooDeep { at } | CanonicalError::InexactInteger { at, .. } => at,
        };
        let escaped = segment.replace('~', "~0").replace('/', "~1");
        *at = format!("/{escaped}{at}");
        self
    }
}

/// RFC 8785 (JCS) serialization of a JSON value.
///
/// Object members are sorted by the UTF-16 code units of their names; there is no
/// whitespace; strings escape only `"`, `\` and the C0 controls (`\b \t \n \f \r` by name,
/// others as `\u00XX` in lowercase hex); numbers are written as ECMAScript writes a double
/// (`1e+30`, `4.5`, `0.002`, `1e-7`, `-0` as `0`).
///
/// Integers that no double holds exactly (|n| > 2^53 and not a multiple of a large enough
/// power of two) and nesting beyond [`MAX_DEPTH`] are errors; see the module docs.
pub fn to_canonical(value: &Value) -> Result<String, CanonicalError> {
    let mut out = String::new();
    write_value(&mut out, value, 0)?;
    Ok(out)
}

/// `sha256:<lowercase hex>` of the canonical form: the hash a pin stores.
pub fn definition_hash(value: &Value) -> Result<String, CanonicalError> {
    let canonical = to_canonical(value)?;
    Ok(format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes()))))
}

/// `depth` counts the containers around `value`.
fn write_value(out: &mut String, value: &Value, depth: usize) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number)?,
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(CanonicalError::TooDeep { at: String::new() });
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item, depth + 1).map_err(|e| e.within(&i.to_string()))?;
            }
            out.push(']');
        }
        Value::Object(members) => {
            if depth >= MAX_DEPTH {
                return Err(CanonicalError::TooDeep { at: String::new() });
            }
            write_object(out, members, depth)?;
        }
    }
    Ok(())
}

fn write_object(out: &mut String, members: &Map<String, Value>, depth: usize) -> Result<(), CanonicalError> {
    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
    sorted.sort_by(|(a, _), (b, _)| utf16_order(a, b));
    out.push('{');
    for (i, (name, member)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(out, name);
        out.push(':');
        write_value(out, member, depth + 1).map_err(|e| e.within(name))?;
    }
    out.push('}');
    Ok(())
}

/// JCS orders names by UTF-16 code units, which differs from UTF-8 byte order for characters
/// above U+FFFF against U+E000..=U+FFFF.
fn utf16_order(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, number: &Number) -> Result<(), CanonicalError> {
    // An integer no double holds is still unambiguous when it is exactly the text its nearest
    // double is written as (`222222222222222200`, the canonical form of a large float): only
    // then is the canonical form of a canonical form itself.
    let inexact = || {
        let mut shown = String::new();
        if let Some(f) = number.as_f64() {
            write_double(&mut shown, f);
        }
        match shown == number.to_string() {
            true => Ok(shown),
            false => Err(CanonicalError::InexactInteger { at: String::new(), number: number.to_string() }),
        }
    };
    let value = if let Some(n) = number.as_u64() {
        if n <= EXACT_INTEGER_LIMIT {
            let _ = write!(out, "{n}");
            return Ok(());
        }
        let f = n as f64;
        // `f as u64` saturates at u64::MAX, which is not exact either way.
        if f >= 18_446_744_073_709_551_616.0 || f as u64 != n {
            out.push_str(&inexact()?);
            return Ok(());
        }
        f
    } else if let Some(n) = number.as_i64() {
        if n.unsigned_abs() <= EXACT_INTEGER_LIMIT {
            let _ = write!(out, "{n}");
            return Ok(());
        }
        let f = n as f64;
        // i64::MIN is -2^63, exactly a double; `f as i64` saturates there, which is correct.
        if f as i64 != n {
            out.push_str(&inexact()?);
            return Ok(());
        }
        f
    } else {
        // Without serde_json's `arbitrary_precision`, every other number is a finite double.
        match number.as_f64() {
            Some(f) => f,
            None => return Err(CanonicalError::InexactInteger { at: String::new(), number: number.to_string() }),
        }
    };
    write_double(out, value);
    Ok(())
}

/// ECMAScript `Number::toString(x)` for a finite double (ECMA-262, 6.1.6.1.20).
fn write_double(out: &mut String, value: f64) {
    if value == 0.0 || !value.is_finite() {
        // -0 is written as 0. Non-finite values cannot come from serde_json; writing `0`
        // rather than panicking keeps this total.
        out.push('0');
        return;
    }
    if value < 0.0 {
        out.push('-');
    }
    let (digits, exponent) = shortest_digits(value.abs());
    // ECMAScript's k (digit count) and n (the decimal point's position).
    let k = digits.len() as i32;
    let n = exponent + 1;
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(n as usize);
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if n - 1 < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{}", (n - 1).abs());
    }
}

/// The shortest decimal digits that read back as `value` (positive, finite), and the decimal
/// exponent of the first digit, chosen as ECMAScript chooses them.
fn shortest_digits(value: f64) -> (String, i32) {
    // Rust's `{:e}` gives the shortest digits that round-trip, nearest the value.
    let (digits, exponent) = split_scientific(&format!("{value:e}"));
    // Where two shortest candidates are equally near, ECMAScript takes the even one and Rust
    // the larger. That tie needs the exact value to end in a 5 just past the last digit; 800
    // digits hold any double's exact expansion (at most 767 significant digits).
    let (exact, exact_exponent) = split_scientific(&format!("{value:.800e}"));
    let k = digits.len();
    let tie = exact.as_bytes().get(k) == Some(&b'5') && exact.bytes().skip(k + 1).all(|b| b == b'0');
    if !tie {
        return (digits, exponent);
    }
    let lower = &exact[..k];
    if lower.bytes().last().is_some_and(|b| (b - b'0').is_multiple_of(2)) {
        return (lower.trim_end_matches('0').to_owned(), exact_exponent);
    }
    // Round `lower` up by one in its last place.
    let mut bytes = lower.as_bytes().to_vec();
    let mut exponent = exact_exponent;
    let mut i = bytes.len();
    loop {
        if i == 0 {
            bytes.insert(0, b'1');
            exponent += 1;
            break;
        }
        i -= 1;
        if bytes[i] == b'9' {
            bytes[i] = b'0';
        } else {
            bytes[i] += 1;
            break;
        }
    }
    let upper: String = bytes.into_iter().map(char::from).collect();
    (upper.trim_end_matches('0').to_owned(), exponent)
}

/// `d.ddde-x` into its digits and exponent.
fn split_scientific(text: &str) -> (String, i32) {
    let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
    (mantissa.chars().filter(char::is_ascii_digit).collect(), exponent.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing: a large float's canonical form reads back as an integer no double
    /// holds; it must canonicalize to itself, while an ambiguous integer is still refused.
    #[test]
    fn the_canonical_form_of_a_large_float_is_its_own_canonical_form() {
        let float: Value = serde_json::from_str("222222222222222222.222222").unwrap();
        let canonical = to_canonical(&float).unwrap();
        assert_eq!(canonical, "222222222222222200");
        let reread: Value = serde_json::from_str(&canonical).unwrap();
        assert_eq!(to_canonical(&reread).unwrap(), canonical);
        assert_eq!(definition_hash(&reread).unwrap(), definition_hash(&float).unwrap());
        let negative: Value = serde_json::from_str("-222222222222222200").unwrap();
        assert_eq!(to_canonical(&negative).unwrap(), "-222222222222222200");
        for ambiguous in ["9007199254740993", "222222222222222201", "-9007199254740993"] {
            let v: Value = serde_json::from_str(ambiguous).unwrap();
            assert!(to_canonical(&v).is_err(), "{ambiguous}");
        }
    }
    use serde_json::json;

    fn canonical(text: &str) -> String {
        let value: Value = serde_json::from_str(text).expect("test JSON parses");
        to_canonical(&value).expect("has a canonical form")
    }

    fn double(bits: u64) -> String {
        let mut out = String::new();
        write_double(&mut out, f64::from_bits(bits));
        out
    }

    #[test]
    fn rfc8785_sample_object() {
        // RFC 8785, section 3.2.2.
        let input = r#"{
            "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]
        }"#;
        assert_eq!(
            canonical(input),
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
    }

    #[test]
    fn rfc8785_sorting_by_utf16_code_units() {
        // RFC 8785, section 3.2.3.
        let input = r#"{
            "\u20ac": "Euro Sign",
            "\r": "Carriage Return",
            "\ufb33": "Hebrew Letter Dalet With Dagesh",
            "1": "One",
            "\ud83d\ude00": "Emoji: Grinning Face",
            "\u0080": "Control",
            "\u00f6": "Latin Small Letter O With Diaeresis"
        }"#;
        let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
            \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
            \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
        assert_eq!(canonical(input), expected);
    }

    #[test]
    fn rfc8785_number_samples() {
        // RFC 8785, appendix B (the finite samples).
        let samples: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for &(bits, expected) in samples {
            assert_eq!(double(bits), expected, "{bits:#018x}");
        }
    }

    #[test]
    fn numbers_as_json_text() {
        assert_eq!(canonical("[1E-7, 0.000001, 1e21, 1e20, 100, -0.0, -0, 1.0, 0.1, -1.5e-9]"), {
            "[1e-7,0.000001,1e+21,100000000000000000000,100,0,0,1,0.1,-1.5e-9]"
        });
        assert_eq!(canonical("[18446744073709551616, 123456789012345678901234]"), {
            "[18446744073709552000,1.2345678901234569e+23]"
        });
    }

    #[test]
    fn integers_beyond_two_to_the_53_are_exact_or_refused() {
        assert_eq!(canonical("[9007199254740992, -9007199254740992]"), "[9007199254740992,-9007199254740992]");
        // 2^60 is a double; written as ECMAScript writes that double.
        assert_eq!(canonical("[1152921504606846976]"), "[1152921504606847000]");
        assert_eq!(canonical("[-9223372036854775808]"), "[-9223372036854776000]");
        for inexact in ["9007199254740993", "-9007199254740993", "18446744073709551615", "9223372036854775807"] {
            let value: Value = serde_json::from_str(&format!("{{\"a\":[{inexact}]}}")).expect("parses");
            let err = to_canonical(&value).expect_err(inexact);
            assert_eq!(err, CanonicalError::InexactInteger { at: "/a/0".into(), number: inexact.into() });
            assert!(definition_hash(&value).is_err());
        }
    }

    #[test]
    fn strings_escape_only_what_json_requires() {
        let value = json!("\u{0}\u{1f}\u{7f}\u{2028}\u{200b}</script>\u{e0041}é");
        assert_eq!(to_canonical(&value).unwrap(), "\"\\u0000\\u001f\u{7f}\u{2028}\u{200b}</script>\u{e0041}é\"");
        assert_eq!(to_canonical(&json!("\u{8}\u{c}\t")).unwrap(), r#""\b\f\t""#);
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_hash() {
        let a = canonical(r#"{"b": [1, {"y": 2, "x": 1}], "a": "s"}"#);
        let b = canonical(r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#);
        assert_eq!(a, b);
        assert_eq!(a, r#"{"a":"s","b":[1,{"x":1,"y":2}]}"#);
    }

    #[test]
    fn any_change_changes_the_hash() {
        let base = json!({
            "name": "read_file",
            "description": "Reads a file.",
            "inputSchema": {"type": "object", "properties": {"path": {"type": "string", "default": "."}}},
            "annotations": {"readOnlyHint": true},
            "icons": [{"src": "https://example.com/i.png"}],
            "_meta": {"v": 1}
        });
        let hash = definition_hash(&base).unwrap();
        assert!(hash.starts_with("sha256:") && hash.len() == 7 + 64, "{hash}");
        let edits: Vec<fn(&mut Value)> = vec![
            |v| v["description"] = json!("Reads a file.\u{200b}"),
            |v| v["description"] = json!("Reads a file!"),
            |v| v["annotations"]["readOnlyHint"] = json!(false),
            |v| v["annotations"]["destructiveHint"] = json!(true),
            |v| v["inputSchema"]["properties"]["path"]["default"] = json!("/"),
            |v| v["_meta"]["v"] = json!(2),
            |v| v["icons"][0]["src"] = json!("https://example.com/j.png"),
            |v| v["icons"] = json!([]),
            |v| v["inputSchema"]["properties"]["path"]["default"] = json!(null),
            |v| v["_meta"]["v"] = json!(1.5),
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut changed = base.clone();
            edit(&mut changed);
            assert_ne!(definition_hash(&changed).unwrap(), hash, "edit {i}");
        }
    }

    fn nested(depth: usize) -> Value {
        let mut value = json!(1);
        for i in 0..depth {
            // Not `json!`, which would serialize (and so recurse into) `value`.
            value = if i % 2 == 0 {
                Value::Array(vec![value])
            } else {
                Value::Object(Map::from_iter([("k".to_owned(), value)]))
            };
        }
        value
    }

    /// Drops a deep value without recursing (serde_json's own drop would overflow the stack).
    fn dismantle(mut value: Value) {
        loop {
            value = match value {
                Value::Array(mut items) => match items.pop() {
                    Some(inner) => inner,
                    None => return,
                },
                Value::Object(mut members) => match members.remove("k") {
                    Some(inner) => inner,
                    None => return,
                },
                _ => return,
            };
        }
    }

    #[test]
    fn depth_is_bounded() {
        assert!(to_canonical(&nested(MAX_DEPTH)).is_ok());
        match to_canonical(&nested(MAX_DEPTH + 1)) {
            Err(CanonicalError::TooDeep { at }) => assert_eq!(at.matches('/').count(), MAX_DEPTH),
            other => panic!("expected TooDeep, got {other:?}"),
        }
        // Far past the limit: refused without recursing further.
        let deep = nested(100_000);
        assert!(matches!(to_canonical(&deep), Err(CanonicalError::TooDeep { .. })));
        dismantle(deep);
    }

    #[test]
    fn error_pointers_escape_names() {
        let value = json!({"a/b": {"c~d": [9007199254740993u64]}});
        let err = to_canonical(&value).unwrap_err();
        assert_eq!(
            err,
            CanonicalError::InexactInteger { at: "/a~1b/c~0d/0".into(), number: "9007199254740993".into() }
        );
        assert!(err.to_string().contains("/a~1b/c~0d/0"), "{err}");
    }
}
