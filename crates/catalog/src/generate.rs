//! Turns declarations into StructureDefinition resources: the differential as declared, and
//! the snapshot generated from it and the parent's snapshot (an R4 core definition or one
//! generated before) by `phr_fhir::snapshot`, the same generator that completes
//! differential-only packages.
//!
//! This module never reads instances; it only builds definitions.

use std::collections::HashMap;
use std::sync::Arc;

use phr_fhir::snapshot::{self, SnapshotSource};
use serde_json::{Map, Value, json};

use crate::model::{El, Max, SlicingRules, TypeRef, last_segment, path_of};
use crate::profile::ProfileDecl;

/// A declaration that cannot be turned into a StructureDefinition: a bug in the catalogue,
/// caught by its tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    #[error("{profile}: parent definition {parent} is not known")]
    UnknownParent { profile: String, parent: String },
    #[error("{profile}: {message}")]
    Snapshot { profile: String, message: String },
}

/// The snapshots a generation may build on (R4 core and the catalogue's definitions
/// generated so far), by canonical URL.
pub(crate) struct Definitions {
    by_url: HashMap<String, Arc<Vec<Value>>>,
}

impl Definitions {
    /// The R4 core definitions (read from the embedded ones on demand).
    pub(crate) fn core() -> Self {
        Definitions {
            by_url: HashMap::new(),
        }
    }

    pub(crate) fn add(&mut self, sd: Value) {
        if let (Some(url), Some(elements)) = (
            sd.get("url").and_then(Value::as_str),
            sd.pointer("/snapshot/element").and_then(Value::as_array),
        ) {
            self.by_url
                .insert(url.to_string(), Arc::new(elements.clone()));
        }
    }
}

impl SnapshotSource for Definitions {
    fn snapshot_elements(&self, url: &str) -> Option<Arc<Vec<Value>>> {
        self.by_url
            .get(url)
            .cloned()
            .or_else(|| phr_fhir::defs::core_snapshot(url))
    }
}

/// Generates the StructureDefinition of `decl` on top of `defs` (which must hold its parent
/// and every extension it unfolds).
pub(crate) fn structure_definition(
    decl: &ProfileDecl,
    defs: &Definitions,
) -> Result<Value, GenerateError> {
    let url = decl.url;
    if defs.snapshot_elements(decl.parent).is_none() {
        return Err(GenerateError::UnknownParent {
            profile: url.to_string(),
            parent: decl.parent.to_string(),
        });
    }
    let rules = merge_rules(&decl.rules);
    let differential: Vec<Value> = rules.iter().map(|r| differential_element(r, url)).collect();
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
    sd.insert("differential".into(), json!({ "element": differential }));
    let sd = Value::Object(sd);
    let snapshot = snapshot::generate(&sd, defs).map_err(|e| GenerateError::Snapshot {
        profile: url.to_string(),
        message: e.to_string(),
    })?;
    // The differential in snapshot order, as published definitions have it.
    let position: HashMap<&str, usize> = snapshot
        .iter()
        .enumerate()
        .filter_map(|(i, e)| Some((e["id"].as_str()?, i)))
        .collect();
    let mut sd = sd;
    if let Some(Value::Array(elements)) = sd
        .get_mut("differential")
        .and_then(|d| d.get_mut("element"))
    {
        elements.sort_by_key(|e| {
            e["id"]
                .as_str()
                .and_then(|id| position.get(id).copied())
                .unwrap_or(usize::MAX)
        });
    }
    set(&mut sd, "snapshot", json!({ "element": snapshot }));
    Ok(sd)
}

/// One rule per element id, in first-mention order; later mentions add to earlier ones.
fn merge_rules(rules: &[El]) -> Vec<El> {
    let mut merged: Vec<El> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for rule in rules {
        match index.get(&rule.id).and_then(|&i| merged.get_mut(i)) {
            Some(into) => {
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

/// The JSON of a declared type, keeping what the base said about the same type code (such as
/// the FHIRPath type of primitives) unless the declaration overrides it.
fn type_json(t: &TypeRef, base_types: &[Value]) -> Value {
    let mut out = base_types
        .iter()
        .find(|b| b["code"] == t.code)
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

/// Sets a property of a generated JSON object (a no-op on anything else, which generated
/// values never are).
pub(crate) fn set(element: &mut Value, key: &str, value: Value) {
    if let Some(object) = element.as_object_mut() {
        object.insert(key.into(), value);
    }
}
