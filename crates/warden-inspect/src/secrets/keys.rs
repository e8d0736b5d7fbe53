//! Does a field name say its value is a secret?
//!
//! A name is split into words at snake, kebab, dot and camel-case boundaries, so
//! `githubToken`, `auth_token` and `X-Api-Key` name secrets while `token_count` and
//! `max_tokens` do not: the *last* meaningful word decides, because a trailing word
//! like `count`, `type` or `url` says the value is about the secret, not the secret.

/// Words that may follow a secret word without changing what the value is
/// (`password_confirmation`, `token_value`, `password2`).
const IGNORED_TRAILING: &[&str] = &[
    "value",
    "val",
    "str",
    "string",
    "b64",
    "base64",
    "hex",
    "raw",
    "plain",
    "plaintext",
    "encoded",
    "confirm",
    "confirmation",
    "new",
    "old",
    "current",
];

/// One-word names of secrets, including the common lower-case compounds that camel and
/// snake splitting cannot see into (`accesstoken`, `apikey`).
const SECRET_WORDS: &[(&str, &str)] = &[
    ("password", "password"),
    ("passwd", "password"),
    ("passphrase", "password"),
    ("secret", "secret"),
    ("token", "secret"),
    ("credential", "secret"),
    ("credentials", "secret"),
    ("authorization", "secret"),
    ("cookie", "secret"),
    ("session", "secret"),
    ("sessionid", "secret"),
    ("apikey", "secret"),
    ("accesskey", "secret"),
    ("secretkey", "secret"),
    ("privatekey", "secret"),
    ("accesstoken", "secret"),
    ("authtoken", "secret"),
    ("refreshtoken", "secret"),
    ("apitoken", "secret"),
    ("idtoken", "secret"),
    ("sessiontoken", "secret"),
    ("clientsecret", "secret"),
    ("pat", "secret"),
];

/// `<word> key` pairs that name a secret; `key` alone (a lookup key) and `public_key` do not.
const SECRET_KEY_QUALIFIERS: &[&str] = &[
    "api",
    "access",
    "private",
    "secret",
    "signing",
    "encryption",
    "master",
    "client",
    "auth",
    "app",
    "sdk",
    "admin",
    "write",
    "license",
    "subscription",
    "functions",
];

/// Tokens that page or resume rather than authenticate; redacting them breaks tools.
/// `progressToken` (MCP) names a progress stream, not a credential.
const BENIGN_TOKEN_QUALIFIERS: &[&str] =
    &["next", "page", "continuation", "pagination", "sync", "cursor", "resume", "progress"];

/// The marker kind for a value held under `name`, or `None` when the name does not say
/// the value is a secret.
pub(crate) fn classify_key(name: &str) -> Option<&'static str> {
    // Names past this length are not field names anyone writes; bound the work.
    if name.len() > 128 {
        return None;
    }
    // Most names hold none of the secret words; skip splitting them.
    if !HINTS.iter().any(|hint| contains_ignore_ascii_case(name, hint)) {
        return None;
    }
    let mut words = split_words(name);
    while words.last().is_some_and(|w| IGNORED_TRAILING.contains(&w.as_str()) || w.bytes().all(|b| b.is_ascii_digit()))
    {
        words.pop();
    }
    let last = words.last()?.as_str();
    let previous = words.len().checked_sub(2).map(|i| words[i].as_str());
    match (previous, last) {
        (Some(p), "key") if SECRET_KEY_QUALIFIERS.contains(&p) => Some("secret"),
        (Some("session"), "id") => Some("secret"),
        // `db_pwd` is a password; a bare `PWD` is the shell's working directory.
        (Some(_), "pwd") => Some("password"),
        (Some(p), "token") if BENIGN_TOKEN_QUALIFIERS.contains(&p) => None,
        _ => SECRET_WORDS.iter().find(|(word, _)| *word == last).map(|(_, kind)| *kind),
    }
}

/// Substrings every secret name holds one of (`pwd` and `passwd` hold none of the others).
const HINTS: &[&str] = &["pass", "pwd", "secret", "token", "key", "credential", "authorization", "cookie", "session"];

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Lower-cased words of an identifier: separators are any non-alphanumeric character,
/// plus camel-case humps (`apiKey`, `APIKey`) and letter/digit changes (`password2`).
fn split_words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if let Some(&prev) = i.checked_sub(1).and_then(|p| chars.get(p)) {
            let next = chars.get(i + 1).copied();
            let hump = prev.is_lowercase() && c.is_uppercase();
            let acronym_end = prev.is_uppercase() && c.is_uppercase() && next.is_some_and(char::is_lowercase);
            let digit_change = prev.is_alphanumeric() && prev.is_numeric() != c.is_numeric();
            if (hump || acronym_end || digit_change) && !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_in_every_case_style() {
        for name in [
            "password",
            "PASSWORD",
            "db_password",
            "dbPassword",
            "new-password",
            "password_confirmation",
            "password2",
            "passwd",
            "db_pwd",
            "passphrase",
        ] {
            assert_eq!(classify_key(name), Some("password"), "{name}");
        }
        for name in [
            "token",
            "auth_token",
            "githubToken",
            "access_token",
            "accessToken",
            "accesstoken",
            "x-api-key",
            "X-Api-Key",
            "api_key",
            "apiKey",
            "APIKey",
            "apikey",
            "API_KEY",
            "access_key",
            "AWS_SECRET_ACCESS_KEY",
            "private_key",
            "privateKey",
            "client_secret",
            "clientSecret",
            "secret",
            "Authorization",
            "cookie",
            "Set-Cookie",
            "session",
            "session_id",
            "sessionId",
            "credentials",
            "refresh_token_value",
        ] {
            assert_eq!(classify_key(name), Some("secret"), "{name}");
        }
    }

    #[test]
    fn names_about_secrets_are_not_secrets() {
        for name in [
            "token_count",
            "max_tokens",
            "maxTokens",
            "tokens",
            "tokenizer",
            "next_token",
            "nextPageToken",
            "page_token",
            "key",
            "public_key",
            "primaryKey",
            "monkey",
            "access_key_id",
            "password_hint",
            "secret_name",
            "PWD",
            "OLDPWD",
            "session_count",
            "id",
            "",
            "___",
        ] {
            assert_eq!(classify_key(name), None, "{name}");
        }
    }

    #[test]
    fn long_names_are_not_examined() {
        let name = format!("{}_password", "a".repeat(200));
        assert_eq!(classify_key(&name), None);
    }

    #[test]
    fn words_split_at_humps_acronyms_and_digits() {
        assert_eq!(split_words("XMLHttpRequest2x"), ["xml", "http", "request", "2", "x"]);
        assert_eq!(split_words("x-api.key__v"), ["x", "api", "key", "v"]);
    }
}
