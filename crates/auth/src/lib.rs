//! PHR authorization: an OAuth 2.0 / SMART App Launch (v1 + v2) authorization server with
//! Backend Services, citizen identities (HETU → pseudonymous Patient id), the application
//! registry, grants (consents), and the audit log of every access.
//!
//! The server uses three things from here:
//! - [`router`]: every auth endpoint and page, merged into the server's axum router;
//! - [`AuthService::authorize`] on every FHIR request: token → [`AccessContext`] + granular
//!   [`Access`], or an [`AccessError`] (401/403);
//! - [`AuthService::audit`] after every FHIR request, and [`AuthService::audit_events_for_patient`]
//!   for `GET /fhir/r4/AuditEvent?patient=…`.
//!
//! The personal identity code never leaves this crate: it is not stored (only a keyed
//! digest), not logged, not put in a URL, a token or a FHIR resource.

pub mod apps;
pub mod audit;
pub mod citizens;
mod client_auth;
pub mod config;
mod db;
pub mod enforce;
pub mod error;
pub mod first_party;
pub mod grants;
pub mod hetu;
pub mod http;
mod keys;
mod oidc;
pub mod params;
pub mod scope;
pub mod secrets;
pub mod service;
pub mod texts;
pub mod tokens;

pub use apps::{App, AppKind, AppStatus, ClientType, NewApp, RegisteredApp};
pub use audit::{AuditPage, AuditRecord, Usage, audit_event};
pub use citizens::{Citizen, Identified};
pub use config::{AuthConfig, Mode, OidcUpstreamConfig, UpstreamClientAuth};
pub use enforce::{AccessContext, bearer_token};
pub use error::{AccessError, AuthError, OAuthError};
pub use first_party::AuditQuery;
pub use grants::Grant;
pub use hetu::{Hetu, HetuError};
pub use http::router;
pub use scope::{Access, Interaction, ScopeFilter, ScopeSet};
pub use service::{AuthService, PatientRegistry, TokenStats, patient_resource};
pub use tokens::{IssuedToken, TokenResponse};
