//! The audit log: one record per request with the fields of Kela's log register (time,
//! citizen, application, acting person, usage type, search criteria, result, error, amount
//! of data returned, resources touched, the app's user rights).
//!
//! Records are handed to a writer thread through a bounded queue and committed in batches,
//! so the request path never waits for a disk write; when the queue is full the caller
//! waits (records are never dropped). A clean shutdown drains the queue; if the database
//! cannot be written at shutdown the records go to an `audit-unwritten-*.ndjson` file.
//! Each row carries a hash chained to the previous one, and the table refuses UPDATE and
//! DELETE: there is no API that changes a record.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crossbeam_channel::{Receiver, Sender, bounded};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::enforce::AccessContext;
use crate::error::{AuthError, Result};
use crate::scope::Interaction;
use crate::service::AuthService;

/// Identifier system for application ids in AuditEvent agents.
pub const APPLICATION_ID_SYSTEM: &str = "urn:phr:application-id";

/// Through which channel the access happened (Kela: usage type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Usage {
    /// A wellbeing or professional application through the FHIR API.
    Application,
    /// The citizen through the portal.
    CitizenPortal,
    /// Login, consent, token issuing, withdrawal.
    Authorization,
    /// An operator command.
    Operator,
    /// The unauthenticated open sandbox.
    OpenSandbox,
}

impl Usage {
    pub fn code(self) -> &'static str {
        match self {
            Usage::Application => "application",
            Usage::CitizenPortal => "citizen-portal",
            Usage::Authorization => "authorization",
            Usage::Operator => "operator",
            Usage::OpenSandbox => "open-sandbox",
        }
    }
}

/// One audited request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Set by [`AuthService::audit`] when left empty.
    #[serde(default)]
    pub id: String,
    /// Microseconds since the epoch; set by [`AuthService::audit`] when 0.
    #[serde(default)]
    pub recorded_us: i64,
    /// The data subject (Patient id).
    pub patient_id: Option<String>,
    pub app_id: Option<String>,
    pub app_name: Option<String>,
    /// The acting person or party: `Patient/<id>`, `Practitioner/<id>`, `operator`,
    /// `system`, `anonymous`.
    pub actor: String,
    pub usage: Usage,
    /// FHIR interaction (`read`, `search-type`, `create`, …) or auth event (`login`,
    /// `consent`, `token`, `withdraw`).
    pub interaction: Option<String>,
    pub resource_type: Option<String>,
    /// The search parameters as received (query string), for searches.
    pub search_criteria: Option<String>,
    /// HTTP status of the response.
    pub status: u16,
    /// Error code (e.g. OperationOutcome issue code or OAuth error).
    pub error_code: Option<String>,
    pub error_detail: Option<String>,
    /// Number of resources returned.
    pub amount: u64,
    /// `Type/id` of every resource read or written.
    pub resources: Vec<String>,
    pub client_address: Option<String>,
    /// The app's granted scope at the time.
    pub user_rights: Option<String>,
}

impl AuditRecord {
    pub fn new(usage: Usage, actor: impl Into<String>) -> Self {
        AuditRecord {
            id: String::new(),
            recorded_us: 0,
            patient_id: None,
            app_id: None,
            app_name: None,
            actor: actor.into(),
            usage,
            interaction: None,
            resource_type: None,
            search_criteria: None,
            status: 200,
            error_code: None,
            error_detail: None,
            amount: 0,
            resources: Vec::new(),
            client_address: None,
            user_rights: None,
        }
    }

    /// A record for a FHIR request made with `context`; fill in the outcome afterwards.
    pub fn for_access(
        context: &AccessContext,
        interaction: Interaction,
        resource_type: &str,
    ) -> Self {
        let actor = match &context.patient {
            Some(patient) => format!("Patient/{patient}"),
            None => "system".to_owned(),
        };
        let mut record = AuditRecord::new(Usage::Application, actor);
        record.patient_id = context.patient.clone();
        record.app_id = Some(context.app_id.clone());
        record.app_name = Some(context.app_name.clone());
        record.interaction = Some(fhir_interaction_code(interaction).to_owned());
        record.resource_type = Some(resource_type.to_owned());
        record.user_rights = Some(context.scope.clone());
        record
    }
}

/// The restful-interaction code for an interaction.
pub fn fhir_interaction_code(interaction: Interaction) -> &'static str {
    match interaction {
        Interaction::Read => "read",
        Interaction::Search => "search-type",
        Interaction::Create => "create",
        Interaction::Update => "update",
        Interaction::Delete => "delete",
    }
}

enum Message {
    Record(Box<AuditRecord>),
    Flush(Sender<()>),
}

/// The writer thread and its queue.
pub(crate) struct AuditLog {
    sender: Mutex<Option<Sender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AuditLog {
    pub fn start(db_path: &Path, capacity: usize) -> Result<AuditLog> {
        let conn = crate::db::open_existing(db_path)?;
        let last: Vec<u8> = conn
            .query_row(
                "SELECT chain FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap_or_else(|_| vec![0u8; 32]);
        let (sender, receiver) = bounded(capacity.max(1));
        let fallback_dir = db_path.parent().map(Path::to_path_buf).unwrap_or_default();
        let thread = std::thread::Builder::new()
            .name("phr-audit".into())
            .spawn(move || writer(conn, receiver, last, fallback_dir))?;
        Ok(AuditLog {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    fn sender(&self) -> Result<Sender<Message>> {
        self.sender
            .lock()
            .ok()
            .and_then(|s| s.clone())
            .ok_or(AuthError::AuditClosed)
    }

    pub fn record(&self, record: AuditRecord) -> Result<()> {
        self.sender()?
            .send(Message::Record(Box::new(record)))
            .map_err(|_| AuthError::AuditClosed)
    }

    pub fn flush(&self) -> Result<()> {
        let (done, wait) = bounded(1);
        self.sender()?
            .send(Message::Flush(done))
            .map_err(|_| AuthError::AuditClosed)?;
        wait.recv().map_err(|_| AuthError::AuditClosed)
    }

    /// Drains the queue and stops the writer.
    pub fn close(&self) {
        if let Ok(mut sender) = self.sender.lock() {
            sender.take();
        }
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

const BATCH: usize = 1000;

fn writer(
    mut conn: Connection,
    receiver: Receiver<Message>,
    mut chain: Vec<u8>,
    fallback_dir: PathBuf,
) {
    let mut pending: Vec<AuditRecord> = Vec::new();
    let mut waiting: Vec<Sender<()>> = Vec::new();
    let mut failures = 0u32;
    loop {
        let first = if pending.is_empty() {
            match receiver.recv() {
                Ok(message) => Some(message),
                Err(_) => break,
            }
        } else {
            // Earlier write failed: retry after a pause, still accepting new records.
            match receiver.recv_timeout(Duration::from_secs(1)) {
                Ok(message) => Some(message),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        };
        let mut next = first;
        while let Some(message) = next.take() {
            match message {
                Message::Record(record) => pending.push(*record),
                Message::Flush(done) => waiting.push(done),
            }
            if pending.len() >= BATCH {
                break;
            }
            next = receiver.try_recv().ok();
        }
        if !pending.is_empty() {
            match write_batch(&mut conn, &pending, &chain) {
                Ok(new_chain) => {
                    chain = new_chain;
                    pending.clear();
                    failures = 0;
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::error!(error = %e, queued = pending.len(), "writing audit records failed; retrying");
                    }
                }
            }
        }
        if pending.is_empty() {
            for done in waiting.drain(..) {
                let _ = done.send(());
            }
        }
    }
    // Clean shutdown: write what is left, or keep it in a file.
    while let Ok(message) = receiver.try_recv() {
        if let Message::Record(record) = message {
            pending.push(*record);
        }
    }
    if !pending.is_empty() && write_batch(&mut conn, &pending, &chain).is_err() {
        let path = fallback_dir.join(format!("audit-unwritten-{}.ndjson", uuid::Uuid::new_v4()));
        let saved = std::fs::File::create(&path).and_then(|mut file| {
            for record in &pending {
                serde_json::to_writer(&mut file, record)?;
                file.write_all(b"\n")?;
            }
            file.sync_all()
        });
        match saved {
            Ok(()) => {
                tracing::error!(path = %path.display(), count = pending.len(), "audit records saved to a file")
            }
            Err(e) => {
                tracing::error!(error = %e, count = pending.len(), "audit records could not be saved")
            }
        }
    }
    for done in waiting {
        let _ = done.send(());
    }
}

fn chain_next(previous: &[u8], record: &AuditRecord) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(serde_json::to_vec(record).unwrap_or_default());
    hasher.finalize().to_vec()
}

fn write_batch(conn: &mut Connection, records: &[AuditRecord], chain: &[u8]) -> Result<Vec<u8>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // The chain continues from the newest stored row, read inside this write transaction,
    // so several processes appending to one database still form one chain.
    let mut current: Vec<u8> = tx
        .query_row(
            "SELECT chain FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap_or_else(|_| chain.to_vec());
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO audit (id, recorded_us, patient_id, app_id, app_name, actor, usage, interaction, resource_type,
                search_criteria, status, error_code, error_detail, amount, resources, client_address, user_rights, chain)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
        )?;
        for r in records {
            current = chain_next(&current, r);
            stmt.execute(params![
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
                serde_json::to_string(&r.resources).unwrap_or_else(|_| "[]".into()),
                r.client_address,
                r.user_rights,
                current,
            ])?;
        }
    }
    tx.commit()?;
    Ok(current)
}

pub(crate) const RECORD_COLUMNS: &str = "id, recorded_us, patient_id, app_id, app_name, actor, usage, interaction, resource_type,
    search_criteria, status, error_code, error_detail, amount, resources, client_address, user_rights, chain";

pub(crate) fn record_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(AuditRecord, Vec<u8>)> {
    let usage: String = row.get(6)?;
    let usage = serde_json::from_value(Value::String(usage)).unwrap_or(Usage::Application);
    let resources: String = row.get(14)?;
    Ok((
        AuditRecord {
            id: row.get(0)?,
            recorded_us: row.get(1)?,
            patient_id: row.get(2)?,
            app_id: row.get(3)?,
            app_name: row.get(4)?,
            actor: row.get(5)?,
            usage,
            interaction: row.get(7)?,
            resource_type: row.get(8)?,
            search_criteria: row.get(9)?,
            status: row.get(10)?,
            error_code: row.get(11)?,
            error_detail: row.get(12)?,
            amount: row.get::<_, i64>(13)?.max(0) as u64,
            resources: serde_json::from_str(&resources).unwrap_or_default(),
            client_address: row.get(15)?,
            user_rights: row.get(16)?,
        },
        row.get(17)?,
    ))
}

/// A page of a citizen's audit records.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub total: u64,
    pub events: Vec<Value>,
}

impl AuthService {
    /// Queues a record for writing (waits only if the queue is full).
    pub fn audit(&self, mut record: AuditRecord) -> Result<()> {
        if record.id.is_empty() {
            record.id = uuid::Uuid::new_v4().to_string();
        }
        if record.recorded_us == 0 {
            record.recorded_us = self.0.clock.now_micros();
        }
        self.0.audit.record(record)
    }

    /// The citizen's own audit records as FHIR AuditEvent resources, newest first.
    /// (`/fhir/r4/AuditEvent?patient=<id>`; the caller checks the token's patient.)
    pub fn audit_events_for_patient(
        &self,
        patient_id: &str,
        count: usize,
        offset: usize,
    ) -> Result<AuditPage> {
        self.flush_audit()?;
        let conn = self.db();
        let total: i64 = conn.query_row(
            "SELECT count(*) FROM audit WHERE patient_id = ?1",
            [patient_id],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM audit WHERE patient_id = ?1 ORDER BY recorded_us DESC, seq DESC LIMIT ?2 OFFSET ?3"
        ))?;
        let events = stmt
            .query_map(
                params![patient_id, count as i64, offset as i64],
                record_from_row,
            )?
            .map(|row| row.map(|(record, _)| audit_event(&record)))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(AuditPage {
            total: total.max(0) as u64,
            events,
        })
    }

    /// Writes every record (optionally within `[since_us, until_us)`) as NDJSON, oldest
    /// first, with its chain hash. Returns how many were written.
    pub fn export_audit(
        &self,
        out: &mut dyn Write,
        since_us: Option<i64>,
        until_us: Option<i64>,
    ) -> Result<u64> {
        self.flush_audit()?;
        let conn = self.db();
        let mut stmt = conn.prepare(&format!(
            "SELECT {RECORD_COLUMNS} FROM audit WHERE recorded_us >= ?1 AND recorded_us < ?2 ORDER BY seq"
        ))?;
        let rows = stmt.query_map(
            params![since_us.unwrap_or(i64::MIN), until_us.unwrap_or(i64::MAX)],
            record_from_row,
        )?;
        let mut written = 0;
        for row in rows {
            let (record, chain) = row?;
            let mut line =
                serde_json::to_value(&record).map_err(|e| AuthError::Invalid(e.to_string()))?;
            line["chain"] = Value::String(chain.iter().map(|b| format!("{b:02x}")).collect());
            serde_json::to_writer(&mut *out, &line).map_err(|e| AuthError::Io(e.into()))?;
            out.write_all(b"\n")?;
            written += 1;
        }
        Ok(written)
    }

    /// Recomputes the hash chain over all records; returns the id of the first record whose
    /// stored hash does not match, if any.
    pub fn verify_audit_chain(&self) -> Result<Option<String>> {
        self.flush_audit()?;
        let conn = self.db();
        let mut stmt = conn.prepare(&format!("SELECT {RECORD_COLUMNS} FROM audit ORDER BY seq"))?;
        let rows = stmt.query_map([], record_from_row)?;
        let mut chain = vec![0u8; 32];
        for row in rows {
            let (record, stored) = row?;
            chain = chain_next(&chain, &record);
            if chain != stored {
                return Ok(Some(record.id));
            }
        }
        Ok(None)
    }
}

fn action_code(interaction: Option<&str>) -> &'static str {
    match interaction {
        Some("create") => "C",
        Some("read" | "vread" | "search-type" | "search" | "history-instance" | "history-type") => {
            "R"
        }
        Some("update" | "patch") => "U",
        Some("delete") => "D",
        _ => "E",
    }
}

fn recorded_text(micros: i64) -> String {
    let nanos = i128::from(micros) * 1000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// The FHIR R4 AuditEvent for a record.
pub fn audit_event(record: &AuditRecord) -> Value {
    let outcome = match record.status {
        200..=399 => "0",
        400..=499 => "4",
        _ => "8",
    };
    let is_fhir = record.usage == Usage::Application
        || record.usage == Usage::OpenSandbox
        || record.usage == Usage::CitizenPortal;
    let interaction = record.interaction.as_deref();
    let mut event = json!({
        "resourceType": "AuditEvent",
        "id": record.id,
        "type": if is_fhir {
            json!({"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation"})
        } else {
            json!({"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110114", "display": "User Authentication"})
        },
        "action": action_code(interaction),
        "recorded": recorded_text(record.recorded_us),
        "outcome": outcome,
        "agent": [],
        "source": {
            "observer": {"display": "PHR"},
            "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4", "display": "Application Server"}]
        },
        "entity": []
    });
    if let Some(interaction) = interaction {
        let system = if is_fhir {
            "http://hl7.org/fhir/restful-interaction"
        } else {
            "urn:phr:auth-event"
        };
        event["subtype"] = json!([{ "system": system, "code": interaction }]);
    }
    if let Some(detail) = record
        .error_detail
        .as_deref()
        .or(record.error_code.as_deref())
    {
        event["outcomeDesc"] = json!(detail);
    }
    let mut agents = Vec::new();
    if let Some(app_id) = &record.app_id {
        let mut who = json!({"identifier": {"system": APPLICATION_ID_SYSTEM, "value": app_id}});
        if let Some(name) = &record.app_name {
            who["display"] = json!(name);
        }
        agents.push(json!({
            "type": {"coding": [{"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110150", "display": "Application"}]},
            "who": who,
            "requestor": false
        }));
    }
    let actor_who = if record.actor.contains('/') {
        json!({"reference": record.actor})
    } else {
        json!({"display": record.actor})
    };
    agents.push(json!({"who": actor_who, "requestor": true}));
    event["agent"] = Value::Array(agents);

    let mut entities = Vec::new();
    if let Some(patient) = &record.patient_id {
        entities.push(json!({
            "what": {"reference": format!("Patient/{patient}")},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1", "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient"}
        }));
    }
    for reference in &record.resources {
        entities.push(json!({
            "what": {"reference": reference},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"}
        }));
    }
    if record.search_criteria.is_some() || record.amount > 0 || record.resource_type.is_some() {
        let mut query_entity = json!({
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2", "display": "System Object"},
            "detail": [{"type": "returned", "valueString": record.amount.to_string()}]
        });
        if let Some(rt) = &record.resource_type {
            query_entity["name"] = json!(rt);
        }
        if let Some(criteria) = &record.search_criteria {
            query_entity["query"] = json!(STANDARD.encode(criteria.as_bytes()));
            query_entity["description"] = json!(criteria);
        }
        entities.push(query_entity);
    }
    event["entity"] = Value::Array(entities);
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_event_carries_the_log_register_fields() {
        let mut record = AuditRecord::new(Usage::Application, "Patient/p1");
        record.id = "r1".into();
        record.recorded_us = 1_700_000_000_000_000;
        record.patient_id = Some("p1".into());
        record.app_id = Some("app1".into());
        record.app_name = Some("Steps".into());
        record.interaction = Some("search-type".into());
        record.resource_type = Some("Observation".into());
        record.search_criteria = Some("patient=p1&code=55423-8".into());
        record.amount = 3;
        record.resources = vec!["Observation/a".into()];
        let event = audit_event(&record);
        assert_eq!(event["resourceType"], "AuditEvent");
        assert_eq!(event["action"], "R");
        assert_eq!(event["outcome"], "0");
        assert_eq!(event["recorded"], "2023-11-14T22:13:20Z");
        assert_eq!(event["subtype"][0]["code"], "search-type");
        assert_eq!(event["agent"][0]["who"]["identifier"]["value"], "app1");
        assert_eq!(event["agent"][1]["who"]["reference"], "Patient/p1");
        assert_eq!(event["entity"][0]["what"]["reference"], "Patient/p1");
        assert_eq!(event["entity"][1]["what"]["reference"], "Observation/a");
        assert_eq!(event["entity"][2]["description"], "patient=p1&code=55423-8");
        assert_eq!(event["entity"][2]["detail"][0]["valueString"], "3");
    }

    #[test]
    fn failed_requests_have_failure_outcomes() {
        let mut record = AuditRecord::new(Usage::Application, "Patient/p1");
        record.status = 403;
        record.error_code = Some("forbidden".into());
        assert_eq!(audit_event(&record)["outcome"], "4");
        assert_eq!(audit_event(&record)["outcomeDesc"], "forbidden");
        record.status = 500;
        assert_eq!(audit_event(&record)["outcome"], "8");
    }

    #[test]
    fn chain_depends_on_content_and_order() {
        let a = AuditRecord::new(Usage::Operator, "operator");
        let mut b = a.clone();
        b.status = 500;
        let genesis = vec![0u8; 32];
        assert_ne!(chain_next(&genesis, &a), chain_next(&genesis, &b));
        assert_ne!(
            chain_next(&chain_next(&genesis, &a), &b),
            chain_next(&chain_next(&genesis, &b), &a)
        );
    }
}
