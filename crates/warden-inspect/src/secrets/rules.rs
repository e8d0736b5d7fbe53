//! The builtin secret rules: one table, compiled once into a single multi-pattern regex.
//!
//! Order is priority: where two rules match at the same position the earlier one wins,
//! so specific formats come before the generic `key = value` rules and the benign
//! shapes (markers, data URIs) come first of all.
//!
//! A rule's pattern may name a `secret` group; only that span is replaced, so a URL
//! keeps its scheme, user and host and a `password=` assignment keeps its key. A
//! pattern without the group has its whole match replaced.

use super::keys::classify_key;

/// What a match is reported as.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// Always this kind.
    Fixed(&'static str),
    /// Decided by the name in the pattern's `key` group (see [`classify_key`]).
    FromKey,
}

/// What must also hold for a match to be a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// The pattern is specific enough.
    None,
    /// Not a secret: consume the match so nothing inside it is redacted.
    Benign,
    /// The secret must mix letters and digits (or be long and mixed-case), which prose
    /// and hyphenated words do not.
    LooksRandom,
    /// The key must name a secret and the value must not be a placeholder.
    NamedValue,
    /// As `NamedValue`, and the value must also look random: `name: word` is often prose.
    NamedRandomValue,
}

pub(super) struct Rule {
    pub(super) kind: Kind,
    pub(super) check: Check,
    pub(super) pattern: &'static str,
}

const fn rule(kind: &'static str, check: Check, pattern: &'static str) -> Rule {
    Rule { kind: Kind::Fixed(kind), check, pattern }
}

const fn named(check: Check, pattern: &'static str) -> Rule {
    Rule { kind: Kind::FromKey, check, pattern }
}

/// A field name ending in a word that may name a secret, then the separator's left side.
/// Deliberately loose (`key` matches `monkey`): [`classify_key`] has the final say.
macro_rules! secret_name {
    () => {
        concat!(
            r#"(?-u:\b)(?P<key>(?:[A-Za-z0-9][A-Za-z0-9_.\-]{0,47})??"#,
            r#"(?i-u:pass(?:word|wd|phrase)|pwd|secret|token|key|credentials?|authorization|cookie|session(?:[_.\-]?id)?)"#,
            r#"(?:[_.\-]?(?i-u:value|val|str|string|b64|base64|hex|raw|plain|plaintext|encoded|confirm|confirmation|new|old|current|[0-9]{1,3}))?)"#,
            r#"\\?["']?[ \t]*"#,
        )
    };
}

/// The characters an unquoted value runs over: up to white space, quotes, list and
/// query separators, and brackets that close the surrounding structure.
macro_rules! bare_value {
    () => {
        r#"(?P<secret>[^\s"'`,;&<>{}()\\]+)"#
    };
}

pub(super) const RULES: &[Rule] = &[
    // Inline images and files are long base64 runs; keep them whole and untouched.
    rule(
        "",
        Check::Benign,
        r"(?-u:\b)data:[A-Za-z]{1,20}/[A-Za-z0-9.+\-]{1,64}(?:;[A-Za-z0-9.=\-]{1,64}){0,4};base64,[A-Za-z0-9+/=]+",
    ),
    // The whole PEM block; a block cut off before its END line loses its body too. Both
    // branches run over the same alphabet, so looking for the END line never scans past
    // where the block would end anyway (no quadratic scans of repeated BEGIN lines).
    rule(
        "private_key",
        Check::None,
        concat!(
            r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
            r"(?:[A-Za-z0-9+/=\s\\:,.\-_()@<>]*?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----",
            r"|[A-Za-z0-9+/=\s\\:,.\-_()@<>]*)",
        ),
    ),
    rule("aws_access_key_id", Check::None, r"(?-u:\b)A(?:KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?-u:\b)"),
    rule(
        "aws_secret_access_key",
        Check::None,
        concat!(
            r#"(?-u:\b)(?i-u:aws[_.\-]?secret(?:[_.\-]?access)?[_.\-]?key|secret[_.\-]?access[_.\-]?key)"#,
            r#"\\?["']?[ \t]*(?:=>|:=|[:=])[ \t]*\\?["']?"#,
            r#"(?P<secret>[A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|\z)"#,
        ),
    ),
    rule("github_token", Check::None, r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})(?-u:\b)"),
    rule("gitlab_token", Check::None, r"(?-u:\b)gl(?:pat|ptt|rt|dt|cbt|ft|soat)-[A-Za-z0-9_\-]{20,}"),
    rule("slack_token", Check::None, r"(?-u:\b)xox[abposr]-[A-Za-z0-9\-]{10,}"),
    rule(
        "slack_webhook",
        Check::None,
        r"hooks\.slack\.com/services/T[A-Za-z0-9]{4,}/B[A-Za-z0-9]{4,}/(?P<secret>[A-Za-z0-9]{16,})",
    ),
    rule("stripe_key", Check::None, r"(?-u:\b)[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    rule("google_api_key", Check::None, r"(?-u:\b)(?P<secret>AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|\z)"),
    rule("anthropic_api_key", Check::None, r"(?-u:\b)sk-ant-[A-Za-z0-9_\-]{20,}"),
    rule("openai_api_key", Check::LooksRandom, r"(?-u:\b)sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"),
    rule("jwt", Check::None, r"(?-u:\b)eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
    rule(
        "bearer_token",
        Check::None,
        concat!(
            r#"(?-u:\b)(?i-u:authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?i-u:bearer|token|bot)[ \t]+"#,
            r#"(?P<secret>[A-Za-z0-9\-._~+/]+=*)"#,
        ),
    ),
    rule(
        "basic_auth",
        Check::None,
        concat!(
            r#"(?-u:\b)(?i-u:authorization)\\?["']?[ \t]*[:=][ \t]*\\?["']?(?i-u:basic)[ \t]+"#,
            r#"(?P<secret>[A-Za-z0-9+/]+=*)"#,
        ),
    ),
    // "Bearer" outside a header is also a word ("the bearer certificates").
    rule("bearer_token", Check::LooksRandom, r"(?-u:\b)(?i-u:bearer)[ \t]+(?P<secret>[A-Za-z0-9\-._~+/]{16,}=*)"),
    rule(
        "url_password",
        Check::None,
        concat!(r#"(?-u:\b)[A-Za-z][A-Za-z0-9+.\-]{0,31}://[^\s:@/?#\[\]"'<>]*:"#, r#"(?P<secret>[^\s@/?#"'<>]+)@"#,),
    ),
    // ADO.NET / JDBC / ODBC style: `Server=db;User Id=app;Password=a b c;`.
    rule(
        "connection_string_password",
        Check::None,
        r#";[ \t]*(?i-u:password|pwd)[ \t]*=[ \t]*(?P<secret>[^;\r\n"']+)"#,
    ),
    named(Check::NamedValue, concat!(secret_name!(), r#"(?:=>|:=|[:=])[ \t]*\\?"(?P<secret>[^"\r\n]+?)\\?""#)),
    named(Check::NamedValue, concat!(secret_name!(), r#"(?:=>|:=|[:=])[ \t]*'(?P<secret>[^'\r\n]+)'"#)),
    named(Check::NamedValue, concat!(secret_name!(), r#"(?:=>|:=|=)[ \t]*"#, bare_value!())),
    named(Check::NamedRandomValue, concat!(secret_name!(), r#":[ \t]*"#, bare_value!())),
];

/// Does `value` look machine-generated rather than like a word of prose?
pub(super) fn looks_random(value: &str) -> bool {
    let has_digit = value.bytes().any(|b| b.is_ascii_digit());
    let has_alpha = value.bytes().any(|b| b.is_ascii_alphabetic());
    let mixed_case = value.bytes().any(|b| b.is_ascii_uppercase()) && value.bytes().any(|b| b.is_ascii_lowercase());
    (has_digit && has_alpha) || (value.len() >= 16 && mixed_case)
}

/// Is `value` a stand-in rather than a secret: a variable reference, a template slot, a
/// mask, or a literal like `null`?
pub(super) fn is_placeholder(value: &str) -> bool {
    let v = value.trim();
    v.is_empty()
        || v.starts_with(['$', '%', '{', '<'])
        || v.bytes().all(|b| matches!(b, b'*' | b'x' | b'X' | b'.' | b'-' | b'_'))
        || ["null", "none", "nil", "undefined", "true", "false", "empty", "redacted"]
            .iter()
            .any(|w| v.eq_ignore_ascii_case(w))
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
        Check::Benign => false,
        Check::LooksRandom => looks_random(secret),
        Check::NamedValue => !is_placeholder(secret),
        Check::NamedRandomValue => !is_placeholder(secret) && looks_random(secret),
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
    fn placeholders() {
        for v in ["${DB_PASSWORD}", "$PASS", "%s", "{{ secret }}", "<your-token>", "****", "xxxx", "null", ""] {
            assert!(is_placeholder(v), "{v}");
        }
        for v in ["hunter2", "changeme", "x1"] {
            assert!(!is_placeholder(v), "{v}");
        }
    }

    #[test]
    fn random_looking_values() {
        assert!(looks_random("abc123"));
        assert!(looks_random("AbCdEfGhIjKlMnOpQr"));
        assert!(!looks_random("required"));
        assert!(!looks_random("Required"));
        assert!(!looks_random("1234"));
    }

    #[test]
    fn markers() {
        assert!(is_marker("[REDACTED:aws_access_key_id]"));
        assert!(!is_marker("[REDACTED:]"));
        assert!(!is_marker("[REDACTED:x]tail"));
        assert!(!is_marker("[REDACTED:X Y]"));
    }
}
