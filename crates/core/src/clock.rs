//! [`Clock`]: where a stage reads the wall-clock time, so that tests can fix it.
//!
//! Reading the system clock is not I/O in the sense of `core`'s invariant (no file,
//! socket or environment; it cannot fail). The trait lets a stage that stamps times
//! on what it writes (the audit log's checkpoints) take them from a [`ManualClock`]
//! in tests. Time formats stay with the stage that owns them (RFC 3339 in `audit`).
use std::{
    fmt,
    sync::{Mutex, PoisonError},
    time::{Duration, SystemTime},
};

/// A source of the current wall-clock time.
pub trait Clock: fmt::Debug + Send + Sync {
    fn now(&self) -> SystemTime;
}

/// The operating system's clock: what every production path uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to: for tests that check the times written.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: SystemTime) -> Self {
        Self { now: Mutex::new(start) }
    }

    /// Sets the time shown to `time` (it may go backwards, as real clocks can).
    pub fn set(&self, time: SystemTime) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) = time;
    }

    /// Moves the time shown forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = UNIX_EPOCH + Duration::from_secs(1_770_000_000);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), start + Duration::from_millis(1500));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn system_clock_is_usable_as_a_shared_trait_object() {
        let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(SystemClock);
        assert!(clock.now() > UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    }
}
