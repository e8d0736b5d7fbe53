//! Limits per caller: token buckets per principal and per (principal, tool), and daily budgets.
//!
//! Buckets are GCRA cells from `governor`, keyed by the principal's identity (and the tool);
//! budgets count calls per UTC day. A refusal says which limit and when to retry, so the client
//! can be told in the JSON-RPC error rather than with an HTTP status it may not show.

use crate::clock::Clock;
use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A rate: `count` calls per `per`, allowing bursts of up to `burst` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Calls per period.
    pub count: u32,
    /// The period.
    pub per: Duration,
    /// Calls allowed at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl Rate {
    fn quota(self) -> Option<Quota> {
        let count = NonZeroU32::new(self.count)?;
        let burst = NonZeroU32::new(self.burst.max(1))?;
        let interval = self.per.checked_div(count.get()).filter(|d| !d.is_zero())?;
        Quota::with_period(interval).map(|q| q.allow_burst(burst))
    }
}

/// Limits as configured.
#[derive(Debug, Clone, Default)]
pub struct LimitSettings {
    /// Every principal's bucket.
    pub per_principal: Option<Rate>,
    /// Each principal's bucket per tool, unless the tool has its own rate.
    pub per_tool: Option<Rate>,
    /// Per-tool rates, keyed `server/tool`, or `server/*` for every tool of a server without its own.
    pub tool_rates: HashMap<String, Rate>,
    /// Calls a principal may make per UTC day.
    pub daily_per_principal: Option<u64>,
    /// Calls a principal may make to one tool per UTC day, keyed `server/tool` or `server/*`.
    pub daily_per_tool: HashMap<String, u64>,
}

/// A call refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitExceeded {
    /// Which limit: `principal`, `tool`, `daily` or `daily_tool`.
    pub limit: &'static str,
    /// When the call may succeed again.
    pub retry_after: Duration,
}

/// `governor`'s view of Warden's injected clock.
#[derive(Clone)]
struct Ticks(Arc<dyn Clock>);

impl GovernorClock for Ticks {
    type Instant = Instant;
    fn now(&self) -> Instant {
        self.0.now()
    }
}

type Bucket = RateLimiter<String, DashMapStateStore<String>, Ticks, NoOpMiddleware<Instant>>;

/// The live limits.
pub struct Limits {
    clock: Arc<dyn Clock>,
    settings: LimitSettings,
    per_principal: Option<Bucket>,
    per_tool: Option<Bucket>,
    tools: HashMap<String, Bucket>,
    daily_per_principal: Option<u64>,
    daily_per_tool: HashMap<String, u64>,
    days: Mutex<HashMap<String, (i64, u64)>>,
}

/// What one call is charged against, for a shared store of limits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Token buckets (GCRA cells): each must have room.
    pub buckets: Vec<Charge>,
    /// Daily budgets: each must have calls left.
    pub budgets: Vec<Budget>,
}

/// One token bucket a call takes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Its key (caller, and tool).
    pub key: String,
    /// `principal` or `tool`.
    pub limit: &'static str,
    /// One call's worth of time: the period divided by the count.
    pub interval: Duration,
    /// Calls allowed at once.
    pub burst: u32,
}

/// One daily budget a call spends from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    /// Its key (day, caller, and tool).
    pub key: String,
    /// `daily` or `daily_tool`.
    pub limit: &'static str,
    /// Calls allowed in the day.
    pub budget: u64,
    /// Until the day ends (UTC).
    pub until_midnight: Duration,
}

/// Most distinct day counters kept; past this, counters of earlier days are dropped first.
const MAX_DAY_COUNTERS: usize = 100_000;

impl Limits {
    /// Limits from settings. A rate that allows nothing (zero count or period) is refused.
    pub fn new(settings: &LimitSettings, clock: Arc<dyn Clock>) -> Result<Limits, String> {
        let bucket = |r: Rate, what: &str| -> Result<Bucket, String> {
            let quota = r.quota().ok_or_else(|| format!("{what}: a rate needs a count and a period above zero"))?;
            Ok(RateLimiter::dashmap_with_clock(quota, Ticks(clock.clone())))
        };
        Ok(Limits {
            per_principal: settings.per_principal.map(|r| bucket(r, "per principal")).transpose()?,
            per_tool: settings.per_tool.map(|r| bucket(r, "per tool")).transpose()?,
            tools: settings
                .tool_rates
                .iter()
                .map(|(t, r)| bucket(*r, t).map(|b| (t.clone(), b)))
                .collect::<Result<_, _>>()?,
            daily_per_principal: settings.daily_per_principal,
            daily_per_tool: settings.daily_per_tool.clone(),
            days: Mutex::new(HashMap::new()),
            settings: settings.clone(),
            clock,
        })
    }

    /// What a call of `principal` (to `tool`, `server/tool`) is charged against, for limits kept
    /// in a store several gateways share: the same buckets and budgets [`Limits::take`] charges.
    pub fn plan(&self, principal: &str, tool: Option<&str>) -> Plan {
        let s = &self.settings;
        let mut plan = Plan::default();
        let mut charge = |key: String, limit: &'static str, r: Rate| {
            if let (Some(count), burst) = (std::num::NonZeroU32::new(r.count), r.burst.max(1))
                && let Some(interval) = r.per.checked_div(count.get()).filter(|d| !d.is_zero())
            {
                plan.buckets.push(Charge { key, limit, interval, burst });
            }
        };
        if let Some(r) = s.per_principal {
            charge(format!("p:{principal}"), "principal", r);
        }
        if let Some(tool) = tool
            && let Some(r) = lookup(&s.tool_rates, tool).copied().or(s.per_tool)
        {
            charge(format!("t:{}", tool_key(principal, tool)), "tool", r);
        }
        let unix = self.clock.unix_seconds();
        let day = unix.div_euclid(86_400);
        let until_midnight = Duration::from_secs((86_400 - unix.rem_euclid(86_400)) as u64);
        if let Some(b) = s.daily_per_principal {
            plan.budgets.push(Budget {
                key: format!("d:{day}:{principal}"),
                limit: "daily",
                budget: b,
                until_midnight,
            });
        }
        if let Some(tool) = tool
            && let Some(b) = lookup(&s.daily_per_tool, tool)
        {
            let key = format!("d:{day}:{}", tool_key(principal, tool));
            plan.budgets.push(Budget { key, limit: "daily_tool", budget: *b, until_midnight });
        }
        plan
    }

    /// Takes one call from the principal's limits, and from the tool's if `tool` (`server/tool`)
    /// is given. A refused call is still counted against the limits it passed.
    pub fn take(&self, principal: &str, tool: Option<&str>) -> Result<(), LimitExceeded> {
        let now = self.clock.now();
        if let Some(b) = &self.per_principal {
            b.check_key(&principal.to_owned())
                .map_err(|n| LimitExceeded { limit: "principal", retry_after: n.wait_time_from(now) })?;
        }
        if let Some(tool) = tool
            && let Some(b) = lookup(&self.tools, tool).or(self.per_tool.as_ref())
        {
            b.check_key(&tool_key(principal, tool))
                .map_err(|n| LimitExceeded { limit: "tool", retry_after: n.wait_time_from(now) })?;
        }
        self.take_daily(principal, tool)
    }

    fn take_daily(&self, principal: &str, tool: Option<&str>) -> Result<(), LimitExceeded> {
        let tool_budget = tool.and_then(|t| lookup(&self.daily_per_tool, t).map(|b| (t, *b)));
        if self.daily_per_principal.is_none() && tool_budget.is_none() {
            return Ok(());
        }
        let unix = self.clock.unix_seconds();
        let day = unix.div_euclid(86_400);
        let until_midnight = Duration::from_secs((86_400 - unix.rem_euclid(86_400)) as u64);
        let mut days = self.days.lock().unwrap_or_else(|p| p.into_inner());
        if days.len() >= MAX_DAY_COUNTERS {
            days.retain(|_, (d, _)| *d == day);
        }
        let mut checks: Vec<(String, u64, &'static str)> = Vec::new();
        if let Some(b) = self.daily_per_principal {
            checks.push((principal.to_owned(), b, "daily"));
        }
        if let Some((t, b)) = tool_budget {
            checks.push((tool_key(principal, t), b, "daily_tool"));
        }
        // Check every budget before spending any, so a refused call costs nothing.
        for (key, budget, limit) in &checks {
            let used = days.get(key).filter(|(d, _)| *d == day).map(|(_, n)| *n).unwrap_or(0);
            if used >= *budget {
                return Err(LimitExceeded { limit, retry_after: until_midnight });
            }
        }
        for (key, _, _) in checks {
            let entry = days.entry(key).or_insert((day, 0));
            if entry.0 != day {
                *entry = (day, 0);
            }
            entry.1 += 1;
        }
        Ok(())
    }

    /// Forgets buckets that are full again and counters of past days, so memory follows the
    /// callers active now.
    pub fn tidy(&self) {
        for b in self.per_principal.iter().chain(&self.per_tool).chain(self.tools.values()) {
            b.retain_recent();
            b.shrink_to_fit();
        }
        let day = self.clock.unix_seconds().div_euclid(86_400);
        self.days.lock().unwrap_or_else(|p| p.into_inner()).retain(|_, (d, _)| *d == day);
    }
}

/// The setting for `server/tool`: its own, else its server's `server/*`.
fn lookup<'a, V>(map: &'a HashMap<String, V>, tool: &str) -> Option<&'a V> {
    map.get(tool).or_else(|| {
        let (server, _) = tool.split_once('/')?;
        map.get(&format!("{server}/*"))
    })
}

fn tool_key(principal: &str, tool: &str) -> String {
    // The principal key is length-prefixed per field, so a NUL cannot make two pairs collide.
    format!("{principal}\0{tool}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn rate(count: u32, secs: u64, burst: u32) -> Rate {
        Rate { count, per: Duration::from_secs(secs), burst }
    }

    #[test]
    fn principal_bucket_refuses_past_the_burst_and_refills() {
        let clock = Arc::new(ManualClock::default());
        let limits =
            Limits::new(&LimitSettings { per_principal: Some(rate(1, 10, 3)), ..Default::default() }, clock.clone())
                .unwrap();
        for _ in 0..3 {
            limits.take("alice", None).unwrap();
        }
        let refused = limits.take("alice", None).unwrap_err();
        assert_eq!(refused.limit, "principal");
        assert!(refused.retry_after > Duration::from_secs(9) && refused.retry_after <= Duration::from_secs(10));
        limits.take("bob", None).expect("another principal has its own bucket");
        clock.advance(Duration::from_secs(10));
        limits.take("alice", None).expect("one call back after one period");
        assert!(limits.take("alice", None).is_err());
    }

    #[test]
    fn tool_buckets_are_per_principal_and_tool() {
        let clock = Arc::new(ManualClock::default());
        let mut settings = LimitSettings { per_tool: Some(rate(1, 60, 2)), ..Default::default() };
        settings.tool_rates.insert("files/delete".into(), rate(1, 60, 1));
        settings.tool_rates.insert("mail/*".into(), rate(1, 60, 1));
        let limits = Limits::new(&settings, clock).unwrap();
        limits.take("alice", Some("mail/send")).unwrap();
        assert!(limits.take("alice", Some("mail/send")).is_err(), "the server's * rate applies");
        limits.take("alice", Some("mail/draft")).expect("to each tool on its own");
        limits.take("alice", Some("files/read")).unwrap();
        limits.take("alice", Some("files/read")).unwrap();
        assert_eq!(limits.take("alice", Some("files/read")).unwrap_err().limit, "tool");
        limits.take("alice", Some("files/list")).expect("another tool has its own bucket");
        limits.take("alice", Some("files/delete")).unwrap();
        assert!(limits.take("alice", Some("files/delete")).is_err(), "the tool's own rate applies");
        limits.take("bob", Some("files/delete")).expect("per principal");
    }

    #[test]
    fn daily_budgets_reset_at_utc_midnight() {
        // 2026-11-21 23:59:00 UTC.
        let clock = Arc::new(ManualClock::at_unix(1_795_305_540));
        let mut settings = LimitSettings { daily_per_principal: Some(3), ..Default::default() };
        settings.daily_per_tool.insert("demo/delete".into(), 1);
        let limits = Limits::new(&settings, clock.clone()).unwrap();
        limits.take("alice", Some("demo/delete")).unwrap();
        let e = limits.take("alice", Some("demo/delete")).unwrap_err();
        assert_eq!(e.limit, "daily_tool");
        assert_eq!(e.retry_after, Duration::from_secs(60));
        limits.take("alice", Some("demo/echo")).unwrap();
        limits.take("alice", None).unwrap();
        assert_eq!(limits.take("alice", None).unwrap_err().limit, "daily", "the refused call above cost nothing");
        clock.advance(Duration::from_secs(60));
        limits.take("alice", Some("demo/delete")).expect("a new day");
    }

    #[test]
    fn rates_that_allow_nothing_are_refused() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::default());
        let s = LimitSettings { per_principal: Some(rate(0, 1, 1)), ..Default::default() };
        assert!(Limits::new(&s, clock.clone()).is_err());
        let s = LimitSettings { per_principal: Some(rate(1, 0, 1)), ..Default::default() };
        assert!(Limits::new(&s, clock).is_err());
    }

    #[test]
    fn concurrent_takes_never_exceed_the_burst() {
        let clock = Arc::new(ManualClock::default());
        let limits = Arc::new(
            Limits::new(&LimitSettings { per_principal: Some(rate(1, 3600, 5)), ..Default::default() }, clock).unwrap(),
        );
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let l = limits.clone();
                std::thread::spawn(move || (0..10).filter(|_| l.take("alice", None).is_ok()).count())
            })
            .collect();
        let allowed: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(allowed, 5);
    }
}
