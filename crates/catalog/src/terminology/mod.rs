//! The Finnish PHR code systems and value sets: declarations (in `data`), their CodeSystem
//! and ValueSet resources, and the localized names of their codes.
//!
//! Deliberate differences from Kela's published files:
//! - `fiphr-vs-confidentiality` includes `http://terminology.hl7.org/CodeSystem/v3-Confidentiality`
//!   (the R4 URL, which instances use) instead of the STU3 `http://hl7.org/fhir/v3/Confidentiality`.
//! - `fitness-category` is declared once (Kela published three identical copies).
//! - Value sets Kela's profiles bind to but never published (`fiphr-vs-dosagesite`,
//!   `fiphr-vs-activitycode`, `fiphr-vs-reminderid`, `fiphr-vs-questionnairecode`) are not
//!   invented here.

mod data;

use serde_json::{Value, json};

use crate::generate::set;
use crate::model::{Lang, Names};

/// A code with its display and names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Concept {
    pub code: &'static str,
    pub display: &'static str,
    /// Finnish, Swedish and English names, when Kela gave them.
    pub names: Option<Names>,
    pub definition: Option<&'static str>,
}

impl Concept {
    /// The name in `lang`, else the display.
    pub fn name(&self, lang: Lang) -> &'static str {
        self.names.map_or(self.display, |n| n.get(lang))
    }
}

/// A code system of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct CodeSystemDecl {
    pub url: &'static str,
    pub id: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    /// `content = complete`; otherwise `not-present` (codes defined elsewhere, e.g. VNR).
    pub complete: bool,
    pub concepts: &'static [Concept],
}

/// Codes of one system in a value set; no concepts means the whole system.
#[derive(Debug, Clone, Copy)]
pub struct Include {
    pub system: &'static str,
    pub concepts: &'static [Concept],
}

/// A value set of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct ValueSetDecl {
    pub url: &'static str,
    pub id: &'static str,
    pub name: &'static str,
    pub title: &'static str,
    pub version: &'static str,
    pub description: &'static str,
    pub includes: &'static [Include],
}

pub(crate) fn code_systems() -> &'static [CodeSystemDecl] {
    data::CODE_SYSTEMS
}

pub(crate) fn value_sets() -> &'static [ValueSetDecl] {
    data::VALUE_SETS
}

fn designations(names: Option<Names>) -> Option<Value> {
    let names = names?;
    Some(json!([
        {"language": "fi", "value": names.fi},
        {"language": "sv", "value": names.sv},
        {"language": "en", "value": names.en},
    ]))
}

fn concept_json(c: &Concept) -> Value {
    let mut out = json!({"code": c.code, "display": c.display});
    if let Some(definition) = c.definition {
        set(&mut out, "definition", json!(definition));
    }
    if let Some(d) = designations(c.names) {
        set(&mut out, "designation", d);
    }
    out
}

/// The CodeSystem resource of `cs`.
pub(crate) fn code_system_resource(cs: &CodeSystemDecl) -> Value {
    let mut out = json!({
        "resourceType": "CodeSystem",
        "id": cs.id,
        "url": cs.url,
        "version": cs.version,
        "name": cs.name,
        "title": cs.title,
        "status": "active",
        "experimental": false,
        "publisher": "PHR (after Kela's Finnish PHR terminology)",
        "caseSensitive": true,
        "content": if cs.complete { "complete" } else { "not-present" },
    });
    set(&mut out, "description", json!(cs.description));
    if cs.complete {
        set(&mut out, "count", json!(cs.concepts.len()));
        set(
            &mut out,
            "concept",
            json!(cs.concepts.iter().map(concept_json).collect::<Vec<_>>()),
        );
    }
    out
}

/// The ValueSet resource of `vs`.
pub(crate) fn value_set_resource(vs: &ValueSetDecl) -> Value {
    let includes: Vec<Value> = vs
        .includes
        .iter()
        .map(|inc| {
            let mut out = json!({"system": inc.system});
            if !inc.concepts.is_empty() {
                set(
                    &mut out,
                    "concept",
                    json!(inc.concepts.iter().map(concept_json).collect::<Vec<_>>()),
                );
            }
            out
        })
        .collect();
    let mut out = json!({
        "resourceType": "ValueSet",
        "id": vs.id,
        "url": vs.url,
        "version": vs.version,
        "name": vs.name,
        "title": vs.title,
        "status": "active",
        "experimental": false,
        "publisher": "PHR (after Kela's Finnish PHR terminology)",
        "compose": {"include": includes},
    });
    set(&mut out, "description", json!(vs.description));
    out
}

/// Every (system, concept) the catalogue names, value sets first (they carry Kela's names of
/// LOINC codes), then code systems.
pub(crate) fn concepts() -> impl Iterator<Item = (&'static str, &'static Concept)> {
    let from_value_sets = value_sets()
        .iter()
        .flat_map(|vs| vs.includes.iter())
        .flat_map(|inc| inc.concepts.iter().map(move |c| (inc.system, c)));
    let from_code_systems = code_systems()
        .iter()
        .flat_map(|cs| cs.concepts.iter().map(move |c| (cs.url, c)));
    from_value_sets.chain(from_code_systems)
}
