//! Kanta's write-path data rules: what the server enforces on every create and update besides
//! profile validation (KANTA-PHR.md §5). Each finding is an `Issue` with a FHIRPath expression
//! pointing at the element and a message saying what to do.
//!
//! The server calls, in this order:
//! 1. [`apply_creating_application`] and [`set_issued`]: fill in what the server owns;
//! 2. [`check`]: the data rules;
//! 3. profile validation (phr-fhir), against the profile `check` accepted;
//! 4. [`patient_references`]: the references whose Patient must exist and be the caller's.
//!
//! Nothing here looks at storage or at the caller's token; that is the server's part.

use serde_json::{Map, Value, json};

use phr_fhir::{Issue, IssueType};

use crate::{Catalog, urls};

/// The calling application, as registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct App<'a> {
    /// The identifier assigned at registration (`creatingApplication.applicationId`).
    pub id: &'a str,
    /// The registered name (`creatingApplication.name`).
    pub name: &'a str,
}

/// A reference to a Patient found in a resource: where it is, and the Patient's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRef {
    /// FHIRPath of the `reference` element, e.g. `Observation.performer[0].reference`.
    pub expression: String,
    /// The logical id of the referenced Patient.
    pub id: String,
}

/// What Kanta requires of `status`.
#[derive(Debug, Clone, Copy)]
enum StatusRule {
    Any,
    Only(&'static str),
    Never(&'static str),
}

/// Where a resource refers to the user's Patient: JSON keys from the resource root, and
/// whether the element must be there.
#[derive(Debug, Clone, Copy)]
struct PatientLink {
    keys: &'static [&'static str],
    required: bool,
}

const fn link(keys: &'static [&'static str], required: bool) -> PatientLink {
    PatientLink { keys, required }
}

/// The data rules of one resource type.
#[derive(Debug, Clone, Copy)]
struct TypeRules {
    resource_type: &'static str,
    language: bool,
    text: bool,
    /// At least one `urn:ietf:rfc:3986` identifier with a `urn:uuid:` value.
    uuid_identifier: bool,
    status: StatusRule,
    creating_application: bool,
    patient_links: &'static [PatientLink],
}

/// Kanta's rules per resource type; types not listed have no Finnish PHR profile.
const TYPE_RULES: &[TypeRules] = &[
    TypeRules {
        resource_type: "Observation",
        language: true,
        text: true,
        uuid_identifier: true,
        status: StatusRule::Only("final"),
        creating_application: true,
        patient_links: &[link(&["subject"], true), link(&["performer"], true)],
    },
    TypeRules {
        resource_type: "MedicationAdministration",
        language: true,
        text: true,
        uuid_identifier: true,
        status: StatusRule::Only("completed"),
        creating_application: true,
        patient_links: &[
            link(&["subject"], true),
            link(&["performer", "actor"], false),
            link(&["note", "authorReference"], false),
        ],
    },
    TypeRules {
        resource_type: "CarePlan",
        language: true,
        text: true,
        uuid_identifier: true,
        status: StatusRule::Only("completed"),
        creating_application: true,
        patient_links: &[link(&["subject"], true), link(&["author"], true)],
    },
    TypeRules {
        resource_type: "QuestionnaireResponse",
        language: true,
        text: true,
        uuid_identifier: true,
        status: StatusRule::Never("entered-in-error"),
        creating_application: true,
        patient_links: &[
            link(&["subject"], true),
            link(&["author"], false),
            link(&["source"], true),
        ],
    },
    TypeRules {
        // Multilingual questionnaires exist, so no language is required.
        resource_type: "Questionnaire",
        language: false,
        text: true,
        uuid_identifier: true,
        status: StatusRule::Any,
        creating_application: true,
        patient_links: &[],
    },
    TypeRules {
        // A pseudonym only: see `check_pseudonym`.
        resource_type: "Patient",
        language: false,
        text: false,
        uuid_identifier: false,
        status: StatusRule::Any,
        creating_application: false,
        patient_links: &[],
    },
];

/// What a Patient may carry besides its identifier.
const PATIENT_ELEMENTS: &[&str] = &[
    "resourceType",
    "id",
    "meta",
    "language",
    "identifier",
    "active",
];

fn rules_for(resource_type: &str) -> Option<&'static TypeRules> {
    TYPE_RULES.iter().find(|r| r.resource_type == resource_type)
}

fn resource_type(resource: &Value) -> &str {
    resource["resourceType"].as_str().unwrap_or("Resource")
}

/// Kanta's data rules for `resource`. An empty result, or warnings only, means it may be
/// stored (after validation against its profile).
pub fn check(resource: &Value) -> Vec<Issue> {
    let rt = resource_type(resource);
    let Some(rules) = rules_for(rt) else {
        return vec![
            Issue::error(
                IssueType::NotSupported,
                format!("the Finnish PHR stores no {rt} resources: there is no Finnish PHR profile for them"),
            )
            .at(rt),
        ];
    };
    let mut issues = check_profile(resource, rt);
    if rules.language {
        issues.extend(check_language(resource, rt));
    }
    if rules.text {
        issues.extend(check_text(resource, rt));
    }
    issues.extend(check_contained_narrative(resource, rt));
    if rules.uuid_identifier {
        issues.extend(check_uuid_identifier(resource, rt));
    }
    issues.extend(check_status(resource, rt, rules.status));
    for link in rules.patient_links {
        issues.extend(check_patient_link(resource, rt, link));
    }
    if rt == "Patient" {
        issues.extend(check_pseudonym(resource));
    }
    issues
}

/// `meta.profile` names a catalogued profile for this resource type; other profiles may
/// appear beside it (with a warning that they are not checked).
fn check_profile(resource: &Value, rt: &str) -> Vec<Issue> {
    let catalog = Catalog::get();
    let expression = format!("{rt}.meta.profile");
    let declared: Vec<&str> = resource
        .pointer("/meta/profile")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let expected = || {
        catalog
            .profiles_for_type(rt)
            .map(|p| p.url)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut issues = Vec::new();
    let mut found = false;
    for (i, url) in declared.iter().enumerate() {
        match catalog.profile(url) {
            Some(p) if p.type_name == rt && p.is_instantiable() => found = true,
            Some(p) if p.type_name != rt => issues.push(
                Issue::error(
                    IssueType::Invalid,
                    format!("{url} is a Finnish PHR profile for {}, not for {rt}", p.type_name),
                )
                .at(format!("{expression}[{i}]")),
            ),
            Some(_) => issues.push(
                Issue::error(
                    IssueType::Invalid,
                    format!(
                        "{url} is an abstract base profile; name the profile of the data content: {}",
                        expected()
                    ),
                )
                .at(format!("{expression}[{i}]")),
            ),
            None if url.starts_with(urls::SD_BASE) => issues.push(
                Issue::error(
                    IssueType::NotSupported,
                    format!("{url} is not a Finnish PHR profile this server knows"),
                )
                .at(format!("{expression}[{i}]")),
            ),
            None => issues.push(
                Issue::warning(
                    IssueType::Informational,
                    format!("{url} is not a Finnish PHR profile; the resource was not checked against it"),
                )
                .at(format!("{expression}[{i}]")),
            ),
        }
    }
    if !found {
        issues.push(
            Issue::error(
                IssueType::Required,
                format!(
                    "meta.profile must name the Finnish PHR profile of the resource, one of: {}",
                    expected()
                ),
            )
            .at(expression),
        );
    }
    issues
}

fn check_language(resource: &Value, rt: &str) -> Option<Issue> {
    match resource.get("language") {
        Some(Value::String(s)) if !s.trim().is_empty() => None,
        _ => Some(
            Issue::error(
                IssueType::Required,
                "language is required: the language of the resource and its narrative (e.g. 'fi', 'sv', 'en')",
            )
            .at(format!("{rt}.language")),
        ),
    }
}

fn check_text(resource: &Value, rt: &str) -> Option<Issue> {
    let Some(text) = resource.get("text") else {
        return Some(
            Issue::error(
                IssueType::Required,
                "a narrative (text) is required, written in the resource's language",
            )
            .at(format!("{rt}.text")),
        );
    };
    let div = text["div"].as_str().unwrap_or("");
    if div.trim().is_empty() {
        return Some(
            Issue::error(
                IssueType::Required,
                "the narrative needs a div with content",
            )
            .at(format!("{rt}.text.div")),
        );
    }
    None
}

fn check_contained_narrative(resource: &Value, rt: &str) -> Vec<Issue> {
    resource["contained"]
        .as_array()
        .map(|list| {
            list.iter()
                .enumerate()
                .filter(|(_, c)| c.get("text").is_some())
                .map(|(i, _)| {
                    Issue::error(
                        IssueType::Invalid,
                        "contained resources SHALL NOT have a narrative",
                    )
                    .at(format!("{rt}.contained[{i}].text"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `urn:uuid:` and an 8-4-4-4-12 hexadecimal UUID (either case).
fn is_urn_uuid(value: &str) -> bool {
    let Some(uuid) = value.strip_prefix("urn:uuid:") else {
        return false;
    };
    let bytes = uuid.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `urn:uuid:` and something UUID-like: letters, digits and hyphens. Kanta's own examples
/// carry mistyped UUIDs (a stray `r`, a 13-digit last group) and Kanta accepts them; they are
/// still unique strings, which is what the rule is for.
fn is_urn_uuid_like(value: &str) -> bool {
    value.strip_prefix("urn:uuid:").is_some_and(|rest| {
        rest.len() >= 32 && rest.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    })
}

fn check_uuid_identifier(resource: &Value, rt: &str) -> Vec<Issue> {
    // `identifier` is a list on most types, a single Identifier on QuestionnaireResponse.
    let identifiers = elements_at(resource, rt, &["identifier"]);
    let rfc3986: Vec<&(String, &Value)> = identifiers
        .iter()
        .filter(|(_, id)| id["system"] == urls::RFC3986)
        .collect();
    let value = |id: &Value| id["value"].as_str().unwrap_or("").to_string();
    if rfc3986.iter().any(|(_, id)| is_urn_uuid(&value(id))) {
        return Vec::new();
    }
    if let Some((path, id)) = rfc3986.iter().find(|(_, id)| is_urn_uuid_like(&value(id))) {
        return vec![
            Issue::warning(
                IssueType::Value,
                format!(
                    "'{}' is not a well-formed UUID (8-4-4-4-12 hexadecimal digits)",
                    value(id)
                ),
            )
            .at(format!("{path}.value")),
        ];
    }
    let message = "at least one identifier SHALL be globally unique: system 'urn:ietf:rfc:3986' \
                   and value 'urn:uuid:' followed by a UUID";
    vec![match rfc3986.first() {
        Some((path, _)) => Issue::error(IssueType::Invalid, message).at(format!("{path}.value")),
        None => Issue::error(IssueType::Required, message).at(format!("{rt}.identifier")),
    }]
}

fn check_status(resource: &Value, rt: &str, rule: StatusRule) -> Option<Issue> {
    let status = resource["status"].as_str();
    let at = format!("{rt}.status");
    match rule {
        StatusRule::Any => None,
        StatusRule::Only(only) if status == Some(only) => None,
        StatusRule::Only(only) => Some(
            Issue::error(
                IssueType::Value,
                format!(
                    "the Finnish PHR stores {rt} resources only with status '{only}'{}",
                    status.map(|s| format!(", not '{s}'")).unwrap_or_default()
                ),
            )
            .at(at),
        ),
        StatusRule::Never(never) if status == Some(never) => Some(
            Issue::error(
                IssueType::BusinessRule,
                format!("an erroneous {rt} may not be stored (status '{never}'): correct it or delete it"),
            )
            .at(at),
        ),
        StatusRule::Never(_) => None,
    }
}

/// Every element at `keys` from the root, with its FHIRPath (arrays indexed).
fn elements_at<'a>(resource: &'a Value, rt: &str, keys: &[&str]) -> Vec<(String, &'a Value)> {
    let mut found = vec![(rt.to_string(), resource)];
    for key in keys {
        let mut next = Vec::new();
        for (path, value) in found {
            match value.get(*key) {
                Some(Value::Array(items)) => next.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| (format!("{path}.{key}[{i}]"), item)),
                ),
                Some(item) => next.push((format!("{path}.{key}"), item)),
                None => {}
            }
        }
        found = next;
    }
    found
}

/// The Patient id of a literal local reference `Patient/<id>`, if that is what `reference` is.
fn local_patient_id(reference: &str) -> Option<&str> {
    let id = reference.strip_prefix("Patient/")?;
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
    valid.then_some(id)
}

fn check_patient_link(resource: &Value, rt: &str, link: &PatientLink) -> Vec<Issue> {
    let found = elements_at(resource, rt, link.keys);
    if found.is_empty() {
        if link.required {
            return vec![
                Issue::error(
                    IssueType::Required,
                    "a reference to the user's Patient is required here",
                )
                .at(format!("{rt}.{}", link.keys.join("."))),
            ];
        }
        return Vec::new();
    }
    let mut issues = Vec::new();
    for (path, element) in found {
        match element["reference"].as_str() {
            Some(reference) if local_patient_id(reference).is_some() => {}
            Some(reference) => issues.push(
                Issue::error(
                    IssueType::Invalid,
                    format!(
                        "'{reference}' is not a literal local reference to a Patient: write 'Patient/<id>' \
                         (no server address, no version, no contained resource)"
                    ),
                )
                .at(format!("{path}.reference")),
            ),
            None => issues.push(
                Issue::error(
                    IssueType::Required,
                    "a literal reference 'Patient/<id>' is required (identifier or display alone is not enough)",
                )
                .at(format!("{path}.reference")),
            ),
        }
    }
    issues
}

/// The references to Patients that the server must check: each must exist and, when the
/// caller is confined to a patient, be that patient. Malformed references are not listed
/// (`check` reports them).
pub fn patient_references(resource: &Value) -> Vec<PatientRef> {
    let rt = resource_type(resource);
    let Some(rules) = rules_for(rt) else {
        return Vec::new();
    };
    rules
        .patient_links
        .iter()
        .flat_map(|link| elements_at(resource, rt, link.keys))
        .filter_map(|(path, element)| {
            let id = local_patient_id(element["reference"].as_str()?)?;
            Some(PatientRef {
                expression: format!("{path}.reference"),
                id: id.to_string(),
            })
        })
        .collect()
}

/// A Patient is a pseudonym: one `urn:ietf:rfc:3986` identifier `urn:uuid:<id>`, and nothing
/// that could identify the person.
fn check_pseudonym(patient: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    if let Some(object) = patient.as_object() {
        for key in object
            .keys()
            .filter(|k| !PATIENT_ELEMENTS.contains(&k.as_str()))
        {
            issues.push(
                Issue::error(
                    IssueType::Invalid,
                    format!(
                        "a Finnish PHR Patient carries only its pseudonym identifier; remove {key}"
                    ),
                )
                .at(format!("Patient.{key}")),
            );
        }
    }
    let identifiers = patient["identifier"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [identifier] = identifiers else {
        issues.push(
            Issue::error(
                IssueType::Invalid,
                format!(
                    "a Patient has exactly one identifier, its pseudonym, not {}",
                    identifiers.len()
                ),
            )
            .at("Patient.identifier"),
        );
        return issues;
    };
    if let Some(object) = identifier.as_object() {
        for key in object
            .keys()
            .filter(|k| !matches!(k.as_str(), "system" | "value"))
        {
            issues.push(
                Issue::error(
                    IssueType::Invalid,
                    format!("the pseudonym identifier has only system and value; remove {key}"),
                )
                .at(format!("Patient.identifier[0].{key}")),
            );
        }
    }
    if identifier["system"] != urls::RFC3986 {
        issues.push(
            Issue::error(
                IssueType::Value,
                "the pseudonym identifier's system is 'urn:ietf:rfc:3986'",
            )
            .at("Patient.identifier[0].system"),
        );
    }
    let value = identifier["value"].as_str().unwrap_or("");
    if !is_urn_uuid(value) {
        issues.push(
            Issue::error(
                IssueType::Value,
                "the pseudonym is 'urn:uuid:' followed by a UUID",
            )
            .at("Patient.identifier[0].value"),
        );
    } else if let Some(id) = patient["id"].as_str()
        && value.strip_prefix("urn:uuid:") != Some(id)
    {
        issues.push(
            Issue::error(
                IssueType::Value,
                format!("the pseudonym must be the Patient's id: 'urn:uuid:{id}'"),
            )
            .at("Patient.identifier[0].value"),
        );
    }
    issues
}

/// The Patient id a new Patient's pseudonym implies (`urn:uuid:<id>`), for the server to use
/// as its logical id.
pub fn pseudonym_id(patient: &Value) -> Option<&str> {
    let value = patient.pointer("/identifier/0/value")?.as_str()?;
    value
        .strip_prefix("urn:uuid:")
        .filter(|_| is_urn_uuid(value))
}

fn creating_application_value(app: App<'_>) -> Value {
    json!({
        "url": urls::EXT_CREATING_APPLICATION,
        "extension": [
            {"url": "name", "valueString": app.name},
            {"url": "applicationId", "valueString": app.id},
        ]
    })
}

/// Fills `creatingApplication` from the caller's registration when the resource lacks it;
/// rejects one that names another application; corrects the name of the caller's own to the
/// registered one. Contained resources and Patients do not carry it.
pub fn apply_creating_application(resource: &mut Value, app: App<'_>) -> Vec<Issue> {
    let rt = resource_type(resource).to_string();
    if !rules_for(&rt).is_some_and(|r| r.creating_application) {
        return Vec::new();
    }
    let Some(object) = resource.as_object_mut() else {
        return Vec::new();
    };
    let extensions = object
        .entry("extension")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(list) = extensions.as_array_mut() else {
        return vec![
            Issue::error(IssueType::Structure, "extension must be a list")
                .at(format!("{rt}.extension")),
        ];
    };
    let mine: Vec<usize> = list
        .iter()
        .enumerate()
        .filter(|(_, e)| e["url"] == urls::EXT_CREATING_APPLICATION)
        .map(|(i, _)| i)
        .collect();
    let Some((&first, rest)) = mine.split_first() else {
        list.push(creating_application_value(app));
        return Vec::new();
    };
    let mut issues: Vec<Issue> = rest
        .iter()
        .map(|i| {
            Issue::error(
                IssueType::Invalid,
                "a resource names its creating application once",
            )
            .at(format!("{rt}.extension[{i}]"))
        })
        .collect();
    let at = format!("{rt}.extension[{first}]");
    let parts = list
        .get_mut(first)
        .and_then(|e| e.get_mut("extension"))
        .and_then(Value::as_array_mut);
    let Some(parts) = parts else {
        issues.push(
            Issue::error(
                IssueType::Required,
                "creatingApplication needs 'name' and 'applicationId'",
            )
            .at(at),
        );
        return issues;
    };
    let position = |parts: &[Value], url: &str| {
        parts
            .iter()
            .position(|p| p.get("url").and_then(Value::as_str) == Some(url))
    };
    let value_string = |part: Option<&Value>| {
        part.and_then(|p| p.get("valueString"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    match position(parts, "applicationId") {
        Some(k) => {
            let named = value_string(parts.get(k)).unwrap_or_default();
            if named != app.id {
                issues.push(
                    Issue::error(
                        IssueType::Forbidden,
                        format!(
                            "creatingApplication names application '{named}', but the resource is written by '{}'",
                            app.id
                        ),
                    )
                    .at(format!("{at}.extension[{k}].valueString")),
                );
            }
        }
        None => issues.push(
            Issue::error(
                IssueType::Required,
                "creatingApplication needs 'applicationId'",
            )
            .at(format!("{at}.extension")),
        ),
    }
    match position(parts, "name") {
        Some(k) if value_string(parts.get(k)).as_deref() != Some(app.name) => {
            if let Some(part) = parts.get_mut(k) {
                *part = json!({"url": "name", "valueString": app.name});
            }
            issues.push(
                Issue::warning(
                    IssueType::Informational,
                    format!(
                        "creatingApplication.name was replaced with the registered name '{}'",
                        app.name
                    ),
                )
                .at(format!("{at}.extension[{k}].valueString")),
            );
        }
        Some(_) => {}
        None => parts.insert(0, json!({"url": "name", "valueString": app.name})),
    }
    issues
}

/// Sets `Observation.issued` to `instant`, the time of storage (a FHIR instant). Other
/// resource types have no `issued`, and an `issued` that is not a JSON string is left for
/// the validator to refuse; returns whether it was set.
pub fn set_issued(resource: &mut Value, instant: &str) -> bool {
    if resource_type(resource) != "Observation" {
        return false;
    }
    match resource.as_object_mut() {
        // A client's `issued` of the wrong JSON type stays for the validator to report:
        // replacing it would hide malformed input.
        Some(object) if object.get("issued").is_some_and(|v| !v.is_string()) => false,
        Some(object) => {
            let effective = [
                "effectiveDateTime",
                "effectivePeriod",
                "effectiveTiming",
                "effectiveInstant",
            ];
            insert_after(object, "issued", json!(instant), &effective);
            true
        }
        None => false,
    }
}

/// Sets `key`, keeping the element order FHIR prescribes when the key is new: right after
/// the first of `after` present (JSON order does not matter to FHIR, but people read it).
fn insert_after(object: &mut Map<String, Value>, key: &str, value: Value, after: &[&str]) {
    if let Some(slot) = object.get_mut(key) {
        *slot = value;
        return;
    }
    let Some(anchor) = after.iter().find(|a| object.contains_key(**a)).copied() else {
        object.insert(key.to_string(), value);
        return;
    };
    let entries = std::mem::take(object);
    let mut value = Some(value);
    for (k, v) in entries {
        let is_anchor = k == anchor;
        object.insert(k, v);
        if is_anchor && let Some(v) = value.take() {
            object.insert(key.to_string(), v);
        }
    }
}
