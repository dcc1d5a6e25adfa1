//! The FHIR R4 AuditEvent view of an audit record: what `GET /fhir/r4/AuditEvent?patient=…`
//! returns to the citizen's apps. A pure mapping; never reads or writes anything.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{AuditRecord, Usage};

/// Identifier system for application ids in AuditEvent agents.
pub const APPLICATION_ID_SYSTEM: &str = "urn:phr:application-id";
/// Identifier system for professional identifiers in AuditEvent agents.
pub const PROFESSIONAL_ID_SYSTEM: &str = "urn:phr:professional-id";

fn action_code(interaction: Option<&str>) -> &'static str {
    match interaction {
        Some("create") => "C",
        Some("read" | "vread" | "search-type" | "search" | "history-instance" | "history-type") => {
            "R"
        }
        Some("update" | "patch") => "U",
        Some("delete") => "D",
        _ => "E",
    }
}

fn recorded_text(micros: i64) -> String {
    let nanos = i128::from(micros) * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// The FHIR R4 AuditEvent for a record.
pub fn audit_event(record: &AuditRecord) -> Value {
    let outcome = match record.status {
        200..=399 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let is_fhir = record.usage == Usage::Application
        || record.usage == Usage::OpenSandbox
        || record.usage == Usage::CitizenPortal;
    let interaction = record.interaction.as_deref();
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": record.id,
        "type": if is_fhir {
            json!({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"})
        } else {
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"})
        },
        "action": action_code(interaction),
        "recorded": recorded_text(record.recorded_us),
        "outcome": outcome,
        "agent": [],
        "source": {
            "observer": {"display": "PHR"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
        },
        "entity": []
    });
    if let Some(interaction) = interaction {
        let system = if is_fhir {
            "http://hl7.org/fhir/restful-interaction"
        } else {
            "urn:phr:auth-event"
        };
        crate::set_field(
            &mut event,
            "subtype",
            json!([{ "system": system, "code": interaction }]),
        );
    }
    if let Some(detail) = record
        .error_detail
        .as_deref()
        .or(record.error_code.as_deref())
    {
        crate::set_field(&mut event, "outcomeDesc", json!(detail));
    }
    let mut agents = Vec::new();
    if let Some(app_id) = &record.app_id {
        let mut who = json!({"identifier": {"system": APPLICATION_ID_SYSTEM, "value": app_id}});
        if let Some(name) = &record.app_name {
            crate::set_field(&mut who, "display", json!(name));
        }
        agents.push(json!({
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
            "who": who,
            "requestor": false
        }));
    }
    if let Some(professional) = &record.professional_id {
        // No Practitioner resource is stored: the professional is named by identifier.
        let mut who =
            json!({"identifier": {"system": PROFESSIONAL_ID_SYSTEM, "value": professional}});
        if let Some(name) = &record.professional_name {
            crate::set_field(&mut who, "display", json!(name));
        }
        agents.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "AUT", "display": "author (originator)"}]},
            "who": who,
            "requestor": true
        }));
    } else {
        let actor_who = if record.actor.contains('/') {
            json!({"reference": record.actor})
        } else {
            json!({"display": record.actor})
        };
        agents.push(json!({"who": actor_who, "requestor": true}));
    }
    if let Some(org) = &record.org_oid {
        let mut who = json!({"identifier": {"system": "urn:ietf:rfc:3986", "value": format!("urn:oid:{org}")}});
        if let Some(name) = &record.org_name {
            crate::set_field(&mut who, "display", json!(name));
        }
        agents.push(json!({
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "datacollector", "display": "data collector"}]},
            "who": who,
            "requestor": false
        }));
    }
    crate::set_field(&mut event, "agent", Value::Array(agents));

    let mut entities = Vec::new();
    if let Some(patient) = &record.patient_id {
        entities.push(json!({
            "what": {"reference": format!("Patient/{patient}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
        }));
    }
    if let Some(care) = &record.care_id {
        entities.push(json!({
            "what": {"reference": format!("EpisodeOfCare/{care}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "description": "care relationship the access was allowed under"
        }));
    }
    for reference in &record.resources {
        entities.push(json!({
            "what": {"reference": reference},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}
        }));
    }
    if record.search_criteria.is_some() || record.amount > 0 || record.resource_type.is_some() {
        let mut query_entity = json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "detail": [{"type": "returned", "valueString": record.amount.to_string()}]
        });
        if let Some(rt) = &record.resource_type {
            crate::set_field(&mut query_entity, "name", json!(rt));
        }
        if let Some(details) = query_entity.get_mut("detail").and_then(Value::as_array_mut) {
            details.extend(
                record
                    .contents
                    .iter()
                    .map(|c| json!({"type": "data-content", "valueString": c})),
            );
        }
        if let Some(criteria) = &record.search_criteria {
            crate::set_field(
                &mut query_entity,
                "query",
                json!(STANDARD.encode(criteria.as_bytes())),
            );
            crate::set_field(&mut query_entity, "description", json!(criteria));
        }
        entities.push(query_entity);
    }
    // FHIR JSON has no empty arrays: a record that names nothing has no `entity` (the last
    // key, so removing it keeps the order of the others).
    if !entities.is_empty() {
        crate::set_field(&mut event, "entity", Value::Array(entities));
    } else if let Some(object) = event.as_object_mut() {
        object.remove("entity");
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_naming_nothing_has_no_entity() {
        let record = AuditRecord::new(Usage::Authorization, "system");
        let event = audit_event(&record);
        assert!(event.get("entity").is_none(), "{event}");
        assert!(event["agent"].as_array().is_some_and(|a| !a.is_empty()));
    }

    #[test]
    fn audit_event_carries_the_log_register_fields() {
        let mut record = AuditRecord::new(Usage::Application, "Patient/p1");
        record.id = "r1".into();
        record.recorded_us = 1_700_000_000_000_000;
        record.patient_id = Some("p1".into());
        record.app_id = Some("app1".into());
        record.app_name = Some("Steps".into());
        record.interaction = Some("search-type".into());
        record.resource_type = Some("Observation".into());
        record.search_criteria = Some("patient=p1&code=55423-8".into());
        record.amount = 3;
        record.resources = vec!["Observation/a".into()];
        let event = audit_event(&record);
        assert_eq!(event["resourceType"], "AuditEvent");
        assert_eq!(event["action"], "R");
        assert_eq!(event["outcome"], "0");
        assert_eq!(event["recorded"], "2023-11-14T22:13:20Z");
        assert_eq!(event["subtype"][0]["code"], "search-type");
        assert_eq!(event["agent"][0]["who"]["identifier"]["value"], "app1");
        assert_eq!(event["agent"][1]["who"]["reference"], "Patient/p1");
        assert_eq!(event["entity"][0]["what"]["reference"], "Patient/p1");
        assert_eq!(event["entity"][1]["what"]["reference"], "Observation/a");
        assert_eq!(event["entity"][2]["description"], "patient=p1&code=55423-8");
        assert_eq!(event["entity"][2]["detail"][0]["valueString"], "3");
    }

    #[test]
    fn a_professionals_access_names_the_professional_organisation_and_care() {
        let mut record = AuditRecord::new(Usage::Application, "Practitioner/tp-1");
        record.patient_id = Some("p1".into());
        record.app_id = Some("pro".into());
        record.professional_id = Some("tp-1".into());
        record.professional_name = Some("Doctor Test Person".into());
        record.org_oid = Some("1.2.3".into());
        record.org_name = Some("Demo Health Centre".into());
        record.care_id = Some("ep1".into());
        record.interaction = Some("read".into());
        record.resource_type = Some("Observation".into());
        record.contents = vec!["blood-pressure".into()];
        let event = audit_event(&record);
        assert_eq!(event["agent"][1]["who"]["identifier"]["value"], "tp-1");
        assert_eq!(event["agent"][1]["who"]["display"], "Doctor Test Person");
        assert_eq!(
            event["agent"][2]["who"]["identifier"]["value"],
            "urn:oid:1.2.3"
        );
        assert_eq!(event["agent"][2]["who"]["display"], "Demo Health Centre");
        assert_eq!(event["entity"][1]["what"]["reference"], "EpisodeOfCare/ep1");
        assert_eq!(
            event["entity"][2]["detail"][1]["valueString"],
            "blood-pressure"
        );
    }

    #[test]
    fn failed_requests_have_failure_outcomes() {
        let mut record = AuditRecord::new(Usage::Application, "Patient/p1");
        record.status = 403;
        record.error_code = Some("forbidden".into());
        assert_eq!(audit_event(&record)["outcome"], "4");
        assert_eq!(audit_event(&record)["outcomeDesc"], "forbidden");
        record.status = 500;
        assert_eq!(audit_event(&record)["outcome"], "8");
    }
}
