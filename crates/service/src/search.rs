//! Search: parameters to a `SearchQuery` (phr-search), confined to the caller's compartment,
//! executed by storage, answered as a searchset Bundle with paging links. Also `_summary`
//! and `_elements` subsetting of the returned resources.

use std::collections::{BTreeSet, HashMap, HashSet};

use axum::http::StatusCode;
use phr_auth::{Access, Interaction, ScopeFilter};
use phr_fhir::Issue;
use phr_search::{ParseOptions, SearchQuery, Summary};
use phr_store::SearchPage;
use serde_json::{Map, Value, json};

use super::bundle::page_link;
use super::error::ApiError;
use super::pipeline::Caller;
use super::service::FhirService;
use super::{BASE_PATH, full_url};

/// The parameter carrying a page cursor in `next`/`previous`/`self` links.
pub const PAGE_PARAMETER: &str = "_page";

/// A search that ran: the page, the query it ran, and warnings about ignored parameters.
pub struct SearchResult {
    pub page: SearchPage,
    pub query: SearchQuery,
    pub warnings: Vec<Issue>,
}

/// Search settings from the server configuration.
#[derive(Debug, Clone)]
pub struct SearchSettings {
    pub default_count: usize,
    pub max_count: usize,
    pub base_url: String,
}

impl FhirService {
    pub fn search(
        &self,
        caller: &Caller,
        resource_type: &str,
        params: &[(String, String)],
        strict: bool,
        settings: &SearchSettings,
    ) -> Result<SearchResult, ApiError> {
        self.check_type(resource_type)?;
        let page = params
            .iter()
            .find(|(name, _)| name == PAGE_PARAMETER)
            .map(|(_, v)| v.as_str());
        let options = ParseOptions {
            strict,
            default_count: settings.default_count,
            max_count: settings.max_count,
            kanta_rules: true,
            base_url: Some(format!("{}{BASE_PATH}", settings.base_url)),
            ..ParseOptions::default()
        };
        let parsed = phr_search::parse(resource_type, params, &options)
            .map_err(|issues| ApiError::with_issues(StatusCode::BAD_REQUEST, issues))?;
        let mut query = parsed.query;
        if let Access::Filtered(sets) = caller.permit(resource_type, Interaction::Search)? {
            add_scope_filters(&mut query, &sets)?;
        }
        if let Some(own) = caller.compartment() {
            match &query.compartment {
                Some(asked) if asked != own => {
                    return Err(ApiError::forbidden(format!(
                        "this token may only search the compartment of Patient/{own}"
                    )));
                }
                _ => query.compartment = Some(own.to_string()),
            }
        }
        let page = self.storage.search(&query, page)?;
        Ok(SearchResult {
            page,
            query,
            warnings: parsed.warnings,
        })
    }
}

/// Granular scopes (`patient/Observation.rs?category=...`) become clauses of the query, so
/// what the token may not see is never read, counted or paged. The scopes are an OR of
/// AND-sets; the query model holds that when there is one set, or when every set is one
/// filter on the same parameter (an OR of values).
fn add_scope_filters(
    query: &mut SearchQuery,
    sets: &[BTreeSet<ScopeFilter>],
) -> Result<(), ApiError> {
    let value = |f: &ScopeFilter| match &f.system {
        Some(system) => format!("{system}|{}", f.code),
        None => f.code.clone(),
    };
    let params: Vec<(String, String)> = match sets {
        [one] => one.iter().map(|f| (f.param.clone(), value(f))).collect(),
        _ if sets.iter().all(|set| set.len() == 1) => {
            let firsts: Vec<&ScopeFilter> =
                sets.iter().filter_map(|set| set.iter().next()).collect();
            let param = &firsts[0].param;
            if firsts.iter().any(|f| &f.param != param) {
                return Err(unsupported_scopes());
            }
            let values: Vec<String> = firsts
                .iter()
                .map(|f| value(f).replace(',', "\\,"))
                .collect();
            vec![(param.clone(), values.join(","))]
        }
        _ => return Err(unsupported_scopes()),
    };
    let options = ParseOptions {
        kanta_rules: false,
        ..ParseOptions::default()
    };
    let parsed = phr_search::parse(&query.resource_type, &params, &options)
        .map_err(|issues| ApiError::with_issues(StatusCode::FORBIDDEN, issues))?;
    query.clauses.extend(parsed.query.clauses);
    Ok(())
}

fn unsupported_scopes() -> ApiError {
    ApiError::forbidden("the token's granular scopes combine filters in a way search cannot apply")
}

/// The searchset Bundle. `request_params` are the parameters as sent (for the links).
pub fn searchset(
    result: &SearchResult,
    base_url: &str,
    resource_type: &str,
    request_params: &[(String, String)],
    subsetter: &Subsetter,
) -> Vec<u8> {
    let kept: Vec<(String, String)> = request_params
        .iter()
        .filter(|(name, _)| name != PAGE_PARAMETER)
        .cloned()
        .collect();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&kept)
        .finish();
    let mut link_base = format!("{base_url}{BASE_PATH}/{resource_type}");
    if !query.is_empty() {
        link_base.push('?');
        link_base.push_str(&query);
    }
    let page = &result.page;
    let mut links = vec![json!({
        "relation": "self",
        "url": match &page.this { Some(c) => page_link(&link_base, c), None => link_base.clone() },
    })];
    for (relation, cursor) in [("next", &page.next), ("previous", &page.previous)] {
        if let Some(cursor) = cursor {
            links.push(json!({"relation": relation, "url": page_link(&link_base, cursor)}));
        }
    }
    let mut head = Map::new();
    head.insert("resourceType".into(), json!("Bundle"));
    head.insert("type".into(), json!("searchset"));
    if let Some(total) = page.total {
        head.insert("total".into(), json!(total));
    }
    head.insert("link".into(), Value::Array(links));
    // The head, then the entries written straight from the stored bytes: a full page is
    // not parsed and re-serialized.
    let mut out =
        serde_json::to_vec(&Value::Object(head)).expect("serde_json::Value always serializes");
    out.pop();
    out.extend_from_slice(br#","entry":["#);
    let mut first = true;
    let mut separate = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
    };
    if result.query.summary != Summary::Count {
        let shape = Shape::of(&result.query);
        for (stored, mode) in page
            .matches
            .iter()
            .map(|s| (s, "match"))
            .chain(page.included.iter().map(|s| (s, "include")))
        {
            if stored.deleted {
                continue;
            }
            separate(&mut out);
            out.extend_from_slice(br#"{"fullUrl":"#);
            serde_json::to_writer(
                &mut out,
                &full_url(base_url, &stored.resource_type, &stored.id),
            )
            .expect("writing to a Vec cannot fail");
            out.extend_from_slice(br#","resource":"#);
            if shape == Shape::Full {
                out.extend_from_slice(&stored.body);
            } else {
                let resource: Value = serde_json::from_slice(&stored.body).unwrap_or(Value::Null);
                serde_json::to_writer(&mut out, &subsetter.apply(resource, &shape))
                    .expect("writing to a Vec cannot fail");
            }
            out.extend_from_slice(br#","search":{"mode":""#);
            out.extend_from_slice(mode.as_bytes());
            out.extend_from_slice(br#""}}"#);
        }
    }
    if !result.warnings.is_empty() {
        separate(&mut out);
        let entry = json!({
            "resource": phr_fhir::outcome::operation_outcome(&result.warnings),
            "search": {"mode": "outcome"},
        });
        serde_json::to_writer(&mut out, &entry).expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(b"]}");
    out
}

/// How returned resources are cut down (`_summary`, `_elements`).
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Full,
    Summary,
    Data,
    Text,
    Elements(Vec<String>),
}

impl Shape {
    pub fn of(query: &SearchQuery) -> Shape {
        if !query.elements.is_empty() {
            return Shape::Elements(query.elements.clone());
        }
        match query.summary {
            Summary::True => Shape::Summary,
            Summary::Data => Shape::Data,
            Summary::Text => Shape::Text,
            Summary::False | Summary::Count => Shape::Full,
        }
    }
}

/// Knows, per resource type, which top-level elements are in the summary and which are
/// mandatory (from the R4 definitions' `isSummary` and `min`).
pub struct Subsetter {
    summary: HashMap<String, HashSet<String>>,
    mandatory: HashMap<String, HashSet<String>>,
}

impl Default for Subsetter {
    fn default() -> Self {
        Self::new()
    }
}

impl Subsetter {
    pub fn new() -> Self {
        let mut summary: HashMap<String, HashSet<String>> = HashMap::new();
        let mut mandatory: HashMap<String, HashSet<String>> = HashMap::new();
        for sd in phr_fhir::defs::structure_definitions() {
            if sd["kind"] != "resource" || sd["derivation"] != "specialization" {
                continue;
            }
            let Some(rt) = sd["type"].as_str() else {
                continue;
            };
            let Some(elements) = sd["snapshot"]["element"].as_array() else {
                continue;
            };
            for element in elements {
                let Some(path) = element["path"].as_str() else {
                    continue;
                };
                let Some(name) = path.strip_prefix(rt).and_then(|p| p.strip_prefix('.')) else {
                    continue;
                };
                if name.contains('.') {
                    continue;
                }
                let name = name.trim_end_matches("[x]").to_string();
                if element["isSummary"] == true {
                    summary
                        .entry(rt.to_string())
                        .or_default()
                        .insert(name.clone());
                }
                if element["min"].as_u64().unwrap_or(0) > 0 {
                    mandatory.entry(rt.to_string()).or_default().insert(name);
                }
            }
        }
        Subsetter { summary, mandatory }
    }

    /// Cuts `resource` down to `shape`, marking it `SUBSETTED` when anything was removed.
    pub fn apply(&self, resource: Value, shape: &Shape) -> Value {
        let Value::Object(map) = resource else {
            return resource;
        };
        let rt = map
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let empty = HashSet::new();
        let summary = self.summary.get(&rt).unwrap_or(&empty);
        let mandatory = self.mandatory.get(&rt).unwrap_or(&empty);
        let keep = |key: &str| -> bool {
            let base = element_name(key);
            if matches!(key, "resourceType" | "id" | "meta") {
                return true;
            }
            match shape {
                Shape::Full => true,
                Shape::Summary => summary.contains(base),
                Shape::Data => key != "text",
                Shape::Text => key == "text" || mandatory.contains(base),
                // `value` and `valueQuantity` both name the choice element.
                Shape::Elements(list) => {
                    list.iter().any(|e| e == base || e == key) || mandatory.contains(base)
                }
            }
        };
        let before = map.len();
        let mut out: Map<String, Value> = map.into_iter().filter(|(k, _)| keep(k)).collect();
        if out.len() < before {
            mark_subsetted(&mut out);
        }
        Value::Object(out)
    }
}

/// `valueQuantity` → `value`, `_status` → `status`: the element a JSON key belongs to.
fn element_name(key: &str) -> &str {
    let key = key.strip_prefix('_').unwrap_or(key);
    match key.find(|c: char| c.is_ascii_uppercase()) {
        Some(i) if i > 0 => &key[..i],
        _ => key,
    }
}

fn mark_subsetted(resource: &mut Map<String, Value>) {
    let tag = json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"});
    let meta = resource.entry("meta").or_insert_with(|| json!({}));
    if let Value::Object(meta) = meta {
        match meta.entry("tag").or_insert_with(|| json!([])) {
            Value::Array(tags) => tags.push(tag),
            other => *other = json!([tag]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_names_strip_choice_types_and_underscores() {
        assert_eq!(element_name("valueQuantity"), "value");
        assert_eq!(element_name("_status"), "status");
        assert_eq!(element_name("effectiveDateTime"), "effective");
        assert_eq!(element_name("code"), "code");
    }

    #[test]
    fn summary_keeps_summary_elements_and_marks_the_resource() {
        let s = Subsetter::new();
        let obs = json!({"resourceType": "Observation", "id": "1", "text": {"status": "generated"},
            "status": "final", "code": {"text": "x"}, "note": [{"text": "n"}], "valueQuantity": {"value": 1}});
        let out = s.apply(obs.clone(), &Shape::Summary);
        assert!(out.get("note").is_none());
        assert!(out.get("text").is_none());
        assert_eq!(out["valueQuantity"]["value"], 1);
        assert_eq!(out["meta"]["tag"][0]["code"], "SUBSETTED");
        let data = s.apply(obs.clone(), &Shape::Data);
        assert!(data.get("text").is_none() && data.get("note").is_some());
        let full = s.apply(obs.clone(), &Shape::Full);
        assert_eq!(full, obs);
    }

    #[test]
    fn elements_keep_the_listed_and_the_mandatory() {
        let s = Subsetter::new();
        let obs = json!({"resourceType": "Observation", "id": "1", "status": "final", "code": {"text": "x"},
            "note": [{"text": "n"}], "valueQuantity": {"value": 1}});
        let out = s.apply(obs, &Shape::Elements(vec!["value".into()]));
        assert!(out.get("note").is_none());
        assert_eq!(out["status"], "final");
        assert_eq!(out["valueQuantity"]["value"], 1);
    }
}
