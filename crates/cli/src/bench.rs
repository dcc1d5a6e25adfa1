//! `phr bench`: drives a running server's real HTTP API with N concurrent clients and reports
//! throughput, latency percentiles, errors and the server's memory, ending with one JSON line
//! for scripts. Every figure the project claims comes from this command.
//!
//! Workloads:
//! - `ingest`: hourly-sync batch Bundles of seeded, realistic entries (conditional creates by
//!   identifier), one citizen per client;
//! - `read`: reads by id of resources the setup phase stored;
//! - `search`: the portal's timeline query (`Observation?patient=&code=&date=ge&date=lt&_sort=date&_count=100`);
//! - `mixed`: 10 % ingest, 30 % read, 60 % search.
//!
//! With authorization on (the server answers 401 without a token), tokens are minted from the
//! data folder's authorization database for generated sandbox citizens (`--data`). `--scale N`
//! first stores N Observations straight into the data folder's storage (index extraction as in
//! the server, validation skipped), so search can be measured at 1M and 10M; run it before
//! starting the server on that folder. With `--database` (and the servers' `--identity-key`)
//! tokens are minted from, and `--scale` loads into, that PostgreSQL database instead; the
//! scale manifest stays in `--data`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use phr_demo::people::{ALL_PHR_SCOPES, Persona};
use phr_demo::{Period, Rng, Timeline};
use serde::{Deserialize, Serialize};
use serde_json::Value;

const FHIR_JSON: &str = "application/fhir+json";
/// The application the bench's tokens are issued to.
const BENCH_APP: &str = "phr-bench";
/// The glucose code of the CGM stream, the portal's busiest chart.
const GLUCOSE: &str = "http://loinc.org|14745-4";
/// Manifest of a `--scale` load, in the data folder.
const SCALE_MANIFEST: &str = "bench-scale.json";
/// First generated-citizen number used by the bench (the demo's are separate).
const HETU_BASE: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    Ingest,
    Read,
    Search,
    Mixed,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The server: its root (`http://127.0.0.1:8080`) or FHIR base (`.../fhir/r4`). Without
    /// it, only `--scale` runs.
    #[arg(long)]
    url: Option<String>,
    #[arg(long, value_enum, default_value = "ingest")]
    workload: Workload,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds of measurement (after setup).
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// The server's data folder: tokens are minted from it when authorization is on, and
    /// `--scale` loads into it.
    #[arg(long, env = "PHR_DATA")]
    data: Option<PathBuf>,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Entries per ingest Bundle.
    #[arg(long, default_value_t = 300)]
    batch: usize,
    /// The server's process id, for its memory use (found by the port's owner otherwise).
    #[arg(long)]
    pid: Option<u32>,
    /// Store this many Observations directly into `--data` (or `--database`) first (the
    /// server must not be running on that folder).
    #[arg(long)]
    scale: Option<u64>,
    /// The servers' PostgreSQL database: tokens are minted from it and `--scale` loads into
    /// it (the scale manifest stays in `--data`).
    #[arg(long, env = "PHR_DATABASE")]
    database: Option<String>,
    /// The servers' identity key file (with `--database`).
    #[arg(long, env = "PHR_IDENTITY_KEY_FILE")]
    identity_key: Option<PathBuf>,
}

impl BenchArgs {
    /// The authorization state's place: the database, or the data folder.
    fn place(&self, data: &Path) -> Place {
        Place {
            data: data.to_path_buf(),
            database: self.database.clone(),
            identity_key: self.identity_key.clone(),
        }
    }
}

/// Where the servers keep their data.
#[derive(Debug, Clone)]
struct Place {
    data: PathBuf,
    database: Option<String>,
    identity_key: Option<PathBuf>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if let Some(n) = args.scale {
        let Some(data) = &args.data else {
            bail!("--scale needs --data FOLDER (the server's data folder)");
        };
        scale::load(&args.place(data), n, args.seed)?;
    }
    let Some(url) = args.url.clone() else {
        if args.scale.is_some() {
            return Ok(());
        }
        bail!("--url is needed (the server to drive)");
    };
    if args.clients == 0 || args.batch == 0 {
        bail!("--clients and --batch must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = runtime.block_on(drive(&args, &url))?;
    print_summary(&summary);
    Ok(())
}

/// The FHIR base for a root or base URL.
fn fhir_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/fhir/r4") {
        url.to_string()
    } else {
        format!("{url}/fhir/r4")
    }
}

/// One citizen a client acts for.
#[derive(Debug, Clone)]
struct Identity {
    patient: String,
    token: Option<String>,
}

/// Latencies (µs) and counts of one kind of request.
#[derive(Debug, Default, Clone)]
struct OpStats {
    latencies: Vec<u64>,
    errors: u64,
    /// Entries stored (ingest) or resources returned (search).
    items: u64,
    observations: u64,
}

impl OpStats {
    fn merge(&mut self, other: OpStats) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.items += other.items;
        self.observations += other.observations;
    }
}

#[derive(Debug, Serialize)]
struct LatencySummary {
    count: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    mean_ms: f64,
}

fn latency_summary(latencies: &mut [u64]) -> LatencySummary {
    latencies.sort_unstable();
    let pick = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    let mean = if latencies.is_empty() {
        0.0
    } else {
        latencies.iter().sum::<u64>() as f64 / latencies.len() as f64 / 1000.0
    };
    LatencySummary {
        count: latencies.len(),
        p50_ms: pick(0.50),
        p90_ms: pick(0.90),
        p99_ms: pick(0.99),
        max_ms: latencies.last().map(|&m| m as f64 / 1000.0).unwrap_or(0.0),
        mean_ms: mean,
    }
}

#[derive(Debug, Serialize)]
struct Summary {
    workload: Workload,
    clients: usize,
    duration_s: f64,
    seed: u64,
    batch: usize,
    authorization: bool,
    requests: u64,
    requests_per_s: f64,
    errors: u64,
    entries_per_s: f64,
    observations_per_s: f64,
    latency: LatencySummary,
    by_operation: HashMap<String, LatencySummary>,
    server_pid: Option<u32>,
    server_rss_mib: Option<f64>,
    server_rss_peak_mib: Option<f64>,
    client_cpu_s: Option<f64>,
}

fn print_summary(s: &Summary) {
    println!(
        "workload {:?}, {} clients, {:.1} s, seed {}{}",
        s.workload,
        s.clients,
        s.duration_s,
        s.seed,
        if s.authorization {
            ", with tokens"
        } else {
            ", open sandbox"
        }
    );
    println!(
        "requests {} ({:.1}/s), errors {}",
        s.requests, s.requests_per_s, s.errors
    );
    if let Some(first) = FIRST_ERROR.get() {
        println!("first error: {first}");
    }
    if s.entries_per_s > 0.0 {
        println!(
            "stored entries {:.0}/s, Observations {:.0}/s ({}-entry batch Bundles)",
            s.entries_per_s, s.observations_per_s, s.batch
        );
    }
    let l = &s.latency;
    println!(
        "latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
        l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms, l.mean_ms
    );
    let mut ops: Vec<_> = s.by_operation.iter().collect();
    ops.sort_by_key(|(k, _)| k.as_str());
    if ops.len() > 1 {
        for (op, l) in ops {
            println!(
                "  {op:<7} n={:<7} p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
                l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
            );
        }
    }
    match (s.server_pid, s.server_rss_mib, s.server_rss_peak_mib) {
        (Some(pid), Some(rss), Some(peak)) => {
            println!("server RSS {rss:.1} MiB at the end, peak {peak:.1} MiB (pid {pid})")
        }
        _ => println!("server RSS: unknown (not a local process; pass --pid)"),
    }
    if let Some(cpu) = s.client_cpu_s {
        println!("bench client CPU {cpu:.1} s (shares the machine with the server)");
    }
    println!(
        "{}",
        serde_json::to_string(s).unwrap_or_else(|_| "{}".into())
    );
}

/// State shared by the client tasks.
struct Shared {
    http: reqwest::Client,
    base: String,
    deadline: Instant,
    /// Ids of stored Observations per patient, for reads.
    ids: HashMap<String, Vec<String>>,
    /// Patients with data and the days it covers, for searches.
    search_targets: Vec<SearchTarget>,
    identities: Vec<Identity>,
    seed: u64,
    batch: usize,
    requests: AtomicU64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SearchTarget {
    patient: String,
    first_day: String,
    days: u32,
    /// Index into the bench's citizens when tokens are needed (`test_hetu(HETU_BASE + n)`).
    #[serde(default)]
    citizen: Option<u64>,
}

async fn drive(args: &BenchArgs, url: &str) -> anyhow::Result<Summary> {
    let base = fhir_base(url);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients * 2)
        .timeout(Duration::from_secs(120))
        .build()?;
    let root = base.trim_end_matches("/fhir/r4").to_string();
    let probe = http
        .get(format!("{base}/Patient/phr-bench-probe"))
        .send()
        .await
        .with_context(|| format!("cannot reach {base}"))?;
    let authorization = probe.status() == reqwest::StatusCode::UNAUTHORIZED;
    let minter = if authorization {
        let Some(data) = &args.data else {
            bail!(
                "the server wants tokens: pass --data FOLDER (the server's data folder) to mint them"
            );
        };
        let place = args.place(data);
        // The minter blocks on its database: not on an async worker.
        Some(tokio::task::block_in_place(|| Minter::open(&place, &root))?)
    } else {
        None
    };
    let server_pid = args.pid.or_else(|| pid_of_local_server(&base));

    // Citizens: one per client for ingest; setup data for read/search unless a scale
    // manifest names loaded ones.
    let manifest = args
        .data
        .as_deref()
        .and_then(|d| std::fs::read_to_string(d.join(SCALE_MANIFEST)).ok())
        .and_then(|t| serde_json::from_str::<ScaleManifest>(&t).ok());
    let run_key = Rng::derive(args.seed, &format!("run/{:?}", Instant::now())).uuid();
    let mut identities = Vec::new();
    for i in 0..args.clients {
        let number = HETU_BASE + (args.seed % 1000) * 1000 + i as u64;
        let identity = match &minter {
            Some(m) => tokio::task::block_in_place(|| m.identity(number))?,
            None => Identity {
                patient: Rng::derive(args.seed, &format!("bench-patient/{run_key}/{i}")).uuid(),
                token: None,
            },
        };
        ensure_patient(&http, &base, &identity).await?;
        identities.push(identity);
    }

    let mut ids: HashMap<String, Vec<String>> = HashMap::new();
    let mut search_targets = Vec::new();
    let needs_data = matches!(
        args.workload,
        Workload::Read | Workload::Search | Workload::Mixed
    );
    if needs_data {
        match &manifest {
            Some(m) if !m.targets.is_empty() => {
                eprintln!(
                    "bench: searching {} citizens of the --scale load ({} Observations)",
                    m.targets.len(),
                    m.observations
                );
                for t in &m.targets {
                    search_targets.push(t.clone());
                }
                ids = m.sample_ids.clone();
            }
            _ => {
                // Two weeks of data for up to four of the clients' citizens.
                let period = Period::last_days(14);
                for (i, identity) in identities.iter().take(4).enumerate() {
                    let stored = setup_data(&http, &base, args, identity, i, period).await?;
                    ids.insert(identity.patient.clone(), stored);
                    search_targets.push(SearchTarget {
                        patient: identity.patient.clone(),
                        first_day: phr_demo::time::fhir_date(period.first_day),
                        days: period.days,
                        citizen: None,
                    });
                }
            }
        }
    }
    // Tokens for the scale load's citizens.
    let mut identities_by_patient: HashMap<String, Identity> = identities
        .iter()
        .map(|i| (i.patient.clone(), i.clone()))
        .collect();
    if let Some(m) = &minter {
        for t in &search_targets {
            if let (Some(n), false) = (t.citizen, identities_by_patient.contains_key(&t.patient)) {
                // On PostgreSQL the minter blocks on its database: not on an async worker.
                let identity = tokio::task::block_in_place(|| m.identity(n))?;
                identities_by_patient.insert(identity.patient.clone(), identity);
            }
        }
    }
    let all_identities: Vec<Identity> = identities_by_patient.into_values().collect();

    let rss_peak = Arc::new(AtomicU64::new(0));
    let sampler = server_pid.map(|pid| {
        let peak = rss_peak.clone();
        tokio::spawn(async move {
            loop {
                if let Some(bytes) = phr_server::ops::resident_bytes_of(&pid.to_string()) {
                    peak.fetch_max(bytes, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    });
    let cpu_before = own_cpu_seconds();
    let started = Instant::now();
    let shared = Arc::new(Shared {
        http,
        base,
        deadline: started + Duration::from_secs(args.duration),
        ids,
        search_targets,
        identities: all_identities,
        seed: args.seed,
        batch: args.batch,
        requests: AtomicU64::new(0),
    });
    let mut tasks = Vec::new();
    for (i, identity) in identities.into_iter().enumerate() {
        let shared = shared.clone();
        let workload = args.workload;
        tasks.push(tokio::spawn(async move {
            client(shared, workload, i, identity).await
        }));
    }
    let mut by_op: HashMap<&'static str, OpStats> = HashMap::new();
    for task in tasks {
        for (op, stats) in task.await? {
            by_op.entry(op).or_default().merge(stats);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(s) = sampler {
        s.abort();
    }
    let rss_end = server_pid.and_then(|pid| phr_server::ops::resident_bytes_of(&pid.to_string()));
    if let Some(b) = rss_end {
        rss_peak.fetch_max(b, Ordering::Relaxed);
    }
    let mut all = OpStats::default();
    let mut by_operation = HashMap::new();
    for (op, mut stats) in by_op {
        by_operation.insert(op.to_string(), latency_summary(&mut stats.latencies));
        all.merge(stats);
    }
    let ingest_items = by_operation.get("ingest").map(|_| all.items).unwrap_or(0);
    let requests = all.latencies.len() as u64;
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    Ok(Summary {
        workload: args.workload,
        clients: args.clients,
        duration_s: elapsed,
        seed: args.seed,
        batch: args.batch,
        authorization,
        requests,
        requests_per_s: requests as f64 / elapsed,
        errors: all.errors,
        entries_per_s: ingest_items as f64 / elapsed,
        observations_per_s: all.observations as f64 / elapsed,
        latency: latency_summary(&mut all.latencies),
        by_operation,
        server_pid,
        server_rss_mib: rss_end.map(mib),
        server_rss_peak_mib: server_pid.map(|_| mib(rss_peak.load(Ordering::Relaxed))),
        client_cpu_s: match (cpu_before, own_cpu_seconds()) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
    })
}

fn authorized(request: reqwest::RequestBuilder, identity: &Identity) -> reqwest::RequestBuilder {
    match &identity.token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

async fn ensure_patient(
    http: &reqwest::Client,
    base: &str,
    identity: &Identity,
) -> anyhow::Result<()> {
    let id = &identity.patient;
    let body = crate::demo::pseudonym_patient(id);
    let response = authorized(http.put(format!("{base}/Patient/{id}")), identity)
        .header("Content-Type", FHIR_JSON)
        .header("Prefer", "return=minimal")
        .body(serde_json::to_vec(&body)?)
        .send()
        .await?;
    if !response.status().is_success() {
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        bail!("storing the bench citizen's Patient failed: {status} {text}");
    }
    Ok(())
}

/// Stores `period` of diabetic data for `identity` through the API; returns the ids of the
/// Observations created.
async fn setup_data(
    http: &reqwest::Client,
    base: &str,
    args: &BenchArgs,
    identity: &Identity,
    index: usize,
    period: Period,
) -> anyhow::Result<Vec<String>> {
    let timeline = Timeline::new(
        args.seed,
        &format!("setup/{}/{index}", identity.patient),
        Persona::Diabetic,
        phr_catalog::Lang::Fi,
        &identity.patient,
        period,
    );
    let mut ids = Vec::new();
    let resources: Vec<Value> = timeline
        .map(|g| without_creating_application(g.resource))
        .collect();
    for chunk in resources.chunks(300) {
        let bundle = phr_demo::bundle::sync_batch(chunk.iter().cloned());
        let response = authorized(http.post(base), identity)
            .header("Content-Type", FHIR_JSON)
            .header("Prefer", "return=minimal")
            .body(serde_json::to_vec(&bundle)?)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("setup batch failed: {status} {body}");
        }
        for entry in body["entry"].as_array().into_iter().flatten() {
            // `Observation/<id>/_history/<n>`, relative or absolute; 200 (already stored)
            // and 201 alike.
            let location = entry["response"]["location"].as_str().unwrap_or("");
            match location.split_once("Observation/") {
                Some((_, rest)) => ids.extend(rest.split('/').next().map(str::to_string)),
                None if !entry["response"]["status"]
                    .as_str()
                    .is_some_and(|s| s.starts_with('2')) =>
                {
                    bail!("setup entry failed: {}", entry["response"]);
                }
                None => {}
            }
        }
    }
    eprintln!(
        "bench: setup stored {} days of data for citizen {} ({} Observations)",
        period.days,
        index + 1,
        ids.len()
    );
    Ok(ids)
}

/// One client's loop until the deadline; returns stats per operation.
async fn client(
    shared: Arc<Shared>,
    workload: Workload,
    index: usize,
    identity: Identity,
) -> Vec<(&'static str, OpStats)> {
    let mut rng = Rng::derive(shared.seed, &format!("client/{index}"));
    let mut ingest = OpStats::default();
    let mut read = OpStats::default();
    let mut search = OpStats::default();
    // The ingest stream: a year of this citizen's data from the past, synced in batches.
    let mut timeline = Timeline::new(
        shared.seed,
        &format!("ingest/{}", identity.patient),
        Persona::Diabetic,
        phr_catalog::Lang::Fi,
        &identity.patient,
        Period::last_days(3650),
    );
    while Instant::now() < shared.deadline {
        let op = match workload {
            Workload::Ingest => 0,
            Workload::Read => 1,
            Workload::Search => 2,
            Workload::Mixed => match rng.int(0, 9) {
                0 => 0,
                1..=3 => 1,
                _ => 2,
            },
        };
        match op {
            0 => ingest_once(&shared, &identity, &mut timeline, &mut ingest).await,
            1 => read_once(&shared, &mut rng, &mut read).await,
            _ => search_once(&shared, &mut rng, &mut search).await,
        }
        shared.requests.fetch_add(1, Ordering::Relaxed);
    }
    let mut out = Vec::new();
    for (name, stats) in [("ingest", ingest), ("read", read), ("search", search)] {
        if !stats.latencies.is_empty() || stats.errors > 0 {
            out.push((name, stats));
        }
    }
    out
}

async fn ingest_once(
    shared: &Shared,
    identity: &Identity,
    timeline: &mut Timeline,
    stats: &mut OpStats,
) {
    // Making a Bundle takes milliseconds of CPU: off this async worker, so the other
    // clients' requests on it are not timed while it waits (in the mixed workload that had
    // the reads' p99 measured several times what the server took).
    let Some((observations_sent, body)) =
        tokio::task::block_in_place(|| bundle_to_send(timeline, shared.batch))
    else {
        stats.errors += 1;
        return;
    };
    let started = Instant::now();
    let response = authorized(shared.http.post(&shared.base), identity)
        .header("Content-Type", FHIR_JSON)
        .header("Prefer", "return=minimal")
        .body(body)
        .send()
        .await;
    let result = match response {
        Ok(r) if r.status().is_success() => r.json::<BatchResponse>().await.ok(),
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            note_first_error(|| format!("HTTP {status}: {text}"));
            None
        }
        Err(e) => {
            note_first_error(|| format!("request failed: {e}"));
            None
        }
    };
    stats.latencies.push(started.elapsed().as_micros() as u64);
    let Some(bundle) = result else {
        stats.errors += 1;
        return;
    };
    for (entry, is_observation) in bundle.entry.iter().zip(observations_sent) {
        let status = entry.response.status.as_str();
        if status.starts_with("201") || status.starts_with("200") {
            stats.items += 1;
            if is_observation {
                stats.observations += 1;
            }
        } else {
            stats.errors += 1;
            note_first_error(|| {
                let outcome = entry.response.outcome.as_ref().unwrap_or(&Value::Null);
                format!("entry {status}: {outcome}")
            });
        }
    }
}

/// The next `batch` resources of `timeline` as a batch Bundle's bytes, and which of them
/// are Observations; `None` when the timeline has run out or the Bundle cannot be encoded.
fn bundle_to_send(timeline: &mut Timeline, batch: usize) -> Option<(Vec<bool>, Vec<u8>)> {
    // An app leaves `creatingApplication` to the server, which fills it from the token; the
    // demo's resources name the demo's apps, which the bench's token is not.
    let resources: Vec<Value> = timeline
        .by_ref()
        .take(batch)
        .map(|g| without_creating_application(g.resource))
        .collect();
    if resources.is_empty() {
        return None;
    }
    let observations_sent = resources
        .iter()
        .map(|r| r["resourceType"] == "Observation")
        .collect();
    let body = serde_json::to_vec(&phr_demo::bundle::sync_batch(resources)).ok()?;
    Some((observations_sent, body))
}

// The bench client shares the machine's cores with the server it measures, so it reads from
// each answer only what it counts, without building a JSON tree of the whole Bundle.

/// A batch-response Bundle: each entry's status, and its outcome when one came back.
#[derive(Deserialize)]
struct BatchResponse {
    #[serde(default)]
    entry: Vec<BatchEntry>,
}

#[derive(Deserialize)]
struct BatchEntry {
    #[serde(default)]
    response: EntryResponse,
}

#[derive(Deserialize, Default)]
struct EntryResponse {
    #[serde(default)]
    status: String,
    outcome: Option<Value>,
}

/// A searchset page: only how many entries it holds.
#[derive(Deserialize)]
struct SearchPage {
    #[serde(default)]
    entry: Vec<serde::de::IgnoredAny>,
}

fn without_creating_application(mut resource: Value) -> Value {
    if let Some(extensions) = resource["extension"].as_array_mut() {
        extensions.retain(|e| e["url"] != phr_catalog::urls::EXT_CREATING_APPLICATION);
        if extensions.is_empty()
            && let Some(object) = resource.as_object_mut()
        {
            object.remove("extension");
        }
    }
    resource
}

/// The first failure of the run, printed with the summary so an error count has a reason.
static FIRST_ERROR: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn note_first_error(describe: impl FnOnce() -> String) {
    if FIRST_ERROR.get().is_none() {
        let _ = FIRST_ERROR.set(describe());
    }
}

fn identity_for<'a>(shared: &'a Shared, patient: &str) -> Option<&'a Identity> {
    shared.identities.iter().find(|i| i.patient == patient)
}

async fn read_once(shared: &Shared, rng: &mut Rng, stats: &mut OpStats) {
    let patients: Vec<&String> = shared.ids.keys().collect();
    if patients.is_empty() {
        stats.errors += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
        return;
    }
    let patient = *rng.pick(&patients);
    let ids = &shared.ids[patient];
    if ids.is_empty() {
        stats.errors += 1;
        note_first_error(|| "no stored Observation ids to read".to_string());
        tokio::time::sleep(Duration::from_millis(10)).await;
        return;
    }
    let id = rng.pick(ids);
    let open = Identity {
        patient: patient.clone(),
        token: None,
    };
    let identity = identity_for(shared, patient).unwrap_or(&open);
    let started = Instant::now();
    let response = authorized(
        shared.http.get(format!("{}/Observation/{id}", shared.base)),
        identity,
    )
    .send()
    .await;
    let ok = match response {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            note_first_error(|| format!("HTTP {status}: {text}"));
            false
        }
        Err(e) => {
            note_first_error(|| format!("request failed: {e}"));
            false
        }
    };
    stats.latencies.push(started.elapsed().as_micros() as u64);
    if ok {
        stats.items += 1;
    } else {
        stats.errors += 1;
    }
}

/// The portal's timeline query: one code over one day (glucose) or one month (the rest).
async fn search_once(shared: &Shared, rng: &mut Rng, stats: &mut OpStats) {
    if shared.search_targets.is_empty() {
        stats.errors += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
        return;
    }
    let target = rng.pick(&shared.search_targets);
    let Ok(first) = time::Date::parse(
        &target.first_day,
        &time::format_description::well_known::Iso8601::DATE,
    ) else {
        stats.errors += 1;
        return;
    };
    let (code, span) = match rng.int(0, 9) {
        0..=5 => (GLUCOSE, 1),
        6..=7 => ("http://loinc.org|85354-9", 30),
        8 => ("http://loinc.org|29463-7", 90),
        _ => ("http://loinc.org|66334-4", 30),
    };
    let start_day = first
        + time::Duration::days(rng.int(0, i64::from(target.days.saturating_sub(span as u32))));
    let end_day = start_day + time::Duration::days(span);
    let url = format!(
        "{}/Observation?patient={}&code={}&date=ge{}&date=lt{}&_sort=date&_count=100",
        shared.base,
        target.patient,
        code.replace('|', "%7C"),
        phr_demo::time::fhir_date(start_day),
        phr_demo::time::fhir_date(end_day),
    );
    let open = Identity {
        patient: target.patient.clone(),
        token: None,
    };
    let identity = identity_for(shared, &target.patient).unwrap_or(&open);
    let started = Instant::now();
    let response = authorized(shared.http.get(url), identity).send().await;
    let result = match response {
        Ok(r) if r.status().is_success() => r.json::<SearchPage>().await.ok(),
        Ok(r) => {
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            note_first_error(|| format!("HTTP {status}: {text}"));
            None
        }
        Err(e) => {
            note_first_error(|| format!("request failed: {e}"));
            None
        }
    };
    stats.latencies.push(started.elapsed().as_micros() as u64);
    match result {
        Some(page) => stats.items += page.entry.len() as u64,
        None => stats.errors += 1,
    }
}

/// Mints tokens for generated sandbox citizens from the server's authorization database.
struct Minter {
    auth: phr_auth::AuthService,
}

impl Minter {
    fn open(place: &Place, root: &str) -> anyhow::Result<Minter> {
        let mut config = phr_server::Config {
            data: place.data.clone(),
            database: place.database.clone(),
            public_url: Some(root.to_string()),
            ..phr_server::Config::default()
        };
        config.auth.identity_key_file = place.identity_key.clone();
        let auth = phr_server::open_auth(&mut config, Arc::new(phr_auth::SystemClock), false)
            .map_err(|e| anyhow::anyhow!("cannot open the authorization state: {e}"))?;
        if auth
            .app(BENCH_APP)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .is_none()
        {
            auth.register_app(
                phr_auth::NewApp {
                    app_id: Some(BENCH_APP.into()),
                    name: "PHR bench".into(),
                    kind: phr_auth::AppKind::Wellbeing,
                    client_type: phr_auth::ClientType::Public,
                    redirect_uris: vec!["http://127.0.0.1:9/bench".into()],
                    scope: ALL_PHR_SCOPES.into(),
                    contact: None,
                    jwks: None,
                    jwks_uri: None,
                    org: None,
                    certificate_oid: None,
                    supplier: None,
                    platform: None,
                    fhir_versions: None,
                },
                phr_auth::AppStatus::Accepted,
            )
            .map_err(|e| anyhow::anyhow!("cannot register the bench application: {e}"))?;
        }
        Ok(Minter { auth })
    }

    fn identity(&self, number: u64) -> anyhow::Result<Identity> {
        let hetu = phr_demo::test_hetu(number);
        let issued = self
            .auth
            .issue_token_for_cli(&hetu, BENCH_APP, ALL_PHR_SCOPES)
            .map_err(|e| anyhow::anyhow!("cannot mint a bench token: {e}"))?;
        Ok(Identity {
            patient: issued.patient_id,
            token: Some(issued.token.access_token),
        })
    }

    fn patient(&self, number: u64) -> anyhow::Result<String> {
        Ok(self.identity(number)?.patient)
    }
}

/// CPU seconds (user + system) this process used, from `/proc/self/stat`.
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The process listening on the URL's port, when the URL is on this machine.
fn pid_of_local_server(base: &str) -> Option<u32> {
    let url = url::Url::parse(base).ok()?;
    let host = url.host_str()?;
    if !(host == "localhost" || host.starts_with("127.") || host == "[::1]") {
        return None;
    }
    let port = url.port_or_known_default()?;
    let inode = listening_inode(port)?;
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target) {
                return Some(pid);
            }
        }
    }
    None
}

/// The socket inode listening on `port` (from `/proc/net/tcp` and `tcp6`).
fn listening_inode(port: u16) -> Option<String> {
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEX_IP:HEX_PORT; state 0A is LISTEN.
            if f.len() > 9
                && f[3] == "0A"
                && f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
            {
                return Some(f[9].to_string());
            }
        }
    }
    None
}

/// What a `--scale` load stored, for later search runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ScaleManifest {
    seed: u64,
    observations: u64,
    targets: Vec<SearchTarget>,
    /// A sample of Observation ids per patient, for reads.
    sample_ids: HashMap<String, Vec<String>>,
}

mod scale {
    //! `--scale N`: N Observations straight into storage, with the server's index extraction
    //! and compartment rules but without validation (the data is generated valid; the
    //! generator's own test proves it), in large write batches.

    use super::*;
    use phr_store::{Atomicity, NewVersion, Storage, WriteOp};

    /// Resources per storage write.
    const WRITE_BATCH: usize = 5000;
    /// Citizen personas in the load: one CGM user in ten.
    const MIX: [Persona; 10] = [
        Persona::Diabetic,
        Persona::Hypertensive,
        Persona::Active,
        Persona::Hypertensive,
        Persona::Active,
        Persona::Hypertensive,
        Persona::Active,
        Persona::Hypertensive,
        Persona::Active,
        Persona::Active,
    ];

    pub fn load(place: &Place, target: u64, seed: u64) -> anyhow::Result<()> {
        let data = place.data.as_path();
        std::fs::create_dir_all(data)?;
        let store: Box<dyn Storage> = match &place.database {
            Some(url) => Box::new(
                phr_store::postgres::PostgresStore::open(url)
                    .with_context(|| format!("cannot open {}", crate::serve::redact(url)))?,
            ),
            None => Box::new(
                phr_store::sqlite::SqliteStore::open(&data.join("phr.db"))
                    .with_context(|| format!("cannot open the database in {}", data.display()))?,
            ),
        };
        // The scale load only takes citizens into use (their Patient ids); the issuer does not
        // matter here, but the server's own is the honest one.
        let issuer = phr_server::config::recorded_public_url(data)
            .unwrap_or_else(|| phr_server::Config::default().base_url());
        // Citizens are always taken into use (the authorization state is created if this is
        // a fresh folder), so a server with authorization on can be benched on the load: a
        // load of bare Patients had no citizen to mint a token for, and every read was a 401.
        let minter = Minter::open(place, &issuer)?;
        let registry = phr_search::Registry::global();
        let period = Period::last_days(365);
        let started = Instant::now();
        let mut progress = phr_demo::Progress::new("scale load", target);
        let mut observations = 0u64;
        let mut targets = Vec::new();
        let mut sample_ids: HashMap<String, Vec<String>> = HashMap::new();
        let mut ops: Vec<WriteOp> = Vec::with_capacity(WRITE_BATCH);
        let mut citizen = 0u64;
        let mut id_rng = Rng::derive(seed, "scale-ids");
        let now = phr_service::time::now_micros();
        while observations < target {
            let number = HETU_BASE + 500_000 + citizen;
            let patient = minter.patient(number)?;
            let persona = MIX[(citizen % MIX.len() as u64) as usize];
            ops.push(prepare(
                registry,
                crate::demo::pseudonym_patient(&patient),
                &patient,
                now,
            )?);
            targets.push(SearchTarget {
                patient: patient.clone(),
                first_day: phr_demo::time::fhir_date(period.first_day),
                days: period.days,
                citizen: Some(number),
            });
            let timeline = Timeline::new(
                seed,
                &format!("scale/{citizen}"),
                persona,
                phr_catalog::Lang::Fi,
                &patient,
                period,
            );
            for generated in timeline {
                if observations >= target {
                    break;
                }
                let id = id_rng.uuid();
                let is_observation = generated.resource["resourceType"] == "Observation";
                let op = prepare(registry, generated.resource, &id, now)?;
                if is_observation {
                    observations += 1;
                    progress.add(1);
                    let sample = sample_ids.entry(patient.clone()).or_default();
                    if sample.len() < 200 && id_rng.chance(0.01) {
                        sample.push(id);
                    }
                }
                ops.push(op);
                if ops.len() >= WRITE_BATCH {
                    write(store.as_ref(), std::mem::take(&mut ops))?;
                }
            }
            citizen += 1;
        }
        write(store.as_ref(), ops)?;
        progress.finish();
        drop(store);
        let manifest = ScaleManifest {
            seed,
            observations,
            targets,
            sample_ids,
        };
        std::fs::write(
            data.join(SCALE_MANIFEST),
            serde_json::to_vec_pretty(&manifest)?,
        )?;
        eprintln!(
            "scale load: {observations} Observations for {citizen} citizens in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// The version to store: id and meta stamped, index entries extracted, compartment set.
    fn prepare(
        registry: &phr_search::Registry,
        resource: Value,
        id: &str,
        now: i64,
    ) -> anyhow::Result<WriteOp> {
        let resource_type = resource["resourceType"].as_str().unwrap_or("").to_string();
        let Value::Object(object) = resource else {
            bail!("a generated resource is not an object");
        };
        let stamped = Value::Object(
            phr_service::resource::stamp(object, id, 1, now)
                .map_err(|e| anyhow::anyhow!("a generated resource: {e}"))?,
        );
        let index = registry
            .extract(&stamped)
            .map_err(|e| anyhow::anyhow!("index extraction: {e}"))?;
        let patient = registry.patient_compartment(&stamped, &index);
        let new = NewVersion {
            resource_type: resource_type.clone(),
            id: id.to_string(),
            version: 1,
            last_updated: now,
            body: serde_json::to_vec(&stamped)?,
            patient,
            app: Some(phr_demo::DEMO_APP.id.to_string()),
            index,
        };
        Ok(if resource_type == "Patient" {
            WriteOp::Update {
                new,
                create_if_missing: true,
            }
        } else {
            WriteOp::Create {
                new,
                if_none_exist: None,
            }
        })
    }

    fn write(store: &dyn Storage, ops: Vec<WriteOp>) -> anyhow::Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let results = store.write(ops, Atomicity::Independent)?;
        if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
            bail!("storage refused a generated resource: {e}");
        }
        Ok(())
    }
}
