//! The compact stored form of an [`AuditRecord`]: what the `audit_log` table holds.
//!
//! The hash chain is not made over these bytes: it is made over the canonical encoding of
//! `encoding.rs`, and verification unpacks a stored record and encodes it again. So the stored
//! form is free to be small.
//!
//! Texts that repeat from record to record (the patient, the application and its name, the
//! acting party, interaction, resource type, user rights, route, method, error code, the
//! organisation, data contents, resource types) are kept once in the `audit_names` table and
//! a record refers to them by number. The patient, the application, its name and the usage
//! type are columns, because queries filter and group by them; everything else is the `body`:
//! a format byte (`1`) and then fields as `tag (1 byte) ‖ length (LEB128) ‖ value`, where a
//! value is a name number (LEB128), a number (LEB128), a 16-byte UUID, or UTF-8 text.
//! The record's id and the ids of the resources it touched are 16 bytes when they are
//! canonical UUIDs (as the server makes them), text otherwise. An actor that is the record's
//! own patient (`Patient/<patient>`) is an empty field. Status 200 and amount 0 are left out.
//!
//! A read by an application is about 70 bytes of body (the canonical encoding of the same record,
//! with its user rights, is over 450).

use super::encoding::{
    field_number, put, put_number, put_text, put_varint, take_field, take_varint,
};
use super::{AuditRecord, Usage};
use crate::error::{AuthError, Result};

/// The stored form's first byte.
const FORMAT: u8 = 1;

/// Body field tags. Never renumber; a new field takes the next free tag.
mod tag {
    pub const ID_UUID: u8 = 1;
    pub const ID_TEXT: u8 = 2;
    pub const ACTOR_IS_PATIENT: u8 = 3;
    pub const ACTOR: u8 = 4;
    pub const INTERACTION: u8 = 5;
    pub const RESOURCE_TYPE: u8 = 6;
    pub const SEARCH_CRITERIA: u8 = 7;
    pub const STATUS: u8 = 8;
    pub const ERROR_CODE: u8 = 9;
    pub const ERROR_DETAIL: u8 = 10;
    pub const AMOUNT: u8 = 11;
    /// A touched resource whose id is a UUID: its type's name number, then 16 bytes.
    pub const RESOURCE_UUID: u8 = 12;
    /// Any other touched resource, `Type/id` as text.
    pub const RESOURCE_TEXT: u8 = 13;
    pub const CLIENT_ADDRESS: u8 = 14;
    pub const USER_RIGHTS: u8 = 15;
    pub const ROUTE: u8 = 16;
    pub const METHOD: u8 = 17;
    pub const PROFESSIONAL_ID: u8 = 18;
    pub const PROFESSIONAL_NAME: u8 = 19;
    pub const ORG_OID: u8 = 20;
    pub const ORG_NAME: u8 = 21;
    pub const CARE_ID: u8 = 22;
    pub const CONTENT: u8 = 23;
}

/// A record as the `audit_log` table stores it (without its position, encoding and chain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    pub recorded_us: i64,
    /// Name numbers of the patient, the application and the application's name.
    pub patient: Option<i64>,
    pub app: Option<i64>,
    pub app_name: Option<i64>,
    pub usage: i64,
    pub body: Vec<u8>,
}

/// The usage type's stored number (as in the canonical encoding).
pub(crate) fn usage_number(usage: Usage) -> i64 {
    i64::from(super::encoding::usage_byte(usage))
}

/// Packs `record`, numbering its names with `name_id` (which stores a name it has not seen).
pub(crate) fn pack(
    record: &AuditRecord,
    name_id: &mut dyn FnMut(&str) -> Result<i64>,
) -> Result<Packed> {
    let mut body = Vec::with_capacity(96);
    body.push(FORMAT);
    // A name's number, as a field value.
    let mut number = |text: &str| -> Result<Vec<u8>> {
        let mut value = Vec::with_capacity(4);
        put_varint(&mut value, ref_number(name_id(text)?)?);
        Ok(value)
    };
    match canonical_uuid(&record.id) {
        Some(uuid) => put(&mut body, tag::ID_UUID, &uuid),
        None => put(&mut body, tag::ID_TEXT, record.id.as_bytes()),
    }
    let own_patient = record
        .patient_id
        .as_deref()
        .is_some_and(|p| record.actor.strip_prefix("Patient/") == Some(p));
    if own_patient {
        put(&mut body, tag::ACTOR_IS_PATIENT, &[]);
    } else {
        put_name(&mut body, tag::ACTOR, &mut number, Some(&record.actor))?;
    }
    put_name(
        &mut body,
        tag::INTERACTION,
        &mut number,
        record.interaction.as_deref(),
    )?;
    put_name(
        &mut body,
        tag::RESOURCE_TYPE,
        &mut number,
        record.resource_type.as_deref(),
    )?;
    put_text(
        &mut body,
        tag::SEARCH_CRITERIA,
        record.search_criteria.as_deref(),
    );
    if record.status != 200 {
        put_number(&mut body, tag::STATUS, u64::from(record.status));
    }
    put_name(
        &mut body,
        tag::ERROR_CODE,
        &mut number,
        record.error_code.as_deref(),
    )?;
    put_text(&mut body, tag::ERROR_DETAIL, record.error_detail.as_deref());
    if record.amount != 0 {
        put_number(&mut body, tag::AMOUNT, record.amount);
    }
    for resource in &record.resources {
        let split = resource
            .split_once('/')
            .and_then(|(ty, id)| Some((ty, canonical_uuid(id)?)));
        match split {
            Some((ty, uuid)) if !ty.is_empty() => {
                let mut value = number(ty)?;
                value.extend_from_slice(&uuid);
                put(&mut body, tag::RESOURCE_UUID, &value);
            }
            _ => put(&mut body, tag::RESOURCE_TEXT, resource.as_bytes()),
        }
    }
    put_text(
        &mut body,
        tag::CLIENT_ADDRESS,
        record.client_address.as_deref(),
    );
    put_name(
        &mut body,
        tag::USER_RIGHTS,
        &mut number,
        record.user_rights.as_deref(),
    )?;
    put_name(&mut body, tag::ROUTE, &mut number, record.route.as_deref())?;
    put_name(
        &mut body,
        tag::METHOD,
        &mut number,
        record.method.as_deref(),
    )?;
    put_text(
        &mut body,
        tag::PROFESSIONAL_ID,
        record.professional_id.as_deref(),
    );
    put_text(
        &mut body,
        tag::PROFESSIONAL_NAME,
        record.professional_name.as_deref(),
    );
    put_name(
        &mut body,
        tag::ORG_OID,
        &mut number,
        record.org_oid.as_deref(),
    )?;
    put_name(
        &mut body,
        tag::ORG_NAME,
        &mut number,
        record.org_name.as_deref(),
    )?;
    put_text(&mut body, tag::CARE_ID, record.care_id.as_deref());
    for content in &record.contents {
        put_name(&mut body, tag::CONTENT, &mut number, Some(content))?;
    }
    let mut column = |text: Option<&str>| text.map(&mut *name_id).transpose();
    Ok(Packed {
        recorded_us: record.recorded_us,
        patient: column(record.patient_id.as_deref())?,
        app: column(record.app_id.as_deref())?,
        app_name: column(record.app_name.as_deref())?,
        usage: usage_number(record.usage),
        body,
    })
}

/// The record `packed` was made from, naming its numbers with `name_of`.
pub(crate) fn unpack(
    packed: &Packed,
    name_of: &mut dyn FnMut(i64) -> Result<String>,
) -> Result<AuditRecord> {
    let bad = |why: &str| AuthError::Storage(format!("a stored audit record is damaged: {why}"));
    let usage = u8::try_from(packed.usage)
        .ok()
        .and_then(super::encoding::usage_of)
        .ok_or_else(|| bad("usage"))?;
    let mut column = |id: Option<i64>| id.map(&mut *name_of).transpose();
    let mut record = AuditRecord::new(usage, "");
    record.recorded_us = packed.recorded_us;
    record.patient_id = column(packed.patient)?;
    record.app_id = column(packed.app)?;
    record.app_name = column(packed.app_name)?;
    let Some((&FORMAT, mut rest)) = packed.body.split_first() else {
        return Err(bad("unknown format"));
    };
    while let Some((tag, value, next)) = take_field(rest).map_err(|e| bad(e.reason()))? {
        rest = next;
        let text = || String::from_utf8(value.to_vec()).map_err(|_| bad("text is not UTF-8"));
        let number = || field_number(value).map_err(|_| bad("number"));
        let mut named = || -> Result<String> {
            let id = i64::try_from(number()?).map_err(|_| bad("name number"))?;
            name_of(id)
        };
        match tag {
            tag::ID_UUID => record.id = uuid_text(value).ok_or_else(|| bad("id"))?,
            tag::ID_TEXT => record.id = text()?,
            tag::ACTOR_IS_PATIENT => {
                let patient = record.patient_id.as_deref().ok_or_else(|| bad("actor"))?;
                record.actor = format!("Patient/{patient}");
            }
            tag::ACTOR => record.actor = named()?,
            tag::INTERACTION => record.interaction = Some(named()?),
            tag::RESOURCE_TYPE => record.resource_type = Some(named()?),
            tag::SEARCH_CRITERIA => record.search_criteria = Some(text()?),
            tag::STATUS => record.status = u16::try_from(number()?).map_err(|_| bad("status"))?,
            tag::ERROR_CODE => record.error_code = Some(named()?),
            tag::ERROR_DETAIL => record.error_detail = Some(text()?),
            tag::AMOUNT => record.amount = number()?,
            tag::RESOURCE_UUID => {
                let (ty, uuid) = take_varint(value).map_err(|_| bad("resource"))?;
                let ty = i64::try_from(ty).map_err(|_| bad("resource"))?;
                let id = uuid_text(uuid).ok_or_else(|| bad("resource"))?;
                record.resources.push(format!("{}/{id}", name_of(ty)?));
            }
            tag::RESOURCE_TEXT => record.resources.push(text()?),
            tag::CLIENT_ADDRESS => record.client_address = Some(text()?),
            tag::USER_RIGHTS => record.user_rights = Some(named()?),
            tag::ROUTE => record.route = Some(named()?),
            tag::METHOD => record.method = Some(named()?),
            tag::PROFESSIONAL_ID => record.professional_id = Some(text()?),
            tag::PROFESSIONAL_NAME => record.professional_name = Some(text()?),
            tag::ORG_OID => record.org_oid = Some(named()?),
            tag::ORG_NAME => record.org_name = Some(named()?),
            tag::CARE_ID => record.care_id = Some(text()?),
            tag::CONTENT => record.contents.push(named()?),
            _ => return Err(bad("unknown field")),
        }
    }
    Ok(record)
}

/// Every name number `packed` refers to, added to `numbers`.
pub(crate) fn name_numbers(packed: &Packed, numbers: &mut Vec<i64>) -> Result<()> {
    unpack(packed, &mut |id| {
        numbers.push(id);
        Ok(String::new())
    })
    .map(drop)
}

/// The record id of a stored body (its first field), without unpacking the rest.
pub(crate) fn id_of(body: &[u8]) -> Option<String> {
    let (&FORMAT, rest) = body.split_first()? else {
        return None;
    };
    match take_field(rest).ok()?? {
        (tag::ID_UUID, value, _) => uuid_text(value),
        (tag::ID_TEXT, value, _) => String::from_utf8(value.to_vec()).ok(),
        _ => None,
    }
}

/// A name number as stored (names are numbered from 1).
fn ref_number(id: i64) -> Result<u64> {
    u64::try_from(id).map_err(|_| AuthError::Storage(format!("bad audit name number {id}")))
}

/// The 16 bytes of `text` when it is a UUID written the way the server writes one
/// (lower-case, hyphenated), so that it reads back as the same text.
fn canonical_uuid(text: &str) -> Option<[u8; 16]> {
    let uuid = uuid::Uuid::try_parse(text).ok()?;
    let mut buffer = uuid::Uuid::encode_buffer();
    (uuid.hyphenated().encode_lower(&mut buffer) == text).then(|| *uuid.as_bytes())
}

fn uuid_text(bytes: &[u8]) -> Option<String> {
    let bytes: [u8; 16] = bytes.try_into().ok()?;
    Some(uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
}

fn put_name(
    out: &mut Vec<u8>,
    tag: u8,
    number: &mut dyn FnMut(&str) -> Result<Vec<u8>>,
    value: Option<&str>,
) -> Result<()> {
    if let Some(text) = value {
        put(out, tag, &number(text)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Names numbered in a map, as the tables number them.
    #[derive(Default)]
    struct Names(HashMap<String, i64>);

    impl Names {
        fn pack(&mut self, record: &AuditRecord) -> Packed {
            pack(record, &mut |name| {
                let next = self.0.len() as i64 + 1;
                Ok(*self.0.entry(name.to_owned()).or_insert(next))
            })
            .unwrap()
        }

        fn unpack(&self, packed: &Packed) -> Result<AuditRecord> {
            unpack(packed, &mut |id| {
                self.0
                    .iter()
                    .find(|(_, n)| **n == id)
                    .map(|(name, _)| name.clone())
                    .ok_or_else(|| AuthError::Storage("no such name".into()))
            })
        }
    }

    fn read_by_app() -> AuditRecord {
        let patient = "7d3f2a1e-5b6c-4d8e-9f0a-1b2c3d4e5f60";
        let mut r = AuditRecord::new(Usage::Application, format!("Patient/{patient}"));
        r.id = "0190a3b4-c5d6-4e8f-9a0b-1c2d3e4f5a6b".into();
        r.recorded_us = 1_780_000_000_123_456;
        r.patient_id = Some(patient.into());
        r.app_id = Some("1.2.246.10.12345678.10.1".into());
        r.app_name = Some("Askelmittari".into());
        r.interaction = Some("read".into());
        r.resource_type = Some("Observation".into());
        r.amount = 1;
        r.resources = vec!["Observation/5c1b2a3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into()];
        r.client_address = Some("192.0.2.10".into());
        r.user_rights = Some(
            "launch/patient openid fhirUser offline_access patient/Observation.crus patient/Patient.r \
             patient/QuestionnaireResponse.crus patient/CarePlan.crus patient/Device.crus"
                .into(),
        );
        r.route = Some("/fhir/r4/{type}/{id}".into());
        r.method = Some("GET".into());
        r
    }

    #[test]
    fn every_field_reads_back_exactly() {
        let mut names = Names::default();
        let mut professional = crate::audit::tests::professional_access("pro-1", "p");
        professional.error_code = Some("forbidden".into());
        professional.error_detail = Some("Ei hoitosuhdetta".into());
        professional.status = 403;
        professional.search_criteria = Some("code=55423-8&date=ge2026".into());
        let mut odd = read_by_app();
        odd.id = "not-a-uuid".into();
        odd.actor = "operator".into();
        odd.resources = vec![
            "Observation/ABC".into(),
            "Observation/5C1B2A3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D".into(),
            "/5c1b2a3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into(),
            "Patient/5c1b2a3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into(),
            "no-slash".into(),
        ];
        let mut empty = AuditRecord::new(Usage::Operator, "Patient/x");
        empty.id = String::new();
        empty.amount = 0;
        let mut other_patients_actor = read_by_app();
        other_patients_actor.actor = "Patient/someone-else".into();
        for record in [
            read_by_app(),
            professional,
            odd,
            empty,
            other_patients_actor,
        ] {
            let packed = names.pack(&record);
            assert_eq!(names.unpack(&packed).unwrap(), record);
        }
    }

    #[test]
    fn a_read_by_an_application_is_small() {
        let mut names = Names::default();
        let record = read_by_app();
        let packed = names.pack(&record);
        let canonical = super::super::encoding::encode(2, &record).unwrap();
        assert!(
            packed.body.len() <= 72,
            "{} bytes, against {} canonical",
            packed.body.len(),
            canonical.len()
        );
        // The second record of the same app and citizen adds no names.
        let before = names.0.len();
        let mut next = read_by_app();
        next.id = "1190a3b4-c5d6-4e8f-9a0b-1c2d3e4f5a6b".into();
        names.pack(&next);
        assert_eq!(names.0.len(), before);
    }

    #[test]
    fn the_id_and_the_name_numbers_are_read_without_the_names() {
        let mut names = Names::default();
        let mut text_id = read_by_app();
        text_id.id = "old-1".into();
        for record in [read_by_app(), text_id] {
            let packed = names.pack(&record);
            assert_eq!(id_of(&packed.body).as_deref(), Some(record.id.as_str()));
            let mut numbers = Vec::new();
            name_numbers(&packed, &mut numbers).unwrap();
            numbers.sort_unstable();
            numbers.dedup();
            let mut all: Vec<i64> = names.0.values().copied().collect();
            all.sort_unstable();
            assert_eq!(numbers, all, "the record uses every name so far");
        }
        assert_eq!(id_of(&[]), None);
        assert_eq!(id_of(&[FORMAT, tag::ACTOR_IS_PATIENT, 0]), None);
    }

    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let mut names = Names::default();
        let packed = names.pack(&read_by_app());
        for cut in 0..packed.body.len() {
            let mut damaged = packed.clone();
            damaged.body.truncate(cut);
            // A cut at a field boundary is a shorter valid record; anything else must fail.
            let _ = names.unpack(&damaged);
        }
        let mut unknown = packed.clone();
        unknown.body.extend_from_slice(&[99, 0]);
        assert!(names.unpack(&unknown).is_err());
        let mut format = packed.clone();
        format.body[0] = 9;
        assert!(names.unpack(&format).is_err());
        let mut usage = packed;
        usage.usage = 77;
        assert!(names.unpack(&usage).is_err());
    }
}
