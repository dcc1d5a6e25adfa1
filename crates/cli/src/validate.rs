//! `phr validate`: checks FHIR JSON files against StructureDefinition snapshots, with the
//! validator the server uses: the R4 core, the Finnish PHR catalogue, and any folders of
//! conformance JSON (`--package`). With `--no-catalog --package ../shared/kanta/conformance`
//! it judges by Kanta's official definitions alone, which is how the catalogue is checked.
//!
//! A Bundle is validated as one resource, as `$validate` does: the Bundle rules and any
//! Bundle profile apply to the Bundle, and each entry is judged by its own type and the
//! profiles it declares. The report gives the Bundle's verdict and each entry's.
//!
//! Only profile validation runs here; Kanta's data rules that are not in any profile (the
//! patient reference must exist, the creating application comes from the token) need the
//! server.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use phr_fhir::validator::Options;
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
    /// `meta.profile` (for a Bundle file: a Bundle profile).
    #[arg(long)]
    profile: Option<String>,
    /// Treat an extension whose definition is not loaded as an error, not a warning (it is
    /// an error under Finnish PHR profiles anyway).
    #[arg(long)]
    strict_extensions: bool,
    /// Print each verdict as one JSON line: `{"resource": label, "outcome": OperationOutcome}`.
    #[arg(long)]
    json: bool,
    /// Files holding one resource each (a Bundle with its entries).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

pub fn run(args: ValidateArgs) -> anyhow::Result<()> {
    let validator = validator(&args.packages, !args.no_catalog)?.with_options(Options {
        strict_extensions: args.strict_extensions,
    });
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
        let resource = read(file)?;
        let profiles: Vec<&str> = match &args.profile {
            Some(p) => vec![p.as_str()],
            None => declared_profiles(&resource),
        };
        let issues = validator.validate(&resource, &profiles);
        for (label, issues) in verdicts(&file.display().to_string(), &resource, issues) {
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

/// A file's resource. FHIR JSON may start with a byte-order mark; malformed JSON is
/// reported with its line and column.
fn read(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    phr_fhir::json::parse(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// The issues of one validation split into verdicts: the resource itself (`file`), and for
/// a Bundle each entry's resource (`file#entry[n]`), whose issues are those under
/// `Bundle.entry[n].resource`.
fn verdicts(name: &str, resource: &Value, issues: Vec<Issue>) -> Vec<(String, Vec<Issue>)> {
    let entries = match resource["entry"].as_array() {
        Some(entries) if resource["resourceType"] == "Bundle" => entries,
        _ => return vec![(name.to_string(), issues)],
    };
    let mut out: Vec<(String, Vec<Issue>)> = vec![(name.to_string(), Vec::new())];
    let mut index = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        if entry.get("resource").is_some() {
            index.push((format!("Bundle.entry[{n}].resource"), out.len()));
            out.push((format!("{name}#entry[{n}]"), Vec::new()));
        }
    }
    for issue in issues {
        let at = issue.expression.as_deref().and_then(|e| {
            index.iter().find_map(|(prefix, i)| {
                e.strip_prefix(prefix.as_str())
                    .filter(|rest| rest.is_empty() || rest.starts_with('.'))
                    .map(|_| *i)
            })
        });
        if let Some((_, list)) = out.get_mut(at.unwrap_or(0)) {
            list.push(issue);
        }
    }
    out
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
