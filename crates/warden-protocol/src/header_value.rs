//! Encoding of values mirrored into HTTP headers (`Mcp-Name`, `Mcp-Param-*`), per 2026-07-28.
//!
//! A value that is not plain visible ASCII, has leading or trailing white space, or looks like the
//! sentinel itself travels as `=?base64?<base64 of the UTF-8>?=`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const PREFIX: &str = "=?base64?";
const SUFFIX: &str = "?=";

fn is_plain(s: &str) -> bool {
    let visible = s.bytes().all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b));
    let padded = s.starts_with([' ', '\t']) || s.ends_with([' ', '\t']);
    let looks_encoded = s.starts_with(PREFIX) && s.ends_with(SUFFIX);
    !s.is_empty() && visible && !padded && !looks_encoded
}

/// Encodes a value for a header.
pub fn encode(value: &str) -> String {
    if is_plain(value) { value.to_owned() } else { format!("{PREFIX}{}{SUFFIX}", STANDARD.encode(value.as_bytes())) }
}

/// Why a header value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderValueError {
    /// The header holds bytes that are not valid in a header value.
    #[error("header value contains invalid characters")]
    InvalidCharacters,
    /// The sentinel wraps something that is not base64 of UTF-8.
    #[error("header value is not valid base64 of UTF-8")]
    InvalidBase64,
}

/// Decodes a header value (raw bytes as received).
pub fn decode(raw: &[u8]) -> Result<String, HeaderValueError> {
    if !raw.iter().all(|&b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b)) {
        return Err(HeaderValueError::InvalidCharacters);
    }
    let s = std::str::from_utf8(raw).map_err(|_| HeaderValueError::InvalidCharacters)?;
    match s.strip_prefix(PREFIX).and_then(|r| r.strip_suffix(SUFFIX)) {
        Some(b64) => {
            let bytes = STANDARD.decode(b64).map_err(|_| HeaderValueError::InvalidBase64)?;
            String::from_utf8(bytes).map_err(|_| HeaderValueError::InvalidBase64)
        }
        None => Ok(s.trim_matches([' ', '\t']).to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(encode("us-west1"), "us-west1");
        assert_eq!(encode("Hello, 世界"), "=?base64?SGVsbG8sIOS4lueVjA==?=");
        assert_eq!(encode(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(encode("line1\nline2"), "=?base64?bGluZTEKbGluZTI=?=");
        assert_eq!(encode("=?base64?literal?="), "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=");
    }

    #[test]
    fn round_trip() {
        for v in ["plain", "Hello, 世界", " x ", "=?base64?literal?=", "a\u{202e}b"] {
            assert_eq!(decode(encode(v).as_bytes()).unwrap(), v);
        }
        assert_eq!(decode(b"a\nb"), Err(HeaderValueError::InvalidCharacters));
        assert_eq!(decode(b"=?base64?!!!?="), Err(HeaderValueError::InvalidBase64));
    }
}
