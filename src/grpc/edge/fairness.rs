//! Fair share between tenants (issue 14, item 5): each tenant may have at most
//! `limits.per_tenant_concurrent_rpcs` RPCs in its handlers at once, and may start at most
//! `limits.per_tenant_writes_per_second` mutating RPCs per second (a token bucket holding one
//! second's worth), so one noisy tenant cannot take the whole server from the others. Over
//! either: RESOURCE_EXHAUSTED `TENANT_RATE_LIMITED` with a RetryInfo. Zero turns a limit off.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hashbrown::HashMap;
use parking_lot::{Mutex, RwLock};
use tonic::Status;

use crate::domain::TenantId;

/// One tenant's load: RPCs in flight and its write bucket.
#[derive(Debug)]
struct Share {
    in_flight: AtomicUsize,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every tenant's share of the server.
#[derive(Debug)]
pub(super) struct TenantShares {
    max_in_flight: usize,
    writes_per_second: u32,
    shares: RwLock<HashMap<TenantId, Arc<Share>>>,
}

/// A tenant's RPC in flight; dropping it ends the RPC's share.
#[derive(Debug)]
pub(super) struct TenantPermit(Arc<Share>);

impl Drop for TenantPermit {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl TenantShares {
    pub(super) fn new(max_in_flight: usize, writes_per_second: u32) -> Self {
        Self {
            max_in_flight,
            writes_per_second,
            shares: RwLock::default(),
        }
    }

    /// Admits one RPC of `tenant` (a mutating one when `write`), or refuses it.
    pub(super) fn admit(
        &self,
        tenant: &TenantId,
        write: bool,
    ) -> Result<Option<TenantPermit>, Status> {
        if self.max_in_flight == 0 && (self.writes_per_second == 0 || !write) {
            return Ok(None);
        }
        let share = self.share(tenant);
        if write && self.writes_per_second > 0 {
            let rate = f64::from(self.writes_per_second);
            let mut bucket = share.bucket.lock();
            let now = Instant::now();
            let refill = now.duration_since(bucket.at).as_secs_f64() * rate;
            bucket.tokens = (bucket.tokens + refill).min(rate);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / rate);
                return Err(limited(
                    format!(
                        "tenant '{tenant}' is over its {} writes per second; retry later",
                        self.writes_per_second
                    ),
                    wait,
                ));
            }
            bucket.tokens -= 1.0;
        }
        if self.max_in_flight == 0 {
            return Ok(None);
        }
        if share.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            share.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(limited(
                format!(
                    "tenant '{tenant}' has {} RPCs in flight, its limit; retry with backoff",
                    self.max_in_flight
                ),
                Duration::from_millis(100),
            ));
        }
        Ok(Some(TenantPermit(share)))
    }

    fn share(&self, tenant: &TenantId) -> Arc<Share> {
        if let Some(share) = self.shares.read().get(tenant) {
            return Arc::clone(share);
        }
        let rate = f64::from(self.writes_per_second);
        Arc::clone(
            self.shares
                .write()
                .entry(tenant.clone())
                .or_insert_with(|| {
                    Arc::new(Share {
                        in_flight: AtomicUsize::new(0),
                        bucket: Mutex::new(Bucket {
                            tokens: rate,
                            at: Instant::now(),
                        }),
                    })
                }),
        )
    }
}

fn limited(message: String, retry_after: Duration) -> Status {
    use tonic_types::StatusExt as _;
    let mut details = crate::grpc::status::error_info(
        crate::proto::pb::ErrorReason::TenantRateLimited,
        Default::default(),
    );
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(tonic::Code::ResourceExhausted, message, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_over_its_share_is_refused_and_others_are_not() {
        let shares = TenantShares::new(2, 3);
        let (a, b) = (TenantId::parse("a").unwrap(), TenantId::parse("b").unwrap());
        let first = shares.admit(&a, false).unwrap();
        let second = shares.admit(&a, false).unwrap();
        assert!(shares.admit(&a, false).is_err(), "a third RPC in flight");
        assert!(
            shares.admit(&b, false).unwrap().is_some(),
            "another tenant still gets in"
        );
        drop(first);
        assert!(
            shares.admit(&a, false).is_ok(),
            "a finished RPC frees its share"
        );
        drop(second);
        // Three writes a second: the fourth at once is refused, with how long to wait.
        for _ in 0..3 {
            shares.admit(&b, true).unwrap();
        }
        let refused = shares.admit(&b, true).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(shares.admit(&a, true).is_ok(), "a's bucket is its own");
    }

    #[test]
    fn limits_of_zero_admit_everything_without_bookkeeping() {
        let shares = TenantShares::new(0, 0);
        let a = TenantId::parse("a").unwrap();
        for _ in 0..10_000 {
            assert!(shares.admit(&a, true).unwrap().is_none());
        }
        assert!(shares.shares.read().is_empty());
    }
}
