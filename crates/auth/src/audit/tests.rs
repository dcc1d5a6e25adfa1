//! Tests of the audit log over its SQLite store: queries, export, and the hash chain across
//! encoding versions.

use std::path::Path;
use std::sync::Arc;

use rusqlite::params;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::*;
use crate::clock::ManualClock;
use crate::sqlite::Sqlite;

fn log_on(db: Arc<Sqlite>, dir: &Path) -> AuditLog {
    let store: Arc<dyn AuditStore> = Arc::new(SqliteAuditStore::new(db));
    AuditLog::start(
        store.clone(),
        store,
        Arc::new(ManualClock::at_micros(1_000_000)),
        100,
        dir.to_path_buf(),
    )
    .unwrap()
}

/// The record struct and the row writing of the first release, copied as they were: the
/// chain hashed `serde_json::to_vec` of this struct.
#[derive(Serialize)]
struct FirstReleaseRecord {
    id: String,
    recorded_us: i64,
    patient_id: Option<String>,
    app_id: Option<String>,
    app_name: Option<String>,
    actor: String,
    usage: Usage,
    interaction: Option<String>,
    resource_type: Option<String>,
    search_criteria: Option<String>,
    status: u16,
    error_code: Option<String>,
    error_detail: Option<String>,
    amount: u64,
    resources: Vec<String>,
    client_address: Option<String>,
    user_rights: Option<String>,
}

fn write_first_release_rows(conn: &rusqlite::Connection, count: usize) {
    let mut chain = vec![0u8; 32];
    for i in 0..count {
        let r = FirstReleaseRecord {
            id: format!("old-{i}"),
            recorded_us: 1_000 + i as i64,
            patient_id: Some("p".into()),
            app_id: Some("app".into()),
            app_name: Some("Steps".into()),
            actor: "Patient/p".into(),
            usage: Usage::Application,
            interaction: Some("search-type".into()),
            resource_type: Some("Observation".into()),
            search_criteria: Some("patient=p".into()),
            status: 200,
            error_code: None,
            error_detail: None,
            amount: 1,
            resources: vec![format!("Observation/o{i}")],
            client_address: Some("192.0.2.1".into()),
            user_rights: Some("patient/Observation.read".into()),
        };
        let mut hasher = Sha256::new();
        hasher.update(&chain);
        hasher.update(serde_json::to_vec(&r).unwrap());
        chain = hasher.finalize().to_vec();
        conn.execute(
            "INSERT INTO audit (id, recorded_us, patient_id, app_id, app_name, actor, usage, interaction, resource_type,
                search_criteria, status, error_code, error_detail, amount, resources, client_address, user_rights, chain)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            params![
                r.id,
                r.recorded_us,
                r.patient_id,
                r.app_id,
                r.app_name,
                r.actor,
                r.usage.code(),
                r.interaction,
                r.resource_type,
                r.search_criteria,
                r.status,
                r.error_code,
                r.error_detail,
                r.amount as i64,
                serde_json::to_string(&r.resources).unwrap(),
                r.client_address,
                r.user_rights,
                chain,
            ],
        )
        .unwrap();
    }
}

/// A database holding three records written by the first release followed by two written
/// now (with route and method), and the audit log over it.
fn mixed_chain(dir: &Path) -> (AuditLog, std::path::PathBuf) {
    let path = dir.join("auth.db");
    let old = crate::sqlite::open_at_version(&path, 2);
    write_first_release_rows(&old, 3);
    drop(old);
    let log = log_on(Sqlite::open(&path).unwrap(), dir);
    for i in 0..2 {
        let mut r = AuditRecord::new(Usage::Application, "Patient/p");
        r.id = format!("new-{i}");
        r.patient_id = Some("p".into());
        r.interaction = Some("read".into());
        r.route = Some("/fhir/r4/{type}/{id}".into());
        r.method = Some("GET".into());
        r.status = 401;
        r.error_code = Some("login".into());
        r.client_address = Some("192.0.2.7".into());
        log.record(r).unwrap();
    }
    log.flush().unwrap();
    (log, path)
}

/// Changes the `seq`th stored record behind the software's back, as someone with the file
/// could: unpacks it, applies `change`, and writes it back packed.
fn tamper(path: &Path, seq: i64, change: impl FnOnce(&mut AuditRecord)) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_update")
        .unwrap();
    let (_, stored, _, _) = conn
        .query_row(
            &format!(
                "SELECT {} FROM audit_log WHERE seq = ?1",
                super::sqlite::COLUMNS
            ),
            [seq],
            super::sqlite::packed_from_row,
        )
        .unwrap();
    let mut record = packed::unpack(&stored, &mut |id| {
        Ok(
            conn.query_row("SELECT name FROM audit_names WHERE id = ?1", [id], |r| {
                r.get(0)
            })?,
        )
    })
    .unwrap();
    change(&mut record);
    let changed = packed::pack(&record, &mut |name| {
        conn.execute(
            "INSERT OR IGNORE INTO audit_names (name) VALUES (?1)",
            [name],
        )?;
        Ok(
            conn.query_row("SELECT id FROM audit_names WHERE name = ?1", [name], |r| {
                r.get(0)
            })?,
        )
    })
    .unwrap();
    let rows = conn
        .execute(
            "UPDATE audit_log SET recorded_us = ?2, patient = ?3, app = ?4, app_name = ?5, usage = ?6, body = ?7
             WHERE seq = ?1",
            params![
                seq,
                changed.recorded_us,
                changed.patient,
                changed.app,
                changed.app_name,
                changed.usage,
                changed.body
            ],
        )
        .unwrap();
    assert_eq!(rows, 1);
}

#[test]
fn a_chain_of_first_release_and_current_records_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = mixed_chain(dir.path());
    assert_eq!(log.verify().unwrap(), None);
    let mut out = Vec::new();
    assert_eq!(log.export(&mut out, None, None).unwrap(), 5);
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let encodings: Vec<u64> = lines
        .iter()
        .map(|l| l["encoding"].as_u64().unwrap())
        .collect();
    assert_eq!(encodings, [1, 1, 1, 2, 2]);
    assert_eq!(lines[3]["route"], "/fhir/r4/{type}/{id}");
    assert_eq!(lines[3]["method"], "GET");
    assert_eq!(lines[0]["route"], Value::Null);
}

#[test]
fn altering_an_old_record_is_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = mixed_chain(dir.path());
    tamper(&path, 2, |r| r.amount = 0);
    assert_eq!(log.verify().unwrap().as_deref(), Some("old-1"));
}

#[test]
fn altering_a_new_record_is_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = mixed_chain(dir.path());
    tamper(&path, 5, |r| r.route = Some("/fhir/r4/{type}".into()));
    assert_eq!(log.verify().unwrap().as_deref(), Some("new-1"));
}

#[test]
fn relabelling_a_record_with_another_encoding_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (log, path) = mixed_chain(dir.path());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("DROP TRIGGER audit_log_no_update")
        .unwrap();
    let relabelled = conn
        .execute("UPDATE audit_log SET encoding = 2 WHERE seq = 3", [])
        .unwrap();
    assert_eq!(relabelled, 1);
    assert_eq!(log.verify().unwrap().as_deref(), Some("old-2"));
}

/// A professional's access as the FHIR layer records it.
pub(super) fn professional_access(id: &str, patient: &str) -> AuditRecord {
    let mut r = AuditRecord::new(Usage::Application, "Practitioner/tp-1");
    r.id = id.into();
    r.recorded_us = 2_000_000;
    r.patient_id = Some(patient.into());
    r.app_id = Some("demo-pro-app".into());
    r.app_name = Some("Demo Pro".into());
    r.interaction = Some("search-type".into());
    r.resource_type = Some("Observation".into());
    r.professional_id = Some("tp-1".into());
    r.professional_name = Some("Doctor Test Person".into());
    r.org_oid = Some("1.2.246.10.99999999".into());
    r.org_name = Some("Demo Health Centre".into());
    r.care_id = Some("ep-1".into());
    r.contents = vec!["blood-pressure".into(), "blood-glucose".into()];
    r
}

#[test]
fn a_professionals_access_is_stored_with_who_for_whom_and_what_and_chains() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_on(
        Sqlite::open(&dir.path().join("auth.db")).unwrap(),
        dir.path(),
    );
    let record = professional_access("pro-1", "p");
    log.record(record.clone()).unwrap();
    let (_, records) = log.for_patient("p", &AuditQuery::default(), 10, 0).unwrap();
    assert_eq!(records, vec![record]);
    assert_eq!(log.verify().unwrap(), None);
}

#[test]
fn records_filter_by_patient_app_and_time_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_on(
        Sqlite::open(&dir.path().join("auth.db")).unwrap(),
        dir.path(),
    );
    let mut times = Vec::new();
    for (i, app) in ["a", "b", "a"].iter().enumerate() {
        let mut r = AuditRecord::new(Usage::Application, "Patient/p");
        r.patient_id = Some("p".into());
        r.app_id = Some((*app).into());
        r.app_name = Some(format!("App {app}"));
        r.recorded_us = 1_000_000 * (i as i64 + 1);
        times.push(r.recorded_us);
        log.record(r).unwrap();
    }
    let mut portal = AuditRecord::new(Usage::CitizenPortal, "Patient/p");
    portal.patient_id = Some("p".into());
    portal.app_id = Some("portal".into());
    portal.recorded_us = 9_000_000;
    log.record(portal).unwrap();
    let mut other = AuditRecord::new(Usage::Application, "Patient/q");
    other.patient_id = Some("q".into());
    other.app_id = Some("a".into());
    log.record(other).unwrap();

    let (total, all) = log.for_patient("p", &AuditQuery::default(), 10, 0).unwrap();
    assert_eq!(total, 4);
    assert_eq!(all[1].recorded_us, times[2], "newest first");
    let only_a = AuditQuery {
        app_id: Some("a".into()),
        ..AuditQuery::default()
    };
    assert_eq!(log.for_patient("p", &only_a, 10, 0).unwrap().0, 2);
    let window = AuditQuery {
        since_us: Some(times[1]),
        until_us: Some(times[2]),
        ..AuditQuery::default()
    };
    let (n, records) = log.for_patient("p", &window, 10, 0).unwrap();
    assert_eq!((n, records[0].app_id.as_deref()), (1, Some("b")));
    let (_, second_page) = log.for_patient("p", &AuditQuery::default(), 2, 2).unwrap();
    assert_eq!(second_page.len(), 2);
    assert_eq!(
        log.apps_for_patient("p").unwrap(),
        vec![
            ("a".to_string(), "App a".to_string()),
            ("b".to_string(), "App b".to_string()),
            ("portal".to_string(), "portal".to_string()),
        ]
    );
    let last = log.last_access_by_app("p").unwrap();
    assert_eq!(last.get("a"), Some(&times[2]));
    assert_eq!(last.get("b"), Some(&times[1]));
    assert_eq!(last.get("portal"), None, "only API accesses");
    let page = log.events_for_patient("q", 10, 0).unwrap();
    assert_eq!(
        (page.total, page.events[0]["resourceType"].as_str()),
        (1, Some("AuditEvent"))
    );
}

#[test]
fn records_get_an_id_and_the_clocks_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_on(
        Sqlite::open(&dir.path().join("auth.db")).unwrap(),
        dir.path(),
    );
    let mut r = AuditRecord::new(Usage::Operator, "operator");
    r.patient_id = Some("p".into());
    log.record(r).unwrap();
    let (_, records) = log.for_patient("p", &AuditQuery::default(), 1, 0).unwrap();
    assert_eq!(records[0].recorded_us, 1_000_000);
    assert_eq!(records[0].id.len(), 36);
}

#[test]
fn export_respects_the_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_on(
        Sqlite::open(&dir.path().join("auth.db")).unwrap(),
        dir.path(),
    );
    for t in [10, 20, 30] {
        let mut r = AuditRecord::new(Usage::Operator, "operator");
        r.recorded_us = t;
        log.record(r).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(log.export(&mut out, Some(20), Some(30)).unwrap(), 1);
    assert_eq!(log.export(&mut Vec::new(), None, None).unwrap(), 3);
}
