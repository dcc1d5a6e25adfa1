//! Batch and transaction Bundles posted to the base, and the history Bundle.
//!
//! A batch's entries succeed or fail one by one; a transaction is atomic: its writes go to
//! storage as one all-or-nothing request, and `urn:uuid:` fullUrls are replaced by the ids
//! the server assigns wherever they are referenced. Either way, all writes of one Bundle are
//! prepared first and stored in one storage request, so a 300-entry Bundle costs one commit.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use phr_fhir::{Issue, IssueType};
use phr_store::{Atomicity, HistoryPage, Rejection, WriteOp, WriteOutcome};
use serde_json::{Value, json};

use super::error::ApiError;
use super::pipeline::Caller;
use super::respond::{Prefer, Return};
use super::service::{
    FhirService, Patients, PreparedCreate, Written, finish_update, parse_if_none_exist, rejection,
};
use super::{entry_response, full_url};
use crate::time::to_instant;

/// How many times a transaction is re-run when a concurrent writer invalidated what it had
/// looked up (a conditional create that raced).
const TRANSACTION_RETRIES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Batch,
    Transaction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Method {
    // Declaration order is the order a transaction processes entries in.
    Delete,
    Post,
    Put,
    Get,
}

/// One request entry, parsed.
#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    method: Method,
    full_url: Option<String>,
    /// Path segments after the base: `[type]`, `[type, id]` or `[type, id, "_history", vid]`.
    path: Vec<String>,
    query: Option<String>,
    resource: Option<Value>,
    if_none_exist: Option<String>,
    if_match: Option<u64>,
}

pub fn process(
    fhir: &FhirService,
    caller: &Caller,
    bundle: Value,
    max_entries: usize,
    base_url: &str,
) -> Result<BundleResponse, ApiError> {
    let (kind, entries) = parse_bundle(bundle, max_entries, base_url)?;
    match kind {
        Kind::Batch => Ok(batch(fhir, caller, entries)),
        Kind::Transaction => {
            for _ in 0..TRANSACTION_RETRIES {
                match transaction(fhir, caller, entries.clone())? {
                    Some(response) => return Ok(response),
                    None => continue,
                }
            }
            Err(ApiError::new(
                StatusCode::CONFLICT,
                IssueType::Conflict,
                "the transaction kept conflicting with concurrent writes; nothing was stored, try again",
            ))
        }
    }
}

fn parse_bundle(
    bundle: Value,
    max_entries: usize,
    base_url: &str,
) -> Result<(Kind, Vec<Entry>), ApiError> {
    let invalid = |message: String, at: String| {
        ApiError::with_issues(
            StatusCode::BAD_REQUEST,
            vec![Issue::error(IssueType::Invalid, message).at(at)],
        )
    };
    if bundle["resourceType"] != "Bundle" {
        return Err(ApiError::bad_request(
            "only a Bundle of type batch or transaction can be posted to the base",
        ));
    }
    let kind = match bundle["type"].as_str() {
        Some("batch") => Kind::Batch,
        Some("transaction") => Kind::Transaction,
        other => {
            return Err(invalid(
                format!(
                    "Bundle.type must be batch or transaction, not {}",
                    other.unwrap_or("missing")
                ),
                "Bundle.type".into(),
            ));
        }
    };
    let list = match &bundle["entry"] {
        Value::Array(list) => list.clone(),
        Value::Null => Vec::new(),
        _ => {
            return Err(invalid(
                "Bundle.entry must be an array".into(),
                "Bundle.entry".into(),
            ));
        }
    };
    if list.len() > max_entries {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            IssueType::TooCostly,
            format!(
                "the Bundle has {} entries; at most {max_entries} are accepted in one request",
                list.len()
            ),
        ));
    }
    let prefix = format!("{base_url}{}/", super::BASE_PATH);
    let mut entries = Vec::with_capacity(list.len());
    for (index, mut entry) in list.into_iter().enumerate() {
        let at = |field: &str| format!("Bundle.entry[{index}].{field}");
        let request = entry["request"].take();
        let method = match request["method"].as_str() {
            Some("GET") => Method::Get,
            Some("POST") => Method::Post,
            Some("PUT") => Method::Put,
            Some("DELETE") => Method::Delete,
            Some(other) => {
                return Err(invalid(
                    format!("request.method {other} is not supported in a Bundle"),
                    at("request.method"),
                ));
            }
            None => {
                return Err(invalid(
                    "every entry needs request.method".into(),
                    at("request.method"),
                ));
            }
        };
        let Some(url) = request["url"].as_str() else {
            return Err(invalid(
                "every entry needs request.url".into(),
                at("request.url"),
            ));
        };
        let url = url
            .strip_prefix(&prefix)
            .unwrap_or(url)
            .trim_start_matches('/');
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (url, None),
        };
        let path: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let if_match = match request["ifMatch"].as_str() {
            Some(text) => Some(parse_version_tag(text).ok_or_else(|| {
                invalid(
                    format!("ifMatch must look like W/\"3\", not '{text}'"),
                    at("request.ifMatch"),
                )
            })?),
            None => None,
        };
        let resource = entry.get_mut("resource").map(Value::take);
        if matches!(method, Method::Post | Method::Put) && resource.is_none() {
            return Err(invalid(
                "a POST or PUT entry needs a resource".into(),
                at("resource"),
            ));
        }
        entries.push(Entry {
            index,
            method,
            full_url: entry["fullUrl"].as_str().map(str::to_string),
            path,
            query,
            resource,
            if_none_exist: request["ifNoneExist"].as_str().map(str::to_string),
            if_match,
        });
    }
    Ok((kind, entries))
}

fn parse_version_tag(text: &str) -> Option<u64> {
    text.trim()
        .strip_prefix("W/")
        .unwrap_or(text.trim())
        .trim_matches('"')
        .parse()
        .ok()
}

/// What one entry amounts to once checked: something to write, or an answer already.
enum Planned {
    Write { op: WriteOp, kind: WriteKind },
    Done(Result<Answer, ApiError>),
}

#[derive(Clone, Copy)]
enum WriteKind {
    Create,
    Update,
    Delete,
}

fn plan(fhir: &FhirService, caller: &Caller, entry: Entry, patients: &mut Patients) -> Planned {
    match plan_write(fhir, caller, entry, patients) {
        Ok(planned) => planned,
        Err(e) => Planned::Done(Err(e)),
    }
}

fn plan_write(
    fhir: &FhirService,
    caller: &Caller,
    entry: Entry,
    patients: &mut Patients,
) -> Result<Planned, ApiError> {
    match (entry.method, entry.path.as_slice()) {
        (Method::Post, [rtype]) => {
            let resource = entry
                .resource
                .expect("parse_bundle checked POST has a resource");
            check_entry_type(&resource, rtype)?;
            match fhir.prepare_create(caller, resource, entry.if_none_exist.as_deref(), patients)? {
                PreparedCreate::Existing(w) => Ok(Planned::Done(Ok(written_entry(&w)))),
                PreparedCreate::New { op } => Ok(Planned::Write {
                    op,
                    kind: WriteKind::Create,
                }),
            }
        }
        (Method::Put, [rtype, id]) => {
            let resource = entry
                .resource
                .expect("parse_bundle checked PUT has a resource");
            fhir.check_type(rtype)?;
            let op = fhir.prepare_update(caller, rtype, id, resource, entry.if_match, patients)?;
            Ok(Planned::Write {
                op,
                kind: WriteKind::Update,
            })
        }
        (Method::Delete, [rtype, id]) => {
            fhir.check_type(rtype)?;
            match fhir.prepare_delete(caller, rtype, id, entry.if_match)? {
                Some(op) => Ok(Planned::Write {
                    op,
                    kind: WriteKind::Delete,
                }),
                None => Ok(Planned::Done(Ok(deleted_entry()))),
            }
        }
        (Method::Get, [rtype, id]) if entry.query.is_none() => {
            let stored = fhir.read(caller, rtype, id)?;
            Ok(Planned::Done(Ok(stored_entry(&stored))))
        }
        (Method::Get, [rtype, id, history, vid]) if history == "_history" => {
            let stored = fhir.vread(caller, rtype, id, vid)?;
            Ok(Planned::Done(Ok(stored_entry(&stored))))
        }
        (method, path) => Err(ApiError::bad_request(format!(
            "{method:?} {} is not an interaction this server supports inside a Bundle",
            path.join("/")
        ))),
    }
}

fn check_entry_type(resource: &Value, rtype: &str) -> Result<(), ApiError> {
    let body_type = super::service::resource_type_of(resource)?;
    if body_type != rtype {
        return Err(ApiError::bad_request(format!(
            "the entry's resource is a {body_type}, but request.url names {rtype}"
        )));
    }
    Ok(())
}

fn batch(fhir: &FhirService, caller: &Caller, entries: Vec<Entry>) -> BundleResponse {
    let count = entries.len();
    let mut answers: Vec<Option<Result<Answer, ApiError>>> = (0..count).map(|_| None).collect();
    let mut writes = Vec::new();
    let mut patients = fhir.patients();
    for entry in entries {
        let index = entry.index;
        match plan(fhir, caller, entry, &mut patients) {
            Planned::Done(answer) => answers[index] = Some(answer),
            Planned::Write { op, kind } => writes.push((index, op, kind)),
        }
    }
    let ops: Vec<WriteOp> = writes.iter().map(|(_, op, _)| op.clone()).collect();
    match fhir.storage.write(ops, Atomicity::Independent) {
        Ok(results) => {
            for ((index, op, kind), result) in writes.into_iter().zip(results) {
                answers[index] = Some(finish(fhir, caller, op, kind, result));
            }
        }
        Err(e) => {
            let error = ApiError::from(e);
            for (index, _, _) in writes {
                answers[index] = Some(Err(error.clone()));
            }
        }
    }
    let entries = answers
        .into_iter()
        .map(|answer| match answer.expect("every entry was answered") {
            Ok(entry) => entry,
            Err(e) => error_entry(&e),
        })
        .collect();
    BundleResponse {
        kind: "batch-response",
        entries,
    }
}

fn finish(
    fhir: &FhirService,
    caller: &Caller,
    op: WriteOp,
    kind: WriteKind,
    result: Result<WriteOutcome, Rejection>,
) -> Result<Answer, ApiError> {
    match kind {
        WriteKind::Create => fhir
            .finish_create(caller, op, result)
            .map(|w| written_entry(&w)),
        WriteKind::Update => finish_update(op, result).map(|w| written_entry(&w)),
        WriteKind::Delete => match result.map_err(rejection)? {
            WriteOutcome::Deleted { .. } => Ok(deleted_entry()),
            other => Err(ApiError::internal(format!(
                "storage answered a delete with {other:?}"
            ))),
        },
    }
}

/// Runs a transaction once; `Ok(None)` means a concurrent write invalidated a conditional
/// lookup and the caller should run it again.
fn transaction(
    fhir: &FhirService,
    caller: &Caller,
    mut entries: Vec<Entry>,
) -> Result<Option<BundleResponse>, ApiError> {
    let count = entries.len();
    check_unique_targets(&entries)?;
    // Assign ids to new resources first, so references between entries can be resolved.
    let mut resolved: HashMap<String, String> = HashMap::new();
    let mut assigned: HashMap<usize, String> = HashMap::new();
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
        let target = match &entry.if_none_exist {
            Some(condition) => conditional_target(fhir, caller, entry, condition)?,
            None => None,
        };
        let id = target.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
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
    let mut answers: Vec<Option<Answer>> = vec![None; count];
    let mut writes = Vec::new();
    let mut reads = Vec::new();
    for entry in entries {
        let index = entry.index;
        let fail = |e: ApiError| entry_failure(e, index);
        match (entry.method, entry.path.as_slice()) {
            (Method::Get, _) => reads.push(entry),
            (Method::Post, [rtype]) => {
                let resource = entry
                    .resource
                    .expect("parse_bundle checked POST has a resource");
                check_entry_type(&resource, rtype).map_err(fail)?;
                let id = &assigned[&index];
                if entry.if_none_exist.is_some()
                    && let Some(existing) =
                        fhir.storage.read(rtype, id).map_err(|e| fail(e.into()))?
                    && !existing.deleted
                {
                    answers[index] = Some(stored_entry_with_status(&existing, StatusCode::OK));
                    continue;
                }
                let condition = entry
                    .if_none_exist
                    .as_deref()
                    .map(parse_if_none_exist)
                    .transpose()
                    .map_err(fail)?;
                let new = fhir
                    .pipeline
                    .prepare(
                        caller,
                        resource,
                        id,
                        1,
                        crate::time::now_micros(),
                        &mut patients,
                    )
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
            _ => match plan_write(fhir, caller, entry, &mut patients).map_err(fail)? {
                Planned::Write { op, kind } => writes.push((index, op, kind)),
                Planned::Done(answer) => answers[index] = Some(answer.map_err(fail)?),
            },
        }
    }
    let ops: Vec<WriteOp> = writes.iter().map(|(_, op, _)| op.clone()).collect();
    let results = fhir.storage.write(ops, Atomicity::AllOrNothing)?;
    for ((index, op, kind), result) in writes.into_iter().zip(results) {
        if matches!(result, Ok(WriteOutcome::Existing { .. })) {
            // The conditional lookup raced with another writer; nothing was stored.
            return Ok(None);
        }
        answers[index] =
            Some(finish(fhir, caller, op, kind, result).map_err(|e| entry_failure(e, index))?);
    }
    for entry in reads {
        let index = entry.index;
        answers[index] = Some(match plan_write(fhir, caller, entry, &mut patients) {
            Ok(Planned::Done(Ok(answer))) => answer,
            Ok(Planned::Done(Err(e))) | Err(e) => error_entry(&e),
            Ok(Planned::Write { .. }) => unreachable!("GET entries never write"),
        });
    }
    let entries = answers
        .into_iter()
        .map(|a| a.expect("every entry was answered"))
        .collect();
    Ok(Some(BundleResponse {
        kind: "transaction-response",
        entries,
    }))
}

/// The existing resource a conditional create in a transaction resolves to, if any.
fn conditional_target(
    fhir: &FhirService,
    caller: &Caller,
    entry: &Entry,
    condition: &str,
) -> Result<Option<String>, ApiError> {
    let condition = parse_if_none_exist(condition).map_err(|e| entry_failure(e, entry.index))?;
    let resource = entry
        .resource
        .as_ref()
        .expect("parse_bundle checked POST has a resource");
    let rtype = &entry.path[0];
    let compartment = fhir.pipeline.compartment(caller, resource);
    let ids = fhir
        .storage
        .find_by_identifier(rtype, compartment.as_deref(), &condition)?;
    match ids.as_slice() {
        [] => Ok(None),
        [id] => Ok(Some(id.clone())),
        _ => Err(entry_failure(
            ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                IssueType::MultipleMatches,
                format!(
                    "ifNoneExist matched {} resources; it must match at most one",
                    ids.len()
                ),
            ),
            entry.index,
        )),
    }
}

/// Two entries of one transaction must not write the same resource.
fn check_unique_targets(entries: &[Entry]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for entry in entries {
        if matches!(entry.method, Method::Put | Method::Delete)
            && entry.path.len() == 2
            && !seen.insert(entry.path.join("/"))
        {
            return Err(entry_failure(
                ApiError::bad_request(format!(
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
fn entry_failure(mut error: ApiError, index: usize) -> ApiError {
    for issue in &mut error.issues {
        issue.message = format!("Bundle.entry[{index}]: {}", issue.message);
    }
    error
}

/// The answer to one entry: the resource it returns (as stored bytes, never re-parsed)
/// and its `response`.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `(type, id, JSON body)` of the resource the entry returns.
    resource: Option<(String, String, Vec<u8>)>,
    response: Value,
}

fn written_entry(w: &Written) -> Answer {
    Answer {
        resource: Some((w.resource_type.clone(), w.id.clone(), w.body.clone())),
        response: entry_response(w.status, &w.resource_type, &w.id, w.version, w.last_updated),
    }
}

fn stored_entry(stored: &phr_store::StoredResource) -> Answer {
    stored_entry_with_status(stored, StatusCode::OK)
}

fn stored_entry_with_status(stored: &phr_store::StoredResource, status: StatusCode) -> Answer {
    Answer {
        resource: Some((
            stored.resource_type.clone(),
            stored.id.clone(),
            stored.body.clone(),
        )),
        response: entry_response(
            status,
            &stored.resource_type,
            &stored.id,
            stored.version,
            stored.last_updated,
        ),
    }
}

fn deleted_entry() -> Answer {
    Answer {
        resource: None,
        response: json!({"status": "204 No Content"}),
    }
}

fn error_entry(error: &ApiError) -> Answer {
    Answer {
        resource: None,
        response: json!({
            "status": format!("{} {}", error.status.as_u16(), error.status.canonical_reason().unwrap_or("")),
            "outcome": phr_fhir::outcome::operation_outcome(&error.issues),
        }),
    }
}

/// A `batch-response` or `transaction-response`.
#[derive(Debug, Clone)]
pub struct BundleResponse {
    kind: &'static str,
    entries: Vec<Answer>,
}

impl BundleResponse {
    /// Each entry's `response` (status, location, outcome), in request order.
    pub fn responses(&self) -> impl Iterator<Item = &Value> {
        self.entries.iter().map(|a| &a.response)
    }

    /// `Type/id` of every resource an entry wrote or read.
    pub fn touched(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(|a| a.resource.as_ref())
            .map(|(t, id, _)| format!("{t}/{id}"))
            .collect()
    }

    /// The Bundle as JSON. Resource bodies are copied in as stored: a 300-entry answer costs
    /// no JSON parsing.
    pub fn to_json(&self, base_url: &str, prefer: Prefer) -> Vec<u8> {
        let size: usize = self
            .entries
            .iter()
            .map(|a| a.resource.as_ref().map_or(0, |r| r.2.len()) + 256)
            .sum();
        let mut out = Vec::with_capacity(size + 64);
        out.extend_from_slice(br#"{"resourceType":"Bundle","type":""#);
        out.extend_from_slice(self.kind.as_bytes());
        out.extend_from_slice(br#"","entry":["#);
        for (i, answer) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'{');
            if let Some((t, id, body)) = &answer.resource {
                out.extend_from_slice(br#""fullUrl":"#);
                serde_json::to_writer(&mut out, &full_url(base_url, t, id))
                    .expect("writing to a Vec cannot fail");
                out.push(b',');
                if prefer.return_ == Return::Representation {
                    out.extend_from_slice(br#""resource":"#);
                    out.extend_from_slice(body);
                    out.push(b',');
                }
            }
            out.extend_from_slice(br#""response":"#);
            serde_json::to_writer(&mut out, &answer.response)
                .expect("writing to a Vec cannot fail");
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// A `history` Bundle, newest version first.
pub fn history_bundle(base_url: &str, page: &HistoryPage, self_link: &str) -> Value {
    let entries: Vec<Value> = page
        .versions
        .iter()
        .map(|v| {
            let url = full_url(base_url, &v.resource_type, &v.id);
            let method = if v.deleted {
                "DELETE"
            } else if v.version == 1 {
                "POST"
            } else {
                "PUT"
            };
            let request_url = if method == "POST" {
                v.resource_type.clone()
            } else {
                format!("{}/{}", v.resource_type, v.id)
            };
            let status = if v.deleted {
                "204 No Content"
            } else if v.version == 1 {
                "201 Created"
            } else {
                "200 OK"
            };
            let mut entry = json!({
                "fullUrl": url,
                "request": {"method": method, "url": request_url},
                "response": {
                    "status": status,
                    "etag": format!("W/\"{}\"", v.version),
                    "lastModified": to_instant(v.last_updated),
                },
            });
            if !v.deleted
                && let Ok(resource) = serde_json::from_slice::<Value>(&v.body)
            {
                entry
                    .as_object_mut()
                    .expect("entry is an object")
                    .shift_remove("request");
                let mut ordered = serde_json::Map::new();
                ordered.insert("fullUrl".into(), entry["fullUrl"].take());
                ordered.insert("resource".into(), resource);
                ordered.insert(
                    "request".into(),
                    json!({"method": method, "url": request_url}),
                );
                ordered.insert("response".into(), entry["response"].take());
                entry = Value::Object(ordered);
            }
            entry
        })
        .collect();
    let mut links = vec![json!({"relation": "self", "url": self_link})];
    if let Some(next) = &page.next {
        links.push(json!({"relation": "next", "url": page_link(self_link, next)}));
    }
    json!({
        "resourceType": "Bundle",
        "type": "history",
        "link": links,
        "entry": entries,
    })
}

/// `link` with its `_page` parameter replaced by `cursor`.
pub fn page_link(link: &str, cursor: &str) -> String {
    let (path, query) = link.split_once('?').unwrap_or((link, ""));
    let mut params: Vec<(String, String)> = super::parse_query(query)
        .into_iter()
        .filter(|(name, _)| name != "_page")
        .collect();
    params.push(("_page".into(), cursor.to_string()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("{path}?{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn bundle_entry_limit_is_enforced() {
        let entries: Vec<Value> = (0..3)
            .map(|_| json!({"request": {"method": "GET", "url": "Patient/1"}}))
            .collect();
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": entries});
        let err = parse_bundle(bundle, 2, "http://x").unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn entries_need_a_method_and_url() {
        let bundle = json!({"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"url": "Patient"}}]});
        let err = parse_bundle(bundle, 10, "http://x").unwrap_err();
        assert_eq!(
            err.issues[0].expression.as_deref(),
            Some("Bundle.entry[0].request.method")
        );
    }

    #[test]
    fn page_links_replace_the_cursor() {
        assert_eq!(
            page_link("http://x/Patient/_history?_count=2&_page=a", "b+c"),
            "http://x/Patient/_history?_count=2&_page=b%2Bc"
        );
        assert_eq!(
            page_link("http://x/_history", "z"),
            "http://x/_history?_page=z"
        );
    }

    #[test]
    fn transaction_processing_order_is_delete_post_put_get() {
        let mut methods = [Method::Get, Method::Put, Method::Post, Method::Delete];
        methods.sort();
        assert_eq!(
            methods,
            [Method::Delete, Method::Post, Method::Put, Method::Get]
        );
    }
}
