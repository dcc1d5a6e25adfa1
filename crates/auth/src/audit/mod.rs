//! The audit log: one record per request with the fields of Kela's log register (time,
//! citizen, application, acting person, usage type, search criteria, result, error, amount
//! of data returned, resources touched, the app's user rights), plus the client address and
//! the request's route template and method.
//!
//! Records are handed to a writer thread through a bounded queue and committed in batches,
//! so the request path never waits for a disk write; when the queue is full the caller
//! waits (records are never dropped). A clean shutdown drains the queue; if the database
//! cannot be written at shutdown the records go to an `audit-unwritten-*.ndjson` file.
//! Each record carries a hash chained to the previous one over a canonical, versioned
//! encoding (`encoding.rs`), and there is no API that changes or deletes a record.
//!
//! Owns the `audit` table through [`AuditStore`] (SQLite in `sqlite.rs`, PostgreSQL in `postgres.rs`, whose table also
//! refuses UPDATE and DELETE).

pub mod encoding;
mod event;
mod packed;
pub(crate) mod postgres;
mod sqlite;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Clock;
use crate::enforce::AccessContext;
use crate::error::{AuthError, Result};
use crate::scope::Interaction;

pub use event::{APPLICATION_ID_SYSTEM, audit_event};
pub(crate) use postgres::PostgresAuditStore;
pub(crate) use sqlite::{SqliteAuditStore, move_wide_table as move_wide_sqlite_table};

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

    pub fn parse(code: &str) -> Option<Usage> {
        [
            Usage::Application,
            Usage::CitizenPortal,
            Usage::Authorization,
            Usage::Operator,
            Usage::OpenSandbox,
        ]
        .into_iter()
        .find(|u| u.code() == code)
    }
}

/// One audited request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Set by [`AuditLog::record`] when left empty.
    #[serde(default)]
    pub id: String,
    /// Microseconds since the epoch; set by [`AuditLog::record`] when 0.
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
    /// The route template the request matched (e.g. `/fhir/r4/{type}/{id}`).
    #[serde(default)]
    pub route: Option<String>,
    /// The HTTP method of the request.
    #[serde(default)]
    pub method: Option<String>,
    /// A professional's access: their professional identifier …
    #[serde(default)]
    pub professional_id: Option<String>,
    /// … and name, as their login named them;
    #[serde(default)]
    pub professional_name: Option<String>,
    /// the organisation (OID) they acted for, and its name at the time;
    #[serde(default)]
    pub org_oid: Option<String>,
    #[serde(default)]
    pub org_name: Option<String>,
    /// the care relationship (EpisodeOfCare id) the access was allowed under;
    #[serde(default)]
    pub care_id: Option<String>,
    /// the data contents read (catalogue keys such as `blood-pressure`).
    #[serde(default)]
    pub contents: Vec<String>,
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
            route: None,
            method: None,
            professional_id: None,
            professional_name: None,
            org_oid: None,
            org_name: None,
            care_id: None,
            contents: Vec::new(),
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

/// Which of a citizen's audit records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only records of this application.
    pub app_id: Option<String>,
    /// Only records at or after this time (microseconds since the epoch).
    pub since_us: Option<i64>,
    /// Only records before this time.
    pub until_us: Option<i64>,
}

/// A page of a citizen's audit records.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    pub total: u64,
    pub events: Vec<Value>,
}

/// A record as stored: with the encoding version it was chained in and its chain value.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAudit {
    pub record: AuditRecord,
    pub encoding: u8,
    pub chain: Vec<u8>,
}

/// Where audit records are kept. Append-only: there is no way to change or delete one.
pub trait AuditStore: Send + Sync {
    /// Appends `records` in order, atomically, each chained in [`encoding::CURRENT`] to the
    /// newest stored record (read inside the same write, so several processes appending to
    /// one store still form one chain).
    fn append(&self, records: &[AuditRecord]) -> Result<()>;
    /// How many of the citizen's records match, and a page of them, newest first.
    fn for_patient(
        &self,
        patient_id: &str,
        query: &AuditQuery,
        count: usize,
        offset: usize,
    ) -> Result<(u64, Vec<AuditRecord>)>;
    /// The applications in the citizen's records, `(id, name)`, sorted by name.
    fn apps_for_patient(&self, patient_id: &str) -> Result<Vec<(String, String)>>;
    /// When each application last accessed the citizen's data through the API
    /// (microseconds since the epoch).
    fn last_access_by_app(&self, patient_id: &str) -> Result<HashMap<String, i64>>;
    /// Every record recorded within `[since_us, until_us)`, oldest first.
    fn scan(
        &self,
        since_us: i64,
        until_us: i64,
        visit: &mut dyn FnMut(StoredAudit) -> Result<()>,
    ) -> Result<()>;
}

/// The audit log: its writer thread and the reads over its store.
pub struct AuditLog {
    writer: crate::queue::Writer<AuditRecord>,
    reads: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
}

impl AuditLog {
    /// Starts the writer on `writes` (its own connection, say) and answers queries from
    /// `reads`. Records that cannot be written at shutdown are saved in `fallback_dir`.
    pub fn start(
        writes: Arc<dyn AuditStore>,
        reads: Arc<dyn AuditStore>,
        clock: Arc<dyn Clock>,
        capacity: usize,
        fallback_dir: PathBuf,
    ) -> Result<AuditLog> {
        Ok(AuditLog {
            writer: crate::queue::Writer::start(
                "audit",
                Box::new(move |records: &[AuditRecord]| writes.append(records)),
                capacity,
                fallback_dir,
            )?,
            reads,
            clock,
        })
    }

    /// Queues a record for writing (waits only if the queue is full), giving it an id and
    /// the current time when it has none.
    pub fn record(&self, record: AuditRecord) -> Result<()> {
        self.writer.record(self.stamped(record))
    }

    /// [`AuditLog::record`] without waiting: the record comes back when the queue is full.
    pub fn try_record(&self, record: AuditRecord) -> std::result::Result<(), Box<AuditRecord>> {
        self.writer.try_record(self.stamped(record))
    }

    /// The record with an id and the current time when it has none.
    fn stamped(&self, mut record: AuditRecord) -> AuditRecord {
        if record.id.is_empty() {
            record.id = uuid::Uuid::new_v4().to_string();
        }
        if record.recorded_us == 0 {
            record.recorded_us = self.clock.now_micros();
        }
        record
    }

    /// Waits until every record handed over so far is stored.
    pub fn flush(&self) -> Result<()> {
        self.writer.flush()
    }

    /// A page of the citizen's records, newest first, and how many match in all.
    pub fn for_patient(
        &self,
        patient_id: &str,
        query: &AuditQuery,
        count: usize,
        offset: usize,
    ) -> Result<(u64, Vec<AuditRecord>)> {
        self.flush()?;
        self.reads.for_patient(patient_id, query, count, offset)
    }

    /// The citizen's records as FHIR AuditEvent resources, newest first.
    pub fn events_for_patient(
        &self,
        patient_id: &str,
        count: usize,
        offset: usize,
    ) -> Result<AuditPage> {
        let (total, records) =
            self.for_patient(patient_id, &AuditQuery::default(), count, offset)?;
        Ok(AuditPage {
            total,
            events: records.iter().map(audit_event).collect(),
        })
    }

    pub fn apps_for_patient(&self, patient_id: &str) -> Result<Vec<(String, String)>> {
        self.flush()?;
        self.reads.apps_for_patient(patient_id)
    }

    pub fn last_access_by_app(&self, patient_id: &str) -> Result<HashMap<String, i64>> {
        self.flush()?;
        self.reads.last_access_by_app(patient_id)
    }

    /// Writes every record (optionally within `[since_us, until_us)`) as NDJSON, oldest
    /// first, with its encoding version and chain hash. Returns how many were written.
    pub fn export(
        &self,
        out: &mut dyn Write,
        since_us: Option<i64>,
        until_us: Option<i64>,
    ) -> Result<u64> {
        self.flush()?;
        let mut written = 0;
        self.reads.scan(
            since_us.unwrap_or(i64::MIN),
            until_us.unwrap_or(i64::MAX),
            &mut |stored| {
                let mut line = serde_json::to_value(&stored.record)
                    .map_err(|e| AuthError::Invalid(e.to_string()))?;
                if let Value::Object(map) = &mut line {
                    map.insert("encoding".into(), Value::from(stored.encoding));
                    map.insert("chain".into(), Value::String(hex(&stored.chain)));
                }
                serde_json::to_writer(&mut *out, &line).map_err(|e| AuthError::Io(e.into()))?;
                out.write_all(b"\n")?;
                written += 1;
                Ok(())
            },
        )?;
        Ok(written)
    }

    /// Recomputes the hash chain over all records, each in the encoding it was written in;
    /// returns the id of the first record whose stored hash does not match (or whose
    /// encoding this build does not know), if any.
    pub fn verify(&self) -> Result<Option<String>> {
        self.flush()?;
        let mut chain = encoding::GENESIS.to_vec();
        let mut broken = None;
        self.reads.scan(i64::MIN, i64::MAX, &mut |stored| {
            if broken.is_some() {
                return Ok(());
            }
            match encoding::chain_next(&chain, stored.encoding, &stored.record) {
                Some(next) if next == stored.chain => chain = next,
                _ => broken = Some(stored.record.id),
            }
            Ok(())
        })?;
        Ok(broken)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
