//! Rules about a Bundle as a whole, beyond what its StructureDefinition says (the `bdl-*`
//! invariants are evaluated with the other invariants): `fullUrl` form and agreement with
//! the resource, duplicate entries, link relations by Bundle type, and references inside
//! the Bundle — `urn:uuid:`/`urn:oid:` references must name an entry, a document's
//! Composition must reach entries the Bundle holds (versioned references the version it
//! holds), and every entry of a document must be reachable from its Composition.
//!
//! This module reads JSON and returns findings; it never walks the entries' own content
//! (the validator does that) and never looks outside the Bundle.

use std::collections::{HashMap, HashSet, VecDeque};

use serde_json::{Map, Value};

use crate::outcome::{IssueType, Severity};

/// One finding, at a path relative to the Bundle (`entry[2].fullUrl`, or empty).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finding {
    pub path: String,
    pub severity: Severity,
    pub code: IssueType,
    pub message: String,
}

fn error(path: String, code: IssueType, message: String) -> Finding {
    Finding {
        path,
        severity: Severity::Error,
        code,
        message,
    }
}

fn warning(path: String, code: IssueType, message: String) -> Finding {
    Finding {
        path,
        severity: Severity::Warning,
        code,
        message,
    }
}

/// One entry, as far as these rules need it.
struct Entry<'a> {
    index: usize,
    full_url: Option<&'a str>,
    value: Option<&'a Value>,
    resource: Option<&'a Map<String, Value>>,
    resource_type: Option<&'a str>,
    id: Option<&'a str>,
    version: Option<&'a str>,
}

/// `scheme:` at the start: an absolute URI (`http://…`, `urn:uuid:…`).
fn is_absolute(url: &str) -> bool {
    match url.split_once(':') {
        Some((scheme, _)) => {
            scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        }
        None => false,
    }
}

/// (`Type`, `id`) when `url` ends in `Type/id` with a known resource type (a RESTful URL).
fn restful_tail<'u>(url: &'u str, is_type: &dyn Fn(&str) -> bool) -> Option<(&'u str, &'u str)> {
    let mut parts = url.rsplit('/');
    let id = parts.next()?;
    let ty = parts.next()?;
    (is_type(ty) && !id.is_empty()).then_some((ty, id))
}

/// The Bundle rules. `is_type` tells resource type names.
pub(crate) fn check(bundle: &Map<String, Value>, is_type: &dyn Fn(&str) -> bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let kind = bundle
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    links(bundle, kind, &mut out);
    let entries: Vec<Entry> = bundle
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, e)| {
            let value = e.get("resource");
            let resource = value.and_then(Value::as_object);
            Entry {
                index,
                full_url: e.get("fullUrl").and_then(Value::as_str),
                value,
                resource,
                resource_type: resource
                    .and_then(|r| r.get("resourceType"))
                    .and_then(Value::as_str),
                id: resource.and_then(|r| r.get("id")).and_then(Value::as_str),
                version: resource
                    .and_then(|r| r.get("meta"))
                    .and_then(|m| m.get("versionId"))
                    .and_then(Value::as_str),
            }
        })
        .collect();
    if entries.is_empty() && matches!(kind, "document" | "message") {
        out.push(error(
            String::new(),
            IssueType::Invalid,
            format!("a {kind} Bundle must have a first entry"),
        ));
    }
    full_urls(&entries, kind, is_type, &mut out);
    duplicates(&entries, kind, &mut out);
    references(&entries, kind, is_type, &mut out);
    out
}

fn links(bundle: &Map<String, Value>, kind: &str, out: &mut Vec<Finding>) {
    let relations: Vec<Option<&str>> = bundle
        .get("link")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|l| l.get("relation").and_then(Value::as_str))
        .collect();
    let paging = ["first", "previous", "next", "last"];
    for (i, rel) in relations.iter().enumerate() {
        let Some(rel) = rel else { continue };
        let path = format!("link[{i}].relation");
        let searching = matches!(kind, "searchset" | "history");
        if !searching && paging.contains(rel) {
            out.push(error(
                path.clone(),
                IssueType::Invalid,
                format!("the link relation '{rel}' is only for search and history Bundles"),
            ));
        }
        let unique = *rel == "self" || (searching && paging.contains(rel));
        let seen_before = relations
            .get(..i)
            .unwrap_or_default()
            .iter()
            .any(|r| r == &Some(*rel));
        if unique && seen_before {
            out.push(error(
                path,
                IssueType::Invalid,
                format!("the link relation '{rel}' may appear only once"),
            ));
        }
    }
}

fn full_urls(
    entries: &[Entry],
    kind: &str,
    is_type: &dyn Fn(&str) -> bool,
    out: &mut Vec<Finding>,
) {
    let optional = matches!(
        kind,
        "transaction" | "transaction-response" | "batch" | "batch-response"
    );
    for e in entries {
        let path = format!("entry[{}]", e.index);
        let Some(full_url) = e.full_url else {
            if !optional && e.resource.is_some() {
                out.push(error(
                    path,
                    IssueType::Required,
                    format!("fullUrl is required in a {kind} Bundle"),
                ));
            }
            continue;
        };
        let path = format!("{path}.fullUrl");
        if !is_absolute(full_url) {
            out.push(error(
                path,
                IssueType::Invalid,
                format!("fullUrl '{full_url}' must be an absolute URL"),
            ));
            continue;
        }
        let Some(rtype) = e.resource_type else {
            continue;
        };
        if full_url.starts_with("urn:") || full_url.contains("/_history/") {
            continue;
        }
        if restful_tail(full_url, is_type).is_none() {
            continue;
        }
        match e.id {
            None => out.push(error(
                path,
                IssueType::Invalid,
                format!("fullUrl '{full_url}' is a RESTful URL, but the resource has no id"),
            )),
            Some(id) if !full_url.ends_with(&format!("/{rtype}/{id}")) => out.push(error(
                path,
                IssueType::Invalid,
                format!(
                    "fullUrl '{full_url}' must end with the resource's type and id (/{rtype}/{id})"
                ),
            )),
            Some(_) => {}
        }
    }
}

fn duplicates(entries: &[Entry], kind: &str, out: &mut Vec<Finding>) {
    if kind == "history" {
        return; // the same resource in several versions
    }
    let mut seen: HashMap<(String, Option<&str>), usize> = HashMap::new();
    for e in entries {
        let key = match (e.full_url, e.resource_type, e.id) {
            (Some(u), _, _) => u.to_string(),
            (None, Some(t), Some(id))
                if !kind.starts_with("transaction") && !kind.starts_with("batch") =>
            {
                format!("{t}/{id}")
            }
            _ => continue,
        };
        if e.resource.is_none() {
            continue;
        }
        if let Some(first) = seen.insert((key.clone(), e.version), e.index) {
            out.push(error(
                format!("entry[{}]", e.index),
                IssueType::Duplicate,
                format!("duplicate resource {key}: entry[{first}] holds the same resource"),
            ));
        }
    }
}

/// Every literal reference in `v` (not `#` references to contained resources), with its
/// path relative to `v`.
fn collect_references<'v>(v: &'v Value, path: &mut String, out: &mut Vec<(String, &'v str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "reference"
                    && let Value::String(r) = x
                {
                    if !r.starts_with('#') {
                        out.push((format!("{path}.reference"), r.as_str()));
                    }
                    continue;
                }
                let mark = path.len();
                path.push('.');
                path.push_str(k);
                collect_references(x, path, out);
                path.truncate(mark);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let mark = path.len();
                path.push_str(&format!("[{i}]"));
                collect_references(x, path, out);
                path.truncate(mark);
            }
        }
        _ => {}
    }
}

enum Resolution {
    Found(usize),
    /// Entries hold the resource, but not the version referred to.
    OtherVersion,
    Missing,
}

/// Finds the entry a reference from `from` names (§ Resolving references in Bundles).
fn resolve(
    reference: &str,
    from: &Entry,
    entries: &[Entry],
    is_type: &dyn Fn(&str) -> bool,
) -> Resolution {
    let (target, version) = match reference.split_once("/_history/") {
        Some((t, v)) => (t, Some(v)),
        None => (reference, None),
    };
    let absolute = if is_absolute(target) {
        Some(target.to_string())
    } else {
        // Relative to the base of the referring entry's RESTful fullUrl.
        from.full_url
            .filter(|u| !u.starts_with("urn:"))
            .and_then(|u| {
                let (ty, id) = restful_tail(u, is_type)?;
                let base = u.strip_suffix(&format!("{ty}/{id}"))?;
                Some(format!("{base}{target}"))
            })
    };
    let candidates: Vec<&Entry> = entries
        .iter()
        .filter(|e| match (&absolute, e.full_url) {
            (Some(a), Some(u)) if u == a => true,
            (Some(_), Some(u)) if !u.starts_with("urn:") => false,
            _ => {
                !is_absolute(target)
                    && matches!((e.resource_type, e.id), (Some(t), Some(id)) if target == format!("{t}/{id}"))
            }
        })
        .collect();
    if candidates.is_empty() {
        return Resolution::Missing;
    }
    match version {
        None => candidates
            .first()
            .map_or(Resolution::Missing, |e| Resolution::Found(e.index)),
        Some(v) => candidates
            .iter()
            .find(|e| e.version == Some(v))
            .map_or(Resolution::OtherVersion, |e| Resolution::Found(e.index)),
    }
}

fn references(
    entries: &[Entry],
    kind: &str,
    is_type: &dyn Fn(&str) -> bool,
    out: &mut Vec<Finding>,
) {
    if matches!(kind, "searchset" | "history") {
        return;
    }
    let document = kind == "document";
    let mut edges: Vec<HashSet<usize>> = vec![HashSet::new(); entries.len()];
    for e in entries {
        let Some(resource) = e.value else { continue };
        let mut refs = Vec::new();
        let mut path = format!("entry[{}].resource", e.index);
        collect_references(resource, &mut path, &mut refs);
        for (path, r) in refs {
            let in_bundle_only = r.starts_with("urn:uuid:") || r.starts_with("urn:oid:");
            match resolve(r, e, entries, is_type) {
                Resolution::Found(t) => {
                    if let Some(set) = edges.get_mut(e.index) {
                        set.insert(t);
                    }
                }
                Resolution::OtherVersion if document || in_bundle_only => out.push(error(
                    path,
                    IssueType::NotFound,
                    format!("'{r}': the Bundle holds this resource, but not this version"),
                )),
                Resolution::Missing if in_bundle_only => out.push(error(
                    path,
                    IssueType::NotFound,
                    format!("'{r}' names no entry of the Bundle (a {} reference can only be resolved inside it)", r.get(..8).unwrap_or(r)),
                )),
                Resolution::Missing if document && e.index == 0 => out.push(error(
                    path,
                    IssueType::NotFound,
                    format!("'{r}' is not in the document: a document's Composition refers only to entries it holds"),
                )),
                Resolution::Missing if document => out.push(warning(
                    path,
                    IssueType::NotFound,
                    format!("'{r}' is not in the document"),
                )),
                _ => {}
            }
        }
    }
    if document && !entries.is_empty() {
        let mut reached = HashSet::from([0usize]);
        let mut queue = VecDeque::from([0usize]);
        while let Some(i) = queue.pop_front() {
            for &t in edges.get(i).into_iter().flatten() {
                if reached.insert(t) {
                    queue.push_back(t);
                }
            }
        }
        for e in entries.iter().filter(|e| e.resource.is_some()) {
            if reached.contains(&e.index) {
                continue;
            }
            let links_back = edges
                .get(e.index)
                .is_some_and(|ts| ts.iter().any(|t| reached.contains(t)));
            let path = format!("entry[{}]", e.index);
            let name = e.full_url.unwrap_or("this entry");
            if links_back {
                out.push(warning(
                    path,
                    IssueType::Invalid,
                    format!(
                        "{name} is reached from the Composition only by a reference back to it"
                    ),
                ));
            } else {
                out.push(error(
                    path,
                    IssueType::Invalid,
                    format!("{name} is not referred to from the document's Composition or the entries it reaches"),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn types(t: &str) -> bool {
        matches!(
            t,
            "Patient" | "Observation" | "Composition" | "Practitioner"
        )
    }

    fn findings(b: Value) -> Vec<Finding> {
        check(b.as_object().unwrap(), &types)
    }

    #[test]
    fn relative_references_resolve_against_the_entry_base() {
        let b = json!({"resourceType": "Bundle", "type": "collection", "entry": [
            {"fullUrl": "http://x/fhir/Observation/1", "resource": {"resourceType": "Observation", "id": "1",
              "subject": {"reference": "Patient/p"}}},
            {"fullUrl": "http://x/fhir/Patient/p", "resource": {"resourceType": "Patient", "id": "p"}}
        ]});
        assert!(findings(b).is_empty());
    }
}
