//! Bounding rows a server can make the audit log write by asking for connections it is refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Refusal rows written per server per minute; the rest are counted into the next row written.
const ROWS_PER_MINUTE: u32 = 120;
const WINDOW: Duration = Duration::from_secs(60);

/// Whether a refusal gets its own row.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Written.
    Row,
    /// Written, saying how many refusals of the window before were only counted.
    RowAfter(u64),
    /// Only counted (the metric still moves).
    Count,
}

/// Per server: when its window began, rows written in it, refusals only counted.
#[derive(Default)]
pub(crate) struct RefusalWindow(Mutex<HashMap<String, (Instant, u32, u64)>>);

impl RefusalWindow {
    pub(crate) fn admit(&self, server: &str, now: Instant) -> Admit {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let entry = map.entry(server.to_owned()).or_insert((now, 0, 0));
        if now.duration_since(entry.0) >= WINDOW {
            let skipped = entry.2;
            *entry = (now, 1, 0);
            return if skipped > 0 { Admit::RowAfter(skipped) } else { Admit::Row };
        }
        if entry.1 < ROWS_PER_MINUTE {
            entry.1 += 1;
            Admit::Row
        } else {
            entry.2 += 1;
            Admit::Count
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_counted_and_summarised() {
        let w = RefusalWindow::default();
        let t = Instant::now();
        for _ in 0..ROWS_PER_MINUTE {
            assert_eq!(w.admit("s", t), Admit::Row);
        }
        assert_eq!(w.admit("s", t), Admit::Count);
        assert_eq!(w.admit("s", t), Admit::Count);
        assert_eq!(w.admit("other", t), Admit::Row, "per server");
        assert_eq!(w.admit("s", t + WINDOW), Admit::RowAfter(2));
        assert_eq!(w.admit("s", t + WINDOW), Admit::Row);
    }
}
