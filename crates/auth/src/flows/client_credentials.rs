//! SMART Backend Services: a `private_key_jwt` client gets a `system/` token for the scopes
//! it asked for and is registered for. No citizen, no grant, no refresh.

use super::{Subject, TokenResponse, mint};
use crate::apps::{App, ClientType};
use crate::error::OAuthError;
use crate::scope::{ScopeContext, ScopeSet};
use crate::service::AuthService;

/// Issues a system token to an authenticated client, bound to `certificate` (a thumbprint)
/// when the client is bound to one.
pub fn grant(
    auth: &AuthService,
    app: &App,
    scope: &str,
    certificate: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    if app.client_type != ClientType::PrivateKeyJwt {
        return Err(OAuthError::unauthorized_client(
            "client_credentials needs a private_key_jwt client",
        ));
    }
    let asked = ScopeSet::parse(scope).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
    let mut granted = asked.intersect(&app.allowed_scopes());
    granted
        .resources
        .retain(|r| r.context == ScopeContext::System);
    granted.special.clear();
    if granted.resources.is_empty() {
        return Err(OAuthError::invalid_scope(
            "no requested system/ scope is registered for this client",
        ));
    }
    mint(
        auth,
        app,
        &Subject {
            patient: None,
            scope: &granted.to_string(),
            grant_id: None,
            family_id: None,
            certificate,
        },
    )
}
