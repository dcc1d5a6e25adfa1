//! `history` (instance, type and system level) and the history Bundle, newest version first,
//! with paging links. Each entry's `response.status` says how the version came to be; the
//! caller renders it (the web layer's one status mapping), as for batch responses.

use phr_auth::{Access, Interaction};
use phr_store::{HistoryPage, HistoryQuery};
use serde_json::{Map, Value, json};

use crate::bundle::Success;
use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::searchset::{encode_query, page_link};
use crate::service::FhirService;
use crate::time::{parse_instant, to_instant};

/// A history page and its Bundle.
pub struct History {
    pub page: HistoryPage,
    pub bundle: Value,
    /// For a professional caller, what they were shown (for the audit log).
    pub shown: Option<crate::professional::Shown>,
}

impl FhirService {
    /// The history of `resource_type`/`id` (instance), of a type (`id` None) or of everything
    /// the caller may see (both None), from the request's parameters.
    pub fn history_request(
        &self,
        caller: &Caller,
        resource_type: Option<String>,
        id: Option<String>,
        params: &[(String, String)],
        status: &dyn Fn(Success) -> String,
    ) -> Result<History> {
        let query = self.history_query(resource_type, id, params)?;
        let self_link = self.history_link(&query, params);
        let (page, permit) = self.history_permitted(caller, query)?;
        let bundle = self.history_bundle(&page, &self_link, status);
        let shown = permit.map(|p| p.shown(&page.versions));
        Ok(History {
            page,
            bundle,
            shown,
        })
    }

    pub fn history(&self, caller: &Caller, query: HistoryQuery) -> Result<HistoryPage> {
        self.history_permitted(caller, query).map(|(page, _)| page)
    }

    /// [`FhirService::history`], and for a professional caller what allowed it.
    fn history_permitted(
        &self,
        caller: &Caller,
        mut query: HistoryQuery,
    ) -> Result<(HistoryPage, Option<crate::professional::Permit>)> {
        if let Some(resource_type) = &query.resource_type {
            self.check_type(resource_type)?;
            let interaction = if query.id.is_some() {
                Interaction::Read
            } else {
                Interaction::Search
            };
            if let Access::Filtered(_) = caller.permit(resource_type, interaction)? {
                return Err(Error::forbidden(
                    "history is not available to tokens restricted to some categories; search instead",
                ));
            }
            if query.id.is_none() && caller.professional().is_some() {
                return Err(Error::forbidden(
                    "a professional reads the history of one resource at a time; search with patient=[id] instead",
                ));
            }
        } else if !caller.may_read_wide_history() {
            return Err(Error::forbidden(
                "system-wide history is not available to applications",
            ));
        }
        query.compartment = caller.compartment().map(str::to_string);
        if let (Some(resource_type), Some(id)) = (&query.resource_type, &query.id) {
            // An instance's history is visible exactly when the instance is.
            match self.current_for(caller, resource_type, id)? {
                Some(current) => {
                    caller.may_see(&current)?;
                    crate::contents::check_read(caller, &current)?;
                    if let Some(permit) = self.professional_may_see(caller, &current)? {
                        let mut page = self.storage.history(&HistoryQuery {
                            compartment: None,
                            ..query
                        })?;
                        // Every version shown must itself be shared.
                        page.versions.retain(|v| v.deleted || permit.covers(v));
                        return Ok((page, Some(permit)));
                    }
                }
                None => {
                    return Err(Error::not_found(format!(
                        "{resource_type}/{id} is not known"
                    )));
                }
            }
            query.compartment = None;
        }
        Ok((self.storage.history(&query)?, None))
    }

    fn history_query(
        &self,
        resource_type: Option<String>,
        id: Option<String>,
        params: &[(String, String)],
    ) -> Result<HistoryQuery> {
        let mut query = HistoryQuery {
            resource_type,
            id,
            count: self.settings.default_page_size,
            ..Default::default()
        };
        for (name, value) in params {
            match name.as_str() {
                "_since" => {
                    query.since = Some(parse_instant(value).ok_or_else(|| {
                        Error::invalid(format!(
                            "_since must be an instant like 2024-01-31T12:00:00Z, not '{value}'"
                        ))
                    })?)
                }
                "_count" => {
                    let count: usize = value.parse().map_err(|_| {
                        Error::invalid(format!("_count must be a whole number, not '{value}'"))
                    })?;
                    query.count = count.min(self.settings.max_page_size);
                }
                "_page" => query.page = Some(value.clone()),
                "_format" | "_pretty" => {}
                other => {
                    return Err(Error::invalid(format!(
                        "history does not support the parameter '{other}' (use _since, _count)"
                    )));
                }
            }
        }
        Ok(query)
    }

    fn history_link(&self, query: &HistoryQuery, params: &[(String, String)]) -> String {
        let mut path = self.settings.base_url.clone();
        if let Some(t) = &query.resource_type {
            path.push('/');
            path.push_str(t);
        }
        if let Some(id) = &query.id {
            path.push('/');
            path.push_str(id);
        }
        path.push_str("/_history");
        if !params.is_empty() {
            path.push('?');
            path.push_str(&encode_query(params));
        }
        path
    }

    /// A `history` Bundle, newest version first; `status` renders each entry's
    /// `response.status`.
    pub fn history_bundle(
        &self,
        page: &HistoryPage,
        self_link: &str,
        status: &dyn Fn(Success) -> String,
    ) -> Value {
        let entries: Vec<Value> = page
            .versions
            .iter()
            .map(|v| {
                let (method, done) = if v.deleted {
                    ("DELETE", Success::Deleted)
                } else if v.version == 1 {
                    ("POST", Success::Created)
                } else {
                    ("PUT", Success::Updated)
                };
                let request_url = if method == "POST" {
                    v.resource_type.clone()
                } else {
                    format!("{}/{}", v.resource_type, v.id)
                };
                let mut entry = Map::new();
                entry.insert(
                    "fullUrl".into(),
                    json!(self.full_url(&v.resource_type, &v.id)),
                );
                if !v.deleted
                    && let Ok(resource) = serde_json::from_slice::<Value>(&v.body)
                {
                    entry.insert("resource".into(), resource);
                }
                entry.insert(
                    "request".into(),
                    json!({"method": method, "url": request_url}),
                );
                entry.insert(
                    "response".into(),
                    json!({
                        "status": status(done),
                        "etag": format!("W/\"{}\"", v.version),
                        "lastModified": to_instant(v.last_updated),
                    }),
                );
                Value::Object(entry)
            })
            .collect();
        let mut links = vec![json!({"relation": "self", "url": self_link})];
        if let Some(next) = &page.next {
            links.push(json!({"relation": "next", "url": page_link(self_link, next)}));
        }
        let mut bundle = json!({
            "resourceType": "Bundle",
            "type": "history",
            "link": links,
        });
        // FHIR JSON has no empty arrays: an empty page has no `entry`.
        if !entries.is_empty()
            && let Some(object) = bundle.as_object_mut()
        {
            object.insert("entry".into(), Value::Array(entries));
        }
        bundle
    }
}
