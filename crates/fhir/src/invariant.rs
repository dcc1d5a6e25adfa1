//! Invariants (`ElementDefinition.constraint`), compiled once per StructureDefinition
//! element into the cheapest form that evaluates them exactly:
//! - `Builtin`: the universal invariants the validator enforces in its own code (ele-1,
//!   ext-1, the dom-* rules about contained resources, ref-1, per-1, txt-1/2);
//! - `Simple`: pure existence logic (`code.empty() or system.exists()`,
//!   `(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or
//!   value.exists())`), evaluated directly on the JSON without copying it;
//! - `Path`: anything else, through the FHIRPath engine.

use serde_json::Value;

use crate::fhirpath::CompiledPath;

/// Invariants the validator enforces natively when they carry their R4 expression.
pub(crate) const BUILTIN_KEYS: &[&str] = &[
    "ele-1", "ext-1", "dom-2", "dom-3", "dom-4", "dom-5", "dom-6", "ref-1", "per-1", "rng-2",
    "txt-1", "txt-2",
];

#[derive(Debug)]
pub(crate) enum Check {
    Builtin,
    /// A native implementation of an invariant with this exact R4 expression; the function
    /// gets the node and the resource.
    Native(NativeCheck),
    Simple(Simple),
    Path(Box<CompiledPath>),
    /// The expression cannot be parsed; reported as a warning, never an error.
    Broken(String),
}

/// One step of a simple path: a property name, which for a choice element matches every
/// `name` + type suffix key; or a `where(field = 'text')` filter on the items so far.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Name { name: String, choice: bool },
    WhereEquals { field: String, text: String },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Simple {
    Exists(Vec<Step>),
    Empty(Vec<Step>),
    HasValue(Vec<Step>),
    Not(Box<Simple>),
    And(Box<Simple>, Box<Simple>),
    Or(Box<Simple>, Box<Simple>),
    Xor(Box<Simple>, Box<Simple>),
    Implies(Box<Simple>, Box<Simple>),
}

/// Invariants whose FHIRPath would dominate validation time, with native implementations of
/// exactly these expressions: two on every Observation, and the Bundle's own. The engine
/// copies the JSON it is given for every step: each Bundle invariant cost about 50 µs per
/// entry, and those that iterate (`all()`, `where()`) copied the whole Bundle for every
/// entry, so a 300-entry Bundle took seconds and a 958-entry one two minutes.
type NativeCheck = fn(&Value, &Value) -> bool;

const NATIVE: &[(&str, &str, NativeCheck)] = &[
    (
        "obs-7",
        "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()",
        obs_7,
    ),
    ("vs-1", "($this as dateTime).toString().length() >= 8", vs_1),
    (
        "bdl-1",
        "total.empty() or (type = 'searchset') or (type = 'history')",
        bdl_1,
    ),
    (
        "bdl-2",
        "entry.search.empty() or (type = 'searchset')",
        bdl_2,
    ),
    (
        "bdl-3",
        "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or %resource.type = 'history'))",
        bdl_3,
    ),
    (
        "bdl-4",
        "entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = 'transaction-response' or %resource.type = 'history'))",
        bdl_4,
    ),
    (
        "bdl-7",
        "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()",
        bdl_7,
    ),
    (
        "bdl-9",
        "type = 'document' implies (identifier.system.exists() and identifier.value.exists())",
        bdl_9,
    ),
    (
        "bdl-8",
        "fullUrl.exists() implies fullUrl.contains('/_history/').not()",
        bdl_8,
    ),
    (
        "bdl-10",
        "type = 'document' implies (timestamp.hasValue())",
        bdl_10,
    ),
    (
        "bdl-11",
        "type = 'document' implies entry.first().resource.is(Composition)",
        bdl_11,
    ),
    (
        "bdl-12",
        "type = 'message' implies entry.first().resource.is(MessageHeader)",
        bdl_12,
    ),
];

fn bundle_type(node: &Value) -> Option<&str> {
    node.get("type").and_then(Value::as_str)
}

/// `type = 'ty' implies then`: true for another type; without a type the comparison is
/// empty, and `{} implies x` is true only when `x` is.
fn for_type(node: &Value, ty: &str, then: impl FnOnce() -> bool) -> bool {
    match bundle_type(node) {
        Some(t) if t != ty => true,
        _ => then(),
    }
}

/// `entry.first().resource.is(resource_type)`.
fn first_entry_is(node: &Value, resource_type: &str) -> bool {
    items(node, "entry").first().is_some_and(|e| {
        e.get("resource")
            .and_then(|r| r.get("resourceType"))
            .and_then(Value::as_str)
            == Some(resource_type)
    })
}

fn present(node: &Value, name: &str) -> bool {
    !items(node, name).is_empty()
}

/// bdl-1: `total` only in search and history Bundles.
fn bdl_1(node: &Value, _resource: &Value) -> bool {
    !present(node, "total") || matches!(bundle_type(node), Some("searchset" | "history"))
}

/// bdl-2: `entry.search` only in search Bundles.
fn bdl_2(node: &Value, _resource: &Value) -> bool {
    bundle_type(node) == Some("searchset")
        || items(node, "entry").iter().all(|e| !present(e, "search"))
}

/// bdl-8 (on each entry): a `fullUrl` is not version-specific.
fn bdl_8(node: &Value, _resource: &Value) -> bool {
    node.get("fullUrl")
        .and_then(Value::as_str)
        .is_none_or(|u| !u.contains("/_history/"))
}

/// bdl-9: a document has an identifier with system and value.
fn bdl_9(node: &Value, _resource: &Value) -> bool {
    for_type(node, "document", || {
        let identifiers = items(node, "identifier");
        identifiers.iter().any(|i| present(i, "system"))
            && identifiers.iter().any(|i| present(i, "value"))
    })
}

/// bdl-10: a document has a timestamp (a value, not only an extension).
fn bdl_10(node: &Value, _resource: &Value) -> bool {
    for_type(node, "document", || present(node, "timestamp"))
}

/// bdl-11: a document starts with a Composition.
fn bdl_11(node: &Value, _resource: &Value) -> bool {
    for_type(node, "document", || first_entry_is(node, "Composition"))
}

/// bdl-12: a message starts with a MessageHeader.
fn bdl_12(node: &Value, _resource: &Value) -> bool {
    for_type(node, "message", || first_entry_is(node, "MessageHeader"))
}

/// The present (non-null) items of `node[name]`: the items of an array, or the one value.
fn items<'v>(node: &'v Value, name: &str) -> Vec<&'v Value> {
    match node.get(name) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().filter(|v| !v.is_null()).collect(),
        Some(v) => vec![v],
    }
}

/// `entry.all(<part>.exists() = (%resource.type in types))`. Without a type the comparison
/// is empty, which `all()` counts as false for any entry.
fn entries_have_part_by_type(node: &Value, resource: &Value, part: &str, types: &[&str]) -> bool {
    let entries = items(node, "entry");
    let Some(ty) = bundle_type(resource) else {
        return entries.is_empty();
    };
    let wanted = types.contains(&ty);
    entries.iter().all(|e| present(e, part) == wanted)
}

/// bdl-3: entry.request exactly in batch, transaction and history Bundles.
fn bdl_3(node: &Value, resource: &Value) -> bool {
    entries_have_part_by_type(
        node,
        resource,
        "request",
        &["batch", "transaction", "history"],
    )
}

/// bdl-4: entry.response exactly in batch-response, transaction-response and history Bundles.
fn bdl_4(node: &Value, resource: &Value) -> bool {
    let types = ["batch-response", "transaction-response", "history"];
    entries_have_part_by_type(node, resource, "response", &types)
}

/// bdl-7: outside history Bundles, no two entries share `fullUrl` and version (`&` reads a
/// missing version as '').
fn bdl_7(node: &Value, _resource: &Value) -> bool {
    if bundle_type(node) == Some("history") {
        return true;
    }
    let mut seen = std::collections::HashSet::new();
    items(node, "entry").into_iter().all(|e| {
        let Some(full_url) = e.get("fullUrl").and_then(Value::as_str) else {
            return true;
        };
        let version = e
            .get("resource")
            .and_then(|r| r.get("meta"))
            .and_then(|m| m.get("versionId"))
            .and_then(Value::as_str)
            .unwrap_or("");
        seen.insert(format!("{full_url}{version}"))
    })
}

/// obs-7: with a value, no component repeats a coding of the observation's code.
fn obs_7(node: &Value, _resource: &Value) -> bool {
    let has_value = node.as_object().is_some_and(|m| {
        m.keys().any(|k| {
            k.strip_prefix("value")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
        })
    });
    if !has_value {
        return true;
    }
    let own: Vec<&Value> = node
        .get("code")
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    node["component"].as_array().into_iter().flatten().all(|c| {
        c.get("code")
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|coding| !own.contains(&coding))
    })
}

/// vs-1: a dateTime is precise at least to the day (a Period passes: `as dateTime` is empty).
fn vs_1(node: &Value, _resource: &Value) -> bool {
    match node {
        Value::String(s) => s.chars().count() >= 8,
        _ => true,
    }
}

/// Compiles an invariant. `is_choice(path)` says, for a path of property names from the
/// context node, whether each step is a choice element (`None` when a name is unknown,
/// which sends the expression to FHIRPath).
pub(crate) fn compile(
    key: &str,
    expression: &str,
    in_base: bool,
    is_choice: &dyn Fn(&[&str]) -> Option<Vec<bool>>,
) -> Check {
    if in_base && BUILTIN_KEYS.contains(&key) {
        return Check::Builtin;
    }
    if let Some((_, _, f)) = NATIVE
        .iter()
        .find(|(k, e, _)| *k == key && *e == expression)
    {
        return Check::Native(*f);
    }
    if let Some(simple) = parse_simple(expression, is_choice) {
        return Check::Simple(simple);
    }
    match CompiledPath::compile(expression) {
        Ok(p) => Check::Path(Box::new(p)),
        Err(e) => {
            // Some published profiles write string literals in double quotes (Kanta's PHR-1
            // on blood glucose codings); read them as the strings their authors meant.
            if expression.contains('"')
                && let Ok(p) = CompiledPath::compile(&double_to_single_quotes(expression))
            {
                return Check::Path(Box::new(p));
            }
            Check::Broken(e.0)
        }
    }
}

/// `where(system="x")` -> `where(system='x')`, leaving single-quoted strings alone.
fn double_to_single_quotes(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut in_single = false;
    let mut in_double = false;
    let mut prev = '\0';
    for c in expr.chars() {
        match c {
            '\'' if !in_double && prev != '\\' => {
                in_single = !in_single;
                out.push(c);
            }
            '\'' if in_double => out.push_str("\\'"),
            '"' if !in_single => {
                in_double = !in_double;
                out.push('\'');
            }
            _ => out.push(c),
        }
        prev = c;
    }
    out
}

impl Simple {
    /// Evaluates at `node` (a JSON object, or anything else which has no children).
    pub(crate) fn eval(&self, node: &Value) -> bool {
        match self {
            Simple::Exists(p) => presence(node, p).0,
            Simple::Empty(p) => !presence(node, p).0,
            Simple::HasValue(p) => presence(node, p).1,
            Simple::Not(a) => !a.eval(node),
            Simple::And(a, b) => a.eval(node) && b.eval(node),
            Simple::Or(a, b) => a.eval(node) || b.eval(node),
            Simple::Xor(a, b) => a.eval(node) != b.eval(node),
            Simple::Implies(a, b) => !a.eval(node) || b.eval(node),
        }
    }
}

/// (something exists at the path, some primitive value exists at the path).
fn presence(node: &Value, steps: &[Step]) -> (bool, bool) {
    // Items reached so far, with whether each came from a `_name` part.
    let mut current: Vec<(bool, &Value)> = vec![(false, node)];
    for step in steps {
        let mut next = Vec::new();
        match step {
            Step::Name { name, choice } => {
                for (_, v) in current {
                    for_each_key(v, name, *choice, |underscore, child| match child {
                        Value::Array(items) => next.extend(
                            items
                                .iter()
                                .filter(|i| !i.is_null())
                                .map(|i| (underscore, i)),
                        ),
                        Value::Null => {}
                        other => next.push((underscore, other)),
                    });
                }
            }
            Step::WhereEquals { field, text } => {
                next = current
                    .into_iter()
                    .filter(|(_, v)| v[field.as_str()].as_str() == Some(text.as_str()))
                    .collect();
            }
        }
        if next.is_empty() {
            return (false, false);
        }
        current = next;
    }
    let has_value = current
        .iter()
        .any(|(underscore, v)| !underscore && !v.is_object());
    (!current.is_empty(), has_value)
}

/// Calls `f(is_underscore_part, value)` for each property of `v` the step names.
fn for_each_key<'a>(v: &'a Value, name: &str, choice: bool, mut f: impl FnMut(bool, &'a Value)) {
    let Value::Object(map) = v else {
        return;
    };
    if choice {
        for (k, child) in map {
            let (underscore, k) = match k.strip_prefix('_') {
                Some(rest) => (true, rest),
                None => (false, k.as_str()),
            };
            if k.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
            {
                f(underscore, child);
            }
        }
    } else {
        if let Some(child) = map.get(name) {
            f(false, child);
        }
        if map.len() > 1 || !map.contains_key(name) {
            let mut key = String::with_capacity(name.len() + 1);
            key.push('_');
            key.push_str(name);
            if let Some(child) = map.get(&key) {
                f(true, child);
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok<'a> {
    Ident(&'a str),
    Dot,
    Open,
    Close,
    Eq,
    Str(String),
}

fn tokenize(s: &str) -> Option<Vec<Tok<'_>>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c0) = b.get(i) {
        match c0 {
            c if c.is_ascii_whitespace() => i += 1,
            b'.' => {
                out.push(Tok::Dot);
                i += 1
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1
            }
            b')' => {
                out.push(Tok::Close);
                i += 1
            }
            b'=' => {
                out.push(Tok::Eq);
                i += 1
            }
            q @ (b'\'' | b'"') => {
                // A plain string literal (no escapes; anything fancier goes to FHIRPath).
                let start = i + 1;
                let end = start + b.get(start..)?.iter().position(|&c| c == q)?;
                let text = s.get(start..end)?;
                if text.contains('\\') {
                    return None;
                }
                out.push(Tok::Str(text.to_string()));
                i = end + 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while b
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    i += 1;
                }
                out.push(Tok::Ident(s.get(start..i)?));
            }
            _ => return None,
        }
    }
    Some(out)
}

struct Parser<'a, 'r> {
    toks: Vec<Tok<'a>>,
    i: usize,
    is_choice: &'r dyn Fn(&[&str]) -> Option<Vec<bool>>,
}

fn parse_simple(expr: &str, is_choice: &dyn Fn(&[&str]) -> Option<Vec<bool>>) -> Option<Simple> {
    let toks = tokenize(expr)?;
    let mut p = Parser {
        toks,
        i: 0,
        is_choice,
    };
    let e = p.implies()?;
    (p.i == p.toks.len()).then_some(e)
}

impl Parser<'_, '_> {
    fn peek_ident(&self, word: &str) -> bool {
        matches!(self.toks.get(self.i), Some(Tok::Ident(w)) if *w == word)
    }

    fn implies(&mut self) -> Option<Simple> {
        let mut left = self.or()?;
        while self.peek_ident("implies") {
            self.i += 1;
            let right = self.or()?;
            left = Simple::Implies(Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn or(&mut self) -> Option<Simple> {
        let mut left = self.and()?;
        loop {
            if self.peek_ident("or") {
                self.i += 1;
                left = Simple::Or(Box::new(left), Box::new(self.and()?));
            } else if self.peek_ident("xor") {
                self.i += 1;
                left = Simple::Xor(Box::new(left), Box::new(self.and()?));
            } else {
                return Some(left);
            }
        }
    }

    fn and(&mut self) -> Option<Simple> {
        let mut left = self.postfix()?;
        while self.peek_ident("and") {
            self.i += 1;
            left = Simple::And(Box::new(left), Box::new(self.postfix()?));
        }
        Some(left)
    }

    /// An atom followed by any number of `.not()`.
    fn postfix(&mut self) -> Option<Simple> {
        let mut e = self.atom()?;
        while self.toks.get(self.i) == Some(&Tok::Dot)
            && self.toks.get(self.i + 1) == Some(&Tok::Ident("not"))
        {
            self.expect_call(self.i + 1)?;
            e = Simple::Not(Box::new(e));
        }
        Some(e)
    }

    /// `tok[at]` is a function name: expects `( )` after it and moves past them.
    fn expect_call(&mut self, at: usize) -> Option<()> {
        if self.toks.get(at + 1) == Some(&Tok::Open) && self.toks.get(at + 2) == Some(&Tok::Close) {
            self.i = at + 3;
            Some(())
        } else {
            None
        }
    }

    fn atom(&mut self) -> Option<Simple> {
        if self.toks.get(self.i) == Some(&Tok::Open) {
            self.i += 1;
            let e = self.implies()?;
            if self.toks.get(self.i) != Some(&Tok::Close) {
                return None;
            }
            self.i += 1;
            return Some(e);
        }
        // path '.' function '(' ')', where a path step may be `where(field = 'text')`.
        let mut names: Vec<&str> = Vec::new();
        let mut wheres: Vec<(usize, String, String)> = Vec::new(); // (position, field, text)
        loop {
            let Some(Tok::Ident(name)) = self.toks.get(self.i).cloned() else {
                return None;
            };
            let is_call = self.toks.get(self.i + 1) == Some(&Tok::Open);
            if is_call && name == "where" {
                let (
                    Some(Tok::Ident(field)),
                    Some(Tok::Eq),
                    Some(Tok::Str(text)),
                    Some(Tok::Close),
                ) = (
                    self.toks.get(self.i + 2).cloned(),
                    self.toks.get(self.i + 3),
                    self.toks.get(self.i + 4).cloned(),
                    self.toks.get(self.i + 5),
                )
                else {
                    return None;
                };
                wheres.push((names.len(), field.to_string(), text));
                self.i += 6;
                if self.toks.get(self.i) != Some(&Tok::Dot) {
                    return None;
                }
                self.i += 1;
                continue;
            }
            if is_call {
                let kind = match name {
                    "exists" => 0,
                    "empty" => 1,
                    "hasValue" => 2,
                    _ => return None,
                };
                self.expect_call(self.i)?;
                let choices = (self.is_choice)(&names)?;
                // A filter's field must be a plain (non-choice) child of the filtered items.
                for (at, field, _) in &wheres {
                    let mut path: Vec<&str> = names.get(..*at)?.to_vec();
                    path.push(field);
                    if *(self.is_choice)(&path)?.last()? {
                        return None;
                    }
                }
                let mut steps = Vec::new();
                for (i, (n, choice)) in names.iter().zip(choices).enumerate() {
                    for (at, field, text) in &wheres {
                        if *at == i {
                            steps.push(Step::WhereEquals {
                                field: field.clone(),
                                text: text.clone(),
                            });
                        }
                    }
                    steps.push(Step::Name {
                        name: n.to_string(),
                        choice,
                    });
                }
                for (at, field, text) in &wheres {
                    if *at == names.len() {
                        steps.push(Step::WhereEquals {
                            field: field.clone(),
                            text: text.clone(),
                        });
                    }
                }
                return Some(match kind {
                    0 => Simple::Exists(steps),
                    1 => Simple::Empty(steps),
                    _ => Simple::HasValue(steps),
                });
            }
            if matches!(
                name,
                "and" | "or" | "xor" | "implies" | "not" | "true" | "false"
            ) {
                return None;
            }
            names.push(name);
            self.i += 1;
            if self.toks.get(self.i) != Some(&Tok::Dot) {
                return None;
            }
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn choices(names: &[&str]) -> Option<Vec<bool>> {
        names
            .iter()
            .map(|n| match *n {
                "value" => Some(true),
                "unknown" => None,
                _ => Some(false),
            })
            .collect()
    }

    fn simple(e: &str) -> Simple {
        parse_simple(e, &choices).unwrap_or_else(|| panic!("{e} should be simple"))
    }

    #[test]
    fn existence_logic_is_simple() {
        let vs2 = simple(
            "(component.empty() and hasMember.empty()) implies (dataAbsentReason.exists() or value.exists())",
        );
        assert!(!vs2.eval(&json!({"status": "final"})));
        assert!(vs2.eval(&json!({"valueQuantity": {"value": 1}})));
        assert!(vs2.eval(&json!({"component": [{}]})));
        let qty3 = simple("code.empty() or system.exists()");
        assert!(!qty3.eval(&json!({"code": "kg"})));
        assert!(qty3.eval(&json!({"code": "kg", "system": "http://unitsofmeasure.org"})));
        let qrs1 = simple("(answer.exists() and item.exists()).not()");
        assert!(!qrs1.eval(&json!({"answer": [{}], "item": [{}]})));
        assert!(qrs1.eval(&json!({"item": [{}]})));
        let nested = simple("period.start.hasValue()");
        assert!(nested.eval(&json!({"period": {"start": "2024"}})));
        assert!(!nested.eval(&json!({"period": {"_start": {"extension": []}}})));
        let xor = simple("a.exists() xor b.exists()");
        assert!(xor.eval(&json!({"a": 1})));
        assert!(!xor.eval(&json!({"a": 1, "b": 2})));
    }

    #[test]
    fn where_filters_on_a_field_are_simple() {
        let phr2 = simple(
            "code.coding.where(code='15074-8').exists() implies code.coding.where(code='14743-9').exists()",
        );
        let coding = |c: &str| json!({"system": "http://loinc.org", "code": c});
        let obs = |codes: &[&str]| json!({"code": {"coding": codes.iter().map(|c| coding(c)).collect::<Vec<_>>()}});
        assert!(!phr2.eval(&obs(&["15074-8"])));
        assert!(phr2.eval(&obs(&["15074-8", "14743-9"])));
        assert!(phr2.eval(&obs(&["14745-4"])));
        let on_coding = simple(
            "(where(code='15074-8').exists()) or (where(code='14743-9').exists()) implies where(system=\"http://loinc.org\").exists()",
        );
        assert!(on_coding.eval(&coding("15074-8")));
        assert!(!on_coding.eval(&json!({"system": "http://snomed.info/sct", "code": "15074-8"})));
        assert!(on_coding.eval(&json!({"system": "http://snomed.info/sct", "code": "1"})));
    }

    #[test]
    fn native_invariants_match_their_fhirpath() {
        let obs7 = "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()";
        let Check::Native(native) = compile("obs-7", obs7, true, &choices) else {
            panic!("obs-7 is native");
        };
        let path = CompiledPath::compile(obs7).unwrap();
        let code = json!({"coding": [{"system": "http://loinc.org", "code": "85354-9"}]});
        for r in [
            json!({"resourceType": "Observation", "code": code, "valueString": "x",
                "component": [{"code": code}]}),
            json!({"resourceType": "Observation", "code": code, "valueString": "x",
                "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}}]}),
            json!({"resourceType": "Observation", "code": code, "component": [{"code": code}]}),
        ] {
            assert_eq!(Some(native(&r, &r)), path.evaluate_bool(&r).unwrap(), "{r}");
        }
        let Check::Native(vs1) = compile(
            "vs-1",
            "($this as dateTime).toString().length() >= 8",
            false,
            &choices,
        ) else {
            panic!("vs-1 is native");
        };
        assert!(vs1(&json!("2024-05-01"), &Value::Null));
        assert!(!vs1(&json!("2024-05"), &Value::Null));
        assert!(vs1(&json!({"start": "2024"}), &Value::Null));
    }

    #[test]
    fn native_bundle_invariants_match_their_fhirpath() {
        let expressions = [
            (
                "bdl-3",
                "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or %resource.type = 'history'))",
            ),
            (
                "bdl-4",
                "entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = 'transaction-response' or %resource.type = 'history'))",
            ),
            (
                "bdl-7",
                "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()",
            ),
            (
                "bdl-1",
                "total.empty() or (type = 'searchset') or (type = 'history')",
            ),
            ("bdl-2", "entry.search.empty() or (type = 'searchset')"),
            (
                "bdl-9",
                "type = 'document' implies (identifier.system.exists() and identifier.value.exists())",
            ),
            ("bdl-10", "type = 'document' implies (timestamp.hasValue())"),
            (
                "bdl-11",
                "type = 'document' implies entry.first().resource.is(Composition)",
            ),
            (
                "bdl-12",
                "type = 'message' implies entry.first().resource.is(MessageHeader)",
            ),
        ];
        let first = |rt: &str| json!({"fullUrl": "urn:uuid:9", "resource": {"resourceType": rt}});
        let request = json!({"method": "POST", "url": "Observation"});
        let response = json!({"status": "201"});
        let versioned = |url: &str, v: &str| json!({"fullUrl": url, "resource": {"resourceType": "Basic", "meta": {"versionId": v}}});
        let mut bundles = Vec::new();
        for ty in [
            None,
            Some("batch"),
            Some("transaction"),
            Some("history"),
            Some("collection"),
            Some("batch-response"),
            Some("transaction-response"),
            Some("searchset"),
            Some("document"),
            Some("message"),
        ] {
            for entries in [
                vec![],
                vec![json!({"request": request})],
                vec![json!({"response": response})],
                vec![
                    json!({"request": request}),
                    json!({"fullUrl": "urn:uuid:1"}),
                ],
                vec![
                    json!({"fullUrl": "urn:uuid:1"}),
                    json!({"fullUrl": "urn:uuid:1"}),
                ],
                vec![
                    json!({"fullUrl": "urn:uuid:1"}),
                    json!({"fullUrl": "urn:uuid:2"}),
                ],
                vec![versioned("urn:uuid:1", "1"), versioned("urn:uuid:1", "2")],
                vec![versioned("urn:uuid:1", "1"), versioned("urn:uuid:1", "1")],
                vec![
                    versioned("urn:uuid:1", "1"),
                    json!({"fullUrl": "urn:uuid:11"}),
                ],
                vec![json!({"search": {"mode": "match"}})],
                vec![first("Composition"), json!({"fullUrl": "urn:uuid:2"})],
                vec![first("MessageHeader")],
                vec![json!({"request": request}), first("Composition")],
            ] {
                let mut b = json!({"resourceType": "Bundle", "entry": entries});
                if let Some(ty) = ty {
                    b["type"] = json!(ty);
                }
                for extra in [
                    json!({}),
                    json!({"total": 3}),
                    json!({"identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:5"}}),
                    json!({"identifier": {"system": "urn:ietf:rfc:3986"}}),
                    json!({"timestamp": "2024-05-01T10:00:00Z"}),
                    json!({"_timestamp": {"extension": [{"url": "x", "valueString": "y"}]}}),
                ] {
                    let mut b = b.clone();
                    if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
                        b.extend(extra.clone());
                    }
                    bundles.push(b);
                }
            }
        }
        for (key, expression) in expressions {
            let Check::Native(native) = compile(key, expression, true, &choices) else {
                panic!("{key} is native");
            };
            let path = CompiledPath::compile(expression).unwrap();
            for b in &bundles {
                let by_path = path.evaluate_bool(b).unwrap().unwrap_or(false);
                assert_eq!(native(b, b), by_path, "{key} on {b}");
            }
        }
        let bdl8 = "fullUrl.exists() implies fullUrl.contains('/_history/').not()";
        let Check::Native(native) = compile("bdl-8", bdl8, true, &choices) else {
            panic!("bdl-8 is native");
        };
        let path = CompiledPath::compile(bdl8).unwrap();
        for entry in [
            json!({}),
            json!({"fullUrl": "urn:uuid:1"}),
            json!({"fullUrl": "https://x.fi/fhir/Observation/1/_history/2"}),
            json!({"fullUrl": "https://x.fi/fhir/Observation/1"}),
        ] {
            let by_path = path.evaluate_bool(&entry).unwrap().unwrap_or(false);
            assert_eq!(native(&entry, &entry), by_path, "bdl-8 on {entry}");
        }
    }

    #[test]
    fn extension_only_primitives_exist_without_value() {
        let e = simple("status.exists()");
        assert!(e.eval(&json!({"_status": {"extension": [{"url": "x", "valueString": "y"}]}})));
        let h = simple("status.hasValue()");
        assert!(!h.eval(&json!({"_status": {"id": "a"}})));
    }

    #[test]
    fn choice_steps_match_typed_names_only() {
        let e = simple("value.exists()");
        assert!(e.eval(&json!({"valueString": "x"})));
        assert!(!e.eval(&json!({"values": "x"})));
        let d = simple("duration.exists()");
        assert!(!d.eval(&json!({"durationMax": 1})));
    }

    #[test]
    fn double_quoted_strings_are_read_as_strings() {
        assert_eq!(
            double_to_single_quotes("where(system=\"http://loinc.org\") and code = 'it''s'"),
            "where(system='http://loinc.org') and code = 'it''s'"
        );
        let check = compile(
            "PHR-1",
            "where(system=\"http://loinc.org\").count() = 1",
            false,
            &choices,
        );
        assert!(matches!(check, Check::Path(_)));
    }

    #[test]
    fn anything_else_goes_to_fhirpath() {
        for e in [
            "code = 'x'",
            "unknown.exists()",
            "a.where(b).exists()",
            "a.where(b = c).exists()",
            "start <= end",
            "value.exists() or",
        ] {
            assert!(parse_simple(e, &choices).is_none(), "{e}");
        }
        assert!(matches!(
            compile(
                "x-7",
                "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()",
                true,
                &choices
            ),
            Check::Path(_)
        ));
        assert!(matches!(
            compile(
                "ele-1",
                "hasValue() or (children().count() > id.count())",
                true,
                &choices
            ),
            Check::Builtin
        ));
        assert!(matches!(
            compile("ele-1", "x.exists()", false, &choices),
            Check::Simple(_)
        ));
    }
}
