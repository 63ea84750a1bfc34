//! How current this replica's index is known to be (issue 14): while the database answers, the
//! index is current (change notifications and the periodic catch-up keep it so); while it does
//! not, decisions are still answered from the index for at most `WARDEN_MAX_STALENESS` after the
//! last moment the replica knew it was current, then fail closed.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

#[derive(Debug)]
pub struct Freshness {
    max_staleness: Duration,
    database_up: AtomicBool,
    /// Unix microseconds of the last catch-up that completed.
    current_at: AtomicI64,
}

impl Freshness {
    pub fn new(max_staleness: Duration, now: DateTime<Utc>) -> Self {
        Self {
            max_staleness,
            database_up: AtomicBool::new(true),
            current_at: AtomicI64::new(now.timestamp_micros()),
        }
    }

    /// A replica that starts from a local snapshot while the database is unreachable: the
    /// allowance runs from when the snapshot was known current.
    pub fn from_snapshot(max_staleness: Duration, current_at: DateTime<Utc>) -> Self {
        Self {
            max_staleness,
            database_up: AtomicBool::new(false),
            current_at: AtomicI64::new(current_at.timestamp_micros()),
        }
    }

    /// The moment up to which the index is known to hold every committed change: `now` while
    /// the database answers, else the last completed catch-up.
    pub fn known_current_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        if self.database_up() {
            return now;
        }
        DateTime::from_timestamp_micros(self.current_at.load(Ordering::Acquire)).unwrap_or(now)
    }

    /// A catch-up from the change log completed at `now`: the index held everything committed
    /// before it started.
    pub fn mark_current(&self, now: DateTime<Utc>) {
        self.current_at
            .fetch_max(now.timestamp_micros(), Ordering::AcqRel);
    }

    /// Records whether the database answers; returns true when that changed.
    pub fn set_database_up(&self, up: bool) -> bool {
        self.database_up.swap(up, Ordering::AcqRel) != up
    }

    pub fn database_up(&self) -> bool {
        self.database_up.load(Ordering::Acquire)
    }

    /// How long since the replica last knew its index current; zero while the database answers.
    pub fn staleness(&self, now: DateTime<Utc>) -> Duration {
        if self.database_up() {
            return Duration::ZERO;
        }
        let since = now.timestamp_micros() - self.current_at.load(Ordering::Acquire);
        Duration::from_micros(u64::try_from(since).unwrap_or(0))
    }

    /// The staleness, when it is past what decisions may be answered with.
    pub fn too_stale(&self, now: DateTime<Utc>) -> Option<Duration> {
        let staleness = self.staleness(now);
        (!self.database_up() && staleness >= self.max_staleness).then_some(staleness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_stay_up_for_the_allowance_after_the_database_goes_away() {
        let t0 = Utc::now();
        let freshness = Freshness::new(Duration::from_secs(30), t0);
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        assert_eq!(
            freshness.too_stale(at(100)),
            None,
            "the database answers: never stale"
        );
        freshness.mark_current(at(100));
        assert!(freshness.set_database_up(false));
        assert_eq!(freshness.too_stale(at(129)), None);
        assert_eq!(freshness.too_stale(at(131)), Some(Duration::from_secs(31)));
        // A completed catch-up (the database came back) makes it current again.
        freshness.mark_current(at(131));
        assert_eq!(freshness.too_stale(at(132)), None);
        // Zero allowance: stale as soon as the database is gone.
        let strict = Freshness::new(Duration::ZERO, t0);
        strict.set_database_up(false);
        assert!(strict.too_stale(t0).is_some());
    }
}
