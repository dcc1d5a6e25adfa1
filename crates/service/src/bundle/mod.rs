//! Batch and transaction Bundles posted to the base.
//!
//! A batch's entries succeed or fail one by one; a transaction is atomic: its writes go to
//! storage as one all-or-nothing request, and `urn:uuid:` fullUrls are replaced by the ids
//! the server assigns wherever they are referenced. Either way, all writes of one Bundle are
//! prepared first and stored in one storage request, so a 300-entry Bundle costs one commit.
//!
//! The answer is typed: one [`EntryOutcome`] per entry, in request order. The web layer
//! renders the response Bundle (each entry's `response.status` from its one status mapping);
//! the CLI counts the outcomes.
//!
//! `parse.rs` reads the request Bundle (typed access only: it is client JSON), `batch.rs` and
//! `transaction.rs` process it.

mod batch;
mod parse;
mod transaction;

use phr_fhir::IssueType;
use phr_store::{Rejection, WriteOp, WriteOutcome};
use serde_json::Value;

use crate::caller::Caller;
use crate::error::{Error, Result};
use crate::patients::Patients;
use crate::service::FhirService;
use crate::update::finish_update;
use crate::written::{Change, Version, Written, rejection};
use parse::{Entry, Method};

/// How many times a transaction is re-run when a concurrent writer invalidated what it had
/// looked up (a conditional create that raced).
const TRANSACTION_RETRIES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleKind {
    Batch,
    Transaction,
}

impl BundleKind {
    /// The FHIR interaction code (`batch`, `transaction`).
    pub fn code(self) -> &'static str {
        match self {
            BundleKind::Batch => "batch",
            BundleKind::Transaction => "transaction",
        }
    }

    /// The `Bundle.type` of the answer.
    pub fn response_type(self) -> &'static str {
        match self {
            BundleKind::Batch => "batch-response",
            BundleKind::Transaction => "transaction-response",
        }
    }
}

/// What one entry of a batch or transaction came to.
#[derive(Debug, Clone, PartialEq)]
pub enum EntryOutcome {
    /// A new resource (POST, or a PUT that created).
    Created(Version),
    /// A new version of an existing resource (PUT).
    Updated(Version),
    /// A conditional create found its match; nothing was written.
    Existing(Version),
    /// A GET: the version read.
    Read(Version),
    /// A DELETE (also of something already deleted).
    Deleted,
    /// The entry failed (a batch only: a failing transaction entry fails the transaction).
    Error(Error),
}

/// A successful [`EntryOutcome`] without its resource: what a status is rendered from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Success {
    Created,
    Updated,
    Existing,
    Read,
    Deleted,
}

impl EntryOutcome {
    /// The version the entry returns, if any.
    pub fn version(&self) -> Option<&Version> {
        match self {
            EntryOutcome::Created(v)
            | EntryOutcome::Updated(v)
            | EntryOutcome::Existing(v)
            | EntryOutcome::Read(v) => Some(v),
            EntryOutcome::Deleted | EntryOutcome::Error(_) => None,
        }
    }

    /// What succeeded, or the error.
    pub fn result(&self) -> std::result::Result<Success, &Error> {
        match self {
            EntryOutcome::Created(_) => Ok(Success::Created),
            EntryOutcome::Updated(_) => Ok(Success::Updated),
            EntryOutcome::Existing(_) => Ok(Success::Existing),
            EntryOutcome::Read(_) => Ok(Success::Read),
            EntryOutcome::Deleted => Ok(Success::Deleted),
            EntryOutcome::Error(e) => Err(e),
        }
    }
}

impl From<Written> for EntryOutcome {
    fn from(w: Written) -> Self {
        match w.change {
            Change::Created => EntryOutcome::Created(w.version),
            Change::Updated => EntryOutcome::Updated(w.version),
            Change::Existing => EntryOutcome::Existing(w.version),
        }
    }
}

impl From<Result<EntryOutcome>> for EntryOutcome {
    fn from(result: Result<EntryOutcome>) -> Self {
        result.unwrap_or_else(EntryOutcome::Error)
    }
}

/// A processed batch or transaction: one outcome per entry, in request order.
#[derive(Debug, Clone)]
pub struct BundleResponse {
    pub kind: BundleKind,
    pub entries: Vec<EntryOutcome>,
}

impl BundleResponse {
    /// `Type/id` of every resource an entry wrote or read.
    pub fn touched(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter_map(EntryOutcome::version)
            .map(Version::reference)
            .collect()
    }
}

impl FhirService {
    /// Processes a batch or transaction Bundle for `caller`. A Bundle that cannot be read
    /// (not a batch or transaction, an entry of the wrong shape, too many entries) is an
    /// error and nothing is stored.
    pub fn process_bundle(&self, caller: &Caller, bundle: Value) -> Result<BundleResponse> {
        self.process_bundle_within(caller, bundle, self.settings.max_bundle_entries)
    }

    /// [`FhirService::process_bundle`] with another entry limit: the operator's own loaders
    /// (import, demo) write bigger batches than the API accepts, for fewer commits.
    pub fn process_bundle_within(
        &self,
        caller: &Caller,
        bundle: Value,
        max_entries: usize,
    ) -> Result<BundleResponse> {
        let (kind, entries) = parse::parse_bundle(bundle, max_entries, &self.settings.base_url)?;
        match kind {
            BundleKind::Batch => Ok(batch::batch(self, caller, entries)),
            BundleKind::Transaction => {
                for _ in 0..TRANSACTION_RETRIES {
                    if let Some(response) = transaction::transaction(self, caller, entries.clone())?
                    {
                        return Ok(response);
                    }
                }
                Err(Error::conflict(
                    IssueType::Conflict,
                    "the transaction kept conflicting with concurrent writes; nothing was stored, try again",
                ))
            }
        }
    }
}

/// What one entry amounts to once checked: something to write, or an answer already.
enum Planned {
    Write { op: WriteOp, kind: WriteKind },
    Done(EntryOutcome),
}

#[derive(Clone, Copy)]
enum WriteKind {
    Create,
    Update,
    Delete,
}

/// Checks one entry and prepares its write, or answers it (reads, conditional matches).
fn plan_write(
    fhir: &FhirService,
    caller: &Caller,
    entry: Entry,
    patients: &mut Patients,
) -> Result<Planned> {
    match (entry.method, entry.path.as_slice(), entry.resource) {
        (Method::Post, [rtype], Some(resource)) => {
            check_entry_type(&resource, rtype)?;
            let op =
                fhir.prepare_create(caller, resource, entry.if_none_exist.as_deref(), patients)?;
            Ok(Planned::Write {
                op,
                kind: WriteKind::Create,
            })
        }
        (Method::Put, [rtype, id], Some(resource)) => {
            fhir.check_type(rtype)?;
            let op = fhir.prepare_update(caller, rtype, id, resource, entry.if_match, patients)?;
            Ok(Planned::Write {
                op,
                kind: WriteKind::Update,
            })
        }
        (Method::Delete, [rtype, id], _) => {
            fhir.check_type(rtype)?;
            match fhir.prepare_delete(caller, rtype, id, entry.if_match)? {
                Some(op) => Ok(Planned::Write {
                    op,
                    kind: WriteKind::Delete,
                }),
                None => Ok(Planned::Done(EntryOutcome::Deleted)),
            }
        }
        (Method::Get, [rtype, id], _) if entry.query.is_none() => {
            let stored = fhir.read(caller, rtype, id)?;
            Ok(Planned::Done(EntryOutcome::Read(stored.into())))
        }
        (Method::Get, [rtype, id, history, vid], _) if history == "_history" => {
            let stored = fhir.vread(caller, rtype, id, vid)?;
            Ok(Planned::Done(EntryOutcome::Read(stored.into())))
        }
        (method, path, _) => Err(Error::invalid(format!(
            "{} {} is not an interaction this server supports inside a Bundle",
            method.code(),
            path.join("/")
        ))),
    }
}

fn check_entry_type(resource: &Value, rtype: &str) -> Result<()> {
    let body_type = crate::resource::resource_type_of(resource)?;
    if body_type != rtype {
        return Err(Error::invalid(format!(
            "the entry's resource is a {body_type}, but request.url names {rtype}"
        )));
    }
    Ok(())
}

/// Turns the storage outcome of a planned write into the entry's outcome.
fn finish(
    fhir: &FhirService,
    op: WriteOp,
    kind: WriteKind,
    result: std::result::Result<WriteOutcome, Rejection>,
) -> Result<EntryOutcome> {
    match kind {
        WriteKind::Create => fhir.finish_create(op, result).map(EntryOutcome::from),
        WriteKind::Update => finish_update(op, result).map(EntryOutcome::from),
        WriteKind::Delete => match result.map_err(rejection)? {
            WriteOutcome::Deleted { .. } => Ok(EntryOutcome::Deleted),
            other => Err(Error::internal(format!(
                "storage answered a delete with {other:?}"
            ))),
        },
    }
}
