//! The OAuth flows through the domain API alone, no HTTP: what the server's pages and
//! endpoints do, step by step, on a clock the tests move instead of sleeping.

use std::sync::Arc;

use phr_auth::flows::authorize::{self, AuthorizeRejection, LoginError, Next};
use phr_auth::flows::client_auth::ClientCredentials;
use phr_auth::flows::introspection::{self, TokenQuestion};
use phr_auth::flows::token::{self, Grant, TokenRequest};
use phr_auth::params::Params;
use phr_auth::secrets::pkce_s256_challenge;
use phr_auth::{
    AccessError, AppKind, AppStatus, AuthConfig, AuthService, ClientType, Clock, Interaction,
    ManualClock, NewApp,
};

const BASE: &str = "https://phr.example.fi";
const REDIRECT: &str = "https://app.example.fi/cb";
const VERIFIER: &str = "a-long-enough-pkce-code-verifier-0123456789abcdefghij";
const SCOPE: &str =
    "openid fhirUser patient/Observation.read patient/Observation.write offline_access";

struct Fixture {
    auth: AuthService,
    clock: Arc<ManualClock>,
    app: String,
    _dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path) -> AuthConfig {
    let mut config = AuthConfig::sandbox(dir, BASE);
    config.endpoints.token = format!("{BASE}/oauth/token");
    config
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let auth = AuthService::open_with_clock(config(dir.path()), clock.clone()).unwrap();
    let app = auth
        .register_app(
            NewApp {
                app_id: None,
                name: "Steps".into(),
                kind: AppKind::Wellbeing,
                client_type: ClientType::Public,
                redirect_uris: vec![REDIRECT.into()],
                scope: "patient/Observation.read patient/Observation.write offline_access".into(),
                contact: None,
                jwks: None,
                jwks_uri: None,
                org: None,
                certificate_oid: None,
                supplier: None,
                platform: None,
                fhir_versions: None,
            },
            AppStatus::Sandbox,
        )
        .unwrap()
        .app
        .app_id;
    Fixture {
        auth,
        clock,
        app,
        _dir: dir,
    }
}

fn authorize_params(app: &str) -> Params {
    let challenge = pkce_s256_challenge(VERIFIER);
    Params::new(
        [
            ("response_type", "code"),
            ("client_id", app),
            ("redirect_uri", REDIRECT),
            ("scope", SCOPE),
            ("state", "st"),
            ("aud", "https://phr.example.fi/fhir/r4"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect(),
    )
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Authorize → sandbox login → terms (first time) → consent of everything: the code.
fn code_for(f: &Fixture, hetu: &str) -> String {
    let request = authorize::validate(&f.auth, &authorize_params(&f.app)).unwrap();
    let mut login = authorize::start(&f.auth, None, request).unwrap();
    let mut next = authorize::identify_sandbox(&f.auth, &mut login, Some(hetu)).unwrap();
    if next == Next::Terms {
        let mut resumed = authorize::resume(&f.auth, &login.session).unwrap().unwrap();
        next = authorize::accept_terms(&f.auth, &mut resumed, true).unwrap();
    }
    assert_eq!(next, Next::Consent);
    let login = authorize::resume(&f.auth, &login.session).unwrap().unwrap();
    let request = authorize::consent_request(&login).unwrap();
    let items = phr_auth::ScopeSet::parse(&request.scope)
        .unwrap()
        .resource_scopes()
        .len();
    let redirect =
        authorize::consent(&f.auth, &login, true, &(0..items).collect::<Vec<_>>()).unwrap();
    assert!(redirect.starts_with(REDIRECT), "{redirect}");
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("st"));
    assert_eq!(query_param(&redirect, "iss").as_deref(), Some(BASE));
    // One consent per identification: the login is spent.
    assert!(
        authorize::resume(&f.auth, &login.session)
            .unwrap()
            .is_none()
    );
    query_param(&redirect, "code").unwrap()
}

fn exchange(f: &Fixture, code: &str) -> Result<phr_auth::TokenResponse, phr_auth::OAuthError> {
    token::request(
        &f.auth,
        &TokenRequest {
            client: ClientCredentials::Public {
                client_id: f.app.clone(),
            },
            grant: Grant::AuthorizationCode {
                code: code.into(),
                redirect_uri: Some(REDIRECT.into()),
                code_verifier: Some(VERIFIER.into()),
            },
            certificate: None,
        },
    )
}

fn refresh(
    f: &Fixture,
    refresh_token: &str,
) -> Result<phr_auth::TokenResponse, phr_auth::OAuthError> {
    token::request(
        &f.auth,
        &TokenRequest {
            client: ClientCredentials::Public {
                client_id: f.app.clone(),
            },
            grant: Grant::RefreshToken {
                refresh_token: refresh_token.into(),
                scope: None,
            },
            certificate: None,
        },
    )
}

fn bearer(token: &phr_auth::TokenResponse) -> String {
    format!("Bearer {}", token.access_token)
}

#[test]
fn a_citizen_signs_in_consents_and_the_app_reads_with_the_token() {
    let f = fixture();
    let code = code_for(&f, "010190-900P");
    let token = exchange(&f, &code).unwrap();
    let patient = token.patient.clone().unwrap();
    assert!(token.id_token.is_some() && token.refresh_token.is_some());
    let (context, _) = f
        .auth
        .authorize(Some(&bearer(&token)), "Observation", Interaction::Search)
        .unwrap();
    assert_eq!(context.patient.as_deref(), Some(patient.as_str()));
    assert_eq!(context.app_name, "Steps");
    // The code is single use; its replay ends the sign-in it started.
    assert_eq!(exchange(&f, &code).unwrap_err().code, "invalid_grant");
    assert_eq!(
        f.auth.authenticate(Some(&bearer(&token))).unwrap_err(),
        AccessError::Revoked
    );
}

#[test]
fn tokens_expire_by_the_clock_and_refresh_rotates() {
    let f = fixture();
    let token = exchange(&f, &code_for(&f, "010190-900P")).unwrap();
    f.clock.advance(599);
    assert!(f.auth.authenticate(Some(&bearer(&token))).is_ok());
    f.clock.advance(1);
    assert_eq!(
        f.auth.authenticate(Some(&bearer(&token))).unwrap_err(),
        AccessError::Expired
    );
    let first = token.refresh_token.unwrap();
    let renewed = refresh(&f, &first).unwrap();
    assert!(f.auth.authenticate(Some(&bearer(&renewed))).is_ok());
    // Reuse of the first refresh token revokes the whole sign-in.
    assert_eq!(refresh(&f, &first).unwrap_err().code, "invalid_grant");
    assert_eq!(
        f.auth.authenticate(Some(&bearer(&renewed))).unwrap_err(),
        AccessError::Revoked
    );
}

#[test]
fn a_changed_scope_leaves_issued_tokens_their_granted_scope_and_is_audited() {
    let f = fixture();
    let token = exchange(&f, &code_for(&f, "010190-900P")).unwrap();
    let narrowed = f
        .auth
        .set_app_scope(&f.app, "patient/Observation.read offline_access")
        .unwrap();
    assert_eq!(narrowed.scope, "patient/Observation.read offline_access");
    // The token issued before still writes, and so does the one its refresh token gives.
    let writes = |t: &phr_auth::TokenResponse| {
        f.auth
            .authorize(Some(&bearer(t)), "Observation", Interaction::Create)
            .is_ok()
    };
    assert!(writes(&token));
    let renewed = refresh(&f, token.refresh_token.as_deref().unwrap()).unwrap();
    assert_eq!(renewed.scope, token.scope);
    assert!(writes(&renewed));
    // The next authorization can be granted the new scope only.
    let request = authorize::validate(&f.auth, &authorize_params(&f.app)).unwrap();
    let grantable = phr_auth::ScopeSet::parse(&request.scope).unwrap();
    assert_eq!(
        grantable.access("Observation", Interaction::Create, false),
        phr_auth::Access::Denied,
        "{}",
        request.scope
    );
    f.auth.flush_audit().unwrap();
    let mut exported = Vec::new();
    f.auth.export_audit(&mut exported, None, None).unwrap();
    let exported = String::from_utf8(exported).unwrap();
    assert!(exported.contains("\"app-scope\""), "{exported}");
}

#[test]
fn keys_are_public_only_and_each_change_is_audited() {
    let f = fixture();
    let key = serde_json::json!({"kty": "EC", "crv": "P-256", "kid": "k1",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
    let mut private = key.clone();
    private["d"] = "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI".into();
    let error = f
        .auth
        .set_app_keys(&f.app, Some(serde_json::json!({ "keys": [private] })), None)
        .unwrap_err();
    assert!(
        error.to_string().contains("private key material"),
        "{error}"
    );
    let jwks = serde_json::json!({ "keys": [key] });
    let set = f
        .auth
        .set_app_keys(&f.app, Some(jwks.clone()), None)
        .unwrap();
    assert_eq!(set.jwks, Some(jwks));
    let cleared = f.auth.set_app_keys(&f.app, None, None).unwrap();
    assert_eq!((cleared.jwks, cleared.jwks_uri), (None, None));
    f.auth.flush_audit().unwrap();
    let mut exported = Vec::new();
    f.auth.export_audit(&mut exported, None, None).unwrap();
    let exported = String::from_utf8(exported).unwrap();
    assert_eq!(exported.matches("\"app-keys\"").count(), 2, "{exported}");
}

#[test]
fn requests_that_cannot_be_trusted_get_a_page_not_a_redirect() {
    let f = fixture();
    let mut params = authorize_params(&f.app);
    params = Params::new(
        params
            .pairs()
            .iter()
            .map(|(k, v)| {
                let v = if k == "redirect_uri" {
                    "https://evil.example/cb".to_owned()
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect(),
    );
    assert!(matches!(
        authorize::validate(&f.auth, &params),
        Err(AuthorizeRejection::Page(_))
    ));
    let without_pkce = Params::new(
        authorize_params(&f.app)
            .pairs()
            .iter()
            .filter(|(k, _)| !k.starts_with("code_challenge"))
            .cloned()
            .collect(),
    );
    let Err(AuthorizeRejection::Redirect(url)) = authorize::validate(&f.auth, &without_pkce) else {
        panic!("a public client without PKCE is told so at its redirect URI");
    };
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("invalid_request")
    );
}

#[test]
fn the_sandbox_login_takes_only_valid_test_identities() {
    let f = fixture();
    let request = authorize::validate(&f.auth, &authorize_params(&f.app)).unwrap();
    let mut login = authorize::start(&f.auth, None, request).unwrap();
    assert!(matches!(
        authorize::identify_sandbox(&f.auth, &mut login, Some("010190-900X")),
        Err(LoginError::InvalidIdentity)
    ));
    assert!(matches!(
        authorize::identify_sandbox(&f.auth, &mut login, Some(&hetu("010190", '-', 123))),
        Err(LoginError::NotTestIdentity)
    ));
    // Sixteen tomorrow, by the service's clock: refused today.
    let mut day = f.clock.today().next_day().unwrap();
    let birth = loop {
        // (29 February has no birthday sixteen years earlier: try the next day.)
        if let Ok(birth) = day.replace_year(day.year() - 16) {
            break birth;
        }
        day = day.next_day().unwrap();
    };
    let young = test_hetu(birth);
    assert!(matches!(
        authorize::identify_sandbox(&f.auth, &mut login, Some(&young)),
        Err(LoginError::UnderAge)
    ));
}

/// A valid identity code with its check character.
fn hetu(ddmmyy: &str, sign: char, individual: u16) -> String {
    let n: u64 = format!("{ddmmyy}{individual:03}").parse().unwrap();
    let check = "0123456789ABCDEFHJKLMNPRSTUVWXY".as_bytes()[(n % 31) as usize] as char;
    format!("{ddmmyy}{sign}{individual:03}{check}")
}

/// A test identity code (individual number 901) for a birth date.
fn test_hetu(birth: time::Date) -> String {
    let ddmmyy = format!(
        "{:02}{:02}{:02}",
        birth.day(),
        u8::from(birth.month()),
        birth.year() % 100
    );
    hetu(&ddmmyy, if birth.year() >= 2000 { 'A' } else { '-' }, 901)
}

#[test]
fn a_withdrawal_by_another_process_reaches_the_server_at_its_next_poll() {
    let f = fixture();
    let issued = f
        .auth
        .issue_token_for_cli("010190-900P", &f.app, "patient/Observation.read")
        .unwrap();
    let header = format!("Bearer {}", issued.token.access_token);
    assert!(f.auth.authenticate(Some(&header)).is_ok());
    // The operator CLI: another service on the same folder, with a clock of its own.
    let operator = AuthService::open(f.auth.config().clone()).unwrap();
    operator
        .withdraw_for_sandbox_identity("010190-900P", &f.app)
        .unwrap();
    assert!(
        f.auth.authenticate(Some(&header)).is_ok(),
        "the server has not looked yet"
    );
    f.clock.advance(1);
    assert_eq!(
        f.auth.authenticate(Some(&header)).unwrap_err(),
        AccessError::GrantWithdrawn
    );
}

#[test]
fn introspection_sees_only_the_clients_own_live_tokens() {
    let f = fixture();
    let token = exchange(&f, &code_for(&f, "010190-900P")).unwrap();
    let ask = |token: &str| TokenQuestion {
        client: ClientCredentials::Public {
            client_id: f.app.clone(),
        },
        token: token.into(),
    };
    let active = introspection::introspect(&f.auth, &ask(&token.access_token)).unwrap();
    assert!(active.active);
    assert_eq!(active.patient, token.patient);
    let refresh_token = token.refresh_token.clone().unwrap();
    assert!(
        introspection::introspect(&f.auth, &ask(&refresh_token))
            .unwrap()
            .active
    );
    introspection::revoke(&f.auth, &ask(&refresh_token)).unwrap();
    assert!(
        !introspection::introspect(&f.auth, &ask(&refresh_token))
            .unwrap()
            .active
    );
    assert!(
        !introspection::introspect(&f.auth, &ask(&token.access_token))
            .unwrap()
            .active,
        "the access token of a revoked sign-in is inactive too"
    );
}

#[test]
fn a_token_minted_for_another_public_url_is_refused_naming_both() {
    let f = fixture();
    // `phr token` run without the server's public URL: same folder, same keys.
    let cli = AuthService::open(AuthConfig::sandbox(
        &f.auth.config().data_dir,
        "http://127.0.0.1:8080",
    ))
    .unwrap();
    let issued = cli
        .issue_token_for_cli("010190-900P", &f.app, "patient/Observation.read")
        .unwrap();
    let error = f
        .auth
        .authenticate(Some(&format!("Bearer {}", issued.token.access_token)))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "the access token was issued by http://127.0.0.1:8080, this server is https://phr.example.fi"
    );
    assert!(error.www_authenticate().contains("error=\"invalid_token\""));
}

#[test]
fn each_authorization_gets_a_login_session_of_its_own() {
    let f = fixture();
    let request = authorize::validate(&f.auth, &authorize_params(&f.app)).unwrap();
    let first = authorize::start(&f.auth, None, request.clone()).unwrap();
    let second = authorize::start(&f.auth, Some(&first.session), request).unwrap();
    assert_ne!(first.session, second.session);
    assert_ne!(first.state.csrf, second.state.csrf);
    assert!(
        authorize::resume(&f.auth, &first.session)
            .unwrap()
            .is_none()
    );
    assert!(
        authorize::resume(&f.auth, &second.session)
            .unwrap()
            .is_some()
    );
    // A login session lives `session_lifetime` at most.
    f.clock.advance(f.auth.config().session_lifetime);
    assert!(
        authorize::resume(&f.auth, &second.session)
            .unwrap()
            .is_none()
    );
}
