//! `AuditEvent?patient=<id>`: the citizen's own access log, read from the authorization
//! server's audit records as a searchset Bundle. A token may only read its own patient's
//! records. Paging is by offset (`_page=<n>`): a `_page` that is not a number, or that lies
//! past the last record, is an error. The compartment form `Patient/[id]/AuditEvent` is the
//! same search with `patient=[id]`.

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
    /// `_total=none`.
    no_total: bool,
}

impl FhirService {
    /// Searches the access log of a patient: `patient` from the path of a compartment
    /// search, or from the parameters.
    pub fn audit_events(
        &self,
        auth: &AuthService,
        caller: &Caller,
        patient: Option<&str>,
        params: &[(String, String)],
    ) -> Result<AuditEvents> {
        let request = self.audit_request(patient, params)?;
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
            let mut params = Vec::with_capacity(4);
            if patient.is_none() {
                params.push(("patient".to_string(), request.patient.clone()));
            }
            params.push(("_count".to_string(), request.count.to_string()));
            if request.no_total {
                params.push(("_total".to_string(), "none".to_string()));
            }
            params.push((PAGE_PARAMETER.to_string(), offset.to_string()));
            let path = match patient {
                Some(p) => format!("Patient/{p}/AuditEvent"),
                None => "AuditEvent".to_string(),
            };
            format!(
                "{}/{path}?{}",
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
        let mut bundle = json!({"resourceType": "Bundle", "type": "searchset"});
        if let Some(object) = bundle.as_object_mut() {
            if !request.no_total {
                object.insert("total".into(), json!(page.total));
            }
            object.insert("link".into(), Value::Array(links));
            if !entries.is_empty() {
                object.insert("entry".into(), Value::Array(entries));
            }
        }
        Ok(AuditEvents {
            bundle,
            patient: request.patient,
            amount,
        })
    }

    fn audit_request(&self, path: Option<&str>, params: &[(String, String)]) -> Result<Request> {
        if let Some(patient) = path {
            crate::search::check_compartment_id(patient)?;
        }
        let mut patient = path.map(str::to_string);
        let mut count = self.settings.default_page_size;
        let mut offset = 0usize;
        let mut no_total = false;
        for (name, value) in params {
            match name.as_str() {
                "patient" => {
                    let named = value.trim_start_matches("Patient/").to_string();
                    if path.is_some_and(|p| p != named) {
                        return Err(Error::invalid(format!(
                            "patient names another Patient than the compartment searched ('{named}')"
                        )));
                    }
                    patient = Some(named);
                }
                "_total" => {
                    no_total = match value.as_str() {
                        "none" => true,
                        "estimate" | "accurate" => false,
                        other => {
                            return Err(Error::invalid(format!(
                                "_total must be none, estimate or accurate, not '{other}'"
                            )));
                        }
                    }
                }
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
                    return Err(Error::new(
                        crate::ErrorKind::Invalid,
                        phr_fhir::IssueType::NotSupported,
                        format!(
                            "unknown search parameter '{other}' for AuditEvent. Valid search parameters are: patient; result parameters: _count, _total"
                        ),
                    ));
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
            no_total,
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
                .audit_request(None, &params(&[("patient", "p"), ("_page", bad)]))
                .unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Invalid, "{bad}");
        }
        assert_eq!(
            fhir.audit_request(None, &params(&[("patient", "Patient/p"), ("_page", "3")]))
                .unwrap(),
            Request {
                patient: "p".into(),
                count: 50,
                offset: 3,
                no_total: false,
            }
        );
    }

    #[test]
    fn the_compartment_names_the_patient() {
        let fhir = service();
        let request = fhir.audit_request(Some("p"), &[]).unwrap();
        assert_eq!(request.patient, "p");
        assert!(
            fhir.audit_request(Some("p"), &params(&[("patient", "p")]))
                .is_ok()
        );
        let err = fhir
            .audit_request(Some("p"), &params(&[("patient", "q")]))
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Invalid);
    }
}
