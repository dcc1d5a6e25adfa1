//! `phr validate`: checks FHIR JSON files against StructureDefinition snapshots, with the
//! validator the server uses: the R4 core, the Finnish PHR catalogue, and any folders of
//! conformance JSON (`--package`). With `--no-catalog --package ../shared/kanta/conformance`
//! it judges by Kanta's official definitions alone, which is how the catalogue is checked.
//!
//! Only profile validation runs here; Kanta's data rules that are not in any profile (the
//! patient reference must exist, the creating application comes from the token) need the
//! server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use phr_fhir::{Definitions, Issue, Validator, declared_profiles};
use serde_json::Value;

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// A folder of conformance JSON (StructureDefinitions, ValueSets, CodeSystems) to load;
    /// repeatable. A definition whose url is already known replaces it.
    #[arg(long = "package", value_name = "DIR")]
    packages: Vec<PathBuf>,
    /// Leave out the built-in Finnish PHR catalogue: judge by the R4 core and the packages.
    #[arg(long)]
    no_catalog: bool,
    /// Validate against this profile (canonical URL) instead of each resource's
    /// `meta.profile`.
    #[arg(long)]
    profile: Option<String>,
    /// Print each verdict as one JSON line: `{"resource": label, "outcome": OperationOutcome}`.
    #[arg(long)]
    json: bool,
    /// Files holding one resource each, or a Bundle whose entries are validated one by one.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let validator = validator(&args.packages, !args.no_catalog)?;
    if let Some(profile) = &args.profile
        && validator
            .definitions()
            .structure_definition(profile)
            .is_none()
    {
        bail!("unknown profile {profile}: load its package with --package");
    }
    let mut invalid = 0usize;
    let mut checked = 0usize;
    for file in &args.files {
        for (label, resource) in resources_of(file)? {
            let profiles: Vec<&str> = match &args.profile {
                Some(p) => vec![p.as_str()],
                None => declared_profiles(&resource),
            };
            let issues = validator.validate(&resource, &profiles);
            checked += 1;
            if issues.iter().any(Issue::is_error) {
                invalid += 1;
            }
            report(&label, &issues, args.json);
        }
    }
    if invalid > 0 {
        bail!("{invalid} of {checked} resources are not valid");
    }
    if !args.json {
        eprintln!("phr: all {checked} resources are valid");
    }
    Ok(())
}

fn validator(packages: &[PathBuf], with_catalog: bool) -> anyhow::Result<Validator> {
    let mut definitions = if with_catalog {
        phr_catalog::Catalog::get().definitions()
    } else {
        (*Definitions::r4()).clone()
    };
    for dir in packages {
        let report = definitions
            .load_dir(dir)
            .with_context(|| format!("cannot load the package {}", dir.display()))?;
        for rejected in &report.rejected {
            eprintln!("phr: {}: not used: {rejected}", dir.display());
        }
    }
    Ok(Validator::new(Arc::new(definitions)))
}

/// The resources of a file, each with a label for the report: the file itself, or
/// `file#entry[n]` for the entries of a Bundle.
fn resources_of(path: &Path) -> anyhow::Result<Vec<(String, Value)>> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let name = path.display().to_string();
    if value["resourceType"] != "Bundle" {
        return Ok(vec![(name, value)]);
    }
    let entries = value["entry"].as_array().cloned().unwrap_or_default();
    Ok(entries
        .into_iter()
        .enumerate()
        .filter_map(|(n, mut entry)| {
            let resource = entry.get_mut("resource")?.take();
            Some((format!("{name}#entry[{n}]"), resource))
        })
        .collect())
}

fn report(label: &str, issues: &[Issue], json: bool) {
    if json {
        let outcome = phr_fhir::outcome::operation_outcome(issues);
        println!(
            "{}",
            serde_json::json!({"resource": label, "outcome": outcome})
        );
        return;
    }
    let errors = issues.iter().filter(|i| i.is_error()).count();
    if errors == 0 {
        println!("{label}: valid");
    } else {
        println!("{label}: {errors} error(s)");
    }
    // Messages start with the FHIRPath of what they are about.
    for issue in issues {
        println!("  {:<11} {}", issue.severity.code(), issue.message);
    }
}
