//! The read-only conformance resources: the StructureDefinitions, CodeSystems and ValueSets
//! the Finnish PHR catalogue generates. They are served from the catalogue, not from storage,
//! so they always match what the validator enforces; nobody can change them through the API.

use std::collections::HashMap;

use phr_catalog::Catalog;
use phr_fhir::{Issue, IssueType};
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result};

/// Types served from the catalogue.
pub const TYPES: &[&str] = &["StructureDefinition", "CodeSystem", "ValueSet"];

pub fn is_conformance_type(resource_type: &str) -> bool {
    TYPES.contains(&resource_type)
}

/// The catalogue's conformance resources, by type and id.
pub struct Conformance {
    by_type: HashMap<&'static str, Vec<Value>>,
}

impl Default for Conformance {
    fn default() -> Self {
        Self::new()
    }
}

impl Conformance {
    pub fn new() -> Self {
        let catalog = Catalog::get();
        let mut by_type: HashMap<&'static str, Vec<Value>> = HashMap::new();
        for resource in catalog.conformance_resources() {
            if let Some(t) = TYPES.iter().find(|t| resource["resourceType"] == **t) {
                by_type.entry(t).or_default().push(resource.clone());
            }
        }
        Conformance { by_type }
    }

    fn all(&self, resource_type: &str) -> &[Value] {
        self.by_type
            .get(resource_type)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn read(&self, resource_type: &str, id: &str) -> Result<&Value> {
        self.all(resource_type)
            .iter()
            .find(|r| r["id"] == id)
            .ok_or_else(|| Error::not_found(format!("{resource_type}/{id} is not known")))
    }

    /// Search by `url` (with optional `|version`) and `_id`; other parameters are refused
    /// (400 naming these), or ignored and reported when `lenient`. `base_url` is the FHIR
    /// base.
    pub fn search(
        &self,
        resource_type: &str,
        params: &[(String, String)],
        lenient: bool,
        base_url: &str,
    ) -> Result<Value> {
        let mut matches: Vec<&Value> = self.all(resource_type).iter().collect();
        let mut warnings = Vec::new();
        for (name, value) in params {
            match name.as_str() {
                "url" => {
                    let (url, version) = match value.split_once('|') {
                        Some((u, v)) => (u, Some(v)),
                        None => (value.as_str(), None),
                    };
                    matches
                        .retain(|r| r["url"] == url && version.is_none_or(|v| r["version"] == v));
                }
                "_id" => matches.retain(|r| value.split(',').any(|id| r["id"] == id)),
                "_format" | "_pretty" | "_count" | "_total" => {}
                other if lenient => warnings.push(Issue::warning(
                    IssueType::NotSupported,
                    format!("{resource_type} search supports url and _id; '{other}' was ignored"),
                )),
                other => {
                    return Err(Error::new(
                        ErrorKind::Invalid,
                        IssueType::NotSupported,
                        format!(
                            "unknown search parameter '{other}' for {resource_type}. Valid search parameters are: url, _id"
                        ),
                    ));
                }
            }
        }
        let mut entries: Vec<Value> = matches
            .iter()
            .map(|r| {
                json!({
                    "fullUrl": format!("{base_url}/{resource_type}/{}", r["id"].as_str().unwrap_or("")),
                    "resource": r,
                    "search": {"mode": "match"},
                })
            })
            .collect();
        let total = entries.len();
        if !warnings.is_empty() {
            entries.push(json!({
                "resource": phr_fhir::outcome::operation_outcome(&warnings),
                "search": {"mode": "outcome"},
            }));
        }
        let mut bundle = json!({"resourceType": "Bundle", "type": "searchset", "total": total});
        if !entries.is_empty()
            && let Some(object) = bundle.as_object_mut()
        {
            object.insert("entry".into(), Value::Array(entries));
        }
        Ok(bundle)
    }
}

pub fn read_only(resource_type: &str) -> Error {
    Error::method_not_allowed(format!(
        "{resource_type} resources are generated from the Finnish PHR catalogue and are read-only"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_profiles_are_found_by_url() {
        let c = Conformance::new();
        let params = vec![(
            "url".to_string(),
            "http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight".to_string(),
        )];
        let bundle = c
            .search("StructureDefinition", &params, false, "http://x")
            .unwrap();
        assert_eq!(bundle["total"], 1);
        let sd = &bundle["entry"][0]["resource"];
        assert!(
            sd["snapshot"]["element"]
                .as_array()
                .is_some_and(|e| !e.is_empty())
        );
        let id = sd["id"].as_str().unwrap();
        assert_eq!(c.read("StructureDefinition", id).unwrap()["url"], sd["url"]);
    }

    #[test]
    fn code_systems_and_value_sets_are_served() {
        let c = Conformance::new();
        let params = vec![(
            "url".to_string(),
            "http://phr.kanta.fi/CodeSystem/fiphr-cs-insulincode".to_string(),
        )];
        assert_eq!(
            c.search("CodeSystem", &params, false, "http://x").unwrap()["total"],
            1
        );
        assert!(!c.all("ValueSet").is_empty());
    }

    #[test]
    fn unknown_parameters_fail_unless_lenient() {
        let c = Conformance::new();
        let params = vec![("name".to_string(), "x".to_string())];
        let error = c
            .search("ValueSet", &params, false, "http://x")
            .unwrap_err();
        assert!(error.issues()[0].message.contains("url, _id"));
        let bundle = c.search("ValueSet", &params, true, "http://x").unwrap();
        let last = bundle["entry"].as_array().unwrap().last().unwrap();
        assert_eq!(last["search"]["mode"], "outcome");
    }

    #[test]
    fn no_match_leaves_the_entries_out() {
        let c = Conformance::new();
        let params = vec![("url".to_string(), "http://nowhere".to_string())];
        let bundle = c.search("ValueSet", &params, false, "http://x").unwrap();
        assert_eq!(bundle["total"], 0);
        assert!(bundle.get("entry").is_none());
    }
}
