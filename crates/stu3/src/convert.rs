//! Resource conversion: the elements every resource has (`meta`, narrative, extensions,
//! contained resources), the profile and extension URL maps, and the dispatch to each
//! resource type's module. Each type module lists every element of both versions, so an
//! element is either converted or reported, never dropped.

use phr_catalog::stu3::{self, Stu3Twin};
use phr_catalog::{Catalog, urls};
use serde_json::{Map, Value};

use crate::fields::Fields;
use crate::{ConvertError, Version};

/// Extensions whose URL differs between the versions: (STU3, R4).
const EXTENSION_URLS: &[(&str, &str)] = &[(
    "http://phr.kanta.fi/StructureDefinition/fiphr-boolean",
    urls::EXT_BOOLEAN,
)];

/// STU3 extensions with no R4 counterpart.
const STU3_ONLY_EXTENSIONS: &[&str] =
    &["http://phr.kanta.fi/StructureDefinition/fiphr-medicationcontext"];

/// Converts `resource` from `from` to the other version.
pub fn convert(resource: &Value, from: Version) -> Result<Value, ConvertError> {
    let rtype = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .ok_or_else(|| ConvertError::malformed("resourceType", from.other(), "is missing"))?;
    convert_typed(resource, rtype, rtype.to_string(), from)
}

fn convert_typed(
    resource: &Value,
    rtype: &str,
    path: String,
    from: Version,
) -> Result<Value, ConvertError> {
    let mut f = Fields::of(resource, path, from)?;
    let mut out = Map::new();
    f.copy(&mut out, &["resourceType", "id"]);
    if let Some(meta) = f.take("meta") {
        let converted = self::meta(meta, resource, &f.at("meta"), from)?;
        out.insert("meta".into(), converted);
    }
    f.copy(&mut out, &["implicitRules", "language", "text"]);
    f.each(&mut out, "contained", "contained", |item, path| {
        let t = item
            .get("resourceType")
            .and_then(Value::as_str)
            .ok_or_else(|| ConvertError::malformed(&path, from.other(), "has no resourceType"))?;
        convert_typed(item, t, path, from)
    })?;
    f.each(&mut out, "extension", "extension", |item, path| {
        extension(item, &path, from)
    })?;
    f.copy(&mut out, &["modifierExtension"]);
    match rtype {
        "Observation" => crate::observation::convert(&mut f, &mut out)?,
        "MedicationAdministration" => crate::medication::convert(&mut f, &mut out)?,
        "Patient" => crate::patient::convert(&mut f, &mut out)?,
        "Questionnaire" => crate::questionnaire::questionnaire(&mut f, &mut out)?,
        "QuestionnaireResponse" => crate::questionnaire::response(&mut f, &mut out)?,
        "CarePlan" => crate::careplan::convert(&mut f, &mut out)?,
        // Resources both versions define alike for what the server sends (its own answers).
        "OperationOutcome" => {
            let rest: Vec<String> = resource
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            f.copy(&mut out, &rest);
        }
        other => {
            return Err(ConvertError::not_expressible(
                &f.path,
                from.other(),
                format!("{other} is not served in FHIR {}", from.other().name()),
            ));
        }
    }
    f.finish()?;
    Ok(Value::Object(out))
}

fn meta(meta: &Value, resource: &Value, path: &str, from: Version) -> Result<Value, ConvertError> {
    let mut f = Fields::of(meta, path, from)?;
    let mut out = Map::new();
    f.copy(
        &mut out,
        &[
            "id",
            "extension",
            "versionId",
            "lastUpdated",
            "security",
            "tag",
        ],
    );
    if from == Version::R4 {
        f.refuse(&["source"], "STU3 Meta has no source")?;
    }
    if let Some(profiles) = f.take("profile") {
        let at = f.at("profile");
        let list = profiles
            .as_array()
            .ok_or_else(|| ConvertError::malformed(&at, from.other(), "must be a JSON array"))?;
        let mut converted: Vec<Value> = Vec::with_capacity(list.len());
        for (i, url) in list.iter().enumerate() {
            let path = format!("{at}[{i}]");
            let url = url
                .as_str()
                .ok_or_else(|| ConvertError::malformed(&path, from.other(), "must be a string"))?;
            let mapped = match from {
                Version::Stu3 => profile_to_r4(url, resource, &path)?,
                Version::R4 => profile_to_stu3(url, &path)?,
            };
            let mapped = Value::String(mapped);
            if !converted.contains(&mapped) {
                converted.push(mapped);
            }
        }
        out.insert("profile".into(), Value::Array(converted));
    }
    f.finish()?;
    Ok(Value::Object(out))
}

/// The R4 profile a STU3 instance's profile URL stands for.
fn profile_to_r4(url: &str, resource: &Value, path: &str) -> Result<String, ConvertError> {
    if let Some(twin) = stu3::twin_of_stu3(url) {
        return Ok(r4_profile_of(twin, resource).to_string());
    }
    if stu3::is_finnish_phr(url) {
        let hint = match stu3::twin_of_r4(url) {
            Some(twin) => format!("; name its STU3 twin {}", twin.url),
            None => "; that content is served at the R4 endpoint only".to_string(),
        };
        return Err(ConvertError::not_expressible(
            path,
            Version::R4,
            format!("{url} is not a Finnish PHR STU3 profile{hint}"),
        ));
    }
    // Another organisation's profile: kept, the R4 data rules decide about it.
    Ok(url.to_string())
}

/// The R4 profile of `twin` that holds `resource`: the one whose data content has the
/// resource's code (blood pressure, body weight...), else the twin's first.
pub(crate) fn r4_profile_of(twin: &Stu3Twin, resource: &Value) -> &'static str {
    let first = twin.r4.first().copied().unwrap_or(urls::VITAL_SIGNS);
    if twin.r4.len() < 2 {
        return first;
    }
    let codings = resource.pointer("/code/coding").and_then(Value::as_array);
    let has = |system: &str, code: &str| {
        codings.is_some_and(|list| {
            list.iter()
                .any(|c| c["system"] == system && c["code"] == code)
        })
    };
    Catalog::get()
        .contents()
        .iter()
        .filter(|c| twin.r4.contains(&c.profile) && c.profile != first)
        .find(|c| c.codes.iter().any(|code| has(code.system, code.code)))
        .map_or(first, |c| c.profile)
}

/// The STU3 profile an R4 profile URL is served as.
fn profile_to_stu3(url: &str, path: &str) -> Result<String, ConvertError> {
    if let Some(twin) = stu3::twin_of_r4(url) {
        return Ok(twin.url.to_string());
    }
    if stu3::is_finnish_phr(url) {
        return Err(ConvertError::not_expressible(
            path,
            Version::Stu3,
            format!("{url} has no STU3 twin: Kanta PHR served this content in R4 only"),
        ));
    }
    Ok(url.to_string())
}

/// A resource-level extension, its URL mapped where the versions name it differently.
fn extension(ext: &Value, path: &str, from: Version) -> Result<Value, ConvertError> {
    let Some(url) = ext.get("url").and_then(Value::as_str) else {
        return Ok(ext.clone());
    };
    if from == Version::Stu3 && STU3_ONLY_EXTENSIONS.contains(&url) {
        return Err(ConvertError::not_expressible(
            path,
            Version::R4,
            format!("the extension {url} has no R4 counterpart in Kanta PHR"),
        ));
    }
    let mapped = EXTENSION_URLS.iter().find_map(|(s, r)| match from {
        Version::Stu3 if *s == url => Some(*r),
        Version::R4 if *r == url => Some(*s),
        _ => None,
    });
    let mut ext = ext.clone();
    if let (Some(mapped), Some(object)) = (mapped, ext.as_object_mut()) {
        object.insert("url".into(), Value::String(mapped.to_string()));
    }
    Ok(ext)
}

/// An array-of-one in R4 that is a single value in STU3 (and back).
pub(crate) fn single_to_many(
    f: &mut Fields<'_>,
    out: &mut Map<String, Value>,
    name: &str,
) -> Result<(), ConvertError> {
    let Some(value) = f.take(name) else {
        return Ok(());
    };
    match f.from {
        Version::Stu3 => {
            out.insert(name.into(), Value::Array(vec![value.clone()]));
        }
        Version::R4 => {
            let items = value.as_array().ok_or_else(|| {
                ConvertError::malformed(&f.at(name), f.to(), "must be a JSON array")
            })?;
            match items.as_slice() {
                [one] => {
                    out.insert(name.into(), one.clone());
                }
                [] => {}
                _ => {
                    return Err(ConvertError::not_expressible(
                        &f.at(name),
                        f.to(),
                        format!("STU3 allows one {name}, this has {}", items.len()),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// A Reference as STU3 holds it (`{"reference": url}`) from an R4 canonical, and back.
pub(crate) fn reference_to_canonical(
    f: &mut Fields<'_>,
    out: &mut Map<String, Value>,
    stu3_name: &str,
    r4_name: &str,
) -> Result<(), ConvertError> {
    match f.from {
        Version::Stu3 => {
            let Some(reference) = f.take(stu3_name) else {
                return Ok(());
            };
            let at = f.at(stu3_name);
            let mut r = Fields::of(reference, at.clone(), f.from)?;
            let target = r.take("reference").and_then(Value::as_str);
            r.refuse(
                &["identifier", "display", "extension", "id"],
                "an R4 canonical is a bare URL",
            )?;
            r.finish()?;
            let target = target.ok_or_else(|| {
                ConvertError::not_expressible(
                    &at,
                    Version::R4,
                    "an R4 canonical needs a reference URL",
                )
            })?;
            out.insert(r4_name.into(), Value::String(target.to_string()));
        }
        Version::R4 => {
            if let Some(url) = f.take(r4_name) {
                out.insert(stu3_name.into(), serde_json::json!({"reference": url}));
            }
        }
    }
    Ok(())
}
