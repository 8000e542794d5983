//! The one clock all domain logic reads, injectable so tests can move time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
    /// How far this clock runs ahead of wall time (0 for clocks that cannot be moved).
    fn offset_ms(&self) -> i64 {
        0
    }
    /// Moves the clock to run `offset_ms` ahead of wall time; false if it cannot be moved.
    fn set_offset_ms(&self, _offset_ms: i64) -> bool {
        false
    }
}

/// Wall-clock time, plus an offset an operator or test can move forward.
#[derive(Default)]
pub struct SystemClock {
    offset_ms: AtomicI64,
}

impl SystemClock {
    pub fn advance_ms(&self, by: i64) {
        self.offset_ms.fetch_add(by, Ordering::Relaxed);
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        wall.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }
    fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::Relaxed)
    }
    fn set_offset_ms(&self, offset_ms: i64) -> bool {
        self.offset_ms.store(offset_ms, Ordering::Relaxed);
        true
    }
}
