//! The element types of the R4 resources and data types, read from the embedded
//! StructureDefinitions: just enough to resolve a search-parameter path to JSON keys
//! (`Observation.value as Quantity` is the key `valueQuantity`) and to know the FHIR type of
//! every node a path reaches. Only base definitions are read; profiles add nothing here.

use std::collections::HashMap;

use serde_json::Value;

/// One element of a resource or data type.
#[derive(Debug, Clone)]
pub struct ElementDef {
    /// FHIR type codes (`CodeableConcept`, `dateTime`, `BackboneElement`...). Several for a
    /// choice element.
    pub types: Vec<String>,
    /// A choice element (`value[x]`): its JSON key is the name plus the capitalized type.
    pub choice: bool,
    /// For a backbone or inline element, the path its children live under
    /// (`Observation.component`), or a `contentReference` target (`Questionnaire.item`).
    pub children_at: Option<String>,
    /// Cardinality max is more than one.
    pub repeats: bool,
}

#[derive(Debug, Default)]
pub struct ElementModel {
    /// Keyed by path without `[x]`: `Observation.value`, `Quantity.unit`.
    elements: HashMap<String, ElementDef>,
    /// Resource type names (concrete and abstract: `Resource`, `DomainResource`).
    resource_types: Vec<String>,
    /// Concrete resource type names, sorted.
    concrete_resource_types: Vec<String>,
    /// `Age` → `Age`, `SimpleQuantity` → `Quantity`: the type whose elements a name has.
    type_roots: HashMap<String, String>,
}

const FHIR_TYPE_EXTENSION: &str =
    "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";

impl ElementModel {
    pub fn from_definitions(definitions: &[Value]) -> Self {
        let mut model = ElementModel::default();
        for sd in definitions {
            let (Some(id), Some(sd_type)) = (sd["id"].as_str(), sd["type"].as_str()) else {
                continue;
            };
            model.type_roots.insert(id.to_string(), sd_type.to_string());
            if sd["derivation"] == "constraint" {
                continue;
            }
            if sd["kind"] == "resource" {
                model.resource_types.push(sd_type.to_string());
                if sd["abstract"] != true {
                    model.concrete_resource_types.push(sd_type.to_string());
                }
            }
            let Some(elements) = sd.pointer("/snapshot/element").and_then(Value::as_array) else {
                continue;
            };
            for element in elements {
                let Some(path) = element["path"].as_str() else {
                    continue;
                };
                if !path.contains('.') {
                    continue;
                }
                let (key, choice) = match path.strip_suffix("[x]") {
                    Some(stem) => (stem.to_string(), true),
                    None => (path.to_string(), false),
                };
                let types: Vec<String> = element["type"]
                    .as_array()
                    .map(|ts| ts.iter().filter_map(type_code).collect())
                    .unwrap_or_default();
                let children_at = if let Some(reference) = element["contentReference"].as_str() {
                    Some(reference.trim_start_matches('#').to_string())
                } else if let [only] = types.as_slice()
                    && (only == "BackboneElement" || only == "Element")
                {
                    Some(path.to_string())
                } else {
                    None
                };
                let repeats = element["max"]
                    .as_str()
                    .is_some_and(|m| m != "0" && m != "1");
                model.elements.insert(
                    key,
                    ElementDef {
                        types,
                        choice,
                        children_at,
                        repeats,
                    },
                );
            }
        }
        model.resource_types.sort();
        model.resource_types.dedup();
        model.concrete_resource_types.sort();
        model.concrete_resource_types.dedup();
        model
    }

    /// The element `name` under `parent`, which is a type name (`CodeableConcept`,
    /// `Observation`) or a backbone path (`Observation.component`).
    pub fn child(&self, parent: &str, name: &str) -> Option<&ElementDef> {
        let root = self.type_roots.get(parent).map_or(parent, String::as_str);
        let mut key = String::with_capacity(root.len() + 1 + name.len());
        key.push_str(root);
        key.push('.');
        key.push_str(name);
        self.elements.get(&key)
    }

    pub fn is_resource_type(&self, name: &str) -> bool {
        self.resource_types
            .binary_search_by(|t| t.as_str().cmp(name))
            .is_ok()
    }

    /// Concrete resource type names (no `Resource`, `DomainResource`), sorted.
    pub fn concrete_resource_types(&self) -> &[String] {
        &self.concrete_resource_types
    }

    /// Every element, keyed by path (without `[x]`).
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ElementDef)> {
        self.elements.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The type whose elements a type name has (`SimpleQuantity` → `Quantity`).
    #[cfg(test)]
    pub fn type_root<'a>(&'a self, name: &'a str) -> &'a str {
        self.type_roots.get(name).map_or(name, String::as_str)
    }

    /// Per resource type, the names that may appear at its top level (choice elements as
    /// `value[x]`), sorted; for checking `_elements`.
    pub fn top_level_names(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for (path, def) in &self.elements {
            let Some((owner, name)) = path.split_once('.') else {
                continue;
            };
            if name.contains('.') || !self.is_resource_type(owner) {
                continue;
            }
            let name = if def.choice {
                format!("{name}[x]")
            } else {
                name.to_string()
            };
            out.entry(owner.to_string()).or_default().push(name);
        }
        for names in out.values_mut() {
            names.sort();
        }
        out
    }
}

/// The FHIR type code of an `ElementDefinition.type`: FHIRPath system types
/// (`http://hl7.org/fhirpath/System.String` for `id`) carry the FHIR type in an extension.
fn type_code(t: &Value) -> Option<String> {
    let code = t["code"].as_str()?;
    if let Some(system) = code.strip_prefix("http://hl7.org/fhirpath/System.") {
        if let Some(exts) = t["extension"].as_array() {
            for ext in exts {
                if ext["url"] == FHIR_TYPE_EXTENSION
                    && let Some(url) = ext["valueUrl"].as_str().or(ext["valueUri"].as_str())
                {
                    return Some(url.to_string());
                }
            }
        }
        let primitive = match system {
            "Boolean" => "boolean",
            "Integer" => "integer",
            "Decimal" => "decimal",
            "Date" => "date",
            "DateTime" => "dateTime",
            "Time" => "time",
            _ => "string",
        };
        return Some(primitive.to_string());
    }
    Some(code.to_string())
}

/// `dateTime` → `DateTime`: the suffix a choice element's JSON key gets for a type.
pub fn choice_suffix(type_code: &str) -> String {
    let mut chars = type_code.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn model() -> &'static ElementModel {
        static MODEL: OnceLock<ElementModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            ElementModel::from_definitions(&phr_fhir::defs::structure_definitions())
        })
    }

    #[test]
    fn resolves_resource_datatype_and_backbone_elements() {
        let m = model();
        let code = m.child("Observation", "code").unwrap();
        assert_eq!(code.types, ["CodeableConcept"]);
        assert!(!code.choice);
        let value = m.child("Observation", "value").unwrap();
        assert!(value.choice && value.types.contains(&"Quantity".to_string()));
        let component = m.child("Observation", "component").unwrap();
        assert_eq!(
            component.children_at.as_deref(),
            Some("Observation.component")
        );
        assert!(component.repeats);
        assert!(m.child("Observation.component", "value").unwrap().choice);
        assert_eq!(m.child("Coding", "system").unwrap().types, ["uri"]);
        // R4 types Resource.id as System.String with fhir-type `string`.
        assert_eq!(m.child("Observation", "id").unwrap().types, ["string"]);
        assert_eq!(m.child("Resource", "meta").unwrap().types, ["Meta"]);
    }

    #[test]
    fn constrained_types_use_their_base_elements() {
        let m = model();
        assert_eq!(
            m.child("SimpleQuantity", "value").unwrap().types,
            ["decimal"]
        );
        assert_eq!(m.child("Age", "code").unwrap().types, ["code"]);
    }

    #[test]
    fn content_references_point_to_the_reused_element() {
        let item = model().child("Questionnaire.item", "item").unwrap();
        assert_eq!(item.children_at.as_deref(), Some("Questionnaire.item"));
    }

    #[test]
    fn knows_resource_types_and_choice_suffixes() {
        let m = model();
        assert!(m.is_resource_type("Observation") && m.is_resource_type("DomainResource"));
        assert!(!m.is_resource_type("CodeableConcept"));
        let concrete = m.concrete_resource_types();
        assert!(concrete.contains(&"Observation".to_string()));
        assert!(!concrete.contains(&"DomainResource".to_string()));
        assert!(concrete.len() > 140, "R4 has about 145 resource types");
        assert_eq!(choice_suffix("dateTime"), "DateTime");
        let names = m.top_level_names();
        assert!(names["Observation"].contains(&"effective[x]".to_string()));
        assert!(
            names["Observation"].contains(&"meta".to_string()),
            "inherited too"
        );
    }
}
