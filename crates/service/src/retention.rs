//! Sandbox retention: Kanta's sandbox deletes patient data stored more than three months
//! earlier on the 1st of March, June, September and December. This module decides when the
//! job runs (a pure function of a clock, tested with injected times), and performs it through
//! the storage trait: every resource in a patient compartment whose current version was stored
//! before the cutoff is erased with its whole history. Patients themselves (the citizens'
//! pseudonyms), and resources outside any compartment (Questionnaires...), are kept.
//!
//! Never enabled in production mode: the schedule is a sandbox rule, not a records policy.
//! The web layer runs the job on its schedule; this module never sleeps or spawns.

use phr_search::model::{Clause, Prefix, QueryValue, SearchQuery, Summary, TotalMode};
use phr_store::{Erasure, Storage, StoreError};
use serde::Deserialize;
use time::{Date, Month, OffsetDateTime, Time};

use crate::export::COMPARTMENT_TYPES;
/// Resources listed per search page while collecting what to erase.
const PAGE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// `None`: on in sandbox mode, off in production. `Some(false)` turns it off everywhere;
    /// `Some(true)` is refused in production mode.
    pub enabled: Option<bool>,
    /// Months (1–12) on which the job runs.
    pub months: Vec<u8>,
    /// Day of the month on which it runs.
    pub day: u8,
    /// Time of day (UTC, `HH:MM`) at which it runs.
    pub at: String,
    /// Data stored more than this many days before the run is deleted (3 months ≈ 92 days).
    pub max_age_days: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            enabled: None,
            months: vec![3, 6, 9, 12],
            day: 1,
            at: "02:00".into(),
            max_age_days: 92,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RetentionError {
    #[error("retention.months must be 1–12, not {0}")]
    Month(u8),
    #[error("retention.day must be 1–28 (every month has it), not {0}")]
    Day(u8),
    #[error("retention.at must be HH:MM, not {0:?}")]
    At(String),
    #[error("retention.max_age_days must be at least 1")]
    Age,
    #[error("sandbox retention cannot be enabled in production mode")]
    Production,
}

/// A checked schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    months: Vec<Month>,
    day: u8,
    at: Time,
    pub max_age: time::Duration,
}

impl RetentionConfig {
    /// The schedule when retention is on in this mode, `None` when it is off.
    pub fn schedule(&self, sandbox: bool) -> Result<Option<Schedule>, RetentionError> {
        let enabled = match (self.enabled, sandbox) {
            (Some(true), false) => return Err(RetentionError::Production),
            (Some(on), _) => on,
            (None, sandbox) => sandbox,
        };
        let mut months = Vec::new();
        for &m in &self.months {
            months.push(Month::try_from(m).map_err(|_| RetentionError::Month(m))?);
        }
        if !(1..=28).contains(&self.day) {
            return Err(RetentionError::Day(self.day));
        }
        let at = parse_hh_mm(&self.at).ok_or_else(|| RetentionError::At(self.at.clone()))?;
        if self.max_age_days == 0 {
            return Err(RetentionError::Age);
        }
        Ok(enabled.then(|| Schedule {
            months,
            day: self.day,
            at,
            max_age: time::Duration::days(i64::from(self.max_age_days)),
        }))
    }
}

fn parse_hh_mm(text: &str) -> Option<Time> {
    let (h, m) = text.split_once(':')?;
    Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
}

impl Schedule {
    /// The first run strictly after `now`.
    pub fn next_after(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let now = now.to_offset(time::UtcOffset::UTC);
        // Looking two years ahead always finds a run when any month is configured.
        for year in now.year()..now.year() + 3 {
            let mut candidates: Vec<OffsetDateTime> = self
                .months
                .iter()
                .filter_map(|&m| Date::from_calendar_date(year, m, self.day).ok())
                .map(|d| d.with_time(self.at).assume_utc())
                .filter(|t| *t > now)
                .collect();
            candidates.sort();
            if let Some(first) = candidates.first() {
                return Some(*first);
            }
        }
        None
    }

    /// Resources stored before this instant are deleted by a run at `run`.
    pub fn cutoff(&self, run: OffsetDateTime) -> OffsetDateTime {
        run - self.max_age
    }
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub patients: u64,
    pub erased: u64,
}

fn micros(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1000) as i64
}

/// Erases every compartment resource whose current version was stored before `cutoff`.
pub fn run_once(storage: &dyn Storage, cutoff: OffsetDateTime) -> Result<Report, StoreError> {
    let cutoff = micros(cutoff);
    let mut report = Report::default();
    for patient in patient_ids(storage)? {
        report.patients += 1;
        for resource_type in COMPARTMENT_TYPES {
            // Collect first, erase after: erasing while paging would move the pages.
            let mut old = Vec::new();
            let query = SearchQuery {
                resource_type: resource_type.to_string(),
                compartment: Some(patient.clone()),
                clauses: vec![Clause {
                    param: "_lastUpdated".into(),
                    modifier: None,
                    chain: None,
                    values: vec![QueryValue::Date {
                        prefix: Prefix::Lt,
                        low: cutoff,
                        high: cutoff,
                    }],
                }],
                count: PAGE,
                total: TotalMode::None,
                summary: Summary::False,
                ..SearchQuery::default()
            };
            let mut page = storage.search(&query, None)?;
            loop {
                old.extend(
                    page.matches
                        .iter()
                        .filter(|r| r.last_updated < cutoff)
                        .map(|r| r.id.clone()),
                );
                match page.next.take() {
                    Some(cursor) => page = storage.search(&query, Some(&cursor))?,
                    None => break,
                }
            }
            for id in old {
                report.erased += storage.erase(
                    &patient,
                    &Erasure::One {
                        resource_type: resource_type.to_string(),
                        id,
                    },
                )?;
            }
        }
    }
    Ok(report)
}

/// Every Patient id in the store.
fn patient_ids(storage: &dyn Storage) -> Result<Vec<String>, StoreError> {
    let query = SearchQuery {
        resource_type: "Patient".into(),
        count: PAGE,
        total: TotalMode::None,
        ..SearchQuery::default()
    };
    let mut ids = Vec::new();
    let mut page = storage.search(&query, None)?;
    loop {
        ids.extend(page.matches.iter().map(|r| r.id.clone()));
        match page.next.take() {
            Some(cursor) => page = storage.search(&query, Some(&cursor))?,
            None => break,
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn schedule() -> Schedule {
        RetentionConfig::default()
            .schedule(true)
            .unwrap()
            .expect("on in sandbox")
    }

    /// Stores `resource` (Patient or a compartment resource) as if written at `at`.
    fn store_at(storage: &dyn Storage, resource: serde_json::Value, at: OffsetDateTime) {
        let index = phr_search::extract(&resource).expect("indexable");
        let patient = phr_search::patient_compartment(&resource, &index);
        let new = phr_store::NewVersion {
            resource_type: resource["resourceType"].as_str().unwrap().to_string(),
            id: resource["id"].as_str().unwrap().to_string(),
            version: 1,
            last_updated: micros(at),
            body: serde_json::to_vec(&resource).unwrap(),
            patient,
            app: None,
            index,
        };
        let outcome = storage
            .write(
                vec![phr_store::WriteOp::Create {
                    new,
                    if_none_exist: None,
                }],
                phr_store::Atomicity::AllOrNothing,
            )
            .unwrap();
        assert!(outcome[0].is_ok(), "{outcome:?}");
    }

    fn weight(id: &str, patient: &str) -> serde_json::Value {
        serde_json::json!({
            "resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": "2026-01-01T08:00:00+02:00",
            "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}
        })
    }

    #[test]
    fn the_job_erases_what_was_stored_before_the_cutoff_in_every_compartment() {
        let dir = tempfile::tempdir().unwrap();
        let storage = phr_store::sqlite::SqliteStore::open(&dir.path().join("phr.db")).unwrap();
        let old = datetime!(2026-01-10 12:00 UTC);
        let recent = datetime!(2026-05-20 12:00 UTC);
        for patient in ["p1", "p2"] {
            store_at(
                &storage,
                serde_json::json!({"resourceType": "Patient", "id": patient}),
                old,
            );
            store_at(&storage, weight(&format!("{patient}-old"), patient), old);
            store_at(&storage, weight(&format!("{patient}-new"), patient), recent);
        }
        let report = run_once(&storage, datetime!(2026-03-01 02:00 UTC)).unwrap();
        assert_eq!(report.patients, 2);
        assert_eq!(report.erased, 2);
        for patient in ["p1", "p2"] {
            assert!(
                storage
                    .read("Observation", &format!("{patient}-old"))
                    .unwrap()
                    .is_none()
            );
            assert!(
                storage
                    .read("Observation", &format!("{patient}-new"))
                    .unwrap()
                    .is_some()
            );
            // The citizen stays: only their data goes.
            assert!(storage.read("Patient", patient).unwrap().is_some());
        }
    }

    #[test]
    fn runs_on_the_first_of_march_june_september_and_december() {
        let s = schedule();
        assert_eq!(
            s.next_after(datetime!(2026-01-15 12:00 UTC)),
            Some(datetime!(2026-03-01 02:00 UTC))
        );
        assert_eq!(
            s.next_after(datetime!(2026-03-01 02:00 UTC)),
            Some(datetime!(2026-06-01 02:00 UTC))
        );
        assert_eq!(
            s.next_after(datetime!(2026-03-01 01:59 UTC)),
            Some(datetime!(2026-03-01 02:00 UTC))
        );
        assert_eq!(
            s.next_after(datetime!(2026-08-31 23:00 UTC)),
            Some(datetime!(2026-09-01 02:00 UTC))
        );
        assert_eq!(
            s.next_after(datetime!(2026-12-01 03:00 UTC)),
            Some(datetime!(2027-03-01 02:00 UTC))
        );
    }

    #[test]
    fn cutoff_is_three_months_before_the_run() {
        let s = schedule();
        assert_eq!(
            s.cutoff(datetime!(2026-06-01 02:00 UTC)),
            datetime!(2026-03-01 02:00 UTC)
        );
    }

    #[test]
    fn off_in_production_unless_asked_and_never_forced_on_there() {
        let config = RetentionConfig::default();
        assert_eq!(config.schedule(false), Ok(None));
        let forced = RetentionConfig {
            enabled: Some(true),
            ..RetentionConfig::default()
        };
        assert_eq!(forced.schedule(false), Err(RetentionError::Production));
        let off = RetentionConfig {
            enabled: Some(false),
            ..RetentionConfig::default()
        };
        assert_eq!(off.schedule(true), Ok(None));
    }

    #[test]
    fn schedule_is_configurable() {
        let config = RetentionConfig {
            months: vec![1],
            day: 15,
            at: "23:30".into(),
            max_age_days: 30,
            ..RetentionConfig::default()
        };
        let s = config.schedule(true).unwrap().unwrap();
        assert_eq!(
            s.next_after(datetime!(2026-01-20 00:00 UTC)),
            Some(datetime!(2027-01-15 23:30 UTC))
        );
        assert_eq!(
            s.cutoff(datetime!(2027-01-15 23:30 UTC)),
            datetime!(2026-12-16 23:30 UTC)
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let bad = |c: RetentionConfig| c.schedule(true).unwrap_err();
        assert_eq!(
            bad(RetentionConfig {
                months: vec![13],
                ..Default::default()
            }),
            RetentionError::Month(13)
        );
        assert_eq!(
            bad(RetentionConfig {
                day: 31,
                ..Default::default()
            }),
            RetentionError::Day(31)
        );
        assert_eq!(
            bad(RetentionConfig {
                at: "25:00".into(),
                ..Default::default()
            }),
            RetentionError::At("25:00".into())
        );
        assert_eq!(
            bad(RetentionConfig {
                max_age_days: 0,
                ..Default::default()
            }),
            RetentionError::Age
        );
    }
}
