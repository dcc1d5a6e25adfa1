//! FHIRPath behind our own interface, so the engine can be swapped without touching callers.
//! Today the engine is `rh-fhirpath` (see STACK.md §3).
//!
//! Expressions come from definitions a package may bring, so the engine sees text nobody
//! checked: a panic inside it (an arithmetic overflow on `'' ~ 2`, found by fuzzing) is
//! caught here and becomes a `PathError`, never a failed request.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("FHIRPath: {0}")]
pub struct PathError(pub String);

/// A parsed FHIRPath expression, ready to evaluate many times.
#[derive(Debug, Clone)]
pub struct CompiledPath {
    source: String,
    expr: rh_fhirpath::FhirPathExpression,
}

thread_local! {
    // The evaluator holds only its function table; one per thread avoids locking.
    static EVALUATOR: rh_fhirpath::FhirPathEvaluator = rh_fhirpath::FhirPathEvaluator::new();
}

impl CompiledPath {
    pub fn compile(source: &str) -> Result<Self, PathError> {
        let expr = guarded(source, || rh_fhirpath::FhirPathParser::new().parse(source))?
            .map_err(|e| PathError(format!("cannot parse `{source}`: {e}")))?;
        Ok(CompiledPath {
            source: source.to_string(),
            expr,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates against `resource` (also `%resource` and `%context`) and returns the output
    /// collection as JSON values.
    pub fn evaluate(&self, resource: &Value) -> Result<Vec<Value>, PathError> {
        let context = rh_fhirpath::EvaluationContext::new(resource.clone());
        self.run(&context)
    }

    /// Evaluates a boolean expression such as an invariant: `None` when the result is empty.
    pub fn evaluate_bool(&self, resource: &Value) -> Result<Option<bool>, PathError> {
        single_bool(&self.source, self.evaluate(resource)?)
    }

    /// Evaluates against a prepared input (see `PathInput`): the way to evaluate many
    /// expressions at one node without copying the JSON for each.
    pub fn evaluate_input(&self, input: &PathInput) -> Result<Vec<Value>, PathError> {
        self.run(&input.context)
    }

    fn run(&self, context: &rh_fhirpath::EvaluationContext) -> Result<Vec<Value>, PathError> {
        let out = guarded(&self.source, || {
            EVALUATOR.with(|ev| ev.evaluate(&self.expr, context))
        })?
        .map_err(|e| PathError(format!("cannot evaluate `{}`: {e}", self.source)))?;
        Ok(flatten(out))
    }

    /// `evaluate_bool` on a prepared input.
    pub fn evaluate_bool_input(&self, input: &PathInput) -> Result<Option<bool>, PathError> {
        single_bool(&self.source, self.evaluate_input(input)?)
    }

    /// True when the expression refers to the resource around its context (`%resource`,
    /// `%rootResource`); others can be evaluated with only the context node as input.
    pub fn uses_resource(&self) -> bool {
        self.source.contains("%resource") || self.source.contains("%rootResource")
    }
}

/// The input of an evaluation: the context node (`$this`, `%context`), the resource
/// (`%resource`) and the root resource (`%rootResource`, the container of a contained
/// resource). Building one copies the JSON once; evaluate many expressions against it.
pub struct PathInput {
    context: rh_fhirpath::EvaluationContext,
}

impl PathInput {
    /// Input for expressions on the resource itself.
    pub fn resource(resource: &Value) -> Self {
        Self::at(resource, resource, resource)
    }

    /// Input for expressions on `node` inside `resource` (within `root_resource`).
    pub fn at(node: &Value, resource: &Value, root_resource: &Value) -> Self {
        let mut context = rh_fhirpath::EvaluationContext::new(resource.clone());
        context.current = node.clone();
        context.add_constant(
            "rootResource".to_string(),
            rh_fhirpath::FhirPathValue::from_json(root_resource),
        );
        PathInput { context }
    }

    /// Input for expressions on `node` that do not refer to a resource: only `node` is copied.
    pub fn node(node: &Value) -> Self {
        PathInput {
            context: rh_fhirpath::EvaluationContext::new(node.clone()),
        }
    }
}

thread_local! {
    static IN_ENGINE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True while this thread runs the engine under `guarded`: a panic hook can tell a panic
/// that is about to become a `PathError` (inside the engine or a crate it calls, such as
/// `rust_decimal` overflowing) from one that is a real fault.
pub fn engine_running() -> bool {
    IN_ENGINE.with(|flag| flag.get())
}

/// Runs the engine, turning a panic inside it into an error naming the expression.
fn guarded<T>(source: &str, work: impl FnOnce() -> T) -> Result<T, PathError> {
    // The engine's state is a function table (per thread) and the values it was handed; an
    // unwound call leaves nothing half-changed that a later call would see.
    let outer = IN_ENGINE.with(|flag| flag.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    IN_ENGINE.with(|flag| flag.set(outer));
    result.map_err(|_| PathError(format!("the FHIRPath engine failed on `{source}`")))
}

fn single_bool(source: &str, out: Vec<Value>) -> Result<Option<bool>, PathError> {
    match out.as_slice() {
        [] => Ok(None),
        [Value::Bool(b)] => Ok(Some(*b)),
        _ => Err(PathError(format!(
            "`{source}` did not give a single boolean"
        ))),
    }
}

fn flatten(value: rh_fhirpath::FhirPathValue) -> Vec<Value> {
    use rh_fhirpath::FhirPathValue as V;
    match value {
        V::Empty => Vec::new(),
        V::Collection(items) | V::UnorderedCollection(items) => {
            items.into_iter().flat_map(flatten).collect()
        }
        // The engine's JSON form of a Quantity is its bare number; keep the unit, in the
        // shape of a FHIR Quantity.
        V::Quantity { value, unit } => {
            let mut quantity = serde_json::Map::new();
            quantity.insert("value".to_string(), V::Number(value).to_json());
            if let Some(unit) = unit {
                quantity.insert("unit".to_string(), Value::String(unit));
            }
            vec![Value::Object(quantity)]
        }
        other => vec![other.to_json()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Found by the fhirpath fuzz target: the engine's quantity equivalence overflows an
    // i32 on zero (`'' ~ 2`), a panic in builds with overflow checks.
    #[test]
    fn a_panic_inside_the_engine_is_an_error() {
        let obs = json!({"resourceType": "Observation", "status": "final"});
        for source in ["'' ~ 2", "0 ~ 2", "2 ~ 0"] {
            let path = CompiledPath::compile(source).unwrap();
            // Either an answer or an error; never a panic out of the adapter.
            let _ = path.evaluate(&obs);
            let _ = path.evaluate_bool_input(&PathInput::resource(&obs));
        }
        let caught = guarded("x", || -> u8 { panic!("engine bug") });
        assert_eq!(
            caught.unwrap_err().to_string(),
            "FHIRPath: the FHIRPath engine failed on `x`"
        );
    }

    // Found by the long fuzz run: rounding a decimal difference multiplies past
    // rust_decimal's range and panics there, outside the engine's own files.
    #[test]
    fn a_panic_in_a_crate_the_engine_calls_is_an_error_and_flagged() {
        let obs = json!({"resourceType": "Observation", "status": "final"});
        let path = CompiledPath::compile("-61/7.7+2-60/7-75-61/7.7+15/7.7+2-61/7.1/7.7").unwrap();
        let _ = path.evaluate(&obs);
        assert!(!engine_running());
        let seen = guarded("x", engine_running).unwrap();
        assert!(seen);
        assert!(!engine_running());
    }

    #[test]
    fn a_quantity_keeps_its_unit() {
        let obs = json!({"resourceType": "Observation"});
        let path = CompiledPath::compile("2 'kg' + 500 'g'").unwrap();
        let out = path.evaluate(&obs).unwrap();
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0]["unit"].is_string(), "{out:?}");
        assert!(out[0]["value"].is_number(), "{out:?}");
    }

    #[test]
    fn evaluates_paths_and_invariants() {
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}});
        let codes = CompiledPath::compile("Observation.code.coding.code").unwrap();
        assert_eq!(codes.evaluate(&obs).unwrap(), vec![json!("29463-7")]);
        let inv = CompiledPath::compile("status = 'final'").unwrap();
        assert_eq!(inv.evaluate_bool(&obs).unwrap(), Some(true));
    }

    #[test]
    fn evaluates_at_a_node_with_the_resource_around_it() {
        let obs = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]}}]});
        let component = &obs["component"][0];
        let input = PathInput::at(component, &obs, &obs);
        let same =
            CompiledPath::compile("code.coding.intersect(%resource.code.coding).exists()").unwrap();
        assert!(same.uses_resource());
        assert_eq!(same.evaluate_bool_input(&input).unwrap(), Some(true));
        let local = CompiledPath::compile("code.coding.exists()").unwrap();
        assert!(!local.uses_resource());
        assert_eq!(
            local
                .evaluate_bool_input(&PathInput::node(component))
                .unwrap(),
            Some(true)
        );
        let root = CompiledPath::compile("%rootResource.status = 'final'").unwrap();
        assert_eq!(root.evaluate_bool_input(&input).unwrap(), Some(true));
    }
}
