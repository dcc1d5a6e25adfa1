//! Rules about conformance resources that their StructureDefinitions cannot state, checked
//! when such a resource is validated (as served, or as a client sends it) and when a package
//! is loaded: a SearchParameter derived from another agrees with it on type and base; a
//! CodeSystem declares the properties its concepts use, with the declared types, and lists
//! each code once; a ValueSet filters a code system only by properties the code system
//! defines.
//!
//! Findings carry paths relative to the resource. This module never changes a registry.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::bundle::Finding;
use crate::outcome::{IssueType, Severity};
use crate::registry::Definitions;

fn error(path: String, code: IssueType, message: String) -> Finding {
    Finding {
        path,
        severity: Severity::Error,
        code,
        message,
    }
}

/// Properties every code system has (FHIR's `concept-properties`), usable without being
/// declared, plus the filter properties every system supports.
const STANDARD_PROPERTIES: &[&str] = &[
    "inactive",
    "deprecated",
    "notSelectable",
    "parent",
    "child",
    "partOf",
    "synonym",
    "comment",
    "itemWeight",
    "status",
    "deprecationDate",
    "retirementDate",
];

/// The rules for `resource` of type `type_name` (other types have none here).
pub(crate) fn check(
    type_name: &str,
    resource: &Map<String, Value>,
    defs: &Definitions,
) -> Vec<Finding> {
    match type_name {
        "SearchParameter" => search_parameter(resource, defs),
        "CodeSystem" => code_system(resource),
        "ValueSet" => value_set(resource, defs),
        _ => Vec::new(),
    }
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(Value::String(s)) => vec![s.as_str()],
        _ => Vec::new(),
    }
}

fn search_parameter(sp: &Map<String, Value>, defs: &Definitions) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(parent_url) = sp.get("derivedFrom").and_then(Value::as_str) else {
        return out;
    };
    let Some(parent) = defs.search_parameter(parent_url) else {
        out.push(Finding {
            path: "derivedFrom".into(),
            severity: Severity::Warning,
            code: IssueType::NotFound,
            message: format!("the SearchParameter {parent_url} it derives from is not known here, so the derivation was not checked"),
        });
        return out;
    };
    let parent_type = parent.get("type").and_then(Value::as_str);
    let own_type = sp.get("type").and_then(Value::as_str);
    if parent_type.is_some() && own_type.is_some() && parent_type != own_type {
        out.push(error(
            "type".into(),
            IssueType::BusinessRule,
            format!(
                "type '{}' differs from the type '{}' of {parent_url}, which it derives from",
                own_type.unwrap_or_default(),
                parent_type.unwrap_or_default()
            ),
        ));
    }
    let parent_bases = strings(parent.get("base"));
    for (i, base) in strings(sp.get("base")).into_iter().enumerate() {
        if !parent_bases.contains(&base) && !parent_bases.contains(&"Resource") {
            out.push(error(
                format!("base[{i}]"),
                IssueType::BusinessRule,
                format!(
                    "{base} is not a base of {parent_url} ({}), which it derives from",
                    parent_bases.join(", ")
                ),
            ));
        }
    }
    out
}

fn property_value_key(declared_type: &str) -> Option<&'static str> {
    Some(match declared_type {
        "code" => "valueCode",
        "Coding" => "valueCoding",
        "string" => "valueString",
        "integer" => "valueInteger",
        "boolean" => "valueBoolean",
        "dateTime" => "valueDateTime",
        "decimal" => "valueDecimal",
        _ => return None,
    })
}

fn code_system(cs: &Map<String, Value>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut declared: Vec<(&str, Option<&str>)> = Vec::new();
    for (i, p) in cs
        .get("property")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(code) = p.get("code").and_then(Value::as_str) else {
            continue;
        };
        if declared.iter().any(|(c, _)| *c == code) {
            out.push(error(
                format!("property[{i}].code"),
                IssueType::Duplicate,
                format!("property '{code}' is declared more than once"),
            ));
        }
        declared.push((code, p.get("type").and_then(Value::as_str)));
    }
    let mut codes = HashSet::new();
    concepts(
        cs.get("concept"),
        "concept",
        &declared,
        &mut codes,
        &mut out,
    );
    out
}

fn concepts<'v>(
    list: Option<&'v Value>,
    path: &str,
    declared: &[(&str, Option<&str>)],
    codes: &mut HashSet<&'v str>,
    out: &mut Vec<Finding>,
) {
    for (i, c) in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let here = format!("{path}[{i}]");
        if let Some(code) = c.get("code").and_then(Value::as_str)
            && !codes.insert(code)
        {
            out.push(error(
                format!("{here}.code"),
                IssueType::Duplicate,
                format!("code '{code}' is defined more than once"),
            ));
        }
        for (j, p) in c
            .get("property")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(code) = p.get("code").and_then(Value::as_str) else {
                continue;
            };
            let ppath = format!("{here}.property[{j}]");
            match declared.iter().find(|(c, _)| *c == code) {
                None if STANDARD_PROPERTIES.contains(&code) => {}
                None => out.push(error(
                    format!("{ppath}.code"),
                    IssueType::BusinessRule,
                    format!("property '{code}' is not declared in CodeSystem.property"),
                )),
                Some((_, Some(ty))) => {
                    let value_key = p
                        .as_object()
                        .and_then(|m| m.keys().find(|k| k.starts_with("value")));
                    if let (Some(want), Some(got)) = (property_value_key(ty), value_key)
                        && want != got
                    {
                        out.push(error(
                            ppath,
                            IssueType::BusinessRule,
                            format!("property '{code}' is declared as {ty}, so its value must be {want}, not {got}"),
                        ));
                    }
                }
                Some(_) => {}
            }
        }
        concepts(
            c.get("concept"),
            &format!("{here}.concept"),
            declared,
            codes,
            out,
        );
    }
}

fn value_set(vs: &Map<String, Value>, defs: &Definitions) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(compose) = vs.get("compose") else {
        return out;
    };
    for part in ["include", "exclude"] {
        for (i, inc) in compose
            .get(part)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(system) = inc.get("system").and_then(Value::as_str) else {
                continue;
            };
            let Some(cs) = defs.code_system(system) else {
                continue; // a system we do not hold (SNOMED CT, LOINC ...) is not judged
            };
            for (j, f) in inc
                .get("filter")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let Some(property) = f.get("property").and_then(Value::as_str) else {
                    continue;
                };
                let known = matches!(property, "concept" | "code" | "display")
                    || STANDARD_PROPERTIES.contains(&property)
                    || cs.properties.iter().any(|p| p == property);
                if !known {
                    out.push(error(
                        format!("compose.{part}[{i}].filter[{j}].property"),
                        IssueType::BusinessRule,
                        format!("'{property}' is not a property of the code system {system}, so it cannot be filtered on"),
                    ));
                }
            }
        }
    }
    out
}
