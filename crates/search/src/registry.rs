//! The search-parameter registry: every R4 SearchParameter (embedded definitions) plus the
//! few Kanta PHR adds, per resource type, with its type, expression, targets, components,
//! the modifiers and prefixes it accepts, and its compiled extractor. Built once from data;
//! nothing here is written per parameter by hand.

use std::collections::HashMap;
use std::sync::OnceLock;

use phr_fhir::fhirpath::CompiledPath;
use serde_json::{Value, json};

use crate::elements::ElementModel;
use crate::expr;
use crate::kanta;
use crate::model::{Modifier, Prefix};
use crate::program::{self, Compiled, NodeType};

/// `SearchParameter.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    Number,
    Date,
    String,
    Token,
    Reference,
    Composite,
    Quantity,
    Uri,
    Special,
}

impl ParamType {
    pub fn from_code(code: &str) -> Option<ParamType> {
        Some(match code {
            "number" => ParamType::Number,
            "date" => ParamType::Date,
            "string" => ParamType::String,
            "token" => ParamType::Token,
            "reference" => ParamType::Reference,
            "composite" => ParamType::Composite,
            "quantity" => ParamType::Quantity,
            "uri" => ParamType::Uri,
            "special" => ParamType::Special,
            _ => return None,
        })
    }

    pub fn code(self) -> &'static str {
        match self {
            ParamType::Number => "number",
            ParamType::Date => "date",
            ParamType::String => "string",
            ParamType::Token => "token",
            ParamType::Reference => "reference",
            ParamType::Composite => "composite",
            ParamType::Quantity => "quantity",
            ParamType::Uri => "uri",
            ParamType::Special => "special",
        }
    }

    /// Whether values take a comparison prefix (`ge2020`).
    pub fn is_ordered(self) -> bool {
        matches!(
            self,
            ParamType::Number | ParamType::Date | ParamType::Quantity
        )
    }
}

/// Where a parameter's definition comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    R4,
    Kanta,
}

/// One component of a composite parameter.
#[derive(Debug, Clone)]
pub struct Component {
    /// The canonical URL of the component's own SearchParameter.
    pub definition: String,
    pub param_type: ParamType,
    /// Relative to the composite's element.
    pub expression: String,
}

/// How a parameter's values are found in a resource.
#[derive(Debug)]
pub(crate) enum Extractor {
    /// No usable expression (`_text`, `_content`, special parameters): not supported.
    None,
    Fast(Compiled),
    /// Outside the compiled subset: the general FHIRPath engine.
    Engine(CompiledPath),
    /// Composite: per base term, its components compiled relative to the base's element.
    Composite(Vec<CompositeBase>),
    /// Composite outside the subset: base and components through the general engine.
    EngineComposite {
        base: CompiledPath,
        components: Vec<(ParamType, CompiledPath)>,
    },
}

#[derive(Debug)]
pub(crate) struct CompositeBase {
    pub base: Compiled,
    pub components: Vec<(ParamType, Compiled)>,
}

/// A search parameter as it applies to one resource type.
#[derive(Debug)]
pub struct SearchParam {
    pub code: String,
    pub url: String,
    pub param_type: ParamType,
    pub resource_type: String,
    /// The FHIRPath expression, reduced to the union members for this resource type.
    pub expression: Option<String>,
    /// Resource types a reference parameter may point at.
    pub targets: Vec<String>,
    pub components: Vec<Component>,
    /// Comparison prefixes accepted (empty for unordered types).
    pub prefixes: Vec<Prefix>,
    pub origin: Origin,
    pub description: Option<String>,
    pub(crate) extractor: Extractor,
}

impl SearchParam {
    /// True when the server can index and search this parameter.
    pub fn is_supported(&self) -> bool {
        !matches!(self.extractor, Extractor::None)
    }

    /// True when extraction uses the general FHIRPath engine rather than a compiled path.
    pub fn uses_engine(&self) -> bool {
        matches!(
            self.extractor,
            Extractor::Engine(_) | Extractor::EngineComposite { .. }
        )
    }

    /// The FHIR types of the nodes the expression reaches (empty when unknown).
    pub(crate) fn node_types(&self) -> Vec<NodeType> {
        match &self.extractor {
            Extractor::Fast(c) => c.terms.iter().map(|t| t.node_type()).collect(),
            _ => Vec::new(),
        }
    }

    /// `:of-type` applies to token parameters over Identifiers.
    pub fn has_identifiers(&self) -> bool {
        self.node_types().contains(&NodeType::Identifier)
    }

    /// Whether `modifier` is allowed on this parameter (R4 search, per parameter type).
    pub fn allows(&self, modifier: &Modifier) -> bool {
        use ParamType as T;
        match modifier {
            Modifier::Missing(_) => self.param_type != T::Special,
            Modifier::Exact | Modifier::Contains => self.param_type == T::String,
            Modifier::Text | Modifier::Not | Modifier::In | Modifier::NotIn => {
                self.param_type == T::Token
            }
            Modifier::OfType => self.param_type == T::Token && self.has_identifiers(),
            Modifier::Above | Modifier::Below => {
                matches!(self.param_type, T::Token | T::Uri | T::Reference)
            }
            Modifier::Identifier | Modifier::Type => self.param_type == T::Reference,
        }
    }

    /// The modifier names this parameter accepts, for the CapabilityStatement.
    pub fn modifier_names(&self) -> Vec<String> {
        let all = [
            (Modifier::Missing(true), "missing"),
            (Modifier::Exact, "exact"),
            (Modifier::Contains, "contains"),
            (Modifier::Text, "text"),
            (Modifier::Not, "not"),
            (Modifier::Above, "above"),
            (Modifier::Below, "below"),
            (Modifier::In, "in"),
            (Modifier::NotIn, "not-in"),
            (Modifier::OfType, "of-type"),
            (Modifier::Identifier, "identifier"),
            (Modifier::Type, "[type]"),
        ];
        all.iter()
            .filter(|(m, _)| self.allows(m))
            .map(|(_, name)| name.to_string())
            .collect()
    }

    /// The `CapabilityStatement.rest.resource.searchParam` entry.
    pub fn capability_entry(&self) -> Value {
        let mut doc = self.description.clone().unwrap_or_default();
        if !doc.is_empty() {
            doc.push(' ');
        }
        doc.push_str(&format!("Modifiers: {}.", self.modifier_names().join(", ")));
        if !self.prefixes.is_empty() {
            let names: Vec<&str> = self.prefixes.iter().map(|p| prefix_code(*p)).collect();
            doc.push_str(&format!(" Prefixes: {}.", names.join(", ")));
        }
        if self.code == "patient" && kanta::patient_required(&self.resource_type) {
            doc.push_str(" Mandatory.");
        }
        if self.code == "code"
            && let Some(system) = kanta::default_code_system(&self.resource_type)
        {
            doc.push_str(&format!(" A code without a system means {system}."));
        }
        json!({
            "name": self.code,
            "definition": self.url,
            "type": self.param_type.code(),
            "documentation": doc,
        })
    }
}

pub fn prefix_code(p: Prefix) -> &'static str {
    match p {
        Prefix::Eq => "eq",
        Prefix::Ne => "ne",
        Prefix::Gt => "gt",
        Prefix::Lt => "lt",
        Prefix::Ge => "ge",
        Prefix::Le => "le",
        Prefix::Sa => "sa",
        Prefix::Eb => "eb",
        Prefix::Ap => "ap",
    }
}

pub fn prefix_from_code(code: &str) -> Option<Prefix> {
    Some(match code {
        "eq" => Prefix::Eq,
        "ne" => Prefix::Ne,
        "gt" => Prefix::Gt,
        "lt" => Prefix::Lt,
        "ge" => Prefix::Ge,
        "le" => Prefix::Le,
        "sa" => Prefix::Sa,
        "eb" => Prefix::Eb,
        "ap" => Prefix::Ap,
        _ => return None,
    })
}

/// See [`Registry::stored_union`]; `stored_unions_hold_for_every_resource` checks each one
/// against extraction.
const STORED_UNIONS: &[(&str, &str, &[&str])] = &[
    ("Observation", "combo-code", &["code", "component-code"]),
    (
        "Observation",
        "combo-code-value-concept",
        &["code-value-concept", "component-code-value-concept"],
    ),
    (
        "Observation",
        "combo-code-value-quantity",
        &["code-value-quantity", "component-code-value-quantity"],
    ),
    (
        "Observation",
        "combo-data-absent-reason",
        &["data-absent-reason", "component-data-absent-reason"],
    ),
    (
        "Observation",
        "combo-value-concept",
        &["value-concept", "component-value-concept"],
    ),
    (
        "Observation",
        "combo-value-quantity",
        &["value-quantity", "component-value-quantity"],
    ),
];

const ALL_PREFIXES: [Prefix; 9] = [
    Prefix::Eq,
    Prefix::Ne,
    Prefix::Gt,
    Prefix::Lt,
    Prefix::Ge,
    Prefix::Le,
    Prefix::Sa,
    Prefix::Eb,
    Prefix::Ap,
];

/// Resource types without narrative (not DomainResources).
const NOT_DOMAIN_RESOURCES: &[&str] = &["Binary", "Bundle", "Parameters"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("search parameter definition {0} is not valid: {1}")]
    BadDefinition(String, String),
}

/// A (parameter index, term index) pair within one resource type.
pub(crate) type TermRef = (u16, u16);

/// How extraction finds the nodes of a resource type's compiled parameters in one pass over
/// the resource's top-level keys, instead of looking every parameter's path up separately.
#[derive(Debug, Default)]
pub(crate) struct DispatchPlan {
    /// First JSON key → the (parameter index, term index) pairs whose path starts with it,
    /// sorted by key.
    pub by_key: Vec<(Box<str>, Vec<TermRef>)>,
}

impl DispatchPlan {
    fn build(params: &[SearchParam]) -> DispatchPlan {
        let mut map: HashMap<&str, Vec<TermRef>> = HashMap::new();
        for (p, param) in params.iter().enumerate() {
            if let Extractor::Fast(compiled) = &param.extractor {
                for (t, term) in compiled.terms.iter().enumerate() {
                    if let Some(key) = term.dispatch_key() {
                        // Indexes fit: at most ~100 parameters and ~20 terms per type.
                        map.entry(key).or_default().push((p as u16, t as u16));
                    }
                }
            }
        }
        let mut by_key: Vec<(Box<str>, Vec<TermRef>)> =
            map.into_iter().map(|(k, v)| (k.into(), v)).collect();
        by_key.sort_by(|a, b| a.0.cmp(&b.0));
        DispatchPlan { by_key }
    }

    pub fn lookup(&self, key: &str) -> Option<&[TermRef]> {
        self.by_key
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .and_then(|i| self.by_key.get(i))
            .map(|(_, refs)| refs.as_slice())
    }
}

/// The parameters of one resource type.
#[derive(Debug)]
struct TypeParams {
    /// Sorted by code.
    params: Vec<SearchParam>,
    plan: DispatchPlan,
}

pub struct Registry {
    pub(crate) model: ElementModel,
    types: HashMap<String, TypeParams>,
    /// Patient compartment: per resource type, the parameters that place it in a patient's
    /// compartment, in CompartmentDefinition order.
    compartment: HashMap<String, Vec<String>>,
    /// Top-level element names per resource type (for `_elements`), sorted.
    element_names: HashMap<String, Vec<String>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("resource_types", &self.types.len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// The registry of the embedded R4 definitions plus Kanta PHR's parameters, built on
    /// first use.
    pub fn global() -> &'static Registry {
        static GLOBAL: OnceLock<Registry> = OnceLock::new();
        // The embedded definitions are part of the binary; the registry's unit tests build
        // them, so a failure here is a build defect, never input.
        #[allow(clippy::expect_used)]
        GLOBAL.get_or_init(|| {
            Registry::r4_with_kanta().expect("the embedded search parameter definitions are valid")
        })
    }

    /// Builds the registry from the embedded R4 definitions and Kanta's additions.
    pub fn r4_with_kanta() -> Result<Registry, RegistryError> {
        let kanta: Vec<Value> = serde_json::from_str(kanta::SEARCH_PARAMETERS_JSON)
            .map_err(|e| RegistryError::BadDefinition("kanta".into(), e.to_string()))?;
        let model = ElementModel::from_definitions(&phr_fhir::defs::structure_definitions());
        let r4 = phr_fhir::defs::search_parameters();
        Registry::build(model, &r4, &kanta, &phr_fhir::defs::compartment_patient())
    }

    fn build(
        model: ElementModel,
        r4: &[Value],
        extra: &[Value],
        compartment_definition: &Value,
    ) -> Result<Registry, RegistryError> {
        let by_url: HashMap<&str, &Value> = r4
            .iter()
            .chain(extra)
            .filter_map(|sp| Some((sp["url"].as_str()?, sp)))
            .collect();
        let mut types: HashMap<String, Vec<SearchParam>> = HashMap::new();
        for (origin, defs) in [(Origin::R4, r4), (Origin::Kanta, extra)] {
            for sp in defs {
                let url = sp["url"].as_str().unwrap_or_default().to_string();
                let bad = |why: &str| RegistryError::BadDefinition(url.clone(), why.to_string());
                let code = sp["code"].as_str().ok_or_else(|| bad("no code"))?;
                let param_type = sp["type"]
                    .as_str()
                    .and_then(ParamType::from_code)
                    .ok_or_else(|| bad("unknown type"))?;
                let bases: Vec<&str> = sp["base"]
                    .as_array()
                    .map(|b| b.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for resource_type in applies_to(&model, &bases) {
                    let list = types.entry(resource_type.clone()).or_default();
                    if list.iter().any(|p| p.code == code) {
                        // Base R4 wins over a later definition of the same code.
                        continue;
                    }
                    let param = SearchParam::from_definition(
                        &model,
                        sp,
                        &by_url,
                        &resource_type,
                        code,
                        param_type,
                        origin,
                    )
                    .map_err(|why| bad(&why))?;
                    list.push(param);
                }
            }
        }
        let types: HashMap<String, TypeParams> = types
            .into_iter()
            .map(|(rt, mut params)| {
                params.sort_by(|a, b| a.code.cmp(&b.code));
                let plan = DispatchPlan::build(&params);
                (rt, TypeParams { params, plan })
            })
            .collect();
        let mut compartment = HashMap::new();
        if let Some(resources) = compartment_definition["resource"].as_array() {
            for r in resources {
                let (Some(code), Some(params)) = (r["code"].as_str(), r["param"].as_array()) else {
                    continue;
                };
                let params: Vec<String> = params
                    .iter()
                    .filter_map(|p| p.as_str().map(str::to_string))
                    .collect();
                compartment.insert(code.to_string(), params);
            }
        }
        let element_names = model.top_level_names();
        Ok(Registry {
            model,
            types,
            compartment,
            element_names,
        })
    }

    /// The parameters of `resource_type` (supported or not), sorted by code.
    pub fn params(&self, resource_type: &str) -> &[SearchParam] {
        self.types
            .get(resource_type)
            .map_or(&[], |t| t.params.as_slice())
    }

    /// The parameters of `resource_type` with their dispatch plan.
    pub(crate) fn params_and_plan(
        &self,
        resource_type: &str,
    ) -> Option<(&[SearchParam], &DispatchPlan)> {
        self.types
            .get(resource_type)
            .map(|t| (t.params.as_slice(), &t.plan))
    }

    /// The parameters the server indexes and searches for `resource_type`.
    pub fn supported_params(&self, resource_type: &str) -> impl Iterator<Item = &SearchParam> {
        self.params(resource_type)
            .iter()
            .filter(|p| p.is_supported())
    }

    pub fn param(&self, resource_type: &str, code: &str) -> Option<&SearchParam> {
        let list = self.params(resource_type);
        list.binary_search_by(|p| p.code.as_str().cmp(code))
            .ok()
            .and_then(|i| list.get(i))
    }

    /// True for a concrete R4 resource type.
    pub fn is_resource_type(&self, name: &str) -> bool {
        self.model
            .concrete_resource_types()
            .binary_search_by(|t| t.as_str().cmp(name))
            .is_ok()
    }

    /// Concrete R4 resource type names, sorted.
    pub fn resource_types(&self) -> &[String] {
        self.model.concrete_resource_types()
    }

    /// The parameters that place a `resource_type` in a patient's compartment
    /// (CompartmentDefinition `patient`), empty when it never is.
    pub fn patient_compartment_params(&self, resource_type: &str) -> &[String] {
        self.compartment
            .get(resource_type)
            .map_or(&[], Vec::as_slice)
    }

    /// The parameters whose values are, for every resource, exactly the values of the
    /// listed parameters of the same type together (R4's `combo-*` parameters of
    /// Observation are `X | component.X`). Storage writes no index rows for these and reads
    /// the listed parameters' rows instead: three fewer rows per Observation.
    pub fn stored_union(&self, resource_type: &str, code: &str) -> Option<&'static [&'static str]> {
        STORED_UNIONS
            .iter()
            .find(|(rt, c, _)| *rt == resource_type && *c == code)
            .map(|(_, _, sources)| *sources)
    }

    /// The top-level element names of `resource_type` (choices as `value[x]`), sorted.
    pub fn element_names(&self, resource_type: &str) -> &[String] {
        self.element_names
            .get(resource_type)
            .map_or(&[], Vec::as_slice)
    }

    /// `CapabilityStatement.rest.resource.searchParam` for `resource_type`: every supported
    /// parameter.
    pub fn capability_search_params(&self, resource_type: &str) -> Vec<Value> {
        self.supported_params(resource_type)
            .map(SearchParam::capability_entry)
            .collect()
    }

    /// `searchInclude` values for `resource_type`: `Type:param` for each reference parameter.
    pub fn search_includes(&self, resource_type: &str) -> Vec<String> {
        self.supported_params(resource_type)
            .filter(|p| p.param_type == ParamType::Reference)
            .map(|p| format!("{resource_type}:{}", p.code))
            .collect()
    }

    /// `searchRevInclude` values for `resource_type`: every `Source:param` whose reference
    /// parameter may point at `resource_type`.
    pub fn search_rev_includes(&self, resource_type: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .types
            .iter()
            .flat_map(|(source, type_params)| {
                type_params
                    .params
                    .iter()
                    .filter(|p| {
                        p.is_supported()
                            && p.param_type == ParamType::Reference
                            && p.targets.iter().any(|t| t == resource_type)
                    })
                    .map(move |p| format!("{source}:{}", p.code))
            })
            .collect();
        out.sort();
        out
    }
}

/// The concrete resource types a SearchParameter with these bases applies to.
fn applies_to(model: &ElementModel, bases: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for base in bases {
        match *base {
            "Resource" => out.extend(model.concrete_resource_types().iter().cloned()),
            "DomainResource" => out.extend(
                model
                    .concrete_resource_types()
                    .iter()
                    .filter(|t| !NOT_DOMAIN_RESOURCES.contains(&t.as_str()))
                    .cloned(),
            ),
            other => out.push(other.to_string()),
        }
    }
    out
}

/// Splits an expression at top-level `|` (outside parentheses and string literals).
pub(crate) fn split_union(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut in_string, mut start) = (0i32, false, 0);
    for (i, c) in text.char_indices() {
        match c {
            '\'' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => depth -= 1,
            '|' if !in_string && depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts
}

/// The name a union member starts with (`Observation` in `(Observation.value as X)`).
fn leading_name(member: &str) -> &str {
    let s = member.trim_start_matches(|c: char| c == '(' || c.is_whitespace());
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '%'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Keeps the union members of `expression` that apply to `resource_type`. A member that does
/// not start with a type name is relative to the resource (R4's `InsurancePlan-name` is
/// written `name | alias`).
fn expression_for(model: &ElementModel, expression: &str, resource_type: &str) -> Option<String> {
    let kept: Vec<String> = split_union(expression)
        .into_iter()
        .filter_map(|m| {
            let root = leading_name(m);
            if root == resource_type || root == "Resource" || root == "DomainResource" {
                Some(m.to_string())
            } else if model.is_resource_type(root) || root.starts_with('%') || m.starts_with('(') {
                None
            } else {
                Some(format!("{resource_type}.{m}"))
            }
        })
        .collect();
    if kept.is_empty() {
        None
    } else {
        Some(kept.join(" | "))
    }
}

/// `X.where(resolve() is T)` as the general engine can evaluate it (it has no resolve()):
/// a test that the reference points at a `T`.
pub(crate) fn engine_text(expression: &str) -> String {
    let mut out = String::with_capacity(expression.len());
    let mut rest = expression;
    while let Some(at) = rest.find("where(resolve() is ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "where(resolve() is ".len()..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].trim();
        out.push_str(&format!(
            "where(reference.matches('(^|/){target}/[^/]+(/_history/[^/]+)?$'))"
        ));
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

impl SearchParam {
    fn from_definition(
        model: &ElementModel,
        sp: &Value,
        by_url: &HashMap<&str, &Value>,
        resource_type: &str,
        code: &str,
        param_type: ParamType,
        origin: Origin,
    ) -> Result<SearchParam, String> {
        let expression = sp["expression"]
            .as_str()
            .and_then(|e| expression_for(model, e, resource_type));
        let mut components = Vec::new();
        if let Some(list) = sp["component"].as_array() {
            for c in list {
                let definition = c["definition"]
                    .as_str()
                    .ok_or("component without definition")?;
                let component_type = by_url
                    .get(definition)
                    .and_then(|d| d["type"].as_str())
                    .and_then(ParamType::from_code)
                    .ok_or_else(|| format!("component {definition} is not defined"))?;
                components.push(Component {
                    definition: definition.to_string(),
                    param_type: component_type,
                    expression: c["expression"]
                        .as_str()
                        .ok_or("component without expression")?
                        .to_string(),
                });
            }
        }
        let prefixes = if param_type.is_ordered() {
            match sp["comparator"].as_array() {
                Some(list) => list
                    .iter()
                    .filter_map(|c| c.as_str().and_then(prefix_from_code))
                    .collect(),
                None => ALL_PREFIXES.to_vec(),
            }
        } else {
            Vec::new()
        };
        let targets = sp["target"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let extractor = match (&expression, param_type) {
            (None, _) | (_, ParamType::Special) => Extractor::None,
            (Some(e), ParamType::Composite) => {
                composite_extractor(model, resource_type, e, &components)
            }
            (Some(e), _) => simple_extractor(model, resource_type, e),
        };
        Ok(SearchParam {
            code: code.to_string(),
            url: sp["url"].as_str().unwrap_or_default().to_string(),
            param_type,
            resource_type: resource_type.to_string(),
            expression,
            targets,
            components,
            prefixes,
            origin,
            description: sp["description"].as_str().map(str::to_string),
            extractor,
        })
    }
}

fn simple_extractor(model: &ElementModel, resource_type: &str, expression: &str) -> Extractor {
    let compiled = expr::parse(expression)
        .ok()
        .and_then(|e| program::compile(model, resource_type, &e, None).ok());
    match compiled {
        Some(c) => Extractor::Fast(c),
        None => match CompiledPath::compile(&engine_text(expression)) {
            Ok(path) => Extractor::Engine(path),
            Err(_) => Extractor::None,
        },
    }
}

fn composite_extractor(
    model: &ElementModel,
    resource_type: &str,
    expression: &str,
    components: &[Component],
) -> Extractor {
    let fast = || -> Option<Vec<CompositeBase>> {
        let base =
            program::compile(model, resource_type, &expr::parse(expression).ok()?, None).ok()?;
        let mut out = Vec::new();
        for term in base.terms {
            let mut compiled = Vec::new();
            for c in components {
                let e = expr::parse(&c.expression).ok()?;
                let p = program::compile(model, resource_type, &e, Some(term.context())).ok()?;
                compiled.push((c.param_type, p));
            }
            out.push(CompositeBase {
                base: Compiled { terms: vec![term] },
                components: compiled,
            });
        }
        Some(out)
    };
    if let Some(bases) = fast() {
        return Extractor::Composite(bases);
    }
    let engine = || -> Option<Extractor> {
        let base = CompiledPath::compile(&engine_text(expression)).ok()?;
        let mut list = Vec::new();
        for c in components {
            let path = CompiledPath::compile(&engine_text(&c.expression)).ok()?;
            list.push((c.param_type, path));
        }
        Some(Extractor::EngineComposite {
            base,
            components: list,
        })
    };
    engine().unwrap_or(Extractor::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg() -> &'static Registry {
        Registry::global()
    }

    #[test]
    fn observation_has_the_kanta_parameters_with_their_types() {
        let r = reg();
        for (code, ty) in [
            ("_id", ParamType::Token),
            ("_lastUpdated", ParamType::Date),
            ("date", ParamType::Date),
            ("patient", ParamType::Reference),
            ("code", ParamType::Token),
            ("identifier", ParamType::Token),
            ("category", ParamType::Token),
            ("value-quantity", ParamType::Quantity),
            ("code-value-quantity", ParamType::Composite),
            ("component-code-value-quantity", ParamType::Composite),
        ] {
            let p = r
                .param("Observation", code)
                .unwrap_or_else(|| panic!("{code}"));
            assert_eq!(p.param_type, ty, "{code}");
            assert!(p.is_supported(), "{code}");
        }
        let patient = r.param("Observation", "patient").unwrap();
        assert_eq!(
            patient.expression.as_deref(),
            Some("Observation.subject.where(resolve() is Patient)")
        );
        assert_eq!(patient.targets, ["Patient"]);
        assert_eq!(
            r.param("Observation", "date")
                .unwrap()
                .expression
                .as_deref(),
            Some("Observation.effective")
        );
    }

    #[test]
    fn careplan_supporting_info_comes_from_kanta() {
        let p = reg().param("CarePlan", "supporting-info").unwrap();
        assert_eq!(p.origin, Origin::Kanta);
        assert_eq!(
            p.url,
            "http://phr.kanta.fi/SearchParameter/CarePlan-supporting-info"
        );
        assert_eq!(p.param_type, ParamType::Reference);
        assert!(p.is_supported());
    }

    #[test]
    fn every_kanta_capability_parameter_is_supported() {
        let cs: Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/kanta/conformance/capabilitystatementR4.json"
            ))
            .expect("the Kanta CapabilityStatement is readable"),
        )
        .unwrap();
        let mut checked = 0;
        for resource in cs["rest"][0]["resource"].as_array().unwrap() {
            let rt = resource["type"].as_str().unwrap();
            for sp in resource["searchParam"].as_array().into_iter().flatten() {
                let name = sp["name"].as_str().unwrap();
                if name == "_total" {
                    continue; // a result parameter, handled by the parser
                }
                let p = reg()
                    .param(rt, name)
                    .unwrap_or_else(|| panic!("{rt}?{name}"));
                assert!(p.is_supported(), "{rt}?{name}");
                assert_eq!(
                    p.param_type.code(),
                    sp["type"].as_str().unwrap(),
                    "{rt}?{name}"
                );
                checked += 1;
            }
        }
        assert!(checked >= 30, "checked {checked}");
    }

    #[test]
    fn modifiers_follow_the_parameter_type() {
        let r = reg();
        let code = r.param("Observation", "code").unwrap();
        assert!(code.allows(&Modifier::Text) && code.allows(&Modifier::Not));
        assert!(!code.allows(&Modifier::Exact) && !code.allows(&Modifier::OfType));
        let identifier = r.param("Observation", "identifier").unwrap();
        assert!(identifier.allows(&Modifier::OfType));
        let subject = r.param("Observation", "subject").unwrap();
        assert!(subject.allows(&Modifier::Type) && subject.allows(&Modifier::Identifier));
        let date = r.param("Observation", "date").unwrap();
        assert_eq!(date.modifier_names(), ["missing"]);
        assert_eq!(date.prefixes.len(), 9);
        let name = r.param("Patient", "name").unwrap();
        assert!(name.allows(&Modifier::Exact) && name.allows(&Modifier::Contains));
    }

    #[test]
    fn common_parameters_apply_to_every_type() {
        let r = reg();
        for rt in r.resource_types() {
            for code in ["_id", "_lastUpdated", "_profile", "_tag", "_security"] {
                let p = r.param(rt, code).unwrap_or_else(|| panic!("{rt}.{code}"));
                assert!(p.is_supported(), "{rt}.{code}");
            }
        }
        assert!(
            r.param("Bundle", "_text").is_none(),
            "Bundle is not a DomainResource"
        );
    }

    #[test]
    fn almost_everything_compiles_to_the_fast_path() {
        let r = reg();
        let mut engine = Vec::new();
        let mut unsupported = Vec::new();
        for rt in r.resource_types() {
            for p in r.params(rt) {
                if p.uses_engine() {
                    engine.push(format!("{rt}.{}", p.code));
                } else if !p.is_supported() {
                    unsupported.push(format!("{rt}.{}", p.code));
                }
            }
        }
        // The one R4 expression with logic: Patient.deceased.exists() and ... != false.
        assert_eq!(engine, ["Patient.deceased"]);
        // Parameters without an expression (_text, _content, _query) and the special `near`.
        unsupported.retain(|u| {
            let code = u.split_once('.').map_or("", |(_, c)| c);
            !["_text", "_content", "_query"].contains(&code)
        });
        assert_eq!(unsupported, ["Location.near"]);
    }

    #[test]
    fn capability_entries_document_modifiers_and_kanta_rules() {
        let r = reg();
        let entries = r.capability_search_params("Observation");
        let patient = entries.iter().find(|e| e["name"] == "patient").unwrap();
        assert_eq!(patient["type"], "reference");
        assert!(
            patient["documentation"]
                .as_str()
                .unwrap()
                .contains("Mandatory")
        );
        let code = entries.iter().find(|e| e["name"] == "code").unwrap();
        assert!(
            code["documentation"]
                .as_str()
                .unwrap()
                .contains("http://loinc.org")
        );
        assert!(
            r.search_includes("Observation")
                .contains(&"Observation:subject".to_string())
        );
        assert!(
            r.search_rev_includes("Patient")
                .contains(&"Observation:subject".to_string())
        );
    }

    #[test]
    fn compartment_params_come_from_the_compartment_definition() {
        let r = reg();
        assert_eq!(
            r.patient_compartment_params("Observation"),
            ["subject", "performer"]
        );
        assert_eq!(
            r.patient_compartment_params("MedicationAdministration"),
            ["patient", "performer", "subject"]
        );
        assert!(r.patient_compartment_params("Questionnaire").is_empty());
    }

    #[test]
    fn union_split_respects_parentheses_and_literals() {
        assert_eq!(
            split_union("(A.b as T) | A.c.where(x='a|b') | (B | C).d"),
            ["(A.b as T)", "A.c.where(x='a|b')", "(B | C).d"]
        );
        let model = &reg().model;
        assert_eq!(
            expression_for(
                model,
                "Condition.code | Observation.code | Resource.id",
                "Observation"
            )
            .as_deref(),
            Some("Observation.code | Resource.id")
        );
        assert_eq!(
            expression_for(model, "name | alias", "InsurancePlan").as_deref(),
            Some("InsurancePlan.name | InsurancePlan.alias")
        );
    }

    #[test]
    fn engine_text_rewrites_resolve() {
        assert_eq!(
            engine_text("Observation.subject.where(resolve() is Patient)"),
            "Observation.subject.where(reference.matches('(^|/)Patient/[^/]+(/_history/[^/]+)?$'))"
        );
    }
}
