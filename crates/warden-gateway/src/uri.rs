//! URI normal form, for deciding on, resolving and forwarding resource URIs in one spelling.
//!
//! RFC 3986 section 6.2.2, and a little more, so that spellings a server would read as one
//! resource are one string for the policies: the scheme and host are lower-cased; every
//! percent-encoding of a character that may stand for itself is decoded (unreserved and
//! sub-delimiter ASCII, and whole UTF-8 characters); the rest (`:`, `?`, `#`, `[`, `]`, `@`, `%`,
//! space) stay encoded, upper-cased; repeated `/` are collapsed and `.` and `..` segments removed;
//! `file://localhost/` and `file:/` become `file:///`.
//!
//! What has no single meaning is refused: an encoded `/` or `\` (a server may decode it into a
//! separator after the policies decided), an encoded or literal control character, white space or
//! invisible character, a backslash, a `..` that climbs above the root or stands in a rootless
//! path, a malformed percent-encoding, and a URI without a scheme. Letter case inside paths is
//! kept: on a case-insensitive filesystem, write policies on the case a server lists.

/// The normal form of a URI, or why it has none.
pub fn normalize_uri(uri: &str) -> Result<String, &'static str> {
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("it holds white space or a control character");
    }
    if uri.contains('\\') {
        return Err("it holds a backslash");
    }
    let (scheme, rest) = uri.split_once(':').ok_or("it has no scheme")?;
    let valid_scheme = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !valid_scheme {
        return Err("it has no valid scheme");
    }
    let scheme = scheme.to_ascii_lowercase();
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (mut authority, path) = match rest.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(i) => (Some(after[..i].to_ascii_lowercase()), &after[i..]),
            None => (Some(after.to_ascii_lowercase()), ""),
        },
        None => (None, rest),
    };
    if scheme == "file" {
        // `file://localhost/x`, `file:/x` and `file:///x` name one file.
        if authority.as_deref().is_none_or(|a| a == "localhost") && (path.starts_with('/') || authority.is_some()) {
            authority = Some(String::new());
        }
    }
    let mut out = scheme;
    out.push(':');
    if let Some(authority) = authority {
        out.push_str("//");
        out.push_str(&decode_percent(&authority)?);
    }
    let path = decode_percent(path)?;
    if path.starts_with('/') {
        out.push_str(&remove_dot_segments(&path)?);
    } else if path.split('/').any(|s| s == "." || s == "..") {
        return Err("it has a dot segment in a path without a root");
    } else {
        out.push_str(&path);
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(&decode_percent(q)?);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(&decode_percent(f)?);
    }
    let (_, hidden) = warden_inspect::sanitize::clean_text(&out);
    if hidden.total() > 0 {
        return Err("it holds an invisible or control character");
    }
    Ok(out)
}

/// Decodes each percent-encoding of a character that may stand for itself, upper-cases the rest,
/// and refuses encodings that would change the structure once a server decodes them.
fn decode_percent(part: &str) -> Result<String, &'static str> {
    let bytes = part.as_bytes();
    let mut out = String::with_capacity(part.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            let ch = part[i..].chars().next().ok_or("it is not valid text")?;
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        // A run of encoded bytes: ASCII ones one by one, the others as whole UTF-8 characters.
        let mut run = Vec::new();
        while i < bytes.len() && bytes[i] == b'%' {
            let pair = bytes.get(i + 1..i + 3).ok_or("it holds a malformed percent-encoding")?;
            if !pair.iter().all(u8::is_ascii_hexdigit) {
                return Err("it holds a malformed percent-encoding");
            }
            let hex = std::str::from_utf8(pair).map_err(|_| "it holds a malformed percent-encoding")?;
            run.push(u8::from_str_radix(hex, 16).map_err(|_| "it holds a malformed percent-encoding")?);
            i += 3;
        }
        push_decoded(&run, &mut out)?;
    }
    Ok(out)
}

fn push_decoded(run: &[u8], out: &mut String) -> Result<(), &'static str> {
    let mut rest = run;
    while let Some(&b) = rest.first() {
        if b < 0x80 {
            match b {
                b'/' | b'\\' => return Err("it holds an encoded separator"),
                0..=0x1f | 0x7f => return Err("it holds an encoded control character"),
                b':' | b'?' | b'#' | b'[' | b']' | b'@' | b'%' | b' ' => out.push_str(&format!("%{b:02X}")),
                _ => out.push(b as char),
            }
            rest = &rest[1..];
            continue;
        }
        let len = rest.iter().take_while(|b| **b >= 0x80).count();
        let (multibyte, after) = rest.split_at(len);
        match std::str::from_utf8(multibyte) {
            Ok(text) => out.push_str(text),
            Err(_) => {
                for b in multibyte {
                    out.push_str(&format!("%{b:02X}"));
                }
            }
        }
        rest = after;
    }
    Ok(())
}

/// RFC 3986 5.2.4 on an absolute path, with repeated separators collapsed; a `..` above the root
/// is refused rather than dropped.
fn remove_dot_segments(path: &str) -> Result<String, &'static str> {
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing = false;
    for (i, segment) in segments.into_iter().enumerate() {
        match segment {
            "" | "." => trailing = i == last,
            ".." => {
                kept.pop().ok_or("it climbs above the root")?;
                trailing = i == last;
            }
            s => {
                kept.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::from("/");
    out.push_str(&kept.join("/"));
    if trailing && !kept.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_path_become_one() {
        for spelled in [
            "file:///srv/secret/key",
            "file:///srv/public/../secret/key",
            "file:///srv/./secret/key",
            "file:///srv//secret/key",
            "file:///srv/%73ecret/key",
            "file:///srv/%2e%2e/srv/secret/key",
            "FILE:///srv/secret/./key",
            "file:///srv/secret/key/.",
            "file://localhost/srv/secret/key",
            "file:/srv/secret/key",
        ] {
            let normal = normalize_uri(spelled).unwrap();
            assert!(normal.starts_with("file:///srv/secret/key"), "{spelled} became {normal}");
        }
        assert_eq!(normalize_uri("demo://Notes/a/../b?x=%7e#%41").unwrap(), "demo://notes/b?x=~#A");
        assert_eq!(normalize_uri("urn:isbn:0451450523").unwrap(), "urn:isbn:0451450523");
        assert_eq!(normalize_uri("file:///a%20b/").unwrap(), "file:///a%20b/");
        assert_eq!(normalize_uri("file:///caf%C3%A9").unwrap(), "file:///café", "a character may stand for itself");
        assert_eq!(normalize_uri("file:///a%2Bb%3bc").unwrap(), "file:///a+b;c");
        assert_eq!(normalize_uri("file:///a%3fb").unwrap(), "file:///a%3Fb", "a delimiter stays encoded");
        assert_eq!(normalize_uri("file:///x%ff").unwrap(), "file:///x%FF", "a byte that is no character stays encoded");
    }

    #[test]
    fn what_has_no_single_meaning_is_refused() {
        for bad in [
            "file:///srv/..%2fsecret",
            "file:///srv/%5c..",
            "file:///srv/%00",
            "file:///srv/%0a",
            "file:///../etc/passwd",
            "file:///srv/a\\..\\b",
            "file:///srv/a b",
            "no-scheme/path",
            "file:///srv/%zz",
            "file:///srv/%4",
            "file:///srv/%+2",
            "1http://x",
            "notes:public/../secret/x",
            "notes:./x",
            "file:///srv/\u{200b}secret",
            "file:///srv/%E2%80%8Bsecret",
        ] {
            assert!(normalize_uri(bad).is_err(), "{bad} was accepted as {:?}", normalize_uri(bad));
        }
    }
}
