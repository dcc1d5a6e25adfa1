//! `phr export`: one citizen's data, or everyone's, out of a data folder as a `collection`
//! Bundle (one JSON file, or standard output) or as NDJSON with one file per resource type
//! (what `phr import` reads back). Reads the current version of each resource straight from
//! storage; deleted resources are left out.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use phr_store::{Storage, StoredResource};
use serde_json::Value;

/// Types outside compartments exported with "everyone".
const SHARED_TYPES: &[&str] = &["Questionnaire"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One `collection` Bundle.
    Bundle,
    /// One `<Type>.ndjson` file per resource type (needs --out DIR).
    Ndjson,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    place: crate::Place,
    /// Export only this Patient's compartment (its id); everyone by default.
    #[arg(long)]
    patient: Option<String>,
    /// Output: a file for a Bundle (standard output when absent), a folder for NDJSON.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Output format; NDJSON when --out is an existing folder, else a Bundle.
    #[arg(long, value_enum)]
    format: Option<Format>,
}

pub use phr_service::export::patient_resources;

/// Every live resource of `resource_type` (in `compartment`, when given), all pages.
pub fn search_all(
    storage: &dyn Storage,
    resource_type: &str,
    compartment: Option<&str>,
) -> anyhow::Result<Vec<StoredResource>> {
    phr_service::export::search_all(storage, resource_type, compartment)
        .with_context(|| format!("listing {resource_type}"))
}

fn body(stored: &StoredResource) -> anyhow::Result<Value> {
    Ok(phr_service::export::body(stored)?)
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let data = crate::data_dir(args.place.data.clone());
    if args.place.database.is_none() && !data.join("phr.db").is_file() {
        bail!("{} holds no PHR database (phr.db)", data.display());
    }
    let mut config = args.place.config()?;
    let storage = crate::serve::open_storage(&config)?;
    // fullUrls name the server that serves this data, when one has recorded its URL.
    config.public_url = match &config.database {
        Some(url) => phr_auth::postgres::read_setting(url, phr_auth::cluster::PUBLIC_URL)
            .map_err(|e| anyhow::anyhow!("{e}"))?,
        None => phr_server::config::recorded_public_url(&data),
    };
    let format = match (args.format, &args.out) {
        (Some(f), _) => f,
        (None, Some(out)) if out.is_dir() => Format::Ndjson,
        _ => Format::Bundle,
    };
    // Resources by type, collected per patient so memory holds one export at a time.
    let mut by_type: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let patients: Vec<String> = match &args.patient {
        Some(p) => vec![p.clone()],
        None => search_all(storage.as_ref(), "Patient", None)?
            .into_iter()
            .map(|p| p.id)
            .collect(),
    };
    for patient in &patients {
        for stored in patient_resources(storage.as_ref(), patient)? {
            by_type
                .entry(stored.resource_type.clone())
                .or_default()
                .push(body(&stored)?);
        }
    }
    if args.patient.is_none() {
        for resource_type in SHARED_TYPES {
            for stored in search_all(storage.as_ref(), resource_type, None)? {
                by_type
                    .entry(stored.resource_type.clone())
                    .or_default()
                    .push(body(&stored)?);
            }
        }
    }
    let count: usize = by_type.values().map(Vec::len).sum();
    match format {
        Format::Ndjson => {
            let Some(dir) = &args.out else {
                bail!("NDJSON export needs --out FOLDER");
            };
            write_ndjson(dir, &by_type)?;
            eprintln!(
                "exported {count} resources of {} patient(s) to {}",
                patients.len(),
                dir.display()
            );
        }
        Format::Bundle => {
            let bundle = phr_service::export::collection_bundle(by_type, &config.fhir_base_url());
            let bytes = serde_json::to_vec_pretty(&bundle)?;
            match &args.out {
                Some(path) => {
                    std::fs::write(path, bytes)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "exported {count} resources of {} patient(s) to {}",
                        patients.len(),
                        path.display()
                    );
                }
                None => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&bytes)?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    Ok(())
}

/// Writes `<Type>.ndjson` files into `dir` (created if missing). Patient first in name order
/// is not needed: `phr import` stores Patients first whatever the file order.
fn write_ndjson(dir: &Path, by_type: &BTreeMap<String, Vec<Value>>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (resource_type, resources) in by_type {
        let path = dir.join(format!("{resource_type}.ndjson"));
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&path)
                .with_context(|| format!("cannot write {}", path.display()))?,
        );
        for r in resources {
            serde_json::to_writer(&mut file, r)?;
            file.write_all(b"\n")?;
        }
        file.flush()?;
    }
    Ok(())
}
