//! The citizen's data as the portal reads it: through the FHIR service's search (so the
//! same compartment confinement applies as for apps), one data content at a time.

use phr_catalog::{Catalog, DataContent};
use phr_store::{AggregateValue, Aggregation, StoredResource};
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

/// A chart needs a few hundred points. Above twice this many entries in the range, a coded
/// content is drawn from per-interval aggregates computed by storage (minimum, mean and
/// maximum of every value, [`CHART_INTERVALS`] intervals); a content without codes is
/// sampled: the first entry of each of this many equal intervals.
pub const CHART_SAMPLES: usize = 600;

/// Intervals of an aggregated line chart (the chart draws at most this many points).
pub const CHART_INTERVALS: i64 = 400;

/// Glucose's target range, mmol/l: time in range counts below, within and above it.
pub const GLUCOSE_RANGE: (f64, f64) = (3.9, 10.0);

/// One interval of an aggregated series: its middle (Unix seconds) and per series the
/// (minimum, mean, maximum, sum) of its values, None when it has none.
pub struct Interval {
    pub t: i64,
    pub values: Vec<Option<(f64, f64, f64, f64)>>,
}

/// Readings below, within and above a target range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InRange {
    pub below: u64,
    pub within: u64,
    pub above: u64,
}

impl InRange {
    pub fn total(&self) -> u64 {
        self.below + self.within + self.above
    }
}

/// What a chart shows of a range.
pub struct Series {
    /// Oldest first: every entry of the range, a sample of it, or (aggregated) only the
    /// newest entry.
    pub entries: Vec<Entry>,
    /// How many entries the range holds.
    pub total: usize,
    /// Whether `entries` is a sample.
    pub sampled: bool,
    /// The range as per-interval aggregates (every value counted), when it is too dense
    /// to draw whole.
    pub intervals: Option<Vec<Interval>>,
    /// Glucose: the readings below, within and above [`GLUCOSE_RANGE`] (in mmol/l).
    pub in_range: Option<InRange>,
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
    let glucose = content.kind == phr_catalog::Kind::BloodGlucose;
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
        let in_range = glucose.then(|| in_range_of(content, &entries_out));
        return Ok(Series {
            entries: entries_out,
            total,
            sampled: false,
            intervals: None,
            in_range,
        });
    }
    // The newest entry ends the series, so "latest" stays the real latest.
    let newest = params(content, patient, Some((from, to)), true, 1);
    let last = entries(search(&newest)?.page.matches).into_iter().next();
    if content.resource_type == "Observation" && !content.codes.is_empty() {
        let (intervals, in_range) = aggregated(state, patient, content, from, to)?;
        return Ok(Series {
            entries: last.into_iter().collect(),
            total,
            sampled: false,
            intervals: Some(intervals),
            in_range: glucose.then_some(in_range),
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
    if let Some(last) = last
        && sample.last().is_none_or(|s| s.stored.id != last.stored.id)
    {
        sample.push(last);
    }
    Ok(Series {
        entries: sample,
        total,
        sampled: true,
        intervals: None,
        in_range: None,
    })
}

/// Time in range of whole entries: their values in the content's unit.
fn in_range_of(content: &DataContent, entries: &[Entry]) -> InRange {
    let unit = content.unit.map(|u| u.ucum);
    let (low, high) = GLUCOSE_RANGE;
    let mut out = InRange::default();
    for e in entries {
        let q = e.resource.get("valueQuantity");
        let field = |k: &str| q.and_then(|q| q.get(k));
        let (Some(v), true) = (
            field("value").and_then(Value::as_f64),
            unit.is_none_or(|u| field("code").and_then(Value::as_str) == Some(u)),
        ) else {
            continue;
        };
        if v < low {
            out.below += 1;
        } else if v > high {
            out.above += 1;
        } else {
            out.within += 1;
        }
    }
    out
}

/// The range as [`CHART_INTERVALS`] intervals (bar charts: days) of storage aggregates,
/// one per series (the content's value, or each component), in the content's unit, and the
/// counts against [`GLUCOSE_RANGE`] over the whole range.
fn aggregated(
    state: &AppState,
    patient: &str,
    content: &DataContent,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<(Vec<Interval>, InRange), ApiError> {
    let micros = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1000) as i64;
    let (from_us, to_us) = (micros(from), micros(to));
    let interval = if content.chart == phr_catalog::ChartKind::Bar {
        86_400_000_000
    } else {
        ((to_us - from_us) / CHART_INTERVALS).max(1)
    };
    let searched: Vec<String> = content.codes.iter().map(|c| c.token()).collect();
    let targets: Vec<(AggregateValue, Option<&str>)> = if content.series.is_empty() {
        vec![(AggregateValue::Value, content.unit.map(|u| u.ucum))]
    } else {
        content
            .series
            .iter()
            .map(|s| {
                (
                    AggregateValue::Component {
                        system: s.code.system.to_owned(),
                        code: s.code.code.to_owned(),
                    },
                    Some(s.unit.ucum),
                )
            })
            .collect()
    };
    let n = targets.len();
    let mut by_index: std::collections::BTreeMap<i64, Interval> = Default::default();
    let mut in_range = InRange::default();
    for (i, (value, unit)) in targets.into_iter().enumerate() {
        let aggregation = Aggregation {
            from: from_us,
            to: to_us,
            interval,
            value,
            bands: Some(GLUCOSE_RANGE),
        };
        let buckets =
            state
                .fhir
                .aggregate(&super::caller(patient), patient, &searched, &aggregation)?;
        // Values in another unit are not mixed in.
        for b in buckets.iter().filter(|b| unit.is_none_or(|u| b.unit == u)) {
            let start = from_us + b.index * interval;
            let end = (start + interval).min(to_us);
            let slot = by_index.entry(b.index).or_insert_with(|| Interval {
                t: (start + end) / 2 / 1_000_000,
                values: vec![None; n],
            });
            if let Some(v) = slot.values.get_mut(i) {
                *v = Some((b.min, b.mean(), b.max, b.sum));
            }
            if i == 0 {
                in_range.below += b.below;
                in_range.within += b.within;
                in_range.above += b.above;
            }
        }
    }
    Ok((by_index.into_values().collect(), in_range))
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
