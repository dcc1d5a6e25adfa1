//! Production content limits: in production mode an accepted wellbeing application reads and
//! writes only the data contents (catalogue codes such as `blood-pressure`) joint testing
//! accepted it for. The authorization server hands the limits over with the token
//! ([`phr_auth::AccessContext::contents`]); this module applies them to every interaction.
//!
//! - A write (create, update, delete, a Bundle entry) of a resource whose content is not
//!   accepted for writing is 403, naming the content.
//! - A read, vread or instance history of a resource whose content is not accepted for
//!   reading is 403, naming the content (the resource is the citizen's own; the limit is on
//!   the application, not a secret).
//! - A search gets a `_profile` clause for the accepted contents' profiles of the searched
//!   type, so other contents are never read, counted or paged; a type with no accepted
//!   content is 403. Contents that share Kanta's common vital-signs profile are told apart by
//!   their code: a search page drops those not accepted (its `total` counts by profile).
//!
//! The citizen's Patient resource is no data content: it is governed by the token's scopes
//! alone. Never decides anything for callers without limits (sandbox mode, the portal,
//! operators, professionals).

use phr_auth::ContentRights;
use phr_catalog::{Catalog, DataContent};
use phr_search::{ParseOptions, SearchQuery};
use phr_store::{SearchPage, StoredResource};
use serde_json::Value;

use crate::caller::Caller;
use crate::error::{Error, ErrorKind, Result};

/// Resource types that are no data content.
const NOT_CONTENT_TYPES: &[&str] = &["Patient"];

/// The limits of `caller`, if any apply.
pub(crate) fn limits(caller: &Caller) -> Option<&ContentRights> {
    match caller {
        Caller::App(context) => context.contents.as_ref(),
        _ => None,
    }
}

/// The content of a resource, by its declared profile (and code, for vital signs).
fn content_of(resource: &Value) -> Option<&'static DataContent> {
    Catalog::get().content_of(resource)
}

fn resource_type(resource: &Value) -> &str {
    resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("Resource")
}

/// Why a resource is refused: the content it is, or that it is none.
fn refusal(resource: &Value, action: &str, accepted: &std::collections::BTreeSet<String>) -> Error {
    let accepted = if accepted.is_empty() {
        "none".to_string()
    } else {
        accepted.iter().cloned().collect::<Vec<_>>().join(", ")
    };
    match content_of(resource) {
        Some(content) => Error::forbidden(format!(
            "the application is not accepted to {action} the data content {} ({}) in production; accepted for {action}ing: {accepted}",
            content.kind.key(),
            content.names.en
        )),
        None => Error::forbidden(format!(
            "this {} is no data content the application is accepted to {action} in production; accepted for {action}ing: {accepted}",
            resource_type(resource)
        )),
    }
}

/// A write of `resource` (its new body) by `caller`.
pub(crate) fn check_write(caller: &Caller, resource: &Value) -> Result<()> {
    let Some(rights) = limits(caller) else {
        return Ok(());
    };
    if NOT_CONTENT_TYPES.contains(&resource_type(resource)) {
        return Ok(());
    }
    match content_of(resource) {
        Some(content) if rights.write.contains(content.kind.key()) => Ok(()),
        _ => Err(refusal(resource, "write", &rights.write)),
    }
}

/// A write (a delete) of what is stored.
pub(crate) fn check_write_stored(caller: &Caller, stored: &StoredResource) -> Result<()> {
    if limits(caller).is_none() || stored.deleted {
        return Ok(());
    }
    check_write(caller, &body(stored)?)
}

/// A read of what is stored.
pub(crate) fn check_read(caller: &Caller, stored: &StoredResource) -> Result<()> {
    let Some(rights) = limits(caller) else {
        return Ok(());
    };
    if stored.deleted || NOT_CONTENT_TYPES.contains(&stored.resource_type.as_str()) {
        return Ok(());
    }
    let resource = body(stored)?;
    match content_of(&resource) {
        Some(content) if rights.read.contains(content.kind.key()) => Ok(()),
        _ => Err(refusal(&resource, "read", &rights.read)),
    }
}

fn body(stored: &StoredResource) -> Result<Value> {
    serde_json::from_slice(&stored.body)
        .map_err(|_| Error::internal("a stored resource is not valid JSON"))
}

/// Confines a search of `caller` to the accepted contents of the searched type: `Some`
/// with the accepted content codes when a limit applies (then [`confine_page`] the result).
pub(crate) fn confine_search(caller: &Caller, query: &mut SearchQuery) -> Result<Option<()>> {
    let Some(rights) = limits(caller) else {
        return Ok(None);
    };
    if NOT_CONTENT_TYPES.contains(&query.resource_type.as_str()) {
        return Ok(None);
    }
    let mut profiles: Vec<&str> = Catalog::get()
        .contents()
        .iter()
        .filter(|c| c.resource_type == query.resource_type && rights.read.contains(c.kind.key()))
        .map(|c| c.profile)
        .collect();
    profiles.sort_unstable();
    profiles.dedup();
    if profiles.is_empty() {
        return Err(Error::forbidden(format!(
            "the application is not accepted to read any data content stored as {} in production; accepted for reading: {}",
            query.resource_type,
            if rights.read.is_empty() {
                "none".to_string()
            } else {
                rights.read.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        )));
    }
    let options = ParseOptions {
        kanta_rules: false,
        ..ParseOptions::default()
    };
    let params = vec![("_profile".to_string(), profiles.join(","))];
    let parsed = phr_search::parse(&query.resource_type, &params, &options)
        .map_err(|issues| Error::with_issues(ErrorKind::Forbidden, issues))?;
    query.clauses.extend(parsed.query.clauses);
    Ok(Some(()))
}

/// An aggregate of `caller` reads these codes (`system|code`) of `resource_type`: each must
/// be a code of a content accepted for reading (contents sharing a profile are told apart by
/// code, which an aggregate cannot do per resource afterwards).
pub(crate) fn check_codes(caller: &Caller, resource_type: &str, codes: &[String]) -> Result<()> {
    let Some(rights) = limits(caller) else {
        return Ok(());
    };
    for token in codes {
        let accepted = Catalog::get().contents().iter().any(|c| {
            c.resource_type == resource_type
                && rights.read.contains(c.kind.key())
                && c.codes.iter().any(|code| &code.token() == token)
        });
        if !accepted {
            return Err(Error::forbidden(format!(
                "the application is not accepted to read the data content with code {token} in production"
            )));
        }
    }
    Ok(())
}

/// Drops from a page what the caller may not read (contents sharing a profile with an
/// accepted one; `_include`d resources of other contents).
pub(crate) fn confine_page(caller: &Caller, page: &mut SearchPage) {
    if limits(caller).is_none() {
        return;
    }
    page.matches.retain(|r| check_read(caller, r).is_ok());
    page.included.retain(|r| check_read(caller, r).is_ok());
}

#[cfg(test)]
mod tests {
    use super::*;
    use phr_auth::AccessContext;
    use std::collections::BTreeSet;

    fn app(read: &[&str], write: &[&str]) -> Caller {
        let set = |codes: &[&str]| codes.iter().map(|c| c.to_string()).collect::<BTreeSet<_>>();
        Caller::App(AccessContext {
            patient: Some(PATIENT.into()),
            app_id: "a".into(),
            app_name: "A".into(),
            scopes: phr_auth::ScopeSet::parse("patient/*.cruds").unwrap(),
            scope: "patient/*.cruds".into(),
            grant_id: Some("g".into()),
            token_id: "t".into(),
            expires_at: 0,
            org: None,
            professional: None,
            contents: Some(ContentRights {
                read: set(read),
                write: set(write),
            }),
            fhir_versions: None,
        })
    }

    fn observation(profile: &str, code: &str) -> Value {
        serde_json::json!({
            "resourceType": "Observation",
            "meta": {"profile": [profile]},
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        })
    }

    const WEIGHT: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight";
    const VITALS: &str = "http://phr.kanta.fi/StructureDefinition/fiphr-sd-vitalsigns";

    fn stored(resource: &Value) -> StoredResource {
        StoredResource {
            resource_type: "Observation".into(),
            id: "o1".into(),
            version: 1,
            last_updated: 0,
            deleted: false,
            body: serde_json::to_vec(resource).unwrap(),
            patient: Some("p1".into()),
            app: None,
            created_by: None,
        }
    }

    #[test]
    fn writes_and_reads_are_limited_to_the_accepted_contents() {
        let caller = app(&["body-weight", "heart-rate"], &["body-weight"]);
        let weight = observation(WEIGHT, "29463-7");
        assert!(check_write(&caller, &weight).is_ok());
        assert!(check_read(&caller, &stored(&weight)).is_ok());
        let heart = observation(VITALS, "8867-4");
        let error = check_write(&caller, &heart).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Forbidden);
        assert!(
            format!("{error:?}").contains("heart-rate"),
            "the refusal names the content: {error:?}"
        );
        assert!(check_read(&caller, &stored(&heart)).is_ok());
        // The same profile, another content: told apart by the code.
        let respiration = observation(VITALS, "9279-1");
        assert!(check_read(&caller, &stored(&respiration)).is_err());
        assert!(check_write(&caller, &serde_json::json!({"resourceType": "Patient"})).is_ok());
        let unknown = observation("http://example.org/other", "1");
        assert!(check_write(&caller, &unknown).is_err());
        // Without limits nothing is decided here.
        let citizen = Caller::Citizen {
            patient: "p1".into(),
        };
        assert!(check_write(&citizen, &heart).is_ok());
    }

    #[test]
    fn a_search_is_confined_to_the_accepted_profiles_of_its_type() {
        let caller = app(&["body-weight"], &[]);
        let mut query = SearchQuery {
            resource_type: "Observation".into(),
            ..SearchQuery::default()
        };
        assert_eq!(confine_search(&caller, &mut query).unwrap(), Some(()));
        assert_eq!(query.clauses.len(), 1);
        let mut care_plans = SearchQuery {
            resource_type: "CarePlan".into(),
            ..SearchQuery::default()
        };
        let error = confine_search(&caller, &mut care_plans).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Forbidden);
        let mut patients = SearchQuery {
            resource_type: "Patient".into(),
            ..SearchQuery::default()
        };
        assert_eq!(confine_search(&caller, &mut patients).unwrap(), None);
    }

    fn service() -> (tempfile::TempDir, crate::FhirService) {
        let dir = tempfile::tempdir().unwrap();
        let storage = phr_store::sqlite::SqliteStore::open(&dir.path().join("phr.db")).unwrap();
        let fhir = crate::FhirService::new(
            std::sync::Arc::new(storage),
            crate::pipeline::Pipeline::new(),
            crate::service::Settings::default(),
        );
        (dir, fhir)
    }

    const PATIENT: &str = "3f2b8d3e-6f0a-4c57-9a51-6a2f3c2b1e01";

    fn measurement(
        profile: &str,
        (code, display): (&str, &str),
        unit: &str,
        ucum: &str,
        value: f64,
    ) -> Value {
        let id = uuid::Uuid::new_v4();
        serde_json::json!({
            "resourceType": "Observation",
            "meta": {"profile": [profile]},
            "language": "fi",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Mittaus</div>"},
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{id}")}],
            "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
            "subject": {"reference": format!("Patient/{PATIENT}")},
            "performer": [{"reference": format!("Patient/{PATIENT}")}],
            "effectiveDateTime": "2026-11-01T08:00:00+02:00",
            "issued": "2026-11-01T08:00:00+02:00",
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": ucum},
        })
    }

    fn weight() -> Value {
        measurement(WEIGHT, ("29463-7", "Body weight"), "kg", "kg", 80.5)
    }

    fn glucose() -> Value {
        measurement(
            "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bloodglucose",
            ("14745-4", "Glucose [Moles/volume] in Body fluid"),
            "mmol/l",
            "mmol/L",
            5.5,
        )
    }

    #[test]
    fn every_interaction_of_a_limited_app_keeps_to_its_contents() {
        let (_dir, fhir) = service();
        let patient = serde_json::json!({
            "resourceType": "Patient",
            "id": PATIENT,
            "meta": {"profile": ["http://phr.kanta.fi/StructureDefinition/fiphr-sd-patient"]},
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{PATIENT}")}],
        });
        fhir.update(&Caller::System, "Patient", PATIENT, patient, None)
            .unwrap();
        // Stored before by the citizen in the portal: a glucose the app may not read.
        let theirs = fhir
            .create(
                &Caller::Citizen {
                    patient: PATIENT.into(),
                },
                glucose(),
                None,
            )
            .unwrap();
        let caller = app(&["body-weight"], &["body-weight"]);

        let mine = fhir.create(&caller, weight(), None).unwrap();
        let refused = fhir.create(&caller, glucose(), None).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Forbidden);
        assert!(
            refused
                .issues()
                .iter()
                .any(|i| i.message.contains("blood-glucose")),
            "{refused:?}"
        );

        // A batch: the accepted entry is stored, the other refused on its own.
        let batch = serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": [
            {"resource": weight(), "request": {"method": "POST", "url": "Observation"}},
            {"resource": glucose(), "request": {"method": "POST", "url": "Observation"}},
        ]});
        let response = fhir.process_bundle(&caller, batch).unwrap();
        let kinds: Vec<Option<ErrorKind>> = response
            .entries
            .iter()
            .map(|e| e.result().err().map(Error::kind))
            .collect();
        assert_eq!(kinds, [None, Some(ErrorKind::Forbidden)]);

        assert!(fhir.read(&caller, "Observation", &mine.version.id).is_ok());
        let error = fhir
            .read(&caller, "Observation", &theirs.version.id)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Forbidden);
        assert!(fhir.read(&caller, "Patient", PATIENT).is_ok());
        // A read answered at once (the reader connection the reads above used is idle) says
        // what a read says, refusals included; a professional's never runs at once.
        for id in [mine.version.id.as_str(), &theirs.version.id, "nope"] {
            let now = fhir
                .read_shown_now(&caller, "Observation", id)
                .expect("a reader connection is idle");
            let read = fhir.read(&caller, "Observation", id);
            assert_eq!(
                now.map(|(stored, _)| stored).map_err(|e| e.kind()),
                read.map_err(|e| e.kind())
            );
        }
        let Caller::App(context) = &caller else {
            unreachable!()
        };
        let professional = Caller::Professional(context.clone());
        assert!(
            fhir.read_shown_now(&professional, "Observation", &mine.version.id)
                .is_none()
        );

        let params = vec![("patient".to_string(), PATIENT.to_string())];
        let result = fhir
            .search(
                &caller,
                crate::search::Scope::of_type("Observation"),
                &params,
                false,
            )
            .unwrap();
        assert_eq!(
            result.page.matches.len(),
            2,
            "the two weights, not the glucose"
        );
        let error = fhir
            .search(
                &caller,
                crate::search::Scope::of_type("CarePlan"),
                &params,
                false,
            )
            .err()
            .unwrap();
        assert_eq!(error.kind(), ErrorKind::Forbidden);

        // Deleting what it may no longer write is refused too.
        let reader = app(&["body-weight"], &[]);
        let error = fhir
            .delete(&reader, "Observation", &mine.version.id, None)
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Forbidden);
        fhir.delete(&caller, "Observation", &mine.version.id, None)
            .unwrap();
    }
}
