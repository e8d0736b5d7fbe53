//! Time, injected so that expiry, budgets and rate limits can be tested without sleeping.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now, on the monotonic clock (for intervals and expiry).
    fn now(&self) -> Instant;

    /// Now, on the wall clock (for calendar days and the time shown to policies).
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Seconds since 1970-01-01 UTC on the wall clock.
    fn unix_seconds(&self) -> i64 {
        self.wall().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests. Both its monotonic and its wall time advance.
#[derive(Debug)]
pub struct ManualClock(Mutex<(Instant, SystemTime)>);

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock(Mutex::new((Instant::now(), SystemTime::now())))
    }
}

impl ManualClock {
    /// A clock whose wall time starts at `unix` seconds.
    pub fn at_unix(unix: u64) -> Self {
        ManualClock(Mutex::new((Instant::now(), UNIX_EPOCH + Duration::from_secs(unix))))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        t.0 += by;
        t.1 += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    fn wall(&self) -> SystemTime {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}
