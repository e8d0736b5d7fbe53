//! `[limits]` and the rates written in it.

use super::ConfigDuration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use warden_policy::limits::Rate;

/// `[limits]`: how much each caller may do.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Every principal's rate over all its calls (tools, prompts, resource reads, completions).
    pub per_principal: Option<RateSection>,
    /// Each principal's rate per tool, for tools without their own `rate`.
    pub per_tool: Option<RateSection>,
    /// Calls a principal may make per UTC day.
    pub daily_calls: Option<u64>,
    /// Deepest nesting of calls in one context: a call made while another call of the same
    /// client waits on that client (for sampling or elicitation) is one level deeper.
    pub max_call_depth: u32,
    /// Most calls one context (a session, or a principal's client) may have in flight at once.
    pub max_concurrent_calls: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            per_principal: None,
            per_tool: None,
            daily_calls: None,
            max_call_depth: 4,
            max_concurrent_calls: 64,
        }
    }
}

/// A rate: `rate = "10/s"` (or `/m`, `/h`, `/d`, or a duration such as `"5/30s"`), with an
/// optional `burst` (calls allowed at once; defaults to the count).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateSection {
    /// `"<count>/<period>"`.
    pub rate: String,
    /// Calls allowed at once after a quiet spell.
    pub burst: Option<u32>,
}

impl RateSection {
    /// The rate it describes.
    pub fn parse(&self) -> Result<Rate, String> {
        let (count, period) = self
            .rate
            .split_once('/')
            .ok_or_else(|| format!("{:?} is not a rate such as \"10/s\" or \"100/h\"", self.rate))?;
        let count: u32 =
            count.trim().parse().map_err(|_| format!("{:?}: the count must be a whole number", self.rate))?;
        let per = match period.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            other => ConfigDuration::parse(other)?.0,
        };
        if count == 0 || per.is_zero() {
            return Err(format!("{:?} allows nothing: the count and the period must be above zero", self.rate));
        }
        let burst = self.burst.unwrap_or(count);
        if burst == 0 {
            return Err("burst must be at least 1".into());
        }
        Ok(Rate { count, per, burst })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str, burst: Option<u32>) -> Result<Rate, String> {
        RateSection { rate: s.into(), burst }.parse()
    }

    #[test]
    fn rates_parse() {
        assert_eq!(rate("10/s", None).unwrap(), Rate { count: 10, per: Duration::from_secs(1), burst: 10 });
        assert_eq!(rate("5/30s", Some(1)).unwrap(), Rate { count: 5, per: Duration::from_secs(30), burst: 1 });
        assert_eq!(rate("100/d", None).unwrap().per, Duration::from_secs(86_400));
        assert!(rate("0/s", None).is_err());
        assert!(rate("10", None).is_err());
        assert!(rate("10/fortnight", None).is_err());
        assert!(rate("10/s", Some(0)).is_err());
    }
}
