//! The Finnish PHR data contents (Kanta PHR, "Omatietovaranto"), declared once.
//!
//! Every profile, extension, code system and value set of the Finnish PHR R4 is declared here
//! as data (`profiles`, `terminology`); from those declarations the catalogue generates the
//! StructureDefinition (differential and snapshot), CodeSystem and ValueSet resources the
//! server serves and validates against, and the metadata the portal charts data with. The
//! `rules` module holds Kanta's write-path data rules, which the server applies on every
//! create and update besides validation.
//!
//! This crate validates nothing against a StructureDefinition itself: that is the generic
//! validator's job in `phr-fhir`. It knows no HTTP and no storage.

pub mod content;
mod generate;
pub mod model;
pub mod profile;
mod profiles;
pub mod rules;
pub mod terminology;
pub mod urls;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;

pub use content::{ChartKind, Code, DataContent, Group, Kind, Series, Unit};
pub use generate::GenerateError;
pub use model::{Lang, Names};
pub use rules::{App, PatientRef};

/// What the catalogue knows about one of its StructureDefinitions.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub url: &'static str,
    pub id: &'static str,
    pub title: &'static str,
    /// The constrained type: a resource type, or `Extension`.
    pub type_name: &'static str,
    pub is_abstract: bool,
    pub is_extension: bool,
    pub names: Names,
    /// The portal's metadata when the profile is a data content of its own.
    pub content: Option<DataContent>,
}

impl Profile {
    /// Whether instances may name this profile in `meta.profile`: a concrete resource profile.
    pub fn is_instantiable(&self) -> bool {
        !self.is_abstract && !self.is_extension
    }
}

/// The Finnish PHR catalogue: generated definitions and metadata, built once per process.
#[derive(Debug)]
pub struct Catalog {
    profiles: Vec<Profile>,
    structure_definitions: Vec<Value>,
    by_url: HashMap<&'static str, usize>,
    code_systems: Vec<Value>,
    value_sets: Vec<Value>,
    contents: Vec<DataContent>,
    names: HashMap<(&'static str, &'static str), &'static terminology::Concept>,
}

static CATALOG: OnceLock<Catalog> = OnceLock::new();
static VALIDATOR: OnceLock<phr_fhir::Validator> = OnceLock::new();

impl Catalog {
    /// The catalogue. The declarations are compiled in and covered by this crate's tests, so
    /// building cannot fail at run time unless they are broken; that is a bug, and panics.
    pub fn get() -> &'static Catalog {
        CATALOG.get_or_init(|| match Catalog::build() {
            Ok(catalog) => catalog,
            Err(e) => panic!("the Finnish PHR catalogue is inconsistent: {e}"),
        })
    }

    /// Builds the catalogue from its declarations.
    pub fn build() -> Result<Catalog, GenerateError> {
        let mut defs = generate::Definitions::core();
        let mut profiles = Vec::new();
        let mut structure_definitions = Vec::new();
        for decl in profiles::all() {
            let sd = generate::structure_definition(&decl, &defs)?;
            defs.add(sd.clone());
            structure_definitions.push(sd);
            profiles.push(Profile {
                url: decl.url,
                id: decl.id(),
                title: decl.title,
                type_name: decl.type_name,
                is_abstract: decl.is_abstract,
                is_extension: decl.type_name == "Extension",
                names: decl.names,
                content: decl.content,
            });
        }
        let by_url = profiles
            .iter()
            .enumerate()
            .map(|(i, p)| (p.url, i))
            .collect();
        let mut contents: Vec<DataContent> =
            profiles.iter().filter_map(|p| p.content.clone()).collect();
        // Vital signs without a profile of their own follow the profiled ones.
        let first_fitness = contents
            .iter()
            .position(|c| c.group != Group::VitalSigns)
            .unwrap_or(contents.len());
        contents.splice(
            first_fitness..first_fitness,
            profiles::base_stored_contents(),
        );
        let mut names = HashMap::new();
        for (system, concept) in terminology::concepts() {
            names.entry((system, concept.code)).or_insert(concept);
        }
        Ok(Catalog {
            profiles,
            structure_definitions,
            by_url,
            code_systems: terminology::code_systems()
                .iter()
                .map(terminology::code_system_resource)
                .collect(),
            value_sets: terminology::value_sets()
                .iter()
                .map(terminology::value_set_resource)
                .collect(),
            contents,
            names,
        })
    }

    /// Every generated StructureDefinition (extensions, base profiles, data contents), each
    /// after the definitions it builds on.
    pub fn structure_definitions(&self) -> &[Value] {
        &self.structure_definitions
    }

    /// The StructureDefinition at `url` (a `|version` suffix is ignored).
    pub fn structure_definition(&self, url: &str) -> Option<&Value> {
        let i = *self.by_url.get(canonical(url))?;
        self.structure_definitions.get(i)
    }

    pub fn code_systems(&self) -> &[Value] {
        &self.code_systems
    }

    pub fn value_sets(&self) -> &[Value] {
        &self.value_sets
    }

    /// The R4 definitions with this catalogue added: what instances are validated against.
    /// A fresh registry each call (cheap: compiled R4 definitions are shared); add other
    /// packages to it before wrapping it in a `Validator`.
    pub fn definitions(&self) -> phr_fhir::Definitions {
        let mut defs = (*phr_fhir::Definitions::r4()).clone();
        // Kanta accepts only the extensions its profiles name: under a Finnish PHR profile an
        // extension nobody defined is an error, not a warning.
        defs.set_strict_extensions(urls::SD_BASE);
        let report = defs.add_resources(self.conformance_resources());
        // The catalogue's own tests load every resource; a rejection is a build bug.
        assert!(
            report.rejected.is_empty(),
            "the validator rejected catalogue definitions: {:?}",
            report.rejected
        );
        defs
    }

    /// A validator over R4 and this catalogue, built once per process and shared (it is
    /// `Clone + Send + Sync`).
    pub fn validator() -> &'static phr_fhir::Validator {
        VALIDATOR.get_or_init(|| phr_fhir::Validator::new(Arc::new(Catalog::get().definitions())))
    }

    /// Every StructureDefinition, CodeSystem and ValueSet of the catalogue.
    pub fn conformance_resources(&self) -> impl Iterator<Item = &Value> {
        self.structure_definitions
            .iter()
            .chain(&self.code_systems)
            .chain(&self.value_sets)
    }

    /// Every profile and extension of the catalogue.
    pub fn profiles(&self) -> &[Profile] {
        &self.profiles
    }

    /// The profile or extension at `url` (a `|version` suffix is ignored).
    pub fn profile(&self, url: &str) -> Option<&Profile> {
        let i = *self.by_url.get(canonical(url))?;
        self.profiles.get(i)
    }

    /// The profiles instances of `resource_type` may declare in `meta.profile`.
    pub fn profiles_for_type<'a>(
        &'a self,
        resource_type: &'a str,
    ) -> impl Iterator<Item = &'a Profile> + 'a {
        self.profiles
            .iter()
            .filter(move |p| p.type_name == resource_type && p.is_instantiable())
    }

    /// Every data content, in the order the portal lists them.
    pub fn contents(&self) -> &[DataContent] {
        &self.contents
    }

    pub fn content(&self, kind: Kind) -> Option<&DataContent> {
        self.contents.iter().find(|c| c.kind == kind)
    }

    /// Which data content `resource` is: by its declared profile, and for vital signs stored
    /// under the base profile, by its code.
    pub fn content_of(&self, resource: &Value) -> Option<&DataContent> {
        let profiles = resource["meta"]["profile"].as_array()?;
        let declared: Vec<&str> = profiles
            .iter()
            .filter_map(Value::as_str)
            .map(canonical)
            .collect();
        let codings = resource["code"]["coding"].as_array();
        let has_code = |code: &Code| {
            codings.is_some_and(|list| {
                list.iter()
                    .any(|c| c["system"] == code.system && c["code"] == code.code)
            })
        };
        self.contents.iter().find(|content| {
            declared.contains(&content.profile)
                && (content.profile != urls::VITAL_SIGNS || content.codes.iter().any(has_code))
        })
    }

    /// The name of `code` of `system` in `lang`: Kela's localized name where it gave one,
    /// else the display. None for codes the catalogue does not know.
    pub fn display_in(&self, system: &str, code: &str, lang: Lang) -> Option<&'static str> {
        self.names.get(&(system, code)).map(|c| c.name(lang))
    }

    /// The name of `code` in `lang` in the first system that has it, value sets first. LOINC
    /// codes and Kanta's coded values are unambiguous; Kanta's numeric codes (care plan
    /// category `1`, consent category `1`) are not: use `display_in` for those.
    pub fn display(&self, code: &str, lang: Lang) -> Option<&'static str> {
        terminology::concepts()
            .find(|(_, c)| c.code == code)
            .map(|(_, c)| c.name(lang))
    }
}

/// `url` without a `|version` suffix.
fn canonical(url: &str) -> &str {
    url.split('|').next().unwrap_or(url)
}
