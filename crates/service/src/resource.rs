//! Small rules about a resource's JSON that several interactions share: its `resourceType`,
//! the identity a PUT body must carry, `If-None-Exist`, and the server's `id`/`meta` stamp.
//!
//! Reads client JSON only through typed accessors (`get`, `as_object`): indexing a
//! `serde_json::Value` for writing panics on a non-object, and client JSON may be anything.

use phr_fhir::{Issue, IssueType};
use phr_store::IdentifierCondition;
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};
use crate::time::to_instant;

/// The `resourceType` of a body, which must be a JSON object.
pub fn resource_type_of(resource: &Value) -> Result<String> {
    let object = resource
        .as_object()
        .ok_or_else(|| Error::invalid("the body must be a FHIR resource (a JSON object)"))?;
    match object.get("resourceType") {
        Some(Value::String(t)) if !t.is_empty() => Ok(t.clone()),
        _ => Err(Error::with_issues(
            ErrorKind::Invalid,
            vec![
                Issue::error(IssueType::Required, "the resource has no resourceType")
                    .at("resourceType"),
            ],
        )),
    }
}

/// A PUT body must be the resource the request names.
pub fn check_body_identity(resource: &Value, resource_type: &str, id: &str) -> Result<()> {
    let body_type = resource_type_of(resource)?;
    if body_type != resource_type {
        return Err(Error::invalid(format!(
            "the body is a {body_type}, but the URL names a {resource_type}"
        )));
    }
    match resource.get("id") {
        Some(Value::String(body_id)) if body_id == id => Ok(()),
        Some(Value::String(body_id)) => Err(Error::invalid(format!(
            "the body's id '{body_id}' differs from the id '{id}' in the URL"
        ))),
        _ => Err(Error::with_issues(
            ErrorKind::Invalid,
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

/// `If-None-Exist: identifier=[system|]value` — the only condition Kanta allows.
pub fn parse_if_none_exist(text: &str) -> Result<IdentifierCondition> {
    let text = text.trim().trim_start_matches('?');
    let bad = || {
        Error::invalid(format!(
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

/// Sets `id`, `meta.versionId` and `meta.lastUpdated`, keeping everything else the client
/// sent, and orders the object `resourceType`, `id`, `meta`, then the rest as sent. A `meta`
/// that is not an object is refused, not dropped.
pub fn stamp(
    resource: Map<String, Value>,
    id: &str,
    version: u64,
    last_updated: i64,
) -> Result<Map<String, Value>> {
    let mut rest = resource;
    let resource_type = rest.shift_remove("resourceType").unwrap_or(Value::Null);
    let type_name = resource_type.as_str().unwrap_or("Resource").to_owned();
    replaced_string(rest.shift_remove("id"), || format!("{type_name}.id"))?;
    let mut meta = match rest.shift_remove("meta") {
        Some(Value::Object(meta)) => meta,
        None => Map::new(),
        Some(_) => {
            return Err(Error::with_issues(
                ErrorKind::Invalid,
                vec![
                    Issue::error(IssueType::Structure, "meta must be a JSON object").at(format!(
                        "{}.meta",
                        resource_type.as_str().unwrap_or("Resource")
                    )),
                ],
            ));
        }
    };
    replaced_string(meta.shift_remove("versionId"), || {
        format!("{type_name}.meta.versionId")
    })?;
    replaced_string(meta.shift_remove("lastUpdated"), || {
        format!("{type_name}.meta.lastUpdated")
    })?;
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
    Ok(out)
}

/// A value as JSON bytes. Serializing a `serde_json::Value` cannot fail in practice (its keys
/// are strings); if it ever did, the request fails instead of the process.
pub fn to_bytes(value: &Value) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::internal(format!("JSON encoding failed: {e}")))
}

/// A property the server assigns (`id`, `meta.versionId`, `meta.lastUpdated`) is replaced,
/// whatever the client wrote there; but a value of the wrong JSON type, or an empty string,
/// is malformed FHIR JSON: an error, never silently dropped.
fn replaced_string(value: Option<Value>, at: impl Fn() -> String) -> Result<()> {
    let problem = match value {
        None => return Ok(()),
        Some(Value::String(s)) if !s.is_empty() => return Ok(()),
        Some(Value::String(_)) => "must not be empty (FHIR JSON has no empty strings)".to_owned(),
        Some(other) => format!("must be a JSON string, not {}", json_kind(&other)),
    };
    let at = at();
    Err(Error::with_issues(
        ErrorKind::Invalid,
        vec![Issue::error(IssueType::Structure, format!("{at} {problem}")).at(at)],
    ))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
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
        let out = Value::Object(stamp(map, "abc", 2, 0).unwrap());
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"resourceType":"Observation","id":"abc","meta":{"versionId":"2","lastUpdated":"1970-01-01T00:00:00.000Z","profile":["p"]},"status":"final"}"#
        );
    }

    // Found by the black-box mutation test: `"id": 42` in a created resource was replaced
    // by the new id without a word, as were `meta.versionId`/`lastUpdated` of any type.
    #[test]
    fn stamp_refuses_server_assigned_properties_of_the_wrong_json_type() {
        for (body, at) in [
            (
                json!({"resourceType": "Observation", "id": 42}),
                "Observation.id",
            ),
            (
                json!({"resourceType": "Observation", "id": null}),
                "Observation.id",
            ),
            (
                json!({"resourceType": "Observation", "id": ["a"]}),
                "Observation.id",
            ),
            (
                json!({"resourceType": "Observation", "id": ""}),
                "Observation.id",
            ),
            (
                json!({"resourceType": "Observation", "meta": {"versionId": 1}}),
                "Observation.meta.versionId",
            ),
            (
                json!({"resourceType": "Observation", "meta": {"lastUpdated": {}}}),
                "Observation.meta.lastUpdated",
            ),
        ] {
            let Value::Object(map) = body.clone() else {
                unreachable!()
            };
            let e = stamp(map, "abc", 1, 0).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Invalid, "{body}");
            assert_eq!(e.issues()[0].expression.as_deref(), Some(at), "{body}");
        }
    }

    #[test]
    fn stamp_refuses_a_meta_that_is_not_an_object() {
        for meta in [json!("x"), json!([1]), json!(3), json!(null)] {
            let Value::Object(map) = json!({"resourceType": "Observation", "meta": meta}) else {
                unreachable!()
            };
            let err = stamp(map, "a", 1, 0).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid);
            assert_eq!(
                err.issues()[0].expression.as_deref(),
                Some("Observation.meta")
            );
        }
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
