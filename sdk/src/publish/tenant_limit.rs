//! Per-tenant publish limits: a token bucket of bytes per organization.
//!
//! Tenants share a service's stream, whose `max_bytes` (1 GiB) with
//! `discard: old` evicts the oldest events of every tenant when one tenant
//! fills it. A publisher with a [`TenantLimit`] refuses an event of a tenant
//! that has used up its budget, before sending it, with an error naming the
//! tenant and the limit; other tenants are not slowed down.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many bytes (body plus headers, as stored) one publisher sends for
/// one organization: `burst_bytes` at once, refilled at `bytes_per_second`.
///
/// Size it from the stream: a tenant publishing at the limit for the whole
/// `max_age` stores about `bytes_per_second × max_age` per publisher
/// instance, so `max_bytes / (max_age × instances × n)` gives each tenant
/// at most `1/n` of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantLimit {
    /// The sustained rate, in bytes per second (at least 1).
    pub bytes_per_second: u64,
    /// The largest burst, in bytes (at least the largest event).
    pub burst_bytes: u64,
}

impl std::fmt::Display for TenantLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} bytes/s, bursts of {} bytes",
            self.bytes_per_second, self.burst_bytes
        )
    }
}

/// Why a tenant's event may not be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Over budget: enough bytes come back after this long.
    RetryAfter(Duration),
    /// The event is larger than the whole burst: it never fits.
    LargerThanBurst,
}

/// One bucket per organization seen.
#[derive(Debug)]
pub(crate) struct TenantBuckets {
    limit: TenantLimit,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    bytes: f64,
    at: Instant,
}

/// Past this many tenants, buckets that have refilled (and so hold no
/// state worth keeping) are dropped, so the map does not grow without bound.
const PRUNE_ABOVE: usize = 4096;

impl TenantBuckets {
    pub(crate) fn new(limit: TenantLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::default(),
        }
    }

    pub(crate) fn limit(&self) -> TenantLimit {
        self.limit
    }

    /// Takes `size` bytes from `organization`'s bucket at `now`, or says why not.
    pub(crate) fn take(
        &self,
        organization: &str,
        size: usize,
        now: Instant,
    ) -> Result<(), Refusal> {
        let burst = self.limit.burst_bytes as f64;
        let rate = self.limit.bytes_per_second as f64;
        let size = size as f64;
        if size > burst {
            return Err(Refusal::LargerThanBurst);
        }
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| refilled(b, now, rate, burst) < burst);
        }
        let bucket = buckets.entry(organization.to_string()).or_insert(Bucket {
            bytes: burst,
            at: now,
        });
        let available = refilled(bucket, now, rate, burst);
        if available < size {
            let wait = Duration::from_secs_f64((size - available) / rate);
            return Err(Refusal::RetryAfter(wait));
        }
        *bucket = Bucket {
            bytes: available - size,
            at: now.max(bucket.at),
        };
        Ok(())
    }
}

/// The bytes in `bucket` at `now`.
fn refilled(bucket: &Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
    (bucket.bytes + elapsed * rate).min(burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets() -> TenantBuckets {
        TenantBuckets::new(TenantLimit {
            bytes_per_second: 100,
            burst_bytes: 1_000,
        })
    }

    #[test]
    fn a_tenant_gets_its_burst_then_waits_for_the_refill() {
        let b = buckets();
        let t0 = Instant::now();
        assert_eq!(b.take("org-a", 600, t0), Ok(()));
        assert_eq!(b.take("org-a", 400, t0), Ok(()));
        assert_eq!(
            b.take("org-a", 200, t0),
            Err(Refusal::RetryAfter(Duration::from_secs(2)))
        );
        // Two seconds later 200 bytes are back.
        assert_eq!(b.take("org-a", 200, t0 + Duration::from_secs(2)), Ok(()));
        assert!(b.take("org-a", 1, t0 + Duration::from_secs(2)).is_err());
    }

    #[test]
    fn one_tenant_over_its_budget_does_not_limit_another() {
        let b = buckets();
        let t0 = Instant::now();
        assert_eq!(b.take("org-noisy", 1_000, t0), Ok(()));
        assert!(b.take("org-noisy", 1, t0).is_err());
        assert_eq!(b.take("org-quiet", 1_000, t0), Ok(()));
    }

    #[test]
    fn the_refill_stops_at_the_burst() {
        let b = buckets();
        let t0 = Instant::now();
        assert_eq!(b.take("org-a", 1_000, t0), Ok(()));
        let later = t0 + Duration::from_secs(3_600);
        assert_eq!(b.take("org-a", 1_000, later), Ok(()));
        assert!(b.take("org-a", 1, later).is_err());
    }

    #[test]
    fn an_event_larger_than_the_burst_never_fits() {
        assert_eq!(
            buckets().take("org-a", 1_001, Instant::now()),
            Err(Refusal::LargerThanBurst)
        );
    }
}
