//! CarePlan (self-care plan), STU3 ⇄ R4: status names (`suspended` ⇄ `on-hold`, `cancelled`
//! ⇄ `revoked`), `context` ⇄ `encounter`, STU3's many authors ⇄ R4's one author,
//! `definition` ⇄ `instantiatesCanonical`, and in activities `prohibited` ⇄ `doNotPerform`
//! and a text `statusReason` ⇄ a CodeableConcept of text only.

use serde_json::{Map, Value, json};

use crate::convert::reference_to_canonical;
use crate::fields::Fields;
use crate::{ConvertError, Version};

const SCHEDULED: &[&str] = &["Timing", "Period", "String"];
const PRODUCT: &[&str] = &["CodeableConcept", "Reference"];

/// CarePlan.status values that were renamed: (STU3, R4).
const STATUS: &[(&str, &str)] = &[("suspended", "on-hold"), ("cancelled", "revoked")];

pub(crate) fn convert(
    f: &mut Fields<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), ConvertError> {
    let from = f.from;
    f.copy(out, &["identifier"]);
    match from {
        Version::Stu3 => {
            if let Some(defs) = f.take("definition") {
                let at = f.at("definition");
                let items = defs.as_array().ok_or_else(|| {
                    ConvertError::malformed(&at, Version::R4, "must be a JSON array")
                })?;
                let mut urls = Vec::new();
                for (i, d) in items.iter().enumerate() {
                    let mut m = Map::new();
                    let wrapper = json!({ "definition": d });
                    let mut w = Fields::of(&wrapper, format!("{at}[{i}]"), from)?;
                    reference_to_canonical(&mut w, &mut m, "definition", "instantiatesCanonical")?;
                    urls.extend(m.remove("instantiatesCanonical"));
                }
                out.insert("instantiatesCanonical".into(), Value::Array(urls));
            }
        }
        Version::R4 => {
            f.refuse(&["instantiatesUri"], "STU3 CarePlan has no instantiatesUri")?;
            if let Some(urls) = f.take("instantiatesCanonical") {
                let at = f.at("instantiatesCanonical");
                let items = urls.as_array().ok_or_else(|| {
                    ConvertError::malformed(&at, Version::Stu3, "must be a JSON array")
                })?;
                let refs: Vec<Value> = items.iter().map(|u| json!({"reference": u})).collect();
                out.insert("definition".into(), Value::Array(refs));
            }
        }
    }
    f.copy(out, &["basedOn", "replaces", "partOf"]);
    if let Some(status) = f.take("status").and_then(Value::as_str) {
        let mapped = STATUS
            .iter()
            .find_map(|(s, r)| match from {
                Version::Stu3 if *s == status => Some(*r),
                Version::R4 if *r == status => Some(*s),
                _ => None,
            })
            .unwrap_or(status);
        out.insert("status".into(), Value::String(mapped.into()));
    }
    f.copy(
        out,
        &["intent", "category", "title", "description", "subject"],
    );
    match from {
        Version::Stu3 => f.rename(out, "context", "encounter"),
        Version::R4 => f.rename(out, "encounter", "context"),
    }
    f.copy(out, &["period"]);
    if from == Version::R4 {
        f.refuse(&["created"], "STU3 CarePlan has no created")?;
        f.refuse(&["contributor"], "STU3 CarePlan names its authors only")?;
    }
    author(f, out)?;
    f.copy(out, &["careTeam", "addresses", "supportingInfo", "goal"]);
    f.each(out, "activity", "activity", |a, path| {
        activity(a, path, from)
    })?;
    f.copy(out, &["note"]);
    Ok(())
}

/// STU3 `author` (0..*) ⇄ R4 `author` (0..1).
fn author(f: &mut Fields<'_>, out: &mut Map<String, Value>) -> Result<(), ConvertError> {
    let Some(author) = f.take("author") else {
        return Ok(());
    };
    match f.from {
        Version::Stu3 => match author.as_array().map(Vec::as_slice) {
            Some([one]) => {
                out.insert("author".into(), one.clone());
            }
            Some([]) => {}
            _ => {
                return Err(ConvertError::not_expressible(
                    &f.at("author"),
                    Version::R4,
                    "R4 CarePlan has one author",
                ));
            }
        },
        Version::R4 => {
            out.insert("author".into(), Value::Array(vec![author.clone()]));
        }
    }
    Ok(())
}

fn activity(a: &Value, path: String, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(a, path, from)?;
    let mut out = Map::new();
    f.copy(
        &mut out,
        &[
            "id",
            "extension",
            "modifierExtension",
            "outcomeCodeableConcept",
            "outcomeReference",
            "progress",
            "reference",
        ],
    );
    if let Some(detail) = f.take("detail") {
        out.insert("detail".into(), self::detail(detail, f.at("detail"), from)?);
    }
    f.finish()?;
    Ok(Value::Object(out))
}

fn detail(d: &Value, path: String, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(d, path, from)?;
    let mut out = Map::new();
    f.copy(&mut out, &["id", "extension", "modifierExtension"]);
    match from {
        Version::Stu3 => f.refuse(
            &["category", "definition"],
            "R4 activity details have kind and instantiates* instead",
        )?,
        Version::R4 => f.refuse(
            &["kind", "instantiatesCanonical", "instantiatesUri"],
            "STU3 activity details have no such element",
        )?,
    }
    f.copy(
        &mut out,
        &["code", "reasonCode", "reasonReference", "goal", "status"],
    );
    match from {
        Version::Stu3 => {
            if let Some(reason) = f.take("statusReason") {
                out.insert("statusReason".into(), json!({"text": reason}));
            }
            f.rename(&mut out, "prohibited", "doNotPerform");
        }
        Version::R4 => {
            if let Some(reason) = f.take("statusReason") {
                let text = reason
                    .as_object()
                    .filter(|o| o.len() == 1)
                    .and_then(|o| o.get("text"))
                    .ok_or_else(|| {
                        ConvertError::not_expressible(
                            &f.at("statusReason"),
                            Version::Stu3,
                            "STU3 holds a status reason as text only",
                        )
                    })?;
                out.insert("statusReason".into(), text.clone());
            }
            f.rename(&mut out, "doNotPerform", "prohibited");
        }
    }
    f.choice(&mut out, "scheduled", SCHEDULED, SCHEDULED)?;
    f.copy(&mut out, &["location", "performer"]);
    f.choice(&mut out, "product", PRODUCT, PRODUCT)?;
    f.copy(&mut out, &["dailyAmount", "quantity", "description"]);
    f.finish()?;
    Ok(Value::Object(out))
}
