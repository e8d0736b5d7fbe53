//! What a server entry exposes before Warden is in front of it: credentials written into its
//! environment or headers, and URLs that travel in the clear or lead to private or cloud
//! metadata addresses. `warden scan` reports these for every MCP client's configuration on a
//! machine; `warden import` moves the credentials out and refuses what it must.
//!
//! A credential is reported by its kind, never its value.

use super::launch::{Flag, Severity};
use std::net::{IpAddr, ToSocketAddrs};
use std::time::Duration;
use warden_inspect::secrets::SecretScanner;

/// How long a URL's host name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Words in a variable or header name that say its value is a credential.
const CREDENTIAL_WORDS: &[&str] = &[
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "APIKEY",
    "API_KEY",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "AUTH",
    "COOKIE",
    "SESSION",
];

/// The kind of credential `value` is, given the name it is set under (an environment variable
/// or a header); `None` when it does not look like one. References the client expands itself
/// (`${VAR}`, `$VAR`, `${env:VAR}`, `{{…}}`, `<…>`) are not credentials.
pub fn credential_kind(scanner: &SecretScanner, name: &str, value: &str) -> Option<String> {
    let value = value.trim();
    // `Bearer ${env:TOKEN}`: the scheme is written out, the credential is a reference.
    let credential = match value.split_once(' ') {
        Some((scheme, rest)) if ["bearer", "basic", "token"].contains(&scheme.to_ascii_lowercase().as_str()) => {
            rest.trim()
        }
        _ => value,
    };
    if credential.is_empty() || is_reference(credential) {
        return None;
    }
    if let Some(m) = scanner.find(value).first() {
        return Some(m.kind.to_owned());
    }
    // Key-value rules look at the name too (`password=…`).
    if let Some(m) = scanner.find(&format!("{name}={value}")).first() {
        return Some(m.kind.to_owned());
    }
    let upper = name.to_ascii_uppercase().replace('-', "_");
    if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("proxy-authorization") {
        let scheme = value.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        return Some(match scheme.as_str() {
            "bearer" => "bearer_token".to_owned(),
            "basic" => "basic_credentials".to_owned(),
            _ => "authorization_header".to_owned(),
        });
    }
    let named = CREDENTIAL_WORDS.iter().any(|w| upper.contains(w)) || upper.ends_with("_KEY") || upper == "KEY";
    // A flag or a setting (`true`, `1`, `readonly`, a path) under such a name is not a secret.
    let looks_secret = value.len() >= 8
        && !value.contains(char::is_whitespace)
        && !value.starts_with('/')
        && !value.starts_with("./")
        && !value.starts_with("~/")
        && !value.contains("://")
        && value.chars().any(|c| c.is_ascii_digit() || c.is_ascii_punctuation())
        && value.chars().any(|c| c.is_ascii_alphabetic());
    (named && looks_secret).then(|| "credential_named_by_its_variable".to_owned())
}

/// Whether `value` is a reference its client expands, not a value: a variable
/// ([`reference_variable`], or any `${…}`), or a placeholder (`{{…}}`, `<…>`, `%…%`).
fn is_reference(value: &str) -> bool {
    (value.starts_with("${") && value.ends_with('}'))
        || reference_variable(value).is_some()
        || (value.starts_with("{{") && value.ends_with("}}"))
        || (value.starts_with('<') && value.ends_with('>'))
        || (value.starts_with('%') && value.ends_with('%') && value.len() > 2)
}

/// The variable a value its client expands names (`${VAR}`, `${env:VAR}`, `$VAR`,
/// `${input:id}`), as an environment variable name ([`variable_name`]).
pub fn reference_variable(value: &str) -> Option<String> {
    let inner = value.strip_prefix("${").and_then(|v| v.strip_suffix('}'));
    let name = match inner {
        Some(i) => i.strip_prefix("env:").or_else(|| i.strip_prefix("input:")).unwrap_or(i),
        None => value.strip_prefix('$')?,
    };
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .then(|| variable_name(name))
}

/// An environment variable name made of `text`: upper case, `_` for anything else.
pub fn variable_name(text: &str) -> String {
    let mut v: String =
        text.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if v.starts_with(|c: char| c.is_ascii_digit()) {
        v.insert(0, '_');
    }
    v
}

/// Flags for a server's credentials written in plain text into its `env` (`where_ = "env"`) or
/// `headers`, by kind.
pub fn credential_flags<'a>(
    scanner: &SecretScanner,
    where_: &str,
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<Flag> {
    entries
        .into_iter()
        .filter_map(|(name, value)| {
            let kind = credential_kind(scanner, name, value)?;
            Some(Flag::new(
                "plaintext-secret",
                Severity::High,
                format!("{where_} {name} holds a credential in plain text ({kind}); the value is not shown"),
            ))
        })
        .collect()
}

/// Flags for a server URL: not https (other than to this machine), not parseable, or leading to
/// a private, loopback-only or cloud metadata address. With `resolve`, the host name is looked
/// up (for at most a few seconds) and every address it resolves to is checked.
pub fn url_flags(url: &str, resolve: bool) -> Vec<Flag> {
    let mut out = vec![];
    let Ok(parsed) = reqwest::Url::parse(url) else {
        out.push(Flag::new("bad-url", Severity::Medium, format!("the URL {} does not parse", shown_url(url))));
        return out;
    };
    out.extend(url_credential_flags(&parsed));
    let host = parsed.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) if resolve && !host.is_empty() => lookup(&host, port),
        Err(_) => vec![],
    };
    let local = host.eq_ignore_ascii_case("localhost") || addresses.iter().any(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if local => {}
        "http" => out.push(Flag::new(
            "plain-http",
            Severity::High,
            format!("{} is plain http: credentials and tool traffic cross the network unencrypted", shown(&parsed)),
        )),
        other => out.push(Flag::new("bad-url", Severity::Medium, format!("unexpected URL scheme {other:?}"))),
    }
    for ip in addresses {
        let Some(why) = warden_upstream::egress::non_public(ip) else { continue };
        if ip.is_loopback() {
            continue;
        }
        let metadata = why.contains("metadata");
        out.push(Flag::new(
            if metadata { "metadata-address" } else { "private-address" },
            if metadata { Severity::Critical } else { Severity::Medium },
            format!("{} leads to {why} ({ip})", shown(&parsed)),
        ));
        if metadata {
            break;
        }
    }
    out
}

/// Flags for credentials a URL carries: a password in its user information, or a query parameter
/// whose value is a credential (`?api_key=…`).
fn url_credential_flags(url: &reqwest::Url) -> Vec<Flag> {
    let scanner = SecretScanner::new();
    let mut out = vec![];
    if url.password().is_some_and(|p| !p.is_empty()) {
        out.push(Flag::new(
            "plaintext-secret",
            Severity::High,
            format!("{} carries a password in its user information; the value is not shown", shown(url)),
        ));
    }
    for (k, v) in url.query_pairs() {
        if let Some(kind) = credential_kind(&scanner, &k, &v) {
            out.push(Flag::new(
                "plaintext-secret",
                Severity::High,
                format!(
                    "{} carries a credential in its query parameter {k:?} ({kind}); the value is not shown",
                    shown(url)
                ),
            ));
        }
    }
    out
}

/// Flags for credentials written into a command's arguments: a value the secret scanner
/// recognises, or the value of a credential-named option (`--token X`, `--api-key=X`, `-e
/// GITHUB_TOKEN=X`, `API_KEY=X`). Reported by position and kind, never the value.
pub fn argument_flags(scanner: &SecretScanner, args: &[String]) -> Vec<Flag> {
    argument_credentials(scanner, args)
        .into_iter()
        .map(|(i, kind)| {
            Flag::new(
                "plaintext-secret",
                Severity::High,
                format!("argument {} holds a credential in plain text ({kind}); the value is not shown", i + 1),
            )
        })
        .collect()
}

/// The arguments (by index) holding a credential, and its kind.
pub fn argument_credentials(scanner: &SecretScanner, args: &[String]) -> Vec<(usize, String)> {
    let mut out = vec![];
    for (i, a) in args.iter().enumerate() {
        if let Some(m) = scanner.find(a).first() {
            out.push((i, m.kind.to_owned()));
            continue;
        }
        // `--name=value`, `NAME=value` (as `-e`/`--env` take it, or a shell assignment).
        if let Some((name, value)) = a.split_once('=')
            && let Some(kind) = credential_kind(scanner, name.trim_start_matches('-'), value)
        {
            out.push((i, kind));
            continue;
        }
        // `--name value`.
        if i > 0
            && let Some(flag) = args[i - 1].strip_prefix("--").or_else(|| args[i - 1].strip_prefix('-'))
            && flag.len() > 1
            && !flag.contains('=')
            && !a.starts_with('-')
            && let Some(kind) = credential_kind(scanner, flag, a)
        {
            out.push((i, kind));
        }
    }
    out
}

/// `url` fit to show: without user information, query or fragment (they may carry
/// credentials); one that does not parse is cut before any of them.
pub fn shown_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => shown(&u),
        Err(_) => {
            let cut = url.split(['?', '#']).next().unwrap_or("");
            let cut = cut.rsplit_once('@').map_or(cut, |(_, host)| host);
            super::printable(&cut.chars().take(200).collect::<String>())
        }
    }
}

/// The directory holding the code a server runs from a local path (`node /opt/x/dist/index.js`):
/// the project above its `node_modules` (its dependencies are there), else the nearest directory
/// holding a `package.json` or `pyproject.toml`, else the script's own directory. The sandbox
/// denies every other file, so without read access to it the server cannot start.
pub fn script_root(args: &[String]) -> Option<std::path::PathBuf> {
    let script = args.iter().map(std::path::Path::new).find(|p| p.is_absolute() && p.is_file())?;
    let script = std::fs::canonicalize(script).ok()?;
    let dir = script.parent()?;
    if let Some(nm) = dir.ancestors().find(|d| d.file_name().is_some_and(|n| n == "node_modules")) {
        return nm.parent().map(std::path::Path::to_path_buf);
    }
    let marked = dir.ancestors().find(|d| d.join("package.json").is_file() || d.join("pyproject.toml").is_file());
    Some(marked.unwrap_or(dir).to_path_buf())
}

/// The URL without its user information, query or fragment (they may carry credentials).
fn shown(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// The addresses `host` resolves to, or none when it does not resolve in time.
fn lookup(host: &str, port: u16) -> Vec<IpAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    let target = (host.to_owned(), port);
    std::thread::spawn(move || {
        let found: Vec<IpAddr> = target.to_socket_addrs().map(|a| a.map(|s| s.ip()).collect()).unwrap_or_default();
        let _ = tx.send(found);
    });
    rx.recv_timeout(RESOLVE_TIMEOUT).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_found_by_kind_and_references_are_not() {
        let s = SecretScanner::new();
        let ghp = format!("ghp_{}", "a1B2c3D4".repeat(5));
        assert_eq!(credential_kind(&s, "GITHUB_PERSONAL_ACCESS_TOKEN", &ghp).as_deref(), Some("github_token"));
        assert!(credential_kind(&s, "TICKETS_API_KEY", "k7Qx-99aa-Zt31").is_some());
        assert_eq!(
            credential_kind(&s, "SERVICE_AUTH", "k7Qx99aaZt31").as_deref(),
            Some("credential_named_by_its_variable")
        );
        assert_eq!(credential_kind(&s, "Authorization", "Bearer abc.def").as_deref(), Some("bearer_token"));
        for (name, value) in [
            ("GITHUB_TOKEN", "${GITHUB_TOKEN}"),
            ("GITHUB_TOKEN", "$GITHUB_TOKEN"),
            ("API_KEY", "${env:API_KEY}"),
            ("API_KEY", "<your key>"),
            ("AUTH_MODE", "readonly"),
            ("TOKEN_FILE", "/run/secrets/token"),
            ("DEBUG", "1"),
            ("SESSION_TIMEOUT", "30"),
            ("LOG_LEVEL", "debug-verbose-2"),
        ] {
            assert_eq!(credential_kind(&s, name, value), None, "{name}={value}");
        }
        // A scheme written before a reference the client expands (built here so that the source
        // holds nothing shaped like a credential).
        for reference in ["${env:TICKETS_TOKEN}", "${input:api-key}"] {
            assert_eq!(credential_kind(&s, "Authorization", &format!("Bearer {reference}")), None, "{reference}");
        }
        let flags = credential_flags(&s, "env", [("GITHUB_TOKEN", ghp.as_str())]);
        assert_eq!(flags.len(), 1);
        assert!(!flags[0].message.contains(&ghp), "{}", flags[0]);
    }

    #[test]
    fn credentials_in_arguments_are_found_by_position() {
        let s = SecretScanner::new();
        let value = ["k7Qx", "99aa", "Zt31"].concat();
        let args: Vec<String> = [
            "-y",
            "srv@1.0.0",
            "--api-key",
            &value,
            &format!("--token={value}"),
            "-e",
            &format!("DB_PASSWORD={value}"),
            "--port",
            "8080",
            "--log-level",
            "debug",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
        let found: Vec<usize> = argument_credentials(&s, &args).into_iter().map(|(i, _)| i).collect();
        assert_eq!(found, [3, 4, 6]);
        assert!(argument_flags(&s, &args).iter().all(|f| !f.message.contains(&value)));
    }

    #[test]
    fn urls_in_the_clear_or_to_private_and_metadata_addresses_are_flagged() {
        let rules = |u: &str| url_flags(u, false).into_iter().map(|f| f.rule).collect::<Vec<_>>();
        assert_eq!(rules("http://169.254.169.254/latest/meta-data/"), ["plain-http", "metadata-address"]);
        assert_eq!(rules("https://10.1.2.3/mcp"), ["private-address"]);
        assert_eq!(rules("http://api.example.com/mcp"), ["plain-http"]);
        assert!(rules("https://api.example.com/mcp").is_empty());
        assert!(rules("http://127.0.0.1:8787/mcp").is_empty());
        assert!(rules("http://localhost:8787/mcp").is_empty());
        assert_eq!(rules("not a url"), ["bad-url"]);
        assert_eq!(rules("https://u:pw-9x@h.example/mcp"), ["plaintext-secret"]);
        assert_eq!(rules("https://h.example/mcp?api_key=k7Qx99aaZt31&x=1"), ["plaintext-secret"]);
        let bad = url_flags("ht tp://u:pw@h/x?api_key=k7Qx99aaZt31", false);
        assert!(!bad[0].message.contains("pw") && !bad[0].message.contains("k7Qx"), "{}", bad[0]);
        let shown = url_flags("http://user:pw@h.example/mcp?token=abc", false);
        assert!(!shown[0].message.contains("pw") && !shown[0].message.contains("abc"), "{}", shown[0]);
    }
}
