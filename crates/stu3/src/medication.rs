//! MedicationAdministration (insulin dosing), STU3 ⇄ R4: `notGiven` becomes status
//! `not-done` (and back, with status `completed`), `reasonNotGiven` ⇄ `statusReason`,
//! `prescription` ⇄ `request`, `definition` ⇄ `instantiates`; `context` and `dosage` (dose,
//! rate, route, site, method, text) keep their names.

use serde_json::{Map, Value};

use crate::fields::Fields;
use crate::{ConvertError, Version};

const MEDICATION: &[&str] = &["CodeableConcept", "Reference"];
const EFFECTIVE: &[&str] = &["DateTime", "Period"];
const RATE: &[&str] = &["Ratio", "Quantity"];

pub(crate) fn convert(
    f: &mut Fields<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), ConvertError> {
    let from = f.from;
    f.copy(out, &["identifier"]);
    match from {
        Version::Stu3 => f.refuse(
            &["definition"],
            "R4 instantiates holds a URI, not a Reference",
        )?,
        Version::R4 => f.refuse(
            &["instantiates"],
            "STU3 definition holds a Reference, not a URI",
        )?,
    }
    f.copy(out, &["partOf"]);
    status(f, out)?;
    f.copy(out, &["category"]);
    f.choice(out, "medication", MEDICATION, MEDICATION)?;
    f.copy(out, &["subject", "context", "supportingInformation"]);
    f.choice(out, "effective", EFFECTIVE, EFFECTIVE)?;
    f.each(out, "performer", "performer", |p, path| {
        performer(p, path, from)
    })?;
    f.copy(out, &["reasonCode", "reasonReference"]);
    match from {
        Version::Stu3 => f.rename(out, "prescription", "request"),
        Version::R4 => f.rename(out, "request", "prescription"),
    }
    f.copy(out, &["device", "note"]);
    if let Some(dosage) = f.take("dosage") {
        out.insert("dosage".into(), self::dosage(dosage, f.at("dosage"), from)?);
    }
    f.copy(out, &["eventHistory"]);
    Ok(())
}

/// STU3 `status` + `notGiven` + `reasonNotGiven` ⇄ R4 `status` + `statusReason`.
fn status(f: &mut Fields<'_>, out: &mut Map<String, Value>) -> Result<(), ConvertError> {
    match f.from {
        Version::Stu3 => {
            let not_given = match f.take("notGiven") {
                None => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(ConvertError::malformed(
                        &f.at("notGiven"),
                        Version::R4,
                        "must be true or false",
                    ));
                }
            };
            let status = f.take("status").and_then(Value::as_str);
            if not_given {
                if status.is_some_and(|s| s != "completed") {
                    return Err(ConvertError::not_expressible(
                        &f.at("status"),
                        Version::R4,
                        "a dose not given is R4 status not-done, which keeps no other status",
                    ));
                }
                out.insert("status".into(), Value::String("not-done".into()));
                f.rename(out, "reasonNotGiven", "statusReason");
            } else {
                f.refuse(
                    &["reasonNotGiven"],
                    "R4 statusReason belongs to a dose not given",
                )?;
                if let Some(status) = status {
                    out.insert("status".into(), Value::String(status.to_string()));
                }
            }
        }
        Version::R4 => {
            let status = f.take("status").and_then(Value::as_str);
            if status == Some("not-done") {
                out.insert("status".into(), Value::String("completed".into()));
                out.insert("notGiven".into(), Value::Bool(true));
                f.rename(out, "statusReason", "reasonNotGiven");
            } else {
                f.refuse(
                    &["statusReason"],
                    "STU3 reasonNotGiven belongs to a dose not given",
                )?;
                if let Some(status) = status {
                    out.insert("status".into(), Value::String(status.to_string()));
                }
            }
        }
    }
    Ok(())
}

fn performer(p: &Value, path: String, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(p, path, from)?;
    let mut out = Map::new();
    f.copy(&mut out, &["id", "extension", "modifierExtension", "actor"]);
    match from {
        Version::Stu3 => f.refuse(&["onBehalfOf"], "R4 performer has no onBehalfOf")?,
        Version::R4 => f.refuse(&["function"], "STU3 performer has no function")?,
    }
    f.finish()?;
    Ok(Value::Object(out))
}

fn dosage(d: &Value, path: String, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(d, path, from)?;
    let mut out = Map::new();
    f.copy(
        &mut out,
        &[
            "id",
            "extension",
            "modifierExtension",
            "text",
            "site",
            "route",
            "method",
            "dose",
        ],
    );
    f.choice(&mut out, "rate", RATE, RATE)?;
    f.finish()?;
    Ok(Value::Object(out))
}
