//! Error messages from servers, made fit for a client (R9).
//!
//! An MCP server's error, or one Warden derives from its stderr, is written for its own
//! developers: it carries stack traces, absolute paths, internal hostnames and, now and
//! then, the connection string with its password. [`scrub_error_message`] keeps what tells
//! the user what failed (the message lines) and removes the rest: secrets are redacted
//! with the [`SecretScanner`], trace lines are cut, paths become `[path]` and private
//! hosts `[host]`, and the result is bounded to [`MAX_ERROR_CHARS`].
//!
//! What it is not for: public URLs, relative paths and API routes with a single
//! component (`/health`) are left alone, and so are IPv6 addresses.

use crate::sanitize::clean_text;
use crate::secrets::SecretScanner;

/// Longest scrubbed message, in characters, before the cut marker.
pub const MAX_ERROR_CHARS: usize = 1_000;

/// Bytes of a message read at all; the rest cannot reach the client through a bounded
/// message anyway, unless traces before it were cut.
const MAX_INPUT_BYTES: usize = 64 * 1024;

/// Shown in place of a message that held nothing but trace lines.
const EMPTY: &str = "[error details removed by Warden]";

/// Appended to a message cut at [`MAX_ERROR_CHARS`].
const CUT: &str = " […]";

/// Host-name suffixes that only resolve inside a private network.
const PRIVATE_SUFFIXES: &[&str] =
    &[".internal", ".local", ".lan", ".corp", ".intranet", ".intra", ".localdomain", ".home.arpa", ".svc"];

/// What is left of an error message for a client, and what was taken out.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ScrubbedError {
    /// The message to send.
    pub text: String,
    /// Secrets redacted (`[REDACTED:<kind>]`).
    pub redactions: u32,
    /// Absolute file-system paths replaced by `[path]`.
    pub paths: u32,
    /// Private IP addresses and internal host names replaced by `[host]`.
    pub hosts: u32,
    /// Stack-trace lines removed (or, for a Rust panic, stripped of their location).
    pub trace_lines: u32,
    /// Whether `text` differs from the message given.
    pub changed: bool,
}

/// Scrubs an error message for a client: control characters and escapes removed,
/// secrets redacted, stack traces cut, paths and private hosts replaced, length bounded.
///
/// ```
/// use warden_inspect::{SecretScanner, scrub_error_message};
///
/// let secrets = SecretScanner::new();
/// let message = "Traceback (most recent call last):\n  File \"/srv/app/weather.py\", line 41, in get\n    raise KeyError(city)\nKeyError: 'city'";
/// let scrubbed = scrub_error_message(&secrets, message);
/// assert_eq!(scrubbed.text, "KeyError: 'city'");
/// assert_eq!(scrubbed.trace_lines, 3);
///
/// let benign = scrub_error_message(&secrets, "Invalid params: city is required");
/// assert!(!benign.changed);
/// ```
pub fn scrub_error_message(secrets: &SecretScanner, message: &str) -> ScrubbedError {
    let mut out = ScrubbedError::default();
    let input = bounded_input(message);
    let (cleaned, _) = clean_text(input);
    let (redacted, found) = secrets.redact_str(&cleaned);
    out.redactions = found.total;

    let mut lines: Vec<String> = Vec::new();
    let mut mode = Mode::Message;
    for line in redacted.lines() {
        if is_trace_line(line, &mut mode) {
            out.trace_lines = out.trace_lines.saturating_add(1);
            continue;
        }
        let line = match strip_panic_location(line) {
            Some(stripped) => {
                out.trace_lines = out.trace_lines.saturating_add(1);
                stripped
            }
            None => line,
        };
        let line = scrub_line(line, &mut out);
        let blank = line.trim().is_empty();
        if blank && lines.last().is_none_or(|last| last.trim().is_empty()) {
            continue;
        }
        lines.push(line);
    }
    while lines.last().is_some_and(|last| last.trim().is_empty()) {
        lines.pop();
    }
    let mut text = if lines.is_empty() { EMPTY.to_owned() } else { lines.join("\n") };
    if message.trim().is_empty() {
        text.clear();
    }
    if let Some((cut, _)) = text.char_indices().nth(MAX_ERROR_CHARS) {
        text.truncate(cut);
        text.push_str(CUT);
    }
    out.changed = text != message;
    out.text = text;
    out
}

/// `message` up to [`MAX_INPUT_BYTES`], without the line the cut falls in.
fn bounded_input(message: &str) -> &str {
    if message.len() <= MAX_INPUT_BYTES {
        return message;
    }
    let mut cut = MAX_INPUT_BYTES;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = &message[..cut];
    head.rfind('\n').map_or(head, |at| &head[..at])
}

/// Where the line walker is: in message text, or inside a trace whose lines it drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Message,
    /// Python traceback or Rust backtrace: indented lines belong to it.
    Indented,
    /// Go goroutine dump: every line up to a blank one belongs to it.
    Goroutine,
}

/// Whether `line` is part of a stack trace, updating `mode`.
fn is_trace_line(line: &str, mode: &mut Mode) -> bool {
    let trimmed = line.trim();
    match *mode {
        Mode::Goroutine if !trimmed.is_empty() => return true,
        Mode::Goroutine => *mode = Mode::Message,
        Mode::Indented if line.starts_with([' ', '\t']) && !trimmed.is_empty() => return true,
        Mode::Indented => *mode = Mode::Message,
        Mode::Message => {}
    }
    if trimmed.starts_with("Traceback (most recent call last)") || trimmed == "stack backtrace:" {
        *mode = Mode::Indented;
        return true;
    }
    if trimmed.starts_with("goroutine ") && trimmed.ends_with("]:") {
        *mode = Mode::Goroutine;
        return true;
    }
    if trimmed.starts_with("File \"") && trimmed.contains("\", line ") {
        *mode = Mode::Indented;
        return true;
    }
    if trimmed == "During handling of the above exception, another exception occurred:"
        || trimmed == "The above exception was the direct cause of the following exception:"
        || trimmed.starts_with("note: run with `RUST_BACKTRACE=")
    {
        return true;
    }
    // JavaScript `    at fn (file:1:2)`, Java `\tat pkg.Class.m(File.java:12)`.
    if line.starts_with([' ', '\t'])
        && let Some(rest) = trimmed.strip_prefix("at ")
    {
        return has_line_number(rest)
            || ["<anonymous>", "(native", "Native Method", "Unknown Source", "node:internal"]
                .iter()
                .any(|marker| rest.contains(marker));
    }
    // Java `\t... 12 more`.
    trimmed.starts_with("... ") && trimmed.ends_with(" more")
}

/// Whether `text` holds `:<digit>`, as in `file.js:12` or `File.java:12`.
fn has_line_number(text: &str) -> bool {
    text.as_bytes().windows(2).any(|pair| pair[0] == b':' && pair[1].is_ascii_digit())
}

/// A Rust panic line without its source location: `thread 'main' panicked at
/// src/main.rs:12:5:` becomes `thread 'main' panicked`, and the older `panicked at 'msg',
/// src/main.rs:12:5` keeps `'msg'`.
fn strip_panic_location(line: &str) -> Option<&str> {
    let at = line.find("panicked at ")?;
    let head = &line[..at + "panicked".len()];
    let rest = &line[at + "panicked at ".len()..];
    if rest.starts_with(['\'', '"']) {
        let cut = rest.rfind(", ")?;
        return Some(&line[..at + "panicked at ".len() + cut]);
    }
    has_line_number(rest).then_some(head)
}

/// Characters that end a token: whitespace, quotes, brackets and list punctuation.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '(' | ')' | '<' | '>' | '[' | ']' | '{' | '}' | ',' | ';' | '=')
}

/// Replaces paths and private hosts in one line, token by token.
fn scrub_line(line: &str, out: &mut ScrubbedError) -> String {
    let mut result = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if is_separator(c) {
            result.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let mut end = rest.find(is_separator).unwrap_or(rest.len());
        if is_windows_path(&rest[..end]) {
            end = extend_over_spaces(rest, end);
        }
        let token = &rest[..end];
        // Sentence punctuation after a token is not part of it.
        let core = token.trim_end_matches(['.', ':', '!', '?']);
        let core = if core.is_empty() { token } else { core };
        scrub_token(core, &mut result, out);
        result.push_str(&token[core.len()..]);
        rest = &rest[end..];
    }
    result
}

fn scrub_token(token: &str, result: &mut String, out: &mut ScrubbedError) {
    // `user@host`, or what follows a redaction marker in `scheme://user:[REDACTED]@host`.
    if let Some(at) = token.find('@')
        && !token.contains("://")
    {
        scrub_token(&token[..at], result, out);
        result.push('@');
        return scrub_token(&token[at + 1..], result, out);
    }
    if let Some(scheme_end) = url_scheme_end(token) {
        if token[..scheme_end].eq_ignore_ascii_case("file") {
            result.push_str("[path]");
            out.paths = out.paths.saturating_add(1);
        } else {
            scrub_url(token, scheme_end, result, out);
        }
    } else if is_unix_path(token) || is_windows_path(token) || token.starts_with("\\\\") {
        result.push_str("[path]");
        out.paths = out.paths.saturating_add(1);
    } else if let Some(port) = private_host(token) {
        result.push_str("[host]");
        result.push_str(port);
        out.hosts = out.hosts.saturating_add(1);
    } else {
        result.push_str(token);
    }
}

/// The length of the scheme when `token` starts with `scheme://`.
fn url_scheme_end(token: &str) -> Option<usize> {
    let end = token.find("://")?;
    let scheme = &token[..end];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(end)
}

/// Copies a URL, with its host replaced when it is private.
fn scrub_url(token: &str, scheme_end: usize, result: &mut String, out: &mut ScrubbedError) {
    let authority_start = scheme_end + 3;
    let after = &token[authority_start..];
    let authority_len = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..authority_len];
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let host_and_port = &authority[host_start..];
    match private_host(host_and_port) {
        Some(port) => {
            result.push_str(&token[..authority_start + host_start]);
            result.push_str("[host]");
            result.push_str(port);
            result.push_str(&after[authority_len..]);
            out.hosts = out.hosts.saturating_add(1);
        }
        None => result.push_str(token),
    }
}

/// An absolute Unix path with at least two components (`/srv/app`), or one under the
/// home directory (`~/x`).
fn is_unix_path(token: &str) -> bool {
    if let Some(rest) = token.strip_prefix("~/") {
        return !rest.is_empty();
    }
    let Some(rest) = token.strip_prefix('/') else { return false };
    let mut components = rest.split('/');
    let first = components.next().unwrap_or("");
    let second = components.next().unwrap_or("");
    is_component(first) && is_component(second)
}

fn is_component(part: &str) -> bool {
    part.chars().next().is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '@' | '+' | '~'))
}

/// `C:\…` or `C:/…`.
fn is_windows_path(token: &str) -> bool {
    let bytes = token.as_bytes();
    bytes.len() > 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && matches!(bytes[2], b'\\' | b'/')
}

/// Extends a Windows path token over spaces inside it (`C:\Program Files\app`): a
/// following word belongs to the path when it holds a backslash.
fn extend_over_spaces(rest: &str, mut end: usize) -> usize {
    loop {
        let after = &rest[end..];
        let Some(word) = after.strip_prefix(' ') else { return end };
        let word_len = word.find(is_separator).unwrap_or(word.len());
        if word_len == 0 || !word[..word_len].contains('\\') {
            return end;
        }
        end += 1 + word_len;
    }
}

/// When `token` is a private IPv4 address or an internal host name, optionally with a
/// port and a path, returns what follows the host (`:port/path`) to keep.
fn private_host(token: &str) -> Option<&str> {
    let authority = &token[..token.find('/').unwrap_or(token.len())];
    let host = match authority.rfind(':') {
        Some(at) if authority[at + 1..].bytes().all(|b| b.is_ascii_digit()) => &authority[..at],
        _ => authority,
    };
    let port = &token[host.len()..];
    if host.is_empty() {
        return None;
    }
    let private = match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_private() || ip.is_link_local() || (a == 100 && (64..128).contains(&b))
        }
        Err(_) => {
            let lower = host.to_ascii_lowercase();
            host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                && PRIVATE_SUFFIXES.iter().any(|suffix| lower.ends_with(suffix) && lower.len() > suffix.len())
        }
    };
    private.then_some(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrub(message: &str) -> ScrubbedError {
        scrub_error_message(&SecretScanner::new(), message)
    }

    #[test]
    fn benign_messages_stay_intact() {
        for message in [
            "Invalid params: city is required",
            "Rate limit exceeded, retry after 3s",
            "See https://api.example.com/v1/docs for the parameters.",
            "Not found: GET /health returned 404",
            "Expected 3/4 of the quorum, got 1/4",
            "Connection refused: localhost:5432",
            "Unknown tool 'get_weather'. Did you mean 'weather.get'?",
            "value must be between 1 and 100 (got 250)",
            "at least one of 'query' or 'id' must be set",
            "Public DNS 8.8.8.8 timed out",
        ] {
            let scrubbed = scrub(message);
            assert_eq!(scrubbed.text, message);
            assert!(!scrubbed.changed, "{message}");
        }
    }

    #[test]
    fn python_traceback_keeps_the_exception() {
        let message = "Traceback (most recent call last):\n  File \"/home/deploy/weather/server.py\", line 88, in call_tool\n    result = await fetch(city)\n  File \"/usr/lib/python3.12/site-packages/httpx/_client.py\", line 1574, in send\n    raise ConnectError(msg)\nhttpx.ConnectError: cannot connect to 10.0.12.7:8443 (config /etc/weather/settings.toml)";
        let scrubbed = scrub(message);
        assert_eq!(scrubbed.text, "httpx.ConnectError: cannot connect to [host]:8443 (config [path])");
        assert_eq!(scrubbed.trace_lines, 5);
        assert_eq!(scrubbed.paths, 1);
        assert_eq!(scrubbed.hosts, 1);
    }

    #[test]
    fn node_stack_is_cut() {
        let message = "Error: ENOENT: no such file or directory, open '/app/data/users.json'\n    at Object.openSync (node:fs:596:3)\n    at readUsers (/app/src/store.js:14:22)\n    at async Server.<anonymous> (/app/src/index.js:40:5)";
        let scrubbed = scrub(message);
        assert_eq!(scrubbed.text, "Error: ENOENT: no such file or directory, open '[path]'");
        assert_eq!(scrubbed.trace_lines, 3);
    }

    #[test]
    fn java_stack_is_cut() {
        let message = "java.sql.SQLException: Access denied for user 'app'@'db.prod.internal'\n\tat com.mysql.cj.jdbc.ConnectionImpl.connect(ConnectionImpl.java:812)\n\tat com.acme.Repo.open(Repo.java:33)\n\t... 12 more\nCaused by: java.net.ConnectException: Connection refused";
        let scrubbed = scrub(message);
        assert_eq!(
            scrubbed.text,
            "java.sql.SQLException: Access denied for user 'app'@'[host]'\nCaused by: java.net.ConnectException: Connection refused"
        );
        assert_eq!(scrubbed.trace_lines, 3);
    }

    #[test]
    fn rust_panic_loses_its_location() {
        let message = "thread 'tokio-runtime-worker' panicked at src/tools/search.rs:212:31:\ncalled `Option::unwrap()` on a `None` value\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace";
        let scrubbed = scrub(message);
        assert_eq!(
            scrubbed.text,
            "thread 'tokio-runtime-worker' panicked\ncalled `Option::unwrap()` on a `None` value"
        );
        assert_eq!(scrubbed.trace_lines, 2);
        let old = scrub("thread 'main' panicked at 'index out of bounds', src/main.rs:4:5");
        assert_eq!(old.text, "thread 'main' panicked at 'index out of bounds'");
    }

    #[test]
    fn go_goroutine_dump_is_cut() {
        let message = "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1f2c]\n\ngoroutine 1 [running]:\nmain.(*Server).handle(0x0, {0xc000012345, 0x5})\n\t/home/ci/go/src/github.com/acme/mcp/server.go:88 +0x2c\nmain.main()\n\t/home/ci/go/src/github.com/acme/mcp/main.go:21 +0x1d\n\nexit status 2";
        let scrubbed = scrub(message);
        assert_eq!(
            scrubbed.text,
            "panic: runtime error: invalid memory address or nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1f2c]\n\nexit status 2"
        );
        assert_eq!(scrubbed.trace_lines, 5);
    }

    #[test]
    fn database_url_password_and_aws_key_are_redacted() {
        let message = "could not connect to postgres://app:Sup3rS3cret!@10.1.2.3:5432/orders (AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE)";
        let scrubbed = scrub(message);
        assert!(!scrubbed.text.contains("Sup3rS3cret"), "{}", scrubbed.text);
        assert!(!scrubbed.text.contains("AKIAIOSFODNN7EXAMPLE"), "{}", scrubbed.text);
        assert!(!scrubbed.text.contains("10.1.2.3"), "{}", scrubbed.text);
        assert!(scrubbed.redactions >= 2);
        assert_eq!(scrubbed.hosts, 1);
    }

    #[test]
    fn windows_and_unc_paths_are_replaced() {
        let scrubbed =
            scrub(r"cannot open C:\Program Files\Acme MCP\config.yaml or \\fileserver\share\keys.txt: denied");
        assert_eq!(
            scrubbed.text,
            "cannot open [path] MCP\\config.yaml or [path]: denied".replace("[path] MCP\\config.yaml", "[path]")
        );
        assert_eq!(scrubbed.paths, 2);
    }

    #[test]
    fn file_urls_and_home_paths_are_replaced() {
        let scrubbed = scrub("failed to load file:///Users/alice/notes.md and ~/.config/acme/token");
        assert_eq!(scrubbed.text, "failed to load [path] and [path]");
    }

    #[test]
    fn a_message_of_only_trace_is_replaced() {
        let scrubbed = scrub("Traceback (most recent call last):\n  File \"/app/x.py\", line 1, in <module>");
        assert_eq!(scrubbed.text, EMPTY);
    }

    #[test]
    fn long_messages_are_bounded() {
        let scrubbed = scrub(&"word ".repeat(1_000));
        assert_eq!(scrubbed.text.chars().count(), MAX_ERROR_CHARS + CUT.chars().count());
        let huge = "x".repeat(MAX_INPUT_BYTES * 2);
        assert!(scrub(&huge).text.len() < 2 * MAX_ERROR_CHARS + 16);
    }

    proptest::proptest! {
        #[test]
        fn any_message_is_scrubbed_within_bounds(message in "(\\PC|[\n\t /\\:@.]|10\\.0\\.0\\.1|C:\\\\|    at ){0,200}") {
            let scrubbed = scrub(&message);
            proptest::prop_assert!(scrubbed.text.chars().count() <= MAX_ERROR_CHARS + CUT.chars().count());
        }
    }

    #[test]
    fn loopback_and_public_addresses_stay() {
        assert_eq!(
            scrub("Error: connect ECONNREFUSED 127.0.0.1:5432").text,
            "Error: connect ECONNREFUSED 127.0.0.1:5432"
        );
        assert_eq!(scrub("GET https://api.internal.corp/v1/users failed").text, "GET https://[host]/v1/users failed");
    }

    #[test]
    fn escapes_in_stderr_are_removed() {
        let scrubbed = scrub("\u{1b}[31mERROR\u{1b}[0m bad request");
        assert_eq!(scrubbed.text, "ERROR bad request");
        assert!(scrubbed.changed);
    }
}
