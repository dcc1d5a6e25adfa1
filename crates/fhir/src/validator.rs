//! The StructureDefinition-snapshot validator.
//!
//! A resource is walked once against the base definition of its type (the *full* walk: FHIR
//! JSON rules, unknown elements, primitive formats, cardinality, choice types, nested types,
//! contained and Bundle resources, extensions, references, required/extensible bindings,
//! fixed/pattern values, slicing, invariants) and once per profile (the *profile* walk: only
//! what a profile can add: cardinality, fixed/pattern, bindings, slicing, type profiles and
//! invariants the base does not already carry). A profile walk descends only where the
//! profile's snapshot says something, so it costs little more than the profile's
//! constraints.
//!
//! ```
//! use phr_fhir::validator::Validator;
//! use serde_json::json;
//! let v = Validator::r4();
//! let issues = v.validate(&json!({"resourceType": "Observation", "status": "done",
//!     "code": {"text": "weight"}}), &[]);
//! assert_eq!(issues[0].expression.as_deref(), Some("Observation.status"));
//! ```

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::fhirpath::PathInput;
use crate::invariant::{self, Check};
use crate::outcome::{Issue, IssueType, Severity};
use crate::primitives::{self, describe_json};
use crate::registry::Definitions;
use crate::sd::{
    DiscriminatorKind, Element, SdKind, SlicingRules, Strength, StructureDef, TypeRef,
};
use crate::terminology::Membership;

/// Validates resources against base R4 and profiles. Cheap to clone and to share between
/// threads (`Arc` inside); each `validate` call is independent.
#[derive(Debug, Clone)]
pub struct Validator {
    defs: Arc<Definitions>,
    options: Options,
}

/// How strictly a `Validator` judges what it cannot check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// An extension whose definition is not known is an error, not a warning. Without this,
    /// it is still an error inside a resource validated against a profile the registry
    /// marks strict (`Definitions::set_strict_extensions`).
    pub strict_extensions: bool,
}

/// Validates against the embedded R4 definitions only (see `Validator` for profiles from
/// other packages).
pub fn validate(resource: &Value, profiles: &[&str]) -> Vec<Issue> {
    static V: std::sync::OnceLock<Validator> = std::sync::OnceLock::new();
    V.get_or_init(Validator::r4).validate(resource, profiles)
}

/// The profiles a resource declares in `meta.profile`.
pub fn declared_profiles(resource: &Value) -> Vec<&str> {
    resource
        .get("meta")
        .and_then(|m| m.get("profile"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

impl Validator {
    pub fn new(defs: Arc<Definitions>) -> Self {
        Validator {
            defs,
            options: Options::default(),
        }
    }

    /// The same validator with other options.
    pub fn with_options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// A validator over the embedded R4 definitions.
    pub fn r4() -> Self {
        Validator::new(Definitions::r4())
    }

    pub fn definitions(&self) -> &Arc<Definitions> {
        &self.defs
    }

    /// Validates `resource` against its type's base definition and each profile in
    /// `profiles` (canonical URLs, optionally `|version`). An unknown profile gives a
    /// warning. Issues come in document order, duplicates removed.
    ///
    /// A Bundle is validated as a resource of its own (the Bundle rules, and `profiles`
    /// apply to the Bundle), and each entry's resource against its type and the profiles it
    /// declares in `meta.profile`; the same holds for contained resources.
    pub fn validate(&self, resource: &Value, profiles: &[&str]) -> Vec<Issue> {
        let mut run = Run::new(&self.defs);
        run.strict = self.options.strict_extensions;
        run.top(resource, profiles);
        run.finish()
    }

    /// True when `resource` conforms to the profile (no error-level issues).
    pub fn conforms(&self, resource: &Value, profile: &str) -> bool {
        !self
            .validate(resource, &[profile])
            .iter()
            .any(Issue::is_error)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Everything, against a base definition (or an extension definition standing in for
    /// the base Extension type).
    Full,
    /// What a profile adds on top of the full walk.
    Profile,
}

/// A resource being walked: its JSON and whether it is contained in another.
#[derive(Clone, Copy)]
struct Frame<'a> {
    resource: &'a Value,
    contained: bool,
    /// Where the resource starts in the instance path (`Bundle.entry[0].resource` has
    /// length 24).
    path_start: usize,
}

struct Run<'d, 'a> {
    defs: &'d Definitions,
    issues: Vec<Issue>,
    path: String,
    frames: Vec<Frame<'a>>,
    /// Unknown extensions are errors (the option, or a strict profile of the resource).
    strict: bool,
    /// Urls of the extensions being walked, innermost last (for extension contexts).
    extension_urls: Vec<&'a str>,
}

/// One JSON property (and its `_name` sibling) mapped to a child element.
struct Present<'a> {
    element: usize,
    type_index: usize,
    name: &'a str,
    value: Option<&'a Value>,
    ext: Option<&'a Value>,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        other => other.to_string(),
    }
}

impl<'d, 'a> Run<'d, 'a> {
    fn new(defs: &'d Definitions) -> Self {
        Run {
            defs,
            issues: Vec::new(),
            path: String::with_capacity(128),
            frames: Vec::with_capacity(4),
            strict: false,
            extension_urls: Vec::new(),
        }
    }

    fn finish(self) -> Vec<Issue> {
        let mut seen = HashSet::new();
        self.issues
            .into_iter()
            .filter(|i| seen.insert((i.expression.clone(), i.message.clone(), i.severity)))
            .collect()
    }

    fn report(&mut self, severity: Severity, code: IssueType, text: impl std::fmt::Display) {
        let expr = if self.path.is_empty() {
            None
        } else {
            Some(self.path.clone())
        };
        let message = match &expr {
            Some(e) => format!("{e}: {text}"),
            None => text.to_string(),
        };
        self.issues.push(Issue {
            severity,
            code,
            expression: expr,
            message,
        });
    }

    fn error(&mut self, code: IssueType, text: impl std::fmt::Display) {
        self.report(Severity::Error, code, text);
    }

    fn warning(&mut self, code: IssueType, text: impl std::fmt::Display) {
        self.report(Severity::Warning, code, text);
    }

    fn top(&mut self, resource: &'a Value, profiles: &[&str]) {
        let Some(rt) = self.resource_type(resource) else {
            return;
        };
        self.path.push_str(&rt);
        let outer_strict = self.strict;
        self.strict |= profiles.iter().any(|p| self.defs.strict_extensions_for(p));
        self.resource(resource, Mode::Full, None, false);
        for url in profiles {
            let Some(sd) = self.defs.structure_definition(url).cloned() else {
                self.warning(
                    IssueType::NotSupported,
                    format!("profile {url} is not known here, so it was not checked"),
                );
                continue;
            };
            if sd.type_name != rt {
                self.error(
                    IssueType::Invalid,
                    format!("profile {url} is for {}, not {rt}", sd.type_name),
                );
                continue;
            }
            self.resource(resource, Mode::Profile, Some(&sd), false);
        }
        self.strict = outer_strict;
    }

    /// Checks the resource envelope; returns the type when the resource can be walked.
    fn resource_type(&mut self, resource: &Value) -> Option<String> {
        let Value::Object(obj) = resource else {
            self.error(
                IssueType::Structure,
                format!(
                    "a resource must be a JSON object, not {}",
                    describe_json(resource)
                ),
            );
            return None;
        };
        match obj.get("resourceType") {
            Some(Value::String(rt)) if self.defs.is_resource_type(rt) => Some(rt.clone()),
            Some(Value::String(rt)) => {
                self.error(
                    IssueType::NotSupported,
                    format!("unknown resourceType '{rt}'"),
                );
                None
            }
            Some(other) => {
                self.error(
                    IssueType::Structure,
                    format!(
                        "resourceType must be a string, not {}",
                        describe_json(other)
                    ),
                );
                None
            }
            None => {
                self.error(IssueType::Required, "resourceType is missing");
                None
            }
        }
    }

    /// Walks a resource (the path is already positioned at it).
    fn resource(
        &mut self,
        resource: &'a Value,
        mode: Mode,
        profile: Option<&Arc<StructureDef>>,
        contained: bool,
    ) {
        let Value::Object(obj) = resource else {
            return;
        };
        let sd = match profile {
            Some(p) => p.clone(),
            None => {
                let Some(rt) = obj.get("resourceType").and_then(Value::as_str) else {
                    return;
                };
                match self.defs.type_definition(rt) {
                    Some(sd) => sd.clone(),
                    None => return,
                }
            }
        };
        self.frames.push(Frame {
            resource,
            contained,
            path_start: self.path.len(),
        });
        self.object(&sd, 0, resource, mode);
        if mode == Mode::Full && sd.el(0).child_by_name.contains_key("contained") {
            self.domain_resource_rules(resource, obj, contained);
        }
        if mode == Mode::Full {
            self.resource_rules(&sd.type_name, resource);
        }
        self.frames.pop();
    }

    /// Walks the properties of `obj` against the children of element `el`.
    fn object(&mut self, sd: &Arc<StructureDef>, el: usize, value: &'a Value, mode: Mode) {
        let Value::Object(obj) = value else {
            return;
        };
        let node_index = sd.content_of(el);
        if el == 0 {
            self.constraints(sd, 0, value, mode);
        }
        let node = sd.el(node_index);
        let is_resource_root = el == 0 && sd.kind == SdKind::Resource;
        let mut present: Vec<Present<'a>> = Vec::with_capacity(obj.len());
        for (key, value) in obj {
            if is_resource_root && key == "resourceType" {
                continue;
            }
            let (name, underscore) = match key.strip_prefix('_') {
                Some(n) => (n, true),
                None => (key.as_str(), false),
            };
            let Some(child) = node.child_by_name.get(name).copied() else {
                // The base type reports unknown names; a profile reports the types it
                // removed from a choice (`value[x]` narrowed to Quantity, say).
                self.unknown_property(sd, node, key, name, mode);
                continue;
            };
            let child_el = sd.el(child.element);
            if underscore && child_el.no_extensions && mode == Mode::Full {
                self.path_push(key);
                self.error(
                    IssueType::Structure,
                    format!("'{name}' cannot have extensions ('{key}' is not allowed)"),
                );
                self.path_pop(key);
                continue;
            }
            if underscore {
                let is_primitive = child_el
                    .types
                    .get(child.type_index)
                    .is_some_and(|t| primitives::is_primitive(&t.code));
                if !is_primitive {
                    if mode == Mode::Full {
                        self.path_push(key);
                        self.error(
                            IssueType::Structure,
                            format!("'{key}' is only allowed for primitive elements"),
                        );
                        self.path_pop(key);
                    }
                    continue;
                }
            }
            match present.iter_mut().find(|p| p.element == child.element) {
                Some(p) if p.name == name => {
                    if underscore {
                        p.ext = Some(value);
                    } else {
                        p.value = Some(value);
                    }
                }
                Some(p) => {
                    if mode == Mode::Full {
                        let other = p.name;
                        self.path_push(name);
                        self.error(
                            IssueType::Structure,
                            format!(
                                "only one of '{other}' and '{name}' may be present: {}[x] takes one value",
                                child_el.name
                            ),
                        );
                        self.path_pop(name);
                    }
                }
                None => present.push(Present {
                    element: child.element,
                    type_index: child.type_index,
                    name,
                    value: (!underscore).then_some(value),
                    ext: underscore.then_some(value),
                }),
            }
        }
        for &req in &node.required_children {
            if present.iter().any(|p| p.element == req) {
                continue;
            }
            let child = sd.el(req);
            let name = child.name.clone();
            if child.min > 0 {
                self.path_push(&name);
                self.error(
                    IssueType::Required,
                    format!(
                        "minimum required = {}, but only found 0{}",
                        child.min,
                        if child.is_choice {
                            format!(" ({name}[x])")
                        } else {
                            String::new()
                        }
                    ),
                );
                self.path_pop(&name);
            } else {
                for &sl in &child.slices {
                    let slice = sd.el(sl);
                    if slice.min > 0 {
                        let slice_name = slice.slice_name.clone().unwrap_or_default();
                        let min = slice.min;
                        self.path_push(&name);
                        self.error(
                            IssueType::Required,
                            format!("slice '{slice_name}' requires at least {min}, but found 0"),
                        );
                        self.path_pop(&name);
                    }
                }
            }
        }
        for p in &present {
            self.property(sd, p, mode);
        }
    }

    fn unknown_property(
        &mut self,
        sd: &StructureDef,
        node: &Element,
        key: &str,
        name: &str,
        mode: Mode,
    ) {
        // A choice name with a type the element does not allow?
        let choice = node.children.iter().map(|&c| sd.el(c)).find(|c| {
            c.is_choice
                && name
                    .strip_prefix(c.name.as_str())
                    .is_some_and(|rest| rest.starts_with(|ch: char| ch.is_ascii_uppercase()))
        });
        if mode != Mode::Full && choice.is_none() {
            return;
        }
        self.path_push(key);
        match choice {
            Some(c) => {
                let allowed: Vec<String> = c
                    .types
                    .iter()
                    .map(|t| crate::registry::choice_name(&c.name, &t.code))
                    .collect();
                let text = format!(
                    "'{name}' is not an allowed type for {}[x] (allowed: {})",
                    c.name,
                    allowed.join(", ")
                );
                self.error(IssueType::Structure, text);
            }
            None => {
                let text = format!("unknown element '{key}'");
                self.error(IssueType::Structure, text);
            }
        }
        self.path_pop(key);
    }

    fn path_push(&mut self, name: &str) {
        self.path.push('.');
        self.path.push_str(name);
    }

    fn path_pop(&mut self, name: &str) {
        let len = self.path.len() - name.len() - 1;
        self.path.truncate(len);
    }

    /// One property: JSON shape, cardinality, then each item.
    fn property(&mut self, sd: &Arc<StructureDef>, p: &Present<'a>, mode: Mode) {
        let el = sd.el(p.element);
        self.path_push(p.name);
        let mark = self.path.len();
        let Some(items) = self.items(el, p, mode) else {
            // The JSON shape is wrong; counting its items would only repeat that.
            self.path.truncate(mark - p.name.len() - 1);
            return;
        };
        let count = items.len();
        if count < el.min as usize {
            self.error(
                IssueType::Required,
                format!("minimum required = {}, but only found {count}", el.min),
            );
        }
        if !el.max.allows(count) {
            let text = if el.max == crate::sd::Max::Count(0) {
                "element is not allowed here (max 0)".to_string()
            } else {
                format!("maximum allowed = {}, but found {count}", el.max)
            };
            self.error(IssueType::Structure, text);
        }
        for (i, (value, ext)) in items.iter().enumerate() {
            if el.is_array {
                use std::fmt::Write;
                let _ = write!(self.path, "[{i}]");
            }
            self.item(sd, p.element, p.type_index, *value, *ext, mode);
            self.path.truncate(mark);
        }
        if el.slicing.is_some() || !el.slices.is_empty() {
            let type_code = el.types.get(p.type_index).map(|t| t.code.as_str());
            self.slicing(sd, p.element, &items, type_code, mode);
        }
        self.path.truncate(mark - p.name.len() - 1);
    }

    /// The items of a property as (value, `_name` part) pairs, after checking the JSON shape.
    fn items(
        &mut self,
        el: &Element,
        p: &Present<'a>,
        mode: Mode,
    ) -> Option<Vec<(Option<&'a Value>, Option<&'a Value>)>> {
        let full = mode == Mode::Full;
        if !el.is_array {
            if let Some(v) = p.value {
                match v {
                    Value::Array(_) => {
                        if full {
                            self.error(
                                IssueType::Structure,
                                "this element does not repeat; it must not be an array",
                            );
                        }
                        return None;
                    }
                    Value::Null => {
                        if full {
                            self.error(IssueType::Structure, "null is not allowed here");
                        }
                        return None;
                    }
                    _ => {}
                }
            }
            if let Some(x) = p.ext
                && !x.is_object()
            {
                if full {
                    self.error(
                        IssueType::Structure,
                        format!("'_{}' must be an object, not {}", p.name, describe_json(x)),
                    );
                }
                return Some(vec![(p.value, None)]);
            }
            return Some(vec![(p.value, p.ext)]);
        }
        let empty: &[Value] = &[];
        let as_array = |v: Option<&'a Value>| -> Result<&'a [Value], &'static str> {
            match v {
                None => Ok(empty),
                Some(Value::Array(a)) => Ok(a.as_slice()),
                Some(other) => Err(describe_json(other)),
            }
        };
        let values = match as_array(p.value) {
            Ok(a) => a,
            Err(what) => {
                if full {
                    self.error(
                        IssueType::Structure,
                        format!("this element repeats; it must be an array, not {what}"),
                    );
                }
                return None;
            }
        };
        let exts = match as_array(p.ext) {
            Ok(a) => a,
            Err(what) => {
                if full {
                    self.error(
                        IssueType::Structure,
                        format!("'_{}' must be an array, not {what}", p.name),
                    );
                }
                empty
            }
        };
        if full
            && ((p.value.is_some() && values.is_empty()) || (p.ext.is_some() && exts.is_empty()))
        {
            self.error(IssueType::Structure, "arrays must not be empty");
        }
        if full && !values.is_empty() && !exts.is_empty() && values.len() != exts.len() {
            self.error(
                IssueType::Structure,
                format!(
                    "'{}' has {} items but '_{}' has {}: the arrays must align",
                    p.name,
                    values.len(),
                    p.name,
                    exts.len()
                ),
            );
        }
        let n = values.len().max(exts.len());
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let v = values.get(i).filter(|v| !v.is_null());
            let x = exts.get(i).filter(|v| !v.is_null());
            if v.is_none() && x.is_none() {
                if full {
                    use std::fmt::Write;
                    let mark = self.path.len();
                    let _ = write!(self.path, "[{i}]");
                    let text = if exts.is_empty() {
                        "null is not allowed here".to_string()
                    } else {
                        format!("null in both '{0}' and '_{0}' at the same index", p.name)
                    };
                    self.error(IssueType::Structure, text);
                    self.path.truncate(mark);
                }
                continue;
            }
            out.push((v, x));
        }
        Some(out)
    }

    /// One item of an element: a primitive, a complex value or a resource.
    fn item(
        &mut self,
        sd: &Arc<StructureDef>,
        el_index: usize,
        type_index: usize,
        value: Option<&'a Value>,
        ext: Option<&'a Value>,
        mode: Mode,
    ) {
        let el = sd.el(el_index);
        let content = sd.content_of(el_index);
        let ty: Option<&TypeRef> = el
            .types
            .get(type_index)
            .or_else(|| sd.el(content).types.first());
        let type_code = ty.map(|t| t.code.as_str()).unwrap_or("BackboneElement");
        let full = mode == Mode::Full;
        if primitives::is_primitive(type_code) {
            let effective_type = if el_index != 0 && is_resource_id(sd, el) {
                "id"
            } else {
                type_code
            };
            if let Some(v) = value {
                if full && let Some(problem) = primitives::check(effective_type, v) {
                    let fatal = problem.severity == Severity::Error;
                    self.report(problem.severity, IssueType::Value, problem.message);
                    if fatal {
                        return; // a malformed value cannot meet fixed values or bindings
                    }
                }
                self.fixed_and_pattern(el, v);
                self.binding(el, type_code, v);
                self.limits(el, type_code, v);
                self.constraints(sd, el_index, v, mode);
            } else if ext.is_some() {
                // Only extensions (a data-absent-reason, say): a required binding still
                // wants a code.
                self.binding_without_code(el);
            }
            if full && let Some(x @ Value::Object(_)) = ext {
                self.primitive_extension(x);
            }
            return;
        }
        let Some(v) = value else {
            return;
        };
        let Value::Object(obj) = v else {
            if full {
                self.error(
                    IssueType::Structure,
                    format!(
                        "a {type_code} must be a JSON object, not {}",
                        describe_json(v)
                    ),
                );
            }
            return;
        };
        if obj.is_empty() {
            if full {
                self.error(
                    IssueType::Structure,
                    "an element must have a value or children (empty object)",
                );
            }
            return;
        }
        // One hash lookup instead of a search of the resource type names.
        let is_resource = type_code == "Resource"
            || self
                .defs
                .type_definition(type_code)
                .is_some_and(|t| t.kind == SdKind::Resource);
        if is_resource {
            self.nested_resource(v, ty, mode, el.name == "contained");
            return;
        }
        self.fixed_and_pattern(el, v);
        self.binding(el, type_code, v);
        self.constraints(sd, el_index, v, mode);
        let mut extension_sd = None;
        match type_code {
            "Extension" => extension_sd = self.extension(obj, sd, el, mode),
            "Reference" => self.reference(obj, ty, mode),
            "Narrative" if full => self.narrative(obj),
            "Period" if full => self.period(obj),
            "Range" if full => self.range(obj),
            "Attachment" if full => self.attachment(obj),
            "Coding" if full => self.coding_system(obj),
            _ => {}
        }
        let extension_url = (type_code == "Extension")
            .then(|| obj.get("url").and_then(Value::as_str))
            .flatten();
        if let Some(url) = extension_url {
            self.extension_urls.push(url);
        }
        if !sd.el(content).children.is_empty() {
            self.object(sd, content, v, mode);
        } else if full {
            let type_sd = extension_sd.or_else(|| self.defs.type_definition(type_code).cloned());
            if let Some(t) = type_sd {
                self.object(&t, 0, v, Mode::Full);
            }
        }
        if extension_url.is_some() {
            self.extension_urls.pop();
        }
        if let Some(ty) = ty {
            for url in &ty.profiles {
                if type_code == "Extension" && obj.get("url").and_then(Value::as_str) == Some(url) {
                    continue; // validated against its own definition in the full walk
                }
                match self.defs.structure_definition(url).cloned() {
                    Some(p) => self.object(&p, 0, v, Mode::Profile),
                    None => self.warning(
                        IssueType::NotSupported,
                        format!("profile {url} is not known here, so it was not checked"),
                    ),
                }
            }
        }
    }

    fn nested_resource(&mut self, v: &'a Value, ty: Option<&TypeRef>, mode: Mode, contained: bool) {
        if mode == Mode::Full {
            let Some(rt) = self.resource_type(v) else {
                return;
            };
            if let Some(ty) = ty
                && ty.code != "Resource"
                && ty.code != rt
            {
                self.error(
                    IssueType::Structure,
                    format!("a {} is expected here, not a {rt}", ty.code),
                );
            }
            // A nested resource (a Bundle entry, a contained resource) is judged by the
            // profiles it declares, like a resource on its own.
            let declared = declared_profiles(v);
            let outer_strict = self.strict;
            self.strict |= declared.iter().any(|p| self.defs.strict_extensions_for(p));
            self.resource(v, Mode::Full, None, contained);
            for url in declared {
                match self.defs.structure_definition(url).cloned() {
                    Some(p) if p.type_name == rt => {
                        self.resource(v, Mode::Profile, Some(&p), contained)
                    }
                    Some(p) => self.error(
                        IssueType::Invalid,
                        format!("profile {url} is for {}, not {rt}", p.type_name),
                    ),
                    None => self.warning(
                        IssueType::NotSupported,
                        format!("profile {url} is not known here, so it was not checked"),
                    ),
                }
            }
            self.strict = outer_strict;
        }
        for url in ty.map(|t| t.profiles.as_slice()).unwrap_or_default() {
            match self.defs.structure_definition(url).cloned() {
                Some(p) => {
                    if v["resourceType"].as_str() == Some(p.type_name.as_str()) {
                        self.resource(v, Mode::Profile, Some(&p), contained);
                    }
                }
                None => self.warning(
                    IssueType::NotSupported,
                    format!("profile {url} is not known here, so it was not checked"),
                ),
            }
        }
    }

    /// Rules of a resource type beyond its definition: the Bundle rules, and the rules of
    /// conformance resources.
    fn resource_rules(&mut self, type_name: &str, resource: &Value) {
        let Value::Object(obj) = resource else {
            return;
        };
        let defs = self.defs;
        let findings = match type_name {
            "Bundle" => crate::bundle::check(obj, &|t| defs.is_resource_type(t)),
            "SearchParameter" | "CodeSystem" | "ValueSet" => {
                crate::conformance::check(type_name, obj, defs)
            }
            _ => return,
        };
        for f in findings {
            let mark = self.path.len();
            if !f.path.is_empty() {
                self.path.push('.');
                self.path.push_str(&f.path);
            }
            self.report(f.severity, f.code, f.message);
            self.path.truncate(mark);
        }
    }

    /// The element an extension being walked is on, in the resource's terms and without
    /// indices: `Observation.valueQuantity` for `Bundle.entry[0].resource.valueQuantity.
    /// extension[1]`.
    fn extension_host(&self) -> String {
        let (resource_type, start) = match self.frames.last() {
            Some(f) => (
                f.resource
                    .get("resourceType")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                f.path_start,
            ),
            None => ("", 0),
        };
        let relative = self.path.get(start..).unwrap_or_default();
        let mut host = String::from(resource_type);
        let mut in_index = false;
        for c in relative.chars() {
            match c {
                '[' => in_index = true,
                ']' => in_index = false,
                _ if !in_index => host.push(c),
                _ => {}
            }
        }
        // Drop the last segment: the `extension`/`modifierExtension` itself.
        match host.rsplit_once('.') {
            Some((h, _)) => h.to_string(),
            None => host,
        }
    }

    /// Is an extension allowed where it is (on the element `el`, an `extension` element of
    /// `sd`, is part of)?
    fn extension_context_allows(
        &self,
        contexts: &[crate::sd::ExtensionContext],
        sd: &StructureDef,
        el: &Element,
    ) -> bool {
        use crate::sd::ExtensionContext as C;
        let el_host = el.path.rsplit_once('.').map_or("", |(h, _)| h);
        let at_type_root = !el_host.contains('.');
        let is_resource_root = at_type_root && sd.kind == SdKind::Resource;
        // The host's type: the data type whose definition is walked, or a backbone element.
        let host_type = if at_type_root {
            sd.type_name.as_str()
        } else {
            "BackboneElement"
        };
        // On a primitive (`_birthDate`), the walk is of Element: its type is not at hand.
        let on_primitive = at_type_root && sd.type_name == "Element";
        // The instance path is built only when no cheaper test decides.
        let mut host_path: Option<String> = None;
        contexts.iter().any(|c| match c {
            C::Extension(url) => {
                el_host == "Extension" && self.extension_urls.last().copied() == Some(url.as_str())
            }
            C::FhirPath(fp)
                if !fp
                    .expression
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '[' | ']')) =>
            {
                self.fhirpath_context_selects_host(fp)
            }
            C::Element(ctx)
            | C::FhirPath(crate::sd::FhirPathContext {
                expression: ctx, ..
            }) => {
                let ctx = ctx.rsplit_once('#').map_or(ctx.as_str(), |(_, p)| p);
                ctx == "Element"
                    || ctx == "Base"
                    || (matches!(ctx, "Resource" | "DomainResource") && is_resource_root)
                    || ctx == host_type
                    || (on_primitive && ctx.starts_with(|ch: char| ch.is_ascii_lowercase()))
                    // A path inside the definition walked (`ElementDefinition.type` inside
                    // a StructureDefinition), or in the resource's terms.
                    || same_element_path(ctx, el_host)
                    || (ctx.contains('.')
                        && same_element_path(
                            ctx,
                            host_path.get_or_insert_with(|| self.extension_host()),
                        ))
            }
        })
    }

    /// Whether a `fhirpath` extension context, evaluated on the resource (as the reference
    /// validator does), selects the element the extension being walked is on. Elements are
    /// compared by value: the host holds the extension, so an equal node is the host or
    /// carries the same extension in the same way. An expression that does not parse or
    /// cannot be evaluated is not held against the extension.
    fn fhirpath_context_selects_host(&self, context: &crate::sd::FhirPathContext) -> bool {
        let (Some(frame), Some(path)) = (self.frames.last(), context.compiled()) else {
            return true;
        };
        let Some(host) = self.extension_host_value() else {
            return true;
        };
        let root = self
            .frames
            .iter()
            .rev()
            .find(|f| !f.contained)
            .map_or(frame.resource, |f| f.resource);
        let input = PathInput::at(frame.resource, frame.resource, root);
        match path.evaluate_input(&input) {
            Ok(selected) => selected.iter().any(|s| s == host),
            Err(_) => true,
        }
    }

    /// The JSON of the element the extension being walked is on, found from the resource by
    /// the instance path (`.valueQuantity.extension[1]` → the `valueQuantity` object).
    fn extension_host_value(&self) -> Option<&'a Value> {
        let frame = self.frames.last()?;
        let relative = self.path.get(frame.path_start..)?;
        let (host_path, _extension) = relative.rsplit_once('.')?;
        let mut node = frame.resource;
        for segment in host_path.split('.').filter(|s| !s.is_empty()) {
            let (name, index) = match segment.split_once('[') {
                Some((name, rest)) => (name, rest.strip_suffix(']')?.parse::<usize>().ok()),
                None => (segment, None),
            };
            node = node.get(name)?;
            if let Some(i) = index {
                node = node.get(i)?;
            }
        }
        Some(node)
    }

    /// A code-typed element with a required binding but only extensions.
    fn binding_without_code(&mut self, el: &Element) {
        if let Some(b) = &el.binding
            && b.strength == Strength::Required
        {
            let vs = b.value_set.as_deref().unwrap_or("its value set");
            self.error(
                IssueType::CodeInvalid,
                format!("no code provided, and a code is required from the value set {vs}"),
            );
        }
    }

    /// A Coding's system must be a code system, not a supplement to one.
    fn coding_system(&mut self, obj: &Map<String, Value>) {
        if !self.defs.has_supplements() {
            return;
        }
        let Some(system) = obj.get("system").and_then(Value::as_str) else {
            return;
        };
        if self
            .defs
            .code_system(system)
            .is_some_and(|cs| cs.is_supplement())
        {
            self.path_push("system");
            self.error(
                IssueType::CodeInvalid,
                format!("{system} is a CodeSystem supplement, which defines no codes: it cannot be a Coding's system"),
            );
            self.path_pop("system");
        }
    }

    /// `size` and `hash` of an Attachment agree with its inline `data`.
    fn attachment(&mut self, obj: &Map<String, Value>) {
        let Some(data) = obj.get("data").and_then(Value::as_str) else {
            return;
        };
        let Some(bytes) = primitives::decode_base64(data) else {
            return; // reported as a malformed base64Binary
        };
        if let Some(size) = obj.get("size")
            && let Some(n) = number(size)
            && n != bytes.len() as f64
        {
            self.path_push("size");
            self.error(
                IssueType::Value,
                format!(
                    "the stated size {n} does not match the data ({} bytes)",
                    bytes.len()
                ),
            );
            self.path_pop("size");
        }
        if let Some(hash) = obj.get("hash").and_then(Value::as_str) {
            let actual = primitives::encode_base64(&crate::sha1::digest(&bytes));
            if hash != actual {
                self.path_push("hash");
                self.error(
                    IssueType::Value,
                    format!("the stated hash {hash} is not the SHA-1 of the data ({actual})"),
                );
                self.path_pop("hash");
            }
        }
    }

    /// `_name` of a primitive: only `id` and `extension`.
    fn primitive_extension(&mut self, x: &'a Value) {
        if x.as_object().is_some_and(Map::is_empty) {
            self.error(
                IssueType::Structure,
                "an element must have a value or children (empty object)",
            );
            return;
        }
        let Some(element_sd) = self.defs.type_definition("Element").cloned() else {
            return;
        };
        self.object(&element_sd, 0, x, Mode::Full);
    }

    fn limits(&mut self, el: &Element, type_code: &str, v: &Value) {
        if let (Some(max), Value::String(s)) = (el.max_length, v)
            && s.chars().count() > max
        {
            self.error(
                IssueType::TooLong,
                format!("value is longer than the maximum length {max}"),
            );
        }
        for (bound, below) in [(&el.min_value, true), (&el.max_value, false)] {
            let Some((_, limit)) = bound else {
                continue;
            };
            let Some(order) = compare_limit(type_code, v, limit) else {
                continue;
            };
            let wrong = if below {
                order == std::cmp::Ordering::Less
            } else {
                order == std::cmp::Ordering::Greater
            };
            if wrong {
                let (which, word) = if below {
                    ("minimum", "below")
                } else {
                    ("maximum", "above")
                };
                self.error(
                    IssueType::Value,
                    format!("value {} is {word} the {which} {}", s(v), s(limit)),
                );
            }
        }
    }

    fn fixed_and_pattern(&mut self, el: &Element, v: &Value) {
        if let Some((_, fixed)) = &el.fixed
            && v != fixed
            && !numbers_equal(v, fixed)
        {
            self.error(
                IssueType::Value,
                format!("value {} does not match the fixed value {}", s(v), s(fixed)),
            );
        }
        if let Some((_, pattern)) = &el.pattern
            && !matches_pattern(v, pattern)
        {
            self.error(
                IssueType::Value,
                format!("value {} does not match the pattern {}", s(v), s(pattern)),
            );
        }
    }

    fn binding(&mut self, el: &Element, type_code: &str, v: &Value) {
        let Some(b) = &el.binding else {
            return;
        };
        if !matches!(b.strength, Strength::Required | Strength::Extensible) {
            return;
        }
        let Some(vs) = b.value_set.as_deref() else {
            return;
        };
        let mut codes: Vec<(Option<&str>, &str)> = Vec::new();
        match type_code {
            "code" | "string" | "uri" => {
                if let Some(c) = v.as_str() {
                    codes.push((None, c));
                }
            }
            "Coding" | "Quantity" | "Age" | "Duration" | "Count" | "Distance" | "Money"
            | "SimpleQuantity" | "MoneyQuantity" => {
                if let Some(c) = v["code"].as_str() {
                    codes.push((v["system"].as_str(), c));
                } else {
                    return;
                }
            }
            "CodeableConcept" => {
                for coding in v["coding"].as_array().into_iter().flatten() {
                    if let Some(c) = coding["code"].as_str() {
                        codes.push((coding["system"].as_str(), c));
                    }
                }
                if codes.is_empty() {
                    if b.strength == Strength::Required {
                        self.error(
                            IssueType::CodeInvalid,
                            format!(
                                "a code from value set {vs} is required, but no coding has a code"
                            ),
                        );
                    }
                    return;
                }
            }
            _ => return,
        }
        let Some(expansion) = self.defs.expansion(vs) else {
            self.warning(
                IssueType::NotSupported,
                format!("value set {vs} is not available, so the binding was not checked"),
            );
            return;
        };
        let mut unknown = None;
        for (system, code) in &codes {
            match expansion.contains(*system, code) {
                Membership::Member => return,
                Membership::Unknown(why) => unknown = Some(why),
                Membership::NotMember => {}
            }
        }
        if let Some(why) = unknown {
            self.warning(
                IssueType::NotSupported,
                format!("could not check the binding to {vs}: {why}"),
            );
            return;
        }
        let shown: Vec<String> = codes
            .iter()
            .map(|(system, code)| match system {
                Some(s) => format!("{s}#{code}"),
                None => format!("'{code}'"),
            })
            .collect();
        let text = format!(
            "{} {} not in the value set {vs} ({} binding)",
            shown.join(", "),
            if shown.len() == 1 { "is" } else { "are" },
            if b.strength == Strength::Required {
                "required"
            } else {
                "extensible"
            }
        );
        if b.strength == Strength::Required {
            self.error(IssueType::CodeInvalid, text);
        } else {
            self.warning(IssueType::CodeInvalid, text);
        }
    }

    /// Invariants of element `el` on one of its items.
    fn constraints(&mut self, sd: &Arc<StructureDef>, el_index: usize, v: &Value, mode: Mode) {
        let el = sd.el(el_index);
        if el.constraints.is_empty() {
            return;
        }
        let mut input: Option<PathInput> = None;
        let mut node_input: Option<PathInput> = None;
        for c in &el.constraints {
            if mode == Mode::Profile && c.in_base {
                continue;
            }
            let check = c.check.get_or_init(|| {
                invariant::compile(&c.key, &c.expression, c.in_base, &|names| {
                    choice_flags(self.defs, sd, el_index, names)
                })
            });
            let holds = match check {
                Check::Builtin => continue,
                Check::Native(f) => f(v, self.frames.last().map_or(v, |f| f.resource)),
                Check::Simple(simple) => simple.eval(v),
                Check::Path(path) => {
                    let result = if path.uses_resource() {
                        let frame = self.frames.last().copied();
                        // %rootResource: the resource a contained resource is in; for any
                        // other resource (a Bundle entry too) the resource itself.
                        let root = self.frames.iter().rev().find(|f| !f.contained).copied();
                        let input = input.get_or_insert_with(|| match (frame, root) {
                            (Some(f), Some(r)) => PathInput::at(v, f.resource, r.resource),
                            _ => PathInput::node(v),
                        });
                        path.evaluate_bool_input(input)
                    } else {
                        let input = node_input.get_or_insert_with(|| PathInput::node(v));
                        path.evaluate_bool_input(input)
                    };
                    // An empty result fails, as in the reference validator: an invariant
                    // holds only when it evaluates to true (`{} or false` is empty).
                    match result {
                        Ok(Some(b)) => b,
                        Ok(None) => false,
                        Err(e) => {
                            let text = format!("constraint {} could not be evaluated: {e}", c.key);
                            self.warning(IssueType::NotSupported, text);
                            true
                        }
                    }
                }
                Check::Broken(e) => {
                    let text = format!("constraint {} could not be evaluated: {e}", c.key);
                    self.warning(IssueType::NotSupported, text);
                    true
                }
            };
            if !holds {
                let text = format!("constraint {} failed: {}", c.key, c.human);
                self.report(c.severity, IssueType::Invariant, text);
            }
        }
    }

    /// Extension rules; returns the extension's own definition when it is known.
    fn extension(
        &mut self,
        obj: &'a Map<String, Value>,
        sd: &StructureDef,
        el: &Element,
        mode: Mode,
    ) -> Option<Arc<StructureDef>> {
        if mode != Mode::Full {
            return None;
        }
        // A missing or malformed url is reported by the walk of Extension.url (min 1, uri).
        let Some(Value::String(url)) = obj.get("url") else {
            return None;
        };
        let has_value = obj.keys().any(|k| {
            k.strip_prefix("value")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_uppercase()))
        });
        let has_extensions = obj
            .get("extension")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if has_value == has_extensions {
            self.error(
                IssueType::Invariant,
                "constraint ext-1 failed: Must have either extensions or value[x], not both",
            );
        }
        let known = self
            .defs
            .structure_definition(url)
            .filter(|sd| sd.type_name == "Extension")
            .cloned();
        // A relative url names a part of a complex extension, defined by its parent.
        let absolute = url.contains(':');
        if known.is_none() && absolute {
            if el.name == "modifierExtension" {
                self.error(
                    IssueType::Extension,
                    format!("unknown modifier extension {url}: it cannot be safely ignored"),
                );
            } else if self.strict {
                self.error(
                    IssueType::Extension,
                    format!(
                        "extension {url} is not known here, and unknown extensions are not allowed"
                    ),
                );
            } else {
                self.warning(
                    IssueType::Extension,
                    format!("extension {url} is not known here, so only its structure was checked"),
                );
            }
        }
        if let Some(def) = &known
            && !def.contexts.is_empty()
            && !self.extension_context_allows(&def.contexts, sd, el)
        {
            let allowed: Vec<String> = def
                .contexts
                .iter()
                .map(|c| match c {
                    crate::sd::ExtensionContext::Element(p) => p.clone(),
                    crate::sd::ExtensionContext::FhirPath(p) => p.expression.clone(),
                    crate::sd::ExtensionContext::Extension(u) => format!("extension {u}"),
                })
                .collect();
            let here = self.extension_host();
            self.error(
                IssueType::Extension,
                format!(
                    "extension {url} is not allowed on {here} (its contexts: {})",
                    allowed.join(", ")
                ),
            );
        }
        if let Some(def) = &known
            && el.name == "extension"
            && def.root().is_modifier
        {
            self.error(
                IssueType::Extension,
                format!("extension {url} is a modifier extension: it belongs in modifierExtension"),
            );
        }
        known
    }

    fn reference(&mut self, obj: &'a Map<String, Value>, ty: Option<&TypeRef>, mode: Mode) {
        // `Reference.type`: a resource type (or its core definition's url); other urls are
        // logical models, which we cannot compare.
        let stated_type = obj
            .get("type")
            .and_then(Value::as_str)
            .map(|t| t.strip_prefix(crate::snapshot::CORE).unwrap_or(t))
            .filter(|t| self.defs.is_resource_type(t));
        let Some(Value::String(r)) = obj.get("reference") else {
            // Only an identifier (or a display): the stated type is what the reference is to.
            if let Some(t) = stated_type {
                self.target_type(t, &format!("type {t}"), "type", ty);
            }
            return;
        };
        let target_type: Option<String> = if let Some(id) = r.strip_prefix('#') {
            if id.is_empty() {
                None
            } else {
                let found = self.contained_by_id(id);
                if found.is_none() {
                    if mode == Mode::Full {
                        self.path_push("reference");
                        self.error(
                            IssueType::Invalid,
                            format!("'{r}' refers to no contained resource with id '{id}' (ref-1)"),
                        );
                        self.path_pop("reference");
                    }
                    return;
                }
                found
            }
        } else if r.starts_with("urn:uuid:") || r.starts_with("urn:oid:") {
            let ok = if r.starts_with("urn:uuid:") {
                primitives::is_uuid(r)
            } else {
                primitives::is_oid(r)
            };
            if !ok && mode == Mode::Full {
                self.path_push("reference");
                self.error(
                    IssueType::Invalid,
                    format!("'{r}' is not a valid {} reference", &r[..8]),
                );
                self.path_pop("reference");
            }
            None
        } else {
            match parse_reference(r) {
                Some(ReferenceForm::Relative(t)) => {
                    if !self.defs.is_resource_type(t) {
                        if mode == Mode::Full {
                            self.path_push("reference");
                            self.error(
                                IssueType::Invalid,
                                format!("'{r}' names an unknown resource type '{t}'"),
                            );
                            self.path_pop("reference");
                        }
                        return;
                    }
                    Some(t.to_string())
                }
                Some(ReferenceForm::Absolute(t)) => t
                    .filter(|t| self.defs.is_resource_type(t))
                    .map(str::to_string),
                None => {
                    if mode == Mode::Full {
                        self.path_push("reference");
                        self.error(
                            IssueType::Invalid,
                            format!(
                                "'{r}' is not a valid literal reference (expected Type/id, an absolute URL, urn:uuid:, urn:oid: or #id)"
                            ),
                        );
                        self.path_pop("reference");
                    }
                    return;
                }
            }
        };
        if let (Some(stated), Some(target)) = (stated_type, target_type.as_deref())
            && stated != target
            && mode == Mode::Full
        {
            self.path_push("type");
            self.error(
                IssueType::Invalid,
                format!(
                    "the type '{stated}' does not match the reference '{r}', which is to a {target}"
                ),
            );
            self.path_pop("type");
        }
        // An absolute or urn reference names no type: the stated type stands for it.
        let Some(target) = target_type.or_else(|| stated_type.map(str::to_string)) else {
            return;
        };
        self.target_type(&target, &format!("'{r}'"), "reference", ty);
    }

    /// The type a reference is to (`what`, reported at `at`) against the element's target
    /// profiles.
    fn target_type(&mut self, target: &str, what: &str, at: &str, ty: Option<&TypeRef>) {
        let Some(ty) = ty else {
            return;
        };
        if ty.target_profiles.is_empty() {
            return;
        }
        let mut allowed = Vec::new();
        let mut unknown = Vec::new();
        for tp in &ty.target_profiles {
            let t = match self.defs.structure_definition(tp) {
                Some(sd) => sd.type_name.clone(),
                None => match tp.strip_prefix(crate::snapshot::CORE) {
                    Some(core_type) => core_type.to_string(),
                    None => {
                        unknown.push(tp.as_str());
                        continue;
                    }
                },
            };
            if t == "Resource" || t == target {
                return;
            }
            allowed.push(t);
        }
        if !unknown.is_empty() {
            // A target we do not know may be the referenced type: cannot check, not wrong.
            self.path_push(at);
            self.warning(
                IssueType::NotSupported,
                format!(
                    "the target profile {} is not known here, so the type of {what} could not be checked",
                    unknown.join(", ")
                ),
            );
            self.path_pop(at);
            return;
        }
        self.path_push(at);
        self.error(
            IssueType::Invalid,
            format!(
                "a reference to a {target} is not allowed here (allowed: {})",
                allowed.join(", ")
            ),
        );
        self.path_pop(at);
    }

    /// The type of the contained resource with `id` in the nearest container.
    fn contained_by_id(&self, id: &str) -> Option<String> {
        let container = self.frames.iter().rev().find(|f| !f.contained)?;
        container.resource["contained"]
            .as_array()?
            .iter()
            .find(|c| c["id"].as_str() == Some(id))
            .and_then(|c| c["resourceType"].as_str().map(str::to_string))
    }

    fn narrative(&mut self, obj: &Map<String, Value>) {
        if let Some(Value::String(div)) = obj.get("div")
            && !primitives::xhtml_has_content(div)
        {
            self.path_push("div");
            self.error(
                IssueType::Invariant,
                "constraint txt-2 failed: The narrative SHALL have some non-whitespace content",
            );
            self.path_pop("div");
        }
        // An internal link has a '#': one byte search skips the common narrative.
        if let Some(Value::String(div)) = obj.get("div")
            && div.as_bytes().contains(&b'#')
        {
            let mut anchors: HashSet<&str> = primitives::xhtml_attribute_values(div, "id")
                .into_iter()
                .collect();
            anchors.extend(primitives::xhtml_attribute_values(div, "name"));
            let contained: Vec<String> = self
                .frames
                .last()
                .and_then(|f| f.resource.get("contained"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|c| c.get("id").and_then(Value::as_str).map(str::to_string))
                .collect();
            for href in primitives::xhtml_attribute_values(div, "href") {
                let Some(target) = href.strip_prefix('#') else {
                    continue;
                };
                if target.is_empty()
                    || anchors.contains(target)
                    || contained.iter().any(|c| c == target)
                {
                    continue;
                }
                self.path_push("div");
                self.error(
                    IssueType::Value,
                    format!("the internal link '{href}' names no element of the narrative (no id or name '{target}')"),
                );
                self.path_pop("div");
            }
        }
    }

    /// per-1 (`start <= end`) with FHIRPath's comparison: values of different precisions
    /// that agree as far as both go cannot be compared, and the invariant fails.
    fn period(&mut self, obj: &Map<String, Value>) {
        let date = |k: &str| {
            obj.get(k)
                .and_then(Value::as_str)
                .and_then(|s| crate::datetime::parse(s).ok())
        };
        if let (Some(start), Some(end)) = (date("start"), date("end"))
            && fhirpath_order(&start, &end) != Some(std::cmp::Ordering::Less)
            && fhirpath_order(&start, &end) != Some(std::cmp::Ordering::Equal)
        {
            self.error(
                IssueType::Invariant,
                "constraint per-1 failed: If present, start SHALL have a lower value than end",
            );
        }
    }

    /// rng-2: low <= high, compared when both carry a value in the same unit.
    fn range(&mut self, obj: &Map<String, Value>) {
        let (Some(low), Some(high)) = (obj.get("low"), obj.get("high")) else {
            return;
        };
        let unit = |q: &Value| (q["system"].clone(), q["code"].clone());
        if unit(low) != unit(high) {
            return;
        }
        if let (Some(l), Some(h)) = (number(&low["value"]), number(&high["value"]))
            && l > h
        {
            self.error(
                IssueType::Invariant,
                "constraint rng-2 failed: If present, low SHALL have a lower value than high",
            );
        }
    }

    /// dom-2..dom-6: rules about contained resources and narrative.
    fn domain_resource_rules(
        &mut self,
        resource: &Value,
        obj: &Map<String, Value>,
        contained: bool,
    ) {
        let list = obj.get("contained").and_then(Value::as_array);
        if contained {
            if list.is_some_and(|l| !l.is_empty()) {
                self.error(
                    IssueType::Invariant,
                    "constraint dom-2 failed: If the resource is contained in another resource, it SHALL NOT contain nested Resources",
                );
            }
            if obj.get("text").is_some() {
                // Not an R4 invariant; Kanta (and best practice) say contained resources
                // carry no narrative of their own.
                self.warning(
                    IssueType::BusinessRule,
                    "a contained resource should not have narrative text",
                );
            }
        } else if obj.get("text").and_then(|t| t.get("div")).is_none() {
            self.warning(
                IssueType::Invariant,
                "constraint dom-6 failed: A resource should have narrative for robust management",
            );
        }
        let Some(list) = list else {
            return;
        };
        let mut refs = HashSet::new();
        collect_references(resource, &mut refs);
        for (i, c) in list.iter().enumerate() {
            let suffix = format!("contained[{i}]");
            let meta = &c["meta"];
            if !meta["versionId"].is_null() || !meta["lastUpdated"].is_null() {
                self.path_push(&suffix);
                self.error(
                    IssueType::Invariant,
                    "constraint dom-4 failed: If a resource is contained in another resource, it SHALL NOT have a meta.versionId or a meta.lastUpdated",
                );
                self.path_pop(&suffix);
            }
            if !meta["security"].is_null() {
                self.path_push(&suffix);
                self.error(
                    IssueType::Invariant,
                    "constraint dom-5 failed: If a resource is contained in another resource, it SHALL NOT have a security label",
                );
                self.path_pop(&suffix);
            }
            let referenced = match c["id"].as_str() {
                Some(id) => refs.contains(&format!("#{id}")),
                None => false,
            };
            let mut own = HashSet::new();
            collect_references(c, &mut own);
            if !referenced && !own.contains("#") {
                self.path_push(&suffix);
                self.error(
                    IssueType::Invariant,
                    "constraint dom-3 failed: If the resource is contained in another resource, it SHALL be referred to from elsewhere in the resource or SHALL refer to the containing resource",
                );
                self.path_pop(&suffix);
            }
        }
    }

    /// Matches items to slices, validates them against their slice, and checks the slicing
    /// rules and per-slice cardinality.
    fn slicing(
        &mut self,
        sd: &Arc<StructureDef>,
        el_index: usize,
        items: &[(Option<&'a Value>, Option<&'a Value>)],
        type_code: Option<&str>,
        mode: Mode,
    ) {
        let el = sd.el(el_index);
        if el.slices.is_empty()
            && el
                .slicing
                .as_ref()
                .is_none_or(|s| s.rules != SlicingRules::Closed)
        {
            return;
        }
        // Choice type slices (`value[x]:valueQuantity`) match by the JSON name.
        let is_type_slicing = el.is_choice;
        let mut counts = vec![0usize; el.slices.len()];
        let mut last_slice = 0usize;
        let mut seen_unmatched = false;
        let base_len = self.path.len();
        for (i, (value, _ext)) in items.iter().enumerate() {
            let Some(value) = value else {
                continue;
            };
            let matched = el.slices.iter().position(|&s| {
                let slice = sd.el(s);
                if is_type_slicing {
                    return slice
                        .types
                        .iter()
                        .any(|t| Some(t.code.as_str()) == type_code);
                }
                self.matches_slice(sd, el, s, value, type_code)
            });
            if el.is_array {
                use std::fmt::Write;
                let _ = write!(self.path, "[{i}]");
            }
            match matched {
                Some(k) => {
                    // `k` is a position in `el.slices`, and `counts` has one entry per slice.
                    let Some(&slice_index) = el.slices.get(k) else {
                        continue;
                    };
                    if let Some(c) = counts.get_mut(k) {
                        *c += 1;
                    }
                    let slicing = el.slicing.as_ref();
                    if slicing.is_some_and(|s| s.ordered) && k < last_slice {
                        let name = sd.el(slice_index).slice_name.clone().unwrap_or_default();
                        self.error(
                            IssueType::Structure,
                            format!("slice '{name}' is out of order: slices must appear in their defined order"),
                        );
                    }
                    if slicing.is_some_and(|s| s.rules == SlicingRules::OpenAtEnd) && seen_unmatched
                    {
                        self.error(
                            IssueType::Structure,
                            "items that match no slice must come after all sliced items (openAtEnd)",
                        );
                    }
                    last_slice = last_slice.max(k);
                    let slice = sd.el(slice_index);
                    let t = slice
                        .types
                        .iter()
                        .position(|t| Some(t.code.as_str()) == type_code)
                        .unwrap_or(0);
                    self.item(sd, slice_index, t, Some(value), None, mode);
                }
                None => {
                    seen_unmatched = true;
                    if el
                        .slicing
                        .as_ref()
                        .is_some_and(|s| s.rules == SlicingRules::Closed)
                    {
                        let names: Vec<&str> = el
                            .slices
                            .iter()
                            .filter_map(|&s| sd.el(s).slice_name.as_deref())
                            .collect();
                        self.error(
                            IssueType::Structure,
                            format!(
                                "matches none of the slices ({}) and the slicing is closed",
                                names.join(", ")
                            ),
                        );
                    }
                }
            }
            self.path.truncate(base_len);
        }
        for (&s, &count) in el.slices.iter().zip(&counts) {
            let slice = sd.el(s);
            let name = slice.slice_name.as_deref().unwrap_or_default();
            if count < slice.min as usize && !items.is_empty() {
                let text = format!(
                    "slice '{name}' requires at least {}, but found {count}",
                    slice.min
                );
                self.error(IssueType::Required, text);
            }
            if !slice.max.allows(count) {
                let text = format!(
                    "slice '{name}' allows at most {}, but found {count}",
                    slice.max
                );
                self.error(IssueType::Structure, text);
            }
        }
    }

    fn matches_slice(
        &self,
        sd: &Arc<StructureDef>,
        el: &Element,
        slice_index: usize,
        item: &Value,
        type_code: Option<&str>,
    ) -> bool {
        let Some(slicing) = &el.slicing else {
            return false;
        };
        if slicing.discriminators.is_empty() {
            // No discriminator: the item belongs to the first slice it conforms to.
            return self.conforms_to_element(sd, slice_index, item);
        }
        slicing.discriminators.iter().all(|d| {
            let path = d.path.trim();
            match d.kind {
                DiscriminatorKind::Value | DiscriminatorKind::Pattern => {
                    self.value_discriminator(sd, slice_index, path, item)
                }
                DiscriminatorKind::Exists => {
                    let defs = self.definitions_at(sd, slice_index, path);
                    let exists = !self.values_at(item, path).is_empty();
                    match defs.first().map(|(s, e)| s.el(*e)) {
                        Some(e) if e.max == crate::sd::Max::Count(0) => !exists,
                        Some(e) if e.min > 0 => exists,
                        _ => true,
                    }
                }
                DiscriminatorKind::Type => {
                    if path == "$this" {
                        let item_type = item["resourceType"].as_str().or(type_code);
                        return sd
                            .el(slice_index)
                            .types
                            .iter()
                            .any(|t| Some(t.code.as_str()) == item_type);
                    }
                    // The types the slice allows at the path (for `resolve()`, the types
                    // of its target profiles) against the types of the values there.
                    let allowed: Vec<String> = self
                        .definitions_at(sd, slice_index, path)
                        .iter()
                        .flat_map(|(s, e)| {
                            let el = s.el(*e);
                            if *e == 0 && s.kind == SdKind::Resource {
                                vec![s.type_name.clone()]
                            } else {
                                el.types.iter().map(|t| t.code.clone()).collect()
                            }
                        })
                        .collect();
                    self.typed_values_at(item, path).iter().any(|(v, hint)| {
                        let item_type = v["resourceType"].as_str().or(*hint);
                        item_type.is_some_and(|t| allowed.iter().any(|a| same_type(a, t)))
                    })
                }
                DiscriminatorKind::Profile => {
                    let slice = sd.el(slice_index);
                    let (targets, profiles): (Vec<&Value>, Vec<String>) = if path == "$this" {
                        let profiles = slice.types.iter().flat_map(|t| &t.profiles);
                        (vec![item], profiles.cloned().collect())
                    } else {
                        // The profiles the slice gives the element at the path (for
                        // `resolve()`, the reference's target profiles).
                        let reached = self.definitions_at(sd, slice_index, path);
                        let mut profiles: Vec<String> = reached
                            .iter()
                            .flat_map(|(s, e)| {
                                if *e == 0 && s.kind == SdKind::Resource {
                                    vec![s.url.clone()]
                                } else {
                                    let types = &s.el(*e).types;
                                    types.iter().flat_map(|t| t.profiles.clone()).collect()
                                }
                            })
                            .collect();
                        if profiles.is_empty() {
                            profiles = slice
                                .types
                                .iter()
                                .flat_map(|t| t.profiles.clone())
                                .collect();
                        }
                        (self.values_at(item, path), profiles)
                    };
                    profiles
                        .iter()
                        .any(|p| targets.iter().any(|t| self.conforms_to_profile(t, p)))
                }
            }
        })
    }

    /// Does `item` conform to element `el` (a slice without discriminators)?
    fn conforms_to_element(&self, sd: &Arc<StructureDef>, el: usize, item: &Value) -> bool {
        let mut run = Run::new(self.defs);
        run.frames = self.frames.clone();
        run.item(sd, el, 0, Some(item), None, Mode::Profile);
        !run.issues.iter().any(Issue::is_error)
    }

    /// Does `item` (a resource or a data type value) conform to `profile`?
    fn conforms_to_profile(&self, item: &Value, profile: &str) -> bool {
        let Some(p) = self.defs.structure_definition(profile).cloned() else {
            return false;
        };
        let mut run = Run::new(self.defs);
        if item["resourceType"].is_string() {
            run.top(item, &[profile]);
        } else {
            run.frames = self.frames.clone();
            run.object(&p, 0, item, Mode::Full);
        }
        !run.issues.iter().any(Issue::is_error)
    }

    /// Elements a discriminator path reaches from a slice: through children, into the
    /// slices along the way, and into the type's definition when the snapshot stops.
    fn definitions_at(
        &self,
        sd: &Arc<StructureDef>,
        slice: usize,
        path: &str,
    ) -> Vec<(Arc<StructureDef>, usize)> {
        let mut current: Vec<(Arc<StructureDef>, usize)> = vec![(sd.clone(), slice)];
        if path == "$this" {
            return current;
        }
        let Some(steps) = PathStep::parse(path) else {
            return Vec::new();
        };
        let last = steps.len().saturating_sub(1);
        for (i, step) in steps.iter().enumerate() {
            let mut next = Vec::new();
            match step {
                PathStep::This => next = current,
                PathStep::Name(seg) => {
                    for (s, e) in &current {
                        self.children_named(s, *e, seg, &mut next);
                    }
                }
                PathStep::Extension(url) => {
                    for (s, e) in &current {
                        let mut extensions = Vec::new();
                        self.children_named(s, *e, "extension", &mut extensions);
                        // The slice for this url: its type profile is the extension's
                        // definition, or its url is fixed to it.
                        for (hs, he) in extensions {
                            let el = hs.el(he);
                            let by_profile = el
                                .single_type()
                                .is_some_and(|t| t.profiles.iter().any(|p| p == url));
                            let mut urls = Vec::new();
                            self.children_named(&hs, he, "url", &mut urls);
                            let by_url = urls.iter().any(|(us, ue)| {
                                us.el(*ue).fixed.as_ref().and_then(|(_, v)| v.as_str())
                                    == Some(url.as_str())
                            });
                            if el.slice_name.is_some() && (by_profile || by_url) {
                                next.push((hs.clone(), he));
                            }
                        }
                    }
                    if next.is_empty()
                        && let Some(def) = self.defs.structure_definition(url)
                    {
                        next.push((def.clone(), 0));
                    }
                }
                PathStep::OfType(t) => {
                    for (s, e) in current {
                        let el = s.el(e);
                        if !el.types.iter().any(|ty| same_type(&ty.code, t)) {
                            continue;
                        }
                        // Inside a choice of several types, go on in the named type.
                        if el.types.len() > 1
                            && i < last
                            && let Some(def) = self.defs.type_definition(t)
                        {
                            next.push((def.clone(), 0));
                        } else {
                            next.push((s, e));
                        }
                    }
                }
                PathStep::Resolve => {
                    for (s, e) in &current {
                        for tp in s.el(*e).types.iter().flat_map(|t| &t.target_profiles) {
                            if let Some(target) = self.defs.structure_definition(tp) {
                                next.push((target.clone(), 0));
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current
    }

    /// The children named `name` of element `e` (and their slices), through the element's
    /// type definition when the snapshot stops there.
    fn children_named(
        &self,
        s: &Arc<StructureDef>,
        e: usize,
        name: &str,
        out: &mut Vec<(Arc<StructureDef>, usize)>,
    ) {
        let content = s.content_of(e);
        let node = s.el(content);
        let (host, host_el) = if node.children.is_empty() {
            let code = node.single_type().map(|t| t.code.as_str());
            match code.and_then(|c| self.type_sd_for(node, c)) {
                Some(t) => (t, 0),
                None => return,
            }
        } else {
            (s.clone(), content)
        };
        for &c in &host.el(host_el).children {
            let child = host.el(c);
            if child.name == name {
                out.push((host.clone(), c));
                for &sl in &child.slices {
                    out.push((host.clone(), sl));
                }
            }
        }
    }

    fn type_sd_for(&self, node: &Element, code: &str) -> Option<Arc<StructureDef>> {
        let profiled = node
            .single_type()
            .and_then(|t| t.profiles.first())
            .and_then(|p| self.defs.structure_definition(p));
        profiled
            .or_else(|| self.defs.type_definition(code))
            .cloned()
    }

    fn value_discriminator(
        &self,
        sd: &Arc<StructureDef>,
        slice: usize,
        path: &str,
        item: &Value,
    ) -> bool {
        let slice_el = sd.el(slice);
        // Extensions are sliced by url: the url comes from the slice's extension profile.
        if path == "url"
            && let Some(profile) = slice_el
                .single_type()
                .filter(|t| t.code == "Extension")
                .and_then(|t| t.profiles.first())
        {
            let fixed_url = self
                .definitions_at(sd, slice, "url")
                .into_iter()
                .find_map(|(s, e)| s.el(e).fixed.as_ref().map(|(_, v)| v.clone()));
            let want = fixed_url
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or(profile.as_str());
            return item["url"].as_str() == Some(want);
        }
        let defs = self.definitions_at(sd, slice, path);
        let actual = self.values_at(item, path);
        let mut required = false;
        for (s, e) in &defs {
            let e = s.el(*e);
            if let Some((_, fixed)) = &e.fixed {
                required = true;
                if actual
                    .iter()
                    .any(|a| *a == fixed || numbers_equal(a, fixed))
                {
                    return true;
                }
            }
            if let Some((_, pattern)) = &e.pattern {
                required = true;
                if actual.iter().any(|a| matches_pattern(a, pattern)) {
                    return true;
                }
            }
        }
        if required {
            return false;
        }
        // A required binding can discriminate too.
        for (s, e) in &defs {
            let e = s.el(*e);
            if let Some(b) = &e.binding
                && b.strength == Strength::Required
                && let Some(vs) = &b.value_set
            {
                return actual.iter().any(|a| {
                    a.as_str().is_some_and(|code| {
                        self.defs.validate_code(vs, None, code) == Membership::Member
                    })
                });
            }
        }
        // The slice fixes nothing at this path, so the discriminator does not tell slices
        // apart (Kanta's macronutrient profile slices coding by system and code but fixes
        // only the system).
        true
    }
}

impl<'a> Run<'_, 'a> {
    /// Values reached from `item` by a discriminator path, arrays flattened.
    fn values_at<'v>(&self, item: &'v Value, path: &str) -> Vec<&'v Value>
    where
        'a: 'v,
    {
        if !path.contains('(') {
            return values_at(item, path);
        }
        self.typed_values_at(item, path)
            .into_iter()
            .map(|(v, _)| v)
            .collect()
    }

    /// Values reached from `item` by a discriminator path, each with the type a choice
    /// name gave it (`valueQuantity` → `Quantity`). Besides property names a path may use
    /// `extension('url')`, `ofType(Type)`, `resolve()` (a contained resource or a Bundle
    /// entry) and `$this`; a path with any other function reaches nothing.
    fn typed_values_at<'v>(&self, item: &'v Value, path: &str) -> Vec<(&'v Value, Option<&'v str>)>
    where
        'a: 'v,
    {
        let mut current: Vec<(&'v Value, Option<&'v str>)> = vec![(item, None)];
        let Some(steps) = PathStep::parse(path) else {
            return Vec::new();
        };
        for step in &steps {
            let mut next = Vec::new();
            for (v, hint) in current {
                match step {
                    PathStep::This => next.push((v, hint)),
                    PathStep::Name(name) => {
                        let Value::Object(m) = v else { continue };
                        let (hit, hint) = match m.get(name.as_str()) {
                            Some(x) => (Some(x), None),
                            None => m
                                .iter()
                                .find_map(|(k, x)| {
                                    let t = k.strip_prefix(name.as_str())?;
                                    t.starts_with(|c: char| c.is_ascii_uppercase())
                                        .then_some((Some(x), Some(t)))
                                })
                                .unwrap_or((None, None)),
                        };
                        match hit {
                            Some(Value::Array(a)) => next.extend(a.iter().map(|x| (x, hint))),
                            Some(x) => next.push((x, hint)),
                            None => {}
                        }
                    }
                    PathStep::Extension(url) => {
                        let extensions = v.get("extension").and_then(Value::as_array);
                        next.extend(
                            extensions
                                .into_iter()
                                .flatten()
                                .filter(|x| x["url"].as_str() == Some(url.as_str()))
                                .map(|x| (x, None)),
                        );
                    }
                    PathStep::OfType(t) => {
                        let actual = hint.or_else(|| v["resourceType"].as_str());
                        if actual.is_none_or(|a| same_type(a, t)) {
                            next.push((v, hint));
                        }
                    }
                    PathStep::Resolve => {
                        if let Some(target) = v["reference"].as_str().and_then(|r| self.resolve(r))
                        {
                            next.push((target, None));
                        }
                    }
                }
            }
            current = next;
        }
        current
    }

    /// The resource a literal reference names inside what is being validated: a contained
    /// resource (`#id`) or an entry of the enclosing Bundle (by `fullUrl` or `Type/id`).
    fn resolve(&self, reference: &str) -> Option<&'a Value> {
        if let Some(id) = reference.strip_prefix('#') {
            let container = self.frames.iter().rev().find(|f| !f.contained)?;
            return container.resource["contained"]
                .as_array()?
                .iter()
                .find(|c| c["id"].as_str() == Some(id));
        }
        let bundle = self
            .frames
            .iter()
            .rev()
            .find(|f| f.resource["resourceType"] == "Bundle")?;
        let entries = bundle.resource["entry"].as_array()?;
        entries.iter().find_map(|e| {
            let resource = e.get("resource")?;
            let by_full_url = e["fullUrl"].as_str() == Some(reference);
            let by_id = match (resource["resourceType"].as_str(), resource["id"].as_str()) {
                (Some(t), Some(id)) => reference
                    .strip_suffix(id)
                    .and_then(|r| r.strip_suffix('/'))
                    .is_some_and(|r| r == t || r.strip_suffix(t).is_some_and(|p| p.ends_with('/'))),
                _ => false,
            };
            (by_full_url || by_id).then_some(resource)
        })
    }
}

/// One step of a discriminator path.
#[derive(Debug, PartialEq)]
enum PathStep {
    This,
    Name(String),
    Extension(String),
    OfType(String),
    Resolve,
}

impl PathStep {
    /// `code.coding`, `extension('http://…').value`, `value.ofType(Quantity)`,
    /// `item.resolve()`; `None` for a function we do not know.
    fn parse(path: &str) -> Option<Vec<PathStep>> {
        let mut steps = Vec::new();
        let mut rest = path.trim();
        while !rest.is_empty() {
            // A step ends at the first '.' outside quotes and parentheses.
            let (mut depth, mut quote, mut end) = (0usize, None, rest.len());
            for (i, c) in rest.char_indices() {
                match (c, quote) {
                    ('\'' | '"', None) => quote = Some(c),
                    (c, Some(q)) if c == q => quote = None,
                    (_, Some(_)) => {}
                    ('(', None) => depth += 1,
                    (')', None) => depth = depth.saturating_sub(1),
                    ('.', None) if depth == 0 => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let step = rest.get(..end)?.trim();
            rest = rest.get(end..)?.strip_prefix('.').unwrap_or_default();
            steps.push(match step.split_once('(') {
                None if step == "$this" => PathStep::This,
                None => PathStep::Name(step.to_string()),
                Some((function, args)) => {
                    let arg = args.strip_suffix(')')?.trim();
                    let unquoted = arg
                        .strip_prefix('\'')
                        .and_then(|a| a.strip_suffix('\''))
                        .or_else(|| arg.strip_prefix('"').and_then(|a| a.strip_suffix('"')));
                    match function.trim() {
                        "extension" => PathStep::Extension(unquoted?.to_string()),
                        "ofType" => {
                            let t = arg.strip_prefix("FHIR.").unwrap_or(arg);
                            PathStep::OfType(t.to_string())
                        }
                        "resolve" if arg.is_empty() => PathStep::Resolve,
                        _ => return None,
                    }
                }
            });
        }
        Some(steps)
    }
}

/// Type names as the definitions write them (`string`, `Quantity`) and as choice names
/// carry them (`String`, `Quantity`).
fn same_type(a: &str, b: &str) -> bool {
    let mut x = a.chars();
    let mut y = b.chars();
    match (x.next(), y.next()) {
        (Some(p), Some(q)) => p.eq_ignore_ascii_case(&q) && x.as_str() == y.as_str(),
        _ => a == b,
    }
}

/// Values reached from `item` by a discriminator path of property names (`$this`,
/// `code.coding.system`), arrays flattened.
fn values_at<'v>(item: &'v Value, path: &str) -> Vec<&'v Value> {
    let mut current = vec![item];
    if path == "$this" {
        return current;
    }
    for seg in path.split('.') {
        let seg = seg.trim();
        let mut next = Vec::new();
        for v in current {
            if let Value::Object(m) = v {
                let hit = m.get(seg).or_else(|| {
                    m.iter()
                        .find(|(k, _)| {
                            k.strip_prefix(seg)
                                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_uppercase()))
                        })
                        .map(|(_, v)| v)
                });
                match hit {
                    Some(Value::Array(a)) => next.extend(a.iter()),
                    Some(x) => next.push(x),
                    None => {}
                }
            }
        }
        current = next;
    }
    current
}

/// How a value compares with a `minValue[x]`/`maxValue[x]` limit: numbers by value, dates,
/// dateTimes and instants by the instant they start, times by clock time; `None` when they
/// cannot be compared.
fn compare_limit(type_code: &str, v: &Value, limit: &Value) -> Option<std::cmp::Ordering> {
    match (v, limit) {
        (Value::Number(_), Value::Number(_)) => number(v)?.partial_cmp(&number(limit)?),
        (Value::String(a), Value::String(b)) if type_code == "time" => {
            let a = crate::datetime::parse_time(a).ok()?;
            let b = crate::datetime::parse_time(b).ok()?;
            Some(
                (a.hour, a.minute, a.second, a.micros).cmp(&(b.hour, b.minute, b.second, b.micros)),
            )
        }
        (Value::String(a), Value::String(b)) => {
            let a = crate::datetime::parse(a).ok()?;
            let b = crate::datetime::parse(b).ok()?;
            Some(a.low_micros(0).cmp(&b.low_micros(0)))
        }
        _ => None,
    }
}

/// Whether an element path of a definition (`Observation.value[x]`, `Observation.component`)
/// names the instance element path `host` (`Observation.valueQuantity`).
fn same_element_path(definition: &str, host: &str) -> bool {
    let mut a = definition.split('.');
    let mut b = host.split('.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(d), Some(h)) => {
                let same = d == h
                    || d.strip_suffix("[x]").is_some_and(|base| {
                        h.strip_prefix(base)
                            .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))
                    });
                if !same {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// FHIRPath's order of two date/time values: instants when both have a time (seconds and
/// fractions are one precision), else the calendar parts both have; `None` when they differ
/// in precision but agree as far as both go.
fn fhirpath_order(
    a: &crate::datetime::DateTime,
    b: &crate::datetime::DateTime,
) -> Option<std::cmp::Ordering> {
    use crate::datetime::Precision;
    let has_time = |d: &crate::datetime::DateTime| d.precision >= Precision::Second;
    if has_time(a) && has_time(b) {
        return Some(a.low_micros(0).cmp(&b.low_micros(0)));
    }
    let common = a.precision.min(b.precision);
    let key = |d: &crate::datetime::DateTime| match common {
        Precision::Year => (d.year, 0, 0),
        Precision::Month => (d.year, d.month, 0),
        _ => (d.year, d.month, d.day),
    };
    let order = key(a).cmp(&key(b));
    let same_precision = a.precision.min(Precision::Second) == b.precision.min(Precision::Second);
    (order != std::cmp::Ordering::Equal || same_precision).then_some(order)
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_str().parse().ok(),
        _ => None,
    }
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_str().parse::<f64>().ok() == y.as_str().parse::<f64>().ok()
        }
        _ => false,
    }
}

/// FHIR pattern matching: every property of the pattern is in the value; a pattern array
/// item must match some item of the value's array.
pub fn matches_pattern(value: &Value, pattern: &Value) -> bool {
    match (value, pattern) {
        (Value::Object(v), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| matches_pattern(vv, pv))),
        (Value::Array(v), Value::Array(p)) => p
            .iter()
            .all(|pi| v.iter().any(|vi| matches_pattern(vi, pi))),
        (Value::Number(_), Value::Number(_)) => value == pattern || numbers_equal(value, pattern),
        _ => value == pattern,
    }
}

enum ReferenceForm<'r> {
    /// `Type/id` or `Type/id/_history/vid`.
    Relative(&'r str),
    /// An absolute URL; the type when it ends in `Type/id`.
    Absolute(Option<&'r str>),
}

fn parse_reference(r: &str) -> Option<ReferenceForm<'_>> {
    if r.is_empty() || r.chars().any(char::is_whitespace) {
        return None;
    }
    if let Some((scheme, rest)) = r.split_once("://") {
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'+')
        {
            return None;
        }
        let mut parts: Vec<&str> = rest.split('/').collect();
        if parts.len() >= 4 && parts.iter().rev().nth(1) == Some(&"_history") {
            parts.truncate(parts.len() - 2);
        }
        let t = parts
            .iter()
            .rev()
            .nth(1)
            .copied()
            .filter(|_| parts.len() >= 3);
        return Some(ReferenceForm::Absolute(t));
    }
    let parts: Vec<&str> = r.split('/').collect();
    let valid_id = |id: &str| {
        !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
    };
    match parts.as_slice() {
        [t, id] if valid_id(id) => Some(ReferenceForm::Relative(t)),
        [t, id, "_history", vid] if valid_id(id) && valid_id(vid) => {
            Some(ReferenceForm::Relative(t))
        }
        _ => None,
    }
}

/// References in `v` for dom-3: `reference` values, and canonical/uri values that point at
/// a contained resource (`answerValueSet: "#options"`); narrative is not looked into.
fn collect_references(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == "reference" || s.starts_with('#') => {
                        out.insert(s.clone());
                    }
                    _ if k == "div" => {}
                    _ => collect_references(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_references(x, out)),
        Value::String(s) if s.starts_with('#') => {
            out.insert(s.clone());
        }
        _ => {}
    }
}

/// True when `el` is the logical `id` of a resource (typed `string` in R4's definitions but
/// defined as `id` by the specification).
fn is_resource_id(sd: &StructureDef, el: &Element) -> bool {
    sd.kind == SdKind::Resource && el.name == "id" && !el.path[..el.path.len() - 3].contains('.')
}

/// Choice flags for a simple invariant path from element `el` of `sd` (see
/// `invariant::compile`): `None` when a name is unknown or passes through a choice.
fn choice_flags(
    defs: &Definitions,
    sd: &Arc<StructureDef>,
    el: usize,
    names: &[&str],
) -> Option<Vec<bool>> {
    let mut host = sd.clone();
    let mut node = sd.content_of(el);
    let mut flags = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        if host.el(node).children.is_empty() {
            let code = host.el(node).single_type()?.code.clone();
            host = defs.type_definition(&code)?.clone();
            node = 0;
        }
        let child = host
            .el(node)
            .children
            .iter()
            .copied()
            .find(|&c| host.el(c).name == *name)?;
        let is_choice = host.el(child).is_choice;
        flags.push(is_choice);
        if i + 1 < names.len() {
            if is_choice {
                return None;
            }
            node = host.content_of(child);
        }
    }
    if !names.is_empty() && sd.el(el).types.len() > 1 {
        return None;
    }
    Some(flags)
}
