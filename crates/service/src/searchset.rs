//! The searchset Bundle of a search and the paging links of searchset and history Bundles.
//! Links carry the request's parameters URL-encoded, with `_page` replaced by the cursor.
//!
//! The entries are written straight from the stored bytes: a full page is not parsed and
//! re-serialized unless `_summary`/`_elements` cut the resources down.
//!
//! FHIR's JSON rules: `entry` is left out when there is none (never `"entry": []`), `total`
//! is there whenever storage counted (every search unless `_total=none`), and the only
//! OperationOutcome entry is the one a lenient search's ignored parameters make.

use phr_search::Summary;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::search::{PAGE_PARAMETER, SearchResult};
use crate::subset::{Shape, Subsetter};

/// `name=value&…`, form-URL-encoded.
pub fn encode_query<'a>(params: impl IntoIterator<Item = &'a (String, String)>) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

/// `link` with its `_page` parameter replaced by `cursor`.
pub fn page_link(link: &str, cursor: &str) -> String {
    let (path, query) = link.split_once('?').unwrap_or((link, ""));
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(name, _)| name != PAGE_PARAMETER)
        .collect();
    params.push((PAGE_PARAMETER.into(), cursor.to_string()));
    format!("{path}?{}", encode_query(&params))
}

/// Appends `value` as JSON.
pub(crate) fn write_json(out: &mut Vec<u8>, value: &impl serde::Serialize) -> Result<()> {
    serde_json::to_writer(out, value)
        .map_err(|e| Error::internal(format!("JSON encoding failed: {e}")))
}

/// The searchset Bundle. `base_url` is the FHIR base; `path` what was searched below it
/// (`Observation`, `Patient/p1/Observation`); `request_params` are the parameters as sent
/// (for the links).
pub fn searchset(
    result: &SearchResult,
    base_url: &str,
    path: &str,
    request_params: &[(String, String)],
    subsetter: &Subsetter,
) -> Result<Vec<u8>> {
    let query = encode_query(
        request_params
            .iter()
            .filter(|(name, _)| name != PAGE_PARAMETER),
    );
    let mut link_base = format!("{base_url}/{path}");
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
    let mut out = Vec::with_capacity(4096);
    write_json(&mut out, &Value::Object(head))?;
    // Reopen the head object to append the entries, if there are any.
    out.pop();
    let mut first = true;
    let mut separate = |out: &mut Vec<u8>| {
        let separator: &[u8] = if std::mem::take(&mut first) {
            br#","entry":["#
        } else {
            b","
        };
        out.extend_from_slice(separator);
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
            write_json(
                &mut out,
                &format!("{base_url}/{}/{}", stored.resource_type, stored.id),
            )?;
            out.extend_from_slice(br#","resource":"#);
            if shape == Shape::Full {
                out.extend_from_slice(&stored.body);
            } else {
                let resource: Value = serde_json::from_slice(&stored.body).unwrap_or(Value::Null);
                write_json(&mut out, &subsetter.apply(resource, &shape))?;
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
        write_json(&mut out, &entry)?;
    }
    if !first {
        out.push(b']');
    }
    out.push(b'}');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_links_replace_the_cursor() {
        assert_eq!(
            page_link("http://x/Patient/_history?_count=2&_page=a", "b+c"),
            "http://x/Patient/_history?_count=2&_page=b%2Bc"
        );
        assert_eq!(
            page_link("http://x/_history", "z"),
            "http://x/_history?_page=z"
        );
    }

    #[test]
    fn query_values_are_encoded() {
        let params = vec![("patient".to_string(), "a&b c".to_string())];
        assert_eq!(encode_query(&params), "patient=a%26b+c");
    }
}
