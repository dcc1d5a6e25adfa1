//! The registry of service providers: social welfare and healthcare organisations keyed by
//! their OID in the national register of social and health care organisations, with names in
//! Finnish, Swedish and English. Professional applications are bound to one of them, care
//! relationships name one, and the citizen's access log shows their names.
//!
//! Owns the `organisations` table through [`OrgStore`] (SQLite in `sqlite.rs`, PostgreSQL in
//! `postgres.rs`). Never audits: the service handle does.

pub(crate) mod postgres;
mod sqlite;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::error::{AuthError, Result};

pub(crate) use postgres::PostgresOrgStore;
pub(crate) use sqlite::SqliteOrgStore;

/// Where organisations are kept. Implementations hold no logic: the rules are [`Orgs`]'.
pub trait OrgStore: Send + Sync {
    /// Stores a new organisation; `false` when its OID is taken.
    fn insert(&self, org: &Organisation) -> Result<bool>;
    fn get(&self, oid: &str) -> Result<Option<Organisation>>;
    /// Every organisation, by OID.
    fn list(&self) -> Result<Vec<Organisation>>;
}

/// A registered service provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    /// The OID (`1.2.246.10.1234567.10.0`).
    pub oid: String,
    pub name_fi: String,
    pub name_sv: String,
    pub name_en: String,
    pub created_at: i64,
}

impl Organisation {
    /// The name in `lang` (`fi`, `sv`, `en`), Finnish when the language is unknown.
    pub fn name(&self, lang: &str) -> &str {
        match lang {
            "sv" => &self.name_sv,
            "en" => &self.name_en,
            _ => &self.name_fi,
        }
    }
}

/// What a registration needs: the OID and the Finnish name; the Swedish and English names
/// default to the Finnish one.
#[derive(Debug, Clone, Default)]
pub struct NewOrganisation {
    pub oid: String,
    pub name_fi: String,
    pub name_sv: Option<String>,
    pub name_en: Option<String>,
}

/// Whether `text` is an OID: numbers separated by dots, at least two arcs, no leading zeros.
pub fn is_oid(text: &str) -> bool {
    let arcs: Vec<&str> = text.split('.').collect();
    text.len() <= 128
        && arcs.len() >= 2
        && arcs.iter().all(|arc| {
            !arc.is_empty()
                && arc.bytes().all(|b| b.is_ascii_digit())
                && (arc.len() == 1 || !arc.starts_with('0'))
        })
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(
            "an organisation name must have 1–200 characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// The registry's rules over an [`OrgStore`].
pub struct Orgs {
    store: Arc<dyn OrgStore>,
    clock: Arc<dyn Clock>,
}

impl Orgs {
    pub fn new(store: Arc<dyn OrgStore>, clock: Arc<dyn Clock>) -> Orgs {
        Orgs { store, clock }
    }

    pub fn register(&self, new: NewOrganisation) -> Result<Organisation> {
        let oid = new
            .oid
            .trim()
            .strip_prefix("urn:oid:")
            .unwrap_or(new.oid.trim());
        if !is_oid(oid) {
            return Err(AuthError::Invalid(format!(
                "{oid:?} is not an OID (numbers separated by dots, e.g. 1.2.246.10.1234567.10.0)"
            )));
        }
        let name_fi = check_name(&new.name_fi)?;
        let name_sv = match &new.name_sv {
            Some(n) => check_name(n)?,
            None => name_fi.clone(),
        };
        let name_en = match &new.name_en {
            Some(n) => check_name(n)?,
            None => name_fi.clone(),
        };
        let org = Organisation {
            oid: oid.to_owned(),
            name_fi,
            name_sv,
            name_en,
            created_at: self.clock.now(),
        };
        if !self.store.insert(&org)? {
            return Err(AuthError::Invalid(format!(
                "organisation {} is already registered",
                org.oid
            )));
        }
        Ok(org)
    }

    pub fn get(&self, oid: &str) -> Result<Option<Organisation>> {
        self.store.get(oid)
    }

    pub fn list(&self) -> Result<Vec<Organisation>> {
        self.store.list()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orgs() -> Orgs {
        Orgs::new(
            Arc::new(SqliteOrgStore::new(crate::sqlite::Sqlite::in_memory())),
            Arc::new(crate::clock::ManualClock::at_micros(7_000_000)),
        )
    }

    #[test]
    fn oids_are_dotted_numbers() {
        assert!(is_oid("1.2.246.10.1234567.10.0"));
        assert!(!is_oid("1"));
        assert!(!is_oid("1..2"));
        assert!(!is_oid("1.02"));
        assert!(!is_oid("1.2.x"));
        assert!(!is_oid(""));
    }

    #[test]
    fn registration_stores_names_and_refuses_a_taken_or_bad_oid() {
        let orgs = orgs();
        let org = orgs
            .register(NewOrganisation {
                oid: "urn:oid:1.2.246.10.1".into(),
                name_fi: " Testin terveysasema ".into(),
                name_en: Some("Test Health Centre".into()),
                ..NewOrganisation::default()
            })
            .unwrap();
        assert_eq!(org.oid, "1.2.246.10.1");
        assert_eq!(org.name("fi"), "Testin terveysasema");
        assert_eq!(org.name("sv"), "Testin terveysasema");
        assert_eq!(org.name("en"), "Test Health Centre");
        assert_eq!(org.created_at, 7);
        assert_eq!(orgs.get("1.2.246.10.1").unwrap(), Some(org.clone()));
        assert_eq!(orgs.list().unwrap(), vec![org]);
        let again = orgs
            .register(NewOrganisation {
                oid: "1.2.246.10.1".into(),
                name_fi: "X".into(),
                ..NewOrganisation::default()
            })
            .unwrap_err();
        assert!(again.to_string().contains("already registered"), "{again}");
        assert!(
            orgs.register(NewOrganisation {
                oid: "not-an-oid".into(),
                name_fi: "X".into(),
                ..NewOrganisation::default()
            })
            .is_err()
        );
        assert!(
            orgs.register(NewOrganisation {
                oid: "1.2.3".into(),
                name_fi: "  ".into(),
                ..NewOrganisation::default()
            })
            .is_err()
        );
        assert_eq!(orgs.list().unwrap().len(), 1);
    }
}
