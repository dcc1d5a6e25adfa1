//! Configuration of the authorization service: where its database lives, sandbox or
//! production mode, the public URLs, the upstream OpenID Connect provider and lifetimes.
//! Deserializable so the server can embed it in its TOML file as an `[auth]` table.

use std::path::PathBuf;

use serde::Deserialize;

/// Sandbox accepts test identities through the built-in identity provider page and lets
/// developers register apps themselves; production logs citizens in through the upstream
/// OpenID Connect provider and serves only accepted apps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Sandbox,
    Production,
}

impl Mode {
    pub fn is_sandbox(self) -> bool {
        self == Mode::Sandbox
    }
}

/// The upstream OpenID Connect provider (e.g. Suomi.fi e-Identification) for production
/// logins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcUpstreamConfig {
    /// Issuer URL; `<issuer>/.well-known/openid-configuration` is fetched at first use.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Claim (in the ID token or, failing that, the userinfo response) holding the personal
    /// identity code. Suomi.fi uses `urn:oid:1.2.246.21` (nationalIdentificationNumber).
    #[serde(default = "default_hetu_claim")]
    pub hetu_claim: String,
    /// Extra scopes besides `openid`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// How to authenticate to the upstream token endpoint.
    #[serde(default)]
    pub client_auth: UpstreamClientAuth,
    /// `acr_values` to request (e.g. a strong-identification level), if any.
    #[serde(default)]
    pub acr_values: Option<String>,
}

fn default_hetu_claim() -> String {
    "urn:oid:1.2.246.21".to_owned()
}

/// The upstream OpenID Connect provider of social welfare and healthcare professionals
/// (`[auth.professional_oidc]`): who the professional is, their name and the organisation
/// they act for come from configurable claims (of the ID token or, failing that, userinfo).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfessionalOidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Extra scopes besides `openid`.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub client_auth: UpstreamClientAuth,
    #[serde(default)]
    pub acr_values: Option<String>,
    /// The claim holding the professional identifier.
    #[serde(default = "default_professional_id_claim")]
    pub id_claim: String,
    /// The claim holding the professional's name (optional in the answer).
    #[serde(default = "default_professional_name_claim")]
    pub name_claim: String,
    /// The claim holding the OID of the organisation they act for (`urn:oid:` optional).
    #[serde(default = "default_professional_org_claim")]
    pub org_claim: String,
}

fn default_professional_id_claim() -> String {
    "professional_id".to_owned()
}

fn default_professional_name_claim() -> String {
    "name".to_owned()
}

fn default_professional_org_claim() -> String {
    "organization_oid".to_owned()
}

impl ProfessionalOidcConfig {
    /// The relying-party settings of the provider (the identifier claim is the one sought
    /// in userinfo when the ID token lacks it).
    pub fn provider(&self) -> OidcUpstreamConfig {
        OidcUpstreamConfig {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            hetu_claim: self.id_claim.clone(),
            scopes: self.scopes.clone(),
            client_auth: self.client_auth,
            acr_values: self.acr_values.clone(),
        }
    }
}

/// The OpenID Connect provider through which application developers of registered
/// organisations sign in to the developer console in production (`[auth.developer_oidc]`):
/// who the developer is (a stable subject, an e-mail address, a name) and the organisation
/// they belong to come from configurable claims (of the ID token or, failing that,
/// userinfo). The organisation claim must name an organisation registered with
/// `phr org register`. Without it the console answers 501 in production.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeveloperOidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Extra scopes besides `openid` (e.g. `email profile`).
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub client_auth: UpstreamClientAuth,
    #[serde(default)]
    pub acr_values: Option<String>,
    /// The claim holding the developer's stable identifier at the provider.
    #[serde(default = "default_developer_subject_claim")]
    pub subject_claim: String,
    /// The claim holding their e-mail address (optional in the answer).
    #[serde(default = "default_developer_email_claim")]
    pub email_claim: String,
    /// The claim holding their name (optional in the answer).
    #[serde(default = "default_professional_name_claim")]
    pub name_claim: String,
    /// The claim holding the OID of their organisation (`urn:oid:` optional).
    #[serde(default = "default_professional_org_claim")]
    pub org_claim: String,
}

fn default_developer_subject_claim() -> String {
    "sub".to_owned()
}

fn default_developer_email_claim() -> String {
    "email".to_owned()
}

impl DeveloperOidcConfig {
    /// The relying-party settings of the provider (the organisation claim is the one sought
    /// in userinfo when the ID token lacks it).
    pub fn provider(&self) -> OidcUpstreamConfig {
        OidcUpstreamConfig {
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
            hetu_claim: self.org_claim.clone(),
            scopes: self.scopes.clone(),
            client_auth: self.client_auth,
            acr_values: self.acr_values.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

/// The public URLs of the authorization server's endpoints, where the domain has to name
/// them: in the discovery documents, as the `aud` a client assertion must carry (the token
/// endpoint) and as the redirect URI at the upstream identity provider. The web layer that
/// serves the endpoints sets them (they are not configuration); empty until it does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub introspection: String,
    pub revocation: String,
    pub jwks: String,
    pub userinfo: String,
    /// Dynamic client registration (sandbox only).
    pub registration: String,
    /// Where the upstream OpenID Connect provider sends the citizen back.
    pub upstream_callback: String,
    /// Where the professionals' upstream provider sends the professional back.
    pub professional_callback: String,
    /// Where the developers' provider sends a developer back to the developer console.
    pub developer_callback: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Folder for `auth.db` and the identity-key file.
    pub data_dir: PathBuf,
    pub mode: Mode,
    /// Public base URL of the server, e.g. `https://phr.example.fi`: the token issuer, and
    /// the prefix of every endpoint URL published in the discovery documents.
    pub issuer: String,
    /// FHIR base path under the issuer; access tokens carry `<issuer><fhir_path>` as `aud`.
    pub fhir_path: String,
    /// Production only.
    pub oidc: Option<OidcUpstreamConfig>,
    /// The professionals' identity provider; without it professionals sign in only on the
    /// sandbox's test page (production answers 501).
    pub professional_oidc: Option<ProfessionalOidcConfig>,
    /// The application developers' identity provider; without it the developer console
    /// signs developers in only in the sandbox (by e-mail address; production answers 501).
    pub developer_oidc: Option<DeveloperOidcConfig>,
    /// Seconds an access token lives.
    pub access_token_lifetime: i64,
    /// Seconds a refresh token may wait unused (each refresh issues a new one).
    pub refresh_token_lifetime: i64,
    /// Seconds an authorization code lives.
    pub code_lifetime: i64,
    /// Seconds a login page session lives.
    pub session_lifetime: i64,
    /// Seconds after which a new signing key is made (the old one keeps verifying until its
    /// tokens have expired).
    pub key_rotation_interval: i64,
    /// Version label of the terms of use a citizen accepts when taking the service into use.
    pub terms_version: String,
    /// Minimum age to take the service into use.
    pub minimum_age: u32,
    /// File holding the secret key for hashing identity codes; default `<data_dir>/identity.key`.
    pub identity_key_file: Option<PathBuf>,
    /// Audit records buffered before writers wait for the audit thread.
    pub audit_queue: usize,
    /// Set by the server, not read from configuration.
    #[serde(skip)]
    pub endpoints: Endpoints,
    /// Whether the server reads client certificates (TLS with trusted issuers of application
    /// certificates, or a trusted proxy's header), so that `tls_client_auth` and
    /// certificate-bound tokens can be offered. Set by the server.
    #[serde(skip)]
    pub client_certificates: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            data_dir: PathBuf::from("./phr-data"),
            mode: Mode::Sandbox,
            issuer: "http://127.0.0.1:8080".to_owned(),
            fhir_path: "/fhir/r4".to_owned(),
            oidc: None,
            professional_oidc: None,
            developer_oidc: None,
            access_token_lifetime: 600,
            refresh_token_lifetime: 90 * 24 * 3600,
            code_lifetime: 60,
            session_lifetime: 30 * 60,
            key_rotation_interval: 30 * 24 * 3600,
            terms_version: "2026-1".to_owned(),
            client_certificates: false,
            minimum_age: 16,
            identity_key_file: None,
            audit_queue: 10_000,
            endpoints: Endpoints::default(),
        }
    }
}

impl AuthConfig {
    /// A sandbox configuration with its data in `data_dir`, serving at `issuer`.
    pub fn sandbox(data_dir: impl Into<PathBuf>, issuer: impl Into<String>) -> Self {
        AuthConfig {
            data_dir: data_dir.into(),
            issuer: issuer.into(),
            ..AuthConfig::default()
        }
    }

    /// Issuer without a trailing slash.
    pub fn issuer(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// The FHIR base URL, the `aud` of access tokens.
    pub fn fhir_base_url(&self) -> String {
        format!("{}{}", self.issuer(), self.fhir_path)
    }

    pub fn identity_key_path(&self) -> PathBuf {
        self.identity_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("identity.key"))
    }

    /// Checks rules that span settings.
    pub fn check(&self) -> Result<(), String> {
        url::Url::parse(&self.issuer)
            .map_err(|e| format!("auth issuer {:?} is not a URL: {e}", self.issuer))?;
        if self.mode == Mode::Production && self.oidc.is_none() {
            return Err("production mode needs an [auth.oidc] upstream identity provider".into());
        }
        if self.mode == Mode::Sandbox && self.developer_oidc.is_some() {
            return Err("[auth.developer_oidc] is for production mode: in the sandbox developers sign in to the console by e-mail address".into());
        }
        if self.mode == Mode::Production
            && !self.issuer.starts_with("https://")
            && !is_loopback_url(&self.issuer)
        {
            return Err("production mode needs an https issuer URL".into());
        }
        for (name, value) in [
            ("access_token_lifetime", self.access_token_lifetime),
            ("refresh_token_lifetime", self.refresh_token_lifetime),
            ("code_lifetime", self.code_lifetime),
            ("session_lifetime", self.session_lifetime),
            ("key_rotation_interval", self.key_rotation_interval),
        ] {
            if value <= 0 {
                return Err(format!("auth {name} must be positive"));
            }
        }
        if self.key_rotation_interval <= self.access_token_lifetime {
            return Err("auth key_rotation_interval must exceed access_token_lifetime".into());
        }
        Ok(())
    }
}

/// True for `http://127.x.x.x`, `http://[::1]` and `http://localhost` URLs (tests and local
/// development may use plain http there).
pub fn is_loopback_url(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
