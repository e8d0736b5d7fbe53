//! JSON with comments and trailing commas, as Zed and VS Code write their settings.
//!
//! Comments and trailing commas are removed before the text is handed to `serde_json`. The
//! stripping walks the text once and knows when it is inside a string, so `"https://x"` or
//! `"a /* b */ c"` survive as they are. Removed characters are replaced by spaces (line breaks
//! are kept), so line numbers in parse errors still point at the user's file.

/// `text` with `//` and `/* */` comments and trailing commas before `}` or `]` blanked out.
pub fn strip(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    // Where the last comma outside strings was written, while only white space followed it.
    let mut pending_comma: Option<usize> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'"' => {
                pending_comma = None;
                let start = i;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                out.extend_from_slice(&bytes[start..i]);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                out.extend_from_slice(b"  ");
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    out.push(if bytes[i] == b'\n' { b'\n' } else { b' ' });
                    i += 1;
                }
                if i < bytes.len() {
                    out.extend_from_slice(b"  ");
                    i += 2;
                }
                continue;
            }
            b',' => {
                pending_comma = Some(out.len());
                out.push(b',');
            }
            b'}' | b']' => {
                if let Some(at) = pending_comma.take() {
                    out[at] = b' ';
                }
                out.push(b);
            }
            b if b.is_ascii_whitespace() => out.push(b),
            _ => {
                pending_comma = None;
                out.push(b);
            }
        }
        i += 1;
    }
    // Only ASCII bytes were replaced, and only outside strings, by ASCII: still UTF-8. A
    // string cut off by the end of the text is copied as far as it goes.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Parses JSON that may carry comments and trailing commas.
pub fn parse(text: &str) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_str(&strip(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn comments_and_trailing_commas_go_and_strings_stay() {
        let text = r#"{
  // the servers
  "context_servers": {
    "web": { "url": "https://example.com/a//b", /* inline */ "note": "x /* not a comment */ y // nor this", },
    "esc": { "command": "say \"hi\" // still string", "args": ["a", "b",], },
  },
}"#;
        let v = parse(text).unwrap();
        assert_eq!(v["context_servers"]["web"]["url"], "https://example.com/a//b");
        assert_eq!(v["context_servers"]["web"]["note"], "x /* not a comment */ y // nor this");
        assert_eq!(v["context_servers"]["esc"]["command"], "say \"hi\" // still string");
        assert_eq!(v["context_servers"]["esc"]["args"], json!(["a", "b"]));
    }

    #[test]
    fn line_numbers_survive_and_broken_text_fails_cleanly() {
        let text = "{\n/* a\nb */\n\"k\": 1,\n}";
        assert_eq!(strip(text).lines().count(), text.lines().count());
        assert!(parse("{\"k\": /* unterminated").is_err());
        assert!(parse("{\"k\": \"unterminated").is_err());
        assert!(parse("// only a comment").is_err());
        // A comma between values is kept.
        assert_eq!(parse("[1, /* c */ 2]").unwrap(), json!([1, 2]));
    }
}
