//! A StructureDefinition compiled for validation: its snapshot turned into an element tree
//! (children, slices, JSON property names with choice types expanded, resolved
//! contentReferences), so that validation never scans the snapshot array.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::invariant::Check;
use crate::outcome::Severity;

/// `StructureDefinition.kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdKind {
    PrimitiveType,
    ComplexType,
    Resource,
    Logical,
}

/// `StructureDefinition.derivation` (a base type's definition has `Specialization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derivation {
    Specialization,
    Constraint,
}

/// One StructureDefinition, compiled.
#[derive(Debug)]
pub struct StructureDef {
    pub url: String,
    pub version: Option<String>,
    pub name: String,
    /// The type it defines or constrains: `Observation`, `Extension`, `Quantity`, ...
    pub type_name: String,
    pub kind: SdKind,
    pub derivation: Derivation,
    pub is_abstract: bool,
    pub base_definition: Option<String>,
    /// Where an extension may be used (`StructureDefinition.context`); empty when the
    /// definition does not say (then it is not checked).
    pub contexts: Vec<ExtensionContext>,
    /// The snapshot elements; index 0 is the root.
    pub elements: Vec<Element>,
}

/// One `StructureDefinition.context` of an extension definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionContext {
    /// An element path (`Observation`, `Observation.value[x]`, `Element`, `Resource`), or
    /// a profile url with `#path`.
    Element(String),
    /// Another extension (its url), as a part of it.
    Extension(String),
    /// A FHIRPath expression, evaluated on the resource: the extension may be on any
    /// element it selects.
    FhirPath(FhirPathContext),
}

/// A `fhirpath` context: its text and, once first needed, the compiled expression.
#[derive(Debug, Clone)]
pub struct FhirPathContext {
    pub expression: String,
    compiled: std::sync::Arc<OnceLock<Option<crate::fhirpath::CompiledPath>>>,
}

impl FhirPathContext {
    pub fn new(expression: String) -> Self {
        FhirPathContext {
            expression,
            compiled: std::sync::Arc::default(),
        }
    }

    /// The compiled expression; `None` when it does not parse.
    pub fn compiled(&self) -> Option<&crate::fhirpath::CompiledPath> {
        self.compiled
            .get_or_init(|| crate::fhirpath::CompiledPath::compile(&self.expression).ok())
            .as_ref()
    }
}

impl PartialEq for FhirPathContext {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression
    }
}

impl Eq for FhirPathContext {}

impl ExtensionContext {
    fn of(sd: &Value) -> Vec<ExtensionContext> {
        sd.get("context")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let expression = c.get("expression")?.as_str()?.to_string();
                Some(match c.get("type").and_then(Value::as_str) {
                    Some("extension") => ExtensionContext::Extension(expression),
                    Some("fhirpath") => {
                        ExtensionContext::FhirPath(FhirPathContext::new(expression))
                    }
                    _ => ExtensionContext::Element(expression),
                })
            })
            .collect()
    }
}

/// `ElementDefinition.max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Max {
    Count(u32),
    Unbounded,
}

impl Max {
    pub fn allows(self, n: usize) -> bool {
        match self {
            Max::Unbounded => true,
            Max::Count(m) => n <= m as usize,
        }
    }
}

impl std::fmt::Display for Max {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Max::Count(n) => write!(f, "{n}"),
            Max::Unbounded => write!(f, "*"),
        }
    }
}

/// `ElementDefinition.type` entry. `code` is the FHIR type name (FHIRPath system types of
/// `id`/`url`/primitive `value` elements are mapped to their FHIR type).
#[derive(Debug, Clone)]
pub struct TypeRef {
    pub code: String,
    pub profiles: Vec<String>,
    pub target_profiles: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    Required,
    Extensible,
    Preferred,
    Example,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub strength: Strength,
    /// Canonical URL without `|version`.
    pub value_set: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscriminatorKind {
    Value,
    Exists,
    Pattern,
    Type,
    Profile,
}

#[derive(Debug, Clone)]
pub struct Discriminator {
    pub kind: DiscriminatorKind,
    pub path: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlicingRules {
    Closed,
    Open,
    OpenAtEnd,
}

#[derive(Debug, Clone)]
pub struct Slicing {
    pub discriminators: Vec<Discriminator>,
    pub ordered: bool,
    pub rules: SlicingRules,
}

/// An invariant (`ElementDefinition.constraint`), compiled on first use.
#[derive(Debug)]
pub struct Constraint {
    pub key: String,
    pub severity: Severity,
    pub human: String,
    pub expression: String,
    /// True when a base type's definition (a specialization) carries the same key and
    /// expression; a profile walk skips it because the base walk evaluates it.
    pub in_base: bool,
    pub(crate) check: OnceLock<Check>,
}

/// Where a JSON property name points: the child element and, for a choice element, which
/// of its types the name selects.
#[derive(Debug, Clone, Copy)]
pub struct ChildRef {
    pub element: usize,
    pub type_index: usize,
}

/// One snapshot element, with its place in the tree.
#[derive(Debug)]
pub struct Element {
    pub id: String,
    pub path: String,
    /// The JSON property name: the last path segment, without `[x]` for choices.
    pub name: String,
    pub is_choice: bool,
    pub slice_name: Option<String>,
    pub min: u32,
    pub max: Max,
    /// True when the element repeats in its base definition, i.e. is a JSON array.
    pub is_array: bool,
    pub types: Vec<TypeRef>,
    /// The element whose definition this one reuses (`contentReference`).
    pub content_reference: Option<usize>,
    pub binding: Option<Binding>,
    /// `fixed[x]` as (`fixedCode`, value).
    pub fixed: Option<(String, Value)>,
    pub pattern: Option<(String, Value)>,
    pub constraints: Vec<Constraint>,
    pub slicing: Option<Slicing>,
    pub max_length: Option<usize>,
    pub min_value: Option<(String, Value)>,
    pub max_value: Option<(String, Value)>,
    /// Child elements (not slices), in snapshot order.
    pub children: Vec<usize>,
    /// The slices of this element, in snapshot order.
    pub slices: Vec<usize>,
    /// JSON property name -> child.
    pub child_by_name: HashMap<String, ChildRef>,
    /// Children (or choice type slices) that must be present: `min > 0` or a slice with
    /// `min > 0`.
    pub required_children: Vec<usize>,
    /// `isModifier`.
    pub is_modifier: bool,
    /// Cannot carry extensions: an XML attribute in the specification (`id` of elements,
    /// `Extension.url`, typed with FHIRPath system types, `Resource.id`) or xhtml.
    pub no_extensions: bool,
}

impl Element {
    /// The type of this element when it has only one.
    pub fn single_type(&self) -> Option<&TypeRef> {
        match self.types.as_slice() {
            [t] => Some(t),
            _ => None,
        }
    }
}

/// Why a StructureDefinition could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdError {
    #[error("StructureDefinition without url")]
    NoUrl,
    #[error("StructureDefinition {0} has no snapshot (only snapshots can be validated against)")]
    NoSnapshot(String),
    #[error("StructureDefinition {url}: {message}")]
    Invalid { url: String, message: String },
}

const SYSTEM_TYPE_PREFIX: &str = "http://hl7.org/fhirpath/System.";
const FHIR_TYPE_EXT: &str = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type";

fn type_code(t: &Value) -> String {
    let code = t["code"].as_str().unwrap_or_default();
    let Some(system) = code.strip_prefix(SYSTEM_TYPE_PREFIX) else {
        return code.to_string();
    };
    if let Some(exts) = t["extension"].as_array() {
        for x in exts {
            if x["url"] == FHIR_TYPE_EXT
                && let Some(u) = x["valueUrl"].as_str().or(x["valueUri"].as_str())
            {
                return u.to_string();
            }
        }
    }
    match system {
        "Boolean" => "boolean",
        "Integer" => "integer",
        "Decimal" => "decimal",
        "Date" => "date",
        "DateTime" => "dateTime",
        "Time" => "time",
        _ => "string",
    }
    .to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_max(v: &Value) -> Max {
    match v.as_str() {
        Some("*") | None => Max::Unbounded,
        Some(n) => n.parse().map(Max::Count).unwrap_or(Max::Unbounded),
    }
}

/// `fixedCode` -> ("fixedCode", value) for the first key with `prefix` followed by a type.
fn prefixed(e: &serde_json::Map<String, Value>, prefix: &str) -> Option<(String, Value)> {
    e.iter()
        .find(|(k, _)| {
            k.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
}

pub fn canonical_without_version(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}

/// The choice-type JSON suffix of a type code: `dateTime` -> `DateTime`.
pub fn type_suffix(code: &str) -> String {
    let mut c = code.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

impl StructureDef {
    /// Compiles a StructureDefinition resource. `is_base_constraint(key, expression)` tells
    /// whether a base type definition already carries that invariant.
    pub fn compile(
        sd: &Value,
        is_base_constraint: &dyn Fn(&str, &str) -> bool,
    ) -> Result<StructureDef, SdError> {
        let url = sd["url"].as_str().ok_or(SdError::NoUrl)?.to_string();
        let raw = sd
            .pointer("/snapshot/element")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| SdError::NoSnapshot(url.clone()))?;
        let kind = match sd["kind"].as_str() {
            Some("primitive-type") => SdKind::PrimitiveType,
            Some("complex-type") => SdKind::ComplexType,
            Some("resource") => SdKind::Resource,
            _ => SdKind::Logical,
        };
        let derivation = match sd["derivation"].as_str() {
            Some("constraint") => Derivation::Constraint,
            _ => Derivation::Specialization,
        };
        let type_name = sd["type"]
            .as_str()
            .map(str::to_string)
            .or_else(|| {
                raw.first()
                    .and_then(|e| e.get("path"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        let mut elements = Vec::with_capacity(raw.len());
        for e in raw {
            let Some(obj) = e.as_object() else {
                return Err(SdError::Invalid {
                    url,
                    message: "snapshot element is not an object".into(),
                });
            };
            elements.push(compile_element(obj, derivation, is_base_constraint));
        }
        let mut def = StructureDef {
            url,
            version: sd["version"].as_str().map(str::to_string),
            name: sd["name"].as_str().unwrap_or_default().to_string(),
            type_name,
            kind,
            derivation,
            is_abstract: sd["abstract"].as_bool().unwrap_or(false),
            base_definition: sd["baseDefinition"].as_str().map(str::to_string),
            contexts: ExtensionContext::of(sd),
            elements,
        };
        def.link(raw)?;
        Ok(def)
    }

    /// Builds the tree: children, slices, JSON names, contentReferences.
    fn link(&mut self, raw: &[Value]) -> Result<(), SdError> {
        let ids: HashMap<String, usize> = self
            .elements
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
        let mut slices: Vec<(usize, usize)> = Vec::new();
        let mut children: Vec<(usize, usize)> = Vec::new();
        for (i, element) in self.elements.iter().enumerate().skip(1) {
            let id = &element.id;
            let Some((parent_id, last)) = id.rsplit_once('.') else {
                continue;
            };
            if let Some((name, slice)) = last.split_once(':') {
                // `name:slice` is a slice of `parent.name`; `name:a/b` re-slices `name:a`.
                let base_id = match slice.rsplit_once('/') {
                    Some((outer, _)) => format!("{parent_id}.{name}:{outer}"),
                    None => format!("{parent_id}.{name}"),
                };
                if let Some(&b) = ids.get(&base_id) {
                    slices.push((b, i));
                }
                continue;
            }
            match ids.get(parent_id) {
                Some(&p) => children.push((p, i)),
                None => {
                    return Err(SdError::Invalid {
                        url: self.url.clone(),
                        message: format!("element {id} has no parent element"),
                    });
                }
            }
        }
        for (b, i) in slices {
            if let Some(e) = self.elements.get_mut(b) {
                e.slices.push(i);
            }
        }
        for (p, i) in children {
            if let Some(e) = self.elements.get_mut(p) {
                e.children.push(i);
            }
        }
        for (i, e) in raw.iter().enumerate() {
            if let Some(r) = e.get("contentReference").and_then(Value::as_str) {
                let target = r.rsplit_once('#').map(|(_, t)| t).unwrap_or(r);
                let found = ids.get(target).copied().or_else(|| {
                    self.elements
                        .iter()
                        .position(|x| x.path == target && x.slice_name.is_none())
                });
                if let Some(el) = self.elements.get_mut(i) {
                    el.content_reference = found;
                }
            }
        }
        for i in 0..self.elements.len() {
            let mut by_name = HashMap::new();
            let mut required = Vec::new();
            for &c in &self.el(i).children {
                let child = self.el(c);
                if child.is_choice {
                    for (t, ty) in child.types.iter().enumerate() {
                        by_name.insert(
                            format!("{}{}", child.name, type_suffix(&ty.code)),
                            ChildRef {
                                element: c,
                                type_index: t,
                            },
                        );
                    }
                } else {
                    by_name.insert(
                        child.name.clone(),
                        ChildRef {
                            element: c,
                            type_index: 0,
                        },
                    );
                }
                let slice_required = child.slices.iter().any(|&s| self.el(s).min > 0);
                if child.min > 0 || slice_required {
                    required.push(c);
                }
            }
            if let Some(el) = self.elements.get_mut(i) {
                el.child_by_name = by_name;
                el.required_children = required;
            }
        }
        Ok(())
    }

    /// The element at `index`. Indices come from this definition itself (children, slices,
    /// `ChildRef`s and contentReferences are positions in `elements`, fixed when it was
    /// compiled, and `compile` rejects an empty snapshot, so the root exists): they are
    /// always in range.
    #[allow(clippy::indexing_slicing)]
    pub fn el(&self, index: usize) -> &Element {
        &self.elements[index]
    }

    pub fn root(&self) -> &Element {
        self.el(0)
    }

    /// The element with this id (`Observation.code.coding:loinc.system`).
    pub fn element_by_id(&self, id: &str) -> Option<usize> {
        self.elements.iter().position(|e| e.id == id)
    }

    /// The child of `el` for a JSON property name (`valueQuantity` finds `value[x]`).
    pub fn child(&self, el: usize, json_name: &str) -> Option<ChildRef> {
        self.el(el).child_by_name.get(json_name).copied()
    }

    /// The element whose children describe the content of `el` (itself, or its
    /// contentReference target).
    pub fn content_of(&self, el: usize) -> usize {
        self.el(el).content_reference.unwrap_or(el)
    }
}

fn compile_element(
    e: &serde_json::Map<String, Value>,
    derivation: Derivation,
    is_base_constraint: &dyn Fn(&str, &str) -> bool,
) -> Element {
    let path = e
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let id = e
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| path.clone());
    let last = path.rsplit('.').next().unwrap_or(&path);
    let (name, is_choice) = match last.strip_suffix("[x]") {
        Some(n) => (n.to_string(), true),
        None => (last.to_string(), false),
    };
    let types: Vec<TypeRef> = e
        .get("type")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| TypeRef {
                    code: type_code(t),
                    profiles: strings(&t["profile"]),
                    target_profiles: strings(&t["targetProfile"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let max = parse_max(e.get("max").unwrap_or(&Value::Null));
    let base_max = e
        .get("base")
        .and_then(|b| b.get("max"))
        .map(parse_max)
        .unwrap_or(max);
    let is_array = !matches!(base_max, Max::Count(0 | 1));
    let binding = e.get("binding").and_then(|b| {
        let strength = match b["strength"].as_str()? {
            "required" => Strength::Required,
            "extensible" => Strength::Extensible,
            "preferred" => Strength::Preferred,
            _ => Strength::Example,
        };
        Some(Binding {
            strength,
            value_set: b["valueSet"]
                .as_str()
                .map(|u| canonical_without_version(u).to_string()),
        })
    });
    let constraints = e
        .get("constraint")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| {
                    let key = c["key"].as_str()?.to_string();
                    let expression = c["expression"].as_str().unwrap_or_default().to_string();
                    let in_base = derivation == Derivation::Specialization
                        || is_base_constraint(&key, &expression);
                    Some(Constraint {
                        severity: if c["severity"] == "warning" {
                            Severity::Warning
                        } else {
                            Severity::Error
                        },
                        human: c["human"].as_str().unwrap_or_default().to_string(),
                        key,
                        expression,
                        in_base,
                        check: OnceLock::new(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let slicing = e.get("slicing").map(|s| Slicing {
        discriminators: s["discriminator"]
            .as_array()
            .map(|ds| {
                ds.iter()
                    .filter_map(|d| {
                        let kind = match d["type"].as_str()? {
                            "value" => DiscriminatorKind::Value,
                            "exists" => DiscriminatorKind::Exists,
                            "pattern" => DiscriminatorKind::Pattern,
                            "type" => DiscriminatorKind::Type,
                            "profile" => DiscriminatorKind::Profile,
                            _ => return None,
                        };
                        Some(Discriminator {
                            kind,
                            path: d["path"].as_str()?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ordered: s["ordered"].as_bool().unwrap_or(false),
        rules: match s["rules"].as_str() {
            Some("closed") => SlicingRules::Closed,
            Some("openAtEnd") => SlicingRules::OpenAtEnd,
            _ => SlicingRules::Open,
        },
    });
    Element {
        path,
        name,
        is_choice,
        slice_name: e
            .get("sliceName")
            .and_then(Value::as_str)
            .map(str::to_string),
        min: e
            .get("min")
            .and_then(Value::as_u64)
            .map(|m| m.min(u64::from(u32::MAX)) as u32)
            .unwrap_or(0),
        max,
        is_array,
        types,
        content_reference: None,
        binding,
        fixed: prefixed(e, "fixed"),
        pattern: prefixed(e, "pattern"),
        constraints,
        slicing,
        max_length: e
            .get("maxLength")
            .and_then(Value::as_u64)
            .map(|m| m as usize),
        min_value: prefixed(e, "minValue"),
        max_value: prefixed(e, "maxValue"),
        children: Vec::new(),
        slices: Vec::new(),
        child_by_name: HashMap::new(),
        required_children: Vec::new(),
        is_modifier: e
            .get("isModifier")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        no_extensions: is_attribute(e),
        id,
    }
}

/// Typed with a FHIRPath system type (`Element.id`, `Extension.url`, `Resource.id`),
/// represented as an XML attribute, or xhtml: nothing that can carry extensions.
fn is_attribute(e: &serde_json::Map<String, Value>) -> bool {
    let system_typed = e
        .get("type")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|t| {
            t.get("code")
                .and_then(Value::as_str)
                .is_some_and(|c| c.starts_with(SYSTEM_TYPE_PREFIX) || c == "xhtml")
        });
    let xml_attribute = e
        .get("representation")
        .and_then(Value::as_array)
        .is_some_and(|r| r.iter().any(|x| x == "xmlAttr"));
    system_typed || xml_attribute
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_base(_: &str, _: &str) -> bool {
        false
    }

    #[test]
    fn builds_children_slices_and_choice_names() {
        let sd = json!({
            "resourceType": "StructureDefinition", "url": "http://x/sd", "kind": "resource",
            "type": "Observation", "derivation": "constraint",
            "snapshot": {"element": [
                {"id": "Observation", "path": "Observation", "min": 0, "max": "*"},
                {"id": "Observation.code", "path": "Observation.code", "min": 1, "max": "1",
                 "type": [{"code": "CodeableConcept"}]},
                {"id": "Observation.code.coding", "path": "Observation.code.coding", "min": 0,
                 "max": "*", "base": {"path": "CodeableConcept.coding", "min": 0, "max": "*"},
                 "type": [{"code": "Coding"}],
                 "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}},
                {"id": "Observation.code.coding:loinc", "path": "Observation.code.coding",
                 "sliceName": "loinc", "min": 1, "max": "1", "type": [{"code": "Coding"}]},
                {"id": "Observation.code.coding:loinc.system", "path": "Observation.code.coding.system",
                 "min": 1, "max": "1", "type": [{"code": "uri"}], "fixedUri": "http://loinc.org"},
                {"id": "Observation.value[x]", "path": "Observation.value[x]", "min": 0, "max": "1",
                 "type": [{"code": "Quantity"}, {"code": "dateTime"}]}
            ]}
        });
        let def = StructureDef::compile(&sd, &no_base).unwrap();
        let code = def.child(0, "code").unwrap().element;
        let coding = def.child(code, "coding").unwrap().element;
        assert!(def.elements[coding].is_array);
        assert_eq!(def.elements[coding].slices.len(), 1);
        let loinc = def.elements[coding].slices[0];
        assert_eq!(def.elements[loinc].slice_name.as_deref(), Some("loinc"));
        let system = def.child(loinc, "system").unwrap().element;
        assert_eq!(
            def.elements[system].fixed,
            Some(("fixedUri".to_string(), json!("http://loinc.org")))
        );
        let vdt = def.child(0, "valueDateTime").unwrap();
        assert_eq!(
            def.elements[vdt.element].types[vdt.type_index].code,
            "dateTime"
        );
        assert!(def.child(0, "value").is_none());
        assert!(def.elements[code].required_children.contains(&coding));
    }
}
