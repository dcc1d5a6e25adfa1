//! The FHIR interactions as plain, blocking functions over the storage engine: create,
//! read, vread, update, delete, history. HTTP handlers and Bundle processing both call these,
//! so a batch entry behaves exactly like the same request sent alone.

use std::collections::HashSet;
use std::sync::Arc;

use axum::http::StatusCode;
use phr_fhir::{Issue, IssueType};
use phr_store::{
    Atomicity, HistoryPage, HistoryQuery, IdentifierCondition, NewVersion, Rejection, Storage,
    StoredResource, WriteOp, WriteOutcome,
};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::pipeline::{Caller, PatientDirectory, Pipeline};
use crate::time::{now_micros, to_instant};
use phr_auth::{Access, Interaction};

/// Update-as-create is allowed for these types only (Kanta's CapabilityStatement).
const UPDATE_CREATE_TYPES: &[&str] = &["Patient"];
/// Types that cannot be deleted through the API.
const UNDELETABLE_TYPES: &[&str] = &["Patient"];
/// How often an update retries when another writer changed the resource in between.
const UPDATE_RETRIES: usize = 5;

/// What a successful write produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub status: StatusCode,
    pub resource_type: String,
    pub id: String,
    pub version: u64,
    pub last_updated: i64,
    /// The stored JSON (the version just written, or the existing match of a conditional
    /// create).
    pub body: Vec<u8>,
}

pub struct FhirService {
    pub storage: Arc<dyn Storage>,
    pub pipeline: Pipeline,
    pub subsetter: super::search::Subsetter,
    pub conformance: super::conformance::Conformance,
    /// When this process started: the `lastUpdated` of the generated conformance resources.
    started: i64,
}

impl FhirService {
    pub fn new(storage: Arc<dyn Storage>, pipeline: Pipeline) -> Self {
        FhirService {
            storage,
            pipeline,
            subsetter: super::search::Subsetter::new(),
            conformance: super::conformance::Conformance::new(),
            started: now_micros(),
        }
    }

    /// A Patient lookup for one request (cached: a Bundle's entries mostly name one Patient).
    pub fn patients(&self) -> Patients<'_> {
        Patients {
            storage: self.storage.as_ref(),
            known: HashSet::new(),
            pending: HashSet::new(),
        }
    }

    /// Types nobody writes through the API: the catalogue's conformance resources and the
    /// audit trail.
    pub fn check_writable(&self, resource_type: &str) -> Result<(), ApiError> {
        if super::conformance::is_conformance_type(resource_type) {
            return Err(super::conformance::read_only(resource_type));
        }
        if resource_type == "AuditEvent" {
            return Err(ApiError::method_not_allowed(
                "audit records cannot be created, changed or deleted through the API",
            ));
        }
        Ok(())
    }

    /// A catalogue conformance resource as if stored (version 1, written at start-up).
    fn conformance_read(&self, resource_type: &str, id: &str) -> Result<StoredResource, ApiError> {
        let resource = self.conformance.read(resource_type, id)?;
        let Value::Object(map) = resource.clone() else {
            unreachable!("conformance resources are objects")
        };
        let body = serde_json::to_vec(&Value::Object(stamp(map, id, 1, self.started)))
            .expect("serde_json::Value always serializes");
        Ok(StoredResource {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            version: 1,
            last_updated: self.started,
            deleted: false,
            body,
            patient: None,
            app: None,
            created_by: None,
        })
    }

    pub fn check_type(&self, resource_type: &str) -> Result<(), ApiError> {
        if self.pipeline.is_resource_type(resource_type) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "'{resource_type}' is not a FHIR R4 resource type served here"
            )))
        }
    }

    /// The current version; 404 when it never existed, 410 when deleted.
    pub fn read(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
    ) -> Result<StoredResource, ApiError> {
        self.check_type(resource_type)?;
        let access = caller.permit(resource_type, Interaction::Read)?;
        if super::conformance::is_conformance_type(resource_type) {
            return self.conformance_read(resource_type, id);
        }
        let stored = self.storage.read(resource_type, id)?;
        let stored = stored
            .ok_or_else(|| ApiError::not_found(format!("{resource_type}/{id} is not known")))?;
        caller.may_see(&stored)?;
        if stored.deleted {
            return Err(ApiError::gone(format!("{resource_type}/{id} was deleted")));
        }
        check_filtered(&access, &stored)?;
        Ok(stored)
    }

    pub fn vread(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        version: &str,
    ) -> Result<StoredResource, ApiError> {
        self.check_type(resource_type)?;
        let access = caller.permit(resource_type, Interaction::Read)?;
        if super::conformance::is_conformance_type(resource_type) {
            return match version {
                "1" => self.conformance_read(resource_type, id),
                _ => Err(ApiError::not_found(format!(
                    "{resource_type}/{id} has only version 1"
                ))),
            };
        }
        let number: u64 = version.parse().map_err(|_| {
            ApiError::not_found(format!(
                "'{version}' is not a version of {resource_type}/{id}"
            ))
        })?;
        let stored = self
            .storage
            .vread(resource_type, id, number)?
            .ok_or_else(|| {
                ApiError::not_found(format!("{resource_type}/{id} has no version {number}"))
            })?;
        caller.may_see(&stored)?;
        if stored.deleted {
            return Err(ApiError::gone(format!(
                "version {number} of {resource_type}/{id} is a deletion"
            )));
        }
        check_filtered(&access, &stored)?;
        Ok(stored)
    }

    pub fn history(
        &self,
        caller: &Caller,
        mut query: HistoryQuery,
    ) -> Result<HistoryPage, ApiError> {
        if let Some(resource_type) = &query.resource_type {
            self.check_type(resource_type)?;
            let interaction = if query.id.is_some() {
                Interaction::Read
            } else {
                Interaction::Search
            };
            if let Access::Filtered(_) = caller.permit(resource_type, interaction)? {
                return Err(ApiError::forbidden(
                    "history is not available to tokens restricted to some categories; search instead",
                ));
            }
        } else if caller.access.is_some() {
            return Err(ApiError::forbidden(
                "system-wide history is not available to applications",
            ));
        }
        query.compartment = caller.compartment().map(str::to_string);
        if let (Some(resource_type), Some(id)) = (&query.resource_type, &query.id) {
            // An instance's history is visible exactly when the instance is.
            match self.storage.read(resource_type, id)? {
                Some(current) => caller.may_see(&current)?,
                None => {
                    return Err(ApiError::not_found(format!(
                        "{resource_type}/{id} is not known"
                    )));
                }
            }
            query.compartment = None;
        }
        Ok(self.storage.history(&query)?)
    }

    /// Create with a server-assigned id; with `if_none_exist`, returns the existing match
    /// instead (200) when exactly one exists.
    pub fn create(
        &self,
        caller: &Caller,
        resource: Value,
        if_none_exist: Option<&str>,
    ) -> Result<Written, ApiError> {
        let prepared =
            self.prepare_create(caller, resource, if_none_exist, &mut self.patients())?;
        match prepared {
            PreparedCreate::Existing(written) => Ok(written),
            PreparedCreate::New { op } => {
                let mut results = self
                    .storage
                    .write(vec![op.clone()], Atomicity::Independent)?;
                self.finish_create(caller, op, results.remove(0))
            }
        }
    }

    /// The first half of a create: checks, conditional lookup, the prepared version.
    pub fn prepare_create(
        &self,
        caller: &Caller,
        resource: Value,
        if_none_exist: Option<&str>,
        patients: &mut Patients,
    ) -> Result<PreparedCreate, ApiError> {
        let resource_type = resource_type_of(&resource)?;
        self.check_type(&resource_type)?;
        self.check_writable(&resource_type)?;
        caller.permit_resource(Interaction::Create, &resource)?;
        let condition = if_none_exist.map(parse_if_none_exist).transpose()?;
        let compartment = self.pipeline.compartment(caller, &resource);
        let id = uuid::Uuid::new_v4().to_string();
        let new = self
            .pipeline
            .prepare(caller, resource, &id, 1, now_micros(), patients)?;
        if let Some(condition) = &condition {
            let ids = self.storage.find_by_identifier(
                &new.resource_type,
                compartment.as_deref(),
                condition,
            )?;
            match ids.as_slice() {
                [] => {}
                [existing] => {
                    return Ok(PreparedCreate::Existing(
                        self.existing(&new.resource_type, existing)?,
                    ));
                }
                _ => return Err(multiple_matches(&new.resource_type, ids.len())),
            }
        }
        Ok(PreparedCreate::New {
            op: WriteOp::Create {
                new,
                if_none_exist: condition,
            },
        })
    }

    /// The second half of a create: turns the storage outcome into a result.
    pub fn finish_create(
        &self,
        _caller: &Caller,
        op: WriteOp,
        result: Result<WriteOutcome, Rejection>,
    ) -> Result<Written, ApiError> {
        let WriteOp::Create { new, .. } = op else {
            unreachable!("finish_create takes a create")
        };
        match result.map_err(rejection)? {
            WriteOutcome::Created { version } => Ok(written(StatusCode::CREATED, new, version)),
            WriteOutcome::Existing { ids } => match ids.as_slice() {
                [existing] => self.existing(&new.resource_type, existing),
                _ => Err(multiple_matches(&new.resource_type, ids.len())),
            },
            other => Err(ApiError::internal(format!(
                "storage answered a create with {other:?}"
            ))),
        }
    }

    fn existing(&self, resource_type: &str, id: &str) -> Result<Written, ApiError> {
        let stored = self
            .storage
            .read(resource_type, id)?
            .ok_or_else(|| ApiError::internal("a conditional match vanished while being read"))?;
        Ok(Written {
            status: StatusCode::OK,
            resource_type: stored.resource_type,
            id: stored.id,
            version: stored.version,
            last_updated: stored.last_updated,
            body: stored.body,
        })
    }

    /// Update (PUT). Creates only for types that allow update-as-create.
    pub fn update(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<u64>,
    ) -> Result<Written, ApiError> {
        self.check_type(resource_type)?;
        check_body_identity(&resource, resource_type, id)?;
        for _ in 0..UPDATE_RETRIES {
            let op = self.prepare_update(
                caller,
                resource_type,
                id,
                resource.clone(),
                if_match,
                &mut self.patients(),
            )?;
            let mut results = self
                .storage
                .write(vec![op.clone()], Atomicity::Independent)?;
            match results.remove(0) {
                Err(Rejection::VersionConflict { .. }) if if_match.is_none() => continue,
                result => return finish_update(op, result),
            }
        }
        Err(ApiError::new(
            StatusCode::CONFLICT,
            IssueType::Conflict,
            format!("{resource_type}/{id} kept changing while being updated; try again"),
        ))
    }

    pub fn prepare_update(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        resource: Value,
        if_match: Option<u64>,
        patients: &mut Patients,
    ) -> Result<WriteOp, ApiError> {
        self.check_writable(resource_type)?;
        caller.permit_resource(Interaction::Update, &resource)?;
        let current = self.storage.read(resource_type, id)?;
        if let Some(current) = &current {
            caller.may_see(current)?;
            let access = caller.permit(resource_type, Interaction::Update)?;
            check_filtered(&access, current)?;
        }
        let current_version = current.as_ref().map(|c| c.version);
        if let Some(expected) = if_match
            && current_version != Some(expected)
        {
            return Err(ApiError::precondition(match current_version {
                Some(v) => format!(
                    "If-Match expects version {expected} of {resource_type}/{id}, the current is {v}"
                ),
                None => format!(
                    "If-Match expects version {expected} of {resource_type}/{id}, which does not exist"
                ),
            }));
        }
        let create_if_missing = UPDATE_CREATE_TYPES.contains(&resource_type);
        if current.is_none() && !create_if_missing {
            return Err(ApiError::method_not_allowed(format!(
                "{resource_type}/{id} does not exist, and this server assigns {resource_type} ids itself: \
                 create it with POST"
            )));
        }
        let version = current_version.map_or(1, |v| v + 1);
        let new = self
            .pipeline
            .prepare(caller, resource, id, version, now_micros(), patients)?;
        Ok(WriteOp::Update {
            new,
            create_if_missing,
        })
    }

    /// Delete: a tombstone version. Deleting something already deleted succeeds again.
    pub fn delete(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<(), ApiError> {
        self.check_type(resource_type)?;
        for _ in 0..UPDATE_RETRIES {
            let Some(op) = self.prepare_delete(caller, resource_type, id, if_match)? else {
                return Ok(());
            };
            let mut results = self.storage.write(vec![op], Atomicity::Independent)?;
            match results.remove(0) {
                Ok(_) => return Ok(()),
                Err(Rejection::VersionConflict { .. }) if if_match.is_none() => continue,
                Err(other) => return Err(rejection(other)),
            }
        }
        Err(ApiError::new(
            StatusCode::CONFLICT,
            IssueType::Conflict,
            format!("{resource_type}/{id} kept changing while being deleted; try again"),
        ))
    }

    /// The delete to write, or None when the resource is already deleted.
    pub fn prepare_delete(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        if_match: Option<u64>,
    ) -> Result<Option<WriteOp>, ApiError> {
        self.check_writable(resource_type)?;
        if UNDELETABLE_TYPES.contains(&resource_type) {
            return Err(ApiError::method_not_allowed(format!(
                "{resource_type} resources cannot be deleted through the API"
            )));
        }
        let access = caller.permit(resource_type, Interaction::Delete)?;
        let current = self
            .storage
            .read(resource_type, id)?
            .ok_or_else(|| ApiError::not_found(format!("{resource_type}/{id} is not known")))?;
        caller.may_see(&current)?;
        check_filtered(&access, &current)?;
        if let Some(expected) = if_match
            && current.version != expected
        {
            return Err(ApiError::precondition(format!(
                "If-Match expects version {expected} of {resource_type}/{id}, the current is {}",
                current.version
            )));
        }
        if current.deleted {
            return Ok(None);
        }
        caller.may_delete(&current)?;
        Ok(Some(WriteOp::Delete {
            resource_type: resource_type.to_string(),
            id: id.to_string(),
            version: current.version + 1,
            last_updated: now_micros(),
            app: caller.app_id().map(str::to_string),
        }))
    }
}

/// Patients known to exist during one request: stored ones (looked up once) and those a
/// transaction is about to create.
pub struct Patients<'a> {
    storage: &'a dyn Storage,
    known: HashSet<String>,
    pending: HashSet<String>,
}

impl Patients<'_> {
    /// Counts `id` as existing: a transaction creates it along with the rest.
    pub fn add_pending(&mut self, id: &str) {
        self.pending.insert(id.to_string());
    }
}

impl PatientDirectory for Patients<'_> {
    fn exists(&mut self, id: &str) -> Result<bool, ApiError> {
        if self.known.contains(id) || self.pending.contains(id) {
            return Ok(true);
        }
        let live = matches!(self.storage.read("Patient", id)?, Some(p) if !p.deleted);
        if live {
            self.known.insert(id.to_string());
        }
        Ok(live)
    }
}

/// Under granular scopes, a stored resource outside them does not exist for the caller.
fn check_filtered(access: &Access, stored: &StoredResource) -> Result<(), ApiError> {
    if let Access::Filtered(_) = access
        && !stored.deleted
    {
        let resource: Value = serde_json::from_slice(&stored.body)
            .map_err(|_| ApiError::internal("a stored resource is not valid JSON"))?;
        if !access.permits_resource(&resource) {
            return Err(ApiError::not_found(format!(
                "{}/{} is not known",
                stored.resource_type, stored.id
            )));
        }
    }
    Ok(())
}

/// A create after its checks: either the existing match of a conditional create, or the
/// operation to write.
pub enum PreparedCreate {
    Existing(Written),
    New { op: WriteOp },
}

pub fn finish_update(
    op: WriteOp,
    result: Result<WriteOutcome, Rejection>,
) -> Result<Written, ApiError> {
    let WriteOp::Update { new, .. } = op else {
        unreachable!("finish_update takes an update")
    };
    match result.map_err(rejection)? {
        WriteOutcome::Updated { version } => Ok(written(StatusCode::OK, new, version)),
        WriteOutcome::Created { version } => Ok(written(StatusCode::CREATED, new, version)),
        other => Err(ApiError::internal(format!(
            "storage answered an update with {other:?}"
        ))),
    }
}

fn written(status: StatusCode, new: NewVersion, version: u64) -> Written {
    Written {
        status,
        resource_type: new.resource_type,
        id: new.id,
        version,
        last_updated: new.last_updated,
        body: new.body,
    }
}

pub fn rejection(rejection: Rejection) -> ApiError {
    match &rejection {
        Rejection::VersionConflict { .. } => ApiError::new(
            StatusCode::CONFLICT,
            IssueType::Conflict,
            rejection.to_string(),
        ),
        Rejection::AlreadyExists { .. } => ApiError::new(
            StatusCode::CONFLICT,
            IssueType::Duplicate,
            rejection.to_string(),
        ),
        Rejection::NotFound { .. } => ApiError::not_found(rejection.to_string()),
    }
}

fn multiple_matches(resource_type: &str, count: usize) -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        IssueType::MultipleMatches,
        format!(
            "If-None-Exist matched {count} {resource_type} resources; it must match at most one"
        ),
    )
}

/// `If-None-Exist: identifier=[system|]value` — the only condition Kanta allows.
pub fn parse_if_none_exist(text: &str) -> Result<IdentifierCondition, ApiError> {
    let text = text.trim().trim_start_matches('?');
    let bad = || {
        ApiError::bad_request(format!(
            "If-None-Exist supports only 'identifier=[system|]value', not '{text}'"
        ))
    };
    let params: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect();
    let [(name, value)] = params.as_slice() else {
        return Err(bad());
    };
    if name != "identifier" || value.is_empty() || value.contains(',') {
        return Err(bad());
    }
    Ok(match value.split_once('|') {
        Some((system, code)) if !code.is_empty() => IdentifierCondition {
            system: (!system.is_empty()).then(|| system.to_string()),
            value: code.to_string(),
        },
        Some(_) => return Err(bad()),
        None => IdentifierCondition {
            system: None,
            value: value.clone(),
        },
    })
}

/// The `resourceType` of a body, which must be a JSON object.
pub fn resource_type_of(resource: &Value) -> Result<String, ApiError> {
    let object = resource
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the body must be a FHIR resource (a JSON object)"))?;
    match object.get("resourceType") {
        Some(Value::String(t)) if !t.is_empty() => Ok(t.clone()),
        _ => Err(ApiError::with_issues(
            StatusCode::BAD_REQUEST,
            vec![
                Issue::error(IssueType::Required, "the resource has no resourceType")
                    .at("resourceType"),
            ],
        )),
    }
}

/// A PUT body must be the resource the URL names.
fn check_body_identity(resource: &Value, resource_type: &str, id: &str) -> Result<(), ApiError> {
    let body_type = resource_type_of(resource)?;
    if body_type != resource_type {
        return Err(ApiError::bad_request(format!(
            "the body is a {body_type}, but the URL names a {resource_type}"
        )));
    }
    match resource.get("id") {
        Some(Value::String(body_id)) if body_id == id => Ok(()),
        Some(Value::String(body_id)) => Err(ApiError::bad_request(format!(
            "the body's id '{body_id}' differs from the id '{id}' in the URL"
        ))),
        _ => Err(ApiError::with_issues(
            StatusCode::BAD_REQUEST,
            vec![
                Issue::error(
                    IssueType::Required,
                    format!("an update must carry the id '{id}' in the body"),
                )
                .at(format!("{resource_type}.id")),
            ],
        )),
    }
}

/// Sets `id`, `meta.versionId` and `meta.lastUpdated`, keeping everything else the client
/// sent, and orders the object `resourceType`, `id`, `meta`, then the rest as sent.
pub fn stamp(
    resource: Map<String, Value>,
    id: &str,
    version: u64,
    last_updated: i64,
) -> Map<String, Value> {
    let mut rest = resource;
    let resource_type = rest.shift_remove("resourceType").unwrap_or(Value::Null);
    rest.shift_remove("id");
    let mut meta = match rest.shift_remove("meta") {
        Some(Value::Object(meta)) => meta,
        _ => Map::new(),
    };
    meta.shift_remove("versionId");
    meta.shift_remove("lastUpdated");
    let mut stamped_meta = Map::new();
    stamped_meta.insert("versionId".into(), Value::String(version.to_string()));
    stamped_meta.insert(
        "lastUpdated".into(),
        Value::String(to_instant(last_updated)),
    );
    stamped_meta.extend(meta);

    let mut out = Map::with_capacity(rest.len() + 3);
    out.insert("resourceType".into(), resource_type);
    out.insert("id".into(), Value::String(id.to_string()));
    out.insert("meta".into(), Value::Object(stamped_meta));
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn if_none_exist_accepts_identifier_with_and_without_system() {
        let c = parse_if_none_exist("identifier=urn:ietf:rfc:3986|urn:uuid:1").unwrap();
        assert_eq!(c.system.as_deref(), Some("urn:ietf:rfc:3986"));
        assert_eq!(c.value, "urn:uuid:1");
        let c = parse_if_none_exist("identifier=abc").unwrap();
        assert_eq!((c.system, c.value.as_str()), (None, "abc"));
    }

    #[test]
    fn if_none_exist_rejects_other_conditions() {
        for bad in [
            "code=1",
            "identifier=",
            "identifier=a&code=b",
            "identifier=a,b",
            "identifier=sys|",
            "",
        ] {
            assert!(
                parse_if_none_exist(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn stamp_puts_id_and_meta_first_and_keeps_the_rest() {
        let body = json!({"status": "final", "resourceType": "Observation", "id": "client",
            "meta": {"profile": ["p"], "versionId": "9"}});
        let Value::Object(map) = body else {
            unreachable!()
        };
        let out = Value::Object(stamp(map, "abc", 2, 0));
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"resourceType":"Observation","id":"abc","meta":{"versionId":"2","lastUpdated":"1970-01-01T00:00:00.000Z","profile":["p"]},"status":"final"}"#
        );
    }

    #[test]
    fn update_body_must_name_the_url_resource() {
        let ok = json!({"resourceType": "Patient", "id": "a"});
        assert!(check_body_identity(&ok, "Patient", "a").is_ok());
        assert!(check_body_identity(&ok, "Patient", "b").is_err());
        assert!(check_body_identity(&ok, "Observation", "a").is_err());
        assert!(check_body_identity(&json!({"resourceType": "Patient"}), "Patient", "a").is_err());
    }
}
