//! The application core of PHR, between the domain crates (FHIR definitions and validation,
//! search parameters, storage, the Finnish PHR catalogue, authorization) and the web layer:
//! who is asking ([`Caller`]), the FHIR interactions as plain blocking functions
//! ([`FhirService`]), the write pipeline every stored version goes through, batch and
//! transaction Bundles, search and its Bundles, `$validate`, the CapabilityStatement,
//! export and sandbox retention. Failures are one typed [`Error`].
//!
//! Never an HTTP type, a status code, a URL path, a cookie or a header: the web layer
//! (`phr-server`) turns requests into calls here and [`Error`]s into responses, and the CLI
//! calls the same functions without any web layer. Never a personal identity code: callers
//! are pseudonymous Patient ids.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod audit_events;
pub mod bundle;
pub mod caller;
pub mod capabilities;
pub mod conformance;
mod contents;
mod create;
mod delete;
pub mod error;
pub mod export;
pub mod history;
pub mod patients;
pub mod pipeline;
pub mod professional;
mod read;
pub mod resource;
pub mod retention;
pub mod search;
pub mod searchset;
pub mod service;
pub mod stats;
pub mod subset;
pub mod time;
mod update;
pub mod validate;
pub mod written;

pub use bundle::{BundleKind, BundleResponse, EntryOutcome};
pub use caller::{App, AppRef, Caller};
pub use error::{Error, ErrorKind, Result};
pub use patients::StoredPatients;
pub use pipeline::{PackageError, PatientDirectory, Pipeline};
pub use service::{FhirService, Settings};
pub use written::{Change, Version, Written};
