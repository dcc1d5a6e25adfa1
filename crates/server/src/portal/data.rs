//! The citizen's data as the portal reads it: through the FHIR service's search (so the
//! same compartment confinement applies as for apps), one data content at a time.

use phr_catalog::{Catalog, DataContent};
use phr_store::StoredResource;
use serde_json::Value;
use time::OffsetDateTime;

use crate::AppState;
use crate::fhir::error::ApiError;
use crate::fhir::search::{PAGE_PARAMETER, SearchSettings};

/// The most points a chart reads; beyond that the newest are shown. A year of 5-minute CGM
/// readings is 105,120 points, so a year chart is complete. The chart draws at most a few
/// hundred: a storage-side aggregate would spare reading them all.
pub const MAX_POINTS: usize = 120_000;

/// The data contents the portal lists: those kept in a citizen's compartment.
pub fn contents() -> impl Iterator<Item = &'static DataContent> {
    Catalog::get()
        .contents()
        .iter()
        .filter(|c| date_parameter(c.resource_type).is_some())
}

pub fn content_by_key(key: &str) -> Option<&'static DataContent> {
    contents().find(|c| c.kind.key() == key)
}

/// The date search parameter of a compartment type.
pub fn date_parameter(resource_type: &str) -> Option<&'static str> {
    match resource_type {
        "Observation" | "CarePlan" => Some("date"),
        "MedicationAdministration" => Some("effective-time"),
        "QuestionnaireResponse" => Some("authored"),
        _ => None,
    }
}

fn settings(state: &AppState) -> SearchSettings {
    SearchSettings {
        default_count: state.config.default_page_size,
        max_count: state.config.max_page_size,
        base_url: state.base_url.clone(),
    }
}

fn instant(t: OffsetDateTime) -> String {
    crate::time::to_instant((t.unix_timestamp_nanos() / 1000) as i64)
}

/// The search parameters selecting `content` of `patient` between `from` and `to`.
fn params(
    content: &DataContent,
    patient: &str,
    range: Option<(OffsetDateTime, OffsetDateTime)>,
    newest_first: bool,
    count: usize,
) -> Vec<(String, String)> {
    let date = date_parameter(content.resource_type).unwrap_or("date");
    let mut params = vec![("patient".to_owned(), patient.to_owned())];
    if let Some(code) = content.code_search() {
        params.push(("code".into(), code));
    } else {
        params.push(("_profile".into(), content.profile.to_owned()));
    }
    if let Some((from, to)) = range {
        params.push((date.into(), format!("ge{}", instant(from))));
        params.push((date.into(), format!("lt{}", instant(to))));
    }
    let sort = if newest_first {
        format!("-{date}")
    } else {
        date.to_owned()
    };
    params.push(("_sort".into(), sort));
    params.push(("_count".into(), count.to_string()));
    params
}

/// A stored resource with its parsed body.
pub struct Entry {
    pub stored: StoredResource,
    pub resource: Value,
}

fn entries(matches: Vec<StoredResource>) -> Vec<Entry> {
    matches
        .into_iter()
        .filter(|s| !s.deleted)
        .filter_map(|stored| {
            let resource = serde_json::from_slice(&stored.body).ok()?;
            Some(Entry { stored, resource })
        })
        .collect()
}

/// The newest entry of `content`, if any.
pub fn latest(
    state: &AppState,
    patient: &str,
    content: &DataContent,
) -> Result<Option<Entry>, ApiError> {
    let caller = super::caller(patient);
    let result = state.fhir.search(
        &caller,
        content.resource_type,
        &params(content, patient, None, true, 1),
        false,
        &settings(state),
    )?;
    Ok(entries(result.page.matches).into_iter().next())
}

/// Every entry of `content` in the range, oldest first (at most [`MAX_POINTS`], the newest).
pub fn series(
    state: &AppState,
    patient: &str,
    content: &DataContent,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<Entry>, ApiError> {
    let caller = super::caller(patient);
    let count = state.config.max_page_size;
    let base = params(content, patient, Some((from, to)), true, count);
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut p = base.clone();
        if let Some(c) = &cursor {
            p.push((PAGE_PARAMETER.to_owned(), c.clone()));
        }
        let result =
            state
                .fhir
                .search(&caller, content.resource_type, &p, false, &settings(state))?;
        out.extend(entries(result.page.matches));
        match result.page.next {
            Some(next) if out.len() < MAX_POINTS => cursor = Some(next),
            _ => break,
        }
    }
    out.reverse();
    Ok(out)
}

/// One page of entries in the range, newest first, and the cursor of the next page.
pub fn table_page(
    state: &AppState,
    patient: &str,
    content: &DataContent,
    range: (OffsetDateTime, OffsetDateTime),
    cursor: Option<&str>,
    count: usize,
) -> Result<(Vec<Entry>, Option<String>), ApiError> {
    let caller = super::caller(patient);
    let mut p = params(content, patient, Some(range), true, count);
    if let Some(c) = cursor {
        p.push((PAGE_PARAMETER.to_owned(), c.to_owned()));
    }
    let result = state
        .fhir
        .search(&caller, content.resource_type, &p, false, &settings(state))?;
    Ok((entries(result.page.matches), result.page.next))
}
