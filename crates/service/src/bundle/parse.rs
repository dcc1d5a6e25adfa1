//! Reading a posted batch or transaction Bundle into entries. The Bundle is client JSON: every
//! field is read with typed accessors and every wrong shape (an entry that is not an object,
//! a `request` that is a string, a `resource` that is an array, ...) is a 400 naming where it
//! is, never a panic and never silently skipped.

use serde_json::{Map, Value};

use super::BundleKind;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Method {
    // Declaration order is the order a transaction processes entries in.
    Delete,
    Post,
    Put,
    Get,
}

impl Method {
    pub fn code(self) -> &'static str {
        match self {
            Method::Delete => "DELETE",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Get => "GET",
        }
    }
}

/// One request entry, parsed.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub index: usize,
    pub method: Method,
    pub full_url: Option<String>,
    /// Path segments after the base: `[type]`, `[type, id]` or `[type, id, "_history", vid]`.
    pub path: Vec<String>,
    pub query: Option<String>,
    /// Always set for POST and PUT.
    pub resource: Option<Value>,
    pub if_none_exist: Option<String>,
    pub if_match: Option<u64>,
}

/// The Bundle's kind and entries. `base_url` is the FHIR base: absolute `request.url`s under
/// it are read as relative ones.
pub(super) fn parse_bundle(
    bundle: Value,
    max_entries: usize,
    base_url: &str,
) -> Result<(BundleKind, Vec<Entry>)> {
    let Value::Object(mut bundle) = bundle else {
        return Err(not_a_bundle());
    };
    if bundle.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(not_a_bundle());
    }
    let kind = match bundle.get("type") {
        Some(Value::String(t)) if t == "batch" => BundleKind::Batch,
        Some(Value::String(t)) if t == "transaction" => BundleKind::Transaction,
        other => {
            let found = match other {
                Some(Value::String(t)) => t.clone(),
                Some(other) => other.to_string(),
                None => "missing".into(),
            };
            return Err(Error::invalid_at(
                format!("Bundle.type must be batch or transaction, not {found}"),
                "Bundle.type",
            ));
        }
    };
    let list = match bundle.remove("entry") {
        Some(Value::Array(list)) => list,
        None | Some(Value::Null) => Vec::new(),
        Some(_) => {
            return Err(Error::invalid_at(
                "Bundle.entry must be an array",
                "Bundle.entry",
            ));
        }
    };
    if list.len() > max_entries {
        return Err(Error::too_large(
            phr_fhir::IssueType::TooCostly,
            format!(
                "the Bundle has {} entries; at most {max_entries} are accepted in one request",
                list.len()
            ),
        ));
    }
    let prefix = format!("{base_url}/");
    list.into_iter()
        .enumerate()
        .map(|(index, entry)| parse_entry(index, entry, &prefix))
        .collect::<Result<Vec<Entry>>>()
        .map(|entries| (kind, entries))
}

fn not_a_bundle() -> Error {
    Error::invalid("only a Bundle of type batch or transaction can be posted to the base")
}

fn parse_entry(index: usize, entry: Value, prefix: &str) -> Result<Entry> {
    let at = |field: &str| format!("Bundle.entry[{index}]{field}");
    let Value::Object(mut entry) = entry else {
        return Err(Error::invalid_at(
            "every entry must be a JSON object",
            at(""),
        ));
    };
    let request = match entry.remove("request") {
        Some(Value::Object(request)) => request,
        None | Some(Value::Null) => {
            return Err(Error::invalid_at(
                "every entry needs a request",
                at(".request"),
            ));
        }
        Some(_) => {
            return Err(Error::invalid_at(
                "request must be a JSON object",
                at(".request"),
            ));
        }
    };
    let method = match string(&request, "method", &at(".request.method"))? {
        Some("GET") => Method::Get,
        Some("POST") => Method::Post,
        Some("PUT") => Method::Put,
        Some("DELETE") => Method::Delete,
        Some(other) => {
            return Err(Error::invalid_at(
                format!("request.method {other} is not supported in a Bundle"),
                at(".request.method"),
            ));
        }
        None => {
            return Err(Error::invalid_at(
                "every entry needs request.method",
                at(".request.method"),
            ));
        }
    };
    let Some(url) = string(&request, "url", &at(".request.url"))? else {
        return Err(Error::invalid_at(
            "every entry needs request.url",
            at(".request.url"),
        ));
    };
    let url = url
        .strip_prefix(prefix)
        .unwrap_or(url)
        .trim_start_matches('/');
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (url, None),
    };
    let path: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let if_match = match string(&request, "ifMatch", &at(".request.ifMatch"))? {
        Some(text) => Some(parse_version_tag(text).ok_or_else(|| {
            Error::invalid_at(
                format!("ifMatch must look like W/\"3\", not '{text}'"),
                at(".request.ifMatch"),
            )
        })?),
        None => None,
    };
    let if_none_exist =
        string(&request, "ifNoneExist", &at(".request.ifNoneExist"))?.map(str::to_string);
    let resource = match entry.remove("resource") {
        Some(resource @ Value::Object(_)) => Some(resource),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(Error::invalid_at(
                "resource must be a JSON object",
                at(".resource"),
            ));
        }
    };
    if matches!(method, Method::Post | Method::Put) && resource.is_none() {
        return Err(Error::invalid_at(
            "a POST or PUT entry needs a resource",
            at(".resource"),
        ));
    }
    let full_url = string(&entry, "fullUrl", &at(".fullUrl"))?.map(str::to_string);
    Ok(Entry {
        index,
        method,
        full_url,
        path,
        query,
        resource,
        if_none_exist,
        if_match,
    })
}

/// A string field: absent (or null) is None, any other type is an error at `at`.
fn string<'a>(object: &'a Map<String, Value>, name: &str, at: &str) -> Result<Option<&'a str>> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(Error::invalid_at(format!("{name} must be a string"), at)),
    }
}

fn parse_version_tag(text: &str) -> Option<u64> {
    text.trim()
        .strip_prefix("W/")
        .unwrap_or(text.trim())
        .trim_matches('"')
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde_json::json;

    fn batch(entries: Value) -> Value {
        json!({"resourceType": "Bundle", "type": "batch", "entry": entries})
    }

    fn error_at(bundle: Value) -> (ErrorKind, String) {
        let err = parse_bundle(bundle, 10, "http://x/fhir/r4").unwrap_err();
        let at = err.issues()[0].expression.clone().unwrap_or_default();
        (err.kind(), at)
    }

    #[test]
    fn bundle_entry_limit_is_enforced() {
        let entries: Vec<Value> = (0..3)
            .map(|_| json!({"request": {"method": "GET", "url": "Patient/1"}}))
            .collect();
        let err = parse_bundle(batch(json!(entries)), 2, "http://x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TooLarge);
    }

    #[test]
    fn entries_need_a_method_and_url() {
        let bundle = batch(json!([{"request": {"url": "Patient"}}]));
        assert_eq!(
            error_at(bundle),
            (ErrorKind::Invalid, "Bundle.entry[0].request.method".into())
        );
    }

    #[test]
    fn entries_of_the_wrong_json_type_are_invalid_where_they_are() {
        let get = json!({"method": "GET", "url": "Patient/1"});
        let cases = [
            (json!(["x"]), "Bundle.entry[0]"),
            (json!([3]), "Bundle.entry[0]"),
            (json!([[1, 2]]), "Bundle.entry[0]"),
            (
                json!([{"request": "GET Patient/1"}]),
                "Bundle.entry[0].request",
            ),
            (
                json!([{"request": [get.clone()]}]),
                "Bundle.entry[0].request",
            ),
            (
                json!([{"request": {"method": 1, "url": "Patient"}}]),
                "Bundle.entry[0].request.method",
            ),
            (
                json!([{"request": {"method": "GET", "url": {"a": 1}}}]),
                "Bundle.entry[0].request.url",
            ),
            (
                json!([{"request": {"method": "POST", "url": "Patient"}, "resource": [1]}]),
                "Bundle.entry[0].resource",
            ),
            (
                json!([{"request": {"method": "POST", "url": "Patient"}, "resource": "x"}]),
                "Bundle.entry[0].resource",
            ),
            (
                json!([{"request": get.clone(), "fullUrl": 5}]),
                "Bundle.entry[0].fullUrl",
            ),
            (
                json!([{"request": {"method": "PUT", "url": "Patient/1", "ifMatch": 3}, "resource": {}}]),
                "Bundle.entry[0].request.ifMatch",
            ),
            (json!({"a": 1}), "Bundle.entry"),
        ];
        for (entries, at) in cases {
            assert_eq!(
                error_at(batch(entries.clone())),
                (ErrorKind::Invalid, at.to_string()),
                "{entries}"
            );
        }
    }

    #[test]
    fn a_bundle_that_is_not_an_object_or_of_another_type_is_invalid() {
        for bundle in [
            json!([1]),
            json!("Bundle"),
            json!({"resourceType": "Patient"}),
        ] {
            assert_eq!(error_at(bundle).0, ErrorKind::Invalid);
        }
        let (kind, at) =
            error_at(json!({"resourceType": "Bundle", "type": ["batch"], "entry": []}));
        assert_eq!((kind, at.as_str()), (ErrorKind::Invalid, "Bundle.type"));
    }

    #[test]
    fn absolute_urls_under_the_base_are_relative() {
        let bundle = batch(json!([
            {"request": {"method": "GET", "url": "http://x/fhir/r4/Patient/1"}},
            {"request": {"method": "GET", "url": "Observation?code=1"}}
        ]));
        let (_, entries) = parse_bundle(bundle, 10, "http://x/fhir/r4").unwrap();
        assert_eq!(entries[0].path, ["Patient", "1"]);
        assert_eq!(entries[1].path, ["Observation"]);
        assert_eq!(entries[1].query.as_deref(), Some("code=1"));
    }

    #[test]
    fn transaction_processing_order_is_delete_post_put_get() {
        let mut methods = [Method::Get, Method::Put, Method::Post, Method::Delete];
        methods.sort();
        assert_eq!(
            methods,
            [Method::Delete, Method::Post, Method::Put, Method::Get]
        );
    }
}
