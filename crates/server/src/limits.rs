//! Back-pressure: what keeps one caller, or too many at once, from taking the server down.
//!
//! - **Budgets** (token buckets) per application and per citizen of an application: a caller
//!   over its budget gets 429 with `Retry-After` and an OperationOutcome, before any work is
//!   done. Budgets are kept in this process: with several nodes each node has its own, so
//!   an application may make up to (nodes × budget) requests.
//! - **Requests in flight**: above `max_in_flight` a request is refused at once with 503 and
//!   `Retry-After` (never queued without bound).
//! - **Request timeout**: a request that has no answer within `request_timeout_seconds` is
//!   answered 503 (the work it started on the blocking pool may still finish: a 503 is no
//!   proof that nothing was applied, as with any lost answer).
//! - **Bodies in process**: at most `body_budget_mib` of request bodies (by `Content-Length`)
//!   are worked on at once; a request that would pass it waits, in arrival order, before its
//!   body is read. Parsed, validated and queued for commit, a FHIR body takes many times its
//!   size, so this, not the number of requests, is what bounds the memory of a burst of
//!   large Bundles. A body without a length is counted at the body size limit.
//! - **Slow bodies**: a FHIR request body that has not fully arrived within
//!   `body_timeout_seconds` is refused with 408 and the connection closed.
//! - **Drain**: on shutdown `/ready` answers 503 for `drain_seconds` while the server still
//!   serves (the load balancer stops sending), then it stops accepting and gives the requests
//!   in flight `grace_seconds` to finish.
//!
//! Every refusal is counted for `/metrics` (`phr_refused_requests_total{reason}`).
//! `/health`, `/ready` and `/metrics` are never refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use phr_service::{Caller, Error};
use serde::Deserialize;

use crate::AppState;
use crate::fhir::error::FhirError;

/// The `[limits]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Requests served at once; more are refused with 503. 0: no limit.
    pub max_in_flight: usize,
    /// Longest time a request may take before it is answered 503. 0: no limit.
    pub request_timeout_seconds: u64,
    /// Longest time a FHIR request body may take to arrive before it is refused with 408.
    /// 0: no limit.
    pub body_timeout_seconds: u64,
    /// On shutdown, how long `/ready` answers 503 while requests are still served, so that a
    /// load balancer stops sending: set it to at least its health-check interval.
    pub drain_seconds: u64,
    /// On shutdown, how long the requests in flight have to finish after the server stopped
    /// accepting; then the process exits anyway.
    pub grace_seconds: u64,
    /// Request bodies worked on at once, MiB (by `Content-Length`): a request whose body
    /// would pass it waits for earlier ones to finish. 0: no limit.
    pub body_budget_mib: u32,
    /// Threads for blocking work (storage, validation of large Bundles, signing);
    /// more such work waits for one. Each thread keeps its own allocator cache and stack, so
    /// this bounds memory as well as contention.
    pub blocking_threads: usize,
    /// The budget of each application (all its citizens together), per node.
    pub app: Budget,
    /// The budget of each citizen in each application, per node.
    pub citizen: Budget,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_in_flight: 512,
            request_timeout_seconds: 60,
            body_timeout_seconds: 30,
            drain_seconds: 0,
            grace_seconds: 30,
            body_budget_mib: BODY_BUDGET_MIB,
            blocking_threads: 64,
            // 200 requests a second sustained per node, bursts of 5,000.
            app: Budget {
                burst: 5000,
                per_hour: 720_000,
            },
            // An hourly sync of 300 entries, even one request per entry, with room for the
            // searches around it: 400 requests an hour, all at once if need be.
            citizen: Budget {
                burst: 400,
                per_hour: 400,
            },
        }
    }
}

/// The default of `limits.body_budget_mib`. See [`LimitsConfig::body_budget_mib`]. Four or
/// five hourly-sync Bundles of 300 entries at once keep two cores busy: against 4 MiB, 2 cut
/// the memory of a 16-client ingest by a fifth at the same throughput.
const BODY_BUDGET_MIB: u32 = 2;

impl LimitsConfig {
    pub fn check(&self) -> Result<(), String> {
        if self.blocking_threads == 0 {
            return Err("limits.blocking_threads must be at least 1".into());
        }
        for (name, budget) in [("limits.app", &self.app), ("limits.citizen", &self.citizen)] {
            if budget.burst > 0 && budget.per_hour == 0 {
                return Err(format!(
                    "{name}: per_hour must be at least 1 when burst is set (burst = 0 turns \
                     the budget off)"
                ));
            }
        }
        Ok(())
    }
}

/// A token bucket: up to `burst` requests at once, refilled at `per_hour`. `burst = 0`: no
/// budget. A table that names only `burst = 0` turns the budget off; one that sets a burst
/// must set `per_hour` too (`LimitsConfig::check`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budget {
    pub burst: u32,
    pub per_hour: u32,
}

/// Why a request was refused, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    AppBudget,
    CitizenBudget,
    InFlight,
    Timeout,
    SlowBody,
    Cors,
}

impl Refusal {
    const ALL: [Refusal; 6] = [
        Refusal::AppBudget,
        Refusal::CitizenBudget,
        Refusal::InFlight,
        Refusal::Timeout,
        Refusal::SlowBody,
        Refusal::Cors,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Refusal::AppBudget => "app_budget",
            Refusal::CitizenBudget => "citizen_budget",
            Refusal::InFlight => "in_flight",
            Refusal::Timeout => "timeout",
            Refusal::SlowBody => "slow_body",
            Refusal::Cors => "cors_origin",
        }
    }
}

/// Refusals counted by reason.
#[derive(Debug, Default)]
pub struct Refusals([AtomicU64; 6]);

impl Refusals {
    pub fn count(&self, refusal: Refusal) {
        if let Some(counter) = Refusal::ALL
            .iter()
            .position(|r| *r == refusal)
            .and_then(|i| self.0.get(i))
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The counters, as Prometheus text.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP phr_refused_requests_total Requests refused to protect the server, by \
             reason (budgets are per node).\n# TYPE phr_refused_requests_total counter"
        );
        for (refusal, counter) in Refusal::ALL.iter().zip(self.0.iter()) {
            let _ = writeln!(
                out,
                "phr_refused_requests_total{{reason=\"{}\"}} {}",
                refusal.code(),
                counter.load(Ordering::Relaxed)
            );
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key. Buckets that have filled up again are dropped now and then, so the
/// map holds only callers active within about one refill period.
struct Buckets {
    budget: Budget,
    map: Mutex<(HashMap<String, Bucket>, usize)>,
}

/// Sweep full buckets after this many new keys.
const SWEEP_EVERY: usize = 4096;

impl Buckets {
    fn new(budget: Budget) -> Buckets {
        Buckets {
            budget,
            map: Mutex::new((HashMap::new(), 0)),
        }
    }

    fn rate(&self) -> f64 {
        f64::from(self.budget.per_hour) / 3600.0
    }

    /// Takes one request from `key`'s bucket, or says in how many seconds one will be there.
    fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        if self.budget.burst == 0 {
            return Ok(());
        }
        let burst = f64::from(self.budget.burst);
        let rate = self.rate();
        let Ok(mut guard) = self.map.lock() else {
            return Ok(());
        };
        let (map, added) = &mut *guard;
        if !map.contains_key(key) {
            *added += 1;
            if *added >= SWEEP_EVERY {
                *added = 0;
                map.retain(|_, b| {
                    b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
                });
            }
        }
        let bucket = map.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let seconds = ((1.0 - bucket.tokens) / rate).ceil();
            Err(if seconds.is_finite() && seconds >= 1.0 {
                seconds as u64
            } else {
                1
            })
        }
    }

    /// Gives back a request taken by [`Buckets::take`].
    fn refund(&self, key: &str) {
        if let Ok(mut guard) = self.map.lock()
            && let Some(bucket) = guard.0.get_mut(key)
        {
            bucket.tokens = (bucket.tokens + 1.0).min(f64::from(self.budget.burst));
        }
    }
}

/// The server's limits and their state.
pub struct Limits {
    pub config: LimitsConfig,
    apps: Buckets,
    citizens: Buckets,
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
    /// `body_budget_mib` in KiB permits.
    bodies: Option<Arc<tokio::sync::Semaphore>>,
    /// Requests that had to wait for the body budget.
    pub body_waits: AtomicU64,
    draining: AtomicBool,
    pub refusals: Refusals,
}

impl Limits {
    pub fn new(config: LimitsConfig) -> Limits {
        Limits {
            apps: Buckets::new(config.app),
            citizens: Buckets::new(config.citizen),
            in_flight: (config.max_in_flight > 0)
                .then(|| Arc::new(tokio::sync::Semaphore::new(config.max_in_flight))),
            bodies: (config.body_budget_mib > 0).then(|| {
                Arc::new(tokio::sync::Semaphore::new(kib_permits(
                    u64::from(config.body_budget_mib) << 20,
                )))
            }),
            body_waits: AtomicU64::new(0),
            draining: AtomicBool::new(false),
            refusals: Refusals::default(),
            config,
        }
    }

    /// Charges one request to the caller's budgets: its application's, and its citizen's in
    /// that application. Callers without a token (the open sandbox) have no budget.
    pub fn charge(&self, caller: &Caller) -> Result<(), Error> {
        self.charge_at(caller, Instant::now())
    }

    fn charge_at(&self, caller: &Caller, now: Instant) -> Result<(), Error> {
        let Caller::App(access) = caller else {
            return Ok(());
        };
        let citizen_key = access
            .patient
            .as_ref()
            .map(|patient| format!("{}\u{0}{patient}", access.app_id));
        if let Some(key) = &citizen_key
            && let Err(seconds) = self.citizens.take(key, now)
        {
            self.refusals.count(Refusal::CitizenBudget);
            return Err(Error::too_many_requests(
                format!(
                    "this application has used up its request budget for this citizen \
                     ({} requests an hour); try again in {seconds} s",
                    self.config.citizen.per_hour
                ),
                seconds,
            ));
        }
        if let Err(seconds) = self.apps.take(&access.app_id, now) {
            if let Some(key) = &citizen_key {
                self.citizens.refund(key);
            }
            self.refusals.count(Refusal::AppBudget);
            return Err(Error::too_many_requests(
                format!(
                    "this application has used up its request budget ({} requests an hour \
                     on this server); try again in {seconds} s",
                    self.config.app.per_hour
                ),
                seconds,
            ));
        }
        Ok(())
    }

    /// Shutdown has begun: `/ready` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Waits until a body of `bytes` fits in the body budget; the permit is held until the
    /// answer is made. A request with no body (`None`) takes nothing.
    async fn admit_body(&self, bytes: Option<u64>) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let bodies = self.bodies.as_ref()?;
        let bytes = bytes?;
        // A body larger than the whole budget waits for all of it, and then runs alone.
        let permits = u32::try_from(kib_permits(bytes))
            .unwrap_or(u32::MAX)
            .min(self.config.body_budget_mib.saturating_mul(1024));
        if let Ok(permit) = bodies.clone().try_acquire_many_owned(permits) {
            return Some(permit);
        }
        self.body_waits.fetch_add(1, Ordering::Relaxed);
        bodies.clone().acquire_many_owned(permits).await.ok()
    }

    /// Bytes of the body budget taken now (whole KiB per request).
    pub fn body_budget_in_use_bytes(&self) -> u64 {
        let Some(bodies) = &self.bodies else {
            return 0;
        };
        let total = kib_permits(u64::from(self.config.body_budget_mib) << 20);
        (total.saturating_sub(bodies.available_permits()) as u64) << 10
    }

    fn body_timeout(&self) -> Option<Duration> {
        (self.config.body_timeout_seconds > 0)
            .then(|| Duration::from_secs(self.config.body_timeout_seconds))
    }
}

/// Permits (KiB, rounded up) for `bytes`.
fn kib_permits(bytes: u64) -> usize {
    usize::try_from(bytes.div_ceil(1024)).unwrap_or(usize::MAX)
}

/// The size of the body `request` carries, as it says: `Content-Length`, or the body limit
/// for a body of unknown length (chunked), none for a request without a body.
fn body_bytes(request: &Request, max_body_bytes: u64) -> Option<u64> {
    let headers = request.headers();
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        let length = length.to_str().ok()?.trim().parse::<u64>().ok()?;
        return (length > 0).then_some(length.min(max_body_bytes));
    }
    headers
        .contains_key(header::TRANSFER_ENCODING)
        .then_some(max_body_bytes)
}

/// Paths never refused: the probes and the metrics.
fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// The layer around every route: the in-flight limit and the request timeout.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if exempt(request.uri().path()) {
        return next.run(request).await;
    }
    let limits = &state.limits;
    let _permit = match &limits.in_flight {
        Some(semaphore) => match semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                limits.refusals.count(Refusal::InFlight);
                return FhirError(Error::unavailable(
                    "the server is serving as many requests as it can; try again shortly",
                    1,
                ))
                .into_response();
            }
        },
        None => None,
    };
    let body = body_bytes(&request, state.config.max_body_bytes as u64);
    let work = async move {
        let _body = limits.admit_body(body).await;
        next.run(request).await
    };
    let seconds = limits.config.request_timeout_seconds;
    if seconds == 0 {
        return work.await;
    }
    match tokio::time::timeout(Duration::from_secs(seconds), work).await {
        Ok(response) => response,
        Err(_) => {
            limits.refusals.count(Refusal::Timeout);
            let mut response = FhirError(Error::unavailable(
                format!(
                    "the request took longer than the server's limit of {seconds} s and was \
                     abandoned; it may or may not have been applied"
                ),
                5,
            ))
            .into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// Reads a request body within `limit` bytes and the body timeout. `None` from the timeout.
pub async fn read_body(
    state: &AppState,
    body: axum::body::Body,
    limit: usize,
) -> Option<Result<bytes::Bytes, axum::Error>> {
    let reading = axum::body::to_bytes(body, limit);
    match state.limits.body_timeout() {
        Some(timeout) => match tokio::time::timeout(timeout, reading).await {
            Ok(read) => Some(read),
            Err(_) => {
                state.limits.refusals.count(Refusal::SlowBody);
                None
            }
        },
        None => Some(reading.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = axum::http::Request::builder()
            .method("POST")
            .uri("/fhir/r4");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn a_body_is_counted_by_its_length_up_to_the_body_limit() {
        assert_eq!(
            body_bytes(&request(&[("content-length", "1500")]), 5000),
            Some(1500)
        );
        assert_eq!(
            body_bytes(&request(&[("content-length", "9000")]), 5000),
            Some(5000)
        );
        assert_eq!(body_bytes(&request(&[("content-length", "0")]), 5000), None);
        assert_eq!(body_bytes(&request(&[]), 5000), None);
        // A body of unknown length may be as large as the limit.
        assert_eq!(
            body_bytes(&request(&[("transfer-encoding", "chunked")]), 5000),
            Some(5000)
        );
        assert_eq!(kib_permits(1), 1);
        assert_eq!(kib_permits(1024), 1);
        assert_eq!(kib_permits(1025), 2);
    }

    #[tokio::test]
    async fn bodies_share_the_budget_and_one_larger_than_it_runs_alone() {
        let limits = Limits::new(LimitsConfig {
            body_budget_mib: 1,
            ..LimitsConfig::default()
        });
        let first = limits.admit_body(Some(600 << 10)).await;
        assert!(first.is_some());
        assert_eq!(limits.body_budget_in_use_bytes(), 600 << 10);
        // Larger than the whole budget: it needs all of it, so it waits for the first.
        let whole = limits.admit_body(Some(3 << 20));
        tokio::pin!(whole);
        assert!(futures_poll_once(whole.as_mut()).await.is_none());
        drop(first);
        assert!(whole.await.is_some());
        assert_eq!(limits.body_waits.load(Ordering::Relaxed), 1);
        assert_eq!(limits.body_budget_in_use_bytes(), 0);
        // No body, no share; and no budget at all when it is 0.
        assert!(limits.admit_body(None).await.is_none());
        let unlimited = Limits::new(LimitsConfig {
            body_budget_mib: 0,
            ..LimitsConfig::default()
        });
        assert!(unlimited.admit_body(Some(u64::MAX)).await.is_none());
    }

    /// Polls `future` once: its output if it was ready.
    async fn futures_poll_once<F: std::future::Future + Unpin>(mut future: F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut future).poll(cx) {
                std::task::Poll::Ready(output) => Some(output),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    #[test]
    fn a_bucket_gives_its_burst_then_refills_at_its_rate() {
        let buckets = Buckets::new(Budget {
            burst: 2,
            per_hour: 3600,
        });
        let t0 = Instant::now();
        assert_eq!(buckets.take("a", t0), Ok(()));
        assert_eq!(buckets.take("a", t0), Ok(()));
        assert_eq!(buckets.take("a", t0), Err(1));
        // Another key has its own bucket.
        assert_eq!(buckets.take("b", t0), Ok(()));
        assert_eq!(buckets.take("a", t0 + Duration::from_secs(1)), Ok(()));
        assert_eq!(buckets.take("a", t0 + Duration::from_secs(1)), Err(1));
        // Never more than the burst, however long the wait.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(buckets.take("a", later), Ok(()));
        assert_eq!(buckets.take("a", later), Ok(()));
        assert!(buckets.take("a", later).is_err());
    }

    #[test]
    fn retry_after_says_when_the_next_request_fits() {
        let buckets = Buckets::new(Budget {
            burst: 1,
            per_hour: 60,
        });
        let t0 = Instant::now();
        assert_eq!(buckets.take("a", t0), Ok(()));
        assert_eq!(buckets.take("a", t0), Err(60));
        assert_eq!(buckets.take("a", t0 + Duration::from_secs(30)), Err(30));
    }

    #[test]
    fn a_budget_table_with_only_a_zero_burst_turns_it_off() {
        let off: LimitsConfig = toml::from_str("[citizen]\nburst = 0\n").unwrap();
        assert_eq!(off.citizen, Budget::default());
        assert_eq!(off.app, LimitsConfig::default().app);
        assert!(off.check().is_ok());
        let half: LimitsConfig = toml::from_str("[citizen]\nburst = 5\n").unwrap();
        assert!(half.check().unwrap_err().contains("per_hour"));
    }

    #[test]
    fn no_burst_means_no_budget() {
        let buckets = Buckets::new(Budget {
            burst: 0,
            per_hour: 0,
        });
        for _ in 0..1000 {
            assert_eq!(buckets.take("a", Instant::now()), Ok(()));
        }
    }

    #[test]
    fn full_buckets_are_swept() {
        let buckets = Buckets::new(Budget {
            burst: 1,
            per_hour: 3600,
        });
        let t0 = Instant::now();
        for i in 0..SWEEP_EVERY - 1 {
            let _ = buckets.take(&i.to_string(), t0);
        }
        // An hour on, every bucket is full again: the next new key sweeps them.
        let _ = buckets.take("new", t0 + Duration::from_secs(3600));
        let len = buckets.map.lock().map(|g| g.0.len()).unwrap_or(0);
        assert_eq!(len, 1);
    }

    #[test]
    fn a_budget_without_refill_is_refused() {
        let mut config = LimitsConfig::default();
        assert!(config.check().is_ok());
        config.citizen.per_hour = 0;
        assert!(config.check().is_err());
        config.citizen.burst = 0;
        assert!(config.check().is_ok());
    }
}
