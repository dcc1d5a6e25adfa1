//! PHR authorization: an OAuth 2.0 / SMART App Launch (v1 + v2) authorization server with
//! Backend Services, citizen identities (HETU → pseudonymous Patient id), the application
//! registry, grants (consents), browser sessions, and the audit log of every access.
//!
//! The crate is the domain only; it knows no HTTP. The server's web layer serves the OAuth
//! endpoints and pages by calling the [`flows`], and on every FHIR request calls
//! [`AuthService::authenticate`] (the per-request enforcer, [`enforce`]) and
//! [`AuthService::audit`].
//!
//! Each table is owned by one module behind a small storage trait with its SQLite
//! implementation beside it ([`apps`], [`citizens`], [`grants`], [`sessions`], [`tokens`],
//! [`keys`], [`audit`], [`cluster`]), and a PostgreSQL one ([`postgres`]) for several nodes on
//! one database; [`service`] wires them. Every call is synchronous and may block on
//! storage: call it from a blocking thread, never on an async worker.
//!
//! The personal identity code never leaves this crate: it is not stored (only a keyed
//! digest), not logged, not put in a URL, a token or a FHIR resource.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod apps;
pub mod audit;
pub mod certificate;
pub mod citizens;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod enforce;
pub mod error;
pub mod flows;
pub mod grants;
pub mod hetu;
pub mod keys;
pub mod oidc;
pub mod orgs;
pub mod params;
pub mod postgres;
mod queue;
pub mod scope;
pub mod secrets;
pub mod service;
pub mod sessions;
mod sqlite;
pub mod tokens;
pub mod traffic;

pub use apps::{
    AcceptedContent, App, AppDetails, AppKind, AppStatus, AppStore, ClientType, ContentRights,
    FhirVersions, ListedApp, NewApp, Platform, RegisteredApp, RoundOutcome, TestRound,
};
pub use audit::{AuditPage, AuditQuery, AuditRecord, AuditStore, Usage, audit_event};
pub use certificate::PresentedCertificate;
pub use citizens::{Citizen, CitizenStore, Identified, PatientRegistry, patient_resource};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cluster::ClusterStore;
pub use config::{
    AuthConfig, DeveloperOidcConfig, Endpoints, Mode, OidcUpstreamConfig, ProfessionalOidcConfig,
    UpstreamClientAuth,
};
pub use enforce::{AccessContext, AppStanding, Professional, StatusSignal, bearer_token};
pub use error::{AccessError, AuthError, OAuthError};
pub use flows::{IssuedToken, TokenResponse};
pub use grants::{Grant, GrantStore};
pub use hetu::{Hetu, HetuError};
pub use keys::KeyStore;
pub use orgs::{NewOrganisation, OrgStore, Organisation};
pub use scope::{Access, Interaction, ScopeFilter, ScopeSet};
pub use service::{AuthService, Probe, Stores, TokenStats, database_path};
pub use sessions::{SessionKind, SessionStore, Sessions};
pub use tokens::TokenStore;

/// Sets `key` of a JSON object (a no-op on anything else, which the callers never pass:
/// they build the object themselves).
pub(crate) fn set_field(object: &mut serde_json::Value, key: &str, value: serde_json::Value) {
    if let serde_json::Value::Object(map) = object {
        map.insert(key.to_owned(), value);
    }
}
