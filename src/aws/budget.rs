//! One budget of requests in flight for a whole run, and a meter of what
//! was sent.
//!
//! Work that sends requests one after another (a key's five calls, a
//! region's listing, an account's AssumeRole) holds one slot of the
//! [`Budget`] while it runs, so requests in flight never exceed
//! `--max-concurrency`, whatever the number of accounts and regions. The
//! semaphore is fair (first come, first served), so accounts started first
//! finish first and the progress bar moves steadily.
//!
//! The [`Meter`] is an SDK interceptor on every client of the fan-out: it
//! counts attempts and the time each spent on the wire, which gives the
//! average number of requests in flight (busy time / wall time).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Slots for requests in flight, shared by every account and region.
#[derive(Debug, Clone)]
pub struct Budget {
    slots: Arc<Semaphore>,
    size: usize,
}

impl Budget {
    pub fn new(size: usize) -> Self {
        let size = size.max(1);
        Budget {
            slots: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// Waits for a slot; the work holds it until the permit is dropped.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            // The semaphore is never closed: it lives as long as the run.
            .expect("the run's budget semaphore is never closed")
    }

    pub fn size(&self) -> usize {
        self.size
    }
}

/// Requests sent by the clients the meter is attached to.
#[derive(Debug, Clone)]
pub struct Meter {
    inner: Arc<MeterState>,
}

#[derive(Debug)]
struct MeterState {
    started: Instant,
    sent: AtomicU64,
    busy_nanos: AtomicU64,
    in_flight: AtomicI64,
    max_in_flight: AtomicI64,
}

/// When the current attempt was put on the wire.
#[derive(Debug, Clone)]
struct SentAt(Option<Instant>);

impl Storable for SentAt {
    type Storer = StoreReplace<Self>;
}

/// What the meter saw.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MeterReading {
    /// Attempts sent (retries included).
    pub requests: u64,
    pub wall_seconds: f64,
    /// Time spent on the wire, summed over requests.
    pub busy_seconds: f64,
    /// busy / wall: requests in flight on average.
    pub average_in_flight: f64,
    pub max_in_flight: i64,
}

impl Default for Meter {
    fn default() -> Self {
        Self::new()
    }
}

impl Meter {
    pub fn new() -> Self {
        Meter {
            inner: Arc::new(MeterState {
                started: Instant::now(),
                sent: AtomicU64::new(0),
                busy_nanos: AtomicU64::new(0),
                in_flight: AtomicI64::new(0),
                max_in_flight: AtomicI64::new(0),
            }),
        }
    }

    fn start(&self) -> Instant {
        let s = &self.inner;
        s.sent.fetch_add(1, Ordering::Relaxed);
        let now = s.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        s.max_in_flight.fetch_max(now, Ordering::Relaxed);
        Instant::now()
    }

    fn end(&self, at: Instant) {
        let s = &self.inner;
        s.in_flight.fetch_sub(1, Ordering::Relaxed);
        let nanos = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
        s.busy_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn reading(&self) -> MeterReading {
        let s = &self.inner;
        let wall = s.started.elapsed().as_secs_f64();
        let busy = Duration::from_nanos(s.busy_nanos.load(Ordering::Relaxed)).as_secs_f64();
        MeterReading {
            requests: s.sent.load(Ordering::Relaxed),
            wall_seconds: wall,
            busy_seconds: busy,
            average_in_flight: if wall > 0.0 { busy / wall } else { 0.0 },
            max_in_flight: s.max_in_flight.load(Ordering::Relaxed),
        }
    }
}

impl Intercept for Meter {
    fn name(&self) -> &'static str {
        "kmsrot-request-meter"
    }

    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state()
            .store_put(SentAt(Some(self.start())));
        Ok(())
    }

    // After every attempt, sent or not: only one that was sent is counted.
    fn read_after_attempt(
        &self,
        _ctx: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(at) = cfg.load::<SentAt>().and_then(|s| s.0) {
            self.end(at);
            cfg.interceptor_state().store_put(SentAt(None));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_bounds_work_in_flight() {
        let budget = Budget::new(2);
        let a = budget.slot().await;
        let _b = budget.slot().await;
        let third = tokio::time::timeout(Duration::from_millis(50), budget.slot()).await;
        assert!(third.is_err(), "a third slot was handed out");
        drop(a);
        let _c = tokio::time::timeout(Duration::from_millis(50), budget.slot())
            .await
            .expect("a freed slot is handed on");
        assert_eq!(Budget::new(0).size(), 1);
    }

    #[test]
    fn the_meter_counts_time_on_the_wire() {
        let m = Meter::new();
        let a = m.start();
        let b = m.start();
        std::thread::sleep(Duration::from_millis(20));
        m.end(a);
        m.end(b);
        let r = m.reading();
        assert_eq!((r.requests, r.max_in_flight), (2, 2));
        assert!(r.busy_seconds >= 0.04, "{r:?}");
        assert!(r.average_in_flight > 1.0, "{r:?}");
    }
}
