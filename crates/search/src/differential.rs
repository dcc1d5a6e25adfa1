//! Differential test of extraction: for every compiled search parameter and many resources
//! (the Kanta examples and bundles, and generated resources of every R4 type), the compiled
//! path program must reach the same nodes as the general FHIRPath engine (rh-fhirpath via
//! `phr_fhir::fhirpath`) evaluating the parameter's expression.
//!
//! The engine gets the expression with two rewrites it needs (see
//! `program::Compiled::engine_expression`): `resolve() is T` as a reference pattern, since
//! the engine has no `resolve()`, and a choice element with `as T` spelled as its JSON key
//! (`valueQuantity`), since the engine's `as`/`ofType` do not recognise complex types of
//! polymorphic elements (`effective as Period` yields nothing) and `as` fails on
//! collections. Everything else (navigation, array flattening, unions, `where`, indexes) is
//! the engine's own evaluation. Nodes are compared as sets of canonical JSON (numbers to 12
//! significant digits: the engine does not keep a decimal's written precision).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use phr_fhir::fhirpath::CompiledPath;
use serde_json::Value;

use crate::program::{Compiled, Start};
use crate::registry::{Extractor, Registry};
use crate::testgen::{Generator, Rng};

fn canonical(v: &Value) -> Value {
    match v {
        // The engine converts decimals through f64 (0.001 comes back as
        // 0.0010000000000000002): compare to 12 significant digits.
        Value::Number(n) => Value::String(format!("{:.11e}", n.as_f64().unwrap_or(f64::NAN))),
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        other => other.clone(),
    }
}

fn node_set<'a>(nodes: impl IntoIterator<Item = &'a Value>) -> BTreeSet<String> {
    nodes
        .into_iter()
        .map(|v| canonical(v).to_string())
        .collect()
}

#[derive(Default)]
struct Diff {
    compared: usize,
    nonempty: usize,
    /// Parameters (`Type.code`) compared at least once with a non-empty result.
    params_reached: BTreeSet<String>,
    mismatches: Vec<String>,
    engine_cache: HashMap<String, CompiledPath>,
}

impl Diff {
    fn engine_eval(&mut self, text: &str, start: &Value) -> Result<Vec<Value>, String> {
        if !self.engine_cache.contains_key(text) {
            let path = CompiledPath::compile(text).map_err(|e| e.to_string())?;
            self.engine_cache.insert(text.to_string(), path);
        }
        self.engine_cache[text]
            .evaluate(start)
            .map_err(|e| e.to_string())
    }

    /// Compares one compiled expression evaluated from `resource` / `context`.
    fn compare(&mut self, label: &str, compiled: &Compiled, resource: &Value, context: &Value) {
        let mut fast = Vec::new();
        compiled.evaluate(resource, context, &mut fast);
        let fast = node_set(fast.iter().map(|(v, _)| *v));
        let mut engine_nodes = Vec::new();
        for (start, from) in [(Start::Resource, resource), (Start::Context, context)] {
            let texts: Vec<&str> = compiled
                .terms
                .iter()
                .filter(|t| t.start() == start)
                .map(|t| t.engine())
                .collect();
            if texts.is_empty() {
                continue;
            }
            let text = texts.join(" | ");
            match self.engine_eval(&text, from) {
                Ok(nodes) => engine_nodes.extend(nodes),
                Err(e) => {
                    self.mismatches
                        .push(format!("{label}: engine error on `{text}`: {e}"));
                    return;
                }
            }
        }
        let engine = node_set(&engine_nodes);
        self.compared += 1;
        if !fast.is_empty() {
            self.nonempty += 1;
            let param = label.split('#').next().unwrap_or(label);
            self.params_reached.insert(param.to_string());
        }
        if fast != engine {
            self.mismatches.push(format!(
                "{label} on {}: fast {fast:?} engine {engine:?}",
                resource["id"]
            ));
        }
    }

    fn resource(&mut self, registry: &Registry, resource: &Value) {
        let Some(rt) = resource["resourceType"].as_str() else {
            return;
        };
        for param in registry.params(rt) {
            let label = format!("{rt}.{}", param.code);
            match &param.extractor {
                Extractor::Fast(compiled) => self.compare(&label, compiled, resource, resource),
                Extractor::Composite(bases) => {
                    for base in bases {
                        self.compare(&label, &base.base, resource, resource);
                        let mut nodes = Vec::new();
                        base.base.evaluate(resource, resource, &mut nodes);
                        for (node, _) in nodes {
                            for (n, (_, component)) in base.components.iter().enumerate() {
                                let label = format!("{label}#{n}");
                                self.compare(&label, component, resource, node);
                            }
                        }
                    }
                }
                // The engine itself: nothing to compare.
                Extractor::Engine(_) | Extractor::EngineComposite { .. } | Extractor::None => {}
            }
        }
    }
}

/// The dispatch plan (one pass over the top-level keys) must give exactly the entries of
/// evaluating every parameter on its own.
fn same_entries_with_and_without_plan(registry: &Registry, resource: &Value) {
    let Ok(planned) = registry.extract(resource) else {
        return;
    };
    let key = |e: &crate::IndexEntry| format!("{}={:?}", e.param, e.value);
    let mut planned: Vec<String> = planned.iter().map(key).collect();
    let mut reference: Vec<String> = registry
        .extract_unplanned(resource)
        .iter()
        .map(key)
        .collect();
    planned.sort();
    reference.sort();
    assert_eq!(planned, reference, "{}", resource["id"]);
}

fn shared(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel)
}

/// Every resource in the Kanta examples (bundle entries too) and the conformance examples.
fn kanta_resources() -> Vec<Value> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(shared("kanta/examples"))
        .expect("the Kanta examples are readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.push(shared("kanta/conformance/example-CarePlan-mandatory.json"));
    files.push(shared("kanta/conformance/example-CarePlan-optional.json"));
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("example readable");
        let v: Value = serde_json::from_str(&text).expect("example is JSON");
        if let Some(entries) = v["entry"].as_array() {
            out.extend(entries.iter().map(|e| e["resource"].clone()));
        }
        out.push(v);
    }
    out
}

#[test]
fn compiled_paths_reach_the_same_nodes_as_the_engine_on_kanta_examples() {
    let registry = Registry::global();
    let mut diff = Diff::default();
    let resources = kanta_resources();
    assert!(resources.len() > 1000, "bundles and examples loaded");
    for r in &resources {
        diff.resource(registry, r);
        same_entries_with_and_without_plan(registry, r);
    }
    eprintln!(
        "kanta: {} resources, {} comparisons ({} non-empty), {} parameters reached",
        resources.len(),
        diff.compared,
        diff.nonempty,
        diff.params_reached.len()
    );
    assert!(
        diff.mismatches.is_empty(),
        "{:#?}",
        &diff.mismatches[..diff.mismatches.len().min(30)]
    );
}

#[test]
fn compiled_paths_reach_the_same_nodes_as_the_engine_on_generated_resources() {
    let registry = Registry::global();
    let generator = Generator::new(&registry.model);
    let mut diff = Diff::default();
    let mut rng = Rng::new(20_261_123);
    let mut count = 0;
    for rt in registry.resource_types() {
        for _ in 0..12 {
            let r = generator.resource(rt, &mut rng);
            diff.resource(registry, &r);
            same_entries_with_and_without_plan(registry, &r);
            count += 1;
        }
    }
    let compiled: Vec<String> = registry
        .resource_types()
        .iter()
        .flat_map(|rt| registry.params(rt))
        .filter(|p| p.is_supported() && !p.uses_engine())
        .map(|p| format!("{}.{}", p.resource_type, p.code))
        .collect();
    let missed: Vec<&String> = compiled
        .iter()
        .filter(|p| !diff.params_reached.contains(*p))
        .collect();
    eprintln!(
        "generated: {count} resources, {} comparisons ({} non-empty), {} of {} compiled parameters reached a value; never reached: {missed:?}",
        diff.compared,
        diff.nonempty,
        compiled.len() - missed.len(),
        compiled.len(),
    );
    assert!(
        diff.mismatches.is_empty(),
        "{} mismatches: {:#?}",
        diff.mismatches.len(),
        &diff.mismatches[..diff.mismatches.len().min(30)]
    );
    assert!(
        missed.len() * 20 < compiled.len(),
        "generated resources reach at least 95% of the compiled parameters"
    );
}

/// The values of a `Registry::stored_union` parameter, as a set of canonical texts.
fn entry_set(entries: &[crate::IndexEntry], params: &[&str]) -> BTreeSet<String> {
    entries
        .iter()
        .filter(|e| params.contains(&e.param.as_str()))
        .map(|e| format!("{:?}", e.value))
        .collect()
}

#[test]
fn stored_unions_hold_for_every_resource() {
    let registry = Registry::global();
    let generator = Generator::new(&registry.model);
    let mut rng = Rng::new(20_261_207);
    let mut resources = kanta_resources();
    resources.extend((0..600).map(|_| generator.resource("Observation", &mut rng)));
    let mut reached: BTreeSet<(String, String)> = BTreeSet::new();
    for resource in &resources {
        let rt = resource["resourceType"].as_str().unwrap_or_default();
        let Ok(entries) = registry.extract(resource) else {
            continue;
        };
        for param in registry.params(rt) {
            let Some(sources) = registry.stored_union(rt, &param.code) else {
                continue;
            };
            for source in sources {
                let source_param = registry.param(rt, source).expect("a source exists");
                assert_eq!(source_param.param_type, param.param_type, "{rt}.{source}");
            }
            let own = entry_set(&entries, &[param.code.as_str()]);
            assert_eq!(
                own,
                entry_set(&entries, sources),
                "{rt}.{} of {}",
                param.code,
                resource["id"]
            );
            if !own.is_empty() {
                reached.insert((rt.to_owned(), param.code.clone()));
            }
        }
    }
    for rt in registry.resource_types() {
        for param in registry.params(rt) {
            if registry.stored_union(rt, &param.code).is_some() {
                assert!(
                    reached.contains(&(rt.clone(), param.code.clone())),
                    "no resource gave {rt}.{} a value",
                    param.code
                );
            }
        }
    }
}
