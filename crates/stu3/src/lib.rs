//! FHIR STU3 (3.0.1) beside R4: the Finnish PHR contents converted between the versions.
//!
//! Resources are stored once, in R4. This crate converts a STU3 resource to R4 on the way in
//! and an R4 resource to STU3 on the way out (`serde_json::Value` in, `Value` out), renders
//! STU3 Bundles, search parameters, the CapabilityStatement and the StructureDefinitions of
//! the STU3 twins the catalogue declares (`phr_catalog::stu3`).
//!
//! The conversion is total over what it knows: every element of the source is converted or
//! reported with a [`ConvertError`] naming it (an element the other version cannot hold, or
//! one the source version does not define). Nothing is dropped silently. It never validates
//! against a profile (the R4 write pipeline does, after conversion) and knows no HTTP.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod bundle;
pub mod capability;
mod careplan;
mod convert;
mod error;
mod fields;
mod medication;
pub mod observation;
mod patient;
mod questionnaire;
pub mod search;
pub mod structure;

pub use error::{ConvertError, Reason};
use serde_json::Value;

/// A FHIR version this server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    Stu3,
    R4,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::Stu3 => "STU3",
            Version::R4 => "R4",
        }
    }

    /// The `fhirVersion` a CapabilityStatement reports.
    pub fn number(self) -> &'static str {
        match self {
            Version::Stu3 => "3.0.1",
            Version::R4 => "4.0.1",
        }
    }

    pub fn other(self) -> Version {
        match self {
            Version::Stu3 => Version::R4,
            Version::R4 => Version::Stu3,
        }
    }
}

/// A STU3 resource as R4: what is stored. The R4 profile of a STU3 twin with several R4
/// profiles (vital signs) is chosen by the resource's code.
pub fn to_r4(stu3: &Value) -> Result<Value, ConvertError> {
    convert::convert(stu3, Version::Stu3)
}

/// A stored R4 resource as STU3: what the STU3 endpoint answers.
pub fn to_stu3(r4: &Value) -> Result<Value, ConvertError> {
    convert::convert(r4, Version::R4)
}

#[cfg(test)]
mod tests;
