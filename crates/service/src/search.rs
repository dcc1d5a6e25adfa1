//! Search: parameters to a `SearchQuery` (phr-search), confined to the caller's compartment
//! and granular scopes, executed by storage, answered as a searchset Bundle
//! ([`crate::searchset`]). A search reads one resource type ([`Scope::of_type`]), or one
//! type within a Patient's compartment ([`Scope::compartment`], `Patient/[id]/[type]`), which
//! follows exactly the rules of `[type]?patient=[id]`. The catalogue's conformance resources
//! are searched in [`crate::conformance`].
//!
//! Strictness (`lenient`, from `Prefer: handling=lenient`) is decided in phr-search: by
//! default what cannot be honoured is refused; leniently it is ignored and reported in the
//! Bundle's one OperationOutcome entry (`search.mode = outcome`).

use std::collections::BTreeSet;

use phr_auth::{Access, Interaction, ScopeFilter};
use phr_fhir::Issue;
use phr_search::{ParseOptions, SearchQuery};
use phr_store::SearchPage;

use crate::caller::Caller;
use crate::conformance;
use crate::error::{Error, ErrorKind, Result};
use crate::searchset::{encode_query, searchset};
use crate::service::FhirService;

/// The parameter carrying a page cursor in `next`/`previous`/`self` links.
pub const PAGE_PARAMETER: &str = "_page";

/// The compartment a compartment search names (`Patient/[id]/[type]`).
pub const COMPARTMENT_TYPE: &str = "Patient";

/// Where a search looks: every resource of a type the caller may see (`GET [type]?…`), or
/// those in one Patient's compartment (`GET Patient/[id]/[type]?…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub resource_type: &'a str,
    /// The Patient id of a compartment search.
    pub patient: Option<&'a str>,
}

impl<'a> Scope<'a> {
    pub fn of_type(resource_type: &'a str) -> Self {
        Scope {
            resource_type,
            patient: None,
        }
    }

    pub fn compartment(patient: &'a str, resource_type: &'a str) -> Self {
        Scope {
            resource_type,
            patient: Some(patient),
        }
    }

    /// The path searched, relative to the FHIR base: `Observation` or
    /// `Patient/p1/Observation` (for the `self` and paging links).
    pub fn path(&self) -> String {
        match self.patient {
            Some(patient) => format!("{COMPARTMENT_TYPE}/{patient}/{}", self.resource_type),
            None => self.resource_type.to_string(),
        }
    }
}

/// The resource types a Patient compartment search serves: those the R4 CompartmentDefinition
/// puts in the Patient compartment, among `served`.
pub fn compartment_types<'t>(served: impl IntoIterator<Item = &'t str>) -> Vec<&'t str> {
    let registry = phr_search::Registry::global();
    served
        .into_iter()
        .filter(|t| !registry.patient_compartment_params(t).is_empty())
        .collect()
}

/// A search that ran: the page, the query it ran, and warnings about ignored parameters.
pub struct SearchResult {
    pub page: SearchPage,
    pub query: SearchQuery,
    pub warnings: Vec<Issue>,
    /// For a professional caller, what allowed the search.
    pub permit: Option<crate::professional::Permit>,
}

/// A query confined to what its caller may read (see `FhirService::authorized_query`).
pub(crate) struct AuthorizedQuery {
    pub query: SearchQuery,
    pub warnings: Vec<Issue>,
    pub permit: Option<crate::professional::Permit>,
    /// An application's content limits apply: matches sharing a profile with an accepted
    /// content are told apart by code afterwards.
    pub confined: bool,
}

/// A search answered: the searchset Bundle and what it touched, for the audit record.
pub struct Searched {
    /// The Bundle as JSON.
    pub bundle: Vec<u8>,
    /// `Type/id` of every resource returned (matches and includes).
    pub resources: Vec<String>,
    /// The compartment searched, when there was one.
    pub patient: Option<String>,
    /// For a professional caller, what they were shown (for the audit log).
    pub shown: Option<crate::professional::Shown>,
    /// The page cursor of the Bundle's `next` link, if it has one.
    pub next_cursor: Option<String>,
}

/// The search criteria of a request as the audit log records them: the parameters without
/// the page cursor.
pub fn search_criteria(params: &[(String, String)]) -> String {
    encode_query(params.iter().filter(|(name, _)| name != PAGE_PARAMETER))
}

impl FhirService {
    /// `GET [type]?…` / `POST [type]/_search` and their compartment forms: the searchset
    /// Bundle. `lenient` is `Prefer: handling=lenient`.
    pub fn search_request(
        &self,
        caller: &Caller,
        scope: Scope<'_>,
        params: &[(String, String)],
        lenient: bool,
    ) -> Result<Searched> {
        let resource_type = scope.resource_type;
        if conformance::is_conformance_type(resource_type) && scope.patient.is_none() {
            // The catalogue's definitions are public: no scope is needed to search them.
            self.check_type(resource_type)?;
            let bundle =
                self.conformance
                    .search(resource_type, params, lenient, &self.settings.base_url)?;
            return Ok(Searched {
                bundle: crate::resource::to_bytes(&bundle)?,
                resources: Vec::new(),
                patient: None,
                shown: None,
                next_cursor: None,
            });
        }
        let result = self.search(caller, scope, params, lenient)?;
        let shown = result
            .permit
            .as_ref()
            .map(|permit| permit.shown(result.page.matches.iter().chain(&result.page.included)));
        let resources = result
            .page
            .matches
            .iter()
            .chain(&result.page.included)
            .map(|r| format!("{}/{}", r.resource_type, r.id))
            .collect();
        let bundle = searchset(
            &result,
            &self.settings.base_url,
            &scope.path(),
            params,
            &self.subsetter,
        )?;
        Ok(Searched {
            bundle,
            resources,
            patient: result.query.compartment,
            shown,
            next_cursor: result.page.next,
        })
    }

    /// Runs a search and returns the page (the portal reads pages, not Bundles).
    pub fn search(
        &self,
        caller: &Caller,
        scope: Scope<'_>,
        params: &[(String, String)],
        lenient: bool,
    ) -> Result<SearchResult> {
        let page = params
            .iter()
            .find(|(name, _)| name == PAGE_PARAMETER)
            .map(|(_, v)| v.as_str());
        let authorized = self.authorized_query(caller, scope, params, lenient)?;
        let mut page = self.storage.search(&authorized.query, page)?;
        if let Some(permit) = &authorized.permit {
            crate::professional::confine_included(&mut page, permit);
        }
        if authorized.confined {
            crate::contents::confine_page(caller, &mut page);
        }
        Ok(SearchResult {
            page,
            query: authorized.query,
            warnings: authorized.warnings,
            permit: authorized.permit,
        })
    }

    /// The query a search of `caller` runs: the parameters parsed, then confined to the
    /// caller's compartment, granular scopes, a professional's permit and an application's
    /// accepted contents. Every read that stands for a search (a page, an aggregate) runs
    /// exactly this query.
    pub(crate) fn authorized_query(
        &self,
        caller: &Caller,
        scope: Scope<'_>,
        params: &[(String, String)],
        lenient: bool,
    ) -> Result<AuthorizedQuery> {
        let resource_type = scope.resource_type;
        self.check_type(resource_type)?;
        if let Some(patient) = scope.patient {
            self.check_compartment_type(resource_type)?;
            check_compartment_id(patient)?;
        }
        let options = ParseOptions {
            lenient,
            default_count: self.settings.default_page_size,
            max_count: self.settings.max_page_size,
            kanta_rules: true,
            base_url: Some(self.settings.base_url.clone()),
            compartment: scope.patient.map(str::to_string),
            ..ParseOptions::default()
        };
        let parsed = phr_search::parse(resource_type, params, &options)
            .map_err(|issues| Error::with_issues(ErrorKind::Invalid, issues))?;
        let mut query = parsed.query;
        if let Access::Filtered(sets) = caller.permit(resource_type, Interaction::Search)? {
            add_scope_filters(&mut query, &sets)?;
        }
        if let Some(own) = caller.compartment() {
            match &query.compartment {
                Some(asked) if asked != own => {
                    return Err(Error::forbidden(format!(
                        "this token may only search the compartment of Patient/{own}"
                    )));
                }
                _ => query.compartment = Some(own.to_string()),
            }
        }
        let permit = self.professional_search(caller, &mut query)?;
        let confined = crate::contents::confine_search(caller, &mut query)?.is_some();
        Ok(AuthorizedQuery {
            query,
            warnings: parsed.warnings,
            permit,
            confined,
        })
    }

    /// A compartment search names a type of the Patient compartment (400 naming them).
    pub fn check_compartment_type(&self, resource_type: &str) -> Result<()> {
        if !phr_search::Registry::global()
            .patient_compartment_params(resource_type)
            .is_empty()
        {
            return Ok(());
        }
        let served = compartment_types(self.pipeline.resource_types());
        Err(Error::invalid(format!(
            "{resource_type} is not in the Patient compartment. Patient/[id]/[type] searches: {}",
            served.join(", ")
        )))
    }
}

/// The Patient id of a compartment search is a FHIR id: it goes into the paging links' path
/// as it is.
pub(crate) fn check_compartment_id(patient: &str) -> Result<()> {
    match phr_fhir::primitives::check("id", &serde_json::Value::String(patient.to_string())) {
        Some(problem) => Err(Error::invalid(format!(
            "{COMPARTMENT_TYPE}/{patient}: {}",
            problem.message
        ))),
        None => Ok(()),
    }
}

/// Granular scopes (`patient/Observation.rs?category=...`) become clauses of the query, so
/// what the token may not see is never read, counted or paged. The scopes are an OR of
/// AND-sets; the query model holds that when there is one set, or when every set is one
/// filter on the same parameter (an OR of values).
fn add_scope_filters(query: &mut SearchQuery, sets: &[BTreeSet<ScopeFilter>]) -> Result<()> {
    let value = |f: &ScopeFilter| match &f.system {
        Some(system) => format!("{system}|{}", f.code),
        None => f.code.clone(),
    };
    let params: Vec<(String, String)> = match sets {
        [one] => one.iter().map(|f| (f.param.clone(), value(f))).collect(),
        _ if sets.iter().all(|set| set.len() == 1) => {
            let firsts: Vec<&ScopeFilter> =
                sets.iter().filter_map(|set| set.iter().next()).collect();
            let Some(param) = firsts.first().map(|f| &f.param) else {
                return Err(unsupported_scopes());
            };
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
        .map_err(|issues| Error::with_issues(ErrorKind::Forbidden, issues))?;
    query.clauses.extend(parsed.query.clauses);
    Ok(())
}

fn unsupported_scopes() -> Error {
    Error::forbidden("the token's granular scopes combine filters in a way search cannot apply")
}
