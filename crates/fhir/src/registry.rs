//! The definitions registry: compiled StructureDefinitions, ValueSets and CodeSystems, built
//! once from the embedded R4 definitions and extendable with more (JSON values, or a folder
//! of JSON files holding single resources or Bundles).
//!
//! ```no_run
//! use std::sync::Arc;
//! use phr_fhir::Definitions;
//! let base: Arc<Definitions> = Definitions::r4();
//! let mut defs = (*base).clone(); // cheap: the compiled definitions are shared
//! defs.load_dir("../shared/kanta/conformance").unwrap();
//! let defs = Arc::new(defs);
//! assert!(defs.structure_definition("http://phr.kanta.fi/StructureDefinition/fiphr-sd-bodyweight").is_some());
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use crate::sd::{SdError, SdKind, StructureDef, canonical_without_version, type_suffix};
use crate::snapshot::{self, SnapshotError, SnapshotSource};
use crate::terminology::{self, CodeSystem, Expansion, Membership, TerminologySource, ValueSet};

/// Why definitions could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON: {source}")]
    Json {
        path: PathBuf,
        source: crate::json::JsonError,
    },
    #[error(transparent)]
    StructureDefinition(#[from] SdError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

/// What `load_dir`/`add_resources` took in.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    pub structure_definitions: Vec<String>,
    pub value_sets: Vec<String>,
    pub code_systems: Vec<String>,
    /// Resources that were not definitions (examples, CapabilityStatements, ...), by type.
    pub ignored: Vec<String>,
    /// Definitions that could not be used, with the reason (e.g. a profile whose base is
    /// not known).
    pub rejected: Vec<String>,
    /// StructureDefinitions that came without a snapshot and got one generated.
    pub generated_snapshots: Vec<String>,
    pub search_parameters: Vec<String>,
    /// What is wrong with loaded conformance resources that are still used (a
    /// SearchParameter whose base differs from the one it derives from, a CodeSystem
    /// property that is not declared ...), each starting with the resource's url.
    pub problems: Vec<String>,
}

#[derive(Debug)]
struct VsEntry {
    vs: Arc<ValueSet>,
    expansion: OnceLock<Arc<Expansion>>,
}

/// The registry. Cloning is cheap (compiled definitions are shared); a clone starts with
/// fresh value set expansion caches so that added code systems are seen.
#[derive(Debug)]
pub struct Definitions {
    sds: HashMap<String, Arc<StructureDef>>,
    sds_versioned: HashMap<String, Arc<StructureDef>>,
    /// Type name -> the base definition of that type (a specialization).
    types: HashMap<String, Arc<StructureDef>>,
    resource_types: BTreeSet<String>,
    value_sets: HashMap<String, Arc<VsEntry>>,
    code_systems: HashMap<String, Arc<CodeSystem>>,
    /// (key, expression) of invariants that base type definitions carry.
    base_constraints: Arc<HashSet<(String, String)>>,
    /// Snapshot elements of the StructureDefinitions added after the embedded R4 ones (for
    /// generating the snapshots of profiles built on them).
    snapshots: HashMap<String, Arc<Vec<Value>>>,
    /// Profiles (by url prefix) under which an unknown extension is an error.
    strict_prefixes: Vec<String>,
    /// SearchParameters added after the embedded R4 ones.
    search_parameters: HashMap<String, Arc<Value>>,
    /// Some code system held is a supplement.
    has_supplements: bool,
}

impl Clone for Definitions {
    fn clone(&self) -> Self {
        Definitions {
            snapshots: self.snapshots.clone(),
            strict_prefixes: self.strict_prefixes.clone(),
            search_parameters: self.search_parameters.clone(),
            has_supplements: self.has_supplements,
            sds: self.sds.clone(),
            sds_versioned: self.sds_versioned.clone(),
            types: self.types.clone(),
            resource_types: self.resource_types.clone(),
            value_sets: fresh_entries(&self.value_sets),
            code_systems: self.code_systems.clone(),
            base_constraints: self.base_constraints.clone(),
        }
    }
}

fn fresh_entries(v: &HashMap<String, Arc<VsEntry>>) -> HashMap<String, Arc<VsEntry>> {
    v.iter()
        .map(|(k, e)| {
            (
                k.clone(),
                Arc::new(VsEntry {
                    vs: e.vs.clone(),
                    expansion: OnceLock::new(),
                }),
            )
        })
        .collect()
}

/// An element found by type and path: the StructureDefinition and the index of the element
/// in it.
#[derive(Debug, Clone)]
pub struct ElementRef {
    pub sd: Arc<StructureDef>,
    pub index: usize,
    /// For a choice element reached through a typed name (`valueQuantity`), the type.
    pub type_index: Option<usize>,
}

impl ElementRef {
    pub fn element(&self) -> &crate::sd::Element {
        self.sd.el(self.index)
    }
}

impl Definitions {
    /// The official R4 definitions, built once per process.
    pub fn r4() -> Arc<Definitions> {
        static R4: OnceLock<Arc<Definitions>> = OnceLock::new();
        R4.get_or_init(|| Arc::new(Definitions::build_r4())).clone()
    }

    /// An empty registry (for tests of definitions that stand alone).
    pub fn empty() -> Definitions {
        Definitions {
            sds: HashMap::new(),
            sds_versioned: HashMap::new(),
            types: HashMap::new(),
            resource_types: BTreeSet::new(),
            value_sets: HashMap::new(),
            code_systems: HashMap::new(),
            base_constraints: Arc::new(HashSet::new()),
            snapshots: HashMap::new(),
            strict_prefixes: Vec::new(),
            search_parameters: HashMap::new(),
            has_supplements: false,
        }
    }

    fn build_r4() -> Definitions {
        let mut defs = Definitions::empty();
        let sds = crate::defs::structure_definitions();
        let mut base = HashSet::new();
        for sd in sds.iter() {
            if sd["derivation"] == "specialization" || sd["derivation"].is_null() {
                collect_constraints(sd, &mut base);
            }
        }
        defs.base_constraints = Arc::new(base);
        for sd in sds.iter() {
            // The embedded definitions are checked by tests; one that does not compile is
            // left out (and `r4_knows_resource_types_and_types` fails).
            let _ = defs.compile_and_insert(sd, false);
        }
        for r in crate::defs::terminology() {
            defs.add_terminology(&r);
        }
        defs
    }

    /// Adds one StructureDefinition, ValueSet or CodeSystem resource, or every such resource
    /// in a Bundle. Other resources are counted as ignored.
    pub fn add_resource(&mut self, resource: &Value) -> LoadReport {
        self.add_resources([resource])
    }

    /// Adds many resources (see `add_resource`).
    /// StructureDefinitions without a snapshot get one generated from their differential,
    /// after the definitions they build on (in any order among `resources`).
    pub fn add_resources<'a>(
        &mut self,
        resources: impl IntoIterator<Item = &'a Value>,
    ) -> LoadReport {
        let mut report = LoadReport::default();
        let mut pending = Vec::new();
        for r in resources {
            self.add_into(r, &mut report, &mut pending);
        }
        // Profiles on profiles: generate a snapshot once its base is known, until no more
        // can be generated.
        while !pending.is_empty() {
            let before = pending.len();
            let mut waiting = Vec::new();
            for sd in pending {
                match self.add_structure_definition(sd) {
                    Ok(url) => {
                        report.generated_snapshots.push(url.clone());
                        report.structure_definitions.push(url);
                    }
                    Err(DefinitionsError::Snapshot(SnapshotError::UnknownBase { .. })) => {
                        waiting.push(sd)
                    }
                    Err(e) => report.rejected.push(e.to_string()),
                }
            }
            if waiting.len() == before {
                for sd in waiting {
                    if let Err(e) = self.add_structure_definition(sd) {
                        report.rejected.push(e.to_string());
                    }
                }
                break;
            }
            pending = waiting;
        }
        report
    }

    fn add_into<'a>(
        &mut self,
        r: &'a Value,
        report: &mut LoadReport,
        pending: &mut Vec<&'a Value>,
    ) {
        match r["resourceType"].as_str() {
            Some("Bundle") => {
                for e in r["entry"].as_array().into_iter().flatten() {
                    self.add_into(&e["resource"], report, pending);
                }
            }
            Some("StructureDefinition") if !has_snapshot(r) => pending.push(r),
            Some("StructureDefinition") => match self.add_structure_definition(r) {
                Ok(url) => report.structure_definitions.push(url),
                Err(e) => report.rejected.push(e.to_string()),
            },
            Some("SearchParameter") => match r.get("url").and_then(Value::as_str) {
                Some(url) => {
                    self.search_parameters
                        .insert(url.to_string(), Arc::new(r.clone()));
                    report.search_parameters.push(url.to_string());
                    self.note_problems("SearchParameter", r, report);
                }
                None => report.rejected.push("SearchParameter without url".into()),
            },
            Some(t @ ("ValueSet" | "CodeSystem")) => match self.add_terminology(r) {
                Some(url) => {
                    if t == "ValueSet" {
                        report.value_sets.push(url);
                    } else {
                        report.code_systems.push(url);
                    }
                    self.note_problems(t, r, report);
                }
                None => report
                    .rejected
                    .push(format!("{} without url", r["resourceType"])),
            },
            Some(other) => report.ignored.push(other.to_string()),
            None => report.ignored.push("(no resourceType)".to_string()),
        }
    }

    fn note_problems(&self, type_name: &str, r: &Value, report: &mut LoadReport) {
        let Some(obj) = r.as_object() else { return };
        let url = obj.get("url").and_then(Value::as_str).unwrap_or("?");
        for f in crate::conformance::check(type_name, obj, self) {
            if f.severity <= crate::outcome::Severity::Error {
                report
                    .problems
                    .push(format!("{url}: {}: {}", f.path, f.message));
            }
        }
    }

    /// A SearchParameter by canonical URL: one added, or an R4 one.
    pub fn search_parameter(&self, url: &str) -> Option<Arc<Value>> {
        let url = canonical_without_version(url);
        self.search_parameters
            .get(url)
            .cloned()
            .or_else(|| crate::defs::core_search_parameter(url))
    }

    /// Loads every `*.json` file under `dir` (recursively): single resources or Bundles.
    pub fn load_dir(&mut self, dir: impl AsRef<Path>) -> Result<LoadReport, DefinitionsError> {
        let mut files = Vec::new();
        collect_json_files(dir.as_ref(), &mut files)?;
        files.sort();
        let mut resources = Vec::with_capacity(files.len());
        for path in files {
            let text = std::fs::read(&path).map_err(|source| DefinitionsError::Io {
                path: path.clone(),
                source,
            })?;
            let value: Value = crate::json::parse(&text)
                .map_err(|source| DefinitionsError::Json { path, source })?;
            resources.push(value);
        }
        // Load order does not matter: expansion is lazy, and a StructureDefinition without a
        // snapshot waits for the definition it builds on.
        Ok(self.add_resources(resources.iter()))
    }

    /// Compiles and adds a StructureDefinition, generating its snapshot from its
    /// differential when it has none; returns its url.
    pub fn add_structure_definition(&mut self, sd: &Value) -> Result<String, DefinitionsError> {
        if has_snapshot(sd) {
            let url = self.compile_and_insert(sd, true)?;
            if let Some(elements) = sd.pointer("/snapshot/element").and_then(Value::as_array) {
                self.snapshots
                    .insert(url.clone(), Arc::new(elements.clone()));
            }
            return Ok(url);
        }
        let with = snapshot::with_snapshot(sd, self)?;
        let url = self.compile_and_insert(&with, true)?;
        if let Some(elements) = with.pointer("/snapshot/element").and_then(Value::as_array) {
            self.snapshots
                .insert(url.clone(), Arc::new(elements.clone()));
        }
        Ok(url)
    }

    /// The snapshot elements (JSON) of a StructureDefinition: as loaded, as generated, or
    /// the embedded R4 one.
    pub fn snapshot_json(&self, url: &str) -> Option<Arc<Vec<Value>>> {
        let url = canonical_without_version(url);
        self.snapshots
            .get(url)
            .cloned()
            .or_else(|| crate::defs::core_snapshot(url))
    }

    /// Makes an unknown extension an error (not a warning) inside resources validated
    /// against a profile whose url starts with `prefix`.
    pub fn set_strict_extensions(&mut self, prefix: impl Into<String>) {
        self.strict_prefixes.push(prefix.into());
    }

    /// True when unknown extensions are errors under `profile`.
    pub fn strict_extensions_for(&self, profile: &str) -> bool {
        self.strict_prefixes
            .iter()
            .any(|p| profile.starts_with(p.as_str()))
    }

    /// `with_contexts`: keep the extension contexts the definition states. The embedded R4
    /// extension definitions come from a third-party package whose contexts differ from the
    /// specification's in places (`structuredefinition-normative-version` on
    /// StructureDefinition only, where R4's own snapshots put it on every element), so theirs
    /// are not enforced.
    fn compile_and_insert(&mut self, sd: &Value, with_contexts: bool) -> Result<String, SdError> {
        let base = self.base_constraints.clone();
        let mut compiled =
            StructureDef::compile(sd, &|k, e| base.contains(&(k.to_string(), e.to_string())))?;
        if !with_contexts {
            compiled.contexts.clear();
        }
        let compiled = Arc::new(compiled);
        let url = compiled.url.clone();
        if compiled.derivation == crate::sd::Derivation::Specialization
            && compiled.kind != SdKind::Logical
        {
            self.types
                .insert(compiled.type_name.clone(), compiled.clone());
            if compiled.kind == SdKind::Resource && !compiled.is_abstract {
                self.resource_types.insert(compiled.type_name.clone());
            }
        }
        if let Some(v) = &compiled.version {
            self.sds_versioned
                .insert(format!("{url}|{v}"), compiled.clone());
        }
        self.sds.insert(url.clone(), compiled);
        Ok(url)
    }

    /// Adds a ValueSet or CodeSystem; returns its url.
    pub fn add_terminology(&mut self, r: &Value) -> Option<String> {
        let url = match r["resourceType"].as_str()? {
            "ValueSet" => {
                let vs = ValueSet::from_json(r)?;
                let url = vs.url.clone();
                self.value_sets.insert(
                    url.clone(),
                    Arc::new(VsEntry {
                        vs: Arc::new(vs),
                        expansion: OnceLock::new(),
                    }),
                );
                url
            }
            "CodeSystem" => {
                let cs = CodeSystem::from_json(r)?;
                self.has_supplements |= cs.is_supplement();
                let url = cs.url.clone();
                self.code_systems.insert(url.clone(), Arc::new(cs));
                url
            }
            _ => return None,
        };
        // Expansions computed so far may have missed what was just added.
        if self
            .value_sets
            .values()
            .any(|e| e.expansion.get().is_some())
        {
            self.value_sets = fresh_entries(&self.value_sets);
        }
        Some(url)
    }

    /// A StructureDefinition by canonical URL, optionally `url|version`.
    pub fn structure_definition(&self, canonical: &str) -> Option<&Arc<StructureDef>> {
        if canonical.contains('|')
            && let Some(sd) = self.sds_versioned.get(canonical)
        {
            return Some(sd);
        }
        self.sds.get(canonical_without_version(canonical))
    }

    /// The base definition of a type (`Observation`, `Quantity`, `string`, ...).
    pub fn type_definition(&self, type_name: &str) -> Option<&Arc<StructureDef>> {
        self.types.get(type_name)
    }

    /// Every concrete resource type name, sorted.
    pub fn resource_types(&self) -> impl Iterator<Item = &str> {
        self.resource_types.iter().map(String::as_str)
    }

    pub fn is_resource_type(&self, name: &str) -> bool {
        self.resource_types.contains(name)
    }

    /// Every StructureDefinition url known.
    pub fn structure_definition_urls(&self) -> impl Iterator<Item = &str> {
        self.sds.keys().map(String::as_str)
    }

    /// The ElementDefinition for a path such as `Observation.component.valueQuantity.code`,
    /// `Observation.value[x]`, `Questionnaire.item.item.linkId` (contentReference) or
    /// `Patient.name.given` (descends into data types). Looked up in `type_name`'s base
    /// definition, or in the profile `sd_url` when given via `element_in`.
    pub fn element(&self, type_name: &str, path: &str) -> Option<ElementRef> {
        let sd = self.type_definition(type_name)?.clone();
        self.element_in(&sd, path)
    }

    /// Like `element`, in a given StructureDefinition (e.g. a profile).
    pub fn element_in(&self, sd: &Arc<StructureDef>, path: &str) -> Option<ElementRef> {
        let mut segments = path.split('.');
        let first = segments.next()?;
        if first != sd.type_name && first != sd.el(0).path {
            return None;
        }
        let mut cur = ElementRef {
            sd: sd.clone(),
            index: 0,
            type_index: None,
        };
        for seg in segments {
            cur = self.step(&cur, seg)?;
        }
        Some(cur)
    }

    fn step(&self, cur: &ElementRef, seg: &str) -> Option<ElementRef> {
        let content = cur.sd.content_of(cur.index);
        let el = cur.sd.el(content);
        if !el.children.is_empty() {
            if let Some(r) = find_child(&cur.sd, content, seg) {
                return Some(r);
            }
            return None;
        }
        // Descend into the element's type.
        let ty = match cur.type_index {
            Some(t) => el.types.get(t)?,
            None => el.single_type()?,
        };
        let type_sd = self.type_definition(&ty.code)?.clone();
        find_child(&type_sd, 0, seg)
    }

    /// A ValueSet by canonical URL (version ignored).
    pub fn value_set(&self, url: &str) -> Option<&ValueSet> {
        self.value_sets
            .get(canonical_without_version(url))
            .map(|e| e.vs.as_ref())
    }

    /// A CodeSystem by canonical URL.
    pub fn code_system(&self, url: &str) -> Option<&CodeSystem> {
        self.code_systems
            .get(canonical_without_version(url))
            .map(Arc::as_ref)
    }

    /// The expansion of a value set (computed once per registry), `None` when unknown.
    pub fn expansion(&self, url: &str) -> Option<Arc<Expansion>> {
        self.expansion_at(url, 0)
    }

    fn expansion_at(&self, url: &str, depth: usize) -> Option<Arc<Expansion>> {
        let entry = self.value_sets.get(canonical_without_version(url))?;
        if let Some(e) = entry.expansion.get() {
            return Some(e.clone());
        }
        let e = Arc::new(terminology::expand(&entry.vs, self, depth));
        Some(entry.expansion.get_or_init(|| e).clone())
    }

    /// True when some code system held is a supplement (most registries have none, and then
    /// Codings need no look-up to rule one out).
    pub fn has_supplements(&self) -> bool {
        self.has_supplements
    }

    /// Is `code` (from `system`, or any system when `None`) in value set `url`?
    pub fn validate_code(&self, url: &str, system: Option<&str>, code: &str) -> Membership {
        match self.expansion(url) {
            Some(e) => e.contains(system, code),
            None => Membership::Unknown(format!("value set {url} is not available")),
        }
    }

    /// The display of a code in a code system we hold.
    pub fn display(&self, system: &str, code: &str) -> Option<&str> {
        self.code_system(system)?.display(code)
    }
}

impl TerminologySource for Definitions {
    fn code_system(&self, url: &str) -> Option<&CodeSystem> {
        Definitions::code_system(self, url)
    }
    fn value_set_expansion(&self, url: &str, depth: usize) -> Option<Arc<Expansion>> {
        self.expansion_at(url, depth)
    }
}

fn find_child(sd: &Arc<StructureDef>, el: usize, seg: &str) -> Option<ElementRef> {
    if let Some(c) = sd.child(el, seg) {
        let is_choice = sd.el(c.element).is_choice;
        return Some(ElementRef {
            sd: sd.clone(),
            index: c.element,
            type_index: is_choice.then_some(c.type_index),
        });
    }
    // `value[x]` written as such, or `value` for a choice.
    let base = seg.strip_suffix("[x]").unwrap_or(seg);
    sd.el(el).children.iter().find_map(|&c| {
        let e = sd.el(c);
        (e.is_choice && e.name == base).then(|| ElementRef {
            sd: sd.clone(),
            index: c,
            type_index: None,
        })
    })
}

impl SnapshotSource for Definitions {
    fn snapshot_elements(&self, url: &str) -> Option<Arc<Vec<Value>>> {
        self.snapshot_json(url)
    }
}

fn has_snapshot(sd: &Value) -> bool {
    sd.pointer("/snapshot/element")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
}

fn collect_constraints(sd: &Value, out: &mut HashSet<(String, String)>) {
    for e in sd
        .pointer("/snapshot/element")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for c in e["constraint"].as_array().into_iter().flatten() {
            if let (Some(k), Some(x)) = (c["key"].as_str(), c["expression"].as_str()) {
                out.insert((k.to_string(), x.to_string()));
            }
        }
    }
}

fn collect_json_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DefinitionsError> {
    let io = |source| DefinitionsError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.is_dir() {
            collect_json_files(&path, out)?;
        } else if path.extension().is_some_and(|x| x == "json") {
            out.push(path);
        }
    }
    Ok(())
}

/// The JSON property name of a choice element for a type: (`value`, `Quantity`) -> `valueQuantity`.
pub fn choice_name(base: &str, type_code: &str) -> String {
    format!("{base}{}", type_suffix(type_code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r4_knows_resource_types_and_types() {
        let defs = Definitions::r4();
        assert!(defs.is_resource_type("Observation"));
        assert!(defs.is_resource_type("QuestionnaireResponse"));
        assert!(!defs.is_resource_type("DomainResource"), "abstract");
        assert!(!defs.is_resource_type("Quantity"));
        assert_eq!(defs.resource_types().count(), 146);
        assert_eq!(
            defs.type_definition("Quantity").unwrap().url,
            "http://hl7.org/fhir/StructureDefinition/Quantity"
        );
        assert!(
            defs.structure_definition("http://hl7.org/fhir/StructureDefinition/vitalsigns|4.0.1")
                .is_some()
        );
    }

    #[test]
    fn element_lookup_resolves_choices_references_and_types() {
        let defs = Definitions::r4();
        let e = defs
            .element("Observation", "Observation.component.valueQuantity.code")
            .unwrap();
        assert_eq!(e.sd.type_name, "Quantity");
        assert_eq!(e.element().path, "Quantity.code");
        let v = defs
            .element("Observation", "Observation.valueQuantity")
            .unwrap();
        assert_eq!(v.element().path, "Observation.value[x]");
        assert_eq!(v.element().types[v.type_index.unwrap()].code, "Quantity");
        assert!(
            defs.element("Observation", "Observation.value[x]")
                .is_some()
        );
        assert!(
            defs.element("Observation", "Observation.valueFoo")
                .is_none()
        );
        let nested = defs
            .element("Questionnaire", "Questionnaire.item.item.linkId")
            .unwrap();
        assert_eq!(nested.element().path, "Questionnaire.item.linkId");
        let given = defs.element("Patient", "Patient.name.given").unwrap();
        assert_eq!(given.element().path, "HumanName.given");
    }

    #[test]
    fn required_value_sets_expand() {
        let defs = Definitions::r4();
        assert_eq!(
            defs.validate_code(
                "http://hl7.org/fhir/ValueSet/observation-status",
                Some("http://hl7.org/fhir/observation-status"),
                "final"
            ),
            Membership::Member
        );
        assert_eq!(
            defs.validate_code(
                "http://hl7.org/fhir/ValueSet/observation-status",
                None,
                "done"
            ),
            Membership::NotMember
        );
        assert_eq!(
            defs.validate_code("http://hl7.org/fhir/ValueSet/languages", None, "fi"),
            Membership::Member
        );
    }

    #[test]
    fn added_code_systems_reach_value_sets_of_clones() {
        let mut defs = (*Definitions::r4()).clone();
        defs.add_resources(
            [
                serde_json::json!({"resourceType": "ValueSet", "url": "http://x/vs",
                    "compose": {"include": [{"system": "http://x/cs"}]}}),
                serde_json::json!({"resourceType": "CodeSystem", "url": "http://x/cs",
                    "content": "complete", "concept": [{"code": "a"}]}),
            ]
            .iter(),
        );
        assert_eq!(
            defs.validate_code("http://x/vs", Some("http://x/cs"), "a"),
            Membership::Member
        );
        assert_eq!(
            defs.validate_code("http://x/vs", Some("http://x/cs"), "b"),
            Membership::NotMember
        );
    }
}
