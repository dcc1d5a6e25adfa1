//! Operations endpoints and the request middleware that feeds them: `/metrics` (Prometheus
//! text format), `/health` (liveness) and `/ready` (storage answers), and one structured log
//! line per request.
//!
//! What is recorded is the route *template* (`/fhir/r4/{type}/{id}`), never the raw URL: a
//! path or query string may hold a personal identity code, a token or an id, and none of those
//! may reach logs or metric labels. The hot path only touches atomics: routes get a slot in a
//! fixed, append-only table the first time they are seen (a lock-free scan afterwards).

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Upper bounds of the latency histogram buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// The statuses counted one by one; anything else is counted under its class (`4xx`...).
const STATUSES: [u16; 22] = [
    200, 201, 202, 204, 304, 400, 401, 403, 404, 405, 406, 409, 410, 412, 413, 415, 422, 429, 500,
    501, 503, 302,
];
const OTHER_STATUS: usize = STATUSES.len();
/// At most this many (method, route) pairs get series of their own; later ones share the
/// overflow slot. Routes are code, not data, so the table never fills in practice.
const MAX_ROUTES: usize = 256;
/// The label of requests that matched no route (404s of unknown paths).
const UNMATCHED: &str = "unmatched";

struct RouteSeries {
    method: Method,
    route: String,
    statuses: [AtomicU64; STATUSES.len() + 1],
    /// Cumulative counts are computed when rendering; each bucket counts its own range.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    micros_sum: AtomicU64,
}

impl RouteSeries {
    fn new(method: Method, route: String) -> RouteSeries {
        RouteSeries {
            method,
            route,
            statuses: std::array::from_fn(|_| AtomicU64::new(0)),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            micros_sum: AtomicU64::new(0),
        }
    }

    fn record(&self, status: StatusCode, seconds: f64) {
        let s = STATUSES
            .iter()
            .position(|&c| c == status.as_u16())
            .unwrap_or(OTHER_STATUS);
        if let Some(count) = self.statuses.get(s) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let b = LATENCY_BUCKETS
            .iter()
            .position(|&upper| seconds <= upper)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(count) = self.buckets.get(b) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.micros_sum
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }
}

/// Request counters and latency histograms per (method, route template).
pub struct Metrics {
    routes: Box<[OnceLock<RouteSeries>]>,
    overflow: RouteSeries,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            routes: (0..MAX_ROUTES).map(|_| OnceLock::new()).collect(),
            overflow: RouteSeries::new(Method::OPTIONS, "other".into()),
            started: Instant::now(),
        }
    }
}

impl Metrics {
    /// The series of `method` `route`, created on first use.
    fn series(&self, method: &Method, route: &str) -> &RouteSeries {
        for slot in self.routes.iter() {
            match slot.get() {
                Some(s) if s.method == method && s.route == route => return s,
                Some(_) => continue,
                None => {
                    // Two threads may race here for the same new route: the loser's value is
                    // dropped and it takes whatever won the slot, or moves on to the next.
                    let s = slot.get_or_init(|| RouteSeries::new(method.clone(), route.into()));
                    if s.method == method && s.route == route {
                        return s;
                    }
                }
            }
        }
        &self.overflow
    }

    pub fn record(&self, method: &Method, route: &str, status: StatusCode, seconds: f64) {
        self.series(method, route).record(status, seconds);
    }

    /// Seconds since the server started.
    pub fn uptime(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The request series in Prometheus text format.
    pub fn render_requests(&self, out: &mut String) {
        use std::fmt::Write;
        let series: Vec<&RouteSeries> = self
            .routes
            .iter()
            .filter_map(OnceLock::get)
            .chain(std::iter::once(&self.overflow))
            .collect();
        out.push_str("# HELP phr_http_requests_total HTTP requests answered, by method, route template and status.\n");
        out.push_str("# TYPE phr_http_requests_total counter\n");
        for s in &series {
            for (i, count) in s.statuses.iter().enumerate() {
                let n = count.load(Ordering::Relaxed);
                if n == 0 {
                    continue;
                }
                let status = match STATUSES.get(i) {
                    Some(code) => code.to_string(),
                    None => "other".to_string(),
                };
                let _ = writeln!(
                    out,
                    "phr_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                    s.method,
                    label(&s.route)
                );
            }
        }
        out.push_str("# HELP phr_http_request_duration_seconds Time from request to response headers, by method and route template.\n");
        out.push_str("# TYPE phr_http_request_duration_seconds histogram\n");
        for s in &series {
            let counts: Vec<u64> = s
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect();
            let total: u64 = counts.iter().sum();
            if total == 0 {
                continue;
            }
            let labels = format!("method=\"{}\",route=\"{}\"", s.method, label(&s.route));
            let mut cumulative = 0;
            for (upper, count) in LATENCY_BUCKETS.iter().zip(&counts) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "phr_http_request_duration_seconds_bucket{{{labels},le=\"{upper}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "phr_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {total}"
            );
            let _ = writeln!(
                out,
                "phr_http_request_duration_seconds_sum{{{labels}}} {}",
                s.micros_sum.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "phr_http_request_duration_seconds_count{{{labels}}} {total}"
            );
        }
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Records every request in the metrics and writes one JSON log line: method, route template,
/// status, duration. Never the URL, the query string or any header.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let route = route.as_deref().unwrap_or(UNMATCHED);
    let status = response.status();
    state.metrics.record(&method, route, status, seconds);
    if state.config.request_log {
        tracing::info!(
            target: "phr::request",
            method = %method,
            route = route,
            status = status.as_u16(),
            duration_ms = seconds * 1000.0,
        );
    }
    response
}

/// `/health`: the process is alive and serving HTTP.
pub async fn health() -> &'static str {
    "ok"
}

/// `/ready`: storage answers a read and the server is not shutting down. 503 otherwise, so a
/// load balancer stops sending traffic.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.limits.draining() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let storage = state.fhir.storage.clone();
    let answered = tokio::task::spawn_blocking(move || storage.read("Patient", "ready-probe"))
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    if answered {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "storage is not answering").into_response()
    }
}

/// `/metrics` in Prometheus text exposition format 0.0.4.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let state2 = state.clone();
    let body = tokio::task::spawn_blocking(move || render(&state2))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Every metric, as text.
pub fn render(state: &AppState) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(8192);
    state.metrics.render_requests(&mut out);
    state.limits.refusals.render(&mut out);
    if let Some(clients) = &state.client_certificates {
        clients.render(&mut out);
    }

    let _ = writeln!(
        out,
        "# HELP phr_body_budget_in_use_bytes Request bodies being worked on now, counted \
         against limits.body_budget_mib (in whole KiB).\n\
         # TYPE phr_body_budget_in_use_bytes gauge\nphr_body_budget_in_use_bytes {}",
        state.limits.body_budget_in_use_bytes()
    );
    let stats = state.fhir.storage.stats();
    let mut counter = |name: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    };
    counter(
        "phr_body_budget_waits_total",
        "Requests that waited for room in the body budget (limits.body_budget_mib) before \
         their body was read.",
        state
            .limits
            .body_waits
            .load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    counter(
        "phr_store_commits_total",
        "Write transactions committed by the storage writer (one fsync each).",
        stats.commits as f64,
    );
    counter(
        "phr_store_fsyncs_total",
        "WAL fsyncs made for writes (equals commits: synchronous=FULL).",
        stats.commits as f64,
    );
    counter(
        "phr_store_write_requests_total",
        "Write requests answered by the storage writer.",
        stats.requests as f64,
    );
    counter(
        "phr_store_write_ops_total",
        "Write operations (resource versions, deletes) applied or rejected.",
        stats.ops as f64,
    );
    counter(
        "phr_store_commit_seconds_total",
        "Time spent committing (fsync), summed.",
        stats.commit_micros as f64 / 1e6,
    );
    let _ = writeln!(
        out,
        "# HELP phr_store_commit_batch_requests Write requests sharing one commit (group commit).\n\
         # TYPE phr_store_commit_batch_requests histogram"
    );
    let mut cumulative = 0;
    for (i, count) in stats.batch_histogram.iter().enumerate() {
        cumulative += count;
        if i + 1 < stats.batch_histogram.len() {
            let upper = (1u64 << (i + 1)) - 1;
            let _ = writeln!(
                out,
                "phr_store_commit_batch_requests_bucket{{le=\"{upper}\"}} {cumulative}"
            );
        }
    }
    let _ = writeln!(
        out,
        "phr_store_commit_batch_requests_bucket{{le=\"+Inf\"}} {}\nphr_store_commit_batch_requests_count {}\nphr_store_commit_batch_requests_sum {}",
        stats.commits, stats.commits, stats.requests
    );
    let _ = writeln!(
        out,
        "# HELP phr_store_commit_batch_requests_max The most write requests committed together.\n\
         # TYPE phr_store_commit_batch_requests_max gauge\nphr_store_commit_batch_requests_max {}",
        stats.max_batch
    );
    let _ = writeln!(
        out,
        "# HELP phr_store_size_bytes Size of the database on disk (SQLite: database and WAL files).\n\
         # TYPE phr_store_size_bytes gauge\nphr_store_size_bytes {}",
        state
            .fhir
            .storage
            .size_bytes()
            .unwrap_or_else(|| data_size(&state.config.data))
    );
    if let Some(rss) = resident_bytes() {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory of the server process.\n\
             # TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
        );
    }
    if let Some((anonymous, mapped)) = std::fs::read_to_string("/proc/self/smaps_rollup")
        .ok()
        .and_then(|text| memory_split(&text))
    {
        let _ = writeln!(
            out,
            "# HELP phr_process_memory_bytes Resident memory by kind: anonymous (heap, stacks, \
             caches) and mapped (files: the program, database pages read through a memory map).\n\
             # TYPE phr_process_memory_bytes gauge\n\
             phr_process_memory_bytes{{kind=\"anonymous\"}} {anonymous}\n\
             phr_process_memory_bytes{{kind=\"mapped\"}} {mapped}"
        );
    }
    if let Ok(tokens) = state.auth.token_stats() {
        let _ = writeln!(
            out,
            "# HELP phr_auth_active_grants Grants citizens have given to applications and not withdrawn.\n\
             # TYPE phr_auth_active_grants gauge\nphr_auth_active_grants {}\n\
             # HELP phr_auth_refreshable_logins Logins holding an unused, unexpired refresh token under an active grant.\n\
             # TYPE phr_auth_refreshable_logins gauge\nphr_auth_refreshable_logins {}",
            tokens.active_grants, tokens.refreshable_logins
        );
    }
    let _ = writeln!(
        out,
        "# HELP phr_uptime_seconds Seconds since the server started.\n\
         # TYPE phr_uptime_seconds gauge\nphr_uptime_seconds {:.3}",
        state.metrics.uptime()
    );
    out
}

/// Bytes of the SQLite files in the data folder (`*.db`, `*.db-wal`, `*.db-shm`).
pub fn data_size(folder: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.ends_with(".db") || name.ends_with(".db-wal") || name.ends_with(".db-shm")
        })
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Resident memory split into anonymous and file-mapped bytes, from the text of
/// `/proc/<pid>/smaps_rollup` (Linux only).
pub fn memory_split(smaps_rollup: &str) -> Option<(u64, u64)> {
    let kib = |name: &str| -> Option<u64> {
        smaps_rollup
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    let rss = kib("Rss:")?;
    let anonymous = kib("Anonymous:")?;
    Some((anonymous * 1024, rss.saturating_sub(anonymous) * 1024))
}

/// This process's resident set size, from `/proc/self/status` (Linux only).
pub fn resident_bytes() -> Option<u64> {
    resident_bytes_of("self")
}

/// The resident set size of process `pid` (`self` for this one), from `/proc`.
pub fn resident_bytes_of(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_split_into_anonymous_and_mapped() {
        let text = "00400000-7ffd [rollup]\nRss:              204800 kB\nPss:              200000 kB\n\
                    Anonymous:        153600 kB\nSwap:                  0 kB\n";
        assert_eq!(memory_split(text), Some((153_600 * 1024, 51_200 * 1024)));
        assert_eq!(memory_split("Rss: 1 kB\n"), None);
    }

    #[test]
    fn requests_are_counted_per_route_template_and_status() {
        let m = Metrics::default();
        m.record(&Method::GET, "/fhir/r4/{type}/{id}", StatusCode::OK, 0.002);
        m.record(&Method::GET, "/fhir/r4/{type}/{id}", StatusCode::OK, 0.0004);
        m.record(
            &Method::GET,
            "/fhir/r4/{type}/{id}",
            StatusCode::NOT_FOUND,
            0.3,
        );
        m.record(&Method::POST, "/fhir/r4", StatusCode::OK, 0.05);
        let mut out = String::new();
        m.render_requests(&mut out);
        assert!(out.contains(
            "phr_http_requests_total{method=\"GET\",route=\"/fhir/r4/{type}/{id}\",status=\"200\"} 2"
        ), "{out}");
        assert!(out.contains(
            "phr_http_requests_total{method=\"GET\",route=\"/fhir/r4/{type}/{id}\",status=\"404\"} 1"
        ));
        assert!(out.contains(
            "phr_http_requests_total{method=\"POST\",route=\"/fhir/r4\",status=\"200\"} 1"
        ));
        // Cumulative buckets: 0.0004 s falls in le=0.0005, 0.002 in le=0.0025, 0.3 in le=0.5.
        let bucket = |le: &str| {
            format!(
                "phr_http_request_duration_seconds_bucket{{method=\"GET\",route=\"/fhir/r4/{{type}}/{{id}}\",le=\"{le}\"}} "
            )
        };
        assert!(out.contains(&(bucket("0.0005") + "1")), "{out}");
        assert!(out.contains(&(bucket("0.0025") + "2")));
        assert!(out.contains(&(bucket("0.25") + "2")));
        assert!(out.contains(&(bucket("0.5") + "3")));
        assert!(out.contains(&(bucket("+Inf") + "3")));
    }

    #[test]
    fn unusual_statuses_are_counted_as_other() {
        let m = Metrics::default();
        m.record(&Method::GET, "/x", StatusCode::IM_A_TEAPOT, 0.001);
        let mut out = String::new();
        m.render_requests(&mut out);
        assert!(out.contains("status=\"other\"} 1"), "{out}");
    }

    #[test]
    fn routes_beyond_the_table_share_the_overflow_series() {
        let m = Metrics::default();
        for i in 0..MAX_ROUTES + 5 {
            m.record(&Method::GET, &format!("/r{i}"), StatusCode::OK, 0.001);
        }
        let mut out = String::new();
        m.render_requests(&mut out);
        assert!(out.contains("route=\"other\",status=\"200\"} 5"), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
