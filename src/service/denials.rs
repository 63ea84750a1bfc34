//! Refused requests in the audit trail (as Heimdall's admin audit keeps them): who asked, which
//! RPC, what was missing, under which request id. Rate-limited per actor so that a caller
//! hammering the API cannot fill the table: at most `PER_WINDOW` records per actor per
//! `WINDOW`, then one record saying the rest of the window is not recorded.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Service;
use crate::domain::{Caller, IdentityId, TenantId};

const WINDOW: Duration = Duration::from_secs(60);
const PER_WINDOW: u32 = 10;
/// Actors remembered before the map forgets those whose window has passed.
const TRACKED: usize = 10_000;

/// Per-actor counts in the current window.
#[derive(Debug, Default)]
pub(super) struct DenialLimiter {
    actors: parking_lot::Mutex<HashMap<(TenantId, IdentityId), (Instant, u32)>>,
}

/// What to record for one refusal.
enum Verdict {
    Record,
    /// The first refusal past the limit: record that the rest are not recorded.
    RecordLimitReached,
    Skip,
}

impl DenialLimiter {
    fn admit(&self, caller: &Caller, now: Instant) -> Verdict {
        let mut actors = self.actors.lock();
        if actors.len() >= TRACKED {
            actors.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
        }
        let entry = actors
            .entry((caller.tenant.clone(), caller.subject.clone()))
            .or_insert((now, 0));
        if now.duration_since(entry.0) >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 += 1;
        match entry.1 {
            n if n <= PER_WINDOW => Verdict::Record,
            n if n == PER_WINDOW + 1 => Verdict::RecordLimitReached,
            _ => Verdict::Skip,
        }
    }
}

impl Service {
    /// Records that `caller` was refused for `why`, in the background (the refusal is answered
    /// at once; a failed record is logged).
    pub(super) fn record_denied(&self, caller: &Caller, why: String) {
        let reason = match self.denials.admit(caller, Instant::now()) {
            Verdict::Record => why,
            Verdict::RecordLimitReached => format!(
                "{why} (more than {PER_WINDOW} refusals of this actor in {}s: the rest of the \
                 window is not recorded)",
                WINDOW.as_secs()
            ),
            Verdict::Skip => return,
        };
        let (store, caller) = (self.store.clone(), caller.clone());
        let revision = self.engine.applied_revision(&caller.tenant);
        let now = self.now();
        tokio::spawn(async move {
            if let Err(e) = store.record_denied(&caller, revision, now, reason).await {
                tracing::warn!(error = %e, "recording a refused request failed");
            }
        });
    }
}
