//! Durations written as `"250ms"`, `"30s"`, `"5m"` or `"2h"` in the configuration.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::time::Duration;

/// The longest duration a setting may take, so that deadlines computed from it cannot overflow.
const MAX: Duration = Duration::from_secs(30 * 24 * 3600);

/// A duration in the configuration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    /// Reads `"<number><unit>"` with unit `ms`, `s`, `m` or `h`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num.parse().map_err(|_| format!("{s:?} is not a duration such as \"30s\" or \"500ms\""))?;
        let d = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(format!("{s:?} has no unit: write it as \"{n}s\", \"{n}ms\", \"{n}m\" or \"{n}h\"")),
        };
        if d > MAX {
            return Err(format!("{s:?} is longer than the 30 days a setting may be"));
        }
        Ok(ConfigDuration(d))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ConfigDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ms = self.0.as_millis();
        let text = if ms.is_multiple_of(1000) { format!("{}s", ms / 1000) } else { format!("{ms}ms") };
        s.serialize_str(&text)
    }
}

impl JsonSchema for ConfigDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m|h)$",
            "description": "A duration: a whole number followed by ms, s, m or h, for example \"30s\"."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(ConfigDuration::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(ConfigDuration::parse("30s").unwrap().0, Duration::from_secs(30));
        assert_eq!(ConfigDuration::parse("5m").unwrap().0, Duration::from_secs(300));
        assert_eq!(ConfigDuration::parse("2h").unwrap().0, Duration::from_secs(7200));
        assert!(ConfigDuration::parse("30").is_err());
        assert!(ConfigDuration::parse("x").is_err());
        assert!(ConfigDuration::parse("-5s").is_err());
        assert!(ConfigDuration::parse("18446744073709551615h").is_err(), "absurd durations are refused");
    }
}
