//! `AuditEvent?patient=<id>`: the citizen's own access log, read from the authorization
//! server's audit records as a searchset Bundle. A token may only read its own patient's
//! records. Paging is by offset (`_page=<n>`): a `_page` that is not a number, or that lies
//! past the last record, is an error.

use phr_auth::{AuthService, Interaction};
use serde_json::{Value, json};

use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::search::PAGE_PARAMETER;
use crate::searchset::encode_query;
use crate::service::FhirService;

/// The access log page and how many records it returned.
pub struct AuditEvents {
    pub bundle: Value,
    pub patient: String,
    pub amount: u64,
}

/// What an AuditEvent search asked for.
#[derive(Debug, PartialEq)]
struct Request {
    patient: String,
    count: usize,
    offset: usize,
}

impl FhirService {
    /// Searches the access log of a patient.
    pub fn audit_events(
        &self,
        auth: &AuthService,
        caller: &Caller,
        params: &[(String, String)],
    ) -> Result<AuditEvents> {
        let request = self.audit_request(params)?;
        if let Some(own) = caller.compartment()
            && own != request.patient
        {
            return Err(Error::forbidden(format!(
                "this token may only read the access log of Patient/{own}"
            )));
        }
        caller.permit("AuditEvent", Interaction::Search)?;
        let page = auth
            .audit_events_for_patient(&request.patient, request.count, request.offset)
            .map_err(|e| {
                tracing::error!(error = %e, "reading audit records failed");
                Error::internal("the audit log could not be read")
            })?;
        let total = usize::try_from(page.total).unwrap_or(usize::MAX);
        if request.offset > total {
            return Err(Error::invalid(format!(
                "_page {} is past the end of the access log ({total} records)",
                request.offset
            )));
        }
        let link = |offset: usize| {
            let params = [
                ("patient".to_string(), request.patient.clone()),
                ("_count".to_string(), request.count.to_string()),
                (PAGE_PARAMETER.to_string(), offset.to_string()),
            ];
            format!(
                "{}/AuditEvent?{}",
                self.settings.base_url,
                encode_query(&params)
            )
        };
        let mut links = vec![json!({"relation": "self", "url": link(request.offset)})];
        if let Some(next) = request.offset.checked_add(request.count)
            && request.count > 0
            && next < total
        {
            links.push(json!({"relation": "next", "url": link(next)}));
        }
        let amount = page.events.len() as u64;
        let entries: Vec<Value> = page
            .events
            .into_iter()
            .map(|event| {
                let id = event
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                json!({"fullUrl": self.full_url("AuditEvent", &id), "resource": event,
                    "search": {"mode": "match"}})
            })
            .collect();
        Ok(AuditEvents {
            bundle: json!({"resourceType": "Bundle", "type": "searchset", "total": page.total,
                "link": links, "entry": entries}),
            patient: request.patient,
            amount,
        })
    }

    fn audit_request(&self, params: &[(String, String)]) -> Result<Request> {
        let mut patient = None;
        let mut count = self.settings.default_page_size;
        let mut offset = 0usize;
        for (name, value) in params {
            match name.as_str() {
                "patient" => patient = Some(value.trim_start_matches("Patient/").to_string()),
                "_count" => {
                    count = value
                        .parse::<usize>()
                        .map_err(|_| {
                            Error::invalid(format!("_count must be a whole number, not '{value}'"))
                        })?
                        .min(self.settings.max_page_size)
                }
                PAGE_PARAMETER => {
                    offset = value.parse().map_err(|_| {
                        Error::invalid(format!(
                            "_page must be a record number from a paging link, not '{value}'"
                        ))
                    })?
                }
                "_format" | "_pretty" => {}
                other => {
                    return Err(Error::invalid(format!(
                        "AuditEvent search supports patient and _count, not '{other}'"
                    )));
                }
            }
        }
        let patient = patient
            .filter(|p| !p.is_empty())
            .ok_or_else(|| Error::invalid("AuditEvent search requires patient=<Patient id>"))?;
        Ok(Request {
            patient,
            count,
            offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::Pipeline;
    use crate::service::Settings;

    fn service() -> FhirService {
        let dir = tempfile::tempdir().unwrap();
        let storage = phr_store::sqlite::SqliteStore::open(&dir.path().join("phr.db")).unwrap();
        FhirService::new(
            std::sync::Arc::new(storage),
            Pipeline::new(),
            Settings::default(),
        )
    }

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn page_must_be_a_record_number() {
        let fhir = service();
        for bad in ["x", "-1", "1.5", "99999999999999999999999"] {
            let err = fhir
                .audit_request(&params(&[("patient", "p"), ("_page", bad)]))
                .unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Invalid, "{bad}");
        }
        assert_eq!(
            fhir.audit_request(&params(&[("patient", "Patient/p"), ("_page", "3")]))
                .unwrap(),
            Request {
                patient: "p".into(),
                count: 50,
                offset: 3
            }
        );
    }
}
