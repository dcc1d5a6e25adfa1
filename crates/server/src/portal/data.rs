//! The citizen's data as the portal reads it: through the FHIR service's search (so the
//! same compartment confinement applies as for apps), one data content at a time.

use phr_catalog::{Catalog, DataContent};
use phr_store::StoredResource;
use serde_json::Value;
use time::OffsetDateTime;

use phr_service::Error as ApiError;
use phr_service::search::{PAGE_PARAMETER, Scope};

use crate::AppState;

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

fn instant(t: OffsetDateTime) -> String {
    phr_service::time::to_instant((t.unix_timestamp_nanos() / 1000) as i64)
}

/// The search parameters selecting `content` of `patient` between `from` and `to`.
fn params(
    content: &DataContent,
    patient: &str,
    range: Option<(OffsetDateTime, OffsetDateTime)>,
    newest_first: bool,
    count: usize,
) -> Vec<(String, String)> {
    params_with_code(
        content,
        content.code_search(),
        patient,
        range,
        newest_first,
        count,
    )
}

/// As [`params`], with the `code` parameter given (one of the content's codes, say). No
/// total is asked: the portal counts with `_summary=count` where it shows one.
fn params_with_code(
    content: &DataContent,
    code: Option<String>,
    patient: &str,
    range: Option<(OffsetDateTime, OffsetDateTime)>,
    newest_first: bool,
    count: usize,
) -> Vec<(String, String)> {
    let date = date_parameter(content.resource_type).unwrap_or("date");
    let mut params = vec![("patient".to_owned(), patient.to_owned())];
    if let Some(code) = code {
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
    params.push(("_total".into(), "none".into()));
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
        Scope::of_type(content.resource_type),
        &params(content, patient, None, true, 1),
        false,
    )?;
    Ok(entries(result.page.matches).into_iter().next())
}

/// A chart needs a few hundred points. Above twice this many entries in the range, the range
/// is sampled instead of read whole: the first entry of each of this many equal intervals.
/// (A year of 5-minute CGM readings, 105,120 entries, took 17 s to read whole in a release
/// build; sampled it is 600 indexed queries of one row each.)
pub const CHART_SAMPLES: usize = 600;

/// What a chart shows of a range.
pub struct Series {
    /// Oldest first: every entry of the range, or a sample of it.
    pub entries: Vec<Entry>,
    /// How many entries the range holds.
    pub total: usize,
    /// Whether `entries` is a sample. (The lowest and highest value of the whole range would
    /// need `_sort=value-quantity`, which is slow on a dense range today.)
    pub sampled: bool,
}

/// The entries of `content` between `from` and `to` for a chart (see [`CHART_SAMPLES`]).
pub fn series(
    state: &AppState,
    patient: &str,
    content: &DataContent,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Series, ApiError> {
    let caller = super::caller(patient);
    let search = |p: &[(String, String)]| {
        state
            .fhir
            .search(&caller, Scope::of_type(content.resource_type), p, false)
    };
    let mut count_params = params(content, patient, Some((from, to)), false, 1);
    count_params.push(("_summary".into(), "count".into()));
    let total = search(&count_params)?.page.total.unwrap_or(0) as usize;
    if total <= 2 * CHART_SAMPLES {
        let base = params(
            content,
            patient,
            Some((from, to)),
            false,
            state.config.max_page_size,
        );
        let mut entries_out = Vec::with_capacity(total);
        let mut cursor: Option<String> = None;
        loop {
            let mut p = base.clone();
            if let Some(c) = &cursor {
                p.push((PAGE_PARAMETER.to_owned(), c.clone()));
            }
            let result = search(&p)?;
            entries_out.extend(entries(result.page.matches));
            match result.page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        return Ok(Series {
            entries: entries_out,
            total,
            sampled: false,
        });
    }
    // One code at a time: a single code lets storage walk its code x date index, where an
    // OR of codes would scan every entry of the range for each sample.
    let codes: Vec<Option<String>> = if content.codes.is_empty() {
        vec![None]
    } else {
        content.codes.iter().map(|c| Some(c.token())).collect()
    };
    let span = (to - from) / CHART_SAMPLES as u32;
    let mut sample = Vec::with_capacity(CHART_SAMPLES);
    for code in codes {
        let mut count_params =
            params_with_code(content, code.clone(), patient, Some((from, to)), false, 1);
        count_params.push(("_summary".into(), "count".into()));
        if search(&count_params)?.page.total.unwrap_or(0) == 0 {
            continue;
        }
        for i in 0..CHART_SAMPLES as u32 {
            let start = from + span * i;
            let end = if i + 1 == CHART_SAMPLES as u32 {
                to
            } else {
                start + span
            };
            let p = params_with_code(content, code.clone(), patient, Some((start, end)), false, 1);
            sample.extend(entries(search(&p)?.page.matches));
        }
    }
    sample.sort_by_key(|e| super::format::resource_time(&e.resource));
    // The newest entry ends the series, so "latest" stays the real latest.
    let newest = params(content, patient, Some((from, to)), true, 1);
    if let Some(last) = entries(search(&newest)?.page.matches).into_iter().next()
        && sample.last().is_none_or(|s| s.stored.id != last.stored.id)
    {
        sample.push(last);
    }
    Ok(Series {
        entries: sample,
        total,
        sampled: true,
    })
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
        .search(&caller, Scope::of_type(content.resource_type), &p, false)?;
    Ok((entries(result.page.matches), result.page.next))
}
