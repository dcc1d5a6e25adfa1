//! Storage benchmark (fixed seed): ingest rate of prepared 300-Observation batches from 1, 4
//! and 16 threads, then the portal timeline query and its `_summary=count` at N stored
//! Observations for many citizens (CGM glucose every 5 minutes for some, daily steps,
//! weekly weight, blood pressure twice a day). Prints p50/p99 and one JSON summary line.
//!
//! `store-bench --observations 1000000 [--dir /tmp/phr-store-bench] [--queries 2000]
//!  [--ingest-observations 120000] [--skip-ingest] [--reuse] [--cache-mib 256]
//!  [--postgres URL [--partitions 16]]`
//!
//! `store-bench --shapes [--queries 20] [--reuse] [--only TEXT]`: instead, one diabetic citizen's year
//! (CGM glucose every 5 minutes, daily steps, weekly weight, blood pressure twice a day:
//! about 106,000 Observations) and the query shapes that have no dedicated index: `_sort`
//! on every parameter the Observations carry, in both directions, first and third pages,
//! and an OR of 2 to 10 codes over a month and the year; then the aggregates a chart reads
//! (`Storage::aggregate`: a year or a month of glucose in 400 intervals or one, the year's
//! systolic blood pressure from its component). Prints p50/p99 per shape.
//!
//! With `--postgres URL` (a database the user may create databases from) the same load and
//! queries run on the PostgreSQL engine, each phase in a database of its own
//! (`phr_bench_ingest_N`, `phr_bench_query_N`, dropped and created anew unless reused).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use phr_search::{
    Clause, IndexEntry, IndexValue, Prefix, QueryValue, SortKey, Summary, TokenSystem,
};
use phr_store::postgres::{Layout, PostgresConfig, PostgresStore};
use phr_store::sqlite::{SqliteStore, StoreConfig};
use phr_store::{Atomicity, NewVersion, SearchQuery, Storage, WriteOp};

const SEED: u64 = 0x5eed_0f9e_4a11;
const DAYS: i64 = 90;
const BATCH: usize = 300;
const MINUTE: i64 = 60_000_000;
const DAY: i64 = 1440 * MINUTE;
/// 2024-01-01T00:00:00Z
const START: i64 = 1_704_067_200_000_000;
const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Glucose,
    Steps,
    Weight,
    BloodPressure,
}

impl Kind {
    fn code(self) -> (&'static str, &'static str) {
        match self {
            Kind::Glucose => ("15074-8", "Glucose"),
            Kind::Steps => ("55423-8", "Number of steps"),
            Kind::Weight => ("29463-7", "Body weight"),
            Kind::BloodPressure => ("85354-9", "Blood pressure panel"),
        }
    }
}

/// What one citizen measures: decided by the seed.
struct Citizen {
    id: String,
    kinds: Vec<Kind>,
}

fn citizen(n: usize) -> Citizen {
    let mut rng = Rng(SEED ^ (n as u64).wrapping_mul(0x1000_0001));
    let mut kinds = vec![Kind::Steps];
    if rng.below(10) == 0 {
        kinds.push(Kind::Glucose);
    }
    if rng.below(2) == 0 {
        kinds.push(Kind::Weight);
    }
    if rng.below(10) < 3 {
        kinds.push(Kind::BloodPressure);
    }
    Citizen {
        id: format!("{:08x}-0000-4000-8000-{:012x}", n, n as u64 * 7919),
        kinds,
    }
}

/// Instants of one kind of measurement for a citizen over the period.
fn times(kind: Kind) -> Vec<i64> {
    times_over(kind, DAYS)
}

fn times_over(kind: Kind, days: i64) -> Vec<i64> {
    let step = match kind {
        Kind::Glucose => 5 * MINUTE,
        Kind::Steps => DAY,
        Kind::Weight => 7 * DAY,
        Kind::BloodPressure => DAY / 2,
    };
    (0..days * DAY / step)
        .map(|i| START + i * step + 7 * MINUTE)
        .collect()
}

fn per_citizen() -> f64 {
    // Expected observations per citizen with the probabilities in `citizen`.
    let n = |k| times(k).len() as f64;
    n(Kind::Steps) + 0.1 * n(Kind::Glucose) + 0.5 * n(Kind::Weight) + 0.3 * n(Kind::BloodPressure)
}

fn token(param: &str, system: &str, code: &str, text: Option<&str>) -> IndexEntry {
    IndexEntry {
        param: param.into(),
        value: IndexValue::Token {
            system: Some(system.into()),
            code: Some(code.into()),
            text: text.map(Into::into),
        },
    }
}

fn quantity(value: f64, unit: &str) -> IndexValue {
    IndexValue::Quantity {
        value,
        low: value - 0.05,
        high: value + 0.05,
        system: Some(UCUM.into()),
        code: Some(unit.into()),
        unit: Some(unit.into()),
    }
}

/// A Kanta-like Observation with its ~15 index entries.
fn observation(citizen: &Citizen, kind: Kind, at: i64, serial: u64, rng: &mut Rng) -> NewVersion {
    let (code, display) = kind.code();
    let id = format!("{:016x}{:016x}", serial, rng.next());
    let patient = &citizen.id;
    let reference = |param: &str| IndexEntry {
        param: param.into(),
        value: IndexValue::Reference {
            target_type: Some("Patient".into()),
            id: patient.clone(),
            version: None,
            url: None,
        },
    };
    let mut index = vec![
        token("code", LOINC, code, Some(display)),
        token("combo-code", LOINC, code, Some(display)),
        token(
            "category",
            "http://terminology.hl7.org/CodeSystem/observation-category",
            "vital-signs",
            Some("Vital Signs"),
        ),
        token(
            "status",
            "http://hl7.org/fhir/observation-status",
            "final",
            None,
        ),
        token(
            "identifier",
            "urn:ietf:rfc:3986",
            &format!("urn:uuid:{id}"),
            None,
        ),
        reference("subject"),
        reference("patient"),
        reference("performer"),
        IndexEntry {
            param: "date".into(),
            value: IndexValue::Date {
                low: at,
                high: at + 999_999,
            },
        },
        IndexEntry {
            param: "_profile".into(),
            value: IndexValue::Uri(
                "http://phr.kanta.fi/StructureDefinition/fiphr-sd-vitalsigns".into(),
            ),
        },
    ];
    let (value, unit, value_json) = match kind {
        Kind::Glucose => {
            let v = ((4.0 + rng.unit() * 6.0) * 10.0).round() / 10.0;
            (
                Some(v),
                "mmol/L",
                format!(
                    r#""valueQuantity":{{"value":{v},"unit":"mmol/l","system":"{UCUM}","code":"mmol/L"}}"#
                ),
            )
        }
        Kind::Steps => {
            let v = (2000.0 + rng.unit() * 12000.0).round();
            (
                Some(v),
                "/d",
                format!(
                    r#""valueQuantity":{{"value":{v},"unit":"steps/day","system":"{UCUM}","code":"/d"}}"#
                ),
            )
        }
        Kind::Weight => {
            let v = ((60.0 + rng.unit() * 40.0) * 10.0).round() / 10.0;
            (
                Some(v),
                "kg",
                format!(
                    r#""valueQuantity":{{"value":{v},"unit":"kg","system":"{UCUM}","code":"kg"}}"#
                ),
            )
        }
        Kind::BloodPressure => (None, "mm[Hg]", String::new()),
    };
    match value {
        Some(v) => {
            index.push(IndexEntry {
                param: "value-quantity".into(),
                value: quantity(v, unit),
            });
            index.push(IndexEntry {
                param: "combo-value-quantity".into(),
                value: quantity(v, unit),
            });
            for param in ["code-value-quantity", "combo-code-value-quantity"] {
                index.push(IndexEntry {
                    param: param.into(),
                    value: IndexValue::Composite(vec![
                        IndexValue::Token {
                            system: Some(LOINC.into()),
                            code: Some(code.into()),
                            text: None,
                        },
                        quantity(v, unit),
                    ]),
                });
            }
        }
        None => {
            let systolic = (110.0 + rng.unit() * 40.0).round();
            let diastolic = (70.0 + rng.unit() * 25.0).round();
            for (c, v) in [("8480-6", systolic), ("8462-4", diastolic)] {
                index.push(token("component-code", LOINC, c, None));
                index.push(IndexEntry {
                    param: "component-value-quantity".into(),
                    value: quantity(v, unit),
                });
                index.push(IndexEntry {
                    param: "component-code-value-quantity".into(),
                    value: IndexValue::Composite(vec![
                        IndexValue::Token {
                            system: Some(LOINC.into()),
                            code: Some(c.into()),
                            text: None,
                        },
                        quantity(v, unit),
                    ]),
                });
            }
        }
    }
    let body = format!(
        r#"{{"resourceType":"Observation","id":"{id}","meta":{{"versionId":"1","lastUpdated":"2024-01-01T00:00:00Z","profile":["http://phr.kanta.fi/StructureDefinition/fiphr-sd-vitalsigns"]}},"extension":[{{"url":"http://phr.kanta.fi/StructureDefinition/fiphr-ext-creatingapplication","extension":[{{"url":"name","valueString":"Bench App"}},{{"url":"version","valueString":"1.0"}}]}}],"identifier":[{{"system":"urn:ietf:rfc:3986","value":"urn:uuid:{id}"}}],"status":"final","category":[{{"coding":[{{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs","display":"Vital Signs"}}]}}],"code":{{"coding":[{{"system":"{LOINC}","code":"{code}","display":"{display}"}}]}},"subject":{{"reference":"Patient/{patient}"}},"effectiveDateTime":"{at}","performer":[{{"reference":"Patient/{patient}"}}],{value_json}}}"#
    );
    NewVersion {
        resource_type: "Observation".into(),
        id,
        version: 1,
        last_updated: at + 60_000_000,
        body: body.into_bytes(),
        patient: Some(patient.clone()),
        app: Some("bench-app".into()),
        index,
    }
}

/// One citizen's observations in time order, in batches of 300.
fn citizen_batches(n: usize) -> Vec<Vec<NewVersion>> {
    let c = citizen(n);
    let mut rng = Rng(SEED.wrapping_add(n as u64));
    let mut all: Vec<(i64, Kind)> = c
        .kinds
        .iter()
        .flat_map(|&k| times(k).into_iter().map(move |t| (t, k)))
        .collect();
    all.sort_by_key(|(t, _)| *t);
    let mut serial = (n as u64) << 32;
    let versions: Vec<NewVersion> = all
        .into_iter()
        .map(|(t, k)| {
            serial += 1;
            observation(&c, k, t, serial, &mut rng)
        })
        .collect();
    versions.chunks(BATCH).map(|c| c.to_vec()).collect()
}

/// Round-robin over the citizens' batch lists: first batches of all, then second...
fn interleave(citizens: Vec<Vec<Vec<NewVersion>>>) -> Vec<Vec<NewVersion>> {
    let mut lists: Vec<std::vec::IntoIter<Vec<NewVersion>>> =
        citizens.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::new();
    loop {
        let before = out.len();
        for list in &mut lists {
            out.extend(list.next());
        }
        if out.len() == before {
            return out;
        }
    }
}

fn write_batches(store: &dyn Storage, batches: &[Vec<NewVersion>], threads: usize) -> f64 {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(i) else { break };
                    let ops = batch
                        .iter()
                        .map(|v| WriteOp::Create {
                            new: v.clone(),
                            if_none_exist: None,
                        })
                        .collect();
                    let results = store.write(ops, Atomicity::AllOrNothing).expect("writes");
                    assert!(
                        results.iter().all(|r| r.is_ok()),
                        "rejected: {:?}",
                        results.iter().find(|r| r.is_err())
                    );
                }
            });
        }
    });
    started.elapsed().as_secs_f64()
}

struct Args {
    observations: usize,
    dir: PathBuf,
    queries: usize,
    ingest: usize,
    skip_ingest: bool,
    reuse: bool,
    cache_mib: i64,
    postgres: Option<String>,
    partitions: u32,
    shapes: bool,
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        observations: 1_000_000,
        dir: std::env::temp_dir().join("phr-store-bench"),
        queries: 2000,
        ingest: 120_000,
        skip_ingest: false,
        reuse: false,
        cache_mib: 256,
        postgres: None,
        partitions: 16,
        shapes: false,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--observations" => a.observations = value().parse().expect("a number"),
            "--dir" => a.dir = PathBuf::from(value()),
            "--queries" => a.queries = value().parse().expect("a number"),
            "--ingest-observations" => a.ingest = value().parse().expect("a number"),
            "--cache-mib" => a.cache_mib = value().parse().expect("a number"),
            "--skip-ingest" => a.skip_ingest = true,
            "--reuse" => a.reuse = true,
            "--shapes" => a.shapes = true,
            "--only" => a.only = Some(value()),
            "--postgres" => a.postgres = Some(value()),
            "--partitions" => a.partitions = value().parse().expect("a number"),
            other => panic!("unknown option {other}"),
        }
    }
    a
}

/// This thread's time on a CPU and waiting in the run queue, in ms (Linux schedstat), so
/// query cost can be told apart from waiting for a core on a busy machine.
fn thread_times() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0) / 1e6);
    (it.next().unwrap_or(0.0), it.next().unwrap_or(0.0))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn fresh_store(dir: &std::path::Path, cache_mib: i64) -> SqliteStore {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("bench dir");
    SqliteStore::open_with(
        &dir.join("phr.db"),
        StoreConfig {
            writer_cache_mib: cache_mib,
            ..StoreConfig::default()
        },
    )
    .expect("opens")
}

/// Where a phase's data goes: a folder (SQLite) or a database (PostgreSQL).
enum Engine {
    Sqlite { cache_mib: i64 },
    Postgres { url: String, partitions: u32 },
}

impl Engine {
    fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite { .. } => "sqlite",
            Engine::Postgres { .. } => "postgres",
        }
    }

    /// The URL of database `name` next to the one given.
    fn database_url(url: &str, name: &str) -> String {
        let (base, query) = match url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}")),
            None => (url, String::new()),
        };
        let cut = base
            .rfind('/')
            .filter(|&i| i > base.find("//").map_or(0, |j| j + 1));
        format!("{}/{name}{query}", &base[..cut.unwrap_or(base.len())])
    }

    fn admin(url: &str) -> postgres::Client {
        postgres::Client::connect(url, postgres::NoTls).expect("connects to PostgreSQL")
    }

    /// A new, empty store for phase `name`.
    fn fresh(&self, dir: &std::path::Path, name: &str) -> Box<dyn Storage> {
        match self {
            Engine::Sqlite { cache_mib } => Box::new(fresh_store(&dir.join(name), *cache_mib)),
            Engine::Postgres { url, partitions } => {
                let db = format!("phr_bench_{}", name.replace('-', "_"));
                let mut admin = Engine::admin(url);
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
                    .expect("drops");
                admin
                    .batch_execute(&format!("CREATE DATABASE {db}"))
                    .expect("creates");
                Box::new(self.open_pg(&Engine::database_url(url, &db), *partitions))
            }
        }
    }

    fn open_pg(&self, url: &str, partitions: u32) -> PostgresStore {
        PostgresStore::open_with(PostgresConfig {
            layout: Layout::Partitioned { partitions },
            pool_size: 24,
            ..PostgresConfig::new(url)
        })
        .expect("opens")
    }

    /// The store of phase `name` if it was loaded before.
    fn existing(&self, dir: &std::path::Path, name: &str) -> Option<Box<dyn Storage>> {
        match self {
            Engine::Sqlite { .. } => {
                let path = dir.join(name).join("phr.db");
                path.exists()
                    .then(|| Box::new(SqliteStore::open(&path).expect("opens")) as Box<dyn Storage>)
            }
            Engine::Postgres { url, partitions } => {
                let db = format!("phr_bench_{}", name.replace('-', "_"));
                let exists = Engine::admin(url)
                    .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
                    .expect("queries")
                    .is_some();
                exists.then(|| {
                    Box::new(self.open_pg(&Engine::database_url(url, &db), *partitions))
                        as Box<dyn Storage>
                })
            }
        }
    }

    /// (stored resources, citizens, bytes on disk) of phase `name`.
    fn measure(&self, dir: &std::path::Path, name: &str) -> (i64, Option<usize>, u64) {
        match self {
            Engine::Sqlite { .. } => {
                let path = dir.join(name).join("phr.db");
                let conn = rusqlite::Connection::open(&path).expect("opens");
                let stored: i64 = conn
                    .query_row("SELECT count(*) FROM resources", [], |r| r.get(0))
                    .expect("counts");
                let citizens: Option<i64> = conn
                    .query_row("SELECT count(*) FROM patients", [], |r| r.get(0))
                    .ok();
                (
                    stored,
                    citizens.and_then(|n| usize::try_from(n).ok()),
                    dir_size(&dir.join(name)),
                )
            }
            Engine::Postgres { url, .. } => {
                let db = format!("phr_bench_{}", name.replace('-', "_"));
                let mut client = Engine::admin(&Engine::database_url(url, &db));
                let stored: i64 = client
                    .query_one("SELECT count(*) FROM resources", &[])
                    .expect("counts")
                    .get(0);
                let citizens: i64 = client
                    .query_one("SELECT count(*) FROM compartments WHERE pid <> 0", &[])
                    .expect("counts")
                    .get(0);
                let bytes: i64 = client
                    .query_one("SELECT pg_database_size(current_database())", &[])
                    .expect("sizes")
                    .get(0);
                (stored, usize::try_from(citizens).ok(), bytes as u64)
            }
        }
    }
}

fn main() {
    let args = args();
    let engine = match &args.postgres {
        Some(url) => Engine::Postgres {
            url: url.clone(),
            partitions: args.partitions,
        },
        None => Engine::Sqlite {
            cache_mib: args.cache_mib,
        },
    };
    let mut summary = vec![
        format!("\"engine\":\"{}\"", engine.name()),
        format!("\"observations\":{}", args.observations),
    ];
    println!("engine: {}", engine.name());
    if args.shapes {
        shapes(&engine, &args, summary);
        return;
    }

    // (a) ingest of prepared batches.
    if !args.skip_ingest {
        let batches: Vec<Vec<NewVersion>> = {
            let mut citizens = Vec::new();
            let mut total = 0;
            let mut n = 1_000_000;
            while total < args.ingest {
                let batches = citizen_batches(n);
                total += batches.iter().map(Vec::len).sum::<usize>();
                citizens.push(batches);
                n += 1;
            }
            // Concurrent clients send different citizens' bundles, as apps syncing many
            // citizens do (one citizen's bundles are serialized by both engines).
            interleave(citizens)
        };
        let total: usize = batches.iter().map(Vec::len).sum();
        let entries: usize = batches.iter().flatten().map(|v| v.index.len()).sum();
        println!(
            "ingest: {total} prepared Observations, {:.1} index entries each",
            entries as f64 / total as f64
        );
        for threads in [1, 4, 16] {
            let name = format!("ingest-{threads}");
            let store = engine.fresh(&args.dir, &name);
            let secs = write_batches(store.as_ref(), &batches, threads);
            let stats = store.stats();
            let rate = total as f64 / secs;
            println!(
                "ingest threads={threads:>2}: {rate:>8.0} Observations/s ({secs:.2} s, {} commits, {:.1} requests/commit, {:.1} ms fsync/commit)",
                stats.commits,
                stats.requests as f64 / stats.commits.max(1) as f64,
                stats.commit_micros as f64 / stats.commits.max(1) as f64 / 1000.0
            );
            summary.push(format!("\"ingest_{threads}_threads_per_s\":{rate:.0}"));
            drop(store);
            if let Engine::Sqlite { .. } = engine {
                let _ = std::fs::remove_dir_all(args.dir.join(&name));
            }
        }
    }

    // (b) load N observations for many citizens, then query.
    let name = format!("query-{}", args.observations);
    let existing = if args.reuse {
        engine.existing(&args.dir, &name)
    } else {
        None
    };
    let reuse = existing.is_some();
    let mut citizens = ((args.observations as f64 / per_citizen()).ceil() as usize).max(1);
    let store = match existing {
        Some(store) => store,
        None => {
            let store = engine.fresh(&args.dir, &name);
            let started = Instant::now();
            let mut loaded = 0usize;
            // Citizens in rounds of 64 so the load interleaves them like concurrent apps
            // do, until N observations are stored.
            let mut c = 0;
            while loaded < args.observations {
                let end = c + 64;
                let mut round: Vec<Vec<Vec<NewVersion>>> = (c..end).map(citizen_batches).collect();
                let mut interleaved = Vec::new();
                while round.iter().any(|b| !b.is_empty()) {
                    for b in round.iter_mut() {
                        if !b.is_empty() && loaded < args.observations {
                            let batch = b.remove(0);
                            loaded += batch.len();
                            interleaved.push(batch);
                        } else {
                            b.clear();
                        }
                    }
                }
                write_batches(store.as_ref(), &interleaved, 4);
                c = end;
                eprint!(
                    "\rloaded {loaded} Observations ({:.0}/s)   ",
                    loaded as f64 / started.elapsed().as_secs_f64()
                );
            }
            eprintln!();
            citizens = c;
            let secs = started.elapsed().as_secs_f64();
            let (_, _, bytes) = engine.measure(&args.dir, &name);
            println!(
                "load: {loaded} Observations for {citizens} citizens in {secs:.1} s = {:.0}/s, database {:.2} GiB",
                loaded as f64 / secs,
                bytes as f64 / (1u64 << 30) as f64
            );
            summary.push(format!(
                "\"loaded\":{loaded},\"citizens\":{citizens},\"load_per_s\":{:.0}",
                loaded as f64 / secs
            ));
            store
        }
    };
    let (stored, counted, bytes) = engine.measure(&args.dir, &name);
    if reuse {
        // Citizens that hold data: every loaded citizen has some.
        citizens = counted.unwrap_or(citizens);
        println!(
            "reused: {stored} Observations for {citizens} citizens, database {:.2} GiB",
            bytes as f64 / (1u64 << 30) as f64
        );
        summary.push(format!("\"stored\":{stored},\"citizens\":{citizens}"));
    }
    summary.push(format!("\"db_bytes\":{bytes}"));

    let store = Arc::new(store);
    // The same queries run twice: the first pass warms the page cache (the load or other
    // processes may have evicted it), the second is timed.
    let mut timeline = Vec::new();
    let mut counts = Vec::new();
    for _pass in 0..2 {
        timeline.clear();
        counts.clear();
        let mut rng = Rng(SEED ^ 0xabcdef);
        for _ in 0..args.queries {
            let c = citizen(rng.below(citizens as u64) as usize);
            let kind = c.kinds[rng.below(c.kinds.len() as u64) as usize];
            let from = START + rng.below(60) as i64 * DAY;
            let to = from + 30 * DAY;
            let date = |prefix, at: i64| QueryValue::Date {
                prefix,
                low: at,
                high: at + DAY - 1,
            };
            let clause = |param: &str, value| Clause {
                param: param.into(),
                modifier: None,
                chain: None,
                values: vec![value],
            };
            let mut q = SearchQuery {
                resource_type: "Observation".into(),
                compartment: Some(c.id.clone()),
                clauses: vec![
                    clause(
                        "code",
                        QueryValue::Token {
                            system: Some(TokenSystem::Is(LOINC.into())),
                            code: Some(kind.code().0.into()),
                        },
                    ),
                    clause("date", date(Prefix::Ge, from)),
                    clause("date", date(Prefix::Lt, to)),
                ],
                sort: vec![SortKey {
                    param: "date".into(),
                    descending: false,
                }],
                count: 100,
                ..SearchQuery::default()
            };
            let (cpu0, _) = thread_times();
            let started = Instant::now();
            let page = store.search(&q, None).expect("searches");
            let wall = started.elapsed().as_secs_f64() * 1000.0;
            timeline.push((wall, page.matches.len() as u64, thread_times().0 - cpu0));
            q.summary = Summary::Count;
            let (cpu0, _) = thread_times();
            let started = Instant::now();
            let page = store.search(&q, None).expect("counts");
            let wall = started.elapsed().as_secs_f64() * 1000.0;
            counts.push((wall, page.total.unwrap_or(0), thread_times().0 - cpu0));
        }
    }
    for (name, times) in [("timeline", &mut timeline), ("count", &mut counts)] {
        times.sort_by(|a, b| a.0.total_cmp(&b.0));
        let ms: Vec<f64> = times.iter().map(|t| t.0).collect();
        let (p50, p95, p99, max) = (
            percentile(&ms, 0.5),
            percentile(&ms, 0.95),
            percentile(&ms, 0.99),
            percentile(&ms, 1.0),
        );
        let average = times.iter().map(|t| t.1).sum::<u64>() as f64 / times.len().max(1) as f64;
        println!(
            "{name:>8} query: p50 {p50:.3} ms, p95 {p95:.3} ms, p99 {p99:.3} ms, max {max:.3} ms ({} queries, {average:.0} results on average)",
            times.len()
        );
        let slowest: Vec<String> = times
            .iter()
            .rev()
            .take(5)
            .map(|t| {
                format!(
                    "{:.1} ms ({:.0} ms on CPU, tick-rounded) {} results",
                    t.0, t.2, t.1
                )
            })
            .collect();
        println!("{name:>8} slowest: {}", slowest.join(", "));
        summary.push(format!(
            "\"{name}_p50_ms\":{p50:.3},\"{name}_p95_ms\":{p95:.3},\"{name}_p99_ms\":{p99:.3}"
        ));
    }
    println!("{{{}}}", summary.join(","));
}

/// The demo diabetic: every kind of measurement for a year.
fn diabetic_batches() -> (Citizen, Vec<Vec<NewVersion>>) {
    let c = Citizen {
        id: "d1abe71c-0000-4000-8000-000000000001".into(),
        kinds: vec![
            Kind::Glucose,
            Kind::Steps,
            Kind::Weight,
            Kind::BloodPressure,
        ],
    };
    let mut rng = Rng(SEED ^ 0xd1abe71c);
    let mut all: Vec<(i64, Kind)> = c
        .kinds
        .iter()
        .flat_map(|&k| times_over(k, 365).into_iter().map(move |t| (t, k)))
        .collect();
    all.sort_by_key(|(t, _)| *t);
    let mut serial = 7u64 << 40;
    let versions: Vec<NewVersion> = all
        .into_iter()
        .map(|(t, k)| {
            serial += 1;
            observation(&c, k, t, serial, &mut rng)
        })
        .collect();
    let batches = versions.chunks(BATCH).map(|b| b.to_vec()).collect();
    (c, batches)
}

/// Query shapes without a dedicated index on the demo diabetic's year.
fn shapes(engine: &Engine, args: &Args, mut summary: Vec<String>) {
    let name = "shapes";
    let (citizen, batches) = diabetic_batches();
    let existing = if args.reuse {
        engine.existing(&args.dir, name)
    } else {
        None
    };
    let store = match existing {
        Some(s) => s,
        None => {
            let store = engine.fresh(&args.dir, name);
            let started = Instant::now();
            write_batches(store.as_ref(), &batches, 4);
            let n: usize = batches.iter().map(Vec::len).sum();
            println!(
                "load: {n} Observations for one citizen in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            store
        }
    };
    let loinc = |code: &str| QueryValue::Token {
        system: Some(TokenSystem::Is(LOINC.into())),
        code: Some(code.into()),
    };
    let clause = |param: &str, values: Vec<QueryValue>| Clause {
        param: param.into(),
        modifier: None,
        chain: None,
        values,
    };
    let date = |prefix, at: i64| QueryValue::Date {
        prefix,
        low: at,
        high: at + DAY - 1,
    };
    let year = vec![
        clause("date", vec![date(Prefix::Ge, START)]),
        clause("date", vec![date(Prefix::Lt, START + 365 * DAY)]),
    ];
    let month = vec![
        clause("date", vec![date(Prefix::Ge, START + 120 * DAY)]),
        clause("date", vec![date(Prefix::Lt, START + 150 * DAY)]),
    ];
    let base = SearchQuery {
        resource_type: "Observation".into(),
        compartment: Some(citizen.id.clone()),
        count: 100,
        ..SearchQuery::default()
    };
    let mut shapes: Vec<(String, SearchQuery)> = Vec::new();
    let sort_keys = [
        "date",
        "_lastUpdated",
        "_id",
        "code",
        "status",
        "category",
        "value-quantity",
        "identifier",
        "patient",
        "performer",
        "_profile",
        "component-code",
        "combo-code",
        "combo-value-quantity",
    ];
    for key in sort_keys {
        for descending in [false, true] {
            let sort = vec![SortKey {
                param: key.into(),
                descending,
            }];
            let label = format!("{}{key}", if descending { "-" } else { "" });
            shapes.push((
                format!("_sort={label}"),
                SearchQuery {
                    sort: sort.clone(),
                    ..base.clone()
                },
            ));
            let mut clauses = vec![clause("code", vec![loinc("15074-8")])];
            clauses.extend(year.clone());
            shapes.push((
                format!("code=glucose&date=year&_sort={label}"),
                SearchQuery {
                    clauses,
                    sort,
                    ..base.clone()
                },
            ));
        }
    }
    // Present codes first, then absent ones.
    let codes = [
        "15074-8", "29463-7", "85354-9", "55423-8", "8480-6", "2345-7", "4548-4", "8867-4",
        "9279-1", "8310-5",
    ];
    for n in [2usize, 3, 5, 10] {
        let values: Vec<QueryValue> = codes.iter().take(n).map(|c| loinc(c)).collect();
        for (range_name, range) in [("month", &month), ("year", &year)] {
            for sort in [None, Some(false), Some(true)] {
                let mut clauses = vec![clause("code", values.clone())];
                clauses.extend(range.iter().cloned());
                let sort_name = match sort {
                    None => String::new(),
                    Some(d) => format!("&_sort={}date", if d { "-" } else { "" }),
                };
                shapes.push((
                    format!("code={n} codes&date={range_name}{sort_name}"),
                    SearchQuery {
                        clauses,
                        sort: sort
                            .map(|descending| SortKey {
                                param: "date".into(),
                                descending,
                            })
                            .into_iter()
                            .collect(),
                        ..base.clone()
                    },
                ));
            }
        }
    }
    let mut worst: f64 = 0.0;
    for (label, q) in &shapes {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !label.contains(o.as_str()))
        {
            continue;
        }
        // Warm once; a shape slower than 2 s is measured 3 times, not --queries times.
        let started = Instant::now();
        let first = store.search(q, None).expect("searches");
        let warm = started.elapsed().as_secs_f64() * 1000.0;
        let runs = if warm > 2000.0 {
            3
        } else {
            args.queries.clamp(5, 50)
        };
        let mut firsts = Vec::new();
        let mut thirds = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let page = store.search(q, None).expect("searches");
            firsts.push(started.elapsed().as_secs_f64() * 1000.0);
            let second = page
                .next
                .as_deref()
                .map(|c| store.search(q, Some(c)).expect("page 2"));
            if let Some(next) = second.as_ref().and_then(|p| p.next.clone()) {
                let started = Instant::now();
                store.search(q, Some(&next)).expect("page 3");
                thirds.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
        firsts.sort_by(f64::total_cmp);
        thirds.sort_by(f64::total_cmp);
        let p99 = percentile(&firsts, 0.99).max(percentile(&thirds, 0.99));
        worst = worst.max(p99);
        println!(
            "{label:<45} total {:>6}  page 1 p50 {:>8.2} ms p99 {:>8.2} ms | page 3 p50 {:>8.2} ms p99 {:>8.2} ms ({runs} runs)",
            first.total.unwrap_or(0),
            percentile(&firsts, 0.5),
            percentile(&firsts, 0.99),
            percentile(&thirds, 0.5),
            percentile(&thirds, 0.99),
        );
    }
    println!("worst p99 of any shape: {worst:.2} ms");
    summary.push(format!("\"shapes_worst_p99_ms\":{worst:.3}"));
    // Aggregates (a chart's intervals): one grouped statement over a code's year or month.
    let aggregates = [
        (
            "aggregate glucose year 400 intervals",
            "15074-8",
            None,
            365i64,
        ),
        ("aggregate glucose month 400 intervals", "15074-8", None, 30),
        ("aggregate glucose year 1 interval", "15074-8", None, -365),
        (
            "aggregate systolic year 400 intervals",
            "85354-9",
            Some("8480-6"),
            365,
        ),
    ];
    let mut worst_aggregate: f64 = 0.0;
    for (label, code, component, days) in aggregates {
        if args
            .only
            .as_ref()
            .is_some_and(|o| !label.contains(o.as_str()))
        {
            continue;
        }
        let span = days.abs() * DAY;
        let from = if days == 30 { START + 120 * DAY } else { START };
        let q = SearchQuery {
            clauses: vec![clause("code", vec![loinc(code)])],
            ..base.clone()
        };
        let aggregation = phr_store::Aggregation {
            from,
            to: from + span,
            interval: if days < 0 { span } else { (span / 400).max(1) },
            value: match component {
                None => phr_store::AggregateValue::Value,
                Some(c) => phr_store::AggregateValue::Component {
                    system: LOINC.into(),
                    code: c.into(),
                },
            },
            bands: Some((3.9, 10.0)),
        };
        let first = store.aggregate(&q, &aggregation).expect("aggregates");
        let counted: u64 = first.iter().map(|b| b.count).sum();
        let mut times = Vec::new();
        for _ in 0..args.queries.clamp(5, 50) {
            let started = Instant::now();
            store.aggregate(&q, &aggregation).expect("aggregates");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let p99 = percentile(&times, 0.99);
        worst_aggregate = worst_aggregate.max(p99);
        println!(
            "{label:<45} values {counted:>6} in {:>3} intervals  p50 {:>8.2} ms p99 {:>8.2} ms ({} runs)",
            first.len(),
            percentile(&times, 0.5),
            p99,
            times.len()
        );
    }
    summary.push(format!("\"aggregate_worst_p99_ms\":{worst_aggregate:.3}"));
    println!("{{{}}}", summary.join(","));
}
