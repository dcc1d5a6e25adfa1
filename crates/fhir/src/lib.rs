//! FHIR R4 core: resources as order-preserving JSON, the official R4 definitions, the
//! OperationOutcome vocabulary, FHIRPath and validation.
//!
//! This crate knows no HTTP and no database. Everything above it speaks in its `Issue`s.
//! Start with [`Definitions`] (the registry) and [`Validator`]; see README.md.

// No panic on input: every index is checked (`get`) unless an invariant of the compiled
// definitions guards it, and then a narrow `allow` says which.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod bundle;
mod conformance;
pub mod datetime;
pub mod defs;
pub mod fhirpath;
mod invariant;
pub mod json;
pub mod outcome;
pub mod primitives;
pub mod registry;
pub mod sd;
mod sha1;
pub mod snapshot;
pub mod terminology;
pub mod validator;

pub use outcome::{Issue, IssueType, Severity};
pub use registry::{Definitions, DefinitionsError, ElementRef, LoadReport};
pub use terminology::Membership;
pub use validator::{Validator, declared_profiles, validate};
