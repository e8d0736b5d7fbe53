//! Exposed names: how a server's tools and prompts are named to clients, and how a name a client
//! sends is traced back to a server. Also matching resource URIs against URI templates, and how a
//! name chosen by someone else is shown in messages.

use regex_automata::meta::Regex;

/// Exposes `name` under `namespace`: `files__read_file`, or `name` itself for an empty namespace.
pub fn expose(namespace: &str, separator: &str, name: &str) -> String {
    if namespace.is_empty() { name.to_owned() } else { format!("{namespace}{separator}{name}") }
}

/// Every `(index, upstream name)` an exposed name could refer to, given each server's namespace.
/// More than one candidate is possible only with unprefixed servers; the caller keeps those whose
/// inventory really has the name, and refuses a name that still matches more than one.
pub fn candidates<'a>(
    exposed: &'a str,
    separator: &str,
    namespaces: impl Iterator<Item = &'a str>,
) -> Vec<(usize, &'a str)> {
    namespaces
        .enumerate()
        .filter_map(|(i, ns)| {
            if ns.is_empty() {
                Some((i, exposed))
            } else {
                exposed
                    .strip_prefix(ns)
                    .and_then(|rest| rest.strip_prefix(separator))
                    .filter(|r| !r.is_empty())
                    .map(|r| (i, r))
            }
        })
        .collect()
}

/// A name or URI as it may appear in an error message or a log line: bounded and without
/// control characters.
pub fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(200).map(|c| if c.is_control() { '?' } else { c }).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Text someone else chose, made fit for the gateway's own log: escapes and invisible characters
/// removed, secrets redacted, on one line, at most 2000 characters.
pub fn for_log(text: &str) -> String {
    const MOST: usize = 2000;
    static SECRETS: std::sync::OnceLock<warden_inspect::SecretScanner> = std::sync::OnceLock::new();
    let (cleaned, _) = warden_inspect::sanitize::clean_text(text);
    let (redacted, _) = SECRETS.get_or_init(warden_inspect::SecretScanner::new).redact_str(&cleaned);
    let mut out: String = redacted.chars().take(MOST).map(|c| if c.is_control() { ' ' } else { c }).collect();
    if redacted.chars().count() > MOST {
        out.push('…');
    }
    out
}

/// A compiled RFC 6570 URI template, for deciding which server a resource URI belongs to.
#[derive(Debug, Clone)]
pub struct UriTemplate {
    regex: Regex,
}

impl UriTemplate {
    /// Compiles a template; `None` when it is malformed or too complex.
    pub fn compile(template: &str) -> Option<Self> {
        if template.len() > 2048 {
            return None;
        }
        let mut pattern = String::from("^");
        let mut rest = template;
        let mut expressions = 0;
        while let Some(open) = rest.find('{') {
            pattern.push_str(&regex_escape(&rest[..open]));
            let close = rest[open..].find('}')? + open;
            let expr = &rest[open + 1..close];
            expressions += 1;
            if expressions > 16 || expr.is_empty() {
                return None;
            }
            pattern.push_str(match expr.chars().next()? {
                // Reserved and fragment expansion may contain anything.
                '+' | '#' => "(?s:.*)",
                // Path segments and parameters.
                '/' => "(?:/[^/?#]*)*",
                ';' => "(?:;[^/?#]*)*",
                '?' | '&' => "(?:[?&][^#]*)?",
                '.' => "(?:\\.[^/?#.]*)*",
                // Simple expansion is percent-encoded, so it cannot contain a reserved delimiter.
                _ => "[^/?#]*",
            });
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return None;
        }
        pattern.push_str(&regex_escape(rest));
        pattern.push('$');
        Regex::new(&pattern).ok().map(|regex| UriTemplate { regex })
    }

    /// Whether `uri` is an expansion of the template.
    pub fn matches(&self, uri: &str) -> bool {
        self.regex.is_match(uri)
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~ ".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_and_resolves() {
        assert_eq!(expose("files", "__", "read"), "files__read");
        assert_eq!(expose("", "__", "read"), "read");
        let ns = ["files", "git", ""];
        assert_eq!(candidates("files__read", "__", ns.iter().copied()), vec![(0, "read"), (2, "files__read")]);
        assert_eq!(candidates("git__log", "__", ns.iter().copied()), vec![(1, "log"), (2, "git__log")]);
        assert_eq!(candidates("files__", "__", ns[..2].iter().copied()), vec![]);
        assert_eq!(candidates("filesX__read", "__", ns[..2].iter().copied()), vec![]);
    }

    #[test]
    fn templates_match_their_expansions_only() {
        let t = UriTemplate::compile("demo://resource/dynamic/text/{resourceId}").unwrap();
        assert!(t.matches("demo://resource/dynamic/text/42"));
        assert!(!t.matches("demo://resource/dynamic/text/42/more"));
        assert!(!t.matches("demo://resource/dynamic/blob/42"));
        let t = UriTemplate::compile("test://template/{id}/data").unwrap();
        assert!(t.matches("test://template/123/data"));
        let t = UriTemplate::compile("file://{+path}").unwrap();
        assert!(t.matches("file:///srv/data/a.txt"));
        let t = UriTemplate::compile("db://t{?q,limit}").unwrap();
        assert!(t.matches("db://t?q=1&limit=2"));
        assert!(t.matches("db://t"));
        assert!(UriTemplate::compile("bad://{x").is_none());
        assert!(UriTemplate::compile("bad://x}").is_none());
        let literal = UriTemplate::compile("a.b://x(y)").unwrap();
        assert!(literal.matches("a.b://x(y)"));
        assert!(!literal.matches("aXb://x(y)"));
    }
}
