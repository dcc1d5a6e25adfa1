//! The enforcement API the FHIR layer calls on every request: from the `Authorization`
//! header to an [`AccessContext`] (who, which app, which patient, which scopes), or an
//! [`AccessError`] that maps to 401 or 403.
//!
//! A valid signature is not enough: the app must still be usable, the grant still active,
//! the refresh family (if any) not revoked and the token not revoked. Those checks read an
//! in-memory cache that every change through this service invalidates at once, so the hot
//! path does no database work once warm.

use serde::Serialize;

use crate::error::AccessError;
use crate::scope::{Access, Interaction, ScopeSet};
use crate::service::AuthService;
use crate::tokens::AccessClaims;

/// Who is calling and what they may do. Handed to the FHIR layer and the audit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessContext {
    /// The Patient id whose compartment the token is confined to; `None` for backend
    /// (system) tokens.
    pub patient: Option<String>,
    /// The application id (= `client_id`, = `creatingApplication` applicationId).
    pub app_id: String,
    pub app_name: String,
    #[serde(skip)]
    pub scopes: ScopeSet,
    /// The scope string as granted.
    pub scope: String,
    pub grant_id: Option<String>,
    /// The token's `jti` (never the token itself).
    pub token_id: String,
    pub expires_at: i64,
}

impl AccessContext {
    /// Whether `interaction` on `resource_type` is allowed and under which granular filters.
    pub fn access(&self, resource_type: &str, interaction: Interaction) -> Access {
        self.scopes
            .access(resource_type, interaction, self.patient.is_none())
    }

    /// Like [`AccessContext::access`], as a 403 error when denied.
    pub fn require(
        &self,
        resource_type: &str,
        interaction: Interaction,
    ) -> Result<Access, AccessError> {
        match self.access(resource_type, interaction) {
            Access::Denied => Err(AccessError::InsufficientScope {
                resource_type: resource_type.to_owned(),
                interaction: interaction.code(),
            }),
            access => Ok(access),
        }
    }

    /// True for backend-service tokens (client_credentials, `system/` scopes).
    pub fn is_system(&self) -> bool {
        self.patient.is_none()
    }
}

/// The token from an `Authorization: Bearer …` header value.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl AuthService {
    /// Authenticates a request from its `Authorization` header value (`None` when absent).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<AccessContext, AccessError> {
        let header = authorization.ok_or(AccessError::MissingToken)?;
        let token = bearer_token(header).ok_or(AccessError::InvalidToken)?;
        let claims = self
            .decode_access_token(token)
            .ok_or(AccessError::InvalidToken)?;
        let app_name = self.check_claims(&claims)?;
        let scopes = ScopeSet::parse(&claims.scope).map_err(|_| AccessError::InvalidToken)?;
        Ok(AccessContext {
            patient: claims.patient,
            app_id: claims.client_id,
            app_name,
            scopes,
            scope: claims.scope,
            grant_id: claims.gid,
            token_id: claims.jti,
            expires_at: claims.exp,
        })
    }

    /// Authenticates and checks that the scopes allow `interaction` on `resource_type`.
    /// The returned [`Access`] carries granular filters the FHIR layer must apply.
    pub fn authorize(
        &self,
        authorization: Option<&str>,
        resource_type: &str,
        interaction: Interaction,
    ) -> Result<(AccessContext, Access), AccessError> {
        let context = self.authenticate(authorization)?;
        let access = context.require(resource_type, interaction)?;
        Ok((context, access))
    }

    /// Expiry, revocation, app, grant and family status; returns the app's name.
    pub(crate) fn check_claims(&self, claims: &AccessClaims) -> Result<String, AccessError> {
        if claims.exp <= self.now() {
            return Err(AccessError::Expired);
        }
        self.sync_status_epoch();
        if self
            .0
            .status
            .revoked_jti
            .read()
            .map(|r| r.contains_key(&claims.jti))
            .unwrap_or(true)
        {
            return Err(AccessError::Revoked);
        }
        let internal = |e: crate::error::AuthError| {
            tracing::error!(error = %e, "authorization status lookup failed");
            AccessError::Internal
        };
        let (name, status) = self
            .app_status_cached(&claims.client_id)
            .map_err(internal)?
            .ok_or(AccessError::InvalidToken)?;
        if !status.is_usable(self.config().mode) {
            return Err(AccessError::AppInactive(status.code().to_owned()));
        }
        if let Some(grant) = &claims.gid
            && !self.grant_active_cached(grant).map_err(internal)?
        {
            return Err(AccessError::GrantWithdrawn);
        }
        if let Some(family) = &claims.fid
            && !self.family_active_cached(family).map_err(internal)?
        {
            return Err(AccessError::Revoked);
        }
        if claims.patient.is_some() && claims.gid.is_none() {
            // Patient tokens are always issued under a grant.
            return Err(AccessError::InvalidToken);
        }
        Ok(name)
    }

    fn family_active_cached(&self, family_id: &str) -> crate::error::Result<bool> {
        use rusqlite::OptionalExtension;
        if let Some(hit) = self
            .0
            .status
            .families
            .read()
            .ok()
            .and_then(|m| m.get(family_id).copied())
        {
            return Ok(hit);
        }
        let status: Option<String> = self
            .db()
            .query_row(
                "SELECT status FROM token_families WHERE family_id = ?1",
                [family_id],
                |r| r.get(0),
            )
            .optional()?;
        let active = status.as_deref() == Some("active");
        if let Ok(mut map) = self.0.status.families.write() {
            map.insert(family_id.to_owned(), active);
        }
        Ok(active)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_required() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
