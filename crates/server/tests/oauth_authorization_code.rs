//! The authorization-code flow end to end through the real router: sandbox login, terms,
//! consent, token, refresh, and every way it must fail.

mod common;

use common::*;
use phr_auth::{AccessError, AppStatus, ClientType, Interaction};

const SCOPE: &str = "launch/patient openid fhirUser patient/Observation.read patient/Observation.write offline_access";

#[tokio::test]
async fn full_flow_gives_tokens_for_the_patient_and_refresh_rotates() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let token = sign_in(&h, &app, SCOPE, &adult()).await;

    let patient = token["patient"].as_str().unwrap().to_owned();
    assert_eq!(token["sub"], patient.as_str());
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 600);
    assert!(token["id_token"].is_string());
    // Granted = requested ∩ registered (MedicationAdministration was not asked for), in the
    // client's own spelling.
    assert_eq!(
        token["scope"],
        "patient/Observation.read patient/Observation.write launch/patient openid fhirUser offline_access"
    );
    uuid::Uuid::parse_str(&patient).expect("patient id is a UUID");

    // The Patient resource was handed to the store: pseudonymous, fiphr profile.
    let stored = h.patients.stored.lock().unwrap().clone();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], patient.as_str());
    assert_eq!(
        stored[0]["identifier"][0]["value"],
        format!("urn:uuid:{patient}")
    );
    assert!(
        !stored[0].to_string().contains("010190"),
        "no identity code in the Patient"
    );

    let (context, _) = h
        .service
        .authorize(Some(&bearer(&token)), "Observation", Interaction::Search)
        .unwrap();
    assert_eq!(context.patient.as_deref(), Some(patient.as_str()));
    assert_eq!(context.app_id, app);
    assert_eq!(context.app_name, "Askelmittari");
    assert!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Create)
            .is_ok()
    );

    // Refresh: a new access token and a new refresh token.
    let refresh = token["refresh_token"].as_str().unwrap();
    let (status, refreshed) = token_request(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &app),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_ne!(refreshed["refresh_token"], token["refresh_token"]);
    assert_eq!(refreshed["patient"], patient.as_str());
    assert!(
        h.service
            .authorize(Some(&bearer(&refreshed)), "Observation", Interaction::Read)
            .is_ok()
    );

    // A second sign-in of the same person finds the same Patient and skips the terms.
    let again = sign_in(&h, &app, SCOPE, &adult()).await;
    assert_eq!(again["patient"], patient.as_str());
    assert_eq!(h.patients.stored.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn reused_refresh_token_revokes_the_whole_family() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let token = sign_in(&h, &app, SCOPE, &adult()).await;
    let first = token["refresh_token"].as_str().unwrap().to_owned();
    let (_, second) = token_request(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first),
            ("client_id", &app),
        ],
        None,
    )
    .await;
    let (status, error) = token_request(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first),
            ("client_id", &app),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"], "invalid_grant");
    // The family is gone: the newer refresh token and its access token stop too.
    let (status, _) = token_request(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", second["refresh_token"].as_str().unwrap()),
            ("client_id", &app),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        h.service
            .authorize(Some(&bearer(&second)), "Observation", Interaction::Read)
            .unwrap_err(),
        AccessError::Revoked
    );
}

#[tokio::test]
async fn withdrawing_the_grant_stops_issued_tokens_at_once() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let token = sign_in(&h, &app, SCOPE, &adult()).await;
    let patient = token["patient"].as_str().unwrap();
    assert!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
            .is_ok()
    );

    let grants = h.service.grants_for_patient(patient).unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].app_name, "Askelmittari");
    h.service
        .withdraw_grant(patient, &grants[0].grant_id)
        .unwrap();

    let error = h
        .service
        .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
        .unwrap_err();
    assert_eq!(error, AccessError::GrantWithdrawn);
    assert_eq!(error.status(), 401);
    let (status, body) = token_request(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token["refresh_token"].as_str().unwrap()),
            ("client_id", &app),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        h.service.grants_for_patient(patient).unwrap()[0].status,
        "withdrawn"
    );
}

#[tokio::test]
async fn replayed_code_is_refused_and_revokes_what_it_produced() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let mut browser = Browser::default();
    let redirect = consent_flow(&h, &mut browser, &app, SCOPE, &adult()).await;
    assert_eq!(query_param(&redirect, "state").as_deref(), Some("st-123"));
    assert_eq!(
        query_param(&redirect, "iss").as_deref(),
        Some(h.base.as_str())
    );
    let code = query_param(&redirect, "code").unwrap();
    let (status, token) = exchange(&h, &app, &code, VERIFIER).await;
    assert_eq!(status, 200);
    let (status, replay) = exchange(&h, &app, &code, VERIFIER).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = token_request(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token["refresh_token"].as_str().unwrap()),
            ("client_id", &app),
        ],
        None,
    )
    .await;
    assert_eq!(
        status, 400,
        "the refresh token from the replayed code is revoked"
    );
}

#[tokio::test]
async fn pkce_mismatch_is_refused() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let mut browser = Browser::default();
    let redirect = consent_flow(&h, &mut browser, &app, SCOPE, &adult()).await;
    let code = query_param(&redirect, "code").unwrap();
    let (status, error) = exchange(
        &h,
        &app,
        &code,
        "another-verifier-that-is-long-enough-0123456789abcdef",
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // The code is burnt: the right verifier no longer helps.
    let (status, _) = exchange(&h, &app, &code, VERIFIER).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn public_client_without_pkce_is_refused_at_authorize() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let mut browser = Browser::default();
    let page = browser
        .get(&h.http, &authorize_url(&h, &app, SCOPE, None))
        .await;
    assert_eq!(page.status, 303);
    let location = page.location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
}

#[tokio::test]
async fn unregistered_redirect_uri_gets_an_error_page_not_a_redirect() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let url = authorize_url(
        &h,
        &app,
        SCOPE,
        Some(&phr_auth::secrets::pkce_s256_challenge(VERIFIER)),
    )
    .replace("127.0.0.1%3A9", "evil.example");
    let page = Browser::default().get(&h.http, &url).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    assert!(page.body.contains("redirect_uri"), "{}", page.body);
}

#[tokio::test]
async fn token_request_with_another_redirect_uri_is_refused() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let mut browser = Browser::default();
    let redirect = consent_flow(&h, &mut browser, &app, SCOPE, &adult()).await;
    let code = query_param(&redirect, "code").unwrap();
    let (status, error) = token_request(
        &h,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/other"),
            ("client_id", &app),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn expired_access_token_is_refused_with_401() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let token = sign_in(&h, &app, SCOPE, &adult()).await;
    h.clock.advance(601);
    let error = h
        .service
        .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
        .unwrap_err();
    assert_eq!(error, AccessError::Expired);
    assert_eq!(error.status(), 401);
    assert!(error.www_authenticate().contains("invalid_token"));
}

#[tokio::test]
async fn suspending_the_app_cuts_its_tokens_and_token_endpoint() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let token = sign_in(&h, &app, SCOPE, &adult()).await;
    h.service
        .set_app_status(&app, AppStatus::Suspended)
        .unwrap();
    let error = h
        .service
        .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
        .unwrap_err();
    assert_eq!(error, AccessError::AppInactive("suspended".into()));
    assert_eq!(error.status(), 401);
    let (status, body) = token_request(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token["refresh_token"].as_str().unwrap()),
            ("client_id", &app),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Reinstated (accepted), the tokens work again; revoked is final.
    h.service.set_app_status(&app, AppStatus::Accepted).unwrap();
    assert!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
            .is_ok()
    );
    h.service.set_app_status(&app, AppStatus::Revoked).unwrap();
    assert!(h.service.set_app_status(&app, AppStatus::Accepted).is_err());
    assert_eq!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
            .unwrap_err(),
        AccessError::AppInactive("revoked".into())
    );
}

#[tokio::test]
async fn read_only_scope_cannot_write() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let token = sign_in(&h, &app, "patient/Observation.read", &adult()).await;
    assert!(
        token.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let error = h
        .service
        .authorize(Some(&bearer(&token)), "Observation", Interaction::Create)
        .unwrap_err();
    assert_eq!(error.status(), 403);
    let error = h
        .service
        .authorize(
            Some(&bearer(&token)),
            "MedicationAdministration",
            Interaction::Read,
        )
        .unwrap_err();
    assert_eq!(error.status(), 403);
}

#[tokio::test]
async fn missing_or_forged_tokens_are_401() {
    let h = start(|_| {}).await;
    assert_eq!(
        h.service.authenticate(None).unwrap_err(),
        AccessError::MissingToken
    );
    assert_eq!(
        h.service
            .authenticate(Some("Bearer abc.def.ghi"))
            .unwrap_err(),
        AccessError::InvalidToken
    );
    assert_eq!(
        h.service.authenticate(Some("Basic abc")).unwrap_err(),
        AccessError::InvalidToken
    );
}

#[tokio::test]
async fn under_16_is_refused_with_a_clear_page() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let today = time::OffsetDateTime::now_utc().date();
    let young = hetu(&format!("0101{:02}", (today.year() - 10) % 100), 'A', 950);
    let mut browser = Browser::default();
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    browser
        .get(&h.http, &authorize_url(&h, &app, SCOPE, Some(&challenge)))
        .await;
    let login = browser
        .get(&h.http, &format!("{}/oauth/login?lang=en", h.base))
        .await;
    let page = browser
        .post(
            &h.http,
            &format!("{}/oauth/login", h.base),
            &[("csrf", &csrf_of(&login.body)), ("hetu", &young)],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(
        page.body
            .contains("The service is for people aged 16 or over"),
        "{}",
        page.body
    );
    assert!(h.patients.stored.lock().unwrap().is_empty());
}

#[tokio::test]
async fn sandbox_login_accepts_only_valid_test_identities() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let mut browser = Browser::default();
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    browser
        .get(&h.http, &authorize_url(&h, &app, SCOPE, Some(&challenge)))
        .await;
    let login = browser
        .get(&h.http, &format!("{}/oauth/login?lang=fi", h.base))
        .await;
    let csrf = csrf_of(&login.body);
    let real_person = hetu("010190", '-', 123);
    let page = browser
        .post(
            &h.http,
            &format!("{}/oauth/login", h.base),
            &[("csrf", &csrf), ("hetu", &real_person)],
        )
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("testihenkilötunnukset"), "{}", page.body);
    assert!(
        !page.body.contains(&real_person),
        "the code is not echoed back"
    );
    let page = browser
        .post(
            &h.http,
            &format!("{}/oauth/login", h.base),
            &[("csrf", &csrf), ("hetu", "010190-900A")],
        )
        .await;
    assert_eq!(page.status, 400);
    // A forged form without the session's CSRF token is refused.
    let page = browser
        .post(
            &h.http,
            &format!("{}/oauth/login", h.base),
            &[("csrf", "forged"), ("hetu", &adult())],
        )
        .await;
    assert_eq!(page.status, 403);
}

#[tokio::test]
async fn declining_consent_redirects_with_access_denied() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let mut browser = Browser::default();
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    browser
        .get(&h.http, &authorize_url(&h, &app, SCOPE, Some(&challenge)))
        .await;
    let login = browser
        .get(&h.http, &format!("{}/oauth/login", h.base))
        .await;
    browser
        .post(
            &h.http,
            &format!("{}/oauth/login", h.base),
            &[("csrf", &csrf_of(&login.body)), ("hetu", &adult())],
        )
        .await;
    let terms = browser
        .get(&h.http, &format!("{}/oauth/terms", h.base))
        .await;
    browser
        .post(
            &h.http,
            &format!("{}/oauth/terms", h.base),
            &[("csrf", &csrf_of(&terms.body)), ("decision", "accept")],
        )
        .await;
    let consent = browser
        .get(&h.http, &format!("{}/oauth/consent?lang=sv", h.base))
        .await;
    assert!(consent.body.contains("lang=\"sv\""));
    assert!(
        consent.body.contains("Mät- och observationsuppgifter"),
        "{}",
        consent.body
    );
    let csp = consent
        .headers
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("form-action 'self' http://127.0.0.1:9"),
        "{csp}"
    );
    assert!(!consent.body.contains("<script"));
    let done = browser
        .post(
            &h.http,
            &format!("{}/oauth/consent", h.base),
            &[("csrf", &csrf_of(&consent.body)), ("decision", "deny")],
        )
        .await;
    let location = done.location.unwrap();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert!(query_param(&location, "code").is_none());
}

#[tokio::test]
async fn citizen_can_approve_only_part_of_the_request() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let mut browser = Browser::default();
    let challenge = phr_auth::secrets::pkce_s256_challenge(VERIFIER);
    browser
        .get(&h.http, &authorize_url(&h, &app, SCOPE, Some(&challenge)))
        .await;
    let login = browser
        .get(&h.http, &format!("{}/oauth/login", h.base))
        .await;
    browser
        .post(
            &h.http,
            &format!("{}/oauth/login", h.base),
            &[("csrf", &csrf_of(&login.body)), ("hetu", &adult())],
        )
        .await;
    let terms = browser
        .get(&h.http, &format!("{}/oauth/terms", h.base))
        .await;
    browser
        .post(
            &h.http,
            &format!("{}/oauth/terms", h.base),
            &[("csrf", &csrf_of(&terms.body)), ("decision", "accept")],
        )
        .await;
    let consent = browser
        .get(&h.http, &format!("{}/oauth/consent", h.base))
        .await;
    // Item 0 is Observation.read, item 1 Observation.write: approve reading only.
    let done = browser
        .post(
            &h.http,
            &format!("{}/oauth/consent", h.base),
            &[
                ("csrf", &csrf_of(&consent.body)),
                ("decision", "allow"),
                ("item", "0"),
            ],
        )
        .await;
    let code = query_param(&done.location.unwrap(), "code").unwrap();
    let (_, token) = exchange(&h, &app, &code, VERIFIER).await;
    assert_eq!(
        token["scope"],
        "patient/Observation.read launch/patient openid fhirUser offline_access"
    );
    assert_eq!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Update)
            .unwrap_err()
            .status(),
        403
    );
}

#[tokio::test]
async fn confidential_client_authenticates_with_basic_or_post_secret() {
    let h = start(|_| {}).await;
    let (app, secret) = register(
        &h,
        ClientType::Confidential,
        "patient/Observation.read",
        AppStatus::Sandbox,
    );
    let secret = secret.unwrap();
    async fn issue(h: &Harness, app: &str) -> String {
        let mut browser = Browser::default();
        let redirect =
            consent_flow(h, &mut browser, app, "patient/Observation.read", &adult()).await;
        query_param(&redirect, "code").unwrap()
    }
    let code = issue(&h, &app).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token_request(&h, &form, Some((&app, "wrong"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let code = issue(&h, &app).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = token_request(&h, &form, Some((&app, &secret))).await;
    assert_eq!(status, 200, "{body}");
    let code = issue(&h, &app).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", app.as_str()),
        ("client_secret", secret.as_str()),
    ];
    let (status, body) = token_request(&h, &form, None).await;
    assert_eq!(status, 200, "{body}");
    // Acting as a public client (no secret) is refused.
    let code = issue(&h, &app).await;
    let (status, body) = exchange(&h, &app, &code, VERIFIER).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

#[tokio::test]
async fn introspection_and_revocation_follow_the_rfcs() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let token = sign_in(&h, &app, SCOPE, &adult()).await;
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form)
                .finish();
            let response = h
                .http
                .post(format!("{}{path}", h.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    let access = token["access_token"].as_str().unwrap().to_owned();
    let (status, body) = post(
        "/oauth/introspect",
        vec![("client_id", app.clone()), ("token", access.clone())],
    )
    .await;
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["active"], true);
    assert_eq!(answer["patient"], token["patient"]);

    let (status, _) = post(
        "/oauth/revoke",
        vec![("client_id", app.clone()), ("token", access.clone())],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
            .unwrap_err(),
        AccessError::Revoked
    );
    let (_, body) = post(
        "/oauth/introspect",
        vec![("client_id", app.clone()), ("token", access)],
    )
    .await;
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["active"],
        false
    );

    let refresh = token["refresh_token"].as_str().unwrap().to_owned();
    let (status, _) = post(
        "/oauth/revoke",
        vec![("client_id", app.clone()), ("token", refresh.clone())],
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = token_request(
        &h,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &app),
        ],
        None,
    )
    .await;
    assert_eq!(status, 400);
    // Unknown tokens are fine to revoke (RFC 7009 §2.2).
    let (status, _) = post(
        "/oauth/revoke",
        vec![("client_id", app.clone()), ("token", "nonsense".into())],
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn signing_key_rotation_keeps_issued_tokens_valid() {
    let h = start(|_| {}).await;
    let app = public_app(&h);
    let token = sign_in(&h, &app, SCOPE, &adult()).await;
    let old_kid = h.service.signing_kid();
    let new_kid = h.service.rotate_signing_key().unwrap();
    assert_ne!(old_kid, new_kid);
    assert!(
        h.service
            .authorize(Some(&bearer(&token)), "Observation", Interaction::Read)
            .is_ok()
    );
    let jwks: serde_json::Value = h
        .http
        .get(format!("{}/oauth/jwks", h.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()));
    // Newly issued tokens carry the new kid and verify against the published key.
    let fresh = sign_in(&h, &app, SCOPE, &adult()).await;
    let header = jsonwebtoken::decode_header(fresh["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == new_kid.as_str())
            .unwrap()
            .clone(),
    )
    .unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[format!("{}/fhir/r4", h.base)]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        fresh["access_token"].as_str().unwrap(),
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["patient"], fresh["patient"]);
}
