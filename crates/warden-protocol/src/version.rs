//! Protocol versions and the two eras they fall into.
//!
//! Legacy versions (2024-11-05 through 2025-11-25) open with an `initialize` handshake and, on
//! HTTP, keep a session. Modern versions (2026-07-28 and later) are stateless: every request
//! carries its version and the client's capabilities in `_meta`.

use std::fmt;

/// A protocol version Warden knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// 2024-11-05 (stdio only; its HTTP transport is not served).
    V2024_11_05,
    /// 2025-03-26: Streamable HTTP, sessions.
    V2025_03_26,
    /// 2025-06-18: `MCP-Protocol-Version` header, structured content, elicitation.
    V2025_06_18,
    /// 2025-11-25: the last legacy revision.
    V2025_11_25,
    /// 2026-07-28: stateless, `server/discover`, multi round-trip requests.
    V2026_07_28,
}

/// The era a version belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Era {
    /// `initialize` handshake, sessions, server-to-client requests.
    Legacy,
    /// Per-request `_meta`, no sessions, `input_required` round trips.
    Modern,
}

impl fmt::Display for Era {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        })
    }
}

impl ProtocolVersion {
    /// Every version Warden serves, newest first.
    pub const ALL: [ProtocolVersion; 5] = [
        ProtocolVersion::V2026_07_28,
        ProtocolVersion::V2025_11_25,
        ProtocolVersion::V2025_06_18,
        ProtocolVersion::V2025_03_26,
        ProtocolVersion::V2024_11_05,
    ];
    /// The newest legacy version.
    pub const LATEST_LEGACY: ProtocolVersion = ProtocolVersion::V2025_11_25;
    /// The newest modern version.
    pub const LATEST_MODERN: ProtocolVersion = ProtocolVersion::V2026_07_28;

    /// Reads a version string; `None` for versions Warden does not know.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "2024-11-05" => ProtocolVersion::V2024_11_05,
            "2025-03-26" => ProtocolVersion::V2025_03_26,
            "2025-06-18" => ProtocolVersion::V2025_06_18,
            "2025-11-25" => ProtocolVersion::V2025_11_25,
            "2026-07-28" => ProtocolVersion::V2026_07_28,
            _ => return None,
        })
    }

    /// The version string.
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V2024_11_05 => "2024-11-05",
            ProtocolVersion::V2025_03_26 => "2025-03-26",
            ProtocolVersion::V2025_06_18 => "2025-06-18",
            ProtocolVersion::V2025_11_25 => "2025-11-25",
            ProtocolVersion::V2026_07_28 => "2026-07-28",
        }
    }

    /// The era of this version.
    pub fn era(self) -> Era {
        if self >= ProtocolVersion::V2026_07_28 { Era::Modern } else { Era::Legacy }
    }

    /// Whether HTTP requests of this version carry the `MCP-Protocol-Version` header.
    pub fn has_version_header(self) -> bool {
        self >= ProtocolVersion::V2025_06_18
    }

    /// The version strings of an era, newest first.
    pub fn strings_of(era: Era) -> Vec<&'static str> {
        Self::ALL.iter().filter(|v| v.era() == era).map(|v| v.as_str()).collect()
    }

    /// Every version string, newest first.
    pub fn all_strings() -> Vec<&'static str> {
        Self::ALL.iter().map(|v| v.as_str()).collect()
    }

    /// Whether a version string is lexically a modern-era revision (2026-07-28 or later), known or not.
    pub fn is_modern_str(s: &str) -> bool {
        s.len() == 10 && s >= "2026-07-28"
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras() {
        assert_eq!(ProtocolVersion::V2025_11_25.era(), Era::Legacy);
        assert_eq!(ProtocolVersion::V2026_07_28.era(), Era::Modern);
        assert!(ProtocolVersion::is_modern_str("2027-01-01"));
        assert!(!ProtocolVersion::is_modern_str("2025-11-25"));
        for v in ProtocolVersion::ALL {
            assert_eq!(ProtocolVersion::parse(v.as_str()), Some(v));
        }
    }
}
