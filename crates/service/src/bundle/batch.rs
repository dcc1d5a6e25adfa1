//! A batch: every entry is checked and answered on its own; the writes of all entries that
//! passed their checks are stored in one storage request (one commit), each succeeding or
//! failing alone.

use phr_store::{Atomicity, WriteOp};

use super::parse::Entry;
use super::{BundleKind, BundleResponse, EntryOutcome, Planned, WriteKind, finish, plan_write};
use crate::caller::Caller;
use crate::error::Error;
use crate::service::FhirService;

/// An entry after planning: answered, or waiting for its write.
enum Slot {
    Done(EntryOutcome),
    Write { op: WriteOp, kind: WriteKind },
}

pub(super) fn batch(fhir: &FhirService, caller: &Caller, entries: Vec<Entry>) -> BundleResponse {
    let mut patients = fhir.patients();
    let slots: Vec<Slot> = entries
        .into_iter()
        .map(
            |entry| match plan_write(fhir, caller, entry, &mut patients) {
                Ok(Planned::Write { op, kind }) => Slot::Write { op, kind },
                Ok(Planned::Done(outcome)) => Slot::Done(outcome),
                Err(e) => Slot::Done(EntryOutcome::Error(e)),
            },
        )
        .collect();
    let ops: Vec<WriteOp> = slots
        .iter()
        .filter_map(|slot| match slot {
            Slot::Write { op, .. } => Some(op.clone()),
            Slot::Done(_) => None,
        })
        .collect();
    let stored = if ops.is_empty() {
        Ok(Vec::new())
    } else {
        fhir.storage.write(ops, Atomicity::Independent)
    };
    let entries = match stored {
        Ok(results) => {
            let mut results = results.into_iter();
            slots
                .into_iter()
                .map(|slot| match slot {
                    Slot::Done(outcome) => outcome,
                    Slot::Write { op, kind } => match results.next() {
                        Some(result) => finish(fhir, op, kind, result).into(),
                        None => EntryOutcome::Error(Error::internal(
                            "storage answered fewer writes than it was given",
                        )),
                    },
                })
                .collect()
        }
        Err(e) => {
            let error = Error::from(e);
            slots
                .into_iter()
                .map(|slot| match slot {
                    Slot::Done(outcome) => outcome,
                    Slot::Write { .. } => EntryOutcome::Error(error.clone()),
                })
                .collect()
        }
    };
    BundleResponse {
        kind: BundleKind::Batch,
        entries,
    }
}
