//! The canonical, versioned byte encoding of an [`AuditRecord`] that the hash chain hashes:
//! `chain = SHA-256(previous chain ‖ encode(version, record))`. Each stored record names its
//! version, and verification encodes each record in the version it was written in, so the
//! record type can grow without breaking the verification of older records.
//!
//! - **Version 1** is the JSON the first release hashed (`serde_json` of the record struct as
//!   it was then). It is kept, frozen, only to verify those records; nothing new is written
//!   in it.
//! - **Version 2** is a length-prefixed field list: the version byte `0x02`, then each field
//!   present as `tag (1 byte) ‖ length (unsigned LEB128) ‖ value`, in ascending tag order.
//!   Text is UTF-8; integers are LEB128 (signed ones zigzag-encoded first); the usage type is
//!   one byte; each touched resource is its own tag-15 field, in order, and each data content
//!   a professional read its own tag-25 field. An absent optional
//!   field is left out (an empty text is a present field of length 0), so a new optional
//!   field gets a new tag and changes nothing for records that lack it: only a change to how
//!   an existing field is written needs a new version.
//!
//! Version 2 is self-describing ([`decode`] turns it back into the record) and keeps every
//! field of Kela's log register, so it can become the stored form of a record. It is smaller
//! than the JSON (a FHIR search with two results: 386 bytes, against 610 for the first
//! release's JSON without route and method); a later version can shrink it further within the same framing, with new value forms under
//! new tags (16-byte UUIDs, "the actor is the patient", references to a dictionary of app
//! names, scopes and route templates).

use serde::Serialize;

use super::{AuditRecord, Usage};

/// The version new records are written in.
pub const CURRENT: u8 = 2;

/// The chain value before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// Why bytes are not a version-2 record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an audit record encoding: {0}")]
pub struct DecodeError(&'static str);

impl DecodeError {
    /// What is wrong, without the prefix.
    pub(super) fn reason(&self) -> &'static str {
        self.0
    }
}

/// The next chain value: SHA-256 of the previous one and the record's encoding in `version`.
/// `None` for a version this build does not know.
pub fn chain_next(previous: &[u8], version: u8, record: &AuditRecord) -> Option<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let encoded = encode(version, record)?;
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(encoded);
    Some(hasher.finalize().to_vec())
}

/// The record's bytes in `version`; `None` for a version this build does not know.
pub fn encode(version: u8, record: &AuditRecord) -> Option<Vec<u8>> {
    match version {
        1 => Some(encode_v1(record)),
        2 => Some(encode_v2(record)),
        _ => None,
    }
}

/// The record struct of the first release, field for field, as `serde_json` wrote it.
#[derive(Serialize)]
struct V1<'a> {
    id: &'a str,
    recorded_us: i64,
    patient_id: &'a Option<String>,
    app_id: &'a Option<String>,
    app_name: &'a Option<String>,
    actor: &'a str,
    usage: Usage,
    interaction: &'a Option<String>,
    resource_type: &'a Option<String>,
    search_criteria: &'a Option<String>,
    status: u16,
    error_code: &'a Option<String>,
    error_detail: &'a Option<String>,
    amount: u64,
    resources: &'a [String],
    client_address: &'a Option<String>,
    user_rights: &'a Option<String>,
}

fn encode_v1(r: &AuditRecord) -> Vec<u8> {
    let v1 = V1 {
        id: &r.id,
        recorded_us: r.recorded_us,
        patient_id: &r.patient_id,
        app_id: &r.app_id,
        app_name: &r.app_name,
        actor: &r.actor,
        usage: r.usage,
        interaction: &r.interaction,
        resource_type: &r.resource_type,
        search_criteria: &r.search_criteria,
        status: r.status,
        error_code: &r.error_code,
        error_detail: &r.error_detail,
        amount: r.amount,
        resources: &r.resources,
        client_address: &r.client_address,
        user_rights: &r.user_rights,
    };
    // Serialising a struct of strings and integers to a Vec cannot fail; an empty encoding
    // (which then fails verification) is the safe answer if it ever did.
    serde_json::to_vec(&v1).unwrap_or_default()
}

/// Field tags of version 2. Never renumber; a new field takes the next free tag.
mod tag {
    pub const ID: u8 = 1;
    pub const RECORDED_US: u8 = 2;
    pub const PATIENT_ID: u8 = 3;
    pub const APP_ID: u8 = 4;
    pub const APP_NAME: u8 = 5;
    pub const ACTOR: u8 = 6;
    pub const USAGE: u8 = 7;
    pub const INTERACTION: u8 = 8;
    pub const RESOURCE_TYPE: u8 = 9;
    pub const SEARCH_CRITERIA: u8 = 10;
    pub const STATUS: u8 = 11;
    pub const ERROR_CODE: u8 = 12;
    pub const ERROR_DETAIL: u8 = 13;
    pub const AMOUNT: u8 = 14;
    pub const RESOURCE: u8 = 15;
    pub const CLIENT_ADDRESS: u8 = 16;
    pub const USER_RIGHTS: u8 = 17;
    pub const ROUTE: u8 = 18;
    pub const METHOD: u8 = 19;
    pub const PROFESSIONAL_ID: u8 = 20;
    pub const PROFESSIONAL_NAME: u8 = 21;
    pub const ORG_OID: u8 = 22;
    pub const ORG_NAME: u8 = 23;
    pub const CARE_ID: u8 = 24;
    pub const CONTENT: u8 = 25;
}

pub(super) fn usage_byte(usage: Usage) -> u8 {
    match usage {
        Usage::Application => 1,
        Usage::CitizenPortal => 2,
        Usage::Authorization => 3,
        Usage::Operator => 4,
        Usage::OpenSandbox => 5,
    }
}

pub(super) fn usage_of(byte: u8) -> Option<Usage> {
    Some(match byte {
        1 => Usage::Application,
        2 => Usage::CitizenPortal,
        3 => Usage::Authorization,
        4 => Usage::Operator,
        5 => Usage::OpenSandbox,
        _ => return None,
    })
}

pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

pub(super) fn put(out: &mut Vec<u8>, tag: u8, value: &[u8]) {
    out.push(tag);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

pub(super) fn put_text(out: &mut Vec<u8>, tag: u8, value: Option<&str>) {
    if let Some(text) = value {
        put(out, tag, text.as_bytes());
    }
}

pub(super) fn put_number(out: &mut Vec<u8>, tag: u8, value: u64) {
    let mut bytes = Vec::with_capacity(10);
    put_varint(&mut bytes, value);
    put(out, tag, &bytes);
}

fn encode_v2(r: &AuditRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(2);
    put_text(&mut out, tag::ID, Some(&r.id));
    put_number(&mut out, tag::RECORDED_US, zigzag(r.recorded_us));
    put_text(&mut out, tag::PATIENT_ID, r.patient_id.as_deref());
    put_text(&mut out, tag::APP_ID, r.app_id.as_deref());
    put_text(&mut out, tag::APP_NAME, r.app_name.as_deref());
    put_text(&mut out, tag::ACTOR, Some(&r.actor));
    put(&mut out, tag::USAGE, &[usage_byte(r.usage)]);
    put_text(&mut out, tag::INTERACTION, r.interaction.as_deref());
    put_text(&mut out, tag::RESOURCE_TYPE, r.resource_type.as_deref());
    put_text(&mut out, tag::SEARCH_CRITERIA, r.search_criteria.as_deref());
    put_number(&mut out, tag::STATUS, u64::from(r.status));
    put_text(&mut out, tag::ERROR_CODE, r.error_code.as_deref());
    put_text(&mut out, tag::ERROR_DETAIL, r.error_detail.as_deref());
    put_number(&mut out, tag::AMOUNT, r.amount);
    for resource in &r.resources {
        put_text(&mut out, tag::RESOURCE, Some(resource));
    }
    put_text(&mut out, tag::CLIENT_ADDRESS, r.client_address.as_deref());
    put_text(&mut out, tag::USER_RIGHTS, r.user_rights.as_deref());
    put_text(&mut out, tag::ROUTE, r.route.as_deref());
    put_text(&mut out, tag::METHOD, r.method.as_deref());
    put_text(&mut out, tag::PROFESSIONAL_ID, r.professional_id.as_deref());
    put_text(
        &mut out,
        tag::PROFESSIONAL_NAME,
        r.professional_name.as_deref(),
    );
    put_text(&mut out, tag::ORG_OID, r.org_oid.as_deref());
    put_text(&mut out, tag::ORG_NAME, r.org_name.as_deref());
    put_text(&mut out, tag::CARE_ID, r.care_id.as_deref());
    for content in &r.contents {
        put_text(&mut out, tag::CONTENT, Some(content));
    }
    out
}

/// Reads a version-2 encoding back into the record it was made from.
pub fn decode(bytes: &[u8]) -> Result<AuditRecord, DecodeError> {
    let (&version, mut rest) = bytes.split_first().ok_or(DecodeError("empty"))?;
    if version != 2 {
        return Err(DecodeError("unknown version"));
    }
    let mut record = AuditRecord::new(Usage::Application, "");
    let mut last_tag = 0u8;
    let mut seen_required = 0u32;
    while let Some((tag, value, next)) = take_field(rest)? {
        let repeatable = tag == tag::RESOURCE || tag == tag::CONTENT;
        if tag < last_tag || (tag == last_tag && !repeatable) {
            return Err(DecodeError("fields out of order"));
        }
        last_tag = tag;
        rest = next;
        let text =
            || String::from_utf8(value.to_vec()).map_err(|_| DecodeError("text is not UTF-8"));
        let number = || field_number(value);
        match tag {
            tag::ID => {
                record.id = text()?;
                seen_required |= 1;
            }
            tag::RECORDED_US => {
                record.recorded_us = unzigzag(number()?);
                seen_required |= 2;
            }
            tag::PATIENT_ID => record.patient_id = Some(text()?),
            tag::APP_ID => record.app_id = Some(text()?),
            tag::APP_NAME => record.app_name = Some(text()?),
            tag::ACTOR => {
                record.actor = text()?;
                seen_required |= 4;
            }
            tag::USAGE => {
                record.usage = match value {
                    [byte] => usage_of(*byte).ok_or(DecodeError("usage"))?,
                    _ => return Err(DecodeError("usage")),
                };
                seen_required |= 8;
            }
            tag::INTERACTION => record.interaction = Some(text()?),
            tag::RESOURCE_TYPE => record.resource_type = Some(text()?),
            tag::SEARCH_CRITERIA => record.search_criteria = Some(text()?),
            tag::STATUS => {
                record.status = u16::try_from(number()?).map_err(|_| DecodeError("status"))?;
                seen_required |= 16;
            }
            tag::ERROR_CODE => record.error_code = Some(text()?),
            tag::ERROR_DETAIL => record.error_detail = Some(text()?),
            tag::AMOUNT => {
                record.amount = number()?;
                seen_required |= 32;
            }
            tag::RESOURCE => record.resources.push(text()?),
            tag::CLIENT_ADDRESS => record.client_address = Some(text()?),
            tag::USER_RIGHTS => record.user_rights = Some(text()?),
            tag::ROUTE => record.route = Some(text()?),
            tag::METHOD => record.method = Some(text()?),
            tag::PROFESSIONAL_ID => record.professional_id = Some(text()?),
            tag::PROFESSIONAL_NAME => record.professional_name = Some(text()?),
            tag::ORG_OID => record.org_oid = Some(text()?),
            tag::ORG_NAME => record.org_name = Some(text()?),
            tag::CARE_ID => record.care_id = Some(text()?),
            tag::CONTENT => record.contents.push(text()?),
            _ => return Err(DecodeError("unknown field")),
        }
    }
    if seen_required != 63 {
        return Err(DecodeError("a required field is missing"));
    }
    Ok(record)
}

/// A field read by [`take_field`]: its tag, its value and the bytes after it.
pub(super) type Field<'a> = (u8, &'a [u8], &'a [u8]);

/// The first field of `bytes` (`tag ‖ length ‖ value`); `None` when `bytes` is empty.
pub(super) fn take_field(bytes: &[u8]) -> Result<Option<Field<'_>>, DecodeError> {
    let Some((&tag, after_tag)) = bytes.split_first() else {
        return Ok(None);
    };
    let (length, after_length) = take_varint(after_tag)?;
    let length = usize::try_from(length).map_err(|_| DecodeError("length"))?;
    if after_length.len() < length {
        return Err(DecodeError("truncated"));
    }
    let (value, rest) = after_length.split_at(length);
    Ok(Some((tag, value, rest)))
}

/// A field value that is one number and nothing else.
pub(super) fn field_number(value: &[u8]) -> Result<u64, DecodeError> {
    match take_varint(value)? {
        (n, []) => Ok(n),
        _ => Err(DecodeError("number")),
    }
}

pub(super) fn take_varint(bytes: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Ok((value, bytes.get(index + 1..).unwrap_or_default()));
        }
    }
    Err(DecodeError("varint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A FHIR search as an app makes it, with every field the log register asks for.
    fn typical() -> AuditRecord {
        let mut r = AuditRecord::new(
            Usage::Application,
            "Patient/7d3f2a1e-5b6c-4d8e-9f0a-1b2c3d4e5f60",
        );
        r.id = "0190a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b".into();
        r.recorded_us = 1_780_000_000_123_456;
        r.patient_id = Some("7d3f2a1e-5b6c-4d8e-9f0a-1b2c3d4e5f60".into());
        r.app_id = Some("1.2.246.10.12345678.10.1".into());
        r.app_name = Some("Askelmittari".into());
        r.interaction = Some("search-type".into());
        r.resource_type = Some("Observation".into());
        r.search_criteria =
            Some("patient=7d3f2a1e-5b6c-4d8e-9f0a-1b2c3d4e5f60&code=55423-8".into());
        r.amount = 2;
        r.resources = vec!["Observation/a1".into(), "Observation/a2".into()];
        r.client_address = Some("192.0.2.10".into());
        r.user_rights = Some("patient/Observation.read patient/Observation.write".into());
        r.route = Some("/fhir/r4/{type}".into());
        r.method = Some("GET".into());
        r
    }

    #[test]
    fn version_1_is_the_json_of_the_first_release() {
        let mut r = AuditRecord::new(Usage::CitizenPortal, "operator");
        r.id = "i".into();
        r.recorded_us = 5;
        r.resources = vec!["Observation/x".into()];
        // New fields are not part of version 1.
        r.route = Some("/portal".into());
        let expected = r#"{"id":"i","recorded_us":5,"patient_id":null,"app_id":null,"app_name":null,"actor":"operator","usage":"citizen-portal","interaction":null,"resource_type":null,"search_criteria":null,"status":200,"error_code":null,"error_detail":null,"amount":0,"resources":["Observation/x"],"client_address":null,"user_rights":null}"#;
        assert_eq!(String::from_utf8(encode(1, &r).unwrap()).unwrap(), expected);
    }

    #[test]
    fn version_2_round_trips_every_field() {
        let record = typical();
        let bytes = encode(2, &record).unwrap();
        assert_eq!(bytes.first(), Some(&2));
        assert_eq!(decode(&bytes), Ok(record));
        let mut sparse = AuditRecord::new(Usage::Operator, "");
        sparse.recorded_us = -3;
        sparse.error_code = Some(String::new());
        assert_eq!(decode(&encode(2, &sparse).unwrap()), Ok(sparse));
    }

    #[test]
    fn version_2_round_trips_a_professionals_access() {
        let mut record = typical();
        record.actor = "Practitioner/tp-1".into();
        record.professional_id = Some("tp-1".into());
        record.professional_name = Some("Doctor Test Person".into());
        record.org_oid = Some("1.2.246.10.99999999".into());
        record.org_name = Some("Demo Health Centre".into());
        record.care_id = Some("ep-1".into());
        record.contents = vec!["blood-pressure".into(), "blood-glucose".into()];
        assert_eq!(decode(&encode(2, &record).unwrap()), Ok(record.clone()));
        // Added after route and method: a record without them keeps its old bytes.
        let plain = typical();
        let long = encode(2, &record).unwrap();
        assert_ne!(long, encode(2, &plain).unwrap());
    }

    #[test]
    fn version_2_is_smaller_than_the_json() {
        let v1 = encode(1, &typical()).unwrap().len();
        let v2 = encode(2, &typical()).unwrap().len();
        assert!(v2 < v1, "{v2} bytes against {v1}");
    }

    #[test]
    fn absent_and_empty_fields_hash_differently() {
        let mut a = AuditRecord::new(Usage::Operator, "operator");
        let mut b = a.clone();
        a.error_code = None;
        b.error_code = Some(String::new());
        assert_ne!(chain_next(&GENESIS, 2, &a), chain_next(&GENESIS, 2, &b));
    }

    #[test]
    fn a_field_added_later_leaves_records_without_it_alone() {
        // Route and method came after the other fields: a record without them encodes to
        // exactly the bytes it had before they existed, and with them to those bytes plus
        // their own fields.
        let with = typical();
        let mut without = with.clone();
        without.route = None;
        without.method = None;
        let short = encode(2, &without).unwrap();
        let long = encode(2, &with).unwrap();
        let mut suffix = Vec::new();
        put_text(&mut suffix, tag::ROUTE, with.route.as_deref());
        put_text(&mut suffix, tag::METHOD, with.method.as_deref());
        assert_eq!(long, [short, suffix].concat());
    }

    #[test]
    fn malformed_encodings_are_refused() {
        let bytes = encode(2, &typical()).unwrap();
        assert!(decode(&[]).is_err());
        assert!(decode(&[3]).is_err());
        assert!(decode(bytes.get(..bytes.len() - 1).unwrap()).is_err());
        assert!(decode(&[2, tag::ID, 0]).is_err(), "required fields missing");
        assert!(
            decode(&[2, tag::ACTOR, 0, tag::ID, 0]).is_err(),
            "out of order"
        );
        assert!(decode(&[2, 99, 0]).is_err());
        assert!(
            decode(&[
                2,
                tag::ID,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff,
                0xff
            ])
            .is_err()
        );
    }

    #[test]
    fn unknown_versions_cannot_be_chained() {
        assert_eq!(chain_next(&GENESIS, 9, &typical()), None);
    }
}
