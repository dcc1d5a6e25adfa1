//! Search request parsing: the decoded `(name, value)` pairs of a search (query string or
//! `_search` form body) become a [`SearchQuery`] or the issues that explain why not.
//!
//! Covered: every parameter type; prefixes `eq ne gt lt ge le sa eb ap`; OR by commas (with
//! `\,` escaping), AND by repetition; the modifiers the R4 search rules allow per type
//! (anything else is an error); `_sort`, `_count`, `_total`, `_summary`, `_elements`,
//! `_include` / `_revinclude` (with `:iterate`); one level of chaining and `_has`; and Kanta's
//! rules (`patient` mandatory for some types and setting the compartment, default code
//! systems).
//!
//! Strictness is that of Kanta's HAPI-based server: whatever the server would have to ignore
//! (an unknown or unsupported parameter, `_sort` key, `_elements` name, `_include=*`) is an
//! error naming what is supported, unless the client asked for `Prefer: handling=lenient`
//! ([`ParseOptions::lenient`]), which ignores it with a warning. A `_count` above the maximum
//! is lowered silently and a parameter without a value is skipped silently, in both modes.
//! Parameters the server itself handles (`_format`, `_pretty`, paging cursors) are accepted
//! silently.

use phr_fhir::{Issue, IssueType};

use crate::dates;
use crate::kanta;
use crate::model::{
    Chain, Clause, Include, Modifier, Prefix, QueryValue, SearchQuery, SortKey, Summary,
    TokenSystem, TotalMode,
};
use crate::numbers;
use crate::registry::{ParamType, Registry, SearchParam, prefix_from_code};
use crate::text::normalize;
use crate::values::split_reference;

/// Parameters the HTTP layer handles; known, never reported as unknown.
pub const SERVER_PARAMETERS: &[&str] = &["_format", "_pretty", "_page", "_cursor"];

/// Search parameters R4 defines that this server does not implement.
const UNSUPPORTED_RESULT_PARAMETERS: &[&str] = &[
    "_contained",
    "_containedType",
    "_text",
    "_content",
    "_list",
    "_query",
    "_filter",
    "_type",
    "_score",
];

/// The search result parameters this parser handles, named when a parameter is refused.
const RESULT_PARAMETERS: &[&str] = &[
    "_count",
    "_elements",
    "_include",
    "_revinclude",
    "_sort",
    "_summary",
    "_total",
];

#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// `Prefer: handling=lenient`: unknown or unsupported parameters are ignored with a
    /// warning instead of being errors.
    pub lenient: bool,
    /// Page size when `_count` is absent.
    pub default_count: usize,
    /// The largest `_count` honoured; larger values are lowered to it silently.
    pub max_count: usize,
    /// Kanta PHR rules: `patient` mandatory for Observation, MedicationAdministration,
    /// QuestionnaireResponse and CarePlan; default code systems for `code`.
    pub kanta_rules: bool,
    /// The server's FHIR base (`https://phr.example/fhir/r4`): absolute references to it
    /// are read as local ones.
    pub base_url: Option<String>,
    /// Parameters the HTTP layer handles (default [`SERVER_PARAMETERS`]).
    pub server_parameters: Vec<String>,
    /// The Patient compartment the search is confined to by its path
    /// (`Patient/[id]/[type]`): as if `patient=[id]` came first, so Kanta's mandatory
    /// `patient` is satisfied and a `patient` parameter must name the same Patient.
    pub compartment: Option<String>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            lenient: false,
            default_count: 50,
            max_count: 1000,
            kanta_rules: true,
            base_url: None,
            server_parameters: SERVER_PARAMETERS.iter().map(|s| s.to_string()).collect(),
            compartment: None,
        }
    }
}

/// A parsed search and the warnings it raised (what `lenient` ignored).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSearch {
    pub query: SearchQuery,
    pub warnings: Vec<Issue>,
}

/// Parses a search on `resource_type` with the global registry.
pub fn parse(
    resource_type: &str,
    params: &[(String, String)],
    options: &ParseOptions,
) -> Result<ParsedSearch, Vec<Issue>> {
    Registry::global().parse_search(resource_type, params, options)
}

impl Registry {
    /// Parses the decoded `(name, value)` pairs of a search on `resource_type`. On failure
    /// returns every issue found (errors first), not just the first.
    pub fn parse_search(
        &self,
        resource_type: &str,
        params: &[(String, String)],
        options: &ParseOptions,
    ) -> Result<ParsedSearch, Vec<Issue>> {
        let mut p = Parser {
            registry: self,
            rt: resource_type,
            options,
            query: SearchQuery {
                resource_type: resource_type.to_string(),
                compartment: options.compartment.clone(),
                count: options.default_count.min(options.max_count),
                ..SearchQuery::default()
            },
            errors: Vec::new(),
            warnings: Vec::new(),
            seen_result_params: Vec::new(),
            patient_rejected: false,
        };
        if !self.is_resource_type(resource_type) {
            return Err(vec![Issue::error(
                IssueType::NotSupported,
                format!("'{resource_type}' is not a resource type"),
            )]);
        }
        for (name, value) in params {
            p.parameter(name, value);
        }
        if options.kanta_rules
            && kanta::patient_required(resource_type)
            && p.query.compartment.is_none()
            && !p.patient_rejected
        {
            p.errors.push(Issue::error(
                IssueType::Required,
                format!(
                    "searching {resource_type} requires the patient parameter (patient=<Patient id>)"
                ),
            ));
        }
        if p.errors.is_empty() {
            Ok(ParsedSearch {
                query: p.query,
                warnings: p.warnings,
            })
        } else {
            let mut all = p.errors;
            all.extend(p.warnings);
            Err(all)
        }
    }
}

struct Parser<'a> {
    registry: &'a Registry,
    rt: &'a str,
    options: &'a ParseOptions,
    query: SearchQuery,
    errors: Vec<Issue>,
    warnings: Vec<Issue>,
    seen_result_params: Vec<&'static str>,
    /// A `patient` parameter was rejected (so its absence is not reported again).
    patient_rejected: bool,
}

fn invalid(message: String) -> Issue {
    Issue::error(IssueType::Invalid, message)
}

impl<'a> Parser<'a> {
    /// Something the server cannot honour: an error saying what is supported (`supported`),
    /// or, when lenient, a warning that it was ignored.
    fn ignored(&mut self, message: String, supported: String) {
        if self.options.lenient {
            self.warnings.push(Issue::warning(
                IssueType::NotSupported,
                format!("{message}: ignored"),
            ));
        } else {
            self.errors.push(Issue::error(
                IssueType::NotSupported,
                format!("{message}. {supported}"),
            ));
        }
    }

    /// The parameters a search on `rt` may use, for an error message.
    fn supported_parameters(&self, rt: &str) -> String {
        let params: Vec<&str> = self
            .registry
            .supported_params(rt)
            .map(|p| p.code.as_str())
            .collect();
        format!(
            "Valid search parameters for {rt} are: {}; result parameters: {}",
            params.join(", "),
            RESULT_PARAMETERS.join(", ")
        )
    }

    /// The parameters `rt` can be sorted by, for an error message.
    fn sortable_parameters(&self) -> String {
        let params: Vec<&str> = self
            .registry
            .supported_params(self.rt)
            .filter(|p| sortable(p))
            .map(|p| p.code.as_str())
            .collect();
        format!("{} can be sorted by: {}", self.rt, params.join(", "))
    }

    fn once(&mut self, name: &'static str) -> bool {
        if self.seen_result_params.contains(&name) {
            self.errors
                .push(invalid(format!("{name} may be given only once")));
            false
        } else {
            self.seen_result_params.push(name);
            true
        }
    }

    fn parameter(&mut self, name: &str, value: &str) {
        if self.options.server_parameters.iter().any(|s| s == name) {
            return;
        }
        match name {
            "_sort" => return self.sort(value),
            "_count" => return self.count(value),
            "_total" => return self.total(value),
            "_summary" => return self.summary(value),
            "_elements" => return self.elements(value),
            "_include" | "_revinclude" => return self.include(name, value, false),
            "_include:iterate" | "_include:recurse" => {
                return self.include("_include", value, true);
            }
            "_revinclude:iterate" | "_revinclude:recurse" => {
                return self.include("_revinclude", value, true);
            }
            _ => {}
        }
        if UNSUPPORTED_RESULT_PARAMETERS.contains(&name.split(':').next().unwrap_or(name)) {
            let supported = self.supported_parameters(self.rt);
            return self.ignored(
                format!("search parameter '{name}' is not supported"),
                supported,
            );
        }
        // A parameter without a value asks for nothing (HAPI skips it too).
        if value.is_empty() {
            return;
        }
        if let Some(rest) = name.strip_prefix("_has:") {
            return self.has(name, rest, value);
        }
        match name.split_once('.') {
            Some((left, right)) => self.chain(name, left, right, value),
            None => self.plain(name, value),
        }
    }

    fn plain(&mut self, name: &str, value: &str) {
        let (code, modifier_text) = split_modifier(name);
        let Some(param) = self.find(self.rt, code, name) else {
            return;
        };
        let modifier = match modifier_text.map(|m| self.modifier(param, m, name, value)) {
            Some(Ok(m)) => Some(m),
            Some(Err(issue)) => return self.errors.push(issue),
            None => None,
        };
        let clause = match self.clause(param, modifier, name, value) {
            Ok(c) => c,
            Err(issues) => {
                self.patient_rejected |= code == "patient";
                return self.errors.extend(issues);
            }
        };
        if !self.compartment(param, &clause) {
            self.query.clauses.push(clause);
        }
    }

    /// `patient=<id>`: the compartment the search is confined to. Returns true when the
    /// clause became the compartment.
    fn compartment(&mut self, param: &SearchParam, clause: &Clause) -> bool {
        let is_patient = param.code == "patient"
            && param.param_type == ParamType::Reference
            && matches!(clause.modifier, None | Some(Modifier::Type));
        if !is_patient {
            return false;
        }
        let ids: Vec<&str> = clause
            .values
            .iter()
            .filter_map(|v| match v {
                QueryValue::Reference {
                    target_type: Some(t),
                    id,
                    url: None,
                    ..
                } if t == "Patient" && !id.is_empty() => Some(id.as_str()),
                _ => None,
            })
            .collect();
        let [id] = ids.as_slice() else {
            if self.options.kanta_rules {
                self.errors.push(invalid(
                    "patient must name exactly one local Patient (patient=<id>)".to_string(),
                ));
                self.patient_rejected = true;
                return true;
            }
            return false;
        };
        if clause.values.len() != 1 {
            return false;
        }
        match &self.query.compartment {
            Some(existing) if existing != id => {
                self.errors.push(invalid(format!(
                    "patient is given twice with different values ('{existing}' and '{id}')"
                )));
                self.patient_rejected = true;
            }
            _ => self.query.compartment = Some((*id).to_string()),
        }
        true
    }

    /// Looks up a parameter; reports unknown and unsupported ones.
    fn find(&mut self, rt: &str, code: &str, name: &str) -> Option<&'a SearchParam> {
        let registry: &'a Registry = self.registry;
        match registry.param(rt, code) {
            Some(p) if p.is_supported() => Some(p),
            Some(_) => {
                let supported = self.supported_parameters(rt);
                self.ignored(
                    format!("search parameter '{name}' is not supported for {rt}"),
                    supported,
                );
                None
            }
            None => {
                let supported = self.supported_parameters(rt);
                self.ignored(
                    format!("unknown search parameter '{name}' for {rt}"),
                    supported,
                );
                None
            }
        }
    }

    fn modifier(
        &self,
        param: &SearchParam,
        text: &str,
        name: &str,
        value: &str,
    ) -> Result<Modifier, Issue> {
        let modifier = match text {
            "missing" => match value {
                "true" => Modifier::Missing(true),
                "false" => Modifier::Missing(false),
                _ => {
                    return Err(invalid(format!(
                        "{name}: :missing takes true or false, not '{value}'"
                    )));
                }
            },
            "exact" => Modifier::Exact,
            "contains" => Modifier::Contains,
            "text" => Modifier::Text,
            "not" => Modifier::Not,
            "above" => Modifier::Above,
            "below" => Modifier::Below,
            "in" => Modifier::In,
            "not-in" => Modifier::NotIn,
            "of-type" => Modifier::OfType,
            "identifier" => Modifier::Identifier,
            t if self.registry.is_resource_type(t) => {
                if param.param_type == ParamType::Reference
                    && !param.targets.is_empty()
                    && !param.targets.iter().any(|x| x == t)
                {
                    return Err(invalid(format!(
                        "{name}: {} cannot refer to a {t} (it refers to {})",
                        param.code,
                        param.targets.join(", ")
                    )));
                }
                Modifier::Type
            }
            other => {
                return Err(invalid(format!("{name}: unknown modifier ':{other}'")));
            }
        };
        if !param.allows(&modifier) {
            return Err(invalid(format!(
                "{name}: modifier ':{text}' cannot be used on the {} parameter {} (allowed: {})",
                param.param_type.code(),
                param.code,
                param.modifier_names().join(", ")
            )));
        }
        Ok(modifier)
    }

    /// Builds the clause for `param` with the comma-separated OR values in `value`.
    fn clause(
        &self,
        param: &SearchParam,
        modifier: Option<Modifier>,
        name: &str,
        value: &str,
    ) -> Result<Clause, Vec<Issue>> {
        let mut values = Vec::new();
        if !matches!(modifier, Some(Modifier::Missing(_))) {
            let mut issues = Vec::new();
            for raw in split_escaped(value, ',') {
                if raw.is_empty() {
                    issues.push(invalid(format!(
                        "{name}: empty value in the list '{value}'"
                    )));
                    continue;
                }
                let type_name = match (modifier, name.split_once(':')) {
                    (Some(Modifier::Type), Some((_, t))) => Some(t),
                    _ => None,
                };
                match self.value(param, modifier, type_name, raw) {
                    Ok(v) => values.push(v),
                    Err(why) => issues.push(invalid(format!("{name}: {why}"))),
                }
            }
            if !issues.is_empty() {
                return Err(issues);
            }
        }
        Ok(Clause {
            param: param.code.clone(),
            modifier,
            chain: None,
            values,
        })
    }

    /// One value of `param` (escapes still in `raw`).
    fn value(
        &self,
        param: &SearchParam,
        modifier: Option<Modifier>,
        type_modifier: Option<&str>,
        raw: &str,
    ) -> Result<QueryValue, String> {
        match (param.param_type, modifier) {
            // The text to find in Coding.display / CodeableConcept.text, normalized.
            (ParamType::Token, Some(Modifier::Text)) => Ok(QueryValue::Token {
                system: None,
                code: Some(normalize(&unescape(raw))),
            }),
            (ParamType::Token, Some(Modifier::In | Modifier::NotIn)) => {
                Ok(QueryValue::Uri(unescape(raw)))
            }
            (ParamType::Token, Some(Modifier::OfType)) => {
                let parts = split_escaped(raw, '|');
                let [system, code, value] = parts.as_slice() else {
                    return Err(format!(
                        "'{raw}' is not system|code|value (the identifier type and the value)"
                    ));
                };
                if code.is_empty() || value.is_empty() {
                    return Err(format!("'{raw}' needs a type code and a value"));
                }
                Ok(QueryValue::Composite(vec![
                    QueryValue::Token {
                        system: (!system.is_empty()).then(|| TokenSystem::Is(unescape(system))),
                        code: Some(unescape(code)),
                    },
                    QueryValue::Token {
                        system: None,
                        code: Some(unescape(value)),
                    },
                ]))
            }
            (ParamType::Token, _) => token_value(raw, self.default_system(param)),
            (ParamType::String, Some(Modifier::Exact)) => Ok(QueryValue::String(unescape(raw))),
            (ParamType::String, _) => Ok(QueryValue::String(normalize(&unescape(raw)))),
            (ParamType::Uri, _) => Ok(QueryValue::Uri(unescape(raw))),
            (ParamType::Date, _) => date_value(param, raw),
            (ParamType::Number, _) => {
                let (prefix, text) = prefixed(param, raw)?;
                let d = numbers::parse(text).map_err(|e| e.to_string())?;
                Ok(QueryValue::Number {
                    prefix,
                    value: d.value,
                    low: d.low,
                    high: d.high,
                })
            }
            (ParamType::Quantity, _) => quantity_value(param, raw),
            (ParamType::Reference, Some(Modifier::Identifier)) => token_value(raw, None),
            (ParamType::Reference, Some(Modifier::Above | Modifier::Below)) => {
                Ok(QueryValue::Uri(unescape(raw)))
            }
            (ParamType::Reference, _) => self.reference_value(param, type_modifier, &unescape(raw)),
            (ParamType::Composite, _) => self.composite_value(param, raw),
            (ParamType::Special, _) => Err("special parameters are not supported".into()),
        }
    }

    fn default_system(&self, param: &SearchParam) -> Option<&'static str> {
        if self.options.kanta_rules && param.code == "code" {
            kanta::default_code_system(&param.resource_type)
        } else {
            None
        }
    }

    fn reference_value(
        &self,
        param: &SearchParam,
        type_modifier: Option<&str>,
        text: &str,
    ) -> Result<QueryValue, String> {
        let local = match &self.options.base_url {
            Some(base) => text
                .strip_prefix(base.trim_end_matches('/'))
                .and_then(|rest| rest.strip_prefix('/'))
                .unwrap_or(text),
            None => text,
        };
        let mut parts =
            split_reference(local).ok_or_else(|| format!("'{text}' is not a reference"))?;
        if let Some(t) = type_modifier {
            match &parts.target_type {
                Some(written) if written != t => {
                    return Err(format!("'{text}' is not a {t} reference"));
                }
                _ => parts.target_type = Some(t.to_string()),
            }
        }
        if parts.target_type.is_none()
            && parts.url.is_none()
            && let [only] = param.targets.as_slice()
        {
            parts.target_type = Some(only.clone());
        }
        if let Some(t) = &parts.target_type
            && parts.url.is_none()
            && !param.targets.is_empty()
            && !param.targets.contains(t)
        {
            return Err(format!(
                "{} cannot refer to a {t} (it refers to {})",
                param.code,
                param.targets.join(", ")
            ));
        }
        Ok(QueryValue::Reference {
            target_type: parts.target_type,
            id: parts.id,
            version: parts.version,
            url: parts.url,
        })
    }

    fn composite_value(&self, param: &SearchParam, raw: &str) -> Result<QueryValue, String> {
        let parts = split_escaped(raw, '$');
        if parts.len() != param.components.len() {
            return Err(format!(
                "'{raw}' needs {} parts separated by '$'",
                param.components.len()
            ));
        }
        let mut out = Vec::with_capacity(parts.len());
        for (part, component) in parts.iter().zip(&param.components) {
            let v = match component.param_type {
                ParamType::Token => token_value(part, None)?,
                ParamType::Date => date_value(param, part)?,
                ParamType::Quantity => quantity_value(param, part)?,
                ParamType::Number => {
                    let (prefix, text) = prefixed(param, part)?;
                    let d = numbers::parse(text).map_err(|e| e.to_string())?;
                    QueryValue::Number {
                        prefix,
                        value: d.value,
                        low: d.low,
                        high: d.high,
                    }
                }
                ParamType::String => QueryValue::String(normalize(&unescape(part))),
                ParamType::Uri => QueryValue::Uri(unescape(part)),
                ParamType::Reference => {
                    let parts = split_reference(&unescape(part))
                        .ok_or_else(|| format!("'{part}' is not a reference"))?;
                    parts_to_query(parts)
                }
                ParamType::Composite | ParamType::Special => {
                    return Err("nested composites are not supported".into());
                }
            };
            out.push(v);
        }
        Ok(QueryValue::Composite(out))
    }

    /// `subject:Patient.identifier=x` / `subject.identifier=x`.
    fn chain(&mut self, name: &str, left: &str, right: &str, value: &str) {
        if right.contains('.') {
            return self.errors.push(invalid(format!(
                "{name}: only one level of chaining is supported"
            )));
        }
        let (code, type_text) = split_modifier(left);
        let Some(param) = self.find(self.rt, code, name) else {
            return;
        };
        if param.param_type != ParamType::Reference {
            return self.errors.push(invalid(format!(
                "{name}: {code} is a {} parameter; only references can be chained",
                param.param_type.code()
            )));
        }
        let (inner_code, inner_modifier) = split_modifier(right);
        let candidates: Vec<String> = match type_text {
            Some(t) => {
                if !self.registry.is_resource_type(t) {
                    return self
                        .errors
                        .push(invalid(format!("{name}: '{t}' is not a resource type")));
                }
                if !param.targets.is_empty() && !param.targets.iter().any(|x| x == t) {
                    return self.errors.push(invalid(format!(
                        "{name}: {code} cannot refer to a {t} (it refers to {})",
                        param.targets.join(", ")
                    )));
                }
                vec![t.to_string()]
            }
            None => param
                .targets
                .iter()
                .filter(|t| {
                    self.registry
                        .param(t, inner_code)
                        .is_some_and(SearchParam::is_supported)
                })
                .cloned()
                .collect(),
        };
        let Some(first) = candidates.first() else {
            return self.ignored(
                format!(
                    "search parameter '{name}': no type {code} refers to has a parameter '{inner_code}'"
                ),
                format!("{code} refers to {}", param.targets.join(", ")),
            );
        };
        let Some(inner) = self.find(first, inner_code, name) else {
            return;
        };
        let inner_type = inner.param_type;
        if candidates
            .iter()
            .any(|t| self.registry.param(t, inner_code).map(|p| p.param_type) != Some(inner_type))
        {
            return self.errors.push(invalid(format!(
                "{name}: '{inner_code}' has different types on the types {code} refers to; name one ({code}:Type.{inner_code})"
            )));
        }
        let Some(inner_clause) = self.inner_clause(inner, inner_modifier, name, value) else {
            return;
        };
        let target_type = match candidates.as_slice() {
            [only] => only.clone(),
            _ => String::new(),
        };
        self.query.clauses.push(Clause {
            param: param.code.clone(),
            modifier: None,
            chain: Some(Box::new(Chain::Forward {
                target_type,
                inner: inner_clause,
            })),
            values: Vec::new(),
        });
    }

    fn inner_clause(
        &mut self,
        inner: &SearchParam,
        modifier_text: Option<&str>,
        name: &str,
        value: &str,
    ) -> Option<Clause> {
        let modifier = match modifier_text.map(|m| self.modifier(inner, m, name, value)) {
            Some(Ok(m)) => Some(m),
            Some(Err(issue)) => {
                self.errors.push(issue);
                return None;
            }
            None => None,
        };
        match self.clause(inner, modifier, name, value) {
            Ok(c) => Some(c),
            Err(issues) => {
                self.errors.extend(issues);
                None
            }
        }
    }

    /// `_has:Observation:patient:code=1234-5`.
    fn has(&mut self, name: &str, rest: &str, value: &str) {
        let parts: Vec<&str> = rest.splitn(3, ':').collect();
        let [source, reference_code, inner_text] = parts.as_slice() else {
            return self.errors.push(invalid(format!(
                "{name}: write _has:Type:reference:parameter=value"
            )));
        };
        if inner_text.starts_with("_has") {
            return self.errors.push(invalid(format!(
                "{name}: only one level of _has is supported"
            )));
        }
        if !self.registry.is_resource_type(source) {
            return self.errors.push(invalid(format!(
                "{name}: '{source}' is not a resource type"
            )));
        }
        let Some(reference) = self.find(source, reference_code, name) else {
            return;
        };
        if reference.param_type != ParamType::Reference
            || (!reference.targets.is_empty() && !reference.targets.iter().any(|t| t == self.rt))
        {
            return self.errors.push(invalid(format!(
                "{name}: {source}.{reference_code} does not refer to {}",
                self.rt
            )));
        }
        let (inner_code, inner_modifier) = split_modifier(inner_text);
        let Some(inner) = self.find(source, inner_code, name) else {
            return;
        };
        let Some(inner_clause) = self.inner_clause(inner, inner_modifier, name, value) else {
            return;
        };
        self.query.clauses.push(Clause {
            param: "_has".to_string(),
            modifier: None,
            chain: Some(Box::new(Chain::Reverse {
                source_type: source.to_string(),
                reference_param: reference_code.to_string(),
                inner: inner_clause,
            })),
            values: Vec::new(),
        });
    }

    fn sort(&mut self, value: &str) {
        if !self.once("_sort") {
            return;
        }
        for key in value.split(',') {
            let key = key.trim();
            if key.is_empty() {
                continue;
            }
            let (descending, code) = match key.strip_prefix('-') {
                Some(code) => (true, code),
                None => (false, key),
            };
            match self.registry.param(self.rt, code) {
                Some(p) if sortable(p) => {
                    self.query.sort.push(SortKey {
                        param: code.to_string(),
                        descending,
                    });
                }
                Some(_) => {
                    let sortable = self.sortable_parameters();
                    self.ignored(
                        format!("_sort: cannot sort {} by '{code}'", self.rt),
                        sortable,
                    )
                }
                None => {
                    let sortable = self.sortable_parameters();
                    self.ignored(
                        format!("_sort: unknown search parameter '{code}' for {}", self.rt),
                        sortable,
                    )
                }
            }
        }
    }

    fn count(&mut self, value: &str) {
        if !self.once("_count") {
            return;
        }
        match value.trim().parse::<usize>() {
            // Lowered silently, as HAPI does: the `next` link carries on from the page.
            Ok(n) => self.query.count = n.min(self.options.max_count),
            Err(_) => self.errors.push(invalid(format!(
                "_count must be a non-negative whole number, not '{value}'"
            ))),
        }
    }

    fn total(&mut self, value: &str) {
        if !self.once("_total") {
            return;
        }
        self.query.total = match value {
            "none" => TotalMode::None,
            "estimate" => TotalMode::Estimate,
            "accurate" => TotalMode::Accurate,
            other => {
                return self.errors.push(invalid(format!(
                    "_total must be none, estimate or accurate, not '{other}'"
                )));
            }
        };
    }

    fn summary(&mut self, value: &str) {
        if !self.once("_summary") {
            return;
        }
        self.query.summary = match value {
            "true" => Summary::True,
            "false" => Summary::False,
            "count" => Summary::Count,
            "data" => Summary::Data,
            "text" => Summary::Text,
            other => {
                return self.errors.push(invalid(format!(
                    "_summary must be true, false, count, data or text, not '{other}'"
                )));
            }
        };
    }

    fn elements(&mut self, value: &str) {
        let registry: &'a Registry = self.registry;
        let names = registry.element_names(self.rt);
        for element in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let known = names.iter().any(|n| {
                n == element
                    || n.strip_suffix("[x]")
                        .is_some_and(|stem| element.starts_with(stem))
            });
            if known {
                if !self.query.elements.iter().any(|e| e == element) {
                    self.query.elements.push(element.to_string());
                }
            } else {
                self.ignored(
                    format!("_elements: {} has no element '{element}'", self.rt),
                    format!("{} has the elements {}", self.rt, names.join(", ")),
                );
            }
        }
    }

    /// `_include=Source:param[:Target]`, `_revinclude=Source:param[:Target]`.
    fn include(&mut self, name: &str, value: &str, iterate: bool) {
        let reverse = name == "_revinclude";
        let shown = if iterate {
            format!("{name}:iterate")
        } else {
            name.to_string()
        };
        if value == "*" {
            return self.ignored(
                format!("{shown}=* is not supported"),
                format!("name the reference: {shown}=Source:parameter[:Target]"),
            );
        }
        let parts: Vec<&str> = value.split(':').collect();
        let (source, code, target) = match parts.as_slice() {
            [s, c] => (*s, *c, None),
            [s, c, t] => (*s, *c, Some(*t)),
            _ => {
                return self.errors.push(invalid(format!(
                    "{shown}: write Source:parameter[:Target], not '{value}'"
                )));
            }
        };
        if !self.registry.is_resource_type(source) {
            return self.errors.push(invalid(format!(
                "{shown}: '{source}' is not a resource type"
            )));
        }
        if !reverse && !iterate && source != self.rt {
            return self.errors.push(invalid(format!(
                "{shown}: the source type must be {} (the type searched), not {source}; use {name}:iterate for included resources",
                self.rt
            )));
        }
        let Some(param) = self.find(source, code, &format!("{shown}={value}")) else {
            return;
        };
        if param.param_type != ParamType::Reference {
            return self.errors.push(invalid(format!(
                "{shown}: {source}:{code} is not a reference parameter"
            )));
        }
        if let Some(t) = target {
            if !self.registry.is_resource_type(t) {
                return self
                    .errors
                    .push(invalid(format!("{shown}: '{t}' is not a resource type")));
            }
            if !param.targets.is_empty() && !param.targets.iter().any(|x| x == t) {
                return self.errors.push(invalid(format!(
                    "{shown}: {source}:{code} never refers to a {t}"
                )));
            }
        }
        if reverse
            && !iterate
            && !param.targets.is_empty()
            && !param.targets.iter().any(|x| x == self.rt)
        {
            return self.errors.push(invalid(format!(
                "{shown}: {source}:{code} never refers to a {}",
                self.rt
            )));
        }
        let include = Include {
            source_type: source.to_string(),
            param: code.to_string(),
            target_type: target.map(str::to_string),
            iterate,
        };
        if reverse {
            self.query.revinclude.push(include);
        } else {
            self.query.include.push(include);
        }
    }
}

/// Whether results can be sorted by `param`.
fn sortable(param: &SearchParam) -> bool {
    param.is_supported() && !matches!(param.param_type, ParamType::Composite | ParamType::Special)
}

/// `code:modifier` → (`code`, `Some("modifier")`).
fn split_modifier(name: &str) -> (&str, Option<&str>) {
    match name.split_once(':') {
        Some((code, modifier)) => (code, Some(modifier)),
        None => (name, None),
    }
}

/// Splits at `sep` where it is not escaped with a backslash; escapes stay in the parts.
pub(crate) fn split_escaped(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Removes the search escapes `\,` `\|` `\$` `\\`.
pub(crate) fn unescape(text: &str) -> String {
    if !text.contains('\\') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
            && matches!(next, ',' | '|' | '$' | '\\')
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// `[system]|[code]`, `|code` (no system), `system|` (any code), or `code` (any system, or
/// `default_system` when given).
fn token_value(raw: &str, default_system: Option<&str>) -> Result<QueryValue, String> {
    let parts = split_escaped(raw, '|');
    match parts.as_slice() {
        [code] => Ok(QueryValue::Token {
            system: default_system.map(|s| TokenSystem::Is(s.to_string())),
            code: Some(unescape(code)),
        }),
        [system, code] => {
            if system.is_empty() && code.is_empty() {
                return Err("'|' is not a token: give a system, a code or both".into());
            }
            Ok(QueryValue::Token {
                system: Some(if system.is_empty() {
                    TokenSystem::None
                } else {
                    TokenSystem::Is(unescape(system))
                }),
                code: (!code.is_empty()).then(|| unescape(code)),
            })
        }
        _ => Err(format!("'{raw}' has more than one '|' (escape it as \\|)")),
    }
}

/// Splits a leading comparison prefix off an ordered value.
fn prefixed<'v>(param: &SearchParam, raw: &'v str) -> Result<(Prefix, &'v str), String> {
    let b = raw.as_bytes();
    // Two letters before the value's first digit (or sign) are a prefix; other letters
    // are simply a malformed value, reported as such.
    let starts_value = |c: u8| c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.';
    if let [first, second, third, ..] = b
        && first.is_ascii_alphabetic()
        && second.is_ascii_alphabetic()
        && starts_value(*third)
        && let Some(code) = raw.get(..2)
    {
        let prefix = prefix_from_code(code).ok_or_else(|| {
            format!(
                "'{raw}' has an unknown prefix '{code}' (use eq, ne, gt, lt, ge, le, sa, eb or ap)"
            )
        })?;
        if !param.prefixes.is_empty() && !param.prefixes.contains(&prefix) {
            return Err(format!(
                "the prefix '{code}' cannot be used on {}",
                param.code
            ));
        }
        Ok((prefix, &raw[2..]))
    } else {
        Ok((Prefix::Eq, raw))
    }
}

fn date_value(param: &SearchParam, raw: &str) -> Result<QueryValue, String> {
    let (prefix, text) = prefixed(param, raw)?;
    // A `+` in a time zone arrives as a space when the client did not percent-encode it.
    let text = text.replace(' ', "+");
    let (low, high) = dates::range(&text).map_err(|e| e.to_string())?;
    Ok(QueryValue::Date { prefix, low, high })
}

/// `[prefix]number[|system|code]`.
fn quantity_value(param: &SearchParam, raw: &str) -> Result<QueryValue, String> {
    let parts = split_escaped(raw, '|');
    let (number, system, code) = match parts.as_slice() {
        [n] => (*n, None, None),
        [n, s, c] => (
            *n,
            (!s.is_empty()).then(|| unescape(s)),
            (!c.is_empty()).then(|| unescape(c)),
        ),
        _ => return Err(format!("'{raw}' is not number|system|code")),
    };
    let (prefix, text) = prefixed(param, number)?;
    let d = numbers::parse(text).map_err(|e| e.to_string())?;
    Ok(QueryValue::Quantity {
        prefix,
        value: d.value,
        low: d.low,
        high: d.high,
        system,
        code,
    })
}

fn parts_to_query(parts: crate::values::ReferenceParts) -> QueryValue {
    QueryValue::Reference {
        target_type: parts.target_type,
        id: parts.id,
        version: parts.version,
        url: parts.url,
    }
}

#[cfg(test)]
mod tests;
