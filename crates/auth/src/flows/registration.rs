//! Self-service registration: the RFC 7591 API (a subset of the client metadata), sandbox
//! mode only, and the developer console's registration page. In production the operator
//! registers apps with `phr app register`, and a developer of a registered organisation
//! signed in at its identity provider may register one on the console's page: under the
//! same production rules (a wellbeing application names its service certificate), with
//! status `sandbox`, usable in production only once the operator accepts it.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::apps::{AppKind, AppStatus, ClientType, NewApp, RegisteredApp};
use crate::error::AuthError;
use crate::service::AuthService;

/// RFC 7591 client metadata (the subset this server uses).
#[derive(Debug, Clone, Deserialize)]
pub struct ClientMetadata {
    pub client_name: String,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    pub jwks: Option<Value>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub contacts: Vec<String>,
}

/// Why a registration is refused (RFC 7591 §3.2.2).
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// Not in production mode.
    #[error("self-service registration is only open in the sandbox")]
    Closed,
    /// Production: a wellbeing application must name its service certificate's OID.
    #[error(
        "in production a wellbeing application is bound to its service certificate: give its OID"
    )]
    CertificateRequired,
    #[error("{description}")]
    Invalid {
        /// `invalid_client_metadata` or `invalid_redirect_uri`.
        code: &'static str,
        description: String,
    },
    #[error("registration failed: {0}")]
    Failed(AuthError),
}

impl From<AuthError> for RegistrationError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Invalid(description) => RegistrationError::Invalid {
                code: if description.contains("redirect") {
                    "invalid_redirect_uri"
                } else {
                    "invalid_client_metadata"
                },
                description,
            },
            other => RegistrationError::Failed(other),
        }
    }
}

/// Registers a sandbox app from RFC 7591 metadata (JSON); returns the registration
/// response, with the client secret of a confidential client (shown this once).
pub fn register_client(auth: &AuthService, body: &[u8]) -> Result<Value, RegistrationError> {
    if !auth.config().mode.is_sandbox() {
        return Err(RegistrationError::Closed);
    }
    let metadata: ClientMetadata =
        serde_json::from_slice(body).map_err(|e| RegistrationError::Invalid {
            code: "invalid_client_metadata",
            description: e.to_string(),
        })?;
    let method = metadata
        .token_endpoint_auth_method
        .as_deref()
        .unwrap_or("client_secret_basic")
        .to_owned();
    let client_type = ClientType::parse(&method).ok_or_else(|| RegistrationError::Invalid {
        code: "invalid_client_metadata",
        description: "unsupported token_endpoint_auth_method".into(),
    })?;
    let registered = auth.register_app(
        NewApp {
            app_id: None,
            name: metadata.client_name,
            kind: AppKind::Wellbeing,
            client_type,
            redirect_uris: metadata.redirect_uris,
            scope: metadata.scope,
            contact: metadata.contacts.into_iter().next(),
            jwks: metadata.jwks,
            jwks_uri: metadata.jwks_uri,
            org: None,
            certificate_oid: None,
            supplier: None,
            platform: None,
            fhir_versions: None,
        },
        AppStatus::Sandbox,
    )?;
    let app = &registered.app;
    let mut answer = json!({
        "client_id": app.app_id,
        "client_id_issued_at": app.created_at,
        "client_name": app.name,
        "redirect_uris": app.redirect_uris,
        "scope": app.scope,
        "token_endpoint_auth_method": method,
        "grant_types": if client_type == ClientType::PrivateKeyJwt {
            json!(["client_credentials", "authorization_code", "refresh_token"])
        } else {
            json!(["authorization_code", "refresh_token"])
        },
        "response_types": ["code"],
    });
    if let Some(secret) = &registered.client_secret {
        crate::set_field(&mut answer, "client_secret", json!(secret));
        crate::set_field(&mut answer, "client_secret_expires_at", json!(0));
    }
    Ok(answer)
}

/// What the registration page asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRegistration {
    pub name: String,
    /// One redirect URI per line.
    pub redirect_uris: String,
    pub scope: String,
    /// The client authentication: `public` (or empty), `confidential` or `private_key_jwt`
    /// ([`page_client_type`]).
    pub client_type: String,
    pub contact: String,
    /// The public keys of a `private_key_jwt` client: an inline JWKS or a `jwks_uri`
    /// (checked by the registry's `check_keys`, as every registration's keys are).
    pub jwks: Option<Value>,
    pub jwks_uri: Option<String>,
    /// The OID in its service certificate's Subject `serialNumber` (required in production;
    /// empty as none).
    pub certificate_oid: String,
}

/// Who registers on the console's page: the signed-in developer (who alone sees the
/// application there) and, in production, the registered organisation they belong to.
#[derive(Debug, Clone, Copy)]
pub struct PageOwner<'a> {
    pub developer: &'a str,
    pub organisation: Option<&'a crate::orgs::Organisation>,
}

/// The client type the registration page's choice names: a public client when none is
/// chosen, and a refusal for anything the page does not offer.
pub fn page_client_type(choice: &str) -> Result<ClientType, RegistrationError> {
    match choice.trim() {
        "" => Ok(ClientType::Public),
        other => ClientType::parse(other).ok_or_else(|| RegistrationError::Invalid {
            code: "invalid_client_metadata",
            description:
                "unknown client authentication: choose public, confidential or private_key_jwt"
                    .into(),
        }),
    }
}

/// Registers an app from the developer console's registration page, owned by the signed-in
/// developer, with status `sandbox`. In production only a developer of a registered
/// organisation registers here (its name becomes the application's supplier), and the
/// production rules of `phr app register` hold: a wellbeing application names its service
/// certificate.
pub fn register_from_page(
    auth: &AuthService,
    form: &PageRegistration,
    owner: PageOwner<'_>,
) -> Result<RegisteredApp, RegistrationError> {
    let mode = auth.config().mode;
    let supplier = match (mode.is_sandbox(), owner.organisation) {
        (true, _) => None,
        (false, Some(organisation)) => Some(organisation.name_fi.clone()),
        (false, None) => return Err(RegistrationError::Closed),
    };
    let certificate_oid = Some(form.certificate_oid.trim().to_owned()).filter(|o| !o.is_empty());
    if crate::apps::needs_certificate(mode, AppKind::Wellbeing) && certificate_oid.is_none() {
        return Err(RegistrationError::CertificateRequired);
    }
    let new = NewApp {
        app_id: None,
        name: form.name.clone(),
        kind: AppKind::Wellbeing,
        client_type: page_client_type(&form.client_type)?,
        redirect_uris: form
            .redirect_uris
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        scope: form.scope.clone(),
        contact: Some(form.contact.clone()).filter(|c| !c.is_empty()),
        jwks: form.jwks.clone(),
        jwks_uri: form.jwks_uri.clone(),
        org: None,
        certificate_oid,
        supplier,
        platform: None,
        fhir_versions: None,
    };
    Ok(auth.register_app_for(new, AppStatus::Sandbox, Some(owner.developer.to_owned()))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_offers_three_client_authentications_and_refuses_others() {
        assert_eq!(page_client_type("").unwrap(), ClientType::Public);
        assert_eq!(page_client_type("public").unwrap(), ClientType::Public);
        assert_eq!(
            page_client_type("confidential").unwrap(),
            ClientType::Confidential
        );
        assert_eq!(
            page_client_type("private_key_jwt").unwrap(),
            ClientType::PrivateKeyJwt
        );
        for bad in ["tls_client_auth", "Confidential", "secret"] {
            assert!(
                matches!(
                    page_client_type(bad),
                    Err(RegistrationError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }
}
