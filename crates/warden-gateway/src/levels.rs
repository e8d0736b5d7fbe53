//! MCP log levels (RFC 5424 severities), for filtering `notifications/message` per client.

use serde_json::Value;

const LEVELS: [&str; 8] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

/// Rank of a level, 0 for `debug`; unknown levels rank as `info`.
pub fn rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(1)
}

/// Whether a level name is valid.
pub fn is_valid(level: &str) -> bool {
    LEVELS.contains(&level)
}

/// Whether a log notification with these params passes a client's level (`None`: everything passes).
pub fn permits(client_level: Option<&str>, params: Option<&Value>) -> bool {
    let Some(min) = client_level else { return true };
    let level = params.and_then(|p| p.get("level")).and_then(Value::as_str).unwrap_or("info");
    rank(level) >= rank(min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_by_severity() {
        assert!(permits(None, Some(&json!({"level": "debug"}))));
        assert!(permits(Some("info"), Some(&json!({"level": "error"}))));
        assert!(!permits(Some("warning"), Some(&json!({"level": "info"}))));
        assert!(is_valid("notice") && !is_valid("loud"));
    }
}
