//! Observation, STU3 ⇄ R4. What differs for the Finnish PHR contents: the category code
//! system, `context` → `encounter`, `comment` → `note`, `related` → `hasMember` /
//! `derivedFrom`, `interpretation` 0..1 → 0..*, and the value and effective types.

use serde_json::{Map, Value, json};

use crate::convert::single_to_many;
use crate::fields::Fields;
use crate::{ConvertError, Version};

/// The observation-category code system in each version.
pub const CATEGORY_STU3: &str = "http://hl7.org/fhir/observation-category";
pub const CATEGORY_R4: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

const VALUE_STU3: &[&str] = &[
    "Quantity",
    "CodeableConcept",
    "String",
    "Boolean",
    "Range",
    "Ratio",
    "SampledData",
    "Attachment",
    "Time",
    "DateTime",
    "Period",
];
const VALUE_R4: &[&str] = &[
    "Quantity",
    "CodeableConcept",
    "String",
    "Boolean",
    "Integer",
    "Range",
    "Ratio",
    "SampledData",
    "Time",
    "DateTime",
    "Period",
];
const EFFECTIVE_STU3: &[&str] = &["DateTime", "Period"];
const EFFECTIVE_R4: &[&str] = &["DateTime", "Period", "Timing", "Instant"];

/// The category system of one version as the other names it; other systems are kept.
pub fn category_system(system: &str, from: Version) -> &str {
    match from {
        Version::Stu3 if system == CATEGORY_STU3 => CATEGORY_R4,
        Version::R4 if system == CATEGORY_R4 => CATEGORY_STU3,
        _ => system,
    }
}

fn types(
    from: Version,
    stu3: &'static [&'static str],
    r4: &'static [&'static str],
) -> (&'static [&'static str], &'static [&'static str]) {
    match from {
        Version::Stu3 => (stu3, r4),
        Version::R4 => (r4, stu3),
    }
}

pub(crate) fn convert(
    f: &mut Fields<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), ConvertError> {
    let from = f.from;
    f.copy(out, &["identifier", "basedOn", "status"]);
    if from == Version::R4 {
        f.refuse(&["partOf"], "STU3 Observation has no partOf")?;
    }
    f.each(out, "category", "category", |c, _| Ok(category(c, from)))?;
    f.copy(out, &["code", "subject"]);
    if from == Version::R4 {
        f.refuse(&["focus"], "STU3 Observation has no focus")?;
    }
    context(f, out)?;
    let (source, target) = types(from, EFFECTIVE_STU3, EFFECTIVE_R4);
    f.choice(out, "effective", source, target)?;
    f.copy(out, &["issued", "performer"]);
    let (source, target) = types(from, VALUE_STU3, VALUE_R4);
    f.choice(out, "value", source, target)?;
    f.copy(out, &["dataAbsentReason"]);
    single_to_many(f, out, "interpretation")?;
    comment(f, out)?;
    f.copy(
        out,
        &["bodySite", "method", "specimen", "device", "referenceRange"],
    );
    related(f, out)?;
    f.each(out, "component", "component", |c, path| {
        component(c, path, from)
    })?;
    Ok(())
}

fn category(c: &Value, from: Version) -> Value {
    let mut c = c.clone();
    let Some(codings) = c.get_mut("coding").and_then(Value::as_array_mut) else {
        return c;
    };
    for coding in codings {
        let system = coding
            .get("system")
            .and_then(Value::as_str)
            .map(|s| category_system(s, from).to_string());
        if let (Some(system), Some(object)) = (system, coding.as_object_mut()) {
            object.insert("system".into(), Value::String(system));
        }
    }
    c
}

/// STU3 `context` (Encounter or EpisodeOfCare) ⇄ R4 `encounter` (Encounter only).
fn context(f: &mut Fields<'_>, out: &mut Map<String, Value>) -> Result<(), ConvertError> {
    match f.from {
        Version::Stu3 => {
            if let Some(reference) = f.take("context") {
                let target = reference
                    .get("reference")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if target.starts_with("EpisodeOfCare/")
                    || reference.get("type") == Some(&json!("EpisodeOfCare"))
                {
                    return Err(ConvertError::not_expressible(
                        &f.at("context"),
                        Version::R4,
                        "R4 Observation.encounter refers to an Encounter only",
                    ));
                }
                out.insert("encounter".into(), reference.clone());
            }
        }
        Version::R4 => f.rename(out, "encounter", "context"),
    }
    Ok(())
}

/// STU3 `comment` (a string) ⇄ R4 `note` (Annotations): one note of text only crosses back.
fn comment(f: &mut Fields<'_>, out: &mut Map<String, Value>) -> Result<(), ConvertError> {
    match f.from {
        Version::Stu3 => {
            if let Some(text) = f.take("comment") {
                out.insert("note".into(), json!([{"text": text}]));
            }
        }
        Version::R4 => {
            if let Some(notes) = f.take("note") {
                let at = f.at("note");
                let text = match notes.as_array().map(Vec::as_slice) {
                    Some([note]) => note
                        .as_object()
                        .filter(|o| o.len() == 1)
                        .and_then(|o| o.get("text"))
                        .and_then(Value::as_str),
                    _ => None,
                };
                let text = text.ok_or_else(|| {
                    ConvertError::not_expressible(
                        &at,
                        Version::Stu3,
                        "STU3 Observation.comment holds one note of text only (no author, time or second note)",
                    )
                })?;
                out.insert("comment".into(), Value::String(text.to_string()));
            }
        }
    }
    Ok(())
}

/// STU3 `related` ⇄ R4 `hasMember` / `derivedFrom`.
fn related(f: &mut Fields<'_>, out: &mut Map<String, Value>) -> Result<(), ConvertError> {
    match f.from {
        Version::Stu3 => {
            let Some(related) = f.take("related") else {
                return Ok(());
            };
            let at = f.at("related");
            let items = related
                .as_array()
                .ok_or_else(|| ConvertError::malformed(&at, Version::R4, "must be a JSON array"))?;
            let (mut members, mut derived) = (Vec::new(), Vec::new());
            for (i, item) in items.iter().enumerate() {
                let path = format!("{at}[{i}]");
                let mut r = Fields::of(item, path.clone(), Version::Stu3)?;
                let kind = r.take("type").and_then(Value::as_str);
                let target = r.take("target").cloned();
                r.finish()?;
                let target = target
                    .ok_or_else(|| ConvertError::malformed(&path, Version::R4, "has no target"))?;
                match kind {
                    Some("has-member") => members.push(target),
                    Some("derived-from") => derived.push(target),
                    other => {
                        return Err(ConvertError::not_expressible(
                            &format!("{path}.type"),
                            Version::R4,
                            format!(
                                "R4 keeps has-member and derived-from relations only, not {}",
                                other.unwrap_or("an untyped one")
                            ),
                        ));
                    }
                }
            }
            if !members.is_empty() {
                out.insert("hasMember".into(), Value::Array(members));
            }
            if !derived.is_empty() {
                out.insert("derivedFrom".into(), Value::Array(derived));
            }
        }
        Version::R4 => {
            let mut related = Vec::new();
            for (name, kind) in [("hasMember", "has-member"), ("derivedFrom", "derived-from")] {
                if let Some(items) = f.take(name) {
                    let items = items.as_array().ok_or_else(|| {
                        ConvertError::malformed(&f.at(name), Version::Stu3, "must be a JSON array")
                    })?;
                    related.extend(items.iter().map(|t| json!({"type": kind, "target": t})));
                }
            }
            if !related.is_empty() {
                out.insert("related".into(), Value::Array(related));
            }
        }
    }
    Ok(())
}

fn component(c: &Value, path: String, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(c, path, from)?;
    let mut out = Map::new();
    f.copy(&mut out, &["id", "extension", "modifierExtension", "code"]);
    let (source, target) = types(from, VALUE_STU3, VALUE_R4);
    f.choice(&mut out, "value", source, target)?;
    f.copy(&mut out, &["dataAbsentReason"]);
    single_to_many(&mut f, &mut out, "interpretation")?;
    f.copy(&mut out, &["referenceRange"]);
    f.finish()?;
    Ok(Value::Object(out))
}
