//! Patient, STU3 ⇄ R4. A Finnish PHR Patient is a pseudonym (id, identifier, `active`); the
//! rest of the resource is converted too, for completeness: `animal` has no R4 place and the
//! link types were renamed.

use serde_json::{Map, Value};

use crate::fields::Fields;
use crate::{ConvertError, Version};

const DECEASED: &[&str] = &["Boolean", "DateTime"];
const MULTIPLE_BIRTH: &[&str] = &["Boolean", "Integer"];

pub(crate) fn convert(
    f: &mut Fields<'_>,
    out: &mut Map<String, Value>,
) -> Result<(), ConvertError> {
    let from = f.from;
    f.copy(
        out,
        &[
            "identifier",
            "active",
            "name",
            "telecom",
            "gender",
            "birthDate",
        ],
    );
    f.choice(out, "deceased", DECEASED, DECEASED)?;
    f.copy(out, &["address", "maritalStatus"]);
    f.choice(out, "multipleBirth", MULTIPLE_BIRTH, MULTIPLE_BIRTH)?;
    f.copy(
        out,
        &[
            "photo",
            "contact",
            "communication",
            "generalPractitioner",
            "managingOrganization",
        ],
    );
    if from == Version::Stu3 {
        f.refuse(
            &["animal"],
            "R4 Patient has no animal (use the patient-animal extension)",
        )?;
    }
    f.each(out, "link", "link", |l, path| link(l, path, from))?;
    Ok(())
}

fn link(l: &Value, path: String, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(l, path, from)?;
    let mut out = Map::new();
    f.copy(&mut out, &["id", "extension", "modifierExtension", "other"]);
    if let Some(kind) = f.take("type").and_then(Value::as_str) {
        let mapped = match (from, kind) {
            (Version::Stu3, "replace") => "replaced-by",
            (Version::R4, "replaced-by") => "replace",
            (Version::R4, "replaces") => {
                return Err(ConvertError::not_expressible(
                    &f.at("type"),
                    Version::Stu3,
                    "STU3 link types have no 'replaces'",
                ));
            }
            (_, other) => other,
        };
        out.insert("type".into(), Value::String(mapped.into()));
    }
    f.finish()?;
    Ok(Value::Object(out))
}
