//! Search-parameter expressions compiled into small, type-aware path programs over the
//! resource JSON, so extraction does not pay for a general FHIRPath evaluation per parameter.
//!
//! A program is a union of linear terms. Each term starts at the resource (or, in a composite
//! component, at the composite's element) and follows JSON keys; choice elements are
//! expanded at compile time into one term per type (`Observation.effective` becomes
//! `effectiveDateTime`, `effectivePeriod`...), so `as T` / `ofType(T)` just keeps the terms
//! of type `T`. `where(resolve() is T)` becomes a test of the reference's type; rh-fhirpath
//! has no `resolve()`. Every term knows the FHIR type of the nodes it yields, which decides
//! how a node becomes an index value.
//!
//! Expressions outside the subset are not compiled; the caller then uses the general engine
//! (`phr_fhir::fhirpath`). [`Compiled::engine_expression`] gives the FHIRPath text that the
//! general engine must yield the same nodes for: the differential test checks exactly that.

use serde_json::Value;

use crate::elements::{ElementModel, choice_suffix};
use crate::expr::{Condition, Expr};
use crate::json::{field, str_field};

/// The FHIR type of a node, as far as turning it into an index value needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeType {
    Boolean,
    Integer,
    Decimal,
    /// string, markdown, code, id, and the other string-like primitives.
    String,
    Uri,
    Canonical,
    Date,
    DateTime,
    Instant,
    Time,
    Coding,
    CodeableConcept,
    Identifier,
    ContactPoint,
    /// Quantity and its specializations (Age, Count, Distance, Duration, SimpleQuantity).
    Quantity,
    Money,
    Range,
    Period,
    Timing,
    Reference,
    HumanName,
    Address,
    Resource,
    /// Anything else (Annotation, SampledData, Attachment...): never indexed.
    Other,
    /// Produced by the general engine: the kind is guessed from the JSON shape.
    Unknown,
}

impl NodeType {
    pub fn from_code(code: &str) -> NodeType {
        match code {
            "boolean" => NodeType::Boolean,
            "integer" | "unsignedInt" | "positiveInt" | "integer64" => NodeType::Integer,
            "decimal" => NodeType::Decimal,
            "string" | "markdown" | "code" | "id" | "base64Binary" | "xhtml" => NodeType::String,
            "uri" | "url" | "oid" | "uuid" => NodeType::Uri,
            "canonical" => NodeType::Canonical,
            "date" => NodeType::Date,
            "dateTime" => NodeType::DateTime,
            "instant" => NodeType::Instant,
            "time" => NodeType::Time,
            "Coding" => NodeType::Coding,
            "CodeableConcept" => NodeType::CodeableConcept,
            "Identifier" => NodeType::Identifier,
            "ContactPoint" => NodeType::ContactPoint,
            "Quantity" | "Age" | "Count" | "Distance" | "Duration" | "SimpleQuantity"
            | "MoneyQuantity" => NodeType::Quantity,
            "Money" => NodeType::Money,
            "Range" => NodeType::Range,
            "Period" => NodeType::Period,
            "Timing" => NodeType::Timing,
            "Reference" => NodeType::Reference,
            "HumanName" => NodeType::HumanName,
            "Address" => NodeType::Address,
            "Resource" | "DomainResource" => NodeType::Resource,
            _ => NodeType::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// The value (or each array item) under `key`.
    Child(Box<str>),
    /// Keeps nodes whose primitive `key` equals `value`.
    WhereEquals { key: Box<str>, value: Box<str> },
    /// Keeps Reference nodes whose `reference` points at a `target`.
    WhereReferenceTo(Box<str>),
    /// Keeps only the nth node of the whole collection.
    Index(usize),
}

/// Where a term starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The resource itself.
    Resource,
    /// The element a composite's component is evaluated on.
    Context,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    start: Start,
    steps: Vec<Step>,
    node_type: NodeType,
    /// The type name or backbone path the term's nodes have, for compiling further steps.
    context: String,
    /// This term as FHIRPath for the general engine.
    engine: String,
    /// Has a collection-level step (`[n]`), which needs the whole collection at that point.
    has_index: bool,
}

impl Term {
    pub fn node_type(&self) -> NodeType {
        self.node_type
    }
    /// This term as FHIRPath for the general engine.
    #[cfg(test)]
    pub fn engine(&self) -> &str {
        &self.engine
    }
    #[cfg(test)]
    pub fn start(&self) -> Start {
        self.start
    }
    /// The JSON key of the term's first step when extraction can dispatch on it: the term
    /// starts at the resource with a child step and has no collection-level step.
    pub fn dispatch_key(&self) -> Option<&str> {
        if self.start != Start::Resource || self.has_index {
            return None;
        }
        match self.steps.first() {
            Some(Step::Child(key)) => Some(key),
            _ => None,
        }
    }

    /// Continues the term on `value`, the value under its first key (each item of an array).
    pub fn run_after_first<'a>(&self, value: &'a Value, out: &mut Vec<(&'a Value, NodeType)>) {
        let rest = self.steps.get(1..).unwrap_or_default();
        match value {
            Value::Array(items) => {
                for item in items {
                    run(rest, item, self.node_type, out);
                }
            }
            other => run(rest, other, self.node_type, out),
        }
    }

    /// The nodes this term reaches from `resource` or `context` (per its start).
    pub fn evaluate<'a>(
        &self,
        resource: &'a Value,
        context: &'a Value,
        out: &mut Vec<(&'a Value, NodeType)>,
    ) {
        let start = match self.start {
            Start::Resource => resource,
            Start::Context => context,
        };
        if self.has_index {
            run_with_index(&self.steps, start, self.node_type, out);
        } else {
            run(&self.steps, start, self.node_type, out);
        }
    }

    /// The type name or backbone path (`Observation.component`) of the term's nodes.
    pub fn context(&self) -> &str {
        &self.context
    }
}

/// A compiled expression: the union of its terms, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    pub terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot compile `{expression}`: {why}")]
pub struct CompileError {
    pub expression: String,
    pub why: String,
}

impl Compiled {
    /// The FHIRPath text the general engine evaluates to the same nodes: choice elements
    /// spelled as their JSON key (`Observation.valueQuantity`), since rh-fhirpath does not
    /// type polymorphic elements reliably, and `resolve() is T` as a reference pattern.
    #[cfg(test)]
    pub fn engine_expression(&self) -> String {
        if self.terms.is_empty() {
            return "{}".to_string();
        }
        let parts: Vec<&str> = self.terms.iter().map(|t| t.engine.as_str()).collect();
        parts.join(" | ")
    }

    /// The nodes the expression reaches from `resource` (terms starting at the resource) or
    /// `context` (component terms), with each node's type.
    pub fn evaluate<'a>(
        &self,
        resource: &'a Value,
        context: &'a Value,
        out: &mut Vec<(&'a Value, NodeType)>,
    ) {
        for term in &self.terms {
            term.evaluate(resource, context, out);
        }
    }
}

/// Follows per-node steps depth-first, pushing every node reached.
fn run<'a>(steps: &[Step], node: &'a Value, ty: NodeType, out: &mut Vec<(&'a Value, NodeType)>) {
    let Some((step, rest)) = steps.split_first() else {
        if !node.is_null() {
            out.push((node, ty));
        }
        return;
    };
    match step {
        Step::Child(key) => match field(node, key) {
            Some(Value::Array(items)) => {
                for item in items {
                    run(rest, item, ty, out);
                }
            }
            Some(child) => run(rest, child, ty, out),
            None => {}
        },
        Step::WhereEquals { key, value } => {
            if str_field(node, key) == Some(&**value) {
                run(rest, node, ty, out);
            }
        }
        Step::WhereReferenceTo(target) => {
            let reference = str_field(node, "reference");
            if reference.and_then(reference_type) == Some(&**target) {
                run(rest, node, ty, out);
            }
        }
        // Handled by run_with_index.
        Step::Index(_) => {}
    }
}

fn run_with_index<'a>(
    steps: &[Step],
    start: &'a Value,
    ty: NodeType,
    out: &mut Vec<(&'a Value, NodeType)>,
) {
    let mut current: Vec<&'a Value> = vec![start];
    let mut rest = steps;
    while let Some(k) = rest.iter().position(|s| matches!(s, Step::Index(_))) {
        let (before, from_index) = rest.split_at(k);
        let Some((Step::Index(n), after)) = from_index.split_first() else {
            break;
        };
        let mut next = Vec::new();
        for node in &current {
            run(before, node, ty, &mut next);
        }
        current = next.get(*n).map(|(v, _)| vec![*v]).unwrap_or_default();
        rest = after;
    }
    for node in current {
        run(rest, node, ty, out);
    }
}

/// The resource type a literal reference points at: `Patient` for `Patient/1`,
/// `Patient/1/_history/2` and `https://x/fhir/Patient/1`; none for `#contained`, `urn:`
/// references or text that is not a reference.
pub fn reference_type(reference: &str) -> Option<&str> {
    let path = match split_history(reference) {
        Some((path, _)) => path,
        None => reference,
    };
    let mut parts = path.rsplitn(3, '/');
    let id = parts.next()?;
    let ty = parts.next()?;
    let valid_type = ty.len() > 1
        && ty.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
        && ty.bytes().all(|b| b.is_ascii_alphanumeric());
    if id.is_empty() || !valid_type {
        return None;
    }
    Some(ty)
}

/// `Type/id/_history/v` → (`Type/id`, `v`). Most references have no `_`, which is checked
/// first because a substring search costs more than the rest of the parse.
pub fn split_history(reference: &str) -> Option<(&str, &str)> {
    if !reference.as_bytes().contains(&b'_') {
        return None;
    }
    reference.split_once("/_history/")
}

/// A reference pattern for the general engine equal to [`reference_type`] being `target`.
fn engine_reference_test(target: &str) -> String {
    format!("reference.matches('(^|/){target}/[^/]+(/_history/[^/]+)?$')")
}

/// Compiles `expr` for nodes starting at a resource of `resource_type`, or (with
/// `context` set) at a composite's element of that type or backbone path.
pub fn compile(
    model: &ElementModel,
    resource_type: &str,
    expr: &Expr,
    context: Option<&str>,
) -> Result<Compiled, CompileError> {
    let c = Compiler {
        model,
        resource_type,
        context,
    };
    let terms = c.terms(expr).map_err(|why| CompileError {
        expression: expr.to_string(),
        why,
    })?;
    Ok(Compiled { terms })
}

struct Compiler<'a> {
    model: &'a ElementModel,
    resource_type: &'a str,
    context: Option<&'a str>,
}

impl Compiler<'_> {
    fn terms(&self, expr: &Expr) -> Result<Vec<Term>, String> {
        match expr {
            Expr::Union(items) => {
                let mut out = Vec::new();
                for item in items {
                    out.extend(self.terms(item)?);
                }
                Ok(out)
            }
            Expr::Resource => Ok(vec![self.resource_root(Start::Resource, "%resource")]),
            Expr::Name(name) => self.root(name),
            Expr::Member(inner, name) => {
                let mut out = Vec::new();
                for term in self.terms(inner)? {
                    out.extend(self.member(term, name)?);
                }
                Ok(out)
            }
            Expr::OfType(inner, type_name) => {
                let terms = self.terms(inner)?;
                Ok(terms
                    .into_iter()
                    .filter(|t| self.is_type(t, type_name))
                    .collect())
            }
            Expr::Where(inner, condition) => {
                let terms = self.terms(inner)?;
                let mut out = Vec::with_capacity(terms.len());
                for mut term in terms {
                    match condition {
                        Condition::ResolveIs(target) => {
                            if term.node_type != NodeType::Reference {
                                return Err("resolve() on something that is not a Reference".into());
                            }
                            term.steps
                                .push(Step::WhereReferenceTo(target.as_str().into()));
                            term.engine =
                                format!("{}.where({})", term.engine, engine_reference_test(target));
                        }
                        Condition::Equals(field, literal) => {
                            let def = self
                                .model
                                .child(&term.context, field)
                                .ok_or_else(|| format!("no element {}.{field}", term.context))?;
                            if def.choice || def.repeats {
                                return Err(format!("where() on a repeating field {field}"));
                            }
                            term.steps.push(Step::WhereEquals {
                                key: field.as_str().into(),
                                value: literal.as_str().into(),
                            });
                            term.engine = format!("{}.where({field} = '{literal}')", term.engine);
                        }
                    }
                    out.push(term);
                }
                Ok(out)
            }
            Expr::Index(inner, n) => {
                let mut terms = self.terms(inner)?;
                if terms.len() != 1 {
                    return Err("an index on a union or choice".into());
                }
                let mut term = terms.remove(0);
                term.steps.push(Step::Index(*n));
                term.has_index = true;
                term.engine = format!("{}[{n}]", term.engine);
                Ok(vec![term])
            }
            Expr::First(inner) => self.terms(&Expr::Index(inner.clone(), 0)),
        }
    }

    fn resource_root(&self, start: Start, engine: &str) -> Term {
        Term {
            start,
            steps: Vec::new(),
            node_type: NodeType::Resource,
            context: self.resource_type.to_string(),
            engine: engine.to_string(),
            has_index: false,
        }
    }

    fn root(&self, name: &str) -> Result<Vec<Term>, String> {
        if let Some(context) = self.context {
            // Component expressions are relative to the composite's element.
            let base = Term {
                start: Start::Context,
                steps: Vec::new(),
                node_type: NodeType::Other,
                context: context.to_string(),
                engine: String::new(),
                has_index: false,
            };
            return self.member(base, name);
        }
        if name == self.resource_type || name == "Resource" || name == "DomainResource" {
            Ok(vec![
                self.resource_root(Start::Resource, self.resource_type),
            ])
        } else if self.model.is_resource_type(name) {
            // A member of a union written for another resource type.
            Ok(Vec::new())
        } else {
            Err(format!("`{name}` is not a resource type"))
        }
    }

    fn member(&self, term: Term, name: &str) -> Result<Vec<Term>, String> {
        let def = self
            .model
            .child(&term.context, name)
            .ok_or_else(|| format!("no element {}.{name}", term.context))?;
        let prefix = term.engine.clone();
        let join = |key: &str| {
            if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            }
        };
        if def.choice {
            let mut out = Vec::with_capacity(def.types.len());
            for ty in &def.types {
                let key = format!("{name}{}", choice_suffix(ty));
                let mut t = term.clone();
                t.steps.push(Step::Child(key.as_str().into()));
                t.engine = join(&key);
                t.node_type = NodeType::from_code(ty);
                t.context = ty.clone();
                out.push(t);
            }
            return Ok(out);
        }
        let (node_type, context) = match (def.types.as_slice(), &def.children_at) {
            // Backbone elements and content references: children live under a path.
            (types, Some(at)) => (
                types
                    .first()
                    .map_or(NodeType::Other, |t| NodeType::from_code(t)),
                at.clone(),
            ),
            ([ty], None) => (NodeType::from_code(ty), ty.clone()),
            _ => {
                return Err(format!(
                    "element {}.{name} has no single type",
                    term.context
                ));
            }
        };
        let mut t = term;
        t.steps.push(Step::Child(name.into()));
        t.engine = join(name);
        t.node_type = node_type;
        t.context = context;
        Ok(vec![t])
    }

    /// Whether `term`'s nodes are of type `type_name`: exactly, or as a specialization
    /// (Age, Duration... are Quantities; every resource is a Resource).
    fn is_type(&self, term: &Term, type_name: &str) -> bool {
        if term.context == type_name {
            return true;
        }
        match type_name {
            "Quantity" => term.node_type == NodeType::Quantity,
            "Resource" | "DomainResource" => term.node_type == NodeType::Resource,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;
    use serde_json::json;
    use std::sync::OnceLock;

    fn model() -> &'static ElementModel {
        static MODEL: OnceLock<ElementModel> = OnceLock::new();
        MODEL.get_or_init(|| {
            ElementModel::from_definitions(&phr_fhir::defs::structure_definitions())
        })
    }

    fn compile_for(rt: &str, text: &str) -> Compiled {
        compile(model(), rt, &parse(text).unwrap(), None).unwrap()
    }

    fn eval(c: &Compiled, r: &Value) -> Vec<(Value, NodeType)> {
        let mut out = Vec::new();
        c.evaluate(r, r, &mut out);
        out.into_iter().map(|(v, t)| (v.clone(), t)).collect()
    }

    #[test]
    fn choice_with_as_selects_the_typed_key() {
        let c = compile_for("Observation", "(Observation.value as Quantity)");
        assert_eq!(c.engine_expression(), "Observation.valueQuantity");
        let obs = json!({"resourceType": "Observation", "valueQuantity": {"value": 5}});
        assert_eq!(
            eval(&c, &obs),
            vec![(json!({"value": 5}), NodeType::Quantity)]
        );
        let c = compile_for("Condition", "Condition.onset.as(Age)");
        assert_eq!(c.engine_expression(), "Condition.onsetAge");
        assert_eq!(c.terms[0].node_type(), NodeType::Quantity);
    }

    #[test]
    fn choice_without_as_expands_to_every_type() {
        let c = compile_for("Observation", "Observation.effective");
        let types: Vec<_> = c.terms.iter().map(Term::node_type).collect();
        assert_eq!(
            types,
            [
                NodeType::DateTime,
                NodeType::Period,
                NodeType::Timing,
                NodeType::Instant
            ]
        );
        let obs = json!({"resourceType": "Observation", "effectivePeriod": {"start": "2020"}});
        assert_eq!(
            eval(&c, &obs),
            vec![(json!({"start": "2020"}), NodeType::Period)]
        );
    }

    #[test]
    fn union_keeps_only_members_for_this_resource_type() {
        let c = compile_for(
            "Observation",
            "Condition.code | Observation.code | Procedure.code",
        );
        assert_eq!(c.engine_expression(), "Observation.code");
    }

    #[test]
    fn arrays_are_flattened_and_nulls_skipped() {
        let c = compile_for("Observation", "Observation.category.coding.code");
        let obs = json!({"resourceType": "Observation", "category": [
            {"coding": [{"code": "a"}, {"code": "b"}]}, {"coding": [{"code": "c"}]}, null]});
        let codes: Vec<_> = eval(&c, &obs).into_iter().map(|(v, _)| v).collect();
        assert_eq!(codes, [json!("a"), json!("b"), json!("c")]);
    }

    #[test]
    fn resolve_is_becomes_a_reference_type_test() {
        let c = compile_for(
            "Observation",
            "Observation.subject.where(resolve() is Patient)",
        );
        for (reference, hit) in [
            ("Patient/1", true),
            ("Patient/1/_history/3", true),
            ("https://x.fi/fhir/Patient/1", true),
            ("Group/1", false),
            ("#p1", false),
            ("urn:uuid:1234", false),
        ] {
            let obs = json!({"resourceType": "Observation", "subject": {"reference": reference}});
            assert_eq!(eval(&c, &obs).len(), usize::from(hit), "{reference}");
        }
    }

    #[test]
    fn where_equals_filters_on_a_field() {
        let c = compile_for("Patient", "Patient.telecom.where(system='email')");
        let p = json!({"resourceType": "Patient", "telecom": [
            {"system": "phone", "value": "1"}, {"system": "email", "value": "a@b"}]});
        assert_eq!(eval(&c, &p)[0].0["value"], "a@b");
        assert_eq!(eval(&c, &p)[0].1, NodeType::ContactPoint);
    }

    #[test]
    fn index_applies_to_the_whole_collection() {
        let c = compile_for("Bundle", "Bundle.entry[0].resource");
        let b = json!({"resourceType": "Bundle", "entry": [
            {"resource": {"resourceType": "Composition", "id": "c"}},
            {"resource": {"resourceType": "Patient", "id": "p"}}]});
        let out = eval(&c, &b);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0["id"], "c");
        assert_eq!(out[0].1, NodeType::Resource);
    }

    #[test]
    fn common_parameters_compile_for_every_resource_type() {
        let c = compile_for("Observation", "Resource.meta.lastUpdated");
        assert_eq!(c.terms[0].node_type(), NodeType::Instant);
        assert_eq!(c.engine_expression(), "Observation.meta.lastUpdated");
    }

    #[test]
    fn component_expressions_start_at_the_context() {
        let e = parse("value.as(Quantity)").unwrap();
        let c = compile(model(), "Observation", &e, Some("Observation.component")).unwrap();
        assert_eq!(c.engine_expression(), "valueQuantity");
        let comp = json!({"code": {"text": "x"}, "valueQuantity": {"value": 1}});
        let obs = json!({"resourceType": "Observation"});
        let mut out = Vec::new();
        c.evaluate(&obs, &comp, &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn unknown_elements_do_not_compile() {
        let e = parse("Observation.nonsense").unwrap();
        assert!(compile(model(), "Observation", &e, None).is_err());
    }
}
