//! Path arguments: normalized the way a file system would read them, so a policy can confine them
//! to roots without being fooled by `..`, `.`, repeated or backward separators, or `file:` URIs.
//!
//! Normalization is lexical. It cannot see symbolic links inside a root that point outside it;
//! a server that follows links must confine itself too (the reference filesystem server does).

/// The normal form of a path argument: absolute, `/`-separated, without `.`, `..` or empty
/// components. `None` when the argument cannot be pinned to one absolute path: it is empty,
/// holds a NUL or control character, starts with `~`, is a URI other than `file:`, names a
/// Windows drive (`C:`) or network share (`\\host\share`, `//host/share`), or is relative and no
/// base directory is known.
pub fn normalize(raw: &str, base: Option<&str>) -> Option<String> {
    if raw.is_empty() || raw.len() > 4096 || raw.chars().any(char::is_control) {
        return None;
    }
    let path = match raw.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("file://") => file_uri_path(&raw[7..])?,
        _ if has_uri_scheme(raw) => return None,
        _ => raw.to_owned(),
    };
    if path.chars().any(char::is_control) || path.starts_with('~') {
        return None;
    }
    // A server on Windows reads `\` as a separator: treat it as one, whatever this host does.
    let path = path.replace('\\', "/");
    // Drives and shares are other file systems: no root here can hold them.
    let drive = path.as_bytes().get(..2).is_some_and(|p| p[0].is_ascii_alphabetic() && p[1] == b':');
    if drive || path.starts_with("//") {
        return None;
    }
    let joined = if path.starts_with('/') {
        path
    } else {
        let base = normalize(base?, None)?;
        format!("{base}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// Whether a normalized path is one of `roots` (normalized) or inside one.
pub fn within(path: &str, roots: &[String]) -> bool {
    roots.iter().any(|root| {
        let root = root.trim_end_matches('/');
        root.is_empty() || path == root || path.strip_prefix(root).is_some_and(|rest| rest.starts_with('/'))
    })
}

fn has_uri_scheme(s: &str) -> bool {
    // `scheme:` with at least two characters, so that a Windows drive letter (`C:`) is not one.
    match s.split_once(':') {
        Some((scheme, _)) => {
            scheme.len() > 1
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// The path of a `file://` URI (after the scheme), percent-decoded. Only local hosts are accepted.
fn file_uri_path(rest: &str) -> Option<String> {
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => return None,
    };
    if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    percent_decode(path)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Option<String> {
        normalize(s, None)
    }

    #[test]
    fn dot_segments_and_separators_are_resolved() {
        assert_eq!(n("/srv/data/a.txt").as_deref(), Some("/srv/data/a.txt"));
        assert_eq!(n("/srv/data/../../etc/passwd").as_deref(), Some("/etc/passwd"));
        assert_eq!(n("/srv/data/./x/../y").as_deref(), Some("/srv/data/y"));
        assert_eq!(n("/srv///data//").as_deref(), Some("/srv/data"));
        assert_eq!(n("/srv/data\\..\\..\\etc\\shadow").as_deref(), Some("/etc/shadow"));
        assert_eq!(n("/../../..").as_deref(), Some("/"));
    }

    #[test]
    fn file_uris_are_decoded_and_other_schemes_refused() {
        assert_eq!(n("file:///srv/data/a%20b").as_deref(), Some("/srv/data/a b"));
        assert_eq!(n("file:///srv/data/%2e%2e/%2e%2e/etc").as_deref(), Some("/etc"));
        assert_eq!(n("FILE://localhost/srv/x").as_deref(), Some("/srv/x"));
        assert_eq!(n("file://evil.example/srv/x"), None);
        assert_eq!(n("file:///srv/%00/x"), None, "an encoded NUL");
        assert_eq!(n("file:///srv/%zz"), None);
        assert_eq!(n("https://example.com/a"), None);
    }

    #[test]
    fn unpinnable_paths_are_refused() {
        assert_eq!(n(""), None);
        assert_eq!(n("~/.ssh/id_rsa"), None);
        assert_eq!(n("/srv/data\0/../x"), None);
        assert_eq!(n("/srv/data/\n"), None);
        assert_eq!(n("relative/path"), None, "relative with no base");
        assert_eq!(normalize("a/../../etc", Some("/srv/data")).as_deref(), Some("/srv/etc"));
        for other_fs in ["C:/x", "c:\\windows\\system32", "C:x", "\\\\host\\share\\x", "//host/share/x"] {
            assert_eq!(normalize(other_fs, Some("/srv")), None, "{other_fs}");
        }
    }

    #[test]
    fn within_compares_whole_components() {
        let roots = vec!["/srv/data".to_owned()];
        assert!(within("/srv/data", &roots));
        assert!(within("/srv/data/x/y", &roots));
        assert!(!within("/srv/database/x", &roots), "a sibling sharing a prefix is outside");
        assert!(!within("/srv", &roots));
        assert!(!within("/etc/passwd", &roots));
        assert!(within("/srv/data/x", &["/srv/data/".to_owned()]));
        assert!(!within("/x", &[]));
    }
}
