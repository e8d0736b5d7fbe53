//! What a rule's match must also satisfy to count as a secret: the value checks that a
//! regular expression cannot express (randomness, placeholders, markers).
//!
//! The generic `name = value` rules are where false positives come from, so their checks
//! are spelled out here:
//!
//! * every named value is rejected when it is a *placeholder*: a variable or template
//!   reference (`$X`, `%s`, `{{x}}`, `<your token>`), a mask (`****`, `xxxx`), a literal
//!   (`null`, `true`, `redacted`), or a well-known dummy (`changeme`, `password`,
//!   `example`, `your-api-key`, …; see [`DUMMY_VALUES`]);
//! * an unquoted `name=value` is also rejected when the value is a short word: letters
//!   only and fewer than six of them (`password=test`, `token=abc`);
//! * an unquoted `name: value`, which is often prose (`token: required`), must also look
//!   random: letters mixed with digits, or 16+ characters of mixed case, and at least
//!   2.5 bits of Shannon entropy per character once it is 8 characters or longer.

use super::keys::classify_key;
use super::rules::{Check, Kind, Rule};

/// Values people write where a secret would go, meaning "fill this in". Compared
/// ASCII-case-insensitively after stripping `-`/`_`.
pub(super) const DUMMY_VALUES: &[&str] = &[
    "changeme",
    "changeit",
    "pass",
    "password",
    "passw0rd",
    "secret",
    "example",
    "sample",
    "placeholder",
    "dummy",
    "test",
    "testing",
    "foobar",
    "yourpassword",
    "yoursecret",
    "yourtoken",
    "yourapikey",
    "yourkey",
    "mypassword",
    "mysecret",
    "mytoken",
    "apikey",
    "token",
    "notset",
    "todo",
    "tbd",
    "fixme",
];

/// Does `value` look machine-generated rather than like a word of prose?
pub(super) fn looks_random(value: &str) -> bool {
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = value.bytes().any(|b| b.is_ascii_alphabetic());
    let mixed_case = value.bytes().any(|b| b.is_ascii_uppercase()) && value.bytes().any(|b| b.is_ascii_lowercase());
    let shaped = (has_digit && has_alpha) || (value.len() >= 16 && mixed_case);
    shaped && (value.len() < 8 || shannon_entropy(value) >= 2.5)
}

/// Bits of Shannon entropy per byte of `value`.
pub(super) fn shannon_entropy(value: &str) -> f64 {
    let mut counts = [0u32; 256];
    for b in value.bytes() {
        counts[usize::from(b)] += 1;
    }
    let len = value.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| f64::from(c) / len).map(|p| -p * p.log2()).sum()
}

/// Is `value` a stand-in rather than a secret: a variable reference, a template slot, a
/// mask, a literal like `null`, or a well-known dummy like `changeme`?
pub(super) fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    if v.is_empty()
        || v.starts_with(['$', '%', '{', '<'])
        // Symbols alone (`"🍪"`, `"—"`) are not a credential.
        || !v.chars().any(char::is_alphanumeric)
        // An ellipsis stands for a value in documentation.
        || v.contains('…')
        || v.contains("...")
        || is_version_range(v)
        || v.bytes().all(|b| matches!(b, b'*' | b'x' | b'X' | b'.' | b'-' | b'_'))
        // A colour (`#dddddd`) or an AWS resource's name (`arn:aws:iam::…`) names no secret.
        || (v.starts_with('#') && (4..=9).contains(&v.len()) && v[1..].bytes().all(|b| b.is_ascii_hexdigit()))
        || v.starts_with("arn:")
        || ["null", "none", "nil", "undefined", "true", "false", "empty", "redacted"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w))
    {
        return true;
    }
    if v.len() > 24 {
        return false;
    }
    let mut squashed = [0u8; 24];
    let mut n = 0;
    for b in v.bytes().filter(|b| !matches!(b, b'-' | b'_' | b' ')) {
        squashed[n] = b.to_ascii_lowercase();
        n += 1;
    }
    DUMMY_VALUES.iter().any(|d| d.as_bytes() == &squashed[..n])
}

/// A dependency's version or range (`^0.7.1`, `~1.2`, `>=2.0.0 <3`): package manifests name
/// packages `cookie` or `secret-handshake`.
fn is_version_range(value: &str) -> bool {
    // Each version in the range: digits (or `x`, `*`) joined by dots, at least one dot, with an
    // optional `-prerelease`/`+build` tail.
    let version = |v: &str| {
        let v = v.trim_start_matches(['^', '~', '=', '>', '<', 'v']);
        let core = v.split(['-', '+']).next().unwrap_or_default();
        let parts: Vec<&str> = core.split('.').collect();
        (2..=4).contains(&parts.len())
            && parts.iter().all(|p| !p.is_empty() && (p.bytes().all(|b| b.is_ascii_digit()) || *p == "x" || *p == "*"))
            && parts[0].bytes().all(|b| b.is_ascii_digit())
    };
    let pieces: Vec<&str> =
        value.split([' ', '|']).filter(|p| !p.is_empty() && !p.starts_with(['<', '>', '=']) || version(p)).collect();
    !pieces.is_empty() && pieces.iter().all(|p| version(p))
}

/// A bare word too short to be a password anyone meant: letters only, fewer than six.
fn is_short_word(value: &str) -> bool {
    value.len() < 6 && value.bytes().all(|b| b.is_ascii_alphabetic())
}

/// Is an unquoted `value` after a secret-sounding name code rather than a credential: a
/// path (`Token::U8`, `SessionId::default`), a comparison (`token == x`), a macro call, a
/// primitive type (`u32`, `__u64`), a short number (`SECRET_LEN = 32`), or an identifier or
/// member access in words (`_bindgen_ty_3`, `input.parse`, `self.session_id`)?
pub(super) fn is_code(value: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "unsafe",
        "match",
        "if",
        "else",
        "await",
        "async",
        "return",
        "self",
        "this",
        "new",
        "let",
        "mut",
        "const",
        "yield",
        "lambda",
        "function",
        "null",
        "None",
        "Some",
        "await",
        "typeof",
        "instanceof",
    ];
    if KEYWORDS.contains(&value) {
        return true;
    }
    if value.starts_with([':', '=']) || value.contains(['[', ']']) || value.contains("::") || value.ends_with('!') {
        return true;
    }
    if value.len() < 6 && value.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    // Minified script: a negation, a comparison, a ternary cut short (`t.errorToken=!0`,
    // `prevToken=A?…`, `r==`). Three characters with punctuation are no credential.
    if value.len() < 4 && value.bytes().any(|b| !b.is_ascii_alphanumeric()) {
        return true;
    }
    // A number in hexadecimal, as code writes constants (`NEW_TOKEN = 0x07`).
    if let Some(hex) = value.strip_prefix("0x")
        && (1..=8).contains(&hex.len())
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return true;
    }
    // A type or a unit variant (`Option`, `Session`), a closure's parameter list, a format
    // specifier (`?id`).
    let capitalized = value.starts_with(|c: char| c.is_ascii_uppercase())
        && value.len() < 24
        && value[1..].bytes().all(|b| b.is_ascii_lowercase());
    // A type name in words, digits allowed (`OAuthTokenResponse`, `Curve25519SeedBin`,
    // `Colon2`): mostly lowercase letters, where a random string is about half uppercase.
    let letters = value.bytes().filter(u8::is_ascii_alphabetic).count();
    let lowercase = value.bytes().filter(u8::is_ascii_lowercase).count();
    let pascal = value.starts_with(|c: char| c.is_ascii_uppercase())
        && value.len() < 48
        && value.bytes().all(|b| b.is_ascii_alphanumeric())
        && lowercase * 10 >= letters * 7;
    if capitalized || pascal || value.contains(['|', '*']) || value.starts_with(['?', '%']) {
        return true;
    }
    let primitive = value.trim_start_matches('_');
    if let Some(width) = primitive.strip_prefix(['u', 'i', 'f'])
        && matches!(width, "8" | "16" | "32" | "64" | "128" | "size")
    {
        return true;
    }
    // A type name in words (`CancellationToken`): capitalized words of lowercase letters.
    let humps = value.bytes().filter(u8::is_ascii_uppercase).count();
    if humps >= 2
        && value.len() < 48
        && value.starts_with(|c: char| c.is_ascii_uppercase())
        && value.bytes().all(|b| b.is_ascii_alphabetic())
        && value.split(|c: char| c.is_ascii_uppercase()).all(|w| w.len() >= 2 || w.is_empty())
        && !value.bytes().zip(value.bytes().skip(1)).any(|(a, b)| a.is_ascii_uppercase() && b.is_ascii_uppercase())
    {
        return true;
    }
    // A type name with acronyms, maybe behind a module path (`SSHPrivateKeyTypes`,
    // `rsa.RSAPrivateKey`, `PKCS7PrivateKeyTypes`).
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    if value.len() < 64
        && digits <= 2
        && value.bytes().filter(u8::is_ascii_lowercase).count() >= 3
        && value.bytes().any(|b| b.is_ascii_uppercase())
        && value.split('.').all(is_type_name)
    {
        return true;
    }
    is_words(value) || is_identifier_path(value) || is_module_path(value)
}

/// Is `w` a type's name, acronyms allowed (`SSHPrivateKeyTypes`, `PKCS7PrivateKeyTypes`):
/// split where a lowercase letter meets a capital, every part has three characters or more,
/// which random text rarely keeps up.
fn is_type_name(w: &str) -> bool {
    let bytes = w.as_bytes();
    let mut part = 0;
    let mut parts_ok = true;
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 && bytes[i - 1].is_ascii_lowercase() && b.is_ascii_uppercase() {
            parts_ok &= part >= 3;
            part = 0;
        }
        part += 1;
    }
    w.starts_with(|c: char| c.is_ascii_alphabetic())
        && w.bytes().all(|b| b.is_ascii_alphanumeric())
        && parts_ok
        && part >= 3
}

/// Is `value` a path into modules ending in a name (`ed25519.Ed25519PrivateKey`,
/// `rust_openssl.hpke.MLKEM768X25519PrivateKey`, `base64.b64encode`): two or more segments
/// joined by `.`, each a module's name (lowercase letters, digits and `_`, few digits) or a
/// type's (capitalized parts of three characters or more, the last a capitalized word), at
/// least one of them a word of
/// four letters or more.
fn is_module_path(value: &str) -> bool {
    let module = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && w.len() <= 24
            && w.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && w.bytes().filter(u8::is_ascii_digit).count() <= 5
    };
    // A type's name: capitalized, ending in a capitalized word (`…PrivateKey`).
    let type_name = |w: &str| {
        let tail = w.trim_end_matches(|c: char| c.is_ascii_lowercase());
        w.starts_with(|c: char| c.is_ascii_uppercase())
            && w.len() <= 48
            && is_type_name(w)
            && w.len() - tail.len() >= 2
            && tail.ends_with(|c: char| c.is_ascii_uppercase())
    };
    let word = |w: &str| w.as_bytes().windows(4).any(|four| four.iter().all(u8::is_ascii_lowercase));
    let segments: Vec<&str> = value.split('.').collect();
    value.len() < 96
        && segments.len() >= 2
        && segments.iter().all(|w| module(w) || type_name(w))
        && segments.iter().any(|w| word(w))
}

/// Is `value` an identifier in camelCase or a member access (`sessionId`,
/// `transport.sessionId`, `req?.query?.sessionId`, `Object.create`): identifiers joined by `.`,
/// mostly lowercase letters and few digits, where a random string is about half uppercase or
/// full of digits.
fn is_identifier_path(value: &str) -> bool {
    let identifier = |w: &str| {
        w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$')
            && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    };
    let segments: Vec<&str> = value.split(['.', '?']).filter(|w| !w.is_empty()).collect();
    let camel = value.as_bytes().windows(2).any(|p| p[0].is_ascii_lowercase() && p[1].is_ascii_uppercase());
    let letters = value.bytes().filter(u8::is_ascii_alphabetic).count();
    let lowercase = value.bytes().filter(u8::is_ascii_lowercase).count();
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    value.len() < 80
        && !segments.is_empty()
        && segments.iter().all(|w| identifier(w))
        && (segments.len() >= 2 || camel)
        && lowercase * 10 >= letters * 7
        && digits * 4 <= letters
}

/// Is `value` words joined by `.`, `_`, `-` or `/`, each all lowercase or all uppercase (a short
/// number may follow), and short: a name in code or a stand-in (`self.session_id`,
/// `_bindgen_ty_3`, `test-m2m-secret`, a path such as `secrets/audit-signing-key`), where a
/// credential's random part mixes them.
pub(super) fn is_words(value: &str) -> bool {
    value.len() < 64
        && value.split(['.', '_', '-', '/']).filter(|w| !w.is_empty()).count() >= 2
        && value.split(['.', '_', '-', '/']).all(|w| {
            let letters = w.trim_end_matches(|c: char| c.is_ascii_digit());
            w.len() <= 16
                && w.len() - letters.len() <= 5
                && (letters.bytes().all(|b| b.is_ascii_lowercase()) || letters.bytes().all(|b| b.is_ascii_uppercase()))
        })
}

/// Is a quoted `value` a message or code rather than a credential: words with spaces after
/// a name that is not a password's (`Error::Token => "invalid token"`, `" * [would prune] "`:
/// tokens and keys hold no spaces, unless its pieces look random themselves), or
/// spaces with code punctuation (`'token: 'iter, I: Iterator<…>`)?
fn is_quoted_prose(value: &str, for_password: bool) -> bool {
    let spaced = value.contains(' ');
    let keyed_piece = value.split(' ').any(|piece| piece.len() >= 4 && looks_random(piece));
    (spaced && !keyed_piece && !for_password) || (spaced && value.contains(['<', '>', '(', ')', '{', '}', ';']))
}

/// Is a quoted `value` a name in code: a type's, a field's or a path to one (`"Marker"`,
/// `"LastEvaluatedKey"`, `"nextMarker"`, `"DistributionList.NextMarker"`)?
fn is_quoted_name(value: &str) -> bool {
    !value.contains(' ') && value.bytes().any(|b| b.is_ascii_alphabetic()) && is_code(value)
}

/// Is a quoted `value` one word of letters in one case, maybe with a full stop or a comma
/// (`"done."`, `"language"`, `"HONOISHOT"`)? After a token's or a key's name that is a word
/// or a stand-in: a token mixes cases or digits, or runs to 20 letters and more.
fn is_one_word(value: &str) -> bool {
    let word = value.trim_end_matches(['.', ',', '!', ':']);
    (2..20).contains(&word.len())
        && (word.bytes().all(|b| b.is_ascii_lowercase()) || word.bytes().all(|b| b.is_ascii_uppercase()))
}

/// Is a quoted `value` the name of a field rather than its value: an identifier of two or
/// more words, one of which says password, secret or token (`CHALLENGE_PASSWORD:
/// "challengePassword"`, `"caching_sha2_password"`, `"refresh_token"`)? One word with digits
/// (`"password1"`) stays a password.
fn names_a_field(value: &str) -> bool {
    if value.len() > 48 || !value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return false;
    }
    // Words split at `_`, `-` and where a lowercase letter meets a capital.
    let mut words: Vec<String> = Vec::new();
    let mut previous = b'_';
    for b in value.bytes() {
        if b == b'_' || b == b'-' {
            previous = b;
            continue;
        }
        if words.is_empty()
            || matches!(previous, b'_' | b'-')
            || (previous.is_ascii_lowercase() && b.is_ascii_uppercase())
        {
            words.push(String::new());
        }
        if let Some(word) = words.last_mut() {
            word.push(b.to_ascii_lowercase() as char);
        }
        previous = b;
    }
    words.len() >= 2
        && words.iter().all(|w| w.bytes().filter(u8::is_ascii_alphabetic).count() >= 2)
        && words
            .iter()
            .any(|w| ["password", "passwd", "secret", "token", "credential", "credentials"].contains(&w.as_str()))
}

/// Does a private key block hold key material: 8 or more base64 characters between its
/// BEGIN line and its END line (a header alone, in documentation, holds none)?
fn has_key_body(block: &str) -> bool {
    let after_begin = block.find("-----BEGIN").map_or(block, |at| &block[at + "-----BEGIN".len()..]);
    let body = after_begin.find("-----").map_or("", |at| &after_begin[at + "-----".len()..]);
    let body = body.find("-----END").map_or(body, |at| &body[..at]);
    // Escaped line breaks (`\n` in JSON or a string literal) are not key material.
    let body = body.replace("\\r", " ").replace("\\n", " ");
    // Key material comes in lines of base64, which mix upper and lower case: a word
    // or two (`password=`, `password==password=`, `Authorization:`) is not one. Judged per
    // whitespace-separated piece, so what a redaction leaves of the text after the block judges
    // the same as the whole did.
    let base64_line = body.split_whitespace().any(|piece| {
        piece.len() >= 12
            && piece.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
            && piece.bytes().any(|b| b.is_ascii_uppercase())
            && piece.bytes().any(|b| b.is_ascii_lowercase())
    });
    // A stand-in (`<Private key data here.>`) or a URL is documentation.
    !body.contains(['<', '>']) && !body.contains("://") && base64_line
}

/// Is `text` exactly one redaction marker?
pub(super) fn is_marker(text: &str) -> bool {
    text.strip_prefix("[REDACTED:").and_then(|rest| rest.strip_suffix(']')).is_some_and(|kind| {
        !kind.is_empty()
            && kind.len() <= 40
            && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    })
}

/// The kind a match of `rule` reports, once its checks pass; `None` rejects the match.
pub(super) fn judge(rule: &Rule, key: Option<&str>, secret: &str) -> Option<&'static str> {
    if is_marker(secret) {
        return None;
    }
    let passes = match rule.check {
        Check::None => true,
        Check::NotPlaceholder => !is_placeholder(secret),
        Check::KeyBody => has_key_body(secret),
        Check::Benign => false,
        Check::LooksRandom => looks_random(secret),
        Check::NamedValue => {
            let for_password = key.and_then(classify_key) == Some("password");
            // A quoted value after a password's name is the password, whatever its shape
            // (`"correct-horse-battery"`, `"admin"`); after `token` or `secret`, words are a
            // stand-in or a message.
            // After a token's or a key's name, a name in code (`"input_token": "NextMarker"`,
            // `"DistributionList.NextMarker"`) is a field it refers to, not a token.
            !is_placeholder(secret)
                && !names_a_field(secret)
                && (for_password
                    || (!is_words(secret) && !is_short_word(secret) && !is_one_word(secret) && !is_quoted_name(secret)))
                && !is_quoted_prose(secret, for_password)
        }
        Check::NamedBareValue => {
            // One word of letters after `token =` is a variable or a function (`token =
            // encode(…)`); after `password=` it is still the password.
            let word_for_password = key.and_then(classify_key) == Some("password");
            !is_placeholder(secret)
                && !is_short_word(secret)
                && !is_code(secret)
                && (word_for_password || !secret.bytes().all(|b| b.is_ascii_lowercase()))
        }
        Check::NamedRandomValue => {
            !is_placeholder(secret) && secret.len() >= 6 && looks_random(secret) && !is_code(secret)
        }
    };
    if !passes {
        return None;
    }
    match rule.kind {
        Kind::Fixed(kind) => Some(kind),
        Kind::FromKey => key.and_then(classify_key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_of_words_after_a_keys_name_is_not_the_key() {
        let scanner = crate::SecretScanner::new();
        assert!(scanner.find(r#"[audit] signing_key = "secrets/audit-signing-key""#).is_empty());
        // Assembled here, so that this file holds no key-shaped text of its own.
        let key = ["sk", "9fQ2xL7pZ4mW8vR1tY6Qa3"].join("/");
        assert!(!scanner.find(&format!("signing_key = \"{key}\"")).is_empty());
        assert!(is_words("secrets/audit-signing-key"));
        assert!(!is_words("Zx9/Qm2P+vL8aB4kR7tY1wE6"));
    }

    #[test]
    fn placeholders() {
        for v in [
            "${DB_PASSWORD}",
            "$PASS",
            "%s",
            "{{ secret }}",
            "<your-token>",
            "****",
            "xxxx",
            "null",
            "",
            "changeme",
            "CHANGE_ME",
            "your-api-key",
            "password",
        ] {
            assert!(is_placeholder(v), "{v}");
        }
        for v in ["hunter2", "x1", "c0rrect-h0rse"] {
            assert!(!is_placeholder(v), "{v}");
        }
    }

    #[test]
    fn short_words() {
        assert!(is_short_word("test"));
        assert!(is_short_word("abc"));
        assert!(!is_short_word("hunter"));
        assert!(!is_short_word("x9"));
    }

    #[test]
    fn random_looking_values() {
        assert!(looks_random("abc123"));
        assert!(looks_random("AbCdEfGhIjKlMnOpQr"));
        assert!(!looks_random("required"));
        assert!(!looks_random("Required"));
        assert!(!looks_random("1234"));
        // Shaped like a key, but with almost no entropy.
        assert!(!looks_random("a1a1a1a1a1a1a1a1"));
    }

    #[test]
    fn module_paths_and_field_names_are_code() {
        for v in ["ed25519.Ed25519PrivateKey", "rust_openssl.hpke.MLKEM768X25519PrivateKey", "base64.b64encode"] {
            assert!(is_code(v), "{v}");
        }
        // Minified script after a token's name (`t.errorToken=!0`).
        for v in ["!0", "!1", "r==", "A?"] {
            assert!(is_code(v), "{v}");
        }
        assert!(!is_code("dGhpcyBpcyBhIHNlY3JldA=="), "a base64 value padded with == is not code");
        for v in ["a1b2c3d4.e5f6g7h8", "x9Fq2.Lm8Pz", "s.ot7VN0Qd7oivgTAXx7VMAAWb"] {
            assert!(!is_module_path(v), "{v}");
        }
        assert!(names_a_field("challengePassword") && names_a_field("refresh_token"));
        assert!(names_a_field("caching_sha2_password"));
        assert!(!names_a_field("hunter2") && !names_a_field("Tr0ub4dor&3") && !names_a_field("password1"));
        assert!(is_one_word("done.") && is_one_word("language") && !is_one_word("honoIsHot") && !is_one_word("abc123"));
        assert!(is_quoted_prose(" * [would prune] ", false));
        for v in ["Marker", "LastEvaluatedKey", "nextMarker", "DistributionList.NextMarker"] {
            assert!(is_quoted_name(v), "{v}");
        }
        for v in ["AbX9kQ2mZ7pL0wR4", "Qm4xT9vLp2Wz", "Zx8Qk2LmP0"] {
            assert!(!is_quoted_name(v), "{v}");
        }
        assert!(is_placeholder("#dddddd") && is_placeholder("arn:aws:iam::aws:policy/ReadOnly"));
        assert!(!is_quoted_prose("key a1b2 c3d4", false));
    }

    #[test]
    fn markers() {
        assert!(is_marker("[REDACTED:aws_access_key_id]"));
        assert!(!is_marker("[REDACTED:]"));
        assert!(!is_marker("[REDACTED:x]tail"));
        assert!(!is_marker("[REDACTED:X Y]"));
    }
}
