//! `phr import FILE...`: the operator's bulk path into a data folder. Reads NDJSON (one
//! resource a line) and Bundle files, and stores every resource through the application
//! core's write pipeline (Kanta rules, validation, indexing) in large batches, without HTTP. Patients go first (update
//! as create, keeping their ids, so references to them stay valid); other resources are
//! conditional creates by their identifier, so importing a file twice stores it once.
//!
//! Every rejected resource is reported with its file and line (or entry) and the reasons;
//! the command fails when any was rejected.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, bail};
use clap::Args;
use phr_demo::Progress;
use phr_service::{App, Caller, EntryOutcome, Error, FhirService};
use serde_json::{Value, json};

/// Resources per batch Bundle.
const BATCH: usize = 1000;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// NDJSON files (one resource a line) and/or JSON files holding a Bundle or one resource.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    place: crate::Place,
    /// Write as this registered application (fills `creatingApplication`); by default the
    /// operator writes and the resources keep the `creatingApplication` they carry.
    #[arg(long)]
    app: Option<String>,
    /// The application's name for `creatingApplication` (with --app).
    #[arg(long, default_value = "PHR import")]
    app_name: String,
}

/// Where a resource came from, for error reports.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: String,
    /// `line 12` or `entry 3`.
    pub place: String,
}

/// The answer to one entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Created,
    Existing,
    Rejected(String),
}

/// How many of each outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub created: u64,
    pub existing: u64,
    pub rejected: u64,
}

impl Counts {
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Created => self.created += 1,
            Outcome::Existing => self.existing += 1,
            Outcome::Rejected(_) => self.rejected += 1,
        }
    }
}

/// A Bundle entry that stores `resource`: Patients by PUT to their id (when they have one),
/// everything else as a conditional create by its first identifier.
pub fn store_entry(resource: Value) -> Value {
    let resource_type = resource["resourceType"].as_str().unwrap_or("").to_string();
    if resource_type == "Patient"
        && let Some(id) = resource["id"].as_str()
    {
        let url = format!("Patient/{id}");
        return json!({"resource": resource, "request": {"method": "PUT", "url": url}});
    }
    phr_demo::bundle::sync_entry(resource)
}

/// Stores `entries` (batch Bundle entries) in one batch through the write pipeline and
/// returns one outcome per entry, in order. The operator's batches may be bigger than the
/// API's Bundle limit: fewer, larger commits.
pub fn write_entries(fhir: &FhirService, caller: &Caller, entries: Vec<Value>) -> Vec<Outcome> {
    let count = entries.len();
    let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
    match fhir.process_bundle_within(caller, bundle, usize::MAX) {
        Ok(response) => response.entries.into_iter().map(outcome).collect(),
        Err(e) => vec![Outcome::Rejected(rejection_text(&e)); count],
    }
}

/// What a batch entry's outcome means for an import: stored, already there, or rejected.
fn outcome(entry: EntryOutcome) -> Outcome {
    match entry {
        EntryOutcome::Created(_) => Outcome::Created,
        // A Patient stored again, or a conditional create that found its match.
        EntryOutcome::Updated(_) | EntryOutcome::Existing(_) => Outcome::Existing,
        // Imports only create and update; nothing reads or deletes.
        EntryOutcome::Read(_) | EntryOutcome::Deleted => Outcome::Existing,
        EntryOutcome::Error(e) => Outcome::Rejected(rejection_text(&e)),
    }
}

/// `unprocessable: what is wrong (at where); …`: the error issues of a rejection.
pub fn rejection_text(error: &Error) -> String {
    let reasons: Vec<String> = error
        .issues()
        .iter()
        .filter(|i| i.is_error())
        .map(|i| match &i.expression {
            Some(at) => format!("{} (at {at})", i.message),
            None => i.message.clone(),
        })
        .collect();
    format!("{}: {}", error.kind().code(), reasons.join("; "))
}

/// Calls `each` with every resource in `path` and where it came from. A file whose content
/// starts with `{` and parses as one JSON value is a Bundle (its entries) or one resource;
/// anything else is NDJSON.
pub fn read_resources(
    path: &Path,
    mut each: impl FnMut(Value, Origin),
    mut unreadable: impl FnMut(Origin, String),
) -> anyhow::Result<()> {
    let file = path.display().to_string();
    let text_start = {
        let mut reader = BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {file}"))?,
        );
        let buf = reader.fill_buf()?;
        String::from_utf8_lossy(buf).trim_start().chars().next()
    };
    if text_start == Some('{') {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read {file}"))?;
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
            if value["resourceType"] == "Bundle" {
                for (i, mut entry) in value["entry"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                {
                    let origin = Origin {
                        file: file.clone(),
                        place: format!("entry {i}"),
                    };
                    match entry.get_mut("resource").map(Value::take) {
                        Some(resource) if resource.is_object() => each(resource, origin),
                        _ => unreadable(origin, "the entry has no resource".into()),
                    }
                }
            } else {
                each(
                    value,
                    Origin {
                        file,
                        place: "the file".into(),
                    },
                );
            }
            return Ok(());
        }
    }
    let reader =
        BufReader::new(std::fs::File::open(path).with_context(|| format!("cannot open {file}"))?);
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {file}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let origin = Origin {
            file: file.clone(),
            place: format!("line {}", n + 1),
        };
        match serde_json::from_str::<Value>(&line) {
            Ok(resource) if resource.is_object() => each(resource, origin),
            Ok(_) => unreadable(origin, "not a JSON object".into()),
            Err(e) => unreadable(origin, format!("not valid JSON: {e}")),
        }
    }
    Ok(())
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    for f in &args.files {
        if !f.is_file() {
            bail!("{} is not a file", f.display());
        }
    }
    let config = args.place.config()?;
    let core = crate::serve::open_core(&config)?;
    let caller = Caller::Operator {
        app: args.app.as_ref().map(|id| App {
            id: id.clone(),
            name: args.app_name.clone(),
        }),
    };
    let counts = import(&core.fhir, &caller, &args.files, true)?;
    println!(
        "imported: {} stored, {} already there, {} rejected",
        counts.created, counts.existing, counts.rejected
    );
    if counts.rejected > 0 {
        bail!("{} resources were rejected (listed above)", counts.rejected);
    }
    Ok(())
}

/// Imports `files` into `state`'s storage: Patients first, then the rest, in batches on
/// every core. Rejections are printed to standard error as they come.
pub fn import(
    fhir: &FhirService,
    caller: &Caller,
    files: &[PathBuf],
    show_progress: bool,
) -> anyhow::Result<Counts> {
    // A quick count for the progress bar.
    let total = std::cell::Cell::new(0u64);
    for f in files {
        read_resources(
            f,
            |_, _| total.set(total.get() + 1),
            |_, _| total.set(total.get() + 1),
        )?;
    }
    let total = total.get();
    let progress = Mutex::new(if show_progress {
        Progress::new("importing", total)
    } else {
        Progress::hidden()
    });
    let counts = Mutex::new(Counts::default());
    let report = |origin: &Origin, why: &str| {
        eprintln!("{} {}: rejected: {why}", origin.file, origin.place);
    };
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    for patients_pass in [true, false] {
        let (tx, rx) = crossbeam_channel::bounded::<Vec<(Value, Origin)>>(workers * 2);
        let result: anyhow::Result<()> = std::thread::scope(|scope| {
            for _ in 0..workers {
                let rx = rx.clone();
                let (counts, progress, report) = (&counts, &progress, &report);
                scope.spawn(move || {
                    while let Ok(batch) = rx.recv() {
                        let (entries, origins): (Vec<Value>, Vec<Origin>) =
                            batch.into_iter().map(|(r, o)| (store_entry(r), o)).unzip();
                        let outcomes = write_entries(fhir, caller, entries);
                        let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
                        for (outcome, origin) in outcomes.iter().zip(&origins) {
                            c.add(outcome);
                            if let Outcome::Rejected(why) = outcome {
                                report(origin, why);
                            }
                        }
                        drop(c);
                        if let Ok(mut p) = progress.lock() {
                            p.add(origins.len() as u64);
                        }
                    }
                });
            }
            drop(rx);
            let mut batch = Vec::with_capacity(BATCH);
            for f in files {
                read_resources(
                    f,
                    |resource, origin| {
                        let is_patient =
                            resource.get("resourceType").and_then(Value::as_str) == Some("Patient");
                        if is_patient != patients_pass {
                            return;
                        }
                        batch.push((resource, origin));
                        if batch.len() >= BATCH {
                            let _ = tx.send(std::mem::take(&mut batch));
                        }
                    },
                    |origin, why| {
                        if patients_pass {
                            report(&origin, &why);
                            if let Ok(mut c) = counts.lock() {
                                c.rejected += 1;
                            }
                        }
                    },
                )?;
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            drop(tx);
            Ok(())
        });
        result?;
    }
    if let Ok(mut p) = progress.lock() {
        p.finish();
    }
    Ok(counts.into_inner().unwrap_or_default())
}
