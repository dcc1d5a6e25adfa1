//! A transaction: all or nothing. New resources get their ids first so that references to
//! `urn:uuid:` fullUrls can be rewritten, entries are processed in the FHIR order (DELETE,
//! POST, PUT, GET), every write goes to storage in one all-or-nothing request, and any failing
//! entry fails the whole transaction with an outcome that names it.

use std::collections::{BTreeMap, HashMap, HashSet};

use phr_fhir::IssueType;
use phr_store::{Atomicity, IdentifierLookup, WriteOp, WriteOutcome};
use serde_json::Value;

use super::parse::{Entry, Method};
use super::{
    BundleKind, BundleResponse, EntryOutcome, Planned, WriteKind, check_entry_type, finish,
    plan_write,
};
use crate::caller::Caller;
use crate::error::{Error, ErrorKind, Result};
use crate::resource::parse_if_none_exist;
use crate::service::FhirService;
use crate::time::now_micros;
use crate::written::Version;

/// Runs a transaction once; `Ok(None)` means a concurrent write invalidated a conditional
/// lookup and the caller should run it again.
pub(super) fn transaction(
    fhir: &FhirService,
    caller: &Caller,
    mut entries: Vec<Entry>,
) -> Result<Option<BundleResponse>> {
    let count = entries.len();
    check_unique_targets(&entries)?;
    // Assign ids to new resources first, so references between entries can be resolved.
    let mut resolved: HashMap<String, String> = HashMap::new();
    let mut assigned: HashMap<usize, String> = HashMap::new();
    let targets = conditional_targets(fhir, caller, &entries)?;
    for entry in &entries {
        if let (Method::Put, [rtype, id], Some(full_url)) =
            (entry.method, entry.path.as_slice(), &entry.full_url)
        {
            resolved.insert(full_url.clone(), format!("{rtype}/{id}"));
            continue;
        }
        let (Method::Post, [rtype]) = (entry.method, entry.path.as_slice()) else {
            continue;
        };
        let id = match targets.get(&entry.index) {
            Some(target) => target.id.clone(),
            None => crate::create::new_resource_id(),
        };
        if let Some(full_url) = &entry.full_url {
            resolved.insert(full_url.clone(), format!("{rtype}/{id}"));
        }
        assigned.insert(entry.index, id);
    }
    for entry in &mut entries {
        if let Some(resource) = &mut entry.resource {
            rewrite_references(resource, &resolved);
        }
    }
    entries.sort_by_key(|e| (e.method, e.index));

    // Patients the transaction itself creates count as existing for reference checks.
    let mut patients = fhir.patients();
    for entry in &entries {
        if let (Method::Put, [rtype, id]) = (entry.method, entry.path.as_slice())
            && rtype == "Patient"
        {
            patients.add_pending(id);
        }
    }
    let mut answers: BTreeMap<usize, EntryOutcome> = BTreeMap::new();
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    for entry in entries {
        let index = entry.index;
        let fail = |e: Error| entry_failure(e, index);
        let post_type = match (entry.method, entry.path.as_slice()) {
            (Method::Get, _) => {
                reads.push(entry);
                continue;
            }
            (Method::Post, [rtype]) => Some(rtype.clone()),
            _ => None,
        };
        let (Some(rtype), Some(resource)) = (post_type, entry.resource.as_ref()) else {
            match plan_write(fhir, caller, entry, &mut patients).map_err(fail)? {
                Planned::Write { op, kind } => writes.push((index, op, kind)),
                Planned::Done(EntryOutcome::Error(e)) => return Err(fail(e)),
                Planned::Done(outcome) => {
                    answers.insert(index, outcome);
                }
            }
            continue;
        };
        check_entry_type(resource, &rtype).map_err(fail)?;
        let id = assigned
            .get(&index)
            .ok_or_else(|| fail(Error::internal("the entry was given no id")))?;
        if let Some(target) = targets.get(&index)
            && let Some(existing) = fhir
                .read_match(&rtype, target.compartment.as_deref(), id)
                .map_err(fail)?
            && !existing.deleted
        {
            answers.insert(index, EntryOutcome::Existing(Version::from(existing)));
            continue;
        }
        let condition = entry
            .if_none_exist
            .as_deref()
            .map(parse_if_none_exist)
            .transpose()
            .map_err(fail)?;
        let resource = entry.resource.unwrap_or_default();
        let new = fhir
            .pipeline
            .prepare(caller, resource, id, 1, now_micros(), &mut patients)
            .map_err(fail)?;
        writes.push((
            index,
            WriteOp::Create {
                new,
                if_none_exist: condition,
            },
            WriteKind::Create,
        ));
    }
    let ops: Vec<WriteOp> = writes.iter().map(|(_, op, _)| op.clone()).collect();
    let results = if ops.is_empty() {
        Vec::new()
    } else {
        fhir.storage.write(ops, Atomicity::AllOrNothing)?
    };
    if results.len() != writes.len() {
        return Err(Error::internal(
            "storage answered a different number of writes than it was given",
        ));
    }
    for ((index, op, kind), result) in writes.into_iter().zip(results) {
        if matches!(result, Ok(WriteOutcome::Existing { .. })) {
            // The conditional lookup raced with another writer; nothing was stored.
            return Ok(None);
        }
        match finish(fhir, op, kind, result) {
            Ok(EntryOutcome::Error(e)) | Err(e) => return Err(entry_failure(e, index)),
            Ok(outcome) => {
                answers.insert(index, outcome);
            }
        }
    }
    // Reads come last and see the transaction's writes; a failed read does not undo them.
    for entry in reads {
        let index = entry.index;
        let outcome = match plan_write(fhir, caller, entry, &mut patients) {
            Ok(Planned::Done(outcome)) => outcome,
            Ok(Planned::Write { .. }) => {
                EntryOutcome::Error(Error::internal("a GET entry planned a write"))
            }
            Err(e) => EntryOutcome::Error(e),
        };
        answers.insert(index, outcome);
    }
    let entries = (0..count)
        .map(|index| {
            answers.remove(&index).unwrap_or_else(|| {
                EntryOutcome::Error(Error::internal("the entry was not answered"))
            })
        })
        .collect();
    Ok(Some(BundleResponse {
        kind: BundleKind::Transaction,
        entries,
    }))
}

/// The existing resource a conditional create matched, and the compartment it was looked
/// for in.
struct Target {
    id: String,
    compartment: Option<String>,
}

/// The existing resources the transaction's conditional creates resolve to, by entry
/// index: every lookup in one storage request.
fn conditional_targets(
    fhir: &FhirService,
    caller: &Caller,
    entries: &[Entry],
) -> Result<HashMap<usize, Target>> {
    let mut asking = Vec::new();
    let mut lookups = Vec::new();
    for entry in entries {
        let (Method::Post, [rtype], Some(condition)) =
            (entry.method, entry.path.as_slice(), &entry.if_none_exist)
        else {
            continue;
        };
        let condition =
            parse_if_none_exist(condition).map_err(|e| entry_failure(e, entry.index))?;
        let compartment = entry
            .resource
            .as_ref()
            .and_then(|resource| fhir.pipeline.compartment(caller, resource));
        asking.push(entry.index);
        lookups.push(IdentifierLookup {
            resource_type: rtype.clone(),
            compartment,
            condition,
        });
    }
    if lookups.is_empty() {
        return Ok(HashMap::new());
    }
    let answers = fhir.storage.find_by_identifiers(&lookups)?;
    let mut targets = HashMap::new();
    for ((index, lookup), ids) in asking.into_iter().zip(lookups).zip(answers) {
        match ids.as_slice() {
            [] => {}
            [id] => {
                targets.insert(
                    index,
                    Target {
                        id: id.clone(),
                        compartment: lookup.compartment,
                    },
                );
            }
            _ => {
                return Err(entry_failure(
                    Error::new(
                        ErrorKind::PreconditionFailed,
                        IssueType::MultipleMatches,
                        format!(
                            "ifNoneExist matched {} resources; it must match at most one",
                            ids.len()
                        ),
                    ),
                    index,
                ));
            }
        }
    }
    Ok(targets)
}

/// Two entries of one transaction must not write the same resource.
fn check_unique_targets(entries: &[Entry]) -> Result<()> {
    let mut seen = HashSet::new();
    for entry in entries {
        if matches!(entry.method, Method::Put | Method::Delete)
            && entry.path.len() == 2
            && !seen.insert(entry.path.join("/"))
        {
            return Err(entry_failure(
                Error::invalid(format!(
                    "{} is written by more than one entry",
                    entry.path.join("/")
                )),
                entry.index,
            ));
        }
    }
    Ok(())
}

/// Replaces every `reference` that names a `urn:uuid:` fullUrl of the transaction.
fn rewrite_references(value: &mut Value, resolved: &HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "reference"
                    && let Value::String(reference) = child
                    && let Some(target) = resolved.get(reference.as_str())
                {
                    *reference = target.clone();
                    continue;
                }
                rewrite_references(child, resolved);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| rewrite_references(item, resolved)),
        _ => {}
    }
}

/// A failing transaction entry fails the whole transaction; the outcome says which entry.
fn entry_failure(error: Error, index: usize) -> Error {
    error.prefixed(&format!("Bundle.entry[{index}]: "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_to_transaction_full_urls_are_rewritten() {
        let mut resource = json!({"subject": {"reference": "urn:uuid:p"}, "hasMember": [{"reference": "urn:uuid:o"}],
            "focus": [{"reference": "Patient/keep"}]});
        let resolved = HashMap::from([
            ("urn:uuid:p".to_string(), "Patient/1".to_string()),
            ("urn:uuid:o".to_string(), "Observation/2".to_string()),
        ]);
        rewrite_references(&mut resource, &resolved);
        assert_eq!(resource["subject"]["reference"], "Patient/1");
        assert_eq!(resource["hasMember"][0]["reference"], "Observation/2");
        assert_eq!(resource["focus"][0]["reference"], "Patient/keep");
    }
}
