//! Turns declarations into StructureDefinition resources: the differential as declared, and
//! the snapshot computed from the parent's snapshot (an R4 core definition or one generated
//! before) by applying each rule in turn — unfolding data types where a rule reaches inside
//! them, copying an element's subtree for each new slice — so that the result lists every
//! element in the order validators expect: an element, its children, then its slices each
//! followed by its own children.
//!
//! This module never reads instances; it only builds definitions.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::model::{El, Max, SlicingRules, TypeRef, last_segment, path_of};
use crate::profile::ProfileDecl;
use crate::urls;

/// A declaration that cannot be turned into a StructureDefinition: a bug in the catalogue,
/// caught by its tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("{profile}: parent definition {parent} is not known")]
    UnknownParent { profile: String, parent: String },
    #[error("{profile}: element {id} does not exist in the base")]
    UnknownElement { profile: String, id: String },
    #[error("{profile}: cannot look inside {id}: it has {types} types (restrict it first)")]
    AmbiguousType {
        profile: String,
        id: String,
        types: usize,
    },
    #[error("{profile}: slice {id} of an element that is not sliced")]
    SliceWithoutSlicing { profile: String, id: String },
    #[error("{profile}: {id} would be {min}..{max}")]
    BadCardinality {
        profile: String,
        id: String,
        min: u32,
        max: String,
    },
}

/// Elements of the embedded definitions that are not FHIR R4 (additions of the package they
/// were imported from); a profile must not admit them.
const NOT_R4: &[&str] = &[
    "Meta.project",
    "Meta.author",
    "Meta.onBehalfOf",
    "Meta.account",
    "Meta.accounts",
    "Meta.compartment",
];

/// The StructureDefinitions a generation may build on, by canonical URL.
pub(crate) struct Definitions {
    by_url: HashMap<String, Value>,
}

impl Definitions {
    /// The R4 core definitions.
    pub(crate) fn core() -> Self {
        let by_url = phr_fhir::defs::structure_definitions()
            .into_iter()
            .filter_map(|sd| Some((sd.get("url")?.as_str()?.to_string(), sd)))
            .collect();
        Definitions { by_url }
    }

    pub(crate) fn add(&mut self, sd: Value) {
        if let Some(url) = sd.get("url").and_then(Value::as_str) {
            self.by_url.insert(url.to_string(), sd);
        }
    }

    fn snapshot(&self, url: &str) -> Option<&Vec<Value>> {
        self.by_url
            .get(url)?
            .pointer("/snapshot/element")?
            .as_array()
    }
}

/// Generates the StructureDefinition of `decl` on top of `defs` (which must hold its parent
/// and every extension it unfolds).
pub(crate) fn structure_definition(
    decl: &ProfileDecl,
    defs: &Definitions,
) -> Result<Value, GenerateError> {
    let url = decl.url;
    let base = defs
        .snapshot(decl.parent)
        .ok_or_else(|| GenerateError::UnknownParent {
            profile: url.to_string(),
            parent: decl.parent.to_string(),
        })?;
    let rules = merge_rules(&decl.rules);
    let mut snapshot = Snapshot {
        profile: url,
        elements: base.clone(),
        defs,
    };
    for rule in &rules {
        let index = snapshot.ensure(&rule.id)?;
        snapshot.apply(index, rule)?;
    }
    let position: HashMap<&str, usize> = snapshot
        .elements
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((e["id"].as_str()?, i)))
        .collect();
    let mut differential: Vec<(usize, Value)> = rules
        .iter()
        .map(|r| {
            (
                position.get(r.id.as_str()).copied().unwrap_or(usize::MAX),
                differential_element(r, url),
            )
        })
        .collect();
    differential.sort_by_key(|(i, _)| *i);

    let mut sd = Map::new();
    sd.insert("resourceType".into(), json!("StructureDefinition"));
    sd.insert("id".into(), json!(decl.id()));
    sd.insert("url".into(), json!(url));
    sd.insert("version".into(), json!(decl.version));
    sd.insert("name".into(), json!(decl.name));
    sd.insert("title".into(), json!(decl.title));
    sd.insert("status".into(), json!("active"));
    sd.insert("experimental".into(), json!(false));
    sd.insert(
        "publisher".into(),
        json!("PHR (after Kela's Finnish PHR profiles)"),
    );
    sd.insert("description".into(), json!(decl.description));
    sd.insert("fhirVersion".into(), json!("4.0.1"));
    sd.insert("kind".into(), json!(decl.kind.code()));
    sd.insert("abstract".into(), json!(decl.is_abstract));
    if !decl.context.is_empty() {
        let context: Vec<Value> = decl
            .context
            .iter()
            .map(|c| json!({"type": "element", "expression": c}))
            .collect();
        sd.insert("context".into(), json!(context));
    }
    sd.insert("type".into(), json!(decl.type_name));
    sd.insert("baseDefinition".into(), json!(decl.parent));
    sd.insert("derivation".into(), json!("constraint"));
    sd.insert(
        "differential".into(),
        json!({"element": differential.into_iter().map(|(_, e)| e).collect::<Vec<_>>()}),
    );
    sd.insert("snapshot".into(), json!({"element": snapshot.elements}));
    Ok(Value::Object(sd))
}

/// One rule per element id, in first-mention order; later mentions add to earlier ones.
fn merge_rules(rules: &[El]) -> Vec<El> {
    let mut merged: Vec<El> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for rule in rules {
        match index.get(&rule.id) {
            Some(&i) => {
                let Some(into) = merged.get_mut(i) else {
                    continue;
                };
                into.min = rule.min.or(into.min);
                into.max = rule.max.or(into.max);
                into.fixed = rule.fixed.or(into.fixed);
                if !rule.types.is_empty() {
                    into.types = rule.types.clone();
                }
                into.binding = rule.binding.or(into.binding);
                if rule.slicing.is_some() {
                    into.slicing = rule.slicing.clone();
                }
                into.invariants.extend(rule.invariants.iter().copied());
                into.short = rule.short.or(into.short);
            }
            None => {
                index.insert(rule.id.clone(), merged.len());
                merged.push(rule.clone());
            }
        }
    }
    merged
}

struct Snapshot<'a> {
    profile: &'a str,
    elements: Vec<Value>,
    defs: &'a Definitions,
}

fn id_of(element: &Value) -> &str {
    text(element, "id")
}

/// A string property of a generated element ("" when absent).
fn text<'a>(element: &'a Value, key: &str) -> &'a str {
    element.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Sets a property of a generated JSON object (a no-op on anything else, which generated
/// values never are).
pub(crate) fn set(element: &mut Value, key: &str, value: Value) {
    if let Some(object) = element.as_object_mut() {
        object.insert(key.into(), value);
    }
}

/// Whether `id` lies strictly inside `ancestor` (a child, or a child's descendant or slice),
/// not counting slices of `ancestor` itself.
fn is_inside(id: &str, ancestor: &str) -> bool {
    id.strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether `id` is a slice of `element` or inside one.
fn is_slice_of(id: &str, element: &str) -> bool {
    id.strip_prefix(element)
        .is_some_and(|rest| rest.starts_with(':'))
}

impl Snapshot<'_> {
    fn error_unknown(&self, id: &str) -> GenerateError {
        GenerateError::UnknownElement {
            profile: self.profile.to_string(),
            id: id.to_string(),
        }
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.elements.iter().position(|e| id_of(e) == id)
    }

    /// The index of element `id`, unfolding types and creating slices as needed.
    fn ensure(&mut self, id: &str) -> Result<usize, GenerateError> {
        if let Some(i) = self.find(id) {
            return Ok(i);
        }
        let Some((parent, last)) = id.rsplit_once('.') else {
            return Err(self.error_unknown(id));
        };
        if let Some((name, slice)) = last.split_once(':') {
            let sliced = format!("{parent}.{name}");
            let base = self.ensure(&sliced)?;
            return self.create_slice(base, slice);
        }
        let parent_index = self.ensure(parent)?;
        self.unfold(parent_index)?;
        self.find(id).ok_or_else(|| self.error_unknown(id))
    }

    /// Inserts the children of the element at `index`, taken from its type's definition.
    fn unfold(&mut self, index: usize) -> Result<(), GenerateError> {
        let Some(element) = self.elements.get(index) else {
            return Err(self.error_unknown(""));
        };
        let id = id_of(element).to_string();
        if self
            .elements
            .get(index + 1)
            .is_some_and(|next| is_inside(id_of(next), &id))
        {
            // Already unfolded: the caller asked for a child that does not exist.
            return Ok(());
        }
        let path = text(element, "path").to_string();
        let types = element
            .get("type")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let [only] = types.as_slice() else {
            return Err(GenerateError::AmbiguousType {
                profile: self.profile.to_string(),
                id,
                types: types.len(),
            });
        };
        let code = text(only, "code");
        let profile_url = only.pointer("/profile/0").and_then(Value::as_str);
        let source = profile_url
            .and_then(|p| self.defs.snapshot(p))
            .or_else(|| self.defs.snapshot(&format!("{}{code}", urls::CORE_SD)))
            .ok_or_else(|| self.error_unknown(&id))?;
        let root = source
            .first()
            .map(|e| id_of(e).to_string())
            .unwrap_or_default();
        let children: Vec<Value> = source
            .iter()
            .skip(1)
            .filter(|e| !NOT_R4.contains(&id_of(e)))
            .map(|e| {
                let mut child = e.clone();
                let child_id = replace_prefix(id_of(e), &root, &id);
                let child_path = replace_prefix(text(e, "path"), &root, &path);
                set(&mut child, "id", json!(child_id));
                set(&mut child, "path", json!(child_path));
                child
            })
            .collect();
        self.elements.splice(index + 1..index + 1, children);
        Ok(())
    }

    /// Adds slice `name` of the element at `base`, after its existing slices.
    fn create_slice(&mut self, base: usize, name: &str) -> Result<usize, GenerateError> {
        let profile = self.profile;
        let Some(base_element) = self.elements.get_mut(base) else {
            return Err(self.error_unknown(name));
        };
        let base_id = id_of(base_element).to_string();
        let slice_id = format!("{base_id}:{name}");
        if base_element.get("slicing").is_none() {
            let path = text(base_element, "path");
            if path.ends_with(".extension") || path.ends_with(".modifierExtension") {
                set(
                    base_element,
                    "slicing",
                    json!({
                        "discriminator": [{"type": "value", "path": "url"}],
                        "rules": "open"
                    }),
                );
            } else {
                return Err(GenerateError::SliceWithoutSlicing {
                    profile: profile.to_string(),
                    id: slice_id,
                });
            }
        }
        let inside = self
            .elements
            .iter()
            .skip(base + 1)
            .take_while(|e| is_inside(id_of(e), &base_id) || is_slice_of(id_of(e), &base_id))
            .count();
        let end = base + 1 + inside;
        let copies: Vec<Value> = self
            .elements
            .iter()
            .skip(base)
            .take(end - base)
            .filter(|e| id_of(e) == base_id || is_inside(id_of(e), &base_id))
            .map(|e| {
                let mut copy = e.clone();
                set(
                    &mut copy,
                    "id",
                    json!(replace_prefix(id_of(e), &base_id, &slice_id)),
                );
                copy
            })
            .collect();
        let mut copies = copies;
        if let Some(Value::Object(head)) = copies.first_mut() {
            head.remove("slicing");
            head.insert("sliceName".into(), json!(name));
            // A slice is optional unless declared otherwise.
            head.insert("min".into(), json!(0));
        }
        self.elements.splice(end..end, copies);
        Ok(end)
    }

    /// Applies `rule` to the element at `index`.
    fn apply(&mut self, index: usize, rule: &El) -> Result<(), GenerateError> {
        let profile = self.profile;
        let Some(Value::Object(element)) = self.elements.get_mut(index) else {
            return Err(GenerateError::UnknownElement {
                profile: profile.to_string(),
                id: rule.id.clone(),
            });
        };
        if let Some(min) = rule.min {
            element.insert("min".into(), json!(min));
        }
        if let Some(max) = rule.max {
            element.insert("max".into(), json!(max.to_string()));
        }
        let min = element.get("min").and_then(Value::as_u64).unwrap_or(0);
        let max = element.get("max").and_then(Value::as_str).unwrap_or("*");
        if max != "*" && max.parse::<u64>().is_ok_and(|m| m < min) {
            return Err(GenerateError::BadCardinality {
                profile: profile.to_string(),
                id: rule.id.clone(),
                min: min as u32,
                max: max.to_string(),
            });
        }
        if let Some(fixed) = rule.fixed {
            element.insert(fixed.property().into(), json!(fixed.value()));
        }
        if !rule.types.is_empty() {
            let base_types = element
                .get("type")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let types: Vec<Value> = rule
                .types
                .iter()
                .map(|t| type_json(t, &base_types))
                .collect();
            element.insert("type".into(), json!(types));
        }
        if let Some(binding) = rule.binding {
            let value_set = binding.value_set.map(|v| json!(v)).or_else(|| {
                element
                    .get("binding")
                    .and_then(|b| b.get("valueSet"))
                    .cloned()
            });
            let mut json_binding = json!({"strength": binding.strength.code()});
            if let Some(vs) = value_set {
                set(&mut json_binding, "valueSet", vs);
            }
            element.insert("binding".into(), json_binding);
        }
        if let Some(slicing) = &rule.slicing {
            element.insert("slicing".into(), slicing_json(slicing));
        }
        if !rule.invariants.is_empty() {
            let mut constraints = element
                .get("constraint")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            constraints.extend(
                rule.invariants
                    .iter()
                    .map(|inv| invariant_json(inv, profile)),
            );
            element.insert("constraint".into(), json!(constraints));
        }
        if let Some(short) = rule.short {
            element.insert("short".into(), json!(short));
        }
        Ok(())
    }
}

fn replace_prefix(s: &str, prefix: &str, with: &str) -> String {
    match s.strip_prefix(prefix) {
        Some(rest) => format!("{with}{rest}"),
        None => s.to_string(),
    }
}

/// The JSON of a declared type, keeping what the base said about the same type code (such as
/// the FHIRPath type of primitives) unless the declaration overrides it.
fn type_json(t: &TypeRef, base_types: &[Value]) -> Value {
    let mut out = base_types
        .iter()
        .find(|b| text(b, "code") == t.code)
        .cloned()
        .unwrap_or_else(|| json!({"code": t.code}));
    if !t.profile.is_empty() {
        set(&mut out, "profile", json!(t.profile));
    }
    if !t.target_profile.is_empty() {
        set(&mut out, "targetProfile", json!(t.target_profile));
    }
    out
}

fn slicing_json(slicing: &crate::model::Slicing) -> Value {
    let discriminator: Vec<Value> = slicing
        .discriminator
        .iter()
        .map(|(kind, path)| json!({"type": kind.code(), "path": path}))
        .collect();
    json!({
        "discriminator": discriminator,
        "rules": match slicing.rules {
            SlicingRules::Open => "open",
            SlicingRules::Closed => "closed",
        }
    })
}

fn invariant_json(inv: &crate::model::Invariant, source: &str) -> Value {
    json!({
        "key": inv.key,
        "severity": match inv.severity {
            crate::model::InvariantSeverity::Error => "error",
            crate::model::InvariantSeverity::Warning => "warning",
        },
        "human": inv.human,
        "expression": inv.expression,
        "source": source,
    })
}

/// The differential element of `rule`.
fn differential_element(rule: &El, profile: &str) -> Value {
    let mut e = Map::new();
    e.insert("id".into(), json!(rule.id));
    e.insert("path".into(), json!(path_of(&rule.id)));
    if let Some(name) = last_segment(&rule.id).split_once(':').map(|(_, n)| n) {
        e.insert("sliceName".into(), json!(name));
    }
    if let Some(slicing) = &rule.slicing {
        e.insert("slicing".into(), slicing_json(slicing));
    }
    if let Some(short) = rule.short {
        e.insert("short".into(), json!(short));
    }
    if let Some(min) = rule.min {
        e.insert("min".into(), json!(min));
    }
    if let Some(max) = rule.max {
        e.insert(
            "max".into(),
            json!(match max {
                Max::N(n) => n.to_string(),
                Max::Many => "*".to_string(),
            }),
        );
    }
    if !rule.types.is_empty() {
        let types: Vec<Value> = rule.types.iter().map(|t| type_json(t, &[])).collect();
        e.insert("type".into(), json!(types));
    }
    if let Some(fixed) = rule.fixed {
        e.insert(fixed.property().into(), json!(fixed.value()));
    }
    if !rule.invariants.is_empty() {
        let constraints: Vec<Value> = rule
            .invariants
            .iter()
            .map(|inv| invariant_json(inv, profile))
            .collect();
        e.insert("constraint".into(), json!(constraints));
    }
    if let Some(binding) = rule.binding {
        let mut b = json!({"strength": binding.strength.code()});
        if let Some(vs) = binding.value_set {
            set(&mut b, "valueSet", json!(vs));
        }
        e.insert("binding".into(), b);
    }
    Value::Object(e)
}
