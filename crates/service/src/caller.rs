//! Who is asking, and what that lets them do: the one place where each kind of caller's
//! rights are decided. Every permission method `match`es on the variant, so a new kind of
//! caller (professional access, say) is a compile error wherever its rights must be decided.
//!
//! Never decides *how* a caller proved who they are (tokens, sessions, cookies): the web
//! layer and the authorization server do that and hand over a finished [`Caller`].

use phr_auth::{Access, AccessContext, Interaction};
use phr_store::StoredResource;
use serde_json::Value;

use crate::error::{Error, Result};

/// The portal's client id at the authorization server and its `creatingApplication` id:
/// what a citizen enters in the portal is stored as written by this application.
pub const PORTAL_APP_ID: &str = "phr-portal";
/// The portal's name as the creating application of what the citizen enters.
pub const PORTAL_APP_NAME: &str = "Omakanta / My PHR";

/// An application a write is attributed to (`creatingApplication`, the version's source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
}

/// An application, borrowed from whichever caller names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppRef<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// An application with an access token: a wellbeing application acting under a citizen's
    /// grant (confined to that citizen's compartment), or a backend-services application with
    /// `system/` scopes (no compartment).
    App(AccessContext),
    /// The citizen in the portal: their own compartment, everything in it (deleting too);
    /// what they enter is written as the portal application.
    Citizen { patient: String },
    /// The operator's commands (import, demo, export), optionally writing as an application
    /// (`creatingApplication`) as the CLI asks.
    Operator { app: Option<App> },
    /// The server itself: storing a citizen's Patient when they take the service into use,
    /// sandbox retention.
    System,
    /// Nobody in particular: a request without a token to Kanta's open sandbox.
    OpenSandbox,
    /// A social welfare or healthcare professional through a professional application of
    /// their organisation (`context.professional` is set). Reads only, and only what a
    /// citizen's consent and a care relationship with the organisation open, decided at
    /// each request ([`crate::professional`]).
    Professional(AccessContext),
}

impl Caller {
    /// Whether `interaction` on `resource_type` is allowed (an error saying why not), and
    /// under which granular filters.
    pub fn permit(&self, resource_type: &str, interaction: Interaction) -> Result<Access> {
        match self {
            Caller::App(context) => context
                .require(resource_type, interaction)
                .map_err(Error::from_access),
            Caller::Citizen { .. } | Caller::Operator { .. } | Caller::System => {
                Ok(Access::Unrestricted)
            }
            Caller::OpenSandbox => Ok(Access::Unrestricted),
            Caller::Professional(context) => {
                if interaction.is_write() {
                    return Err(Error::forbidden(
                        "professional applications only read: a professional cannot create, change or delete a citizen's data",
                    ));
                }
                context
                    .require(resource_type, interaction)
                    .map_err(Error::from_access)
            }
        }
    }

    /// The professional's token, for a professional caller.
    pub fn professional(&self) -> Option<&AccessContext> {
        match self {
            Caller::Professional(context) => Some(context),
            _ => None,
        }
    }

    /// [`Caller::permit`] for one resource: granular scopes (`?category=`) must cover it.
    pub fn permit_resource(&self, interaction: Interaction, resource: &Value) -> Result<()> {
        let resource_type = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or("Resource");
        self.may_write_professional_access(resource_type, resource)?;
        if interaction.is_write() {
            crate::contents::check_write(self, resource)?;
        }
        if self
            .permit(resource_type, interaction)?
            .permits_resource(resource)
        {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "the token's scopes do not cover this {resource_type} (its category is outside the granted ones)"
            )))
        }
    }

    /// What opens a citizen's data to professionals is written only by whom it belongs to:
    /// the sharing Consent by the citizen (the portal) or the operator's helpers; a care
    /// relationship (EpisodeOfCare) by the system of the organisation it names (a
    /// `system/` token of that organisation's professional application) or the operator.
    fn may_write_professional_access(&self, resource_type: &str, resource: &Value) -> Result<()> {
        let own = matches!(
            self,
            Caller::Citizen { .. } | Caller::Operator { .. } | Caller::System
        );
        match resource_type {
            "Consent" if crate::professional::is_sharing_consent(resource) && !own => {
                Err(Error::forbidden(
                    "only the citizen gives or withdraws consent to share with professionals (in the portal)",
                ))
            }
            "EpisodeOfCare" if !own => {
                let org = match self {
                    Caller::App(context) if context.is_system() => context.org.as_deref(),
                    _ => None,
                };
                match org {
                    Some(org) if crate::professional::care_organisation(resource) == Some(org) => {
                        Ok(())
                    }
                    Some(org) => Err(Error::forbidden(format!(
                        "an organisation's system records care relationships of its own organisation only: managingOrganization.identifier must be urn:oid:{org}"
                    ))),
                    None => Err(Error::forbidden(
                        "care relationships are recorded by the organisation's own system (SMART Backend Services, system/EpisodeOfCare.write)",
                    )),
                }
            }
            _ => Ok(()),
        }
    }

    /// The citizen whose compartment the caller is confined to.
    pub fn compartment(&self) -> Option<&str> {
        match self {
            Caller::App(context) => context.patient.as_deref(),
            Caller::Citizen { patient } => Some(patient),
            // Each request names the citizen; the consent and care checks confine it.
            Caller::Operator { .. }
            | Caller::System
            | Caller::OpenSandbox
            | Caller::Professional(_) => None,
        }
    }

    /// The application writes are attributed to (`creatingApplication`, a version's source).
    pub fn app(&self) -> Option<AppRef<'_>> {
        match self {
            Caller::App(context) | Caller::Professional(context) => Some(AppRef {
                id: &context.app_id,
                name: &context.app_name,
            }),
            Caller::Citizen { .. } => Some(AppRef {
                id: PORTAL_APP_ID,
                name: PORTAL_APP_NAME,
            }),
            Caller::Operator { app } => app.as_ref().map(|a| AppRef {
                id: &a.id,
                name: &a.name,
            }),
            Caller::System | Caller::OpenSandbox => None,
        }
    }

    pub fn app_id(&self) -> Option<&str> {
        self.app().map(|a| a.id)
    }

    /// Whether the caller may read the history of a whole type or of the whole server, which
    /// crosses compartments: applications may not.
    pub fn may_read_wide_history(&self) -> bool {
        match self {
            Caller::App(_) | Caller::Professional(_) => false,
            Caller::Citizen { .. }
            | Caller::Operator { .. }
            | Caller::System
            | Caller::OpenSandbox => true,
        }
    }

    /// A resource outside the caller's compartment does not exist for the caller: not
    /// found, so that not even its existence leaks.
    pub fn may_see(&self, stored: &StoredResource) -> Result<()> {
        let hidden = match self {
            Caller::App(_) | Caller::Citizen { .. } => {
                self.compartment().is_some_and(|own| !stored.is_in(own))
            }
            // Decided with the consent and the care relationship (`crate::professional`).
            Caller::Professional(_) => false,
            Caller::Operator { .. } | Caller::System | Caller::OpenSandbox => false,
        };
        if hidden {
            return Err(Error::not_found(format!(
                "{}/{} is not known",
                stored.resource_type, stored.id
            )));
        }
        Ok(())
    }

    /// Only the application that created a resource, or the citizen through the portal, may
    /// delete it (Kanta: "only the source of the resource or OmaKanta can delete").
    pub fn may_delete(&self, stored: &StoredResource) -> Result<()> {
        let allowed = match self {
            Caller::Citizen { .. } | Caller::System | Caller::OpenSandbox => true,
            Caller::Operator { app: None } => true,
            Caller::Professional(_) => false,
            Caller::App(_) | Caller::Operator { app: Some(_) } => {
                stored.created_by.is_some() && stored.created_by.as_deref() == self.app_id()
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(Error::forbidden(format!(
                "{}/{} was stored by another application; only that application or the citizen may delete it",
                stored.resource_type, stored.id
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(patient: &str, created_by: Option<&str>) -> StoredResource {
        StoredResource {
            resource_type: "Observation".into(),
            id: "o1".into(),
            version: 1,
            last_updated: 0,
            deleted: false,
            body: Vec::new(),
            patient: Some(patient.into()),
            app: created_by.map(str::to_string),
            created_by: created_by.map(str::to_string),
        }
    }

    #[test]
    fn a_citizen_sees_and_deletes_only_their_own_compartment() {
        let citizen = Caller::Citizen {
            patient: "p1".into(),
        };
        assert!(citizen.may_see(&stored("p1", Some("other-app"))).is_ok());
        assert!(citizen.may_delete(&stored("p1", Some("other-app"))).is_ok());
        assert!(citizen.may_see(&stored("p2", None)).is_err());
        assert_eq!(citizen.app_id(), Some(PORTAL_APP_ID));
    }

    #[test]
    fn an_operator_writing_as_an_app_deletes_only_that_apps_resources() {
        let operator = Caller::Operator {
            app: Some(App {
                id: "a1".into(),
                name: "A".into(),
            }),
        };
        assert!(operator.may_delete(&stored("p1", Some("a1"))).is_ok());
        assert!(operator.may_delete(&stored("p1", Some("a2"))).is_err());
        assert!(operator.may_see(&stored("p2", None)).is_ok());
        assert!(
            Caller::Operator { app: None }
                .may_delete(&stored("p1", Some("a2")))
                .is_ok()
        );
    }

    fn context(
        patient: Option<&str>,
        org: Option<&str>,
        professional: bool,
        scope: &str,
    ) -> AccessContext {
        AccessContext {
            patient: patient.map(str::to_string),
            app_id: "a".into(),
            app_name: "A".into(),
            scopes: phr_auth::ScopeSet::parse(scope).unwrap(),
            scope: scope.into(),
            grant_id: patient.map(|_| "g".to_string()),
            token_id: "t".into(),
            expires_at: 0,
            org: org.map(str::to_string),
            contents: None,
            fhir_versions: None,
            professional: professional.then(|| phr_auth::Professional {
                id: "tp".into(),
                name: None,
                org: org.unwrap_or_default().to_string(),
            }),
        }
    }

    #[test]
    fn only_the_organisations_system_records_its_care_relationships() {
        let care =
            |org: &str| crate::professional::episode_of_care("p1", org, "C", "2026-01-01", None);
        let system = Caller::App(context(
            None,
            Some("1.2.3"),
            false,
            "system/EpisodeOfCare.cruds",
        ));
        assert!(
            system
                .permit_resource(Interaction::Create, &care("1.2.3"))
                .is_ok()
        );
        assert!(
            system
                .permit_resource(Interaction::Create, &care("1.2.4"))
                .is_err()
        );
        let wellbeing = Caller::App(context(Some("p1"), None, false, "patient/*.cruds"));
        assert!(
            wellbeing
                .permit_resource(Interaction::Create, &care("1.2.3"))
                .is_err()
        );
        let consent = crate::professional::sharing_consent("p1", None, "fi", "x", 0);
        assert!(
            wellbeing
                .permit_resource(Interaction::Create, &consent)
                .is_err()
        );
        let citizen = Caller::Citizen {
            patient: "p1".into(),
        };
        assert!(
            citizen
                .permit_resource(Interaction::Create, &consent)
                .is_ok()
        );
    }

    #[test]
    fn a_professional_only_reads_and_is_confined_to_no_compartment_of_its_own() {
        let pro = Caller::Professional(context(None, Some("1.2.3"), true, "user/Observation.rs"));
        assert!(pro.permit("Observation", Interaction::Read).is_ok());
        assert!(pro.permit("Observation", Interaction::Search).is_ok());
        for write in [
            Interaction::Create,
            Interaction::Update,
            Interaction::Delete,
        ] {
            assert!(pro.permit("Observation", write).is_err());
        }
        assert!(pro.permit("Condition", Interaction::Read).is_err());
        assert_eq!(pro.compartment(), None);
        assert!(!pro.may_read_wide_history());
        assert!(pro.may_delete(&stored("p1", Some("a"))).is_err());
    }
}
