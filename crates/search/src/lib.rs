//! FHIR search, the part that knows no SQL: which search parameters exist (from the R4
//! SearchParameter definitions), how a resource is turned into typed index entries at write
//! time, and how a search request's parameters are parsed into a [`SearchQuery`].
//!
//! The storage engine executes a [`SearchQuery`]; it never parses URLs itself.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod dates;
mod elements;
mod expr;
pub mod extract;
mod json;
pub mod kanta;
pub mod model;
pub mod numbers;
pub mod parse;
mod program;
pub mod registry;
pub mod text;
mod values;

#[cfg(test)]
mod differential;
#[cfg(test)]
mod testgen;

pub use extract::{ExtractError, extract, patient_compartment};
pub use model::*;
pub use parse::{ParseOptions, ParsedSearch, SERVER_PARAMETERS, parse};
pub use registry::{ParamType, Registry, SearchParam};
