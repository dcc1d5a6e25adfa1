//! Snapshot generation: a StructureDefinition's snapshot computed from its differential and
//! its base definition's snapshot (which may itself have been generated: profiles on
//! profiles), the way the HL7 reference implementation lays it out — an element, its
//! children, then its slices each followed by its own children.
//!
//! Each differential element is located in the growing snapshot (unfolding a data type, an
//! extension definition or a `contentReference` where the differential reaches inside an
//! element, creating slices and re-slices, and reading a renamed choice such as
//! `valueQuantity` as `value[x]` restricted to that type), and its properties are merged
//! into the element: cardinality, types and their profiles, fixed/pattern values,
//! bindings, slicing, constraints (added to the inherited ones) and the rest.
//!
//! This module only builds definitions; it never reads instances and never compiles what it
//! builds (that is `sd`).

use std::sync::Arc;

use serde_json::{Map, Value, json};

/// The canonical URL prefix of the core definitions: a type's definition is this + its code.
pub const CORE: &str = "http://hl7.org/fhir/StructureDefinition/";

/// Where the snapshots a generation builds on come from (a registry).
pub trait SnapshotSource {
    /// The snapshot elements of the StructureDefinition at `url` (no `|version`).
    fn snapshot_elements(&self, url: &str) -> Option<Arc<Vec<Value>>>;
}

/// Why a snapshot could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("StructureDefinition without url")]
    NoUrl,
    #[error("{0}: no differential to generate a snapshot from")]
    NoDifferential(String),
    #[error("{url}: base definition {base} is not known")]
    UnknownBase { url: String, base: String },
    #[error("{url}: differential element {id} does not exist in the base")]
    UnknownElement { url: String, id: String },
    #[error("{url}: cannot look inside {id}: it has {types} types (restrict it to one first)")]
    AmbiguousType {
        url: String,
        id: String,
        types: usize,
    },
    #[error("{url}: slice {id} of an element that is not sliced")]
    SliceWithoutSlicing { url: String, id: String },
    #[error("{url}: {id} would be {min}..{max}")]
    BadCardinality {
        url: String,
        id: String,
        min: u64,
        max: String,
    },
}

/// The snapshot elements of `sd`, generated from its differential and its base.
pub fn generate(sd: &Value, source: &dyn SnapshotSource) -> Result<Vec<Value>, SnapshotError> {
    let url = sd
        .get("url")
        .and_then(Value::as_str)
        .ok_or(SnapshotError::NoUrl)?;
    let differential = sd
        .get("differential")
        .and_then(|d| d.get("element"))
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| SnapshotError::NoDifferential(url.to_string()))?;
    let base_url = sd
        .get("baseDefinition")
        .and_then(Value::as_str)
        .map(crate::sd::canonical_without_version)
        .unwrap_or_default();
    let base = source
        .snapshot_elements(base_url)
        .ok_or_else(|| SnapshotError::UnknownBase {
            url: url.to_string(),
            base: base_url.to_string(),
        })?;
    let mut snapshot = Snapshot {
        url,
        elements: base.as_ref().clone(),
        base,
        unfolded: std::collections::HashMap::new(),
        source,
    };
    let mut ids = DiffIds::default();
    for d in differential {
        let id = ids.id_of(d);
        let index = snapshot.ensure(&id)?;
        snapshot.apply(index, d, &id)?;
    }
    Ok(snapshot.elements)
}

/// `sd` with its snapshot generated (replacing any snapshot it had).
pub fn with_snapshot(sd: &Value, source: &dyn SnapshotSource) -> Result<Value, SnapshotError> {
    let elements = generate(sd, source)?;
    let mut out = sd.clone();
    if let Value::Object(m) = &mut out {
        m.insert("snapshot".into(), json!({ "element": elements }));
    }
    Ok(out)
}

/// Element ids of differential elements, derived from path and slice name where a
/// differential (written before element ids were required) carries none.
#[derive(Default)]
struct DiffIds {
    /// (path, id) of the slices seen so far, innermost last.
    slices: Vec<(String, String)>,
}

impl DiffIds {
    fn id_of(&mut self, d: &Value) -> String {
        let path = d.get("path").and_then(Value::as_str).unwrap_or_default();
        let slice = d.get("sliceName").and_then(Value::as_str);
        if let Some(id) = d.get("id").and_then(Value::as_str) {
            return id.to_string();
        }
        // Inside the most recent slice whose path is a prefix of this one.
        self.slices
            .retain(|(p, _)| path == p || path.starts_with(&format!("{p}.")));
        let id = match self.slices.last() {
            Some((p, id)) if path != p => {
                format!("{id}{}", path.get(p.len()..).unwrap_or_default())
            }
            _ => path.to_string(),
        };
        match slice {
            Some(name) => {
                let (parent, last) = id.rsplit_once('.').unwrap_or(("", id.as_str()));
                let last = last.split(':').next().unwrap_or(last);
                let id = if parent.is_empty() {
                    format!("{last}:{name}")
                } else {
                    format!("{parent}.{last}:{name}")
                };
                self.slices.push((path.to_string(), id.clone()));
                id
            }
            None => id,
        }
    }
}

struct Snapshot<'a> {
    url: &'a str,
    /// The base definition's snapshot: where slices start from.
    base: Arc<Vec<Value>>,
    /// Elements as unfolded from their type, before this differential changed them: where
    /// slices of elements the base did not unfold start from.
    unfolded: std::collections::HashMap<String, Value>,
    elements: Vec<Value>,
    source: &'a dyn SnapshotSource,
}

fn id_of(element: &Value) -> &str {
    element
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn path_of(element: &Value) -> &str {
    element
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether `id` lies strictly inside `ancestor` (a child, or a child's descendant or slice),
/// not counting slices of `ancestor` itself.
fn is_inside(id: &str, ancestor: &str) -> bool {
    id.strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether `id` is a slice (or re-slice) of `element` or inside one.
fn is_slice_of(id: &str, element: &str) -> bool {
    id.strip_prefix(element)
        .is_some_and(|rest| rest.starts_with(':') || rest.starts_with('/'))
}

fn replace_prefix(s: &str, prefix: &str, with: &str) -> String {
    match s.strip_prefix(prefix) {
        Some(rest) => format!("{with}{rest}"),
        None => s.to_string(),
    }
}

fn type_codes(element: &Value) -> Vec<&str> {
    element
        .get("type")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .filter_map(|t| t.get("code").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

impl Snapshot<'_> {
    fn unknown(&self, id: &str) -> SnapshotError {
        SnapshotError::UnknownElement {
            url: self.url.to_string(),
            id: id.to_string(),
        }
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.elements.iter().position(|e| id_of(e) == id)
    }

    fn id_at(&self, index: usize) -> String {
        self.elements
            .get(index)
            .map(id_of)
            .unwrap_or_default()
            .to_string()
    }

    /// The index of the element a differential id names, unfolding types and creating
    /// slices as needed.
    fn ensure(&mut self, id: &str) -> Result<usize, SnapshotError> {
        if let Some(i) = self.find(id) {
            return Ok(i);
        }
        let Some((parent, last)) = split_last(id) else {
            // The root: a differential of a profile names it by the type.
            return if self.elements.is_empty() {
                Err(self.unknown(id))
            } else {
                Ok(0)
            };
        };
        if let Some((name, slice)) = last.split_once(':') {
            // `name:a/b` re-slices `name:a`.
            let (sliced_id, slice_name) = match slice.rsplit_once('/') {
                Some((outer, inner)) => (format!("{parent}.{name}:{outer}"), inner),
                None => (format!("{parent}.{name}"), slice),
            };
            let sliced = self.ensure(&sliced_id)?;
            let real = self.id_at(sliced);
            let separator = if real.contains(':') && slice.contains('/') {
                '/'
            } else {
                ':'
            };
            if let Some(i) = self.find(&format!("{real}{separator}{slice_name}")) {
                return Ok(i);
            }
            return self.create_slice(sliced, slice_name, separator);
        }
        let parent_index = self.ensure(parent)?;
        let parent_id = self.id_at(parent_index);
        if let Some(i) = self.find(&format!("{parent_id}.{last}")) {
            return Ok(i);
        }
        if let Some(i) = self.renamed_choice(parent_index, &parent_id, last)? {
            return Ok(i);
        }
        self.unfold(parent_index, last)?;
        if let Some(i) = self.find(&format!("{parent_id}.{last}")) {
            return Ok(i);
        }
        match self.renamed_choice(parent_index, &parent_id, last)? {
            Some(i) => Ok(i),
            None => Err(self.unknown(id)),
        }
    }

    /// `valueQuantity` where the base has `value[x]`: the choice restricted to that type, or
    /// its type slice when the choice is sliced.
    fn renamed_choice(
        &mut self,
        _parent_index: usize,
        parent_id: &str,
        last: &str,
    ) -> Result<Option<usize>, SnapshotError> {
        let found = self.elements.iter().enumerate().find_map(|(i, e)| {
            let child = id_of(e).strip_prefix(parent_id)?.strip_prefix('.')?;
            let base = child.strip_suffix("[x]")?;
            let suffix = last.strip_prefix(base)?;
            let code = type_codes(e)
                .into_iter()
                .find(|c| crate::sd::type_suffix(c) == suffix)?
                .to_string();
            Some((i, code))
        });
        let Some((index, code)) = found else {
            return Ok(None);
        };
        let sliced = self
            .elements
            .get(index)
            .is_some_and(|e| e.get("slicing").is_some());
        if sliced {
            let real = self.id_at(index);
            if let Some(i) = self.find(&format!("{real}:{last}")) {
                return Ok(Some(i));
            }
            let slice = self.create_slice(index, last, ':')?;
            restrict_types(self.elements.get_mut(slice), &code);
            return Ok(Some(slice));
        }
        restrict_types(self.elements.get_mut(index), &code);
        Ok(Some(index))
    }

    /// Inserts the children of the element at `index` (unless it has them already): from
    /// its type's definition (or the type's profile, e.g. an extension definition), or from
    /// the element a `contentReference` names.
    fn unfold(&mut self, index: usize, wanted: &str) -> Result<(), SnapshotError> {
        let Some(element) = self.elements.get(index) else {
            return Err(self.unknown(wanted));
        };
        let id = id_of(element).to_string();
        if self
            .elements
            .get(index + 1)
            .is_some_and(|next| is_inside(id_of(next), &id))
        {
            return Ok(()); // already unfolded
        }
        let path = path_of(element).to_string();
        if let Some(sliced_id) = sliced_of(&id) {
            // A slice starts from the children of the element it slices, as the base
            // defines them.
            let from_base: Vec<Value> = subtree(&self.base, &sliced_id);
            let children = if from_base.is_empty() {
                subtree(&self.elements, &sliced_id)
            } else {
                from_base
            };
            if !children.is_empty() {
                let children: Vec<Value> = children
                    .iter()
                    .map(|e| relocate(e, &sliced_id, &id, &path, &path))
                    .collect();
                for c in &children {
                    self.unfolded.insert(id_of(c).to_string(), c.clone());
                }
                self.elements.splice(index + 1..index + 1, children);
                return Ok(());
            }
        }
        if let Some(reference) = element.get("contentReference").and_then(Value::as_str) {
            let target = reference.rsplit_once('#').map_or(reference, |(_, t)| t);
            let target = target.to_string();
            let children: Vec<Value> = self
                .elements
                .iter()
                .filter(|e| is_inside(id_of(e), &target))
                .map(|e| relocate(e, &target, &id, &target, &path))
                .collect();
            if let Some(Value::Object(m)) = self.elements.get_mut(index) {
                m.remove("contentReference");
                m.insert("type".into(), json!([{"code": "BackboneElement"}]));
            }
            self.elements.splice(index + 1..index + 1, children);
            return Ok(());
        }
        let types: Vec<&Value> = element
            .get("type")
            .and_then(Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        let source_url = match types.as_slice() {
            [only] => {
                let code = only.get("code").and_then(Value::as_str).unwrap_or_default();
                let profile = only
                    .get("profile")
                    .and_then(Value::as_array)
                    .and_then(|p| p.first())
                    .and_then(Value::as_str)
                    .filter(|p| self.source.snapshot_elements(p).is_some());
                match profile {
                    Some(p) => p.to_string(),
                    None => format!("{CORE}{}", fhir_type_code(only, code)),
                }
            }
            // The children every type has (`id`, `extension`) can be constrained on a
            // choice of several types.
            many if many.len() > 1 && matches!(wanted, "id" | "extension") => {
                format!("{CORE}Element")
            }
            other => {
                return Err(SnapshotError::AmbiguousType {
                    url: self.url.to_string(),
                    id,
                    types: other.len(),
                });
            }
        };
        let source = self
            .source
            .snapshot_elements(crate::sd::canonical_without_version(&source_url))
            .ok_or_else(|| self.unknown(&format!("{id}.{wanted}")))?;
        let Some(root) = source.first() else {
            return Err(self.unknown(&format!("{id}.{wanted}")));
        };
        let (root_id, root_path) = (id_of(root).to_string(), path_of(root).to_string());
        let children: Vec<Value> = source
            .iter()
            .skip(1)
            .map(|e| relocate(e, &root_id, &id, &root_path, &path))
            .collect();
        for c in &children {
            self.unfolded.insert(id_of(c).to_string(), c.clone());
        }
        self.elements.splice(index + 1..index + 1, children);
        Ok(())
    }

    /// Adds slice `name` of the element at `base`, after its subtree and existing slices:
    /// a copy of the element and its children, optional unless the differential says
    /// otherwise.
    fn create_slice(
        &mut self,
        base: usize,
        name: &str,
        separator: char,
    ) -> Result<usize, SnapshotError> {
        let base_id = self.id_at(base);
        let slice_id = format!("{base_id}{separator}{name}");
        let Some(Value::Object(base_element)) = self.elements.get_mut(base) else {
            return Err(self.unknown(&slice_id));
        };
        if separator == ':' && !base_element.contains_key("slicing") {
            let path = base_element
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let is_choice = path.ends_with("[x]");
            if path.ends_with(".extension") || path.ends_with(".modifierExtension") {
                base_element.insert(
                    "slicing".into(),
                    json!({"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}),
                );
            } else if is_choice {
                base_element.insert(
                    "slicing".into(),
                    json!({"discriminator": [{"type": "type", "path": "$this"}], "ordered": false, "rules": "closed"}),
                );
            } else {
                return Err(SnapshotError::SliceWithoutSlicing {
                    url: self.url.to_string(),
                    id: slice_id,
                });
            }
        }
        let mut end = base + 1;
        while let Some(e) = self.elements.get(end) {
            let id = id_of(e);
            if is_inside(id, &base_id) || is_slice_of(id, &base_id) {
                end += 1;
            } else {
                break;
            }
        }
        // A slice starts from the sliced element as the base defines it (not as this
        // differential changed it); its children are unfolded when the differential reaches
        // inside it.
        let mut head = self
            .base
            .iter()
            .find(|e| id_of(e) == base_id)
            .or_else(|| self.unfolded.get(&base_id))
            .or_else(|| self.elements.get(base))
            .cloned()
            .unwrap_or(Value::Null);
        if let Value::Object(m) = &mut head {
            m.remove("slicing");
            m.insert("id".into(), json!(slice_id));
            m.insert("sliceName".into(), json!(name));
            m.insert("min".into(), json!(0));
        }
        let copies = vec![head];
        self.elements.splice(end..end, copies);
        Ok(end)
    }

    /// Merges differential element `d` into the element at `index`.
    fn apply(&mut self, index: usize, d: &Value, id: &str) -> Result<(), SnapshotError> {
        let url = self.url;
        let Some(Value::Object(diff)) = Some(d) else {
            return Ok(());
        };
        let Some(Value::Object(element)) = self.elements.get_mut(index) else {
            return Err(SnapshotError::UnknownElement {
                url: url.to_string(),
                id: id.to_string(),
            });
        };
        for (key, value) in diff {
            match key.as_str() {
                "id" | "path" => {}
                "constraint" => {
                    let mut list = element
                        .get("constraint")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for c in value.as_array().into_iter().flatten() {
                        let key = c.get("key");
                        let mut c = c.clone();
                        if let Value::Object(m) = &mut c
                            && !m.contains_key("source")
                        {
                            m.insert("source".into(), json!(url));
                        }
                        match list.iter_mut().find(|x| x.get("key") == key) {
                            Some(existing) => *existing = c,
                            None => list.push(c),
                        }
                    }
                    element.insert("constraint".into(), Value::Array(list));
                }
                "condition" | "mapping" | "alias" | "code" => {
                    let mut list = element
                        .get(key.as_str())
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for x in value.as_array().into_iter().flatten() {
                        if !list.contains(x) {
                            list.push(x.clone());
                        }
                    }
                    element.insert(key.clone(), Value::Array(list));
                }
                "type" => {
                    let base_types = element
                        .get("type")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let types: Vec<Value> = value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|t| merge_type(t, &base_types))
                        .collect();
                    element.insert("type".into(), Value::Array(types));
                }
                "binding" | "slicing" => {
                    let mut merged = element
                        .get(key.as_str())
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if key == "binding" && value.get("valueSet").is_some() {
                        merged.remove("valueSet");
                    }
                    for (k, v) in value.as_object().into_iter().flatten() {
                        merged.insert(k.clone(), v.clone());
                    }
                    element.insert(key.clone(), Value::Object(merged));
                }
                k if is_value_constraint(k) => {
                    // A fixed value replaces an inherited pattern and the other way round.
                    let prefix = if k.starts_with("fixed") {
                        "fixed"
                    } else {
                        "pattern"
                    };
                    element.retain(|x, _| !(x.starts_with(prefix) && is_value_constraint(x)));
                    element.insert(key.clone(), value.clone());
                }
                _ => {
                    element.insert(key.clone(), value.clone());
                }
            }
        }
        let min = element.get("min").and_then(Value::as_u64).unwrap_or(0);
        let max = element.get("max").and_then(Value::as_str).unwrap_or("*");
        if max.parse::<u64>().is_ok_and(|m| m < min) {
            return Err(SnapshotError::BadCardinality {
                url: url.to_string(),
                id: id.to_string(),
                min,
                max: max.to_string(),
            });
        }
        Ok(())
    }
}

/// The element a slice id slices: `a.b:s` -> `a.b`, `a.b:s/t` -> `a.b:s`; `None` when the
/// last segment is not a slice.
fn sliced_of(id: &str) -> Option<String> {
    let (parent, last) = match id.rsplit_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, id),
    };
    let (name, slice) = last.split_once(':')?;
    let sliced_last = match slice.rsplit_once('/') {
        Some((outer, _)) => format!("{name}:{outer}"),
        None => name.to_string(),
    };
    Some(match parent {
        Some(p) => format!("{p}.{sliced_last}"),
        None => sliced_last,
    })
}

/// Copies of the elements strictly inside `id` (children, their descendants and slices).
fn subtree(elements: &[Value], id: &str) -> Vec<Value> {
    let Some(start) = elements.iter().position(|e| id_of(e) == id) else {
        return Vec::new();
    };
    elements
        .iter()
        .skip(start + 1)
        .take_while(|e| is_inside(id_of(e), id))
        .cloned()
        .collect()
}

/// `fixedCode`, `patternCodeableConcept`, ... (a prefix followed by a type name).
fn is_value_constraint(key: &str) -> bool {
    ["fixed", "pattern"].iter().any(|p| {
        key.strip_prefix(p)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
    })
}

/// `parent.child` -> (`parent`, `child`); `None` for the root.
fn split_last(id: &str) -> Option<(&str, &str)> {
    id.rsplit_once('.')
}

/// A copy of `e` moved from under `from_id`/`from_path` to under `to_id`/`to_path`.
fn relocate(e: &Value, from_id: &str, to_id: &str, from_path: &str, to_path: &str) -> Value {
    let mut copy = e.clone();
    if let Value::Object(m) = &mut copy {
        m.insert("id".into(), json!(replace_prefix(id_of(e), from_id, to_id)));
        m.insert(
            "path".into(),
            json!(replace_prefix(path_of(e), from_path, to_path)),
        );
    }
    copy
}

/// The FHIR type of an element type (primitive `value` elements are typed with FHIRPath
/// system types plus an extension naming the FHIR type).
fn fhir_type_code<'a>(t: &'a Value, code: &'a str) -> &'a str {
    t.get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|x| {
            x.get("url").and_then(Value::as_str)
                == Some("http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type")
        })
        .and_then(|x| x.get("valueUrl").or(x.get("valueUri")))
        .and_then(Value::as_str)
        .unwrap_or(code)
}

/// A differential type, keeping what the base said about the same type code (such as the
/// FHIR type of a FHIRPath system type) unless the differential says otherwise.
fn merge_type(t: &Value, base_types: &[Value]) -> Value {
    let code = t.get("code");
    let mut out: Map<String, Value> = base_types
        .iter()
        .find(|b| b.get("code") == code)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (k, v) in t.as_object().into_iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    Value::Object(out)
}

/// Restricts the types of a choice element to `code`.
fn restrict_types(element: Option<&mut Value>, code: &str) {
    let Some(Value::Object(m)) = element else {
        return;
    };
    let kept: Vec<Value> = m
        .get("type")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("code").and_then(Value::as_str) == Some(code))
        .cloned()
        .collect();
    if !kept.is_empty() {
        m.insert("type".into(), Value::Array(kept));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Source(HashMap<String, Arc<Vec<Value>>>);

    impl SnapshotSource for Source {
        fn snapshot_elements(&self, url: &str) -> Option<Arc<Vec<Value>>> {
            self.0.get(url).cloned()
        }
    }

    fn core() -> Source {
        Source(
            crate::defs::structure_definitions()
                .iter()
                .filter_map(|sd| {
                    let url = sd["url"].as_str()?.to_string();
                    let elements = sd["snapshot"]["element"].as_array()?.clone();
                    Some((url, Arc::new(elements)))
                })
                .collect(),
        )
    }

    fn ids(elements: &[Value]) -> Vec<&str> {
        elements.iter().map(id_of).collect()
    }

    fn element<'a>(elements: &'a [Value], id: &str) -> &'a Value {
        elements
            .iter()
            .find(|e| id_of(e) == id)
            .unwrap_or_else(|| panic!("{id} in {:?}", ids(elements)))
    }

    fn profile(diff: Value) -> Value {
        json!({"resourceType": "StructureDefinition", "url": "http://x/p", "type": "Observation",
            "derivation": "constraint",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Observation",
            "differential": {"element": diff}})
    }

    #[test]
    fn slices_are_copied_after_the_sliced_element_and_its_children() {
        let sd = profile(json!([
            {"id": "Observation.code.coding", "path": "Observation.code.coding",
             "slicing": {"discriminator": [{"type": "value", "path": "code"}], "rules": "open"}},
            {"id": "Observation.code.coding:loinc", "path": "Observation.code.coding",
             "sliceName": "loinc", "min": 1, "max": "1"},
            {"id": "Observation.code.coding:loinc.code", "path": "Observation.code.coding.code",
             "min": 1, "fixedCode": "29463-7"}
        ]));
        let s = generate(&sd, &core()).unwrap();
        let list = ids(&s);
        let coding = list
            .iter()
            .position(|i| *i == "Observation.code.coding")
            .unwrap();
        let slice = list
            .iter()
            .position(|i| *i == "Observation.code.coding:loinc")
            .unwrap();
        // The sliced element is not unfolded (nothing reaches inside it), the slice is.
        assert_eq!(slice, coding + 1);
        assert_eq!(list[slice + 1], "Observation.code.coding:loinc.id");
        let code = element(&s, "Observation.code.coding:loinc.code");
        assert_eq!(code["min"], 1);
        assert_eq!(code["fixedCode"], "29463-7");
        assert_eq!(code["path"], "Observation.code.coding.code");
        assert_eq!(element(&s, "Observation.code.coding:loinc")["min"], 1);
        assert_eq!(list.last(), Some(&"Observation.component.referenceRange"));
    }

    #[test]
    fn a_renamed_choice_restricts_the_choice_to_that_type() {
        let sd = profile(json!([
            {"path": "Observation.valueQuantity", "min": 1},
            {"path": "Observation.valueQuantity.system", "fixedUri": "http://unitsofmeasure.org"}
        ]));
        let s = generate(&sd, &core()).unwrap();
        let value = element(&s, "Observation.value[x]");
        assert_eq!(value["min"], 1);
        assert_eq!(value["type"], json!([{"code": "Quantity"}]));
        assert_eq!(
            element(&s, "Observation.value[x].system")["fixedUri"],
            "http://unitsofmeasure.org"
        );
    }

    #[test]
    fn constraints_add_to_the_inherited_ones_and_bindings_keep_their_value_set() {
        let sd = profile(json!([
            {"id": "Observation", "path": "Observation",
             "constraint": [{"key": "x-1", "severity": "error", "human": "h", "expression": "status.exists()"}]},
            {"id": "Observation.status", "path": "Observation.status", "binding": {"strength": "required"}}
        ]));
        let s = generate(&sd, &core()).unwrap();
        let keys: Vec<&str> = s[0]["constraint"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["key"].as_str())
            .collect();
        assert!(keys.contains(&"obs-6") && keys.contains(&"x-1"), "{keys:?}");
        assert_eq!(
            s[0]["constraint"].as_array().unwrap().last().unwrap()["source"],
            "http://x/p"
        );
        let status = element(&s, "Observation.status");
        assert_eq!(status["binding"]["strength"], "required");
        assert_eq!(
            status["binding"]["valueSet"],
            "http://hl7.org/fhir/ValueSet/observation-status|4.0.1"
        );
    }

    #[test]
    fn extension_slices_unfold_from_the_extension_definition() {
        let mut source = core();
        let ext = json!({"resourceType": "StructureDefinition", "url": "http://x/ext",
        "type": "Extension", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "differential": {"element": [
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": "http://x/ext"},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": "Quantity"}]}
        ]}});
        let ext_snapshot = generate(&ext, &source).unwrap();
        source
            .0
            .insert("http://x/ext".into(), Arc::new(ext_snapshot));
        let sd = profile(json!([
            {"id": "Observation.extension:q", "path": "Observation.extension", "sliceName": "q",
             "type": [{"code": "Extension", "profile": ["http://x/ext"]}]},
            {"id": "Observation.extension:q.value[x].code", "path": "Observation.extension.value[x].code",
             "fixedCode": "kg"}
        ]));
        let s = generate(&sd, &source).unwrap();
        assert_eq!(
            element(&s, "Observation.extension")["slicing"]["discriminator"][0]["path"],
            "url"
        );
        assert_eq!(
            element(&s, "Observation.extension:q.url")["fixedUri"],
            "http://x/ext"
        );
        let code = element(&s, "Observation.extension:q.value[x].code");
        assert_eq!(code["fixedCode"], "kg");
        assert_eq!(code["path"], "Observation.extension.value[x].code");
    }

    #[test]
    fn content_references_unfold_a_copy_of_the_referenced_element() {
        let sd = json!({"resourceType": "StructureDefinition", "url": "http://x/q",
        "type": "Questionnaire", "derivation": "constraint",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Questionnaire",
        "differential": {"element": [
            {"id": "Questionnaire.item.item.linkId", "path": "Questionnaire.item.item.linkId", "maxLength": 10}
        ]}});
        let s = generate(&sd, &core()).unwrap();
        assert_eq!(
            element(&s, "Questionnaire.item.item.linkId")["maxLength"],
            10
        );
        assert!(
            element(&s, "Questionnaire.item.item")
                .get("contentReference")
                .is_none()
        );
    }

    #[test]
    fn errors_name_the_element() {
        let unknown =
            profile(json!([{"id": "Observation.nothing", "path": "Observation.nothing"}]));
        assert!(matches!(
            generate(&unknown, &core()),
            Err(SnapshotError::UnknownElement { id, .. }) if id == "Observation.nothing"
        ));
        let not_sliced = profile(
            json!([{"id": "Observation.code.coding:a", "path": "Observation.code.coding", "sliceName": "a"}]),
        );
        assert!(matches!(
            generate(&not_sliced, &core()),
            Err(SnapshotError::SliceWithoutSlicing { .. })
        ));
        let bad = profile(
            json!([{"id": "Observation.status", "path": "Observation.status", "max": "0", "min": 1}]),
        );
        assert!(matches!(
            generate(&bad, &core()),
            Err(SnapshotError::BadCardinality { .. })
        ));
        let mut no_base = profile(json!([{"id": "Observation", "path": "Observation"}]));
        no_base["baseDefinition"] = json!("http://x/none");
        assert!(matches!(
            generate(&no_base, &core()),
            Err(SnapshotError::UnknownBase { .. })
        ));
    }
}
