//! URI normal form (RFC 3986 section 6.2.2), for deciding on, resolving and forwarding resource
//! URIs in one spelling.

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
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match rest.strip_prefix("//") {
        Some(after) => match after.find('/') {
            Some(i) => (Some(&after[..i]), &after[i..]),
            None => (Some(after), ""),
        },
        None => (None, rest),
    };
    let mut out = scheme.to_ascii_lowercase();
    out.push(':');
    if let Some(authority) = authority {
        out.push_str("//");
        out.push_str(&decode_unreserved(authority)?.to_ascii_lowercase());
    }
    let path = decode_unreserved(path)?;
    if path.starts_with('/') {
        out.push_str(&remove_dot_segments(&path)?);
    } else {
        out.push_str(&path);
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(&decode_unreserved(q)?);
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(&decode_unreserved(f)?);
    }
    Ok(out)
}

/// Decodes percent-encoded unreserved characters, upper-cases the rest, and refuses encodings
/// that would change the structure once a server decodes them.
fn decode_unreserved(part: &str) -> Result<String, &'static str> {
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
        let hex = part.get(i + 1..i + 3).ok_or("it holds a malformed percent-encoding")?;
        let byte = u8::from_str_radix(hex, 16).map_err(|_| "it holds a malformed percent-encoding")?;
        match byte {
            b'/' | b'\\' | 0 => return Err("it holds an encoded separator or NUL"),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => out.push(b as char),
            b => out.push_str(&format!("%{b:02X}")),
        }
        i += 3;
    }
    Ok(out)
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
            "" => trailing = i == last,
            "." => trailing = i == last,
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
        ] {
            let normal = normalize_uri(spelled).unwrap();
            assert!(normal.starts_with("file:///srv/secret/key"), "{spelled} became {normal}");
        }
        assert_eq!(normalize_uri("demo://Notes/a/../b?x=%7e#%41").unwrap(), "demo://notes/b?x=~#A");
        assert_eq!(normalize_uri("urn:isbn:0451450523").unwrap(), "urn:isbn:0451450523");
        assert_eq!(normalize_uri("file:///a%20b/").unwrap(), "file:///a%20b/");
        assert_eq!(normalize_uri("file:///a%2fb").err(), Some("it holds an encoded separator or NUL"));
    }

    #[test]
    fn what_has_no_single_meaning_is_refused() {
        for bad in [
            "file:///srv/..%2fsecret",
            "file:///srv/%5c..",
            "file:///srv/%00",
            "file:///../etc/passwd",
            "file:///srv/a\\..\\b",
            "file:///srv/a b",
            "no-scheme/path",
            "file:///srv/%zz",
            "file:///srv/%4",
            "1http://x",
        ] {
            assert!(normalize_uri(bad).is_err(), "{bad} was accepted as {:?}", normalize_uri(bad));
        }
    }
}
