//! `Observation/$stats` (R4 OperationDefinition `Observation-stats`) and the aggregate the
//! citizen portal's charts read: count, minimum, maximum, sum and mean of a citizen's
//! numeric Observations per code (and unit), over a period, computed by storage in one
//! statement ([`phr_store::Storage::aggregate`]).
//!
//! An aggregate reads exactly what a search of Observations for that citizen by the same
//! caller would read: the query is built and confined by the search's own path
//! (`authorized_query`: compartment, granular scopes, a professional's permit and its
//! security-label exclusion, an application's accepted contents).
//!
//! Beyond R4: `interval` (decimal hours) splits the period into intervals with one
//! `statistic` Observation each, and `range-low`/`range-high` count the values below, within
//! and above a range (time in range for glucose). Never computes a statistic it cannot
//! compute exactly: unsupported `statistic` codes are refused, not approximated.

use phr_catalog::Catalog;
use phr_store::{AggregateValue, Aggregation, Bucket, Micros};
use serde_json::{Map, Value, json};

use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::search::Scope;
use crate::service::FhirService;
use crate::time::{now_micros, parse_instant, to_instant};

/// The code system of R4's statistic codes.
pub const STATISTICS_SYSTEM: &str = "http://hl7.org/fhir/observation-statistics";
/// Our code system for the range counts (`below`, `within`, `above`).
pub const RANGE_SYSTEM: &str = "urn:phr:observation-statistics-range";
/// The statistics computed exactly from the aggregate.
pub const SUPPORTED: &[&str] = &["average", "minimum", "maximum", "count", "sum"];
/// Most intervals one `$stats` call may ask for.
pub const MAX_INTERVALS: i64 = 10_000;
const HOUR: f64 = 3_600_000_000.0;
/// The widest period: from year 1 to the end of year 9999 (what a FHIR instant can say).
const EARLIEST: Micros = -62_135_596_800_000_000;
const LATEST: Micros = 253_402_300_800_000_000;

/// Which values of one requested code are summarized.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The code the answer is about (`system`, `code`).
    pub system: String,
    pub code: String,
    /// The codes searched (`system|code` tokens of Observation.code).
    pub searched: Vec<String>,
    pub value: AggregateValue,
}

/// The targets of a requested code: a panel of the catalogue (blood pressure) gives one per
/// member (component), a member's code is read from its panel, any other code its own value.
pub fn targets(system: &str, code: &str) -> Vec<Target> {
    let contents = Catalog::get()
        .contents()
        .iter()
        .filter(|c| c.resource_type == "Observation");
    for content in contents {
        let is_panel = content
            .codes
            .iter()
            .any(|c| c.system == system && c.code == code);
        let searched: Vec<String> = content.codes.iter().map(|c| c.token()).collect();
        if is_panel && !content.series.is_empty() {
            return content
                .series
                .iter()
                .map(|s| Target {
                    system: s.code.system.to_owned(),
                    code: s.code.code.to_owned(),
                    searched: searched.clone(),
                    value: AggregateValue::Component {
                        system: s.code.system.to_owned(),
                        code: s.code.code.to_owned(),
                    },
                })
                .collect();
        }
        if content
            .series
            .iter()
            .any(|s| s.code.system == system && s.code.code == code)
        {
            return vec![Target {
                system: system.to_owned(),
                code: code.to_owned(),
                searched,
                value: AggregateValue::Component {
                    system: system.to_owned(),
                    code: code.to_owned(),
                },
            }];
        }
    }
    vec![Target {
        system: system.to_owned(),
        code: code.to_owned(),
        searched: vec![format!("{system}|{code}")],
        value: AggregateValue::Value,
    }]
}

/// A parsed `$stats` request.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRequest {
    pub patient: String,
    /// (system, code) pairs, in the order asked.
    pub codes: Vec<(String, String)>,
    pub from: Micros,
    pub to: Micros,
    pub statistics: Vec<String>,
    /// Interval width (µs); None: the whole period is one interval.
    pub interval: Option<Micros>,
    pub range: Option<(f64, f64)>,
}

/// The answer of `$stats`: a Parameters resource and the citizen it was about.
pub struct StatsAnswer {
    pub parameters: Value,
    pub patient: String,
}

fn one<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>> {
    let mut found = params.iter().filter(|(n, _)| n == name);
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(Error::invalid(format!(
            "$stats takes at most one {name} parameter"
        )));
    }
    Ok(first)
}

fn decimal(name: &str, text: &str) -> Result<f64> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| Error::invalid(format!("{name} must be a decimal number, not '{text}'")))
}

fn instant(name: &str, text: &str) -> Result<Micros> {
    parse_instant(text.trim()).ok_or_else(|| {
        Error::invalid(format!(
            "{name} must be an instant with a time zone (2024-01-01T00:00:00Z), not '{text}'"
        ))
    })
}

fn hours(name: &str, text: &str) -> Result<Micros> {
    let h = decimal(name, text)?;
    if h <= 0.0 || h * HOUR >= (LATEST - EARLIEST) as f64 {
        return Err(Error::invalid(format!(
            "{name} is a number of hours above zero, not '{text}'"
        )));
    }
    Ok((h * HOUR).round().max(1.0) as Micros)
}

/// The parameters of a POST body (a Parameters resource) as name/value text pairs, the
/// `period` as `start/end`, a `coding` as `system|code`.
pub fn body_parameters(body: &Value) -> Result<Vec<(String, String)>> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Error::invalid("POST $stats takes a Parameters resource"));
    }
    let mut out = Vec::new();
    for p in body
        .get("parameter")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("every parameter of $stats has a name"))?;
        let text = if let Some(period) = p.get("valuePeriod") {
            let end = |k: &str| period.get(k).and_then(Value::as_str).unwrap_or("");
            format!("{}/{}", end("start"), end("end"))
        } else if let Some(coding) = p.get("valueCoding") {
            let part = |k: &str| coding.get(k).and_then(Value::as_str).unwrap_or("");
            format!("{}|{}", part("system"), part("code"))
        } else if let Some(v) = [
            "valueUri",
            "valueString",
            "valueCode",
            "valueDecimal",
            "valueBoolean",
            "valuePositiveInt",
            "valueInteger",
            "valueReference",
        ]
        .iter()
        .find_map(|k| p.get(*k))
        {
            match v {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("reference")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                other => other.to_string(),
            }
        } else {
            return Err(Error::invalid(format!(
                "the $stats parameter {name} has no value this operation reads"
            )));
        };
        out.push((name.to_owned(), text));
    }
    Ok(out)
}

/// Parses `$stats` parameters (GET query or a POST body's, see [`body_parameters`]).
pub fn parse_request(params: &[(String, String)], now: Micros) -> Result<StatsRequest> {
    const KNOWN: &[&str] = &[
        "subject",
        "code",
        "system",
        "coding",
        "duration",
        "period",
        "statistic",
        "include",
        "limit",
        "interval",
        "range-low",
        "range-high",
        "_format",
        "_pretty",
    ];
    if let Some((name, _)) = params.iter().find(|(n, _)| !KNOWN.contains(&n.as_str())) {
        return Err(Error::invalid(format!(
            "$stats has no parameter {name}; it takes {}",
            KNOWN
                .iter()
                .filter(|k| !k.starts_with('_'))
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let subject = one(params, "subject")?
        .ok_or_else(|| Error::invalid("$stats needs subject=Patient/[id]"))?;
    let patient = subject
        .strip_prefix("Patient/")
        .unwrap_or(subject)
        .to_owned();
    crate::search::check_compartment_id(&patient)?;
    let system = one(params, "system")?;
    let mut codes = Vec::new();
    for (_, value) in params.iter().filter(|(n, _)| n == "code") {
        for code in value.split(',').map(str::trim) {
            let Some(system) = system else {
                return Err(Error::invalid(
                    "$stats reads code together with system (or a coding system|code)",
                ));
            };
            if code.is_empty() {
                return Err(Error::invalid("an empty code in $stats"));
            }
            codes.push((system.to_owned(), code.to_owned()));
        }
    }
    for (_, value) in params.iter().filter(|(n, _)| n == "coding") {
        for coding in value.split(',').map(str::trim) {
            match coding.split_once('|') {
                Some((s, c)) if !s.is_empty() && !c.is_empty() => {
                    codes.push((s.to_owned(), c.to_owned()))
                }
                _ => {
                    return Err(Error::invalid(format!(
                        "a coding of $stats is system|code, not '{coding}'"
                    )));
                }
            }
        }
    }
    if codes.is_empty() {
        return Err(Error::invalid(
            "$stats needs at least one code (code with system, or coding)",
        ));
    }
    if system.is_some() && !params.iter().any(|(n, _)| n == "code") {
        return Err(Error::invalid("system is given without a code"));
    }
    let (from, to) = match (one(params, "duration")?, one(params, "period")?) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid("$stats takes duration or period, not both"));
        }
        (Some(d), None) => (now - hours("duration", d)?, now),
        (None, Some(p)) => {
            let (start, end) = p.split_once('/').ok_or_else(|| {
                Error::invalid("period is [start]/[end], two instants with a time zone")
            })?;
            let from = if start.trim().is_empty() {
                EARLIEST
            } else {
                instant("the period's start", start)?
            };
            let to = if end.trim().is_empty() {
                LATEST
            } else {
                instant("the period's end", end)?
            };
            if from >= to {
                return Err(Error::invalid("the period's start must be before its end"));
            }
            (from, to)
        }
        (None, None) => (EARLIEST, LATEST),
    };
    let mut statistics: Vec<String> = Vec::new();
    for (_, value) in params.iter().filter(|(n, _)| n == "statistic") {
        for s in value.split(',').map(str::trim) {
            if !SUPPORTED.contains(&s) {
                return Err(Error::invalid(format!(
                    "the statistic '{s}' is not computed here; supported: {}",
                    SUPPORTED.join(", ")
                )));
            }
            if !statistics.iter().any(|x| x == s) {
                statistics.push(s.to_owned());
            }
        }
    }
    if statistics.is_empty() {
        return Err(Error::invalid(format!(
            "$stats needs statistic (one or more of {})",
            SUPPORTED.join(", ")
        )));
    }
    match one(params, "include")? {
        None | Some("false") => {}
        Some("true") => {
            return Err(Error::not_implemented(
                "$stats does not return the source Observations (include=true); search them with the same code and date range",
            ));
        }
        Some(other) => {
            return Err(Error::invalid(format!(
                "include is true or false, not '{other}'"
            )));
        }
    }
    if one(params, "limit")?.is_some() {
        return Err(Error::not_implemented(
            "$stats does not limit the statistics to the last N Observations (limit); give a period instead",
        ));
    }
    let interval = one(params, "interval")?
        .map(|i| hours("interval", i))
        .transpose()?;
    if let Some(width) = interval
        && (to - from) / width >= MAX_INTERVALS
    {
        return Err(Error::invalid(format!(
            "at most {MAX_INTERVALS} intervals: widen interval or narrow the period"
        )));
    }
    let range = match (one(params, "range-low")?, one(params, "range-high")?) {
        (None, None) => None,
        (Some(l), Some(h)) => {
            let (low, high) = (decimal("range-low", l)?, decimal("range-high", h)?);
            if low > high {
                return Err(Error::invalid("range-low must not be above range-high"));
            }
            Some((low, high))
        }
        _ => {
            return Err(Error::invalid(
                "range-low and range-high are given together",
            ));
        }
    };
    Ok(StatsRequest {
        patient,
        codes,
        from,
        to,
        statistics,
        interval,
        range,
    })
}

impl FhirService {
    /// The aggregate of `target`'s values in `patient`'s Observations, as `caller` may read
    /// them: the query is the one a search by `caller` for these codes would run.
    pub fn aggregate(
        &self,
        caller: &Caller,
        patient: &str,
        searched: &[String],
        aggregation: &Aggregation,
    ) -> Result<Vec<Bucket>> {
        let params = vec![
            ("patient".to_owned(), patient.to_owned()),
            ("code".to_owned(), searched.join(",")),
        ];
        let authorized =
            self.authorized_query(caller, Scope::of_type("Observation"), &params, false)?;
        if authorized.confined {
            // Contents sharing a profile are told apart by code: every code read must be
            // one of an accepted content's.
            crate::contents::check_codes(caller, "Observation", searched)?;
        }
        Ok(self.storage.aggregate(&authorized.query, aggregation)?)
    }

    /// `Observation/$stats`.
    pub fn stats_operation(
        &self,
        caller: &Caller,
        params: &[(String, String)],
    ) -> Result<StatsAnswer> {
        let request = parse_request(params, now_micros())?;
        let interval = request.interval.unwrap_or(request.to - request.from);
        let mut parameter = Vec::new();
        for (system, code) in &request.codes {
            for target in targets(system, code) {
                let aggregation = Aggregation {
                    from: request.from,
                    to: request.to,
                    interval,
                    value: target.value.clone(),
                    bands: request.range,
                };
                let buckets =
                    self.aggregate(caller, &request.patient, &target.searched, &aggregation)?;
                for bucket in &buckets {
                    parameter.push(json!({
                        "name": "statistic",
                        "resource": statistic(&request, &target, bucket, interval),
                    }));
                }
            }
        }
        Ok(StatsAnswer {
            parameters: json!({"resourceType": "Parameters", "parameter": parameter}),
            patient: request.patient,
        })
    }
}

/// One `statistic` Observation: the target's code, the interval as `effectivePeriod`, one
/// component per statistic asked (and the range counts).
fn statistic(request: &StatsRequest, target: &Target, bucket: &Bucket, interval: Micros) -> Value {
    let start = request
        .from
        .saturating_add(bucket.index.saturating_mul(interval));
    let end = start.saturating_add(interval).min(request.to);
    let quantity = |v: f64| {
        let mut q = Map::new();
        q.insert("value".into(), json!(v));
        if !bucket.unit.is_empty() {
            q.insert("unit".into(), json!(bucket.unit));
            q.insert("code".into(), json!(bucket.unit));
        }
        if !bucket.unit_system.is_empty() {
            q.insert("system".into(), json!(bucket.unit_system));
        }
        Value::Object(q)
    };
    let mut components = Vec::new();
    for s in &request.statistics {
        let value = match s.as_str() {
            "average" => ("valueQuantity", quantity(bucket.mean())),
            "minimum" => ("valueQuantity", quantity(bucket.min)),
            "maximum" => ("valueQuantity", quantity(bucket.max)),
            "sum" => ("valueQuantity", quantity(bucket.sum)),
            _ => ("valueInteger", json!(bucket.count)),
        };
        components.push(json!({
            "code": {"coding": [{"system": STATISTICS_SYSTEM, "code": s}]},
            value.0: value.1,
        }));
    }
    if request.range.is_some() {
        for (code, n) in [
            ("below", bucket.below),
            ("within", bucket.within),
            ("above", bucket.above),
        ] {
            components.push(json!({
                "code": {"coding": [{"system": RANGE_SYSTEM, "code": code}]},
                "valueInteger": n,
            }));
        }
    }
    json!({
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": target.system, "code": target.code}]},
        "subject": {"reference": format!("Patient/{}", request.patient)},
        "effectivePeriod": {"start": to_instant(start), "end": to_instant(end)},
        "component": components,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_request_reads_codes_periods_intervals_and_ranges() {
        let r = parse_request(
            &p(&[
                ("subject", "Patient/p1"),
                ("system", "http://loinc.org"),
                ("code", "15074-8"),
                ("coding", "http://loinc.org|29463-7"),
                ("period", "2024-01-01T00:00:00Z/2024-01-02T00:00:00Z"),
                ("statistic", "average,count"),
                ("interval", "1"),
                ("range-low", "3.9"),
                ("range-high", "10"),
            ]),
            0,
        )
        .unwrap();
        assert_eq!(r.patient, "p1");
        assert_eq!(r.codes.len(), 2);
        assert_eq!(r.to - r.from, 24 * 3_600_000_000);
        assert_eq!(r.interval, Some(3_600_000_000));
        assert_eq!(r.range, Some((3.9, 10.0)));
        let d = parse_request(
            &p(&[
                ("subject", "p1"),
                ("coding", "http://loinc.org|15074-8"),
                ("duration", "2"),
                ("statistic", "maximum"),
            ]),
            10 * 3_600_000_000,
        )
        .unwrap();
        assert_eq!((d.from, d.to), (8 * 3_600_000_000, 10 * 3_600_000_000));
    }

    #[test]
    fn bad_requests_are_refused_with_what_is_supported() {
        let base = [
            ("subject", "Patient/p1"),
            ("coding", "http://loinc.org|15074-8"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(extra);
            parse_request(&p(&all), 0)
        };
        let median = with(&[("statistic", "median")]).unwrap_err();
        assert!(median.to_string().contains("average, minimum"), "{median}");
        for bad in [
            vec![],
            vec![("statistic", "average"), ("duration", "-1")],
            vec![
                ("statistic", "average"),
                ("period", "2024-01-02T00:00:00Z/2024-01-01T00:00:00Z"),
            ],
            vec![("statistic", "average"), ("interval", "0")],
            vec![("statistic", "average"), ("range-low", "4")],
            vec![("statistic", "average"), ("nonsense", "1")],
            vec![("statistic", "average"), ("duration", "1"), ("period", "/")],
            vec![("statistic", "average"), ("code", "15074-8")],
        ] {
            assert!(with(&bad).is_err(), "{bad:?}");
        }
        assert!(parse_request(&p(&[("statistic", "average")]), 0).is_err());
        let include = with(&[("statistic", "average"), ("include", "true")]).unwrap_err();
        assert_eq!(include.kind(), crate::ErrorKind::NotImplemented);
    }

    #[test]
    fn a_blood_pressure_panel_is_read_by_its_members() {
        let t = targets("http://loinc.org", "85354-9");
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(matches!(t[0].value, AggregateValue::Component { .. }));
        let glucose = targets("http://loinc.org", "15074-8");
        assert_eq!(glucose[0].value, AggregateValue::Value);
    }
}
