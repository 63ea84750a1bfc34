//! The one shutdown handle: the edge, health, the services and the upkeep tasks all read where
//! shutdown is from here, and only `App::run_until` moves it on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::watch;

/// Where shutdown is; only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    Serving,
    /// SIGTERM received: health says NOT_SERVING, open streams end, in-flight unary RPCs finish.
    Draining,
    /// The grace period is over: whatever still runs ends with UNAVAILABLE.
    Closing,
    /// The server has stopped serving: the upkeep tasks end.
    Stopped,
}

/// A cheap, cloneable view of the shutdown phase, and the means to advance it.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// For waiters.
    phase: watch::Sender<Phase>,
    /// The same phase for `phase()`: a plain load, where the watch takes a shared lock (every
    /// RPC reads it).
    now: AtomicU8,
}

const PHASES: [Phase; 4] = [
    Phase::Serving,
    Phase::Draining,
    Phase::Closing,
    Phase::Stopped,
];

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                phase: watch::Sender::new(Phase::Serving),
                now: AtomicU8::new(Phase::Serving as u8),
            }),
        }
    }

    /// The phase now.
    pub fn phase(&self) -> Phase {
        PHASES[usize::from(self.inner.now.load(Ordering::Acquire))]
    }

    /// Moves shutdown on to `phase` (never back).
    pub fn advance(&self, phase: Phase) {
        self.inner.phase.send_if_modified(|now| {
            let later = phase > *now;
            if later {
                *now = phase;
                self.inner.now.store(phase as u8, Ordering::Release);
            }
            later
        });
    }

    /// Resolves once shutdown has reached `phase`.
    pub fn reached(&self, phase: Phase) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.phase.subscribe();
        async move {
            // The sender lives in `inner`, held by every clone: `Err` cannot happen while
            // anything can still advance it, and then nothing waits for more.
            let _ = rx.wait_for(|now| *now >= phase).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn phases_only_move_forward_and_wake_their_waiters() {
        let shutdown = Shutdown::new();
        let draining = tokio::spawn(shutdown.reached(Phase::Draining));
        let stopped = tokio::spawn(shutdown.reached(Phase::Stopped));
        shutdown.advance(Phase::Closing);
        draining.await.unwrap();
        assert_eq!(shutdown.phase(), Phase::Closing);
        shutdown.advance(Phase::Serving);
        assert_eq!(shutdown.phase(), Phase::Closing, "never back");
        assert!(!stopped.is_finished());
        shutdown.advance(Phase::Stopped);
        stopped.await.unwrap();
    }
}
